"""The on-policy engine every on-policy algorithm is declared on (see :mod:`purejaxpo.engine.trainer`).

- :mod:`~purejaxpo.engine.config` — shared config checks (``validate_config``, ``RolloutBudget``);
- :mod:`~purejaxpo.engine.state` — the per-seed ``OnPolicyState`` and the observation transform;
- :mod:`~purejaxpo.engine.collect` — rollout → bootstrap → reward scaling (``Experience``);
- :mod:`~purejaxpo.engine.optim` — optimizers with traced hyperparameters (``optax.inject_hyperparams``);
- :mod:`~purejaxpo.engine.update` — epochs × minibatches of gradient steps (``Phase``, ``LossContext``);
- :mod:`~purejaxpo.engine.trainer` — ``OnPolicyParts`` and ``build``;
- :mod:`~purejaxpo.engine.parts` — parts several algorithms share.
"""

from purejaxpo.engine.collect import Experience, collect_experience, gae_of
from purejaxpo.engine.config import RolloutBudget, check_action_settings, check_batch_layout, require_choice, require_positive_ints, validate_config
from purejaxpo.engine.optim import adam, adam_with_clipping, adamw_with_clipping, init_optimizer, linear_annealing, set_hyperparams
from purejaxpo.engine.parts import actor_critic_step, adam_phase, critic_value
from purejaxpo.engine.state import OnPolicyState, init_state, observe_fn
from purejaxpo.engine.trainer import OnPolicyParts, Prepared, UpdateContext, UpdateKeys, build, episode_metrics
from purejaxpo.engine.update import LossContext, Phase, flatten_time_and_batch, gradient_step, phase_batch, run_phase, shuffled_minibatches, shuffled_sequences

__all__ = [
    "Experience", "LossContext", "OnPolicyParts", "OnPolicyState", "Phase", "Prepared", "RolloutBudget", "UpdateContext",
    "UpdateKeys", "actor_critic_step", "adam", "adam_phase", "adam_with_clipping", "adamw_with_clipping", "build",
    "check_action_settings", "check_batch_layout", "collect_experience", "critic_value", "episode_metrics", "flatten_time_and_batch", "gae_of",
    "gradient_step", "init_optimizer", "phase_batch", "shuffled_sequences", "init_state", "linear_annealing", "observe_fn", "require_choice",
    "require_positive_ints", "run_phase", "set_hyperparams", "shuffled_minibatches", "validate_config",
]
