"""Advantage estimation and reductions.

Conventions: arrays are ``[T, ...]`` with time on axis 0 and any trailing batch axes (``[T]``,
``[T, B]``, ``[T, B, K]``); everything broadcasts over the trailing axes, so no per-sequence ``vmap``
is needed.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

Array = jax.Array


def gae(
    rewards: Array,
    values: Array,
    final_values: Array,
    last_value: Array,
    terminated: Array,
    truncated: Array,
    gamma: float | Array,
    gae_lambda: float | Array,
) -> tuple[Array, Array]:
    """Generalized advantage estimation with termination and truncation kept apart.

    Schulman et al. 2016, "High-Dimensional Continuous Control Using GAE" (arXiv:1506.02438)::

        next_value_t = V(final_obs_t)   if the episode ended at t (terminated or truncated)
                     = V(s_{t+1})       otherwise (values[t+1], or last_value at t = T-1)
        δ_t = r_t + γ (1 - terminated_t) next_value_t - V(s_t)
        A_t = δ_t + γ λ (1 - done_t) A_{t+1},       done_t = terminated_t or truncated_t

    A terminated step has no bootstrap; a truncated step bootstraps from the value of the observation
    the episode was cut at (``info["final_observation"]``), and the λ-trace is cut at every boundary
    because ``s_{t+1}`` then belongs to a new episode.

    Args:
      rewards, values, final_values: ``[T, ...]``; ``final_values[t] = V(final_observation_t)`` (only read
        where ``done_t``).
      last_value: ``[...]``, ``V(s_T)``: the value of the observation after the last step.
      terminated, truncated: ``[T, ...]`` booleans (or 0/1 floats).
      gamma, gae_lambda: scalars (may be traced).

    Returns:
      ``(advantages, targets)``, both ``[T, ...]``, with ``targets = advantages + values``.
    """
    # shape checks run at trace time only: free under jit
    chex.assert_equal_shape([rewards, values, final_values, terminated, truncated])
    chex.assert_shape(last_value, values.shape[1:])
    terminated = jnp.asarray(terminated, values.dtype)
    done = jnp.maximum(terminated, jnp.asarray(truncated, values.dtype))
    next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    next_values = jnp.where(done > 0, final_values, next_values)
    deltas = rewards + gamma * (1.0 - terminated) * next_values - values
    trace_decay = gamma * gae_lambda * (1.0 - done)

    def step(carry: Array, inputs: tuple[Array, Array]) -> tuple[Array, Array]:
        delta, decay = inputs
        carry = delta + decay * carry
        return carry, carry

    _, advantages = jax.lax.scan(step, jnp.zeros_like(last_value), (deltas, trace_decay), reverse=True)
    return advantages, advantages + values


def normalize(x: Array, mask: Array | None = None, eps: float = 1e-8) -> Array:
    """``(x - mean) / (std + eps)`` over all elements (or those where ``mask``); same shape as ``x``."""
    mean = masked_mean(x, mask)
    var = masked_mean(jnp.square(x - mean), mask)
    return (x - mean) / (jnp.sqrt(var) + eps)


def masked_mean(x: Array, mask: Array | None = None) -> Array:
    """Mean of ``x`` over all elements where ``mask`` (all elements if ``mask`` is None); 0 if none."""
    if mask is None:
        return jnp.mean(x)
    mask = jnp.broadcast_to(jnp.asarray(mask, x.dtype), x.shape)
    return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def explained_variance(predictions: Array, targets: Array) -> Array:
    """``1 - Var[targets - predictions] / Var[targets]`` (NaN-free: 0 when the targets are constant)."""
    var_targets = jnp.var(targets)
    ev = 1.0 - jnp.var(targets - predictions) / jnp.maximum(var_targets, 1e-8)
    return jnp.where(var_targets > 1e-8, ev, 0.0)


def discounted_returns(
    rewards: Array, done: Array, gamma: float | Array, bootstrap: Array | None = None
) -> Array:
    """Discounted returns-to-go, cut at episode boundaries (no critic)::

        G_t = r_t + γ (1 − done_t) G_{t+1},      G_T = bootstrap (0 if None)

    Args:
      rewards, done: ``[T, ...]`` (``done`` = terminated or truncated, booleans or 0/1 floats).
      bootstrap: ``[...]`` value of the state after the last step, or ``None`` for a Monte-Carlo return
        of the rollout window.

    Returns ``[T, ...]``.
    """
    rewards = jnp.asarray(rewards)
    chex.assert_equal_shape([rewards, done])
    decay = gamma * (1.0 - jnp.asarray(done, rewards.dtype))
    init = jnp.zeros(rewards.shape[1:], rewards.dtype) if bootstrap is None else bootstrap

    def step(carry: Array, inputs: tuple[Array, Array]) -> tuple[Array, Array]:
        reward, discount = inputs
        carry = reward + discount * carry
        return carry, carry

    _, returns = jax.lax.scan(step, init, (rewards, decay), reverse=True)
    return returns


def egae(
    rewards: Array,
    values: Array,
    final_values: Array,
    last_value: Array,
    terminated: Array,
    truncated: Array,
    gamma: float | Array,
    gae_lambda: float | Array,
) -> tuple[Array, Array, Array]:
    """Extended GAE of Truncated PPO (Fan et al. 2025, arXiv:2506.15050) — **our reading** of the abstract.

    T-PPO updates the policy on trajectories cut off before they finish. EGAE computes advantages on
    such partial trajectories by bootstrapping at the cut with the critic, and the value function is
    trained only on trajectories that completed::

        δ_t = r_t + γ V(s_{t+1}) − V(s_t),  with V(s_L) bootstrapping the cut at L
        Â_t = Σ_{k=0}^{L−1−t} (γλ)^k δ_{t+k}
        value_mask_t = 1  iff the episode containing step t ends (terminated or truncated by the env)
                          at some step t' ≥ t inside this window

    Here the "cut" is the end of the rollout window (the episode continues in the next rollout): the
    advantages are exactly :func:`gae` (which already bootstraps the window end with ``last_value``);
    what EGAE adds is ``value_mask``, which is 0 on the trailing, still-running segment of each env so
    that its bootstrapped λ-returns are not used as value targets. With no incomplete trajectory in the
    window (every env's last step ends an episode) ``value_mask`` is all ones: EGAE = GAE.

    Args and shapes as :func:`gae`. Returns ``(advantages, targets, value_mask)``, each ``[T, ...]``.
    """
    advantages, targets = gae(rewards, values, final_values, last_value, terminated, truncated, gamma, gae_lambda)
    done = jnp.logical_or(jnp.asarray(terminated, bool), jnp.asarray(truncated, bool)).astype(values.dtype)
    value_mask = jax.lax.cummax(done, axis=0, reverse=True)
    return advantages, targets, value_mask
