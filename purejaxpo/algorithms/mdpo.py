"""On-policy Mirror Descent Policy Optimization (Tomar et al., ICLR 2022, arXiv:2005.09814) as a pure,
jittable trainer. Spec: ``shared/specs/mdpo.md`` §2.1; the off-policy variant is :mod:`.mdpo_off`.

Iteration ``k`` approximately solves the mirror-descent subproblem with ``m = sgd_steps`` Adam passes over the
rollout, all starting from ``θ_k`` (no clipping, no line search)::

    θ_{k+1} ≈ argmin_θ  mean[ −ρ_θ Â ] + (1/t_k) · mean_s[ KL(π_θ(·|s) ‖ π_θk(·|s)) ],   ρ_θ = π_θ / π_θk
    t_k = t0 · (1 − k/K)       (K = anneal_horizon, default the number of updates)

The KL is in closed form (diagonal Gaussian or categorical, current policy first [C]); advantages are GAE,
standardized over the whole batch [C]. The critic is trained *after* the policy steps, with its own Adam,
``vf_epochs × vf_minibatches`` steps of the (optionally clipped) value loss on the TD(λ) targets [C]. The
paper's defaults (``num_minibatches = 1``: full-batch steps) are kept; ``num_minibatches > 1`` splits each
of the ``m`` passes into minibatch steps (PureJaxRL-style vectorized rollouts) [P, spec §7.1].

``sgd_steps = 1`` with ``num_minibatches = 1`` is one vanilla policy-gradient step (at ``θ = θ_k`` the KL term
has zero gradient and ``ρ = 1``); a test checks it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx, struct

from purejaxpo.algorithms import common
from purejaxpo.algorithms.onpolicy import adam_with_clipping, flatten_time_and_batch, linear_annealing, update_epochs
from purejaxpo.networks.actor_critic import TORSOS
from purejaxpo.networks.torsos import ACTIVATIONS
from purejaxpo.primitives.advantages import explained_variance, masked_mean, normalize
from purejaxpo.primitives.losses import categorical_kl, diag_gaussian_kl, sample_kl, value_loss
from purejaxpo.primitives.mdpo import mdpo_on_loss, mdpo_step_size
from purejaxpo.types import CheckedHParams, Trainer, above, at_least, scan_train

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class MDPOConfig(common.RolloutBudget):
    """Static settings (shapes, loop counts, flags).

    ``sgd_steps`` is ``m``: passes over the rollout per iteration, each of ``num_minibatches`` Adam steps
    (``1`` = the paper's full-batch steps). ``anneal_horizon`` is ``K`` of ``t_k = t0(1 − k/K)``; ``None`` means
    the run's number of updates (the released code's ``total_timesteps / timesteps_per_batch``). With
    ``anneal_step_size=False`` the step size stays ``t0``. ``action_bounds``/``init_log_std``: continuous only.
    """

    algorithm_name: ClassVar[str] = "mdpo"

    num_envs: int = 1
    num_steps: int = 2048
    total_timesteps: int = 1_000_000
    sgd_steps: int = 10
    num_minibatches: int = 1
    vf_epochs: int = 5
    vf_minibatches: int = 16
    anneal_horizon: int | None = None
    anneal_step_size: bool = True
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    torso: str = "mlp"
    anneal_lr: bool = False
    normalize_advantages: bool = True
    clip_value: bool = True
    normalize_obs: bool = True
    normalize_rewards: bool = True
    action_bounds: str | None = None
    init_log_std: float | None = None

    def __post_init__(self) -> None:
        name = type(self).__name__
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        if not self.hidden_sizes or any(not isinstance(h, int) or h <= 0 for h in self.hidden_sizes):
            raise ValueError(f"{name}.hidden_sizes must be positive integers, got {self.hidden_sizes!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"{name}.activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.torso not in TORSOS:
            raise ValueError(f"{name}.torso must be one of {TORSOS}, got {self.torso!r}")
        if self.action_bounds not in (None, "clip", "tanh"):
            raise ValueError(f"{name}.action_bounds must be 'clip' or 'tanh', got {self.action_bounds!r}")
        common.require_positive_ints(self, ("sgd_steps", "vf_epochs", "vf_minibatches"))
        if self.anneal_horizon is not None:
            common.require_positive_ints(self, ("anneal_horizon",))
        common.check_batch_layout(self)
        if self.batch_size % self.vf_minibatches:
            raise ValueError(
                f"num_envs × num_steps = {self.batch_size} does not divide into vf_minibatches={self.vf_minibatches}"
            )

    @property
    def update_epochs(self) -> int:
        """Policy passes per iteration (``m``), under the name :func:`common.check_batch_layout` reads."""
        return self.sgd_steps

    @property
    def horizon(self) -> int:
        """``K`` of the step-size schedule."""
        return self.num_updates if self.anneal_horizon is None else self.anneal_horizon


@struct.dataclass
class MDPOHParams(CheckedHParams):
    """Traced hyperparameters (spec §4 defaults; ``step_size`` is ``t0``, 1 in the paper)."""

    lr: float = 3e-4
    vf_lr: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    step_size: float = 1.0
    vf_clip: float = 0.2
    max_grad_norm: float = 0.5


MDPOHParams.rules = {
    "vf_lr": at_least(0),
    "step_size": above(0, " (the KL weight is 1/t_k)"),
    "vf_clip": above(0),
}


@struct.dataclass
class MDPOBatch:
    """Flattened samples ``[N, ...]``; ``old_dist`` holds ``π_θk``'s parameters per state (logits, or mean and
    log-std), for the closed-form KL."""

    obs: Array
    action: Array
    log_prob: Array
    value: Array
    advantages: Array
    targets: Array
    old_dist: dict[str, Array]


def distribution_params(dist: Any, kind: str) -> dict[str, Array]:
    """The parameters of a policy distribution that :func:`closed_form_kl` needs."""
    if kind == "continuous":
        return {"mean": dist.loc, "log_std": jnp.log(dist.scale_diag)}
    if kind == "multi_discrete":
        return {"logits": dist.distribution.logits}
    return {"logits": dist.logits}


def closed_form_kl(new: dict[str, Array], old: dict[str, Array], kind: str) -> Array:
    """``KL(π_new ‖ π_old)`` per state ``[N]`` from :func:`distribution_params` of both."""
    if kind == "continuous":
        return diag_gaussian_kl(new["mean"], new["log_std"], old["mean"], old["log_std"])
    kl = categorical_kl(new["logits"], old["logits"])
    return jnp.sum(kl, axis=-1) if kind == "multi_discrete" else kl


def mdpo_policy_loss(model: Any, batch: MDPOBatch, step_size: Array, kind: str) -> tuple[Array, dict[str, Array]]:
    """``mean(−ρ Â) + (1/t_k) mean(KL(π_θ ‖ π_θk))`` on one (mini)batch (advantages already standardized)."""
    dist = model.distribution(batch.obs)
    log_prob = dist.log_prob(batch.action)
    kl = closed_form_kl(distribution_params(dist, kind), batch.old_dist, kind)
    loss = masked_mean(mdpo_on_loss(log_prob, batch.log_prob, batch.advantages, kl, step_size))
    aux = {
        "policy_loss": masked_mean(-jnp.exp(log_prob - batch.log_prob) * batch.advantages),
        "kl": masked_mean(kl),
        "approx_kl": masked_mean(sample_kl(log_prob - batch.log_prob, "k3")),
        "entropy": masked_mean(dist.entropy()),
    }
    return loss, aux


def mdpo_value_loss(model: Any, batch: MDPOBatch, vf_clip: Array, clip: bool) -> tuple[Array, dict[str, Array]]:
    """``mean ½ max((V − R)², (V_old + clip(V − V_old, ±ε) − R)²)`` (clipped, spec §2.1) or ``mean ½ (V − R)²``."""
    values = model.value(batch.obs)
    loss = masked_mean(value_loss(values, batch.targets, batch.value if clip else None, vf_clip))
    return loss, {"value_loss": loss}


def make_train(config: MDPOConfig, env: Any, env_params: Any) -> Trainer:
    """Build the on-policy MDPO :class:`~purejaxpo.types.Trainer`; raises ``ValueError`` on bad settings.

    The state is :class:`common.OnPolicyState` with ``opt_state = (policy Adam, value Adam)``: two optimizers
    over the whole parameter tree; each loss has exactly zero gradient on the other head's parameters
    (separate torsos), so each Adam moves only its own part.
    """
    num_updates = config.num_updates
    spec = common.policy_spec(env, env_params)
    common.check_action_settings(config, spec)
    graphdef, _ = nnx.split(common.build_actor_critic(config, spec, jax.random.key(0)))

    def init(key: Array, hp: MDPOHParams) -> common.OnPolicyState:
        net_key, key = jax.random.split(key)
        _, params = nnx.split(common.build_actor_critic(config, spec, net_key))
        opt_state = (
            adam_with_clipping(hp.lr, hp.max_grad_norm).init(params),
            adam_with_clipping(hp.vf_lr, hp.max_grad_norm).init(params),
        )
        return common.init_state(env, env_params, config, spec, params, opt_state, key)

    def update(state: common.OnPolicyState, hp: MDPOHParams) -> tuple[common.OnPolicyState, dict[str, Array]]:
        key, rollout_key, policy_key, value_key = jax.random.split(state.key, 4)
        model = nnx.merge(graphdef, state.params)
        exp = common.collect_experience(env, env_params, config, spec, state, model, rollout_key, hp.gamma, hp.gae_lambda)
        trajectory = exp.trajectory
        obs = common.observe_fn(config, state.obs_norm)(trajectory.obs)
        advantages = normalize(exp.advantages) if config.normalize_advantages else exp.advantages
        old_dist = distribution_params(model.distribution(obs), spec.kind)  # π_θk, fixed for the iteration
        batch = flatten_time_and_batch(
            MDPOBatch(obs, trajectory.action, trajectory.log_prob, trajectory.value, advantages, exp.targets, old_dist)
        )
        if config.anneal_step_size:
            step_size = mdpo_step_size(state.update_index, config.horizon, hp.step_size)
        else:
            step_size = jnp.asarray(hp.step_size, jnp.float32)
        lr = linear_annealing(hp.lr, state.update_index, num_updates, config.anneal_lr)
        vf_lr = linear_annealing(hp.vf_lr, state.update_index, num_updates, config.anneal_lr)
        policy_opt, value_opt = state.opt_state

        policy_fn = lambda params, mb: mdpo_policy_loss(nnx.merge(graphdef, params), mb, step_size, spec.kind)
        params, policy_opt, policy_metrics = update_epochs(
            policy_key, state.params, policy_opt, batch, policy_fn, adam_with_clipping(lr, hp.max_grad_norm),
            config.sgd_steps, config.num_minibatches,
        )
        value_fn = lambda params, mb: mdpo_value_loss(nnx.merge(graphdef, params), mb, hp.vf_clip, config.clip_value)
        params, value_opt, value_metrics = update_epochs(
            value_key, params, value_opt, batch, value_fn, adam_with_clipping(vf_lr, hp.max_grad_norm),
            config.vf_epochs, config.vf_minibatches,
        )
        new_state = state.replace(
            params=params, opt_state=(policy_opt, value_opt), obs_norm=exp.obs_norm, reward_scaler=exp.reward_scaler,
            env=exp.env, key=key, update_index=state.update_index + 1,
        )
        metrics = {
            **common.episode_metrics(exp.stats),
            "loss": policy_metrics["loss"],
            "policy_loss": policy_metrics["policy_loss"],
            "kl": policy_metrics["kl"],
            "approx_kl": policy_metrics["approx_kl"],
            "entropy": policy_metrics["entropy"],
            "grad_norm": policy_metrics["grad_norm"],
            "value_loss": value_metrics["value_loss"],
            "nonfinite_steps": policy_metrics["nonfinite"] + value_metrics["nonfinite"],
            "explained_variance": explained_variance(trajectory.value, exp.targets),
            "step_size": step_size,
            "learning_rate": lr,
            "env_steps": (state.update_index + 1).astype(jnp.float32) * config.batch_size,
        }
        return new_state, metrics

    return Trainer(init, update, scan_train(init, update, num_updates), common.act_fn(config, spec, graphdef), config, env, env_params, type(config).algorithm_name)


__all__ = [
    "MDPOBatch", "MDPOConfig", "MDPOHParams", "closed_form_kl", "distribution_params", "make_train",
    "mdpo_policy_loss", "mdpo_value_loss",
]
