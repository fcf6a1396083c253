"""Submodular grid worlds (SubPO): hand-worked gains, telescoping to F, modular baseline, layouts, render, API."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxpo.envs.submodular_worlds import (
    FacilityData,
    FacilityLocation,
    Information,
    InformationData,
    Steiner,
    SteinerData,
    SubmodularGridWorld,
    grid_params,
    make_coverage,
    make_facility_location,
    make_informative_path,
    make_steiner_covering,
    transition_table,
)
from purejaxpo.envs.testing import check_contract, check_episode_end, random_rollout
from purejaxpo.environments import make_env
from purejaxpo.envs import set_functions as sm

STAY, RIGHT, DOWN, LEFT, UP = 0, 1, 2, 3, 4
NAMES = ("Coverage-v0", "InformativePath-v0", "SteinerCovering-v0", "FacilityLocation-v0")


def run_actions(env, params, actions):
    """Reset then step through ``actions`` with ``step_env`` (no auto-reset); returns per-step outputs."""
    _, state = env.reset_env(jax.random.PRNGKey(0), params)
    out = []
    step = jax.jit(env.step_env)
    for a in actions:
        obs, state, reward, terminated, info = step(jax.random.PRNGKey(1), state, jnp.asarray(a), params)
        out.append((int(state.pos), float(reward), float(info["modular_reward"]), bool(terminated), state))
    return out


def test_coverage_by_hand():
    # 4x4 grid, constant weights, small (2x2) disc, start at cell 0.
    env, params = make_coverage(nrows=4, ncols=4, horizon=6, start_cell=0)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert float(state.value) == 4.0  # F({0}) = |{0, 1, 4, 5}| = 4
    steps = run_actions(env, params, [RIGHT, LEFT, UP, DOWN, DOWN])
    # RIGHT -> 1: disc {1, 2, 5, 6}, new {2, 6}: gain 2, modular 4.
    assert steps[0][:4] == (1, 2.0, 4.0, False)
    # LEFT back to 0: nothing new; modular counts again (4).
    assert steps[1][:4] == (0, 0.0, 4.0, False)
    # UP from row 0 is off the grid: stay at 0, gain 0.
    assert steps[2][:3] == (0, 0.0, 4.0)
    # DOWN -> 4: disc {4, 5, 8, 9}, new {8, 9}: gain 2. DOWN -> 8: disc {8, 9, 12, 13}, new {12, 13}: gain 2.
    assert steps[3][:3] == (4, 2.0, 4.0) and steps[4][:3] == (8, 2.0, 4.0)
    # horizon 6 states = 5 steps: the 5th step terminates; F = 4 + 2 + 0 + 0 + 2 + 2 = 10 = |{0..2,4..6,8,9,12,13}|
    assert steps[4][3] and float(steps[4][4].value) == 10.0
    # bottom-right corner disc is clipped: cell 15 covers only itself
    assert int(sm.disc_footprint(15, 4, 4, 2).sum()) == 1


def test_information_by_hand():
    # 1x2 grid with K = [[1, .5], [.5, 1]], jitter 1e-6, offset c = 9.965784, start at 0.
    kernel = jnp.array([[1.0, 0.5], [0.5, 1.0]])
    env = SubmodularGridWorld(Information(count_revisits=False), 1, 2)
    params = grid_params(1, 2, 4, InformationData(kernel=kernel), start_cell=0)
    _, state = env.reset_env(jax.random.PRNGKey(0), params)
    # F({0}) = ½ ln(1 + 1e-6) + c ≈ 9.965784
    np.testing.assert_allclose(state.value, 9.965784, rtol=1e-6)
    steps = run_actions(env, params, [RIGHT, LEFT, RIGHT])
    # -> 1: conditional variance 1 + 1e-6 - .25/(1 + 1e-6) ≈ 0.75; gain ½ ln .75 + c = -0.143841 + 9.965784
    #    = 9.821943. Modular (SubRL's SRL reward): ½ log2(1 + 1e-6) + c = 9.965784.
    np.testing.assert_allclose(steps[0][1], 9.821943, rtol=1e-5)
    np.testing.assert_allclose(steps[0][2], 9.965784, rtol=1e-6)
    # revisits add nothing to the set function (set semantics); the modular reward is paid again.
    assert steps[1][1] == 0.0 and steps[2][1] == 0.0
    np.testing.assert_allclose(steps[1][2], 9.965784, rtol=1e-6)
    np.testing.assert_allclose(steps[2][4].value, 9.965784 + 9.821943, rtol=1e-5)


def test_information_counts_revisits_like_the_reference():
    """``ret_entropy`` [C] evaluates ½ ln det(K_ττ + 1e-6 I) + c·|τ| on the trajectory *with* repeats: a revisit
    gains ½ ln(conditional variance of a duplicate) + c, about 3.40 for the first repeat (float64 by hand below),
    which float32 only resolves with the cache's repeat formula (the naive K_xx + σ² − lᵀl loses ≈ 0.02)."""
    kernel = np.array([[1.0, 0.5], [0.5, 1.0]])
    env = SubmodularGridWorld(Information(count_revisits=True), 1, 2)
    params = grid_params(1, 2, 6, InformationData(kernel=jnp.asarray(kernel, jnp.float32)), start_cell=0)
    steps = run_actions(env, params, [RIGHT, LEFT, RIGHT, RIGHT, STAY])
    path = [0, 1, 0, 1, 1, 1]

    def reference(t):  # float64, the reference's formula
        return 0.5 * np.linalg.slogdet(kernel[np.ix_(t, t)] + 1e-6 * np.eye(len(t)))[1] + 9.965784 * len(t)

    for j, step in enumerate(steps):
        np.testing.assert_allclose(step[1], reference(path[: j + 2]) - reference(path[: j + 1]), atol=2e-4)
    np.testing.assert_allclose(steps[1][1], 3.404602, atol=2e-4)  # ½ ln(σ²(1 + 1/1)·(1 + O(σ²))) + c
    np.testing.assert_allclose(steps[-1][4].value, reference(path), rtol=1e-6, atol=1e-3)


