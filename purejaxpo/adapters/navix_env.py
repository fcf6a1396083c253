"""Navix (MiniGrid in JAX) behind the gymnax 1.x step API: ``make_env("navix/<id>")``.

Navix's ``Environment.step(timestep, action)`` resets *one call late*: a done timestep (``step_type``
``TRUNCATION`` = 1 or ``TERMINATION`` = 2) is returned as is, and the next call ignores the action and
resets. :class:`NavixGymnaxWrapper` instead advances with navix's transition (``Environment._step``, the
body of ``step`` for a timestep that is not done) and resets in the same call, as our API requires:

- ``terminated`` is navix's ``TERMINATION`` (goal reached, lava, ...), ``truncated`` its ``TRUNCATION``
  (``t >= max_steps``, the limit the env was built with), or ``t >= params.max_steps_in_episode`` when that
  is smaller; never both.
- ``info["final_observation"]`` is the observation of the done timestep, before the reset.

Observations are navix's own for the id: every registered id uses ``navix.observations.symbolic``, the
fully observed grid as ``uint8 [H, W, 3]`` (object, colour, state per cell, MiniGrid's encoding). Pass
``observation_fn=navix.observations.symbolic_first_person`` for MiniGrid's egocentric ``[7, 7, 3]`` view.
Rewards are navix's (``1`` on reaching the goal for the Empty/DoorKey family); ``penality_coeff=0.9``
gives MiniGrid's ``1 - 0.9 t / max_steps``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces

from purejaxpo.adapters.common import tree_where, unknown_id_error

# A few ids, listed statically so that `list_envs` does not import navix; any id of navix's registry works.
NAVIX_ENV_NAMES = (
    "Navix-Empty-5x5-v0", "Navix-Empty-8x8-v0", "Navix-Empty-Random-5x5-v0", "Navix-DoorKey-5x5-v0",
    "Navix-DoorKey-8x8-v0", "Navix-FourRooms-v0", "Navix-LavaGapS5-v0", "Navix-SimpleCrossingS9N1-v0",
    "Navix-Dynamic-Obstacles-5x5-v0", "Navix-KeyCorridorS3R1-v0",
)
_TRUNCATION, _TERMINATION = 1, 2  # navix.environments.environment.StepType


@struct.dataclass
class NavixParams:
    max_steps_in_episode: int = 100


@struct.dataclass
class NavixWrapperState:
    timestep: Any  # the navix Timestep of the current observation (never a done one)


class NavixGymnaxWrapper:
    """Wrap a navix ``Environment`` (``reset(key) -> Timestep``, ``_step(timestep, action) -> Timestep``)."""

    def __init__(self, navix_env: Any, name: str = "navix"):
        self.navix_env = navix_env
        self._name = name

    @property
    def default_params(self) -> NavixParams:
        return NavixParams(max_steps_in_episode=int(self.navix_env.max_steps))

    @property
    def name(self) -> str:
        return self._name

    def reset(self, key: jax.Array, params: NavixParams | None = None) -> tuple[jax.Array, NavixWrapperState]:
        timestep = self.navix_env.reset(key)
        return timestep.observation, NavixWrapperState(timestep=timestep)

    def step(
        self, key: jax.Array, state: NavixWrapperState, action: jax.Array, params: NavixParams | None = None
    ) -> tuple[jax.Array, NavixWrapperState, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        """One transition, then a reset (drawn with ``key``) if it ended the episode."""
        params = self.default_params if params is None else params
        # int32 like the reset timestep's `action`, so the state keeps one dtype across steps (scan carry)
        timestep = self.navix_env._step(state.timestep, jnp.asarray(action, jnp.int32))
        terminated = timestep.step_type == _TERMINATION
        over_limit = jnp.logical_or(timestep.step_type == _TRUNCATION, timestep.t >= params.max_steps_in_episode)
        truncated = jnp.logical_and(over_limit, jnp.logical_not(terminated))
        done = jnp.logical_or(terminated, truncated)
        next_timestep = tree_where(done, self.navix_env.reset(key), timestep)
        info = {"final_observation": timestep.observation, "terminated": terminated, "truncated": truncated}
        return next_timestep.observation, NavixWrapperState(next_timestep), timestep.reward, terminated, truncated, info

    def observation_space(self, params: NavixParams | None = None) -> spaces.Box:
        space = self.navix_env.observation_space
        high = space.maximum
        if jnp.issubdtype(space.dtype, jnp.integer):  # navix declares 8 for symbolic grids, yet the player is 10
            high = jnp.iinfo(space.dtype).max
        return spaces.Box(space.minimum, high, tuple(space.shape), space.dtype)

    def action_space(self, params: NavixParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(int(self.navix_env.action_space.n))


def make_navix_env(name: str, max_steps: int = 100, **kwargs: Any) -> tuple[NavixGymnaxWrapper, NavixParams]:
    """``navix.make(name, max_steps, **kwargs)`` wrapped; returns ``(env, params)``.

    ``max_steps`` is navix's episode limit (its default, 100); ``kwargs`` go to navix's constructor
    (``observation_fn``, ``reward_fn``, ``penality_coeff``, ...).
    """
    import navix  # imported lazily: an optional extra

    if name not in navix.registry():
        raise unknown_id_error("navix", name, navix.registry())
    if not isinstance(max_steps, int) or max_steps <= 0:
        raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
    env = NavixGymnaxWrapper(navix.make(name, max_steps=max_steps, **kwargs), name)
    return env, env.default_params
