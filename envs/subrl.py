"""Any gymnax env plus a monotone submodular set function → a SubRL environment, and the visited-set observation of
SubPO's non-Markovian agent (Prajapat et al., "Submodular Reinforcement Learning", ICLR 2024, arXiv:2307.13372).

- :class:`SubRLWrapper` pays the marginal gain ``Δ_t = F(τ ∪ {cell_{t+1}}) − F(τ)`` of a discretization of the
  wrapped env's states, with the same ``info`` keys as :mod:`purejaxpo.envs.submodular_worlds`;
- :class:`SetFunction` adapts a plain ``F(visited [N])`` to the incremental objective protocol;
- :func:`grid_discretizer` maps observations to grid cells;
- :class:`VisitedObservation` appends the visited mask to the observation (SubPO agent ``NM``).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

Array = jax.Array
OBS_MODES = ("base", "time", "visited")


class SetFunction:
    """A plain set function ``F(visited [N]) -> []`` in the incremental objective protocol that
    :class:`SubRLWrapper` and :mod:`purejaxpo.envs.submodular_worlds` share (``init``, ``gain``, ``modular``; ``data`` is
    unused). The running summary is the visited mask; each step costs two evaluations of ``F``. The modular
    (SRL) value of a state is ``F({s})``, as in the paper's baselines [C for coverage/entropy]."""

    name = "set_function"

    def __init__(self, value_fn: Callable[[Array], Array], num_cells: int):
        self.value_fn, self.num_cells = value_fn, num_cells

    def _single(self, cell: Array) -> Array:
        return jnp.zeros(self.num_cells, bool).at[cell].set(True)

    def init(self, cell: Array, data: Any, capacity: int) -> tuple[Array, Array]:
        visited = self._single(cell)
        return visited, jnp.asarray(self.value_fn(visited), jnp.float32)

    def gain(self, summary: Array, cell: Array, is_new: Array, data: Any) -> tuple[Array, Array]:
        new = summary.at[cell].set(True)
        return jnp.asarray(self.value_fn(new) - self.value_fn(summary), jnp.float32), new

    def modular(self, cell: Array, data: Any) -> Array:
        return jnp.asarray(self.value_fn(self._single(cell)), jnp.float32)


def grid_discretizer(
    low: Any, high: Any, bins: tuple[int, ...], dims: tuple[int, ...] | None = None
) -> tuple[Callable[[Array, Any], Array], int]:
    """Uniform grid over observation dimensions ``dims``: ``(discretize(obs, state) -> cell [] int32, N)``.

    Each selected coordinate ``x_i`` falls in bin ``⌊(x_i − low_i)/(high_i − low_i) · bins_i⌋`` (clipped to the
    grid); cells are numbered row-major (``numpy.ravel_multi_index``). ``N = Π bins``.
    """
    bins = tuple(int(b) for b in bins)
    if not bins or any(b <= 0 for b in bins):
        raise ValueError(f"bins must be positive integers, got {bins}")
    low = np.broadcast_to(np.asarray(low, np.float32), (len(bins),))
    high = np.broadcast_to(np.asarray(high, np.float32), (len(bins),))
    if np.any(high <= low):
        raise ValueError(f"high must exceed low in every dimension, got low={low.tolist()}, high={high.tolist()}")
    index = np.asarray(dims if dims is not None else range(len(bins)), np.int32)
    if index.shape != (len(bins),):
        raise ValueError(f"dims {dims} must name one observation dimension per bin ({len(bins)})")
    strides = np.cumprod((1,) + bins[::-1])[:-1][::-1].astype(np.int32)  # row-major

    def discretize(obs: Array, state: Any = None) -> Array:
        x = jnp.asarray(obs, jnp.float32).reshape(-1)[index]
        idx = jnp.floor((x - low) / (high - low) * np.asarray(bins, np.float32)).astype(jnp.int32)
        idx = jnp.clip(idx, 0, np.asarray(bins, np.int32) - 1)
        return jnp.sum(idx * strides).astype(jnp.int32)

    return discretize, int(np.prod(bins))


@struct.dataclass
class SubRLState:
    inner: Any  # the wrapped env's state
    visited: Array  # [N] bool, the set τ of visited cells
    value: Array  # [] float32, F(τ)
    modular_value: Array  # [] float32, Σ_j m(s_j) with multiplicity
    summary: Any  # the objective's running summary of τ
    time: Array  # [] int32, steps taken in this episode


@struct.dataclass
class SubRLParams:
    inner: Any  # the wrapped env's params
    data: Any = None  # objective data (None for SetFunction)
    horizon: int = struct.field(pytree_node=False, default=40)  # states per episode (static: buffer sizes)

    @property
    def max_steps_in_episode(self) -> int:
        return self.horizon - 1


