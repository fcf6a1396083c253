"""Jumanji behind the gymnax 1.x step API, with action masks: ``make_env("jumanji/<id>")``.

Jumanji's ``Environment.step(state, action) -> (state, TimeStep)`` does not reset. A ``TimeStep`` with
``step_type == LAST`` ends the episode; its ``discount`` tells how (dm_env's convention, which jumanji
follows): ``0`` = termination, ``> 0`` = truncation. :class:`JumanjiGymnaxWrapper` reports

- ``terminated = LAST and discount == 0``;
- ``truncated = LAST and discount > 0``, or our own step counter reaching ``params.max_steps_in_episode``
  while jumanji has not ended the episode; never both;
- ``info["final_observation"]``: the observation of that last ``TimeStep``, before the reset (drawn with
  the step's ``key``) replaces it.

Note that jumanji 1.1.2's single-agent envs (Maze, Snake, TSP, ...) end their own ``time_limit`` with
``termination`` (discount 0), so that limit reads as ``terminated``. To make a time limit bootstrappable,
build the env with a larger ``time_limit`` and set our ``max_steps``.

Observations: jumanji's are named tuples of arrays. We return one ``float32`` vector, the concatenation
of every field except ``action_mask``, each raveled, in the named tuple's field order (nested tuples such
as Maze's ``Position(row, col)`` expand in place); ``observation_space`` is a ``Box`` of that length.

Action masks (the convention of Jumanji and Pgx: ``bool``, ``True`` = legal), for envs whose observation
has an ``action_mask`` (``env.has_action_mask``):

- the mask of the *current* observation is ``state.action_mask``, so after ``obs, state = reset(...)``
  it is the reset observation's mask;
- ``step`` returns ``info["action_mask"]``, the mask of the observation it returns (after an auto-reset,
  the new episode's first observation), equal to the returned ``state.action_mask``.

For a ``Discrete`` action space the mask is ``[num_actions]``. For a ``MultiDiscrete`` one it has
jumanji's shape for that env, e.g. ``[num_machines, num_jobs + 1]`` (one row per component) for
JobShop, or the joint ``[rows, cols]`` for Minesweeper. Envs without a mask (RubiksCube) carry
``state.action_mask = None`` and no ``info["action_mask"]``.

Only envs with a scalar reward are accepted (multi-agent envs with per-agent rewards are not).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import spaces

from purejaxpo.adapters.common import tree_where, unknown_id_error
from purejaxpo.spaces import MultiDiscrete

# A few single-agent ids, listed statically so that `list_envs` does not import jumanji; any registered
# id whose reward is a scalar works. (Sokoban downloads its levels on first use.)
JUMANJI_ENV_NAMES = (
    "Maze-v0", "Snake-v1", "Game2048-v1", "SlidingTilePuzzle-v0", "PacMan-v1", "Knapsack-v1", "TSP-v1",
    "CVRP-v1", "GraphColoring-v1", "Minesweeper-v0", "JobShop-v0",
)


@struct.dataclass
class JumanjiParams:
    max_steps_in_episode: int = 1000


@struct.dataclass
class JumanjiWrapperState:
    inner: Any  # the jumanji State
    action_mask: Any  # bool mask of the current observation (True = legal), or None
    time: jax.Array  # steps since the episode started


def flatten_observation(observation: Any) -> jax.Array:
    """Every field but ``action_mask``, raveled to ``float32`` and concatenated: ``[obs_dim]``."""
    if hasattr(observation, "_replace") and "action_mask" in observation._fields:
        observation = observation._replace(action_mask=None)
    leaves = jax.tree.leaves(observation)
    return jnp.concatenate([jnp.ravel(leaf).astype(jnp.float32) for leaf in leaves])


def _mask_of(observation: Any) -> jax.Array | None:
    mask = getattr(observation, "action_mask", None)
    return None if mask is None else jnp.asarray(mask, bool)


class JumanjiGymnaxWrapper:
    """Wrap a jumanji ``Environment`` (``reset(key)``, ``step(state, action)``, specs)."""

    def __init__(self, jumanji_env: Any, max_steps: int = 1000, name: str = "jumanji"):
        from jumanji import specs  # the wrapper needs jumanji anyway; imported here to stay lazy

        if max_steps <= 0:
            raise ValueError(f"max_steps must be positive, got {max_steps}")
        reward_shape = tuple(jumanji_env.reward_spec.shape)
        if reward_shape != ():
            raise ValueError(f"{name}: only scalar rewards are supported, this env's reward has shape {reward_shape}")
        self.jumanji_env = jumanji_env
        self.max_steps = max_steps
        self._name = name
        example = jumanji_env.observation_spec.generate_value()
        self._obs_dim = int(flatten_observation(example).shape[0])
        self.has_action_mask = _mask_of(example) is not None
        self._action_space = _action_space(jumanji_env.action_spec, specs, name)
        self._action_dtype = jumanji_env.action_spec.dtype

    @property
    def default_params(self) -> JumanjiParams:
        return JumanjiParams(max_steps_in_episode=self.max_steps)

    @property
    def name(self) -> str:
        return self._name

    def reset(self, key: jax.Array, params: JumanjiParams | None = None) -> tuple[jax.Array, JumanjiWrapperState]:
        inner, timestep = self.jumanji_env.reset(key)
        state = JumanjiWrapperState(inner, _mask_of(timestep.observation), jnp.zeros((), jnp.int32))
        return flatten_observation(timestep.observation), state

    def step(
        self, key: jax.Array, state: JumanjiWrapperState, action: jax.Array, params: JumanjiParams | None = None
    ) -> tuple[jax.Array, JumanjiWrapperState, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        """One jumanji step, then a reset (drawn with ``key``) if it ended the episode."""
        params = self.default_params if params is None else params
        inner, timestep = self.jumanji_env.step(state.inner, jnp.asarray(action, self._action_dtype))
        time = state.time + 1
        last = timestep.last()
        terminated = jnp.logical_and(last, timestep.discount == 0)
        over_limit = jnp.logical_or(last, time >= params.max_steps_in_episode)
        truncated = jnp.logical_and(over_limit, jnp.logical_not(terminated))
        done = jnp.logical_or(terminated, truncated)
        reset_inner, reset_timestep = self.jumanji_env.reset(key)
        next_inner, next_observation = tree_where(
            done, (reset_inner, reset_timestep.observation), (inner, timestep.observation)
        )
        mask = _mask_of(next_observation)
        info = {
            "final_observation": flatten_observation(timestep.observation),
            "terminated": terminated,
            "truncated": truncated,
            "extras": timestep.extras,
        }
        if mask is not None:
            info["action_mask"] = mask
        next_state = JumanjiWrapperState(next_inner, mask, jnp.where(done, 0, time))
        reward = jnp.asarray(timestep.reward, jnp.float32)
        return flatten_observation(next_observation), next_state, reward, terminated, truncated, info

    def action_mask(self, state: JumanjiWrapperState) -> jax.Array | None:
        """The mask of the current observation (``True`` = legal), or ``None`` for envs without one."""
        return state.action_mask

    def observation_space(self, params: JumanjiParams | None = None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (self._obs_dim,), jnp.float32)

    def action_space(self, params: JumanjiParams | None = None) -> Any:
        return self._action_space


def _action_space(spec: Any, specs: Any, name: str) -> Any:
    """jumanji ``DiscreteArray`` -> ``Discrete``, ``MultiDiscreteArray`` -> our ``MultiDiscrete``,
    float ``BoundedArray`` -> ``Box`` (an integer one, e.g. MultiCVRP's, has no space here)."""
    if isinstance(spec, specs.DiscreteArray):
        return spaces.Discrete(int(spec.num_values))
    if isinstance(spec, specs.MultiDiscreteArray):
        nvec = np.asarray(spec.num_values).reshape(-1)
        if (nvec != nvec[0]).any():
            raise ValueError(f"{name}: MultiDiscrete actions need the same number of options per component, got {nvec.tolist()}")
        return MultiDiscrete(nvec)
    if isinstance(spec, specs.BoundedArray) and jnp.issubdtype(spec.dtype, jnp.floating):
        return spaces.Box(jnp.asarray(spec.minimum), jnp.asarray(spec.maximum), tuple(spec.shape), spec.dtype)
    raise ValueError(f"{name}: unsupported jumanji action spec {type(spec).__name__}")


def make_jumanji_env(
    name: str, max_steps: int | None = None, **kwargs: Any
) -> tuple[JumanjiGymnaxWrapper, JumanjiParams]:
    """``jumanji.make(name, **kwargs)`` wrapped; returns ``(env, params)``.

    ``max_steps`` is our step limit (truncation); by default the env's ``time_limit`` if it has one, else
    1000. ``kwargs`` go to jumanji's constructor (``generator``, ``time_limit``, ...).
    """
    import jumanji  # imported lazily: an optional extra

    registered = jumanji.registered_environments()
    if name not in registered:
        raise unknown_id_error("jumanji", name, registered)
    inner = jumanji.make(name, **kwargs)
    if max_steps is None:
        max_steps = int(getattr(inner, "time_limit", None) or 1000)
    if not isinstance(max_steps, int) or max_steps <= 0:
        raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
    env = JumanjiGymnaxWrapper(inner, max_steps, f"jumanji/{name}")
    return env, env.default_params
