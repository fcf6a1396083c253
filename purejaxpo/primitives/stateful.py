"""Stateful transforms as pure ``(init, update)`` pairs, optax style: the state is a pytree the trainer
carries per seed (never shared across seeds), and ``update`` returns a new state.

- :data:`running_moments`: running mean/variance (Chan et al. parallel algorithm) for observation
  normalization.
- :data:`return_scaler`: the discounted-return running variance used for reward scaling
  (Engstrom et al. 2020, "Implementation Matters in Deep Policy Gradients", arXiv:2005.12729).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp

Array = jax.Array


class StatefulTransform(NamedTuple):
    """``init(...) -> state`` and ``update(state, ...) -> state``, both pure."""

    init: Callable[..., Any]
    update: Callable[..., Any]


@chex.dataclass(frozen=True)
class MomentsState:
    """Running moments of a feature vector: ``mean``, ``var`` of shape ``[*feature_shape]``, ``count`` scalar."""

    mean: Array
    var: Array
    count: Array


def _moments_init(feature_shape: tuple[int, ...]) -> MomentsState:
    return MomentsState(
        mean=jnp.zeros(feature_shape, jnp.float32),
        var=jnp.ones(feature_shape, jnp.float32),
        count=jnp.asarray(1e-4, jnp.float32),
    )


def _moments_update(state: MomentsState, batch: Array) -> MomentsState:
    """Merge the moments of ``batch`` (``[N, *feature_shape]``, any leading axes flattened) into ``state``."""
    feature_ndim = state.mean.ndim
    batch = batch.reshape((-1,) + batch.shape[batch.ndim - feature_ndim:]).astype(jnp.float32)
    batch_mean = jnp.mean(batch, axis=0)
    batch_var = jnp.var(batch, axis=0)
    batch_count = jnp.asarray(batch.shape[0], jnp.float32)
    delta = batch_mean - state.mean
    total = state.count + batch_count
    mean = state.mean + delta * batch_count / total
    m2 = state.var * state.count + batch_var * batch_count + jnp.square(delta) * state.count * batch_count / total
    return MomentsState(mean=mean, var=m2 / total, count=total)


running_moments = StatefulTransform(_moments_init, _moments_update)


def normalize_with(state: MomentsState, x: Array, clip: float = 10.0, eps: float = 1e-8) -> Array:
    """``clip((x − mean) / sqrt(var + eps), −clip, clip)``; ``x`` is ``[..., *feature_shape]``."""
    return jnp.clip((x - state.mean) / jnp.sqrt(state.var + eps), -clip, clip)


@chex.dataclass(frozen=True)
class ReturnScalerState:
    """``returns`` ``[B]``: the running discounted return per env; ``moments``: its running variance."""

    returns: Array
    moments: MomentsState


def _return_scaler_init(batch_shape: tuple[int, ...]) -> ReturnScalerState:
    return ReturnScalerState(returns=jnp.zeros(batch_shape, jnp.float32), moments=_moments_init(()))


def _return_scaler_update(
    state: ReturnScalerState, rewards: Array, dones: Array, gamma: float | Array
) -> ReturnScalerState:
    """Roll the discounted return through ``rewards``/``dones`` ``[T, B]`` and merge its moments::

        G_t = γ G_{t−1} (1 − done_{t−1}) + r_t

    (the return restarts after an episode boundary). Returns the new state.
    """

    def step(carry: tuple[Array, Array], inputs: tuple[Array, Array]) -> tuple[tuple[Array, Array], Array]:
        ret, prev_done = carry
        reward, done = inputs
        ret = gamma * ret * (1.0 - prev_done) + reward
        return (ret, done), ret

    dones = jnp.asarray(dones, jnp.float32)
    prev_done = jnp.zeros_like(state.returns)
    (returns, _), all_returns = jax.lax.scan(step, (state.returns, prev_done), (rewards, dones))
    # Carry the boundary into the next rollout: a return that just ended restarts at 0.
    returns = returns * (1.0 - dones[-1])
    return ReturnScalerState(returns=returns, moments=_moments_update(state.moments, all_returns))


return_scaler = StatefulTransform(_return_scaler_init, _return_scaler_update)


def scale_rewards(state: ReturnScalerState, rewards: Array, clip: float = 10.0, eps: float = 1e-8) -> Array:
    """``clip(r / sqrt(Var[G] + eps), −clip, clip)``: rewards divided by the discounted-return std."""
    return jnp.clip(rewards / jnp.sqrt(state.moments.var + eps), -clip, clip)
