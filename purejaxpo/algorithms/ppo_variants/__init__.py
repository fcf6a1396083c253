"""The PPO family's variants as registry records: objectives (:mod:`.objectives`) and advantage estimators
(:mod:`.advantages`). ``PPOConfig(objective=..., advantage=...)`` names them; a new variant is one primitive plus
one ``register_objective`` / ``register_advantage`` call (``notebooks/04_building_your_own.ipynb``)."""

from purejaxpo.algorithms.ppo_variants.advantages import (
    ADVANTAGES,
    AdvantageEstimator,
    Advantages,
    branch_from_group_leaders,
    register_advantage,
)
from purejaxpo.algorithms.ppo_variants.objectives import (
    OBJECTIVES,
    DualState,
    EWMAState,
    KLPenaltyState,
    ObjectiveInputs,
    PPOObjective,
    register_objective,
)
from purejaxpo.algorithms.ppo_variants import p3o  # noqa: F401  (registers "pairwise", "p3o", "p3o_joint")

__all__ = [
    "ADVANTAGES", "AdvantageEstimator", "Advantages", "DualState", "EWMAState", "KLPenaltyState", "OBJECTIVES",
    "ObjectiveInputs", "PPOObjective", "branch_from_group_leaders", "register_advantage", "register_objective",
]
