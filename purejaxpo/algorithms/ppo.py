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

- ``PPOConfig(objective=...)``: ``"clip"`` (PPO-clip; ``dual_clip=True`` for dual-clip), ``"kl_penalty"``
  (adaptive-β KL penalty, β in ``state.algo``), ``"spo"`` (SPO), ``"ewma"`` (PPO-EWMA, proximal
  parameters in ``state.algo``), ``"dpo"`` (DPO drift), ``"r2vpo"`` (ratio-variance penalty, dual λ in
  ``state.algo``);
- ``PPOConfig(advantage=...)``: ``"gae"``, ``"egae"`` (T-PPO: critic trained on completed episodes only),
  ``"loo"`` (LOOP leave-one-out baseline over ``group_size`` sibling envs) and ``"polychromic"`` (set
  advantage × diversity over vines), the last two branching sibling envs from a shared start state.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx, struct

from purejaxpo.algorithms import common, ppo_state
from purejaxpo.algorithms.onpolicy import (
    adam_with_clipping,
    flatten_time_and_batch,
    linear_annealing,
    update_epochs,
    update_epochs_with_state,
)
from purejaxpo.networks.actor_critic import TORSOS
from purejaxpo.networks.torsos import ACTIVATIONS
from purejaxpo.primitives import group_advantages as groups
from purejaxpo.primitives.advantages import discounted_returns, egae, explained_variance, masked_mean, normalize
from purejaxpo.primitives.losses import (
    clip_fraction,
    clipped_surrogate,
    entropy_loss,
    kl_penalty_surrogate,
    sample_kl,
    value_loss,
)
from purejaxpo.primitives.ppo_objectives import (
    dpo_surrogate,
    ewma_decoupled_surrogate,
    r2vpo_surrogate,
    ratio_second_moment,
    spo_surrogate,
)
from purejaxpo.primitives.stateful import scale_rewards
from purejaxpo.types import CheckedHParams, Trainer, above, at_least, in_interval, scan_train

Array = jax.Array

OBJECTIVES = ("clip", "kl_penalty", "spo", "ewma", "dpo", "r2vpo")
ADVANTAGES = ("gae", "egae", "loo", "polychromic")
GROUPED_ADVANTAGES = ("loo", "polychromic")  # these branch sibling envs from a shared start state


