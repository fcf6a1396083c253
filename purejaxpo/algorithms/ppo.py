"""Proximal Policy Optimization (Schulman et al. 2017, arXiv:1707.06347) as a pure, jittable trainer.

``make_train(PPOConfig(...), env, env_params)`` returns a :class:`purejaxpo.types.Trainer`;
``trainer.train(key, PPOHParams())`` runs the whole experiment, and ``jax.vmap`` over keys (and over a
stacked ``PPOHParams``) runs seeds and hyperparameter grids in one compiled call::

    env, env_params = purejaxpo.make_env("CartPole-v1")
    trainer = ppo.make_train(ppo.PPOConfig(), env, env_params)
    keys = jax.random.split(jax.random.key(0), 8)
    state, metrics = jax.jit(jax.vmap(trainer.train, in_axes=(0, None)))(keys, ppo.PPOHParams())
    metrics["episode_return"]   # [8, num_updates]

Defaults are PureJaxRL's CartPole settings (4 envs × 128 steps, 4 epochs × 4 minibatches, 64-64 tanh).

Variants are choices of one trainer, not copies of it (losses in :mod:`purejaxpo.primitives.ppo_objectives`,
group advantages in :mod:`purejaxpo.primitives.group_advantages`):

- ``PPOConfig(objective=...)``: the records of :mod:`purejaxpo.algorithms.ppo_variants.objectives` (``"clip"``,
  with ``dual_clip=True`` for dual-clip; ``"kl_penalty"``, ``"spo"``, ``"ewma"``, ``"dpo"``, ``"r2vpo"``, …);
- ``PPOConfig(advantage=...)``: ``"gae"``, ``"egae"`` (T-PPO: critic trained on completed episodes only),
  ``"loo"`` (LOOP leave-one-out baseline over ``group_size`` sibling envs), ``"polychromic"`` (set
  advantage × diversity over vines) and ``"pairwise"`` (P3O's pair difference, ``group_size = 2``), the last
  three branching sibling envs from a shared start state;
  ``objective="p3o"`` / ``"p3o_joint"`` with it is P3O's trajectory-wise clipped objective (separate / joint
  clipping; :mod:`purejaxpo.algorithms.ppo_variants.p3o`, a reconstruction [P]).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from purejaxpo import engine
from purejaxpo.algorithms.ppo_variants import ADVANTAGES, OBJECTIVES, ObjectiveInputs, branch_from_group_leaders
from purejaxpo.engine import RolloutBudget, require_positive_ints, validate_config
from purejaxpo.engine.policies import POLICIES, actor_critic_policy, sequence_fields
from purejaxpo.networks.actor_critic import actor_critic_for
from purejaxpo.networks.distributions import env_action
from purejaxpo.networks.graphdef import merger_of
from purejaxpo.primitives.advantages import explained_variance, masked_mean, normalize
from purejaxpo.primitives.losses import clip_fraction, entropy_loss, sample_kl, value_loss
from purejaxpo.rollout import has_action_mask
from purejaxpo.spaces import policy_spec
from purejaxpo.types import CheckedHParams, Trainer, above, at_least, in_interval

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class PPOConfig(RolloutBudget):
    """Static settings: anything that changes shapes, loop counts or the traced program.

    ``action_bounds`` (``"clip"``/``"tanh"``) and ``init_log_std`` apply to continuous actions only;
    leave them ``None`` (= ``"clip"`` and ``0.0``) for discrete envs.

    ``objective`` and ``advantage`` pick the PPO variant (see the module docstring). For the grouped
    advantages (``"loo"``, ``"polychromic"``) the ``num_envs`` envs form ``num_envs / group_size`` groups of
    ``group_size`` consecutive envs; at the start of every rollout each group's first env (its *leader*)
    is cloned into its siblings (env state, observation and episode counters: gymnax states are pytrees),
    so the ``group_size`` rollouts of a group start from the same state and then diverge through their own
    action and env randomness. The leader continues its episode across updates; siblings are re-cloned.
    ``"polychromic"`` splits each group (the vines) into sets of ``poly_set_size``, gives the first
    ``poly_window`` steps of every vine its set's advantage, and measures each set's diversity with
    ``diversity_fn(final_obs [poly_set_size, *obs_shape]) -> scalar in [0, 1]`` (default: the fraction of
    distinct final observations, :func:`~purejaxpo.primitives.group_advantages.distinct_fraction`).
    ``group_size=8, poly_set_size=4, poly_window=5`` come from a third-party reimplementation (the paper's own
    values could not be confirmed); ours (4, 2, 5) let the default 4 envs form one group of two sets.

    ``policy``: ``"mlp"`` (feed-forward) or a recurrent ``"gru"`` / ``"lstm"`` actor-critic whose memory
    (``memory_size`` units) is carried through rollouts, reset at every episode end, and trained on whole env
    sequences by truncated BPTT over the rollout window (:mod:`purejaxpo.engine.policies`); ``hidden_sizes`` is
    then its encoder. Envs with action masks (``env.has_action_mask``) are masked automatically.

    Fields:
        dual_clip: dual-clip PPO: bound the ratio term at dual_clip_c × A for negative advantages (objective clip)
        objective: the PPO objective (module docstring)
        advantage: the advantage estimator (module docstring)
        group_size: envs per group of advantage loo / polychromic
        poly_set_size: vines per set of advantage polychromic
        poly_window: first steps of every vine that get its set's advantage (polychromic)
        diversity_fn: polychromic: diversity of a set's final observations in [0, 1] (None = distinct fraction)
        policy: mlp (feed-forward) or a recurrent gru / lstm actor-critic
        memory_size: units of the recurrent cell (policy gru / lstm)
    """

    algorithm_name: ClassVar[str] = "ppo"
    choices: ClassVar[dict[str, Any]] = {"objective": OBJECTIVES, "advantage": ADVANTAGES, "policy": POLICIES}

    num_envs: int = 4
    num_steps: int = 128
    total_timesteps: int = 499_712  # PureJaxRL's 5e5 as whole rollouts: 976 × 512, what 5e5 ran anyway
    update_epochs: int = 4
    num_minibatches: int = 4
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    torso: str = "mlp"
    anneal_lr: bool = True
    normalize_advantages: bool = True
    clip_value: bool = True
    dual_clip: bool = False
    normalize_obs: bool = False
    normalize_rewards: bool = False
    action_bounds: str | None = None
    init_log_std: float | None = None
    objective: str = "clip"
    advantage: str = "gae"
    group_size: int = 4
    poly_set_size: int = 2
    poly_window: int = 5
    diversity_fn: Callable[[Array], Array] | None = None
    policy: str = "mlp"
    memory_size: int = 128

    def __post_init__(self) -> None:
        validate_config(self)
        require_positive_ints(self, ("group_size", "poly_set_size", "poly_window", "memory_size"))
        if self.policy != "mlp" and self.num_envs % self.num_minibatches:
            raise ValueError(
                f"policy={self.policy!r} trains on whole env sequences: num_minibatches={self.num_minibatches} must "
                f"divide num_envs={self.num_envs}"
            )
        if self.policy != "mlp" and self.torso != "mlp":
            raise ValueError(f"policy={self.policy!r} uses an MLP encoder; torso={self.torso!r} is for policy='mlp'")
        if self.dual_clip and not OBJECTIVES[self.objective].dual_clip:
            raise ValueError(f"PPOConfig.dual_clip applies to objective='clip' only, got objective={self.objective!r}")
        estimator, objective = ADVANTAGES[self.advantage], OBJECTIVES[self.objective]
        if estimator.check is not None:
            estimator.check(self)
        if objective.check is not None:
            objective.check(self)
        if self.diversity_fn is not None:
            if self.advantage != "polychromic":
                raise ValueError("PPOConfig.diversity_fn is used by advantage='polychromic' only")
            if not callable(self.diversity_fn):
                raise ValueError(f"PPOConfig.diversity_fn must be callable, got {self.diversity_fn!r}")


@struct.dataclass
class PPOHParams(CheckedHParams):
    """Traced hyperparameters: changing any value never recompiles; stack them to vmap a grid.

    Variant knobs (read only by their ``objective``):

    - ``kl_penalty``: ``kl_target`` (d_targ) and ``kl_beta_init`` (β₀); PPO paper's rule, defaults [P].
    - ``ewma``: ``ewma_beta`` (EWMA decay of the proximal parameters; the default 0.88 puts its centre of mass
      ``β/(1−β) ≈ 7.3`` steps back, about the mean age of PPO's π_old over 4 epochs × 4 minibatches [P]) and
      ``ewma_imp_samp_max`` (cap on π_θ/π_b, 100 as in the authors' code).
    - ``dpo``: ``dpo_alpha``, ``dpo_beta`` (2.0 and 0.6 as in the paper).
    - ``r2vpo``: ``r2vpo_delta`` (bound on Var[r]), ``r2vpo_dual_lr`` (dual step size), ``r2vpo_lambda_init``;
      proposed, unverified defaults.

    Fields:
        dual_clip_c: dual-clip bound c (> 1)
        kl_target: kl_penalty: target KL d_targ of the adaptive β
        kl_beta_init: kl_penalty: initial β
        ewma_beta: ewma: EWMA decay of the proximal parameters
        ewma_imp_samp_max: ewma: cap on the importance weight π_θ/π_b
        dpo_alpha: dpo: drift scale α (positive advantages)
        dpo_beta: dpo: drift scale β (negative advantages)
        r2vpo_delta: r2vpo: bound on the variance of the ratio
        r2vpo_dual_lr: r2vpo: step size of the dual variable λ
        r2vpo_lambda_init: r2vpo: initial λ
    """

    lr: float = 2.5e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    dual_clip_c: float = 3.0
    kl_target: float = 0.01
    kl_beta_init: float = 1.0
    ewma_beta: float = 0.88
    ewma_imp_samp_max: float = 100.0
    dpo_alpha: float = 2.0
    dpo_beta: float = 0.6
    r2vpo_delta: float = 0.04
    r2vpo_dual_lr: float = 0.01
    r2vpo_lambda_init: float = 0.0


PPOHParams.rules = {
    "dual_clip_c": above(1),
    "kl_target": above(0),
    "kl_beta_init": at_least(0),
    "ewma_beta": in_interval(0, 1, closed_high=False),
    "ewma_imp_samp_max": above(1),
    "dpo_alpha": above(0),
    "dpo_beta": above(0),
    "r2vpo_delta": at_least(0),
    "r2vpo_dual_lr": at_least(0),
    "r2vpo_lambda_init": at_least(0),
}


@struct.dataclass
class PPOBatch:
    """Training samples ``[T, B, ...]`` (flattened to ``[N, ...]`` by the engine, or kept as env sequences for a
    recurrent policy). ``memory``/``starts`` are set for recurrent policies, ``action_mask`` for masked envs."""

    obs: Array
    action: Array
    log_prob: Array
    value: Array
    advantages: Array
    targets: Array
    value_mask: Array | None = None  # 0/1: which samples train the critic (None = all)
    memory: Any = None
    starts: Array | None = None
    action_mask: Array | None = None
    extras: dict[str, Array] | None = None  # the advantage estimator's extras (e.g. P3O's pair ids)


def ppo_loss(
    model: Any, batch: PPOBatch, ctx: engine.LossContext, config: PPOConfig, merge: Callable[[Any], Any],
    forward: Callable[[Any, PPOBatch], tuple[Any, Array]],
) -> tuple[Array, dict[str, Array]]:
    """``L = L_π + c_V L_V − c_H H`` on one minibatch: ``L_π`` is the mean of ``config.objective``'s per-sample
    loss (advantages normalized per minibatch when ``config.normalize_advantages``), ``L_V`` the (clipped)
    value loss, ``H`` the entropy. ``forward(model, batch) -> (policy, values)`` evaluates a network on the
    minibatch (a replay of the sequences for recurrent policies, with action masks applied); ``merge(params)``
    builds the objective's reference network from params."""
    objective, hp = OBJECTIVES[config.objective], ctx.hp
    dist, values = forward(model, batch)
    advantages = normalize(batch.advantages) if config.normalize_advantages else batch.advantages
    log_prob = dist.log_prob(batch.action)
    log_ratio = log_prob - batch.log_prob
    reference = ctx.old_model if objective.reference is None else merge(objective.reference(ctx.carried))
    inputs = ObjectiveInputs(log_prob, log_ratio, advantages, dist, batch, lambda: forward(reference, batch)[0])
    per_sample, extra = objective.loss(inputs, hp, ctx.carried, config)
    policy_loss = masked_mean(per_sample)
    old_values = batch.value if config.clip_value else None
    v_loss = masked_mean(value_loss(values, batch.targets, old_values, hp.clip_eps), batch.value_mask)
    entropy = masked_mean(-entropy_loss(dist.entropy()))
    loss = policy_loss + hp.vf_coef * v_loss - hp.ent_coef * entropy
    aux = {
        "policy_loss": policy_loss,
        "value_loss": v_loss,
        "entropy": entropy,
        "approx_kl": masked_mean(sample_kl(log_ratio, "k3")),
        "clip_fraction": masked_mean(clip_fraction(log_ratio, hp.clip_eps)),
        **extra,
    }
    return loss, aux


def make_train(config: PPOConfig, env: Any, env_params: Any) -> Trainer:
    """Build the PPO :class:`~purejaxpo.types.Trainer` for ``env``; raises ``ValueError`` on bad settings.

    ``config.policy`` picks a feed-forward (``"mlp"``) or recurrent (``"gru"``, ``"lstm"``) actor-critic
    (:mod:`purejaxpo.engine.policies`); every objective and advantage estimator works with either. An env with
    action masks (``env.has_action_mask``) has its illegal actions masked out of the policy.
    """
    spec = policy_spec(env, env_params)
    engine.check_action_settings(config, spec)
    objective, estimator = OBJECTIVES[config.objective], ADVANTAGES[config.advantage]
    if spec.kind not in estimator.action_kinds:
        raise ValueError(
            f"advantage={config.advantage!r} supports {', '.join(estimator.action_kinds)} actions; this env's actions "
            f"are {spec.kind}"
        )
    to_env = lambda raw: env_action(spec, raw, config.action_bounds)
    policy = actor_critic_policy(config, spec, to_env, has_action_mask(env))
    merge = merger_of(policy.network)

    def prepare(exp: engine.Experience, ctx: engine.UpdateContext) -> engine.Prepared:
        advantages, targets, value_mask, extras = estimator.compute(exp, ctx, config)
        traj = exp.trajectory
        batch = PPOBatch(ctx.observe(traj.obs), traj.action, traj.log_prob, traj.value, advantages, targets, value_mask,
                         extras=extras, **(sequence_fields(exp) if policy.stateful else {}))
        return engine.Prepared(batch, ctx.carried, {"explained_variance": explained_variance(traj.value, targets)})

    def per_update(ctx: engine.UpdateContext, new_model: Any, batch: PPOBatch, carried: Any) -> tuple[Any, dict[str, Array]]:
        metrics = {}
        if objective.per_update is not None:
            old_dist, new_dist = policy.forward(ctx.model, batch)[0], policy.forward(new_model, batch)[0]
            carried, metrics = objective.per_update(carried, old_dist, new_dist, batch, ctx.hp)
        return carried, {**metrics, **(objective.metrics(carried) if objective.metrics is not None else {})}

    loss = lambda m, mb, ctx: ppo_loss(m, mb, ctx, config, merge, policy.forward)
    parts = engine.OnPolicyParts(
        network=policy.network,
        policy_step=policy.step,
        value=policy.value,
        prepare=prepare,
        phases=(engine.adam_phase(loss, config, per_step=objective.per_step, layout=policy.layout),),
        act=policy.act if policy.stateful else None,
        init_carried=objective.init,
        per_update=per_update,
        before_rollout=(lambda carry: branch_from_group_leaders(carry, config.group_size)) if estimator.grouped else None,
        init_memory=policy.init_memory,
        action_masks=True,
    )
    return engine.build(parts, config, env, env_params, to_env)
