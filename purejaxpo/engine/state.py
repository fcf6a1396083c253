"""The per-seed training state of every on-policy algorithm, and the observation transform it implies."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

from purejaxpo.primitives.stateful import MomentsState, ReturnScalerState, normalize_with, return_scaler, running_moments
from purejaxpo.rollout import EnvCarry, init_env_carry

Array = jax.Array


@struct.dataclass
class OnPolicyState:
    """Everything one seed needs to resume bit-exactly.

    ``opt_state`` is a tuple with one optimizer state per training phase (its ``hyperparams`` hold the traced
    learning rate and clipping norm, see :mod:`purejaxpo.engine.optim`); ``algo`` is the algorithm's carried
    state (an adaptive KL coefficient, EWMA parameters, a rollout buffer, …) or ``None``.
    """

    params: Any
    opt_state: Any
    obs_norm: MomentsState
    reward_scaler: ReturnScalerState
    env: EnvCarry
    key: Array
    update_index: Array
    algo: Any = None


def init_state(env: Any, env_params: Any, num_envs: int, obs_shape: tuple[int, ...], params: Any, opt_state: Any,
               key: Array, algo: Any = None, memory: Any = None) -> OnPolicyState:
    """A fresh state: ``num_envs`` reset envs (from the first half of ``key``), empty normalizers, and a
    recurrent policy's fresh ``memory`` ``[B, ...]`` (``None`` for feed-forward ones) in the env carry, so a
    resumed run continues with the exact hidden state."""
    env_key, key = jax.random.split(key)
    return OnPolicyState(
        params=params,
        opt_state=opt_state,
        obs_norm=running_moments.init(obs_shape),
        reward_scaler=return_scaler.init((num_envs,)),
        env=init_env_carry(env, env_params, env_key, num_envs, memory),
        key=key,
        update_index=jnp.zeros((), jnp.int32),
        algo=algo,
    )


def observe_fn(config: Any, obs_norm: MomentsState) -> Callable[[Array], Array]:
    """The observation transform the networks see: float32, normalized with the rollout-time statistics when
    ``config.normalize_obs``."""
    if getattr(config, "normalize_obs", False):
        return lambda obs: normalize_with(obs_norm, obs.astype(jnp.float32))
    return lambda obs: obs.astype(jnp.float32)
