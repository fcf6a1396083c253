"""PDPPO's pure pieces (Felizardo et al. 2025, arXiv:2504.05150; reference code ``PDPPO.py`` @bf3f368 [C]): the
two critics' targets, the advantage combiners, the per-sub-action clipped surrogate and the rolling buffer of
past rollouts. Time on axis 0, trailing batch axes; the trainer is :mod:`purejaxpo.algorithms.pdppo`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from purejaxpo.primitives.advantages import gae
from purejaxpo.primitives.losses import clipped_surrogate

Array = jax.Array
TARGET_MODES = ("monte_carlo", "gae")
COMBINERS = ("max", "min_value", "pre_only", "post_only")
CRITIC_MODES = ("dual", "one_critic", "ppo")


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

    - ``"monte_carlo"`` ([C]): ``G_t = r_t + γ(1 − d_t) G_{t+1}``, ``G_T = 0``, ``d = terminated or
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
    (PDPPO [C]); ``"pre_only"`` → ``A^pre``; ``"post_only"`` → ``A^x``."""
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
    """Advantages and critic targets of PDPPO from :class:`RolloutData` ``[T, B]``.

    ``dual`` with ``max``/``pre_only``/``post_only``: ``V_φ`` on ``r^pre = r − r^x`` and ``V_ψ`` on ``r^x``
    (:func:`critic_targets` each), combined by :func:`combine_advantages`. ``min_value``: one target ``G`` on the
    total reward for the value ``min(V_φ(s), V_ψ(s^x))``. ``one_critic``: ``V_ψ(s^x)`` on the total reward.
    ``ppo``: the single pre-decision critic of PPO, ``V_φ(s)`` on the total reward, ``A = G − V_φ(s)`` (the
    reference ``PPO.py`` @ff58990 [C]); ``post_target`` and ``adv_post`` are zeros.

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
    if critic_mode == "ppo":
        adv, target = critic_targets(
            data.reward, data.value, data.final_value, last_value, data.terminated, data.truncated, gamma, gae_lambda, target_mode
        )
        return Targets(adv, target, zeros, adv, zeros)
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
    """PDPPO's clipped surrogate with one ratio per sub-action ([C], ``advantages.unsqueeze(1)``)::

        L_n = mean_m −min(ρ_{n,m} A_n, clip(ρ_{n,m}, 1 − ε, 1 + ε) A_n)

    ``log_ratio`` ``[N, M]``, ``advantages`` ``[N]`` → ``[N]``. With ``M = 1`` it is PPO-clip.
    """
    return jnp.mean(clipped_surrogate(log_ratio, advantages[..., None], clip_eps), axis=-1)


def masked_explained_variance(predictions: Array, targets: Array, mask: Array) -> Array:
    """``1 − Var[targets − predictions] / Var[targets]`` over the samples with ``mask = 1`` (empty buffer slots
    left out); 0 when the masked targets are constant. Any shape, all three alike → scalar."""
    count = jnp.maximum(jnp.sum(mask), 1.0)
    var = lambda x: jnp.sum(mask * jnp.square(x - jnp.sum(mask * x) / count)) / count
    var_targets = var(targets)
    return jnp.where(var_targets > 1e-8, 1.0 - var(targets - predictions) / jnp.maximum(var_targets, 1e-8), 0.0)


def empty_rollouts(count: int, num_steps: int, num_envs: int, spec: Any) -> RolloutData:
    """``count`` empty buffer slots (``valid = 0``), leaves ``[count, T, B, ...]``, for the spaces of a
    :class:`~purejaxpo.spaces.PolicySpec` (one log-probability per sub-action)."""
    lead = (count, num_steps, num_envs)
    sub_actions = spec.action_dim if spec.kind == "multi_discrete" else 1
    zeros, falses = jnp.zeros(lead, jnp.float32), jnp.zeros(lead, bool)
    obs = jnp.zeros(lead + spec.obs_shape, jnp.float32)
    return RolloutData(
        obs=obs, post_obs=obs, action=jnp.zeros(lead + spec.action_shape, jnp.int32),
        log_prob=jnp.zeros(lead + (sub_actions,), jnp.float32), reward=zeros, post_reward=zeros, value=zeros,
        post_value=zeros, final_value=zeros, terminated=falses, truncated=falses, valid=zeros,
    )


def rolling_window(buffer: RolloutData, current: RolloutData) -> tuple[RolloutData, RolloutData]:
    """The last ``K`` rollouts, oldest first, as one ``[K·T, B, ...]`` window (``buffer`` ``[K−1, T, B, ...]`` then
    ``current`` ``[T, B, ...]``), and the buffer for the next update (the newest ``K − 1``).

    Starting from :func:`empty_rollouts` (``valid = 0``), update ``u = 1, 2, …`` trains on ``min(u, K)`` real
    rollouts: the reference's buffer, which grows by one rollout per update and then drops the oldest
    (``buffer.clear(lag)`` after the update once it holds more than ``K − 1``; ``PDPPO.py`` @bf3f368 [C]).
    Nothing stored is recomputed: old samples keep the log-probabilities and critic values of the policy that
    collected them, as in the reference."""
    window = jax.tree.map(lambda old, new: jnp.concatenate([old, new[None]]), buffer, current)
    return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), window), jax.tree.map(lambda x: x[1:], window)