class SubRLWrapper(environment.Environment[SubRLState, SubRLParams]):
    """Any gymnax-style env plus a set function over a discretization of its states → a SubRL env.

    ``cell_t = discretize(obs_t, inner_state_t)`` maps each state to one of ``num_cells`` cells; the wrapper keeps
    the visited set and pays ``Δ_t = F(τ ∪ {cell_{t+1}}) − F(τ)`` as reward (the inner reward goes to
    ``info["base_reward"]``), with ``info["objective"]``, ``info["modular_reward"]`` and
    ``info["modular_objective"]`` as the grid worlds. An episode is ``horizon`` states (``horizon − 1`` steps,
    then ``terminated``: a fixed-horizon objective), or ends earlier when the inner env terminates / truncates.

    ``objective`` follows the protocol of the grid worlds' objectives (``init(cell, data, capacity)``,
    ``gain(summary, cell, is_new, data)``, ``modular(cell, data)``): :class:`SetFunction` for any plain ``F``, or
    e.g. ``purejaxpo.envs.submodular_worlds.Coverage`` with its ``data``. Observations (``obs_mode``): ``"base"`` the inner
    observation; ``"time"`` (default) that plus ``h/(H−1)`` (a time-indexed policy, agent ``M``); ``"visited"``
    that plus the visited mask ``[N]`` (agent ``NM``). Inner observations must be flat vectors.
    """

    def __init__(
        self,
        env: Any,
        objective: Any,
        discretize: Callable[[Array, Any], Array],
        num_cells: int,
        *,
        env_params: Any = None,
        data: Any = None,
        horizon: int = 40,
        obs_mode: str = "time",
    ):
        super().__init__()
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {OBS_MODES}, got {obs_mode!r}")
        if not isinstance(horizon, int) or horizon < 2:
            raise ValueError(f"horizon (states per episode) must be an integer >= 2, got {horizon!r}")
        if not isinstance(num_cells, int) or num_cells <= 0:
            raise ValueError(f"num_cells must be a positive integer, got {num_cells!r}")
        self._env, self.objective, self.discretize = env, objective, discretize
        self.num_cells, self.obs_mode = num_cells, obs_mode
        inner_params = env.default_params if env_params is None else env_params
        self._default_params = SubRLParams(inner=inner_params, data=data, horizon=horizon)
        inner_shape = env.observation_space(inner_params).shape
        if len(inner_shape) != 1:
            raise ValueError(f"SubRLWrapper needs flat vector observations, got shape {tuple(inner_shape)}")

    @property
    def default_params(self) -> SubRLParams:
        return self._default_params

    @property
    def name(self) -> str:
        return f"SubRL-{self._env.name}"

    @property
    def num_actions(self) -> int:
        return self._env.num_actions

    def _obs(self, obs: Array, state: SubRLState, params: SubRLParams) -> Array:
        obs = jnp.asarray(obs, jnp.float32).reshape(-1)
        if self.obs_mode == "base":
            return obs
        t = state.time.astype(jnp.float32)[None] / (params.horizon - 1)
        if self.obs_mode == "time":
            return jnp.concatenate([obs, t])
        return jnp.concatenate([obs, t, state.visited.astype(jnp.float32)])

    def _cell(self, obs: Array, inner_state: Any) -> Array:
        return jnp.clip(jnp.asarray(self.discretize(obs, inner_state), jnp.int32), 0, self.num_cells - 1)

    def reset_env(self, key: Array, params: SubRLParams) -> tuple[Array, SubRLState]:
        obs, inner = self._env.reset_env(key, params.inner)
        cell = self._cell(obs, inner)
        summary, value = self.objective.init(cell, params.data, params.horizon)
        state = SubRLState(
            inner=inner, visited=jnp.zeros(self.num_cells, bool).at[cell].set(True),
            value=jnp.asarray(value, jnp.float32),
            modular_value=jnp.asarray(self.objective.modular(cell, params.data), jnp.float32),
            summary=summary, time=jnp.zeros((), jnp.int32),
        )
        return self._obs(obs, state, params), state

    def step_env(
        self, key: Array, state: SubRLState, action: Array, params: SubRLParams
    ) -> tuple[Array, SubRLState, Array, Array, dict[str, Array]]:
        obs, inner, base_reward, terminated, info = self._env.step_env(key, state.inner, action, params.inner)
        cell = self._cell(obs, inner)
        gain, summary = self.objective.gain(state.summary, cell, ~state.visited[cell], params.data)
        modular = jnp.asarray(self.objective.modular(cell, params.data), jnp.float32)
        gain = jnp.asarray(gain, jnp.float32)
        new_state = SubRLState(
            inner=inner, visited=state.visited.at[cell].set(True), value=state.value + gain,
            modular_value=state.modular_value + modular, summary=summary, time=state.time + 1,
        )
        terminated = jnp.logical_or(terminated, new_state.time >= params.horizon - 1)
        info = {
            **info, "base_reward": jnp.asarray(base_reward, jnp.float32), "cell": cell, "modular_reward": modular,
            "objective": new_state.value, "modular_objective": new_state.modular_value,
        }
        return self._obs(obs, new_state, params), new_state, gain, terminated, info

    def is_terminated(self, state: SubRLState, params: SubRLParams) -> Array:
        return state.time >= params.horizon - 1

    def is_truncated(self, state: SubRLState, params: SubRLParams) -> Array:
        return jnp.logical_or(self._env.is_truncated(state.inner, params.inner), state.time >= params.horizon - 1)

    def observation_space(self, params: SubRLParams) -> spaces.Box:
        inner = self._env.observation_space(params.inner)
        (dim,) = inner.shape
        low = jnp.broadcast_to(jnp.asarray(inner.low, jnp.float32), (dim,))
        high = jnp.broadcast_to(jnp.asarray(inner.high, jnp.float32), (dim,))
        extra = {"base": 0, "time": 1, "visited": 1 + self.num_cells}[self.obs_mode]
        low = jnp.concatenate([low, jnp.zeros(extra, jnp.float32)])
        high = jnp.concatenate([high, jnp.ones(extra, jnp.float32)])
        return spaces.Box(low, high, (dim + extra,), jnp.float32)

    def action_space(self, params: SubRLParams | None = None) -> Any:
        return self._env.action_space(None if params is None else params.inner)


