"""Advantage estimation and reductions.

Conventions: arrays are ``[T, ...]`` with time on axis 0 and any trailing batch axes (``[T]``,
``[T, B]``, ``[T, B, K]``); everything broadcasts over the trailing axes, so no per-sequence ``vmap``
is needed.
"""

from __future__ import annotations

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
