"""Gaussian PPO as PolicyFlow's repository sets up its PPO baseline (Yang, Liu & Chen, arXiv:2602.01156; fork
github.com/HarriWxy/PolicyFlow_srb @ 1e20dab, ``scripts/multigoal/cli_args.py`` and ``agents/ppo/config.py``),
declared on the engine with PolicyFlow's optimizer and schedule so the two differ only in the policy.

Confirmed from the config [C]: lr 2e-4 with ``desired_kl`` 0.01, γ 0.99, λ 0.95, 5 epochs × 4 minibatches, ratio
clip 0.2, value clip 0.2, value coefficient 1.0, grad-norm clip 1.0, entropy 1e-3, actor and critic
[256, 128, 64] Mish, log-std initialised at 0 (``std_init`` 1.0). Not confirmed (the PPO agent file was not
readable) and taken from PolicyFlow's agent [P]: AdamW (weight decay 1e-5) over actor and critic, the
KL-adaptive rule on the running mean of ``KL(π_old ‖ π_θ)`` over the update's epochs
(:mod:`purejaxpo.primitives.kl_adaptive`), direct value clipping ``(R − V_old − clip(V − V_old, ±ε_V))²`` and
advantages normalized over the whole rollout. The reference clamps the log-std to [−20, 4]; ours is unclamped.

``action_bounds="none"`` gives the env the raw sampled action (the reference's MultiGoal charges its cost on it).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from purejaxpo import engine
from purejaxpo.engine import RolloutBudget, set_hyperparams, validate_config
from purejaxpo.networks.actor_critic import actor_critic_for
from purejaxpo.networks.distributions import env_action
from purejaxpo.primitives.advantages import explained_variance, masked_mean, normalize
from purejaxpo.primitives.kl_adaptive import adapt_lr_on_running_kl, running_kl_init
from purejaxpo.primitives.losses import clip_fraction, clipped_surrogate, sample_kl
from purejaxpo.spaces import policy_spec
from purejaxpo.types import KL_ADAPTIVE_LR_RULES, CheckedHParams, Trainer

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class GaussianPPOConfig(RolloutBudget):
    """Static settings (module doc); the batch is CPU-scale (the reference: 4096 envs × 32 steps).

    Fields:
        kl_adaptive_lr: adapt the learning rate per epoch from the running-mean KL (off = constant ``hp.lr``)
    """

    algorithm_name: ClassVar[str] = "gaussian_ppo"

    num_envs: int = 64
    num_steps: int = 32
    total_timesteps: int = 1_048_576
    update_epochs: int = 5
    num_minibatches: int = 4
    hidden_sizes: tuple[int, ...] = (256, 128, 64)
    activation: str = "mish"
    init_log_std: float = 0.0
    action_bounds: str = "clip"
    kl_adaptive_lr: bool = True
    normalize_advantages: bool = True
    normalize_obs: bool = False
    normalize_rewards: bool = False

    def __post_init__(self) -> None:
        validate_config(self)
        if self.action_bounds is None:
            raise ValueError("GaussianPPOConfig.action_bounds must be 'clip', 'tanh' or 'none', got None")


@struct.dataclass
class GaussianPPOHParams(CheckedHParams):
    """Traced hyperparameters (the reference's MultiGoal values; KL-rule factor and clamps SKRL's [P]).

    Fields:
        lr: learning rate (the initial one with kl_adaptive_lr)
        value_clip_eps: clip range of the clipped value loss
        weight_decay: AdamW weight decay
        desired_kl: KL target of the adaptive learning rate
        lr_factor: factor the adaptive rule multiplies or divides the learning rate by
        min_lr: lower clamp of the adaptive learning rate
        max_lr: upper clamp of the adaptive learning rate
    """

    lr: float = 2e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    value_clip_eps: float = 0.2
    vf_coef: float = 1.0
    ent_coef: float = 1e-3
    max_grad_norm: float = 1.0
    weight_decay: float = 1e-5
    desired_kl: float = 0.01
    lr_factor: float = 1.5
    min_lr: float = 1e-6
    max_lr: float = 1e-2


GaussianPPOHParams.rules = KL_ADAPTIVE_LR_RULES


@struct.dataclass
class GaussianBatch:
    """Training samples ``[T, B, ...]``."""

    obs: Array
    action: Array
    log_prob: Array
    value: Array
    advantages: Array
    targets: Array


def gaussian_ppo_loss(model: Any, old_model: Any, batch: GaussianBatch, hp: GaussianPPOHParams) -> tuple[Array, dict[str, Array]]:
    """``L = L_clip − c_H H + c_V mean((R − V_old − clip(V − V_old, ±ε_V))²)`` on one minibatch; reports
    ``kl = KL(π_old ‖ π_θ)`` (analytic, the KL-adaptive rule's input)."""
    dist, values = model(batch.obs)
    log_ratio = dist.log_prob(batch.action) - batch.log_prob
    policy_loss = masked_mean(clipped_surrogate(log_ratio, batch.advantages, hp.clip_eps))
    clipped_values = batch.value + jnp.clip(values - batch.value, -hp.value_clip_eps, hp.value_clip_eps)
    v_loss = masked_mean(jnp.square(batch.targets - clipped_values))
    entropy = masked_mean(dist.entropy())
    loss = policy_loss - hp.ent_coef * entropy + hp.vf_coef * v_loss
    kl = old_model.distribution(batch.obs).kl_divergence(jax.lax.stop_gradient(dist))
    aux = {
        "policy_loss": policy_loss, "value_loss": v_loss, "entropy": entropy, "kl": masked_mean(kl),
        "approx_kl": masked_mean(sample_kl(log_ratio, "k3")),
        "clip_fraction": masked_mean(clip_fraction(log_ratio, hp.clip_eps)),
    }
    return loss, aux


def make_train(config: GaussianPPOConfig, env: Any, env_params: Any) -> Trainer:
    """Build the :class:`~purejaxpo.types.Trainer`; ``ValueError`` for non-continuous actions (before compiling)."""
    spec = policy_spec(env, env_params)
    if spec.kind != "continuous":
        raise ValueError(f"gaussian_ppo needs continuous (Box) actions; this env's action space is {spec.kind}")
    to_env = lambda raw: env_action(spec, raw, config.action_bounds)

    def prepare(exp: engine.Experience, ctx: engine.UpdateContext) -> engine.Prepared:
        advantages, targets = engine.gae_of(exp, ctx.hp.gamma, ctx.hp.gae_lambda)
        if config.normalize_advantages:
            advantages = normalize(advantages)  # over the whole rollout, as PolicyFlow's agent [P]
        traj = exp.trajectory
        batch = GaussianBatch(ctx.observe(traj.obs), traj.action, traj.log_prob, traj.value, advantages, targets)
        metrics = {"explained_variance": explained_variance(traj.value, targets),
                   "policy_std": jnp.mean(jnp.exp(ctx.model.log_std[...]))}
        return engine.Prepared(batch, running_kl_init(), metrics)

    def adapt_lr(carried: Any, opt_state: Any, epoch: dict[str, Array], hp: GaussianPPOHParams) -> tuple[Any, Any]:
        carried, lr = adapt_lr_on_running_kl(carried, opt_state.hyperparams["learning_rate"], epoch["kl"], hp)
        return carried, set_hyperparams(opt_state, learning_rate=lr)

    phase = engine.Phase(
        loss=lambda m, mb, ctx: gaussian_ppo_loss(m, ctx.old_model, mb, ctx.hp),
        optimizer=engine.adamw_with_clipping(),
        epochs=config.update_epochs,
        minibatches=config.num_minibatches,
        hyperparams=lambda hp, i: {"learning_rate": hp.lr, "max_grad_norm": hp.max_grad_norm, "weight_decay": hp.weight_decay},
        adaptive=("learning_rate",) if config.kl_adaptive_lr else (),
        per_epoch=adapt_lr if config.kl_adaptive_lr else None,
    )
    parts = engine.OnPolicyParts(
        network=lambda key: actor_critic_for(config, spec, key),
        policy_step=engine.actor_critic_step(to_env),
        value=engine.critic_value,
        prepare=prepare,
        phases=(phase,),
        init_carried=lambda params, hp: running_kl_init(),
    )
    return engine.build(parts, config, env, env_params, to_env)


__all__ = ["GaussianBatch", "GaussianPPOConfig", "GaussianPPOHParams", "gaussian_ppo_loss", "make_train"]
