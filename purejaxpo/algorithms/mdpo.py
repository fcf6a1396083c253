"""On-policy Mirror Descent Policy Optimization (Tomar et al., ICLR 2022, arXiv:2005.09814) as a pure,
jittable trainer; the off-policy variant is :mod:`.mdpo_off`.

Iteration ``k`` approximately solves the mirror-descent subproblem with ``m = sgd_steps`` Adam passes over the
rollout, all starting from ``θ_k`` (no clipping, no line search)::

    θ_{k+1} ≈ argmin_θ  mean[ −ρ_θ Â ] + (1/t_k) · mean_s[ KL(π_θ(·|s) ‖ π_θk(·|s)) ],   ρ_θ = π_θ / π_θk
    t_k = t0 · (1 − k/K)       (K = anneal_horizon, default the number of updates)

The KL is in closed form (diagonal Gaussian or categorical, current policy first [C]); advantages are GAE,
standardized over the whole batch [C]. The critic is trained *after* the policy steps, with its own Adam,
``vf_epochs × vf_minibatches`` steps of the (optionally clipped) value loss on the TD(λ) targets [C]. The
paper's defaults (``num_minibatches = 1``: full-batch steps) are kept; ``num_minibatches > 1`` splits each
of the ``m`` passes into minibatch steps (PureJaxRL-style vectorized rollouts) [P].

``sgd_steps = 1`` with ``num_minibatches = 1`` is one vanilla policy-gradient step (at ``θ = θ_k`` the KL term
has zero gradient and ``ρ = 1``); a test checks it.

The released code (``mdpo_on/mdpo.py`` @c9bd3ba, the repository's HEAD) [C], reproduced by :func:`reference_settings`:
1 env × 2048 steps, ``m = 10`` full-batch Adam steps (lr 3e-4, eps 1e-5, clip 0.5), then 5 value epochs × 16
minibatches (clipped value loss, lr 3e-4), GAE(0.99, 0.95) standardized per batch, no entropy bonus, observation
and reward normalization, 64-64 tanh. Its ``learn(total_timesteps=10e6)`` is hard-coded, so the step-size
horizon is ``K = int(10e6 / 2048) = 4882`` whatever the run length (``anneal_horizon=REFERENCE_ANNEAL_HORIZON``;
at 1M steps the KL weight only reaches ``1/t ≈ 1.11``); its ``t_k = 1 − (k' − 1)/K`` starts at ``1 + 1/K`` (off by
``1/K`` from ours, not reproduced). The log-probabilities are *not* halved: ``0.5·log p`` appears only in the
first commit's Tsallis ``q``-log helper, which the default ``q = 1`` never used, and was removed afterwards, so a
``log_prob_scale = 0.5`` option would reproduce no released configuration and there is none.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx, struct

from purejaxpo import engine
from purejaxpo.engine import RolloutBudget, require_positive_ints, validate_config
from purejaxpo.networks.actor_critic import actor_critic_for
from purejaxpo.networks.distributions import env_action, from_parameters, parameters
from purejaxpo.primitives.advantages import explained_variance, masked_mean, normalize
from purejaxpo.primitives.losses import sample_kl, value_loss
from purejaxpo.primitives.mdpo import mdpo_on_loss, mdpo_step_size
from purejaxpo.spaces import policy_spec
from purejaxpo.types import CheckedHParams, Trainer, above, at_least

Array = jax.Array
REFERENCE_ANNEAL_HORIZON = 4882  # int(10e6 / 2048): the released code's hard-coded 10M-step horizon


@dataclasses.dataclass(frozen=True)
class MDPOConfig(RolloutBudget):
    """Static settings (shapes, loop counts, flags).

    ``sgd_steps`` is ``m``: passes over the rollout per iteration, each of ``num_minibatches`` Adam steps
    (``1`` = the paper's full-batch steps). ``anneal_horizon`` is ``K`` of ``t_k = t0(1 − k/K)``; ``None`` means
    the run's number of updates (the released code's ``total_timesteps / timesteps_per_batch``). With
    ``anneal_step_size=False`` the step size stays ``t0``. ``action_bounds``/``init_log_std``: continuous only.

    Fields:
        sgd_steps: policy passes over the rollout per iteration (m)
        num_minibatches: Adam steps per policy pass (1 = the paper's full batch)
        vf_epochs: critic epochs per iteration
        vf_minibatches: critic minibatches per epoch
        anneal_horizon: K of t_k = t0 (1 − k/K) (None = the run's number of updates)
        anneal_step_size: anneal the step size t_k (off: constant t0)
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
        require_positive_ints(self, ("sgd_steps", "vf_epochs", "vf_minibatches"))
        validate_config(self)
        if self.anneal_horizon is not None:
            require_positive_ints(self, ("anneal_horizon",))
        if self.batch_size % self.vf_minibatches:
            raise ValueError(
                f"num_envs × num_steps = {self.batch_size} does not divide into vf_minibatches={self.vf_minibatches}"
            )

    @property
    def update_epochs(self) -> int:
        """Policy passes per iteration (``m``), under the name :func:`~purejaxpo.engine.check_batch_layout` reads."""
        return self.sgd_steps

    @property
    def horizon(self) -> int:
        """``K`` of the step-size schedule."""
        return self.num_updates if self.anneal_horizon is None else self.anneal_horizon


@struct.dataclass
class MDPOHParams(CheckedHParams):
    """Traced hyperparameters (defaults; ``step_size`` is ``t0``, 1 in the paper).

    Fields:
        lr: actor learning rate
        vf_lr: critic learning rate
        step_size: t0, the initial mirror-descent step size (the KL weighs 1/t_k)
        vf_clip: clip range of the clipped value loss
    """

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
    """Training samples ``[T, B, ...]``; ``old_dist`` holds ``π_θk``'s parameters per state
    (:func:`~purejaxpo.networks.distributions.parameters`: logits, or mean and scale), for the closed-form KL."""

    obs: Array
    action: Array
    log_prob: Array
    value: Array
    advantages: Array
    targets: Array
    old_dist: dict[str, Array]


def step_size(config: MDPOConfig, hp: MDPOHParams, update_index: Array) -> Array:
    """``t_k = t0 (1 − k/K)`` (:func:`~purejaxpo.primitives.mdpo.mdpo_step_size`), or ``t0`` without annealing."""
    if config.anneal_step_size:
        return mdpo_step_size(update_index, config.horizon, hp.step_size)
    return jnp.asarray(hp.step_size, jnp.float32)


def mdpo_policy_loss(model: Any, batch: MDPOBatch, step_size: Array, kind: str) -> tuple[Array, dict[str, Array]]:
    """``mean(−ρ Â) + (1/t_k) mean(KL(π_θ ‖ π_θk))`` on one (mini)batch (advantages already standardized); the
    KL is distrax's closed form, current policy first [C]."""
    dist = model.distribution(batch.obs)
    log_prob = dist.log_prob(batch.action)
    kl = dist.kl_divergence(from_parameters(kind, batch.old_dist))
    loss = masked_mean(mdpo_on_loss(log_prob, batch.log_prob, batch.advantages, kl, step_size))
    aux = {
        "policy_loss": masked_mean(-jnp.exp(log_prob - batch.log_prob) * batch.advantages),
        "kl": masked_mean(kl),
        "approx_kl": masked_mean(sample_kl(log_prob - batch.log_prob, "k3")),
        "entropy": masked_mean(dist.entropy()),
    }
    return loss, aux


def mdpo_value_loss(model: Any, batch: MDPOBatch, vf_clip: Array, clip: bool) -> tuple[Array, dict[str, Array]]:
    """``mean ½ max((V − R)², (V_old + clip(V − V_old, ±ε) − R)²)`` (clipped) or ``mean ½ (V − R)²``."""
    values = model.value(batch.obs)
    loss = masked_mean(value_loss(values, batch.targets, batch.value if clip else None, vf_clip))
    return loss, {"value_loss": loss}


def make_train(config: MDPOConfig, env: Any, env_params: Any) -> Trainer:
    """Build the on-policy MDPO :class:`~purejaxpo.types.Trainer`; raises ``ValueError`` on bad settings.

    Two phases, two Adams over the whole parameter tree (``state.opt_state = (policy, value)``): each loss has
    exactly zero gradient on the other head's parameters (separate torsos), so each Adam moves only its part.
    """
    spec = policy_spec(env, env_params)
    engine.check_action_settings(config, spec)
    to_env = lambda raw: env_action(spec, raw, config.action_bounds)

    def prepare(exp: engine.Experience, ctx: engine.UpdateContext) -> engine.Prepared:
        advantages, targets = engine.gae_of(exp, ctx.hp.gamma, ctx.hp.gae_lambda)
        traj = exp.trajectory
        obs = ctx.observe(traj.obs)
        advantages = normalize(advantages) if config.normalize_advantages else advantages
        old_dist = parameters(ctx.model.distribution(obs))  # π_θk, fixed for the iteration
        batch = MDPOBatch(obs, traj.action, traj.log_prob, traj.value, advantages, targets, old_dist)
        metrics = {"explained_variance": explained_variance(traj.value, targets),
                   "step_size": step_size(config, ctx.hp, ctx.update_index)}
        return engine.Prepared(batch, None, metrics)

    policy = engine.adam_phase(
        lambda m, mb, ctx: mdpo_policy_loss(m, mb, step_size(config, ctx.hp, ctx.update_index), spec.kind), config,
        epochs=config.sgd_steps, metrics=("loss", "policy_loss", "kl", "approx_kl", "entropy", "grad_norm"),
    )
    value = engine.adam_phase(
        lambda m, mb, ctx: mdpo_value_loss(m, mb, ctx.hp.vf_clip, config.clip_value), config, lr="vf_lr",
        epochs=config.vf_epochs, minibatches=config.vf_minibatches, metrics=("value_loss",),
    )
    parts = engine.OnPolicyParts(
        network=lambda key: actor_critic_for(config, spec, key),
        policy_step=engine.actor_critic_step(to_env),
        value=engine.critic_value,
        prepare=prepare,
        phases=(policy, value),
    )
    return engine.build(parts, config, env, env_params, to_env)


def reference_settings(**config_overrides: Any) -> tuple[MDPOConfig, MDPOHParams]:
    """``(config, hparams)`` of the released on-policy code (module docstring): our defaults plus the fixed
    horizon ``anneal_horizon = REFERENCE_ANNEAL_HORIZON``; ``config_overrides`` replace config fields."""
    config = MDPOConfig(num_envs=1, num_steps=2048, sgd_steps=10, num_minibatches=1, vf_epochs=5, vf_minibatches=16,
                        anneal_horizon=REFERENCE_ANNEAL_HORIZON)
    return dataclasses.replace(config, **config_overrides), MDPOHParams()


__all__ = ["MDPOBatch", "MDPOConfig", "MDPOHParams", "REFERENCE_ANNEAL_HORIZON", "make_train", "mdpo_policy_loss",
           "mdpo_value_loss", "reference_settings", "step_size"]
