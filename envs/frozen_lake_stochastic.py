"""Stochastic FrozenLake with post-decision states (PDPPO's secondary benchmark).

Source: the reference code ``code/Lake application/envs/frozen_lake.py`` of github.com/leokan92/pdppo. Grid ``nrow × ncol`` with tiles S (start), F (frozen), H (hole), G (goal). Actions (gym
order): 0 LEFT, 1 DOWN, 2 RIGHT, 3 UP; moves into the border leave the position unchanged.

One step from a frozen/start cell ``s`` [C]:

1. post-decision (deterministic, :meth:`FrozenLakeStochastic.post_decision`): move to the intended cell
   ``c = move(s, a)``; reward ``r(c)`` with ``r(c) = 1`` on the goal, else
   ``1/(1 + |c − goal|₁) − [c is a hole]/(nrow + ncol)``. Reaching the goal terminates (no slip).
2. stochastic: with probability ``slip_prob = 0.5`` slip one more step from ``c`` in a direction drawn from
   ``c``'s own distribution (``Dirichlet(1,1,1,1)`` per tile, drawn once with NumPy seed 42), adding ``r(c')``
   and terminating if ``c'`` is the goal; otherwise stay on ``c``.

Holes are absorbing *in the transition table*: landing in a hole does not end the episode; the next step from a
hole stays there with reward 0 and ``terminated = True`` [C]. The time limit is gym's ``FrozenLake-v1`` one
(100 steps). Observation: one-hot position ``[nrow·ncol]`` float32; ``info["post_obs"]`` the one-hot intended
cell, ``info["post_reward"] = r(c)``, ``info["stochastic_reward"] = reward − post_reward``.

[P] our reading: the reference ``get_post_decision_state`` returns only the proximity term; here
``post_reward`` also carries the hole penalty (and 1 at the goal), i.e. exactly the deterministic part of the
transition's reward, so that ``reward = post_reward + stochastic_reward`` holds every step. From a hole the
post-decision state is the hole itself with ``post_reward = 0``.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

FROZEN, HOLE, START, GOAL = 0, 1, 2, 3
_CODES = {"F": FROZEN, "H": HOLE, "S": START, "G": GOAL}
MAPS = {
    "4x4": ["SFFF", "FHFH", "FFFH", "HFFG"],
    "8x8": ["SFFFFFFF", "FFFFFFFF", "FFFHFFFF", "FFFFFHFF", "FFFHFFFF", "FHHFFFHF", "FHFFHFHF", "FFFHFFFG"],
}
# (d_row, d_col) for LEFT, DOWN, RIGHT, UP.
_MOVES = np.array([[0, -1], [1, 0], [0, 1], [-1, 0]], np.int32)


@struct.dataclass(kw_only=True)
class FrozenLakeState(environment.EnvState):
    pos: jax.Array  # [] int32, cell index row·ncol + col
    time: jax.Array  # [] int32


@struct.dataclass(kw_only=True)
class FrozenLakeParams(environment.EnvParams):
    tiles: jax.Array  # [N] int32 tile codes (FROZEN, HOLE, START, GOAL)
    slip_dirs: jax.Array  # [N, 4] float32, per-tile slip-direction probabilities
    start: jax.Array  # [] int32 start cell
    goal: jax.Array  # [] int32 goal cell
    slip_prob: jax.Array | float = 0.5
    nrow: int = struct.field(pytree_node=False, default=8)
    ncol: int = struct.field(pytree_node=False, default=8)
    max_steps_in_episode: int = 100


def generate_random_map(size: int = 8, p_frozen: float = 0.8, seed: int = 0) -> list[str]:
    """A random ``size × size`` map with S at the top-left, G at the bottom-right and a hole-free path between
    them (rejection sampling, as gym's ``generate_random_map``). Host-side NumPy, seeded."""
    rng = np.random.RandomState(seed)
    while True:
        grid = rng.choice(np.array(["F", "H"]), (size, size), p=[p_frozen, 1.0 - p_frozen])
        grid[0, 0], grid[-1, -1] = "S", "G"
        seen, frontier = {(0, 0)}, [(0, 0)]
        while frontier:
            r, c = frontier.pop()
            for dr, dc in _MOVES:
                rr, cc = r + dr, c + dc
                if 0 <= rr < size and 0 <= cc < size and (rr, cc) not in seen and grid[rr, cc] != "H":
                    seen.add((rr, cc))
                    frontier.append((rr, cc))
        if (size - 1, size - 1) in seen:
            return ["".join(row) for row in grid]


def params_from_map(desc: Sequence[str], slip_prob: float = 0.5, slip_seed: int = 42,
                    max_steps_in_episode: int = 100) -> FrozenLakeParams:
    """Build :class:`FrozenLakeParams` from rows of ``"SFHG"`` characters (exactly one S and one G)."""
    rows = [list(r) for r in desc]
    nrow, ncol = len(rows), len(rows[0])
    if any(len(r) != ncol for r in rows) or any(ch not in _CODES for r in rows for ch in r):
        raise ValueError(f"map rows must have equal length and use only 'SFHG', got {list(desc)}")
    tiles = np.array([_CODES[ch] for r in rows for ch in r], np.int32)
    if (tiles == START).sum() != 1 or (tiles == GOAL).sum() != 1:
        raise ValueError("the map needs exactly one 'S' and one 'G'")
    # Same draws as the reference code's np.random.seed(42); np.random.dirichlet(np.ones(4), (nrow, ncol)).
    slip_dirs = np.random.RandomState(slip_seed).dirichlet(np.ones(4), size=(nrow, ncol)).reshape(-1, 4)
    return FrozenLakeParams(
        tiles=jnp.asarray(tiles),
        slip_dirs=jnp.asarray(slip_dirs, jnp.float32),
        start=jnp.asarray(int(np.flatnonzero(tiles == START)[0]), jnp.int32),
        goal=jnp.asarray(int(np.flatnonzero(tiles == GOAL)[0]), jnp.int32),
        slip_prob=float(slip_prob),
        nrow=nrow,
        ncol=ncol,
        max_steps_in_episode=int(max_steps_in_episode),
    )


class FrozenLakeStochastic(environment.Environment[FrozenLakeState, FrozenLakeParams]):
    """Slippery FrozenLake with a deterministic post-decision step (see module doc)."""

    def __init__(self, params: FrozenLakeParams):
        super().__init__()
        self._default_params = params
        self.num_cells = params.nrow * params.ncol

    @property
    def default_params(self) -> FrozenLakeParams:
        return self._default_params

    @property
    def name(self) -> str:
        return "FrozenLakeStochastic-v0"

    @property
    def num_actions(self) -> int:
        return 4

    # -- pieces ---------------------------------------------------------------------------------------------------

    def _move(self, cell: jax.Array, action: jax.Array, params: FrozenLakeParams) -> jax.Array:
        d = jnp.asarray(_MOVES)[action]
        row = jnp.clip(cell // params.ncol + d[0], 0, params.nrow - 1)
        col = jnp.clip(cell % params.ncol + d[1], 0, params.ncol - 1)
        return (row * params.ncol + col).astype(jnp.int32)

    def _cell_reward(self, cell: jax.Array, params: FrozenLakeParams) -> jax.Array:
        dist = jnp.abs(cell // params.ncol - params.goal // params.ncol) + jnp.abs(
            cell % params.ncol - params.goal % params.ncol)
        proximity = 1.0 / (1.0 + dist.astype(jnp.float32))
        hole = (params.tiles[cell] == HOLE).astype(jnp.float32)
        return jnp.where(params.tiles[cell] == GOAL, 1.0, proximity - hole / (params.nrow + params.ncol))

    def _obs(self, cell: jax.Array) -> jax.Array:
        return jax.nn.one_hot(cell, self.num_cells, dtype=jnp.float32)

    def _post(self, state: FrozenLakeState, action: jax.Array, params: FrozenLakeParams):
        absorbing = params.tiles[state.pos] == HOLE  # (the goal ends the episode on arrival)
        intended = self._move(state.pos, jnp.asarray(action, jnp.int32), params)
        post_cell = jnp.where(absorbing, state.pos, intended)
        post_reward = jnp.where(absorbing, 0.0, self._cell_reward(intended, params))
        return absorbing, post_cell, post_reward

    def post_decision(
        self, state: FrozenLakeState, action: jax.Array, params: FrozenLakeParams
    ) -> tuple[jax.Array, jax.Array]:
        """Deterministic part of the step: ``(post_obs [N] float32 one-hot, post_reward [] float32)``."""
        _, post_cell, post_reward = self._post(state, action, params)
        return self._obs(post_cell), post_reward

    # -- gymnax API -----------------------------------------------------------------------------------------------

    def step_env(
        self, key: jax.Array, state: FrozenLakeState, action: jax.Array, params: FrozenLakeParams
    ) -> tuple[jax.Array, FrozenLakeState, jax.Array, jax.Array, dict[str, jax.Array]]:
        absorbing, post_cell, post_reward = self._post(state, action, params)
        reached_goal = params.tiles[post_cell] == GOAL
        u_slip, u_dir = jax.random.uniform(key, (2,))
        slipped = (u_slip < params.slip_prob) & ~absorbing & ~reached_goal
        cdf = jnp.cumsum(params.slip_dirs[post_cell])[:3]  # inverse CDF over the 4 directions
        direction = jnp.sum(u_dir >= cdf)
        slip_cell = self._move(post_cell, direction, params)
        cell = jnp.where(slipped, slip_cell, post_cell)
        stochastic_reward = jnp.where(slipped, self._cell_reward(slip_cell, params), 0.0)
        terminated = absorbing | (params.tiles[cell] == GOAL)
        new_state = FrozenLakeState(pos=cell, time=state.time + 1)
        info = {
            "post_obs": self._obs(post_cell),
            "post_reward": post_reward,
            "stochastic_reward": stochastic_reward,
            "slipped": slipped,
        }
        return self._obs(cell), new_state, post_reward + stochastic_reward, terminated, info

    def reset_env(self, key: jax.Array, params: FrozenLakeParams) -> tuple[jax.Array, FrozenLakeState]:
        state = FrozenLakeState(pos=jnp.asarray(params.start, jnp.int32), time=jnp.zeros((), jnp.int32))
        return self._obs(state.pos), state

    def is_terminated(self, state: FrozenLakeState, params: FrozenLakeParams) -> jax.Array:
        """True on the goal. (A hole ends the episode on the step *after* landing in it, see the module doc.)"""
        return params.tiles[state.pos] == GOAL

    def observation_space(self, params: FrozenLakeParams) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (params.nrow * params.ncol,), jnp.float32)

    def action_space(self, params: FrozenLakeParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(4)


def make_frozen_lake(
    *,
    size: int = 8,
    p_frozen: float = 0.8,
    map_seed: int = 0,
    map_name: str | None = None,
    desc: Sequence[str] | None = None,
    slip_prob: float = 0.5,
    slip_seed: int = 42,
    max_steps_in_episode: int = 100,
) -> tuple[FrozenLakeStochastic, FrozenLakeParams]:
    """Factory for ``FrozenLakeStochastic-v0``: a given ``desc``, a named gym map (``"4x4"``, ``"8x8"``), or by
    default a random ``size × size`` map with frozen probability ``p_frozen`` drawn from ``map_seed``."""
    if desc is None and map_name is not None:
        if map_name not in MAPS:
            raise ValueError(f"unknown map_name {map_name!r}; choose from {sorted(MAPS)}")
        desc = MAPS[map_name]
    if desc is None:
        desc = generate_random_map(size, p_frozen, map_seed)
    params = params_from_map(desc, slip_prob, slip_seed, max_steps_in_episode)
    return FrozenLakeStochastic(params), params


def map_of(params: FrozenLakeParams) -> list[str]:
    """The map as rows of ``"SFHG"`` characters (for printing)."""
    letters = np.array(["F", "H", "S", "G"])[np.asarray(params.tiles)]
    return ["".join(r) for r in letters.reshape(params.nrow, params.ncol)]


__all__ = ["FrozenLakeStochastic", "FrozenLakeParams", "FrozenLakeState", "make_frozen_lake",
                      "generate_random_map", "params_from_map", "map_of", "MAPS"]