class VisitedObservation(environment.Environment):
    """Appends the visited mask ``state.visited [N]`` to a flat observation: the history input of the ``NM``
    agent (a sufficient statistic of ``s_0..s_h`` for the set function [P, ours]). Dynamics, rewards, info and
    spaces otherwise come from the wrapped env; other attributes are forwarded to it."""

    obs_mode = "visited"

    def __init__(self, env: Any, env_params: Any):
        super().__init__()
        self._env = env
        state = jax.eval_shape(lambda k: env.reset_env(k, env_params)[1], jax.random.key(0))
        visited = getattr(state, "visited", None)
        if visited is None or len(visited.shape) != 1:
            raise ValueError(
                f"agent 'NM' needs the visited set in the env state (a [N] mask `state.visited`); "
                f"{getattr(env, 'name', type(env).__name__)} has none: build it with purejaxpo.envs.submodular_worlds or "
                f"wrap it in SubRLWrapper"
            )
        self.num_cells = int(visited.shape[0])
        obs_shape = env.observation_space(env_params).shape
        if len(obs_shape) != 1:
            raise ValueError(f"agent 'NM' needs flat vector observations, got shape {tuple(obs_shape)}")

    def __getattr__(self, name: str) -> Any:
        if name == "_env":
            raise AttributeError(name)
        return getattr(self._env, name)

    @property
    def default_params(self) -> Any:
        return self._env.default_params

    @property
    def name(self) -> str:
        return self._env.name

    @property
    def num_actions(self) -> int:
        return self._env.num_actions

    def _obs(self, obs: Array, state: Any) -> Array:
        return jnp.concatenate([jnp.asarray(obs, jnp.float32).reshape(-1), state.visited.astype(jnp.float32)])

    def reset_env(self, key: Array, params: Any) -> tuple[Array, Any]:
        obs, state = self._env.reset_env(key, params)
        return self._obs(obs, state), state

    def step_env(self, key: Array, state: Any, action: Array, params: Any):
        obs, state, reward, terminated, info = self._env.step_env(key, state, action, params)
        return self._obs(obs, state), state, reward, terminated, info

    def is_terminated(self, state: Any, params: Any) -> Array:
        return self._env.is_terminated(state, params)

    def is_truncated(self, state: Any, params: Any) -> Array:
        return self._env.is_truncated(state, params)

    def observation_space(self, params: Any) -> spaces.Box:
        inner = self._env.observation_space(params)
        (dim,) = inner.shape
        low = jnp.broadcast_to(jnp.asarray(inner.low, jnp.float32), (dim,))
        high = jnp.broadcast_to(jnp.asarray(inner.high, jnp.float32), (dim,))
        low = jnp.concatenate([low, jnp.zeros(self.num_cells, jnp.float32)])
        high = jnp.concatenate([high, jnp.ones(self.num_cells, jnp.float32)])
        return spaces.Box(low, high, (dim + self.num_cells,), jnp.float32)

    def action_space(self, params: Any = None) -> Any:
        return self._env.action_space(params)
