"""Grid worlds whose value is a monotone submodular function of the set of visited cells (SubRL / SubPO).

Paper: Prajapat et al., "Submodular Reinforcement Learning", ICLR 2024 (arXiv:2307.13372); dynamics from
``utils/environment.py`` of github.com/manish-pra/non-additive-RL (§5).

Grid ``nrows × ncols``, cell ``n = row·ncols + col``. Actions [C]: 0 stay, 1 col+1, 2 row+1, 3 col−1, 4 row−1;
moves off the grid or through a wall leave the cell unchanged. With ``stochasticity = p`` the action is replaced
by a uniform random one with probability ``p`` [C]. An episode has ``horizon = H`` states ``s_0..s_{H−1}``
(``H−1`` steps) from ``start_cell`` (34 in every SubRL config) [C]; it ends with ``terminated = True`` after
step ``H−1`` (a fixed-horizon objective: nothing to bootstrap), and ``truncated`` is set there too because
``max_steps_in_episode = H − 1``.

The state keeps the visited set ``τ`` and a summary of it; each step reports

- ``reward = Δ = F(τ ∪ {s'}) − F(τ)`` (the marginal gain; SubPO's reward), so that
  ``F(τ) = F({s_0}) + Σ rewards``;
- ``info["modular_reward"]`` the SRL baseline's additive reward of ``s'`` (counted again on every revisit);
- ``info["objective"]`` the running ``F(τ)``;
- ``info["modular_objective"]`` the running modular value ``Σ_{j≤t} m(s_j)`` of the trajectory with
  multiplicity, ``s_0`` included (the SRL baseline's "F", used by SubPO's greedy-prefix estimator).

Objectives (:mod:`purejaxpo.envs.set_functions` holds the set functions; units and instances from
:mod:`purejaxpo.envs.subrl_instances`):

- ``Coverage-v0``: weighted coverage ``F(τ) = Σ_{n ∈ ∪ D(s)} w(n)`` with the 2×2 ("small") or 3×3 ("large")
  disc ``D(s)`` [C]; weights ``constant`` [C], ``bimodal`` [C], ``linear`` [C] or ``gp`` (``instance = k``: the
  released ``environments/GP/env_k`` weights [C]; otherwise a new map drawn as the reference draws them, in its
  units [C]). Modular reward ``Σ_{n∈D(s')} w(n)`` [C].
- ``InformativePath-v0``: ``F(τ) = ½ ln det(K_ττ + 10⁻⁶ I) + 9.965784·|τ|`` with ``K`` the Matérn-5/2 GP
  posterior covariance in the reference's units (lengthscale 1 = 10 cells, outputscale ln 2) given 5 conditioning
  points (``instance = k``: fitted to the released ``environments/entropy/env_k``; otherwise uniform on
  ``[0, 10]²``) [C]. With ``count_revisits`` (default, as ``ret_entropy`` [C]) ``τ`` is the trajectory *with
  repeats*: a revisit still gains ``½ ln((n+1)/n · 10⁻⁶) + 9.966 ≈ +3.1…3.4`` (n = earlier visits); without it
  ``τ`` is the visited set (revisits gain 0) [P]. Modular reward ``½ log₂(K_ss + 10⁻⁶) + 9.965784`` [C].
- ``SteinerCovering-v0``: ``F(τ) = Σ_k min(|G_k ∩ τ|, d_k)`` over the visited *set*, 6 item types on a 7×15
  grid with disjoint cells (``instance = k``: the released item cells; otherwise one random permutation sliced
  per type, as ``generate_Gi_Di``) [C]; modular reward 1 per visit to an item cell [C].
- ``FacilityLocation-v0`` [P, not in SubRL; the DESIGN asks for it]: ``F(τ) = Σ_m w(m) max_{s∈τ} S(m, s)`` with
  ``S(m, s) = exp(−‖m − s‖²/(2ℓ²))`` over cell coordinates (ℓ = 2 cells); modular reward ``Σ_m w(m) S(m, s')``.

Observation (``obs_mode``): ``"position"`` (default [P]) ``[row/(nrows−1), col/(ncols−1), t/(H−1)]``; ``"raw"``
the code's ``[cell index, t]`` [C]; ``"visited"`` the position features plus the visited mask ``[N]`` (a
sufficient statistic for a history-dependent policy) [P]; ``"history"`` the position features plus the ordered
list of the cells visited so far, ``[s_0, …, s_t]/(N−1)`` padded with −1 to length ``H`` (the reference NM agent's
input, ``append_state``: the raw indices padded with −1 [C], normalized here [P]).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from purejaxpo.envs import set_functions as sm
from purejaxpo.envs import subrl_instances as inst

NUM_ACTIONS = 5
# (d_row, d_col) for stay, col+1, row+1, col−1, row−1.
_MOVES = np.array([[0, 0], [0, 1], [1, 0], [0, -1], [-1, 0]], np.int64)
OBS_MODES = ("position", "raw", "visited", "history")


# ----------------------------------------------------------------------------------------------------------------
# Objectives: small static strategy objects; their data lives in params, their running summary in the state.
# ----------------------------------------------------------------------------------------------------------------


@struct.dataclass
class CoverageData:
    weights: jax.Array  # [N] float32


@struct.dataclass
class InformationData:
    kernel: jax.Array  # [N, N] float32, GP posterior covariance
    noise: jax.Array | float = 1e-6
    offset: jax.Array | float = sm.ENTROPY_OFFSET


@struct.dataclass
class SteinerData:
    groups: jax.Array  # [K, N] bool, cells holding an item of type k
    demands: jax.Array  # [K] float32


@struct.dataclass
class FacilityData:
    weights: jax.Array  # [N] float32 demand per cell
    similarity: jax.Array  # [N, N] float32, S(m, s) (symmetric), precomputed


class Coverage:
    """Weighted disc coverage. Running summary: ``covered [N]`` bool."""

    name = "coverage"

    def __init__(self, nrows: int, ncols: int, disc_size: int = 2):
        self.nrows, self.ncols, self.disc_size = nrows, ncols, disc_size

    def _footprint(self, cell: jax.Array) -> jax.Array:
        return sm.disc_footprint(cell, self.nrows, self.ncols, self.disc_size)

    def init(self, cell: jax.Array, data: CoverageData, capacity: int) -> tuple[jax.Array, jax.Array]:
        covered = self._footprint(cell)
        return covered, jnp.sum(jnp.where(covered, data.weights, 0.0))

    def gain(self, summary: jax.Array, cell: jax.Array, is_new: jax.Array, data: CoverageData):
        footprint = self._footprint(cell)
        return sm.coverage_gain_from_covered(summary, footprint, data.weights), summary | footprint

    def modular(self, cell: jax.Array, data: CoverageData) -> jax.Array:
        return jnp.sum(jnp.where(self._footprint(cell), data.weights, 0.0))

    def value_map(self, data: CoverageData) -> np.ndarray:
        return np.asarray(data.weights)


class Information:
    """GP log-det information. Running summary: a :class:`~purejaxpo.envs.set_functions.LogDetCache`.

    ``count_revisits``: the log-det runs over the trajectory with repeats (``ret_entropy`` [C]; the cache then
    holds every state, so its capacity ``H`` suffices); otherwise over the visited set."""

    name = "information"

    def __init__(self, count_revisits: bool = True):
        self.count_revisits = bool(count_revisits)

    def init(self, cell: jax.Array, data: InformationData, capacity: int):
        cache = sm.logdet_cache_init(capacity)
        value = sm.logdet_cache_gain(cache, cell, data.kernel, data.noise, data.offset)
        return sm.logdet_cache_add(cache, cell, data.kernel, data.noise), value

    def gain(self, summary: sm.LogDetCache, cell: jax.Array, is_new: jax.Array, data: InformationData):
        add = jnp.ones_like(is_new) if self.count_revisits else is_new
        gain = jnp.where(add, sm.logdet_cache_gain(summary, cell, data.kernel, data.noise, data.offset), 0.0)
        return gain, sm.logdet_cache_add(summary, cell, data.kernel, data.noise, add)

    def modular(self, cell: jax.Array, data: InformationData) -> jax.Array:
        return 0.5 * jnp.log2(data.kernel[cell, cell] + data.noise) + data.offset

    def value_map(self, data: InformationData) -> np.ndarray:
        return np.diag(np.asarray(data.kernel))


class Steiner:
    """Truncated (Steiner) coverage. Running summary: ``counts [K]`` float32."""

    name = "steiner"

    def init(self, cell: jax.Array, data: SteinerData, capacity: int):
        counts = data.groups[:, cell].astype(jnp.float32)
        return counts, jnp.sum(jnp.minimum(counts, data.demands))

    def gain(self, summary: jax.Array, cell: jax.Array, is_new: jax.Array, data: SteinerData):
        column = data.groups[:, cell]
        gain = jnp.where(is_new, sm.truncated_coverage_gain_from_counts(summary, column, data.demands), 0.0)
        return gain, summary + jnp.where(is_new & column, 1.0, 0.0)

    def modular(self, cell: jax.Array, data: SteinerData) -> jax.Array:
        return jnp.any(data.groups[:, cell]).astype(jnp.float32)

    def value_map(self, data: SteinerData) -> np.ndarray:
        return np.asarray(data.groups).sum(axis=0).astype(np.float64)


class FacilityLocation:
    """Facility location with a precomputed symmetric similarity. Running summary: ``best [N]`` float32."""

    name = "facility_location"

    def _column(self, cell: jax.Array, data: FacilityData) -> jax.Array:
        return data.similarity[cell]  # S[:, cell] == S[cell] (symmetric)

    def init(self, cell: jax.Array, data: FacilityData, capacity: int):
        best = self._column(cell, data)
        return best, jnp.sum(data.weights * best)

    def gain(self, summary: jax.Array, cell: jax.Array, is_new: jax.Array, data: FacilityData):
        column = self._column(cell, data)
        return sm.facility_location_gain_from_best(summary, column, data.weights), jnp.maximum(summary, column)

    def modular(self, cell: jax.Array, data: FacilityData) -> jax.Array:
        return jnp.sum(data.weights * self._column(cell, data))

    def value_map(self, data: FacilityData) -> np.ndarray:
        return np.asarray(data.weights)


# ----------------------------------------------------------------------------------------------------------------
# Environment
# ----------------------------------------------------------------------------------------------------------------


@struct.dataclass(kw_only=True)
class SubmodularState(environment.EnvState):
    pos: jax.Array  # [] int32 cell
    visited: jax.Array  # [N] bool, the set τ
    value: jax.Array  # [] float32, F(τ)
    summary: Any  # objective-specific running summary of τ
    time: jax.Array  # [] int32
    modular_value: jax.Array | float = 0.0  # [] float32, Σ_{j≤t} m(s_j) with multiplicity (SRL's "F")
    history: jax.Array | None = None  # [H] int32, s_0..s_t in order, −1 after


@struct.dataclass(kw_only=True)
class SubmodularParams(environment.EnvParams):
    next_cell: jax.Array  # [N, 5] int32 transition table
    data: Any  # objective data (CoverageData, InformationData, SteinerData, FacilityData)
    start_cell: jax.Array | int = 34
    stochasticity: jax.Array | float = 0.0
    horizon: int = struct.field(pytree_node=False, default=40)  # states per episode (static: buffer sizes)
    max_steps_in_episode: int = 39


class SubmodularGridWorld(environment.Environment[SubmodularState, SubmodularParams]):
    """A grid world rewarded by the marginal gain of a submodular objective of the visited set (module doc)."""

    def __init__(self, objective: Any, nrows: int, ncols: int, obs_mode: str = "position", env_name: str = ""):
        super().__init__()
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {OBS_MODES}, got {obs_mode!r}")
        self.objective, self.nrows, self.ncols, self.obs_mode = objective, nrows, ncols, obs_mode
        self.num_cells = nrows * ncols
        self._name = env_name or f"Submodular-{objective.name}"
        self._default_params: SubmodularParams | None = None

    @property
    def default_params(self) -> SubmodularParams:
        if self._default_params is None:
            raise ValueError("build this environment with its make_* factory, which supplies the parameters")
        return self._default_params

    @property
    def name(self) -> str:
        return self._name

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    def _obs(self, state: SubmodularState, params: SubmodularParams) -> jax.Array:
        t = state.time.astype(jnp.float32)
        if self.obs_mode == "raw":
            return jnp.stack([state.pos.astype(jnp.float32), t])
        row = (state.pos // self.ncols).astype(jnp.float32) / max(self.nrows - 1, 1)
        col = (state.pos % self.ncols).astype(jnp.float32) / max(self.ncols - 1, 1)
        pos = jnp.stack([row, col, t / max(params.horizon - 1, 1)])
        if self.obs_mode == "visited":
            pos = jnp.concatenate([pos, state.visited.astype(jnp.float32)])
        if self.obs_mode == "history":
            cells = state.history.astype(jnp.float32)
            pos = jnp.concatenate([pos, jnp.where(state.history >= 0, cells / max(self.num_cells - 1, 1), -1.0)])
        return pos

    def step_env(
        self, key: jax.Array, state: SubmodularState, action: jax.Array, params: SubmodularParams
    ) -> tuple[jax.Array, SubmodularState, jax.Array, jax.Array, dict[str, jax.Array]]:
        key_flip, key_act = jax.random.split(key)
        action = jnp.asarray(action, jnp.int32)
        random_action = jax.random.randint(key_act, (), 0, NUM_ACTIONS)
        action = jnp.where(jax.random.uniform(key_flip) < params.stochasticity, random_action, action)
        cell = params.next_cell[state.pos, action]
        is_new = ~state.visited[cell]
        gain, summary = self.objective.gain(state.summary, cell, is_new, params.data)
        modular = self.objective.modular(cell, params.data)
        new_state = SubmodularState(
            pos=cell, visited=state.visited.at[cell].set(True), value=state.value + gain, summary=summary,
            time=state.time + 1, modular_value=state.modular_value + modular,
            history=state.history.at[jnp.minimum(state.time + 1, params.horizon - 1)].set(cell),
        )
        info = {"modular_reward": modular, "objective": new_state.value, "modular_objective": new_state.modular_value}
        obs = self._obs(new_state, params)
        return obs, new_state, gain, self.is_terminated(new_state, params), info

    def reset_env(self, key: jax.Array, params: SubmodularParams) -> tuple[jax.Array, SubmodularState]:
        cell = jnp.asarray(params.start_cell, jnp.int32)
        summary, value = self.objective.init(cell, params.data, params.horizon)
        state = SubmodularState(
            pos=cell, visited=jnp.zeros(self.num_cells, bool).at[cell].set(True), value=value, summary=summary,
            time=jnp.zeros((), jnp.int32),
            modular_value=jnp.asarray(self.objective.modular(cell, params.data), jnp.float32),
            history=jnp.full((params.horizon,), -1, jnp.int32).at[0].set(cell),
        )
        return self._obs(state, params), state

    def is_terminated(self, state: SubmodularState, params: SubmodularParams) -> jax.Array:
        return state.time >= params.horizon - 1

    def observation_space(self, params: SubmodularParams) -> spaces.Box:
        if self.obs_mode == "raw":
            high = jnp.array([self.num_cells - 1, params.horizon - 1], jnp.float32)
            return spaces.Box(jnp.zeros(2, jnp.float32), high, (2,), jnp.float32)
        if self.obs_mode == "history":
            low = jnp.concatenate([jnp.zeros(3, jnp.float32), -jnp.ones(params.horizon, jnp.float32)])
            return spaces.Box(low, jnp.ones(3 + params.horizon, jnp.float32), (3 + params.horizon,), jnp.float32)
        size = 3 + (self.num_cells if self.obs_mode == "visited" else 0)
        return spaces.Box(0.0, 1.0, (size,), jnp.float32)

    def action_space(self, params: SubmodularParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(NUM_ACTIONS)

    def render(self, params: SubmodularParams, cells: Any, path: str | os.PathLike, title: str | None = None) -> str:
        """Draw the objective's value map with the visited cells and paths (``cells [T]`` or ``[B, T]`` cell
        indices, e.g. ``state.pos`` stacked over an episode) to a PNG; returns the path. Host-side."""
        from purejaxpo.envs.rendering import draw_grid_paths

        value_map = self.objective.value_map(params.data).reshape(self.nrows, self.ncols)
        return draw_grid_paths(value_map, np.asarray(cells), path, title=title or self.name)


# ----------------------------------------------------------------------------------------------------------------
# Instances
# ----------------------------------------------------------------------------------------------------------------


def transition_table(nrows: int, ncols: int, layout: str = "open") -> np.ndarray:
    """``next_cell [N, 5]`` for an open grid or SubRL's 7×14 ``"two_rooms"`` (``room_grid_world_graph``).

    Two rooms [P: our reading of the code's edge removal]: moves between columns ``c`` and ``c+1`` for
    ``c ∈ 3..9`` are removed in rows {0, 1, 4, 5, 6}, and moves between rows ``r`` and ``r+1`` for
    ``r ∈ {0, 1, 3, 4, 5}`` in columns 4..9, leaving a corridor (rows 2–3) between the two rooms.
    """
    if layout not in ("open", "two_rooms"):
        raise ValueError(f"layout must be 'open' or 'two_rooms', got {layout!r}")
    if layout == "two_rooms" and (nrows, ncols) != (7, 14):
        raise ValueError(f"the two_rooms layout is defined on a 7x14 grid, got {nrows}x{ncols}")
    table = np.zeros((nrows * ncols, NUM_ACTIONS), np.int32)
    for r in range(nrows):
        for c in range(ncols):
            for a, (dr, dc) in enumerate(_MOVES):
                rr, cc = r + dr, c + dc
                ok = 0 <= rr < nrows and 0 <= cc < ncols
                if ok and layout == "two_rooms":
                    if dc != 0 and r in (0, 1, 4, 5, 6) and 3 <= min(c, cc) <= 9:
                        ok = False
                    if dr != 0 and min(r, rr) in (0, 1, 3, 4, 5) and 4 <= c <= 9:
                        ok = False
                table[r * ncols + c, a] = rr * ncols + cc if ok else r * ncols + c
    return table


def _coords(nrows: int, ncols: int) -> np.ndarray:
    r, c = np.divmod(np.arange(nrows * ncols), ncols)
    return np.stack([r, c], axis=1).astype(np.float64)


def cell_weights(kind: str, nrows: int, ncols: int, seed: int = 0, instance: int | None = None,
                 gp_lengthscale: float = inst.LENGTHSCALE) -> np.ndarray:
    """Per-cell weights ``[N]``: ``constant`` (1), ``bimodal`` (``sigmoid(x·y)`` on a ``linspace(−1, 1)`` grid),
    ``linear`` (``w(n) = n``) [C], or ``gp``: the released map ``instance`` (0..9, 30×30), or when ``instance`` is
    ``None`` a new map from ``seed`` drawn as the reference does (:func:`~purejaxpo.envs.subrl_instances.
    generate_gp_weights`; ``gp_lengthscale`` in kernel units, 1.0 = 10 cells) [C]."""
    n = nrows * ncols
    if instance is not None and kind != "gp":
        raise ValueError(f"instance selects a released GP weight map; weights={kind!r} has no instances")
    if kind == "constant":
        return np.ones(n)
    if kind == "linear":
        return np.arange(n, dtype=np.float64)
    if kind == "bimodal":
        x = np.linspace(-1.0, 1.0, ncols)[np.arange(n) % ncols]
        y = np.linspace(-1.0, 1.0, nrows)[np.arange(n) // ncols]
        return 1.0 / (1.0 + np.exp(-x * y))
    if kind == "gp":
        if instance is not None:
            return inst.released_gp_weights(instance, nrows, ncols)
        return inst.generate_gp_weights(nrows, ncols, seed, gp_lengthscale)
    raise ValueError(f"unknown weights {kind!r}; choose constant, bimodal, linear or gp")


def grid_params(nrows: int, ncols: int, horizon: int, data: Any, start_cell: int = 0, stochasticity: float = 0.0,
                layout: str = "open") -> SubmodularParams:
    """:class:`SubmodularParams` for a grid, an objective's ``data`` and ``horizon`` states per episode."""
    if horizon < 2:
        raise ValueError(f"horizon (states per episode) must be >= 2, got {horizon}")
    if not 0 <= start_cell < nrows * ncols:
        raise ValueError(f"start_cell {start_cell} is outside the {nrows}x{ncols} grid")
    return SubmodularParams(
        next_cell=jnp.asarray(transition_table(nrows, ncols, layout)), data=data, start_cell=int(start_cell),
        stochasticity=float(stochasticity), horizon=int(horizon), max_steps_in_episode=int(horizon) - 1,
    )


def _finish(env: SubmodularGridWorld, params: SubmodularParams) -> tuple[SubmodularGridWorld, SubmodularParams]:
    env._default_params = params
    return env, params


def make_coverage(*, nrows: int = 30, ncols: int = 30, horizon: int = 80, weights: str = "constant",
                  disc: str = "small", seed: int = 0, instance: int | None = None, start_cell: int = 34,
                  stochasticity: float = 0.0, layout: str = "open", obs_mode: str = "position",
                  gp_lengthscale: float = inst.LENGTHSCALE):
    """Factory for ``Coverage-v0`` (SubRL's coverage config: 30×30, H = 80, constant weights, small disc; its GP
    config: ``weights="gp"``, H = 40, ``instance`` 0..9 the released maps)."""
    if disc not in ("small", "large"):
        raise ValueError(f"disc must be 'small' or 'large', got {disc!r}")
    data = CoverageData(weights=jnp.asarray(cell_weights(weights, nrows, ncols, seed, instance, gp_lengthscale),
                                            jnp.float32))
    env = SubmodularGridWorld(Coverage(nrows, ncols, 2 if disc == "small" else 3), nrows, ncols, obs_mode,
                              "Coverage-v0")
    return _finish(env, grid_params(nrows, ncols, horizon, data, start_cell, stochasticity, layout))


def make_informative_path(*, nrows: int = 30, ncols: int = 30, horizon: int = 40, seed: int = 0,
                          instance: int | None = None, lengthscale: float = inst.LENGTHSCALE,
                          outputscale: float = inst.OUTPUTSCALE, step_size: float = inst.STEP_SIZE,
                          num_observed: int = 5, observation_noise: float = inst.CONDITIONING_NOISE,
                          noise: float = 1e-6, count_revisits: bool = True, start_cell: int = 34,
                          stochasticity: float = 0.0, layout: str = "open", obs_mode: str = "position"):
    """Factory for ``InformativePath-v0`` (SubRL's entropy config: 30×30, H = 40). ``K`` is the Matérn-5/2 GP
    posterior covariance over the kernel coordinates ``(row, col)·step_size + 1`` (``lengthscale`` and the
    ``[0, 10]²`` range of the conditioning points in those units, as the reference [C]) given ``num_observed``
    points observed with ``observation_noise``: the fitted points of the released ``instance`` (0..9), or points
    drawn from ``seed``. ``noise`` is the ``1e-6`` jitter inside the log-det; ``count_revisits`` see module doc."""
    if instance is not None:
        points = inst.released_entropy_points(instance, nrows, ncols)
    else:
        points = inst.random_points(seed, num_observed)
    kernel = inst.posterior_covariance(nrows, ncols, points, lengthscale, outputscale, observation_noise, step_size)
    data = InformationData(kernel=jnp.asarray(kernel, jnp.float32), noise=float(noise),
                           offset=sm.ENTROPY_OFFSET)
    env = SubmodularGridWorld(Information(count_revisits), nrows, ncols, obs_mode, "InformativePath-v0")
    return _finish(env, grid_params(nrows, ncols, horizon, data, start_cell, stochasticity, layout))


def make_steiner_covering(*, nrows: int = 7, ncols: int = 15, horizon: int = 40, seed: int = 0,
                          instance: int | None = None, counts: tuple[int, ...] = inst.STEINER_COUNTS,
                          demands: tuple[int, ...] = inst.STEINER_DEMANDS, start_cell: int = 34,
                          stochasticity: float = 0.0, obs_mode: str = "position"):
    """Factory for ``SteinerCovering-v0`` (SubRL's steiner config: 7×15, H = 40, 6 item types): the released item
    cells of ``instance`` (0..9), or disjoint cells drawn from ``seed`` (one permutation sliced per type [C])."""
    if len(counts) != len(demands):
        raise ValueError(f"counts and demands must have the same length, got {len(counts)} and {len(demands)}")
    if instance is not None:
        groups, demands = inst.released_steiner_groups(instance, nrows, ncols)
    else:
        groups = inst.disjoint_item_groups(nrows * ncols, tuple(counts), seed)
    data = SteinerData(groups=jnp.asarray(groups), demands=jnp.asarray(demands, jnp.float32))
    env = SubmodularGridWorld(Steiner(), nrows, ncols, obs_mode, "SteinerCovering-v0")
    return _finish(env, grid_params(nrows, ncols, horizon, data, start_cell, stochasticity, "open"))


def make_facility_location(*, nrows: int = 30, ncols: int = 30, horizon: int = 40, weights: str = "constant",
                           lengthscale: float = 2.0, seed: int = 0, start_cell: int = 34,
                           stochasticity: float = 0.0, layout: str = "open", obs_mode: str = "position"):
    """Factory for ``FacilityLocation-v0`` [P]: demand weights as :func:`cell_weights`, RBF similarity with
    ``lengthscale`` cells."""
    coords = jnp.asarray(_coords(nrows, ncols), jnp.float32)
    data = FacilityData(weights=jnp.asarray(cell_weights(weights, nrows, ncols, seed), jnp.float32),
                        similarity=sm.rbf_similarity(coords, coords, float(lengthscale)))
    env = SubmodularGridWorld(FacilityLocation(), nrows, ncols, obs_mode, "FacilityLocation-v0")
    return _finish(env, grid_params(nrows, ncols, horizon, data, start_cell, stochasticity, layout))