@dataclasses.dataclass(frozen=True)
class PPOConfig(common.RolloutBudget):
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
    Paper defaults are ``group_size=8, poly_set_size=4, poly_window=5``; ours (4, 2, 5) let the default
    4 envs form one group of two sets.
    """

    algorithm_name: ClassVar[str] = "ppo"

    num_envs: int = 4
    num_steps: int = 128
    total_timesteps: int = 500_000
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        if not self.hidden_sizes or any(not isinstance(h, int) or h <= 0 for h in self.hidden_sizes):
            raise ValueError(f"PPOConfig.hidden_sizes must be positive integers, got {self.hidden_sizes!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"PPOConfig.activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.torso not in TORSOS:
            raise ValueError(f"PPOConfig.torso must be one of {TORSOS}, got {self.torso!r}")
        if self.action_bounds not in (None, "clip", "tanh"):
            raise ValueError(f"PPOConfig.action_bounds must be 'clip' or 'tanh', got {self.action_bounds!r}")
        common.check_batch_layout(self)
        self._check_variant()

    def _check_variant(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"PPOConfig.objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.advantage not in ADVANTAGES:
            raise ValueError(f"PPOConfig.advantage must be one of {ADVANTAGES}, got {self.advantage!r}")
        if self.dual_clip and self.objective != "clip":
            raise ValueError(f"PPOConfig.dual_clip applies to objective='clip' only, got objective={self.objective!r}")
        common.require_positive_ints(self, ("group_size", "poly_set_size", "poly_window"))
        if self.advantage in GROUPED_ADVANTAGES:
            if self.group_size < 2:
                raise ValueError(f"advantage={self.advantage!r} needs group_size >= 2 sibling envs, got {self.group_size}")
            if self.num_envs % self.group_size:
                raise ValueError(
                    f"advantage={self.advantage!r} groups envs by group_size={self.group_size}, which must divide "
                    f"num_envs={self.num_envs}"
                )
        if self.advantage == "polychromic":
            sets, rest = divmod(self.group_size, self.poly_set_size)
            if rest or sets < 2:
                raise ValueError(
                    f"advantage='polychromic' splits each group of group_size={self.group_size} vines into at least "
                    f"2 sets of poly_set_size={self.poly_set_size}; group_size must be a multiple >= 2x poly_set_size"
                )
            if self.poly_window > self.num_steps:
                raise ValueError(f"PPOConfig.poly_window={self.poly_window} exceeds num_steps={self.num_steps}")
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
    """Flattened training samples ``[N, ...]``."""

    obs: Array
    action: Array
    log_prob: Array
    value: Array
    advantages: Array
    targets: Array
    value_mask: Array | None = None  # [N] 0/1: which samples train the critic (None = all)


def policy_objective(
    config: PPOConfig,
    hp: PPOHParams,
    dist: Any,
    log_prob: Array,
    batch: PPOBatch,
    advantages: Array,
    algo: Any = None,
    reference: Any = None,
) -> tuple[Array, dict[str, Array]]:
    """The per-sample policy loss ``[N]`` of ``config.objective``, and its extra metrics.

    ``log_prob = log π_θ(batch.action | batch.obs)`` under ``dist``; ``algo`` is the objective's carried
    state (:mod:`purejaxpo.algorithms.ppo_state`); ``reference`` is the network the objective compares
    against: π_old for ``"kl_penalty"`` (analytic ``KL(π_old ‖ π_θ)``) and π_prox for ``"ewma"``. Neither
    receives gradients.
    """
    log_ratio = log_prob - batch.log_prob
    objective = config.objective
    if objective == "clip":
        dual = hp.dual_clip_c if config.dual_clip else None
        return clipped_surrogate(log_ratio, advantages, hp.clip_eps, dual), {}
    if objective == "spo":
        return spo_surrogate(log_ratio, advantages, hp.clip_eps), {}
    if objective == "dpo":
        return dpo_surrogate(log_ratio, advantages, hp.dpo_alpha, hp.dpo_beta), {}
    if objective == "kl_penalty":
        kl = reference.distribution(batch.obs).kl_divergence(dist)
        return kl_penalty_surrogate(log_ratio, advantages, kl, algo.beta), {"kl": masked_mean(kl)}
    if objective == "r2vpo":
        ratio_var = masked_mean(ratio_second_moment(log_ratio))
        return r2vpo_surrogate(log_ratio, advantages, algo.lam, hp.r2vpo_delta), {"ratio_variance": ratio_var}
    if objective == "ewma":
        prox_log_prob = jax.lax.stop_gradient(reference.distribution(batch.obs).log_prob(batch.action))
        loss = ewma_decoupled_surrogate(
            log_prob, batch.log_prob, prox_log_prob, advantages, hp.clip_eps, hp.ewma_imp_samp_max
        )
        return loss, {"prox_clip_fraction": masked_mean(clip_fraction(log_prob - prox_log_prob, hp.clip_eps))}
    raise ValueError(f"unknown objective {objective!r}; expected one of {OBJECTIVES}")


def ppo_loss(
    model: Any, batch: PPOBatch, hp: PPOHParams, config: PPOConfig, algo: Any = None, reference: Any = None
) -> tuple[Array, dict[str, Array]]:
    """``L = L_π + c_V L_V − c_H H`` on one minibatch (advantages normalized per minibatch when
    ``config.normalize_advantages``); ``L_π`` is :func:`policy_objective`."""
    dist, values = model(batch.obs)
    advantages = normalize(batch.advantages) if config.normalize_advantages else batch.advantages
    log_prob = dist.log_prob(batch.action)
    log_ratio = log_prob - batch.log_prob
    per_sample, extra = policy_objective(config, hp, dist, log_prob, batch, advantages, algo, reference)
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


def _branch_from_group_leaders(tree: Any, group_size: int) -> Any:
    """Copy env ``g·K`` of every group of ``K = group_size`` consecutive envs into the group's other envs
    (every leaf ``[B, ...]``): the siblings restart from their leader's state."""

    def clone(x: Array) -> Array:
        grouped = x.reshape((x.shape[0] // group_size, group_size) + x.shape[1:])
        return jnp.broadcast_to(grouped[:, :1], grouped.shape).reshape(x.shape)

    return jax.tree.map(clone, tree)


def _advantage_rewards(config: PPOConfig, exp: common.Experience) -> Array:
    """The rewards the advantages were computed from (scaled exactly as ``collect_experience`` did)."""
    rewards = exp.trajectory.reward
    return scale_rewards(exp.reward_scaler, rewards) if config.normalize_rewards else rewards


def compute_advantages(
    config: PPOConfig, exp: common.Experience, hp: PPOHParams, model: Any, observe: Callable[[Array], Array]
) -> tuple[Array, Array, Array | None]:
    """``(advantages, value targets, value mask or None)``, all ``[T, B]``, for ``config.advantage``.

    - ``"gae"``: the rollout's GAE.
    - ``"egae"``: the same advantages; the critic trains only on steps of episodes that end inside the window.
    - ``"loo"``: per step, the return-to-go within the window (``G_t = r_t + γ(1−done_t)G_{t+1}``, no critic,
      ``G_T = 0``) minus the leave-one-out mean of the group's siblings at the same step. At ``t = 0`` the
      siblings share the start state, so this is LOOP's ``Â_k = R_k − mean_{j≠k} R_j``; later steps use the
      reward-to-go (causality) form. The critic is still trained on the GAE targets but not used here.
    - ``"polychromic"``: GAE, except the first ``poly_window`` steps of each vine's first episode, which get
      the set advantage ``f_poly(set) − mean_sets f_poly`` with ``R(τ) = G_0`` (first-episode return in the
      window) and the diversity of the vines' final observations (episode end, or the window end).
    """
    traj = exp.trajectory
    if config.advantage == "gae":
        return exp.advantages, exp.targets, None
    rewards = _advantage_rewards(config, exp)
    if config.advantage == "egae":
        last_value = model.value(observe(exp.env.obs))
        return egae(
            rewards, traj.value, traj.final_value, last_value, traj.terminated, traj.truncated, hp.gamma, hp.gae_lambda
        )
    done = jnp.logical_or(traj.terminated, traj.truncated)
    returns = discounted_returns(rewards, done, hp.gamma)  # [T, B]
    num_steps, num_envs = returns.shape
    num_groups = num_envs // config.group_size
    if config.advantage == "loo":
        grouped = returns.reshape(num_steps, num_groups, config.group_size)
        return groups.loo_advantage(grouped).reshape(num_steps, num_envs), exp.targets, None
    # polychromic
    set_size = config.poly_set_size
    num_sets = config.group_size // set_size
    final_obs = groups.first_episode_end(traj.final_obs, observe(exp.env.obs), done)  # [B, *obs]
    final_obs = final_obs.reshape((num_groups, num_sets, set_size) + final_obs.shape[1:])
    diversity_fn = config.diversity_fn or (lambda obs: groups.distinct_fraction(obs.reshape(obs.shape[0], -1)))
    diversity = jax.vmap(jax.vmap(diversity_fn))(final_obs)  # [G, M]
    set_adv = groups.polychromic_set_advantage(returns[0].reshape(num_groups, num_sets, set_size), diversity)
    per_vine = jnp.repeat(set_adv.reshape(-1), set_size)  # [B]
    first = groups.first_episode_mask(done)
    return groups.apply_set_advantage(exp.advantages, per_vine, first, config.poly_window), exp.targets, None


def make_train(config: PPOConfig, env: Any, env_params: Any) -> Trainer:
    """Build the PPO :class:`~purejaxpo.types.Trainer` for ``env``; raises ``ValueError`` on bad settings."""
    num_updates = config.num_updates
    spec = common.policy_spec(env, env_params)
    common.check_action_settings(config, spec)
    if config.advantage == "polychromic" and spec.kind == "continuous":
        raise ValueError(
            "advantage='polychromic' needs discrete actions (its set diversity compares discrete outcomes); "
            "this env's actions are continuous"
        )
    graphdef, _ = nnx.split(common.build_actor_critic(config, spec, jax.random.key(0)))

    def init(key: Array, hp: PPOHParams) -> common.OnPolicyState:
        net_key, key = jax.random.split(key)
        _, params = nnx.split(common.build_actor_critic(config, spec, net_key))
        opt_state = adam_with_clipping(hp.lr, hp.max_grad_norm).init(params)
        algo = ppo_state.init_algo_state(config.objective, params, hp)
        return common.init_state(env, env_params, config, spec, params, opt_state, key, algo)

    def update(state: common.OnPolicyState, hp: PPOHParams) -> tuple[common.OnPolicyState, dict[str, Array]]:
        key, rollout_key, epoch_key = jax.random.split(state.key, 3)
        model = nnx.merge(graphdef, state.params)
        if config.advantage in GROUPED_ADVANTAGES:
            state = state.replace(env=_branch_from_group_leaders(state.env, config.group_size))
        exp = common.collect_experience(env, env_params, config, spec, state, model, rollout_key, hp.gamma, hp.gae_lambda)
        trajectory = exp.trajectory
        observe = common.observe_fn(config, state.obs_norm)
        advantages, targets, value_mask = compute_advantages(config, exp, hp, model, observe)
        batch = flatten_time_and_batch(
            PPOBatch(
                observe(trajectory.obs), trajectory.action, trajectory.log_prob, trajectory.value, advantages, targets,
                value_mask,
            )
        )
        lr = linear_annealing(hp.lr, state.update_index, num_updates, config.anneal_lr)
        optimizer = adam_with_clipping(lr, hp.max_grad_norm)
        algo = state.algo

        def loss_fn(params: Any, minibatch: PPOBatch, algo: Any) -> tuple[Array, dict[str, Array]]:
            # π_prox for "ewma"; π_old (the rollout's network) otherwise, read by "kl_penalty" only
            reference = nnx.merge(graphdef, algo.params) if config.objective == "ewma" else model
            return ppo_loss(nnx.merge(graphdef, params), minibatch, hp, config, algo, reference)

        step_update = ppo_state.per_step_update(config.objective, hp)
        if step_update is None:
            params, opt_state, train_metrics = update_epochs(
                epoch_key, state.params, state.opt_state, batch, lambda p, mb: loss_fn(p, mb, algo), optimizer,
                config.update_epochs, config.num_minibatches,
            )
        else:  # EWMA parameters / dual variable change after every gradient step
            params, opt_state, algo, train_metrics = update_epochs_with_state(
                epoch_key, state.params, state.opt_state, algo, batch, loss_fn, optimizer, step_update,
                config.update_epochs, config.num_minibatches,
            )
        if config.objective == "kl_penalty":
            new_model = nnx.merge(graphdef, params)
            old_dist, new_dist = model.distribution(batch.obs), new_model.distribution(batch.obs)
            algo, kl_metrics = ppo_state.update_kl_beta(algo, old_dist, new_dist, hp)
            train_metrics = {**train_metrics, **kl_metrics}
        new_state = state.replace(
            params=params, opt_state=opt_state, obs_norm=exp.obs_norm, reward_scaler=exp.reward_scaler,
            env=exp.env, key=key, update_index=state.update_index + 1, algo=algo,
        )
        metrics = {
            **common.episode_metrics(exp.stats),
            **ppo_state.algo_metrics(algo),  # the carried state after this update
            **{k: v for k, v in train_metrics.items() if k != "nonfinite"},
            "nonfinite_steps": train_metrics["nonfinite"],
            "explained_variance": explained_variance(trajectory.value, exp.targets),
            "learning_rate": lr,
            "env_steps": (state.update_index + 1).astype(jnp.float32) * config.batch_size,
        }
        return new_state, metrics

    return Trainer(init, update, scan_train(init, update, num_updates), common.act_fn(config, spec, graphdef), config, env, env_params, type(config).algorithm_name)
