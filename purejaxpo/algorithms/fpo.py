"""FPO, flow policy optimization (McAllister, Ge, Yi, Kanazawa et al., "Flow Matching Policy Gradients",
arXiv:2507.21053): the flow baseline PolicyFlow compares with, declared on the engine. Losses and defaults follow
the official JAX code (github.com/akanazawa/fpo @ 418c255, ``playground/src/flow_policy/fpo.py`` [C]).

One update:

1. Rollout with θ_old: ``x ~ N(0, I)`` at t = 1, ``K`` Euler steps of the velocity net down to the action ``a``
   at t = 0 (:func:`~purejaxpo.primitives.flows.euler_sample`); then ``N`` pairs ``(ε_i, t_i)``, ``ε_i ~ N(0, I)``,
   ``t_i`` uniform over the K schedule start times ``{1, 1 − 1/K, …, 1/K}``, and their CFM losses under θ_old,
   ``ℓ_old,i``. ``Trajectory.action`` holds ``concat[a, ε (N·D), t (N), ℓ_old (N)]``; the env gets ``a``
   (through ``action_bounds``).
2. GAE once per update with the rollout critic (engine standard; the official code recomputes it in every
   minibatch with the current critic, Brax style [P]).
3. ``update_epochs × num_minibatches`` steps of Adam (no gradient clipping [C]) on
   ``L = −mean(min(ρ Â, clip(ρ, 1 ± ε) Â)) + c_V mean((R − V)²)`` with ``ρ = exp(mean_i ℓ_old,i − mean_i ℓ_θ,i)``
   (:func:`~purejaxpo.primitives.flows.fpo_log_ratio`), advantages normalized per minibatch, no entropy term [C].
   The official code does not train the critic on truncated steps (its targets there are not bootstrapped);
   ours bootstrap truncation with ``V(final_obs)``, so every step trains the critic [P].
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx, struct

from purejaxpo import engine
from purejaxpo.engine import RolloutBudget, require_positive_ints, validate_config
from purejaxpo.networks.distributions import env_action
from purejaxpo.networks.flow_policy import CFMFlowPolicy
from purejaxpo.primitives import flows
from purejaxpo.primitives.advantages import explained_variance, masked_mean, normalize
from purejaxpo.primitives.losses import clip_fraction, clipped_surrogate, sample_kl
from purejaxpo.spaces import policy_spec
from purejaxpo.types import CheckedHParams, Trainer, above

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class FPOConfig(RolloutBudget):
    """Static settings. Flow and network defaults are the official ones [C]; the batch layout is CPU-scale
    (official: 2048 envs × 30 steps, 32 minibatches, 16 passes).

    Fields:
        critic_hidden_sizes: widths of the critic
        num_flow_steps: K Euler steps of the flow when sampling an action
        num_samples: N (ε, t) pairs per action in the CFM-loss ratio
        output_scale: scale of the velocity net's output
        time_embed_dim: width of the flow-time embedding (even)
        cfm_mode: what the conditional flow-matching loss supervises
        average_losses_before_exp: average the N CFM losses before the exponential of the ratio (else after)
    """

    algorithm_name: ClassVar[str] = "fpo"
    choices: ClassVar[dict[str, Any]] = {"cfm_mode": flows.CFM_MODES}

    num_envs: int = 64
    num_steps: int = 32
    total_timesteps: int = 1_048_576
    update_epochs: int = 16
    num_minibatches: int = 4
    hidden_sizes: tuple[int, ...] = (32, 32, 32, 32)
    critic_hidden_sizes: tuple[int, ...] = (256, 256, 256, 256, 256)
    activation: str = "silu"
    num_flow_steps: int = 10
    num_samples: int = 8
    output_scale: float = 0.25
    time_embed_dim: int = 8
    cfm_mode: str = "u_but_supervise_as_eps"
    average_losses_before_exp: bool = True
    action_bounds: str = "clip"
    normalize_advantages: bool = True
    normalize_obs: bool = True
    normalize_rewards: bool = False

    def __post_init__(self) -> None:
        validate_config(self)
        require_positive_ints(self, ("num_flow_steps", "num_samples", "time_embed_dim"))
        if self.time_embed_dim % 2:
            raise ValueError(f"FPOConfig.time_embed_dim must be even, got {self.time_embed_dim}")
        if self.action_bounds is None:
            raise ValueError("FPOConfig.action_bounds must be 'clip', 'tanh' or 'none', got None")
        if self.output_scale <= 0:
            raise ValueError(f"FPOConfig.output_scale must be > 0, got {self.output_scale}")


@struct.dataclass
class FPOHParams(CheckedHParams):
    """Traced hyperparameters: the official values [C] (γ 0.995 there, for 1000-step MuJoCo episodes; 0.99 here)."""

    lr: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.05
    vf_coef: float = 0.25


FPOHParams.rules = {"vf_coef": above(0)}


@struct.dataclass
class FPOBatch:
    """Training samples ``[T, B, ...]``: action, its (ε, t) pairs and their CFM losses under θ_old."""

    obs: Array
    action: Array
    eps: Array  # [..., N, D]
    t: Array  # [..., N]
    loss_old: Array  # [..., N]
    advantages: Array
    targets: Array


def pair_losses(model: CFMFlowPolicy, obs: Array, action: Array, eps: Array, t: Array, mode: str) -> Array:
    """CFM losses ``[..., N]`` of ``(obs [..., O], action [..., D])`` at the pairs ``eps [..., N, D]``, ``t [..., N]``."""
    x_t = flows.cfm_interpolate(action, eps, t)
    velocity = model.velocity(obs[..., None, :], x_t, t)
    return flows.cfm_loss(velocity, x_t, eps, action, t, mode)


def fpo_loss(model: CFMFlowPolicy, batch: FPOBatch, hp: FPOHParams, config: FPOConfig) -> tuple[Array, dict[str, Array]]:
    """The FPO loss on one minibatch (module doc, step 3)."""
    loss_new = pair_losses(model, batch.obs, batch.action, batch.eps, batch.t, config.cfm_mode)
    log_ratio = flows.fpo_log_ratio(batch.loss_old, loss_new, config.average_losses_before_exp)
    advantages = normalize(batch.advantages) if config.normalize_advantages else batch.advantages
    if not config.average_losses_before_exp:
        advantages = advantages[..., None]  # one ratio per (ε, t) pair, all in the mean [C]
    policy_loss = jnp.mean(clipped_surrogate(log_ratio, advantages, hp.clip_eps))
    v_loss = masked_mean(jnp.square(batch.targets - model.value(batch.obs)))
    aux = {"policy_loss": policy_loss, "value_loss": v_loss, "cfm_loss": jnp.mean(loss_new),
           "approx_kl": jnp.mean(sample_kl(log_ratio, "k3")), "clip_fraction": jnp.mean(clip_fraction(log_ratio, hp.clip_eps))}
    return policy_loss + hp.vf_coef * v_loss, aux


def make_train(config: FPOConfig, env: Any, env_params: Any) -> Trainer:
    """Build the FPO :class:`~purejaxpo.types.Trainer`; ``ValueError`` for non-continuous actions or non-flat
    observations (raised here, before anything compiles)."""
    spec = policy_spec(env, env_params)
    if spec.kind != "continuous":
        raise ValueError(f"fpo needs continuous (Box) actions; this env's action space is {spec.kind}")
    if len(spec.obs_shape) != 1:
        raise ValueError(f"fpo needs flat (vector) observations; this env's are {spec.obs_shape}")
    dim, num = spec.action_dim, config.num_samples
    to_env = lambda action: env_action(spec, action, config.action_bounds)
    t_choices, _ = flows.fpo_schedule(config.num_flow_steps)

    def network(key: Array) -> CFMFlowPolicy:
        return CFMFlowPolicy(spec.obs_shape[0], dim, hidden_sizes=config.hidden_sizes,
                             critic_hidden_sizes=config.critic_hidden_sizes, activation=config.activation,
                             output_scale=config.output_scale, time_embed_dim=config.time_embed_dim,
                             num_flow_steps=config.num_flow_steps, rngs=nnx.Rngs(params=key))

    def policy_step(model: CFMFlowPolicy, obs: Array, key: Array) -> tuple[Array, Array, Array, Array]:
        noise_key, eps_key, t_key = jax.random.split(key, 3)
        batch = obs.shape[:-1]
        action = model.sample(obs, jax.random.normal(noise_key, batch + (dim,)))
        eps = jax.random.normal(eps_key, batch + (num, dim))
        t = t_choices[jax.random.randint(t_key, batch + (num,), 0, config.num_flow_steps)]
        loss_old = pair_losses(model, obs, action, eps, t, config.cfm_mode)
        raw = jnp.concatenate([action, eps.reshape(batch + (num * dim,)), t, loss_old], axis=-1)
        # the "log-prob" slot holds −mean CFM loss, a surrogate log-likelihood (only logged)
        return raw, to_env(action), -jnp.mean(loss_old, axis=-1), model.value(obs)

    def prepare(exp: engine.Experience, ctx: engine.UpdateContext) -> engine.Prepared:
        advantages, targets = engine.gae_of(exp, ctx.hp.gamma, ctx.hp.gae_lambda)
        raw = exp.trajectory.action
        lead = raw.shape[:-1]
        eps = raw[..., dim : dim + num * dim].reshape(lead + (num, dim))
        t, loss_old = raw[..., dim + num * dim : dim + num * dim + num], raw[..., dim + num * dim + num :]
        batch = FPOBatch(ctx.observe(exp.trajectory.obs), raw[..., :dim], eps, t, loss_old, advantages, targets)
        return engine.Prepared(batch, None, {"explained_variance": explained_variance(exp.trajectory.value, targets)})

    def act(model: CFMFlowPolicy, obs: Array, key: Array, deterministic: bool) -> Array:
        """A flow sample; deterministic: the flow of zero noise (our choice [P])."""
        noise = jnp.zeros(obs.shape[:-1] + (dim,)) if deterministic else jax.random.normal(key, obs.shape[:-1] + (dim,))
        return to_env(model.sample(obs, noise))

    phase = engine.Phase(
        loss=lambda m, mb, ctx: fpo_loss(m, mb, ctx.hp, config),
        optimizer=engine.adam(eps=1e-8),  # optax.scale_by_adam × lr, no clipping [C]
        epochs=config.update_epochs,
        minibatches=config.num_minibatches,
        hyperparams=lambda hp, i: {"learning_rate": hp.lr},
    )
    parts = engine.OnPolicyParts(network=network, policy_step=policy_step, value=engine.critic_value, prepare=prepare,
                                 phases=(phase,), act=act)
    return engine.build(parts, config, env, env_params)


__all__ = ["FPOBatch", "FPOConfig", "FPOHParams", "fpo_loss", "make_train", "pair_losses"]