def test_facility_location_by_hand():
    # 1x3 line, weights 1, S = exp(-d²/2): S(1) = 0.606531, S(2) = 0.135335; start at 0.
    coords = jnp.array([[0.0, 0.0], [0.0, 1.0], [0.0, 2.0]])
    env = SubmodularGridWorld(FacilityLocation(), 1, 3)
    data = FacilityData(weights=jnp.ones(3), similarity=sm.rbf_similarity(coords, coords, 1.0))
    params = grid_params(1, 3, 4, data, start_cell=0)
    _, state = env.reset_env(jax.random.PRNGKey(0), params)
    np.testing.assert_allclose(state.value, 1 + 0.606531 + 0.135335, rtol=1e-5)  # F({0}) = 1.741866
    steps = run_actions(env, params, [RIGHT, RIGHT, LEFT])
    # -> 1: gain (1 - .606531) + (.606531 - .135335) = 0.864665; modular .606531 + 1 + .606531 = 2.213061
    np.testing.assert_allclose(steps[0][1], 0.864665, rtol=1e-5)
    np.testing.assert_allclose(steps[0][2], 2.213061, rtol=1e-5)
    # -> 2: best = [1, 1, .606531]; gain 1 - .606531 = 0.393469; F = 3 (every point served perfectly)
    np.testing.assert_allclose(steps[1][1], 0.393469, rtol=1e-5)
    np.testing.assert_allclose(steps[1][4].value, 3.0, rtol=1e-5)
    assert steps[2][1] == 0.0


