"""Post-Decision PPO with dual critics (PDPPO; Felizardo et al. 2025, arXiv:2504.05150) as a pure trainer.

PDPPO is clipped PPO for MDPs whose step splits into a deterministic part ``s^x_t = f(s_t, a_t)`` (the
*post-decision state*, reward ``r^x_t``) and a stochastic part ``s_{t+1} = g(s^x_t, ξ_{t+1})``. It trains two
critics, each on its own part of the reward (spec ``pdppo.md`` §2, reference code ``PDPPO.py`` @bf3f368 [C])::

    r^pre_t = r_t − r^x_t                                  (the noise-dependent part)
    R_t   = r^pre_t + γ (1 − d_t) R_{t+1},   A^pre_t = R_t   − V_φ(s_t)
    R^x_t = r^x_t   + γ (1 − d_t) R^x_{t+1}, A^x_t   = R^x_t − V_ψ(s^x_t)
    A_t   = max(A^pre_t, A^x_t)                                       (element-wise)
    L_π   = mean_{t,m}[ −min(ρ_{t,m} A_t, clip(ρ_{t,m}, 1 ± ε) A_t) ] − c_H · mean_{t,m} H[π_m(·|s_t)]
    L_V   = mean_t (V_φ(s_t) − R_t)²,   L_Vx = mean_t (V_ψ(s^x_t) − R^x_t)²

with ``ρ_{t,m}`` the ratio of sub-action ``m`` (one categorical per machine for MultiDiscrete actions; the
scalar advantage is broadcast over ``m``), and one Adam optimizer per network (actor, V_φ, V_ψ)::

    env, env_params = purejaxpo.make_env("LotSizing-v0")
    trainer = pdppo.make_train(pdppo.PDPPOConfig(), env, env_params)
    state, metrics = jax.jit(jax.vmap(trainer.train, in_axes=(0, None)))(keys, pdppo.PDPPOHParams())

The env must expose the pure ``post_decision(state, action, params) -> (post_obs, post_reward)``. Its result is
read from ``info["post_obs"]``/``info["post_reward"]`` of the ordinary step when the env reports them there (our
``LotSizing`` and ``FrozenLakeStochastic`` do); otherwise the trainer evaluates ``post_decision`` on the pre-step
state inside the rollout. Either way the env is stepped once per transition.

Variants (all [P] where the spec marks them so; the defaults are the paper's final code):

- ``target_mode="monte_carlo"`` (paper): discounted returns of the buffer, reset at episode ends, no bootstrap
  at the buffer end; exact when episodes align with the buffer (lot sizing: 4 envs × 100 steps = 4 episodes,
  as the reference's "update every 4 episodes"). ``"gae"`` [P, our extension]: GAE(λ) per critic,
  see :func:`critic_targets`.
- ``advantage_combiner``: ``"max"`` (paper), ``"pre_only"`` (``A = A^pre``), ``"post_only"`` (``A = A^x``),
  ``"min_value"`` (the older ``PDPPO.py`` @a760530: both critics predict the *total* return ``G_t`` and
  ``A = G_t − min(V_φ(s_t), V_ψ(s^x_t))``, critic loss ``(min(V_φ, V_ψ) − G)²``; we do not normalize returns).
- ``critic_mode="one_critic"`` ("PDPPO one critic"): a single critic ``V_ψ(s^x_t)`` on the total return,
  ``A = G_t − V_ψ(s^x_t)``.
- ``buffer_rollouts=K``: train on the last ``K`` rollouts (the reference keeps 5 × 400 transitions: slightly
  off-policy, each sample keeps the log-probability and critic values it was collected with). Default ``K = 1``
  is clean on-policy.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct

from purejaxpo.algorithms import common
from purejaxpo.algorithms.onpolicy import adam_with_clipping, flatten_time_and_batch, linear_annealing, update_epochs
from purejaxpo.networks import distributions
from purejaxpo.networks.torsos import ACTIVATIONS, MLP, dense
from purejaxpo.primitives.advantages import explained_variance, gae, masked_mean, normalize
from purejaxpo.primitives.losses import clip_fraction, clipped_surrogate, sample_kl, value_loss
from purejaxpo.primitives.stateful import running_moments
from purejaxpo.rollout import rollout
from purejaxpo.types import CheckedHParams, Trainer, at_least, scan_train

Array = jax.Array

TARGET_MODES = ("monte_carlo", "gae")
COMBINERS = ("max", "min_value", "pre_only", "post_only")
CRITIC_MODES = ("dual", "one_critic")
ADAM_EPS = 1e-8  # PyTorch's Adam default, as in the reference code


# ----------------------------------------------------------------------------------------------------------------
# Config and hyperparameters
# ----------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PDPPOConfig(common.RolloutBudget):
    """Static settings (shapes, loop counts, flags). Defaults follow the reference lot-sizing code (spec §4):
    4 envs × 100 steps = 400 env steps (4 episodes) per update, 40 full-batch epochs, 128-128 networks with a
    ReLU actor and tanh critics, Monte-Carlo targets, the max combiner, no normalization.

    ``buffer_rollouts`` is the number of most recent rollouts trained on per update (5 in the reference code,
    1 = on-policy). ``normalize_obs`` uses running observation statistics for both ``s`` and ``s^x`` (same layout).
    """

    algorithm_name: ClassVar[str] = "pdppo"

    num_envs: int = 4
    num_steps: int = 100
    total_timesteps: int = 1_000_000
    update_epochs: int = 40
    num_minibatches: int = 1
    hidden_sizes: tuple[int, ...] = (128, 128)
    actor_activation: str = "relu"
    critic_activation: str = "tanh"
    critic_mode: str = "dual"
    advantage_combiner: str = "max"
    target_mode: str = "monte_carlo"
    buffer_rollouts: int = 1
    normalize_obs: bool = False
    normalize_advantages: bool = False
    anneal_lr: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        if not self.hidden_sizes or any(not isinstance(h, int) or h <= 0 for h in self.hidden_sizes):
            raise ValueError(f"PDPPOConfig.hidden_sizes must be positive integers, got {self.hidden_sizes!r}")
        for name in ("actor_activation", "critic_activation"):
            if getattr(self, name) not in ACTIVATIONS:
                raise ValueError(f"PDPPOConfig.{name} must be one of {sorted(ACTIVATIONS)}, got {getattr(self, name)!r}")
        for name, allowed in (("critic_mode", CRITIC_MODES), ("advantage_combiner", COMBINERS), ("target_mode", TARGET_MODES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"PDPPOConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.critic_mode == "one_critic" and self.advantage_combiner != "max":
            raise ValueError(
                "PDPPOConfig.advantage_combiner combines the two critics of critic_mode='dual'; with "
                f"critic_mode='one_critic' leave it at 'max', got {self.advantage_combiner!r}"
            )
        common.require_positive_ints(self, ("buffer_rollouts",))
        common.check_batch_layout(self)

    @property
    def uses_pre_critic(self) -> bool:
        return self.critic_mode == "dual"


@struct.dataclass
class PDPPOHParams(CheckedHParams):
    """Traced hyperparameters (reference lot-sizing values, spec §4). ``max_grad_norm = 0`` turns global-norm
    clipping off (the final reference code has none; the older one used 1.0); clipping, when on, is per
    optimizer (actor, each critic). ``gae_lambda`` is read by ``target_mode="gae"`` only."""

    lr_actor: float = 5.5e-4
    lr_critic: float = 1e-3
    gamma: float = 0.9
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 0.001
    max_grad_norm: float = 0.0


PDPPOHParams.rules = {
    "lr_actor": at_least(0),
    "lr_critic": at_least(0),
    "max_grad_norm": at_least(0, " (0 turns clipping off)"),
}


# ----------------------------------------------------------------------------------------------------------------
# Pure pieces: targets, advantage combination, losses
# ----------------------------------------------------------------------------------------------------------------


def critic_targets(
    rewards: Array,
    values: Array,
    final_values: Array,
    last_value: Array | None,
    terminated: Array,
    truncated: Array,
    gamma: float | Array,
    gae_lambda: float | Array,
    target_mode: str,
) -> tuple[Array, Array]:
    """``(advantages, targets)`` ``[T, B]`` of one critic from its own rewards ``[T, B]``.

    - ``"monte_carlo"`` (spec §2 [C]): ``G_t = r_t + γ(1 − d_t) G_{t+1}``, ``G_T = 0``, ``d = terminated or
      truncated``; ``A_t = G_t − V_t``. Computed as :func:`~purejaxpo.primitives.advantages.gae` with zero values
      and ``λ = 1`` (its Monte-Carlo identity); ``final_values`` and ``last_value`` are not read.
    - ``"gae"`` [P]: :func:`~purejaxpo.primitives.advantages.gae` (bootstrapping truncated steps on
      ``final_values`` and the buffer end on ``last_value``).
    """
    if target_mode == "monte_carlo":
        zeros = jnp.zeros_like(values)
        returns, _ = gae(rewards, zeros, zeros, zeros[0], terminated, truncated, gamma, 1.0)
        return returns - values, returns
    if target_mode == "gae":
        return gae(rewards, values, final_values, last_value, terminated, truncated, gamma, gae_lambda)
    raise ValueError(f"unknown target_mode {target_mode!r}; expected one of {TARGET_MODES}")


def combine_advantages(adv_pre: Array, adv_post: Array, combiner: str) -> Array:
    """The actor's advantage from the two critics' (same shapes): ``"max"`` → ``max(A^pre, A^x)`` element-wise
    (PDPPO, spec §2 [C]); ``"pre_only"`` → ``A^pre``; ``"post_only"`` → ``A^x``."""
    if combiner == "max":
        return jnp.maximum(adv_pre, adv_post)
    if combiner == "pre_only":
        return adv_pre
    if combiner == "post_only":
        return adv_post
    raise ValueError(f"combine_advantages supports 'max', 'pre_only', 'post_only'; got {combiner!r}")


@struct.dataclass
class RolloutData:
    """What one update needs from the rollouts, time-major ``[T, B, ...]``; observations are raw (un-normalized).

    ``value``/``post_value`` are ``V_φ(s_t)``/``V_ψ(s^x_t)`` from the networks that collected the data
    (π_old); ``final_value`` is ``V_φ(final_obs_t)`` (read by ``target_mode="gae"`` at truncated steps);
    ``log_prob`` ``[T, B, M]`` holds one log-probability per sub-action; ``valid`` is 0 on empty buffer slots.
    """

    obs: Array
    post_obs: Array
    action: Array
    log_prob: Array
    reward: Array
    post_reward: Array
    value: Array
    post_value: Array
    final_value: Array
    terminated: Array
    truncated: Array
    valid: Array


@struct.dataclass
class Targets:
    """Per-step ``[T, B]``: the actor's advantage and each critic's regression target (``pre_target`` is the
    target of ``V_φ``; ``post_target`` that of ``V_ψ``, or of ``min(V_φ, V_ψ)`` for ``"min_value"``), plus the
    two separate advantages for diagnostics."""

    advantages: Array
    pre_target: Array
    post_target: Array
    adv_pre: Array
    adv_post: Array


def pdppo_targets(
    data: RolloutData,
    last_value: Array | None,
    last_post_value: Array | None,
    gamma: float | Array,
    gae_lambda: float | Array,
    *,
    target_mode: str = "monte_carlo",
    combiner: str = "max",
    critic_mode: str = "dual",
) -> Targets:
    """Advantages and critic targets of PDPPO (spec §2) from :class:`RolloutData` ``[T, B]``.

    ``dual`` with ``max``/``pre_only``/``post_only``: ``V_φ`` on ``r^pre = r − r^x`` and ``V_ψ`` on ``r^x``
    (:func:`critic_targets` each), combined by :func:`combine_advantages`. ``min_value``: one target ``G`` on the
    total reward for the value ``min(V_φ(s), V_ψ(s^x))``. ``one_critic``: ``V_ψ(s^x)`` on the total reward.

    Bootstrapping in ``"gae"`` mode [P]: ``V_φ`` uses ``V_φ(s_{t+1})``, ``V_φ(final_obs)`` at truncation and
    ``last_value = V_φ(s_T)``; ``V_ψ`` uses ``V_ψ(s^x_{t+1})`` and ``last_post_value = V_ψ(f(s_T, a'))`` with
    ``a' ~ π(·|s_T)``, and its trace is cut without bootstrap at *every* episode end, truncations included (the
    post-decision state after a truncated episode's last state would need that state, which the auto-reset
    discards). ``min_value`` bootstraps on ``min`` of the two where both exist and on ``V_φ(final_obs)``
    at truncation.
    """
    done = jnp.logical_or(data.terminated, data.truncated)
    zeros = jnp.zeros_like(data.reward)
    if critic_mode == "one_critic":
        adv, target = critic_targets(data.reward, data.post_value, zeros, last_post_value, done, done, gamma, gae_lambda, target_mode)
        return Targets(adv, zeros, target, zeros, adv)
    if combiner == "min_value":
        value = jnp.minimum(data.value, data.post_value)
        last = None if last_value is None else jnp.minimum(last_value, last_post_value)
        adv, target = critic_targets(
            data.reward, value, data.final_value, last, data.terminated, data.truncated, gamma, gae_lambda, target_mode
        )
        return Targets(adv, target, target, adv, adv)
    pre_reward = data.reward - data.post_reward
    adv_pre, pre_target = critic_targets(
        pre_reward, data.value, data.final_value, last_value, data.terminated, data.truncated, gamma, gae_lambda, target_mode
    )
    adv_post, post_target = critic_targets(
        data.post_reward, data.post_value, zeros, last_post_value, done, done, gamma, gae_lambda, target_mode
    )
    return Targets(combine_advantages(adv_pre, adv_post, combiner), pre_target, post_target, adv_pre, adv_post)


def sub_action_surrogate(log_ratio: Array, advantages: Array, clip_eps: float | Array) -> Array:
    """PDPPO's clipped surrogate with one ratio per sub-action (spec §2 [C], ``advantages.unsqueeze(1)``)::

        L_n = mean_m −min(ρ_{n,m} A_n, clip(ρ_{n,m}, 1 − ε, 1 + ε) A_n)

    ``log_ratio`` ``[N, M]``, ``advantages`` ``[N]`` → ``[N]``. With ``M = 1`` it is PPO-clip.
    """
    return jnp.mean(clipped_surrogate(log_ratio, advantages[..., None], clip_eps), axis=-1)


def sub_action_log_probs(dist: Any, action: Array, kind: str) -> Array:
    """Log-probabilities ``[..., M]`` per sub-action (``M = 1`` for a single categorical)."""
    if kind == "multi_discrete":
        return dist.distribution.log_prob(action)
    return dist.log_prob(action)[..., None]


def sub_action_entropy(dist: Any, kind: str) -> Array:
    """Entropy per sub-action ``[..., M]`` (``M = 1`` for a single categorical)."""
    if kind == "multi_discrete":
        return dist.distribution.entropy()
    return dist.entropy()[..., None]


# ----------------------------------------------------------------------------------------------------------------
# Networks
# ----------------------------------------------------------------------------------------------------------------


class _Critic(nnx.Module):
    """``[..., *obs_shape] -> [...]``: MLP torso and a linear value head."""

    def __init__(self, obs_shape: tuple[int, ...], hidden_sizes: tuple[int, ...], activation: str, rngs: nnx.Rngs):
        self.obs_ndim = len(obs_shape)
        self.torso = MLP(math.prod(obs_shape), hidden_sizes, activation, rngs=rngs)
        self.head = dense(self.torso.out_features, 1, 1.0, rngs)

    def __call__(self, obs: Array) -> Array:
        x = obs.astype(jnp.float32)
        x = x.reshape(x.shape[: x.ndim - self.obs_ndim] + (-1,))
        return self.head(self.torso(x))[..., 0]


class _Actor(nnx.Module):
    """``[..., *obs_shape] ->`` a categorical (``discrete``) or one categorical per machine (``multi_discrete``)."""

    def __init__(self, obs_shape: tuple[int, ...], spec: common.PolicySpec, hidden_sizes: tuple[int, ...],
                 activation: str, rngs: nnx.Rngs):
        self.obs_ndim = len(obs_shape)
        self.kind = spec.kind
        self.action_dim = spec.action_dim
        self.num_categories = spec.num_categories
        self.torso = MLP(math.prod(obs_shape), hidden_sizes, activation, rngs=rngs)
        outputs = spec.action_dim * spec.num_categories if spec.kind == "multi_discrete" else spec.action_dim
        self.head = dense(self.torso.out_features, outputs, 0.01, rngs)

    def __call__(self, obs: Array) -> Any:
        x = obs.astype(jnp.float32)
        logits = self.head(self.torso(x.reshape(x.shape[: x.ndim - self.obs_ndim] + (-1,))))
        if self.kind == "multi_discrete":
            return distributions.multi_categorical(logits.reshape(logits.shape[:-1] + (self.action_dim, self.num_categories)))
        return distributions.categorical(logits)


class DualCriticActorCritic(nnx.Module):
    """Actor ``π_θ(a|s)``, pre-decision critic ``V_φ(s)`` and post-decision critic ``V_ψ(s^x)`` as three separate
    networks (spec §3): ``hidden_sizes`` MLPs, ``actor_activation`` for the actor (ReLU in the reference) and
    ``critic_activation`` for the critics (tanh). ``pre_critic`` is ``None`` with ``critic_mode="one_critic"``.

    [P] Initialization is the library's (orthogonal √2 torsos, 0.01 policy head, 1.0 value heads), not the
    reference's Kaiming/Xavier/PyTorch-default mix.
    """

    def __init__(self, config: PDPPOConfig, spec: common.PolicySpec, *, rngs: nnx.Rngs):
        shape = spec.obs_shape
        self.actor = _Actor(shape, spec, config.hidden_sizes, config.actor_activation, rngs)
        self.pre_critic = _Critic(shape, config.hidden_sizes, config.critic_activation, rngs) if config.uses_pre_critic else None
        self.post_critic = _Critic(shape, config.hidden_sizes, config.critic_activation, rngs)

    def distribution(self, obs: Array) -> Any:
        return self.actor(obs)

    def pre_value(self, obs: Array) -> Array:
        return self.pre_critic(obs)

    def post_value(self, post_obs: Array) -> Array:
        return self.post_critic(post_obs)


def _param_labels(params: Any) -> Any:
    """``"actor"``/``"pre_critic"``/``"post_critic"`` for every leaf: the network it belongs to."""
    return jax.tree_util.tree_map_with_path(lambda path, _: path[0].key, params)


def make_optimizer(config: PDPPOConfig, hp: PDPPOHParams, lr_scale: Array | float = 1.0) -> optax.GradientTransformation:
    """One Adam per network (spec §2 [C]: separate optimizers), each with its own optional global-norm clip.

    Because the actor loss does not depend on the critics' parameters and vice versa, one gradient of
    ``L_π + L_V + L_Vx`` routed to three independent Adams equals three separate backward passes and steps.
    """
    clip = jnp.where(hp.max_grad_norm > 0, hp.max_grad_norm, jnp.inf)
    transforms = {
        "actor": adam_with_clipping(hp.lr_actor * lr_scale, clip, ADAM_EPS),
        "post_critic": adam_with_clipping(hp.lr_critic * lr_scale, clip, ADAM_EPS),
    }
    if config.uses_pre_critic:
        transforms["pre_critic"] = adam_with_clipping(hp.lr_critic * lr_scale, clip, ADAM_EPS)
    return optax.multi_transform(transforms, _param_labels)


# ----------------------------------------------------------------------------------------------------------------
# Loss
# ----------------------------------------------------------------------------------------------------------------


@struct.dataclass
class PDPPOBatch:
    """Flattened training samples ``[N, ...]`` (observations already normalized when configured)."""

    obs: Array
    post_obs: Array
    action: Array
    log_prob: Array  # [N, M]
    advantages: Array
    pre_target: Array
    post_target: Array
    mask: Array  # [N] 1 = a real sample, 0 = an empty buffer slot


def pdppo_loss(
    model: DualCriticActorCritic, batch: PDPPOBatch, hp: PDPPOHParams, config: PDPPOConfig, kind: str
) -> tuple[Array, dict[str, Array]]:
    """``L = L_π − c_H H + L_V + L_Vx`` on one minibatch (module docstring). The critic terms use
    :func:`~purejaxpo.primitives.losses.value_loss` (½ squared error: with a separate Adam per critic the ½ only
    rescales gradients, which Adam normalizes away). The reference's ``+ 0.7·(L_V + L_Vx).detach()`` in the actor
    loss is a constant and is left out."""
    mask = batch.mask
    dist = model.distribution(batch.obs)
    log_ratio = sub_action_log_probs(dist, batch.action, kind) - batch.log_prob  # [N, M]
    advantages = normalize(batch.advantages, mask) if config.normalize_advantages else batch.advantages
    policy_loss = masked_mean(sub_action_surrogate(log_ratio, advantages, hp.clip_eps), mask)
    entropy = masked_mean(jnp.mean(sub_action_entropy(dist, kind), axis=-1), mask)
    post_value = model.post_value(batch.post_obs)
    if config.critic_mode == "one_critic":
        pre_loss = jnp.zeros(())
        post_loss = masked_mean(value_loss(post_value, batch.post_target), mask)
    elif config.advantage_combiner == "min_value":
        pre_loss = jnp.zeros(())
        post_loss = masked_mean(value_loss(jnp.minimum(model.pre_value(batch.obs), post_value), batch.post_target), mask)
    else:
        pre_loss = masked_mean(value_loss(model.pre_value(batch.obs), batch.pre_target), mask)
        post_loss = masked_mean(value_loss(post_value, batch.post_target), mask)
    loss = policy_loss - hp.ent_coef * entropy + pre_loss + post_loss
    joint_log_ratio = jnp.sum(log_ratio, axis=-1)
    aux = {
        "policy_loss": policy_loss,
        "pre_value_loss": pre_loss,
        "post_value_loss": post_loss,
        "entropy": entropy,
        "approx_kl": masked_mean(sample_kl(joint_log_ratio, "k3"), mask),
        "clip_fraction": masked_mean(jnp.mean(clip_fraction(log_ratio, hp.clip_eps), axis=-1), mask),
    }
    return loss, aux


# ----------------------------------------------------------------------------------------------------------------
# Env hook
# ----------------------------------------------------------------------------------------------------------------


class _PostDecisionInInfo:
    """An env whose ``step`` also reports ``post_decision(state, action)`` in ``info`` (for envs that have the
    hook but do not put its result in ``info``). The pure hook runs on the pre-step state; the env steps once."""

    def __init__(self, env: Any):
        self.env = env

    def step(self, key: Array, state: Any, action: Array, params: Any) -> tuple[Any, ...]:
        post_obs, post_reward = self.env.post_decision(state, action, params)
        obs, new_state, reward, terminated, truncated, info = self.env.step(key, state, action, params)
        return obs, new_state, reward, terminated, truncated, {**info, "post_obs": post_obs, "post_reward": post_reward}


def post_decision_env(env: Any, env_params: Any, spec: common.PolicySpec) -> Any:
    """The env the rollout steps: ``env`` itself when its ``info`` carries ``post_obs`` and ``post_reward``,
    else a wrapper that adds them from ``env.post_decision``. Raises ``ValueError`` when ``env`` has no
    ``post_decision`` hook or its post-decision observation does not have the observation's shape."""
    hook = getattr(env, "post_decision", None)
    if not callable(hook):
        raise ValueError(
            f"PDPPO needs an environment with a post-decision hook: a pure method "
            f"post_decision(state, action, params) -> (post_obs, post_reward) giving the deterministic part of the "
            f"step (see envs.lot_sizing.LotSizing.post_decision); {type(env).__name__} has none"
        )
    key = jax.random.key(0)
    _, state = jax.eval_shape(lambda k: env.reset(k, env_params), key)
    action_shape = (spec.action_dim,) if spec.kind == "multi_discrete" else ()
    action = jax.ShapeDtypeStruct(action_shape, jnp.int32)
    post_obs, post_reward = jax.eval_shape(lambda s, a: hook(s, a, env_params), state, action)
    if tuple(post_obs.shape) != tuple(spec.obs_shape):
        raise ValueError(
            f"PDPPO's post-decision critic reads post_obs with the observation's shape {spec.obs_shape}; "
            f"{type(env).__name__}.post_decision returns post_obs of shape {tuple(post_obs.shape)}"
        )
    if tuple(post_reward.shape) != ():
        raise ValueError(f"post_decision must return a scalar post_reward, got shape {tuple(post_reward.shape)}")
    info = jax.eval_shape(lambda k, s, a: env.step(k, s, a, env_params), key, state, action)[5]
    if "post_obs" in info and "post_reward" in info:
        return env
    return _PostDecisionInInfo(env)


def _post_decision_extras(info: dict[str, Any]) -> dict[str, Array]:
    return {"post_obs": info["post_obs"], "post_reward": jnp.asarray(info["post_reward"], jnp.float32)}


# ----------------------------------------------------------------------------------------------------------------
# Trainer
# ----------------------------------------------------------------------------------------------------------------


def _empty_rollouts(config: PDPPOConfig, spec: common.PolicySpec, count: int) -> RolloutData:
    """``count`` empty buffer slots (``valid = 0``), leaves ``[count, T, B, ...]``."""
    lead = (count, config.num_steps, config.num_envs)
    action_shape = (spec.action_dim,) if spec.kind == "multi_discrete" else ()
    sub_actions = spec.action_dim if spec.kind == "multi_discrete" else 1
    zeros = jnp.zeros(lead, jnp.float32)
    falses = jnp.zeros(lead, bool)
    obs = jnp.zeros(lead + spec.obs_shape, jnp.float32)
    return RolloutData(
        obs=obs, post_obs=obs, action=jnp.zeros(lead + action_shape, jnp.int32),
        log_prob=jnp.zeros(lead + (sub_actions,), jnp.float32), reward=zeros, post_reward=zeros, value=zeros,
        post_value=zeros, final_value=zeros, terminated=falses, truncated=falses, valid=zeros,
    )


def make_train(config: PDPPOConfig, env: Any, env_params: Any) -> Trainer:
    """Build the PDPPO :class:`~purejaxpo.types.Trainer`; raises ``ValueError`` for continuous actions or an env
    without ``post_decision``. ``state.algo`` holds the previous ``buffer_rollouts − 1`` rollouts (or ``None``)."""
    num_updates = config.num_updates
    spec = common.policy_spec(env, env_params)
    if spec.kind not in ("discrete", "multi_discrete"):
        raise ValueError(f"PDPPO supports discrete and multi_discrete actions; this env's actions are {spec.kind}")
    stepper = post_decision_env(env, env_params, spec)
    horizon = getattr(env_params, "max_steps_in_episode", None)
    if config.target_mode == "monte_carlo" and isinstance(horizon, int) and config.num_steps % horizon:
        warnings.warn(
            f"target_mode='monte_carlo' does not bootstrap at the end of a rollout, but num_steps={config.num_steps} "
            f"is not a multiple of the episode limit {horizon}: the returns of the episodes cut at the rollout end "
            f"are truncated (consider num_steps={horizon} or target_mode='gae')",
            stacklevel=2,
        )
    build = lambda key: DualCriticActorCritic(config, spec, rngs=nnx.Rngs(params=key))
    graphdef, _ = nnx.split(build(jax.random.key(0)))
    past_rollouts = config.buffer_rollouts - 1
    gae_mode = config.target_mode == "gae"

    def init(key: Array, hp: PDPPOHParams) -> common.OnPolicyState:
        net_key, key = jax.random.split(key)
        _, params = nnx.split(build(net_key))
        opt_state = make_optimizer(config, hp).init(params)
        algo = _empty_rollouts(config, spec, past_rollouts) if past_rollouts else None
        return common.init_state(env, env_params, config, spec, params, opt_state, key, algo)

    def collect(state: common.OnPolicyState, model: DualCriticActorCritic, key: Array) -> tuple[Any, RolloutData, Any, Array]:
        """Rollout (raw observations) and the π_old critic values; also returns the next post-decision values."""
        rollout_key, boot_key = jax.random.split(key)
        observe = common.observe_fn(config, state.obs_norm)

        def policy_step(obs: Array, act_key: Array) -> tuple[Array, Array, Array, Array]:
            dist = model.distribution(observe(obs))
            action = dist.sample(seed=act_key)
            return action, action, sub_action_log_probs(dist, action, spec.kind), jnp.zeros(obs.shape[:1])

        carry, traj, stats = rollout(
            stepper, env_params, state.env, rollout_key, policy_step, lambda obs: obs, config.num_steps, _post_decision_extras
        )
        post_obs = traj.extras["post_obs"]
        zeros = jnp.zeros_like(traj.reward)
        value = model.pre_value(observe(traj.obs)) if config.uses_pre_critic else zeros
        final_value = model.pre_value(observe(traj.final_obs)) if gae_mode and config.uses_pre_critic else zeros
        data = RolloutData(
            obs=traj.obs, post_obs=post_obs, action=traj.action, log_prob=traj.log_prob, reward=traj.reward,
            post_reward=traj.extras["post_reward"], value=value, post_value=model.post_value(observe(post_obs)),
            final_value=final_value, terminated=traj.terminated, truncated=traj.truncated, valid=jnp.ones_like(traj.reward),
        )
        last = (None, None)
        if gae_mode:
            next_obs = observe(carry.obs)
            next_action = model.distribution(next_obs).sample(seed=boot_key)
            next_post_obs, _ = jax.vmap(env.post_decision, in_axes=(0, 0, None))(carry.env_state, next_action, env_params)
            last_value = model.pre_value(next_obs) if config.uses_pre_critic else None
            last = (last_value, model.post_value(observe(next_post_obs)))
        return carry, data, stats, last

    def update(state: common.OnPolicyState, hp: PDPPOHParams) -> tuple[common.OnPolicyState, dict[str, Array]]:
        key, collect_key, epoch_key = jax.random.split(state.key, 3)
        model = nnx.merge(graphdef, state.params)
        carry, current, stats, (last_value, last_post_value) = collect(state, model, collect_key)
        if past_rollouts:  # window of the last K rollouts, oldest first: [K, T, B, ...] -> [K·T, B, ...]
            window = jax.tree.map(lambda old, new: jnp.concatenate([old, new[None]]), state.algo, current)
            buffer = jax.tree.map(lambda x: x[1:], window)
            window = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), window)
        else:
            window, buffer = current, None
        targets = pdppo_targets(
            window, last_value, last_post_value, hp.gamma, hp.gae_lambda,
            target_mode=config.target_mode, combiner=config.advantage_combiner, critic_mode=config.critic_mode,
        )
        observe = common.observe_fn(config, state.obs_norm)
        batch = flatten_time_and_batch(
            PDPPOBatch(
                observe(window.obs), observe(window.post_obs), window.action, window.log_prob, targets.advantages,
                targets.pre_target, targets.post_target, window.valid,
            )
        )
        lr_scale = linear_annealing(jnp.ones(()), state.update_index, num_updates, config.anneal_lr)
        optimizer = make_optimizer(config, hp, lr_scale)
        loss_fn = lambda params, minibatch: pdppo_loss(nnx.merge(graphdef, params), minibatch, hp, config, spec.kind)
        params, opt_state, train_metrics = update_epochs(
            epoch_key, state.params, state.opt_state, batch, loss_fn, optimizer, config.update_epochs, config.num_minibatches
        )
        obs_norm = running_moments.update(state.obs_norm, current.obs) if config.normalize_obs else state.obs_norm
        new_state = state.replace(
            params=params, opt_state=opt_state, obs_norm=obs_norm, env=carry, key=key,
            update_index=state.update_index + 1, algo=buffer,
        )
        valid = window.valid
        metrics = {
            **common.episode_metrics(stats),
            **{k: v for k, v in train_metrics.items() if k != "nonfinite"},
            "nonfinite_steps": train_metrics["nonfinite"],
            "explained_variance_pre": explained_variance(window.value, targets.pre_target),
            "explained_variance_post": explained_variance(window.post_value, targets.post_target),
            "post_advantage_share": masked_mean((targets.adv_post > targets.adv_pre).astype(jnp.float32), valid),
            "advantage_mean": masked_mean(targets.advantages, valid),
            "learning_rate_actor": hp.lr_actor * lr_scale,
            "env_steps": (state.update_index + 1).astype(jnp.float32) * config.batch_size,
        }
        return new_state, metrics

    return Trainer(init, update, scan_train(init, update, num_updates), common.act_fn(config, spec, graphdef), config, env, env_params, type(config).algorithm_name)
