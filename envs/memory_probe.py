"""``MemoryProbe-v0``: a probe task that needs memory (for testing recurrent policies).

Each episode lasts ``length`` steps. The first observation shows a cue bit (``obs[0] = ±1``), every later one
shows ``obs[0] = 0``; the last step is flagged (``obs[1] = 1``) and only there the action counts: reward ``+1`` if
it equals the cue (``1`` for ``+1``, ``0`` for ``−1``), ``−1`` otherwise; every other step pays 0. The episode then
terminates. A feed-forward policy sees the same observation at the query step whatever the cue, so its expected
return is exactly 0; a policy that remembers the first observation scores 1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass(kw_only=True)
class MemoryProbeState(environment.EnvState):
    cue: jax.Array  # [] int32, 0 or 1
    time: jax.Array  # [] int32, steps taken in this episode


@struct.dataclass(kw_only=True)
class MemoryProbeParams(environment.EnvParams):
    length: int = struct.field(pytree_node=False, default=5)


class MemoryProbe(environment.Environment[MemoryProbeState, MemoryProbeParams]):
    """See the module docstring; observations ``[cue signal, query flag]`` float32, 2 actions."""

    def __init__(self, length: int = 5, max_steps_in_episode: int | None = None):
        super().__init__()
        if not isinstance(length, int) or length < 2:
            raise ValueError(f"MemoryProbe length must be an integer >= 2 (cue, then query), got {length!r}")
        limit = length if max_steps_in_episode is None else max_steps_in_episode
        self._params = MemoryProbeParams(length=length, max_steps_in_episode=limit)

    @property
    def default_params(self) -> MemoryProbeParams:
        return self._params

    @property
    def name(self) -> str:
        return "MemoryProbe-v0"

    @property
    def num_actions(self) -> int:
        return 2

    def _obs(self, state: MemoryProbeState, params: MemoryProbeParams) -> jax.Array:
        cue = jnp.where(state.time == 0, 2.0 * state.cue.astype(jnp.float32) - 1.0, 0.0)
        query = (state.time == params.length - 1).astype(jnp.float32)
        return jnp.stack([cue, query])

    def step_env(self, key: jax.Array, state: MemoryProbeState, action: jax.Array, params: MemoryProbeParams):
        at_query = state.time == params.length - 1
        reward = jnp.where(at_query, jnp.where(action == state.cue, 1.0, -1.0), 0.0)
        state = state.replace(time=state.time + 1)
        terminated = state.time >= params.length
        return self._obs(state, params), state, reward, terminated, {}

    def reset_env(self, key: jax.Array, params: MemoryProbeParams) -> tuple[jax.Array, MemoryProbeState]:
        state = MemoryProbeState(cue=jax.random.bernoulli(key).astype(jnp.int32), time=jnp.zeros((), jnp.int32))
        return self._obs(state, params), state

    def is_terminated(self, state: MemoryProbeState, params: MemoryProbeParams) -> jax.Array:
        return state.time >= params.length

    def is_truncated(self, state: MemoryProbeState, params: MemoryProbeParams) -> jax.Array:
        """The time limit, when it cuts an episode before its natural end (never both flags at once)."""
        return jnp.logical_and(state.time >= params.max_steps_in_episode, state.time < params.length)

    def observation_space(self, params: MemoryProbeParams) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (2,), jnp.float32)

    def action_space(self, params: MemoryProbeParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(2)


def make_memory_probe(length: int = 5, max_steps_in_episode: int | None = None) -> tuple[MemoryProbe, MemoryProbeParams]:
    """Factory for ``MemoryProbe-v0`` (``length`` steps per episode: cue first, query last). A time limit
    ``max_steps_in_episode < length`` truncates every episode before its query (to test truncation)."""
    env = MemoryProbe(length, max_steps_in_episode)
    return env, env.default_params