def test_steiner_by_hand():
    # 1x4 line; type 0 at cells {0, 1, 2} with demand 2, type 1 at {2, 3} with demand 1; start at 0.
    groups = jnp.array([[1, 1, 1, 0], [0, 0, 1, 1]], bool)
    env = SubmodularGridWorld(Steiner(), 1, 4)
    params = grid_params(1, 4, 5, SteinerData(groups=groups, demands=jnp.array([2.0, 1.0])), start_cell=0)
    _, state = env.reset_env(jax.random.PRNGKey(0), params)
    assert float(state.value) == 1.0  # F({0}) = min(1, 2) + min(0, 1)
    steps = run_actions(env, params, [RIGHT, RIGHT, RIGHT, LEFT])
    # -> 1: type 0 count 2 (≤ 2): +1. -> 2: type 0 saturated (+0), type 1: +1. -> 3: type 1 saturated: +0.
    assert [s[1] for s in steps] == [1.0, 1.0, 0.0, 0.0]
    # modular: 1 per visit to any item cell: 1, 1, 1, 1 (cell 2 again)
    assert [s[2] for s in steps] == [1.0, 1.0, 1.0, 1.0]
    assert steps[3][3]  # 5 states = 4 steps
    assert float(steps[3][4].value) == 3.0


@pytest.mark.parametrize("name", NAMES)
def test_rewards_telescope_to_the_set_function(name):
    """Over whole episodes, F(s_0) + Σ rewards == F(visited set) from the primitives; Σ modular matches too."""
    kwargs = {"nrows": 5, "ncols": 6, "horizon": 12, "start_cell": 7}
    if name == "SteinerCovering-v0":  # disjoint item cells: the paper's 93 items do not fit 30 cells
        kwargs.update(counts=(8, 6, 5), demands=(3, 2, 4))
    env, params = make_env(name, **kwargs)
    roll = random_rollout(env, params, jax.random.PRNGKey(2), 16, 11)  # exactly one episode
    assert np.asarray(roll.terminated[-1]).all() and not np.asarray(roll.terminated[:-1]).any()
    # reconstruct the visited cells: s_0 = start, then the pre-reset positions of each step
    cells = np.concatenate([np.full((1, 16), 7), _cells_from_rollout(env, roll)], axis=0)  # [12, 16]
    data = params.data
    n = 30
    for b in range(16):
        visited = np.zeros(n, bool)
        visited[cells[:, b]] = True
        counts = np.bincount(cells[1:, b], minlength=n)
        if name == "Coverage-v0":
            f = sm.coverage_value(visited, sm.disc_footprints(5, 6, 2), data.weights)
            singles = jax.vmap(lambda s: jnp.sum(jnp.where(sm.disc_footprint(s, 5, 6, 2), data.weights, 0)))(
                jnp.arange(n))
        elif name == "InformativePath-v0":  # the reference's multiset form (count_revisits, the default)
            kernel = np.asarray(data.kernel, np.float64)
            path = cells[:, b]
            f = 0.5 * np.linalg.slogdet(kernel[np.ix_(path, path)] + data.noise * np.eye(len(path)))[1]
            f += data.offset * len(path)
            singles = 0.5 * jnp.log2(jnp.diag(data.kernel) + data.noise) + data.offset
        elif name == "SteinerCovering-v0":
            f = sm.truncated_coverage_value(visited, data.groups, data.demands)
            singles = jnp.any(data.groups, axis=0).astype(jnp.float32)
        else:
            coords = np.stack(np.divmod(np.arange(n), 6), axis=1).astype(np.float32)
            sim = sm.rbf_similarity(coords, coords, 2.0)  # the factory's default lengthscale
            f = sm.facility_location_value(visited, sim, data.weights)
            singles = data.weights @ sim
        f0 = float(roll.state0.value[b])
        total = f0 + float(np.asarray(roll.rewards)[:, b].sum())
        np.testing.assert_allclose(total, float(f), rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(float(np.asarray(roll.info["objective"])[-1, b]), float(f), rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(np.asarray(roll.info["modular_reward"])[:, b].sum(),
                                   float(sm.modular_value(counts, singles)), rtol=1e-4, atol=1e-3)
        assert np.all(np.asarray(roll.rewards)[:, b] >= -1e-5)  # monotone: gains never negative


def _cells_from_rollout(env, roll) -> np.ndarray:
    """Pre-reset cells per step ``[T, B]``: the state's cell, or for the final step the visited set's new cell."""
    cells = np.asarray(roll.states.pos).copy()
    final = np.asarray(roll.info["final_observation"])
    if env.obs_mode == "position":  # final obs = [row/(nr-1), col/(nc-1), t]: recover the last cell
        rows = np.rint(final[-1, :, 0] * (env.nrows - 1)).astype(int)
        cols = np.rint(final[-1, :, 1] * (env.ncols - 1)).astype(int)
        cells[-1] = rows * env.ncols + cols
    return cells


def test_episode_end_and_observation_modes():
    env, params = make_coverage(nrows=5, ncols=6, horizon=4, start_cell=7)
    _, state = env.reset_env(jax.random.PRNGKey(0), params)
    state = state.replace(time=jnp.asarray(2, jnp.int32))
    info = check_episode_end(env, params, jax.random.PRNGKey(3), state, RIGHT)
    # final obs: cell 8 = (1, 2) -> [1/4, 2/5, t = 3/3]; the reset obs is at the start cell with t = 0
    np.testing.assert_allclose(info["final_observation"], [0.25, 0.4, 1.0], rtol=1e-6)
    assert bool(info["terminated"]) and bool(info["truncated"])  # fixed horizon: both flags at the last step
    raw_env, raw_params = make_coverage(nrows=5, ncols=6, horizon=4, start_cell=7, obs_mode="raw")
    obs, _ = raw_env.reset(jax.random.PRNGKey(0), raw_params)
    np.testing.assert_array_equal(obs, [7.0, 0.0])
    vis_env, vis_params = make_coverage(nrows=5, ncols=6, horizon=4, start_cell=7, obs_mode="visited")
    obs, _ = vis_env.reset(jax.random.PRNGKey(0), vis_params)
    assert obs.shape == (33,) and vis_env.observation_space(vis_params).shape == (33,)
    np.testing.assert_array_equal(np.flatnonzero(np.asarray(obs[3:])), [7])
    his_env, his_params = make_coverage(nrows=5, ncols=6, horizon=4, start_cell=7, obs_mode="history")
    steps = run_actions(his_env, his_params, [RIGHT, RIGHT])
    obs = his_env._obs(steps[-1][4], his_params)  # s_0 = 7, then 8, 9; the 4th slot still padding
    np.testing.assert_allclose(obs[3:], [7 / 29, 8 / 29, 9 / 29, -1.0], rtol=1e-6)
    assert his_env.observation_space(his_params).shape == (7,)
    with pytest.raises(ValueError):
        make_coverage(obs_mode="pixels")
    with pytest.raises(ValueError):
        make_coverage(nrows=4, ncols=4)  # SubRL's start cell 34 is outside a 4x4 grid


def test_stochasticity_replaces_actions():
    env, params = make_coverage(nrows=5, ncols=6, horizon=4, start_cell=7, stochasticity=1.0)
    _, state = env.reset_env(jax.random.PRNGKey(0), params)
    keys = jax.random.split(jax.random.PRNGKey(0), 2000)
    _, states, *_ = jax.vmap(env.step_env, in_axes=(0, None, None, None))(keys, state, STAY, params)
    # with p = 1 the action is uniform over 5 moves from (1, 1): every neighbour and staying are all reached
    assert set(np.asarray(states.pos).tolist()) == {7, 8, 13, 6, 1}


def test_two_rooms_layout():
    table = transition_table(7, 14, "two_rooms")

    def cell(r, c):
        return r * 14 + c

    assert table[cell(0, 3), RIGHT] == cell(0, 3)  # wall between columns 3 and 4 in row 0
    assert table[cell(0, 2), RIGHT] == cell(0, 3)  # inside the left room
    assert table[cell(2, 3), RIGHT] == cell(2, 4)  # the corridor (rows 2-3) is open
    assert table[cell(2, 5), UP] == cell(2, 5)  # the corridor's walls
    assert table[cell(3, 5), DOWN] == cell(3, 5)
    assert table[cell(2, 5), DOWN] == cell(3, 5)
    assert table[cell(4, 10), LEFT] == cell(4, 10) and table[cell(4, 11), LEFT] == cell(4, 10)
    # the right room is reachable from the left room (breadth-first search over the table)
    seen, frontier = {cell(1, 1)}, [cell(1, 1)]
    while frontier:
        nxt = [int(t) for s in frontier for t in table[s] if int(t) not in seen]
        seen.update(nxt)
        frontier = list(set(nxt))
    assert cell(5, 12) in seen and cell(0, 6) not in seen
    env, params = make_coverage(nrows=7, ncols=14, layout="two_rooms")
    assert int(params.next_cell[cell(0, 3), RIGHT]) == cell(0, 3)
    with pytest.raises(ValueError):
        transition_table(8, 8, "two_rooms")


def test_instances_are_seeded():
    a = make_informative_path(nrows=6, ncols=6, start_cell=3, seed=1)[1].data.kernel
    b = make_informative_path(nrows=6, ncols=6, start_cell=3, seed=1)[1].data.kernel
    c = make_informative_path(nrows=6, ncols=6, start_cell=3, seed=2)[1].data.kernel
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert np.all(np.diag(np.asarray(a)) <= 1.0 + 1e-6) and np.all(np.diag(np.asarray(a)) > 0)
    groups = make_steiner_covering(seed=0)[1].data.groups
    np.testing.assert_array_equal(np.asarray(groups).sum(axis=1), [18, 14, 13, 16, 18, 14])
    for weights in ("constant", "bimodal", "linear", "gp"):
        w = make_coverage(weights=weights)[1].data.weights
        assert w.shape == (900,) and float(w.min()) >= 0.0
    assert make_facility_location()[1].data.similarity.shape == (900, 900)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", NAMES)
def test_jit_vmap_1024_and_contract(name):
    env, params = make_env(name)
    assert env.action_space(params).n == 5 and env.observation_space(params).shape == (3,)
    roll = random_rollout(env, params, jax.random.PRNGKey(0), 1024, 8)  # default sizes: 30x30 (Steiner 7x15)
    check_contract(env, params, roll)
    assert roll.info["modular_reward"].shape == (8, 1024) and roll.info["objective"].dtype == jnp.float32
    assert np.asarray(roll.rewards).min() >= -1e-5


@pytest.mark.timeout(120)
def test_auto_reset_under_vmap():
    env, params = make_informative_path(nrows=6, ncols=6, horizon=4, start_cell=8)
    roll = random_rollout(env, params, jax.random.PRNGKey(1), 1024, 7)
    check_contract(env, params, roll)
    ends = np.flatnonzero(np.asarray(roll.terminated[:, 0]))
    np.testing.assert_array_equal(ends, [2, 5])  # 4 states = 3 steps per episode
    assert np.asarray(roll.terminated)[[2, 5]].all()
    np.testing.assert_array_equal(np.asarray(roll.states.pos)[[2, 5]], 8)  # reset to the start cell
    np.testing.assert_array_equal(np.asarray(roll.states.summary.size)[[2, 5]], 1)  # cache holds {s_0} again
    np.testing.assert_allclose(np.asarray(roll.info["final_observation"])[[2, 5], :, 2], 1.0)


def test_render(tmp_path):
    env, params = make_coverage(nrows=8, ncols=10, horizon=12, start_cell=11, weights="bimodal")
    roll = random_rollout(env, params, jax.random.PRNGKey(0), 3, 11)
    cells = np.concatenate([np.full((1, 3), 11), np.asarray(roll.states.pos)], axis=0).T  # [B, T]
    path = env.render(params, cells, tmp_path / "coverage.png")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    env, params = make_informative_path(nrows=6, ncols=6, horizon=5, start_cell=0)
    assert env.render(params, np.array([0, 1, 7]), tmp_path / "info.png").endswith("info.png")
