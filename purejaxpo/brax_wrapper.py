"""Brax environments behind the gymnax 1.x step API, with truncation kept apart from termination.

Brax's own ``AutoResetWrapper`` overwrites the terminal observation with the reset one, so a
truncated episode could not be bootstrapped. :class:`BraxGymnaxWrapper` counts steps itself, reports
``terminated`` (brax's ``done``) and ``truncated`` (the step limit) separately, puts the pre-reset
observation in ``info["final_observation"]``, and then resets. Like brax's wrapper it resets to the
env's first state (drawn at ``reset``), which avoids a full physics re-initialization every step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces


@struct.dataclass
class BraxParams:
    max_steps_in_episode: int = 1000


@struct.dataclass
class BraxWrapperState:
    inner: Any  # the brax State
    first: Any  # the brax State the episode started from (auto-reset target)
    time: jax.Array


class BraxGymnaxWrapper:
    """Wrap a brax ``Env`` (``reset(rng)``, ``step(state, action)``, ``observation_size``, ``action_size``)."""

    def __init__(self, brax_env: Any, episode_length: int = 1000):
        if episode_length <= 0:
            raise ValueError(f"episode_length must be positive, got {episode_length}")
        self.brax_env = brax_env
        self.episode_length = episode_length

    @property
    def default_params(self) -> BraxParams:
        return BraxParams(max_steps_in_episode=self.episode_length)

    @property
    def name(self) -> str:
        return type(self.brax_env).__name__

    def reset(self, key: jax.Array, params: BraxParams | None = None) -> tuple[jax.Array, BraxWrapperState]:
        state = self.brax_env.reset(key)
        return state.obs, BraxWrapperState(inner=state, first=state, time=jnp.zeros((), jnp.int32))

    def step(
        self, key: jax.Array, state: BraxWrapperState, action: jax.Array, params: BraxParams | None = None
    ) -> tuple[jax.Array, BraxWrapperState, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        params = self.default_params if params is None else params
        inner = self.brax_env.step(state.inner, action)
        time = state.time + 1
        terminated = inner.done > 0.5
        truncated = jnp.logical_and(time >= params.max_steps_in_episode, jnp.logical_not(terminated))
        done = jnp.logical_or(terminated, truncated)
        final_obs = inner.obs
        next_inner = jax.tree.map(lambda first, cur: jnp.where(done, first, cur), state.first, inner)
        next_state = BraxWrapperState(inner=next_inner, first=state.first, time=jnp.where(done, 0, time))
        info = {"final_observation": final_obs, "terminated": terminated, "truncated": truncated}
        return next_inner.obs, next_state, inner.reward, terminated, truncated, info

    def observation_space(self, params: BraxParams | None = None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (self.brax_env.observation_size,), jnp.float32)

    def action_space(self, params: BraxParams | None = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (self.brax_env.action_size,), jnp.float32)


def make_brax_env(name: str, episode_length: int = 1000, **kwargs: Any) -> tuple[BraxGymnaxWrapper, BraxParams]:
    """``brax.envs.get_environment(name, **kwargs)`` wrapped; returns ``(env, params)``."""
    from purejaxpo.quiet import quiet_import

    brax_envs = quiet_import("brax.envs")  # imported lazily (slow); its "Failed to import warp" goes to the log

    env = BraxGymnaxWrapper(brax_envs.get_environment(name, **kwargs), episode_length)
    return env, env.default_params
