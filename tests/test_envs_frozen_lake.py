"""FrozenLakeStochastic-v0 (PDPPO): slip model, hole/goal handling, post-decision split, maps, API."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxpo.envs.frozen_lake_stochastic import (
    MAPS,
    FrozenLakeState,
    generate_random_map,
    make_frozen_lake,
    map_of,
)
from purejaxpo.envs.testing import check_contract, check_episode_end, random_rollout
from purejaxpo.environments import make_env

LEFT, DOWN, RIGHT, UP = 0, 1, 2, 3


def at(cell: int, time: int = 0) -> FrozenLakeState:
    return FrozenLakeState(pos=jnp.asarray(cell, jnp.int32), time=jnp.asarray(time, jnp.int32))


def test_deterministic_step_by_hand():
    # gym's 4x4 map (SFFF / FHFH / FFFH / HFFG), goal at (3, 3), no slipping.
    env, params = make_frozen_lake(map_name="4x4", slip_prob=0.0)
    # From (0,0) RIGHT -> (0,1): distance to goal |3-0| + |3-1| = 5 -> reward 1/(1+5) = 1/6.
    obs, state, reward, terminated, info = env.step_env(jax.random.PRNGKey(0), at(0), RIGHT, params)
    np.testing.assert_allclose(reward, 1 / 6, rtol=1e-6)
    np.testing.assert_allclose(info["post_reward"], 1 / 6, rtol=1e-6)
    assert float(info["stochastic_reward"]) == 0.0 and not bool(info["slipped"])
    assert int(state.pos) == 1 and int(jnp.argmax(obs)) == 1 and not bool(terminated)
    # Into the border: UP from (0,1) stays at (0,1): again 1/6.
    _, state, reward, _, _ = env.step_env(jax.random.PRNGKey(0), at(1), UP, params)
    assert int(state.pos) == 1
    np.testing.assert_allclose(reward, 1 / 6, rtol=1e-6)


def test_forced_slip_into_a_hole_then_absorbing_step():
    env, params = make_frozen_lake(map_name="4x4", slip_prob=1.0)
    params = params.replace(slip_dirs=jnp.tile(jnp.array([[0.0, 1.0, 0.0, 0.0]]), (16, 1)))  # always slip DOWN
    # (0,0) RIGHT -> intended (0,1), r^x = 1/6; slips DOWN to (1,1), a hole at distance 4:
    # 1/(1+4) - 1/(4+4) = 0.2 - 0.125 = 0.075. Total 1/6 + 0.075 = 0.241667; not terminated (yet).
    obs, state, reward, terminated, info = env.step_env(jax.random.PRNGKey(0), at(0), RIGHT, params)
    assert int(state.pos) == 5 and bool(info["slipped"]) and not bool(terminated)
    np.testing.assert_allclose(info["post_reward"], 1 / 6, rtol=1e-6)
    np.testing.assert_allclose(info["stochastic_reward"], 0.075, rtol=1e-6)
    np.testing.assert_allclose(reward, 1 / 6 + 0.075, rtol=1e-6)
    np.testing.assert_array_equal(info["post_obs"], jax.nn.one_hot(1, 16))
    # The hole is absorbing in the transition table: next step stays, reward 0, terminated -> auto-reset.
    info = check_episode_end(env, params, jax.random.PRNGKey(1), state, LEFT)
    np.testing.assert_array_equal(info["final_observation"], jax.nn.one_hot(5, 16))
    assert float(info["post_reward"]) == 0.0 and float(info["stochastic_reward"]) == 0.0
    obs, new_state, reward, terminated, truncated, _ = env.step(jax.random.PRNGKey(1), state, LEFT, params)
    assert bool(terminated) and float(reward) == 0.0 and int(new_state.pos) == 0  # reset to the start


def test_goal_terminates_without_slipping():
    env, params = make_frozen_lake(map_name="4x4", slip_prob=1.0)
    # (3,2) RIGHT -> goal (3,3): reward 1, terminated, no slip even with slip_prob = 1.
    info = check_episode_end(env, params, jax.random.PRNGKey(0), at(14), RIGHT, )
    np.testing.assert_array_equal(info["final_observation"], jax.nn.one_hot(15, 16))
    np.testing.assert_allclose(info["post_reward"], 1.0)
    assert not bool(info["slipped"])
    # Slipping *into* the goal also terminates: from (2,2) DOWN -> (3,2) [r = 1/2], slip RIGHT -> goal [+1].
    params = params.replace(slip_dirs=jnp.tile(jnp.array([[0.0, 0.0, 1.0, 0.0]]), (16, 1)))
    _, state, reward, terminated, _ = env.step_env(jax.random.PRNGKey(0), at(10), DOWN, params)
    assert int(state.pos) == 15 and bool(terminated)
    np.testing.assert_allclose(reward, 0.5 + 1.0, rtol=1e-6)


def test_slip_statistics():
    env, params = make_frozen_lake(map_name="8x8")
    # From (0,0) RIGHT the intended cell is 1: slip w.p. 0.5, then direction ~ slip_dirs[1].
    keys = jax.random.split(jax.random.PRNGKey(0), 20000)
    _, states, _, _, info = jax.vmap(env.step_env, in_axes=(0, None, None, None))(keys, at(0), RIGHT, params)
    slipped = np.asarray(info["slipped"])
    np.testing.assert_allclose(slipped.mean(), 0.5, atol=0.015)
    dirs = np.asarray(params.slip_dirs[1])
    # slip targets from (0,1): LEFT -> 0, DOWN -> 9, RIGHT -> 2, UP -> 1 (border)
    targets = {0: 0, 1: 9, 2: 2, 3: 1}
    pos = np.asarray(states.pos)[slipped]
    for d, cell in targets.items():
        np.testing.assert_allclose((pos == cell).mean(), dirs[d], atol=0.02)
    np.testing.assert_array_equal(np.asarray(states.pos)[~slipped], 1)


def test_maps_and_slip_table():
    desc = generate_random_map(8, 0.8, seed=3)
    assert desc == generate_random_map(8, 0.8, seed=3)
    assert desc[0][0] == "S" and desc[-1][-1] == "G" and len(desc) == 8
    env, params = make_frozen_lake(map_seed=3)
    assert map_of(params) == desc
    # the reference draws np.random.seed(42); np.random.dirichlet(np.ones(4), (nrow, ncol))
    expected = np.random.RandomState(42).dirichlet(np.ones(4), size=(8, 8)).reshape(64, 4)
    np.testing.assert_allclose(params.slip_dirs, expected, rtol=1e-6)
    assert map_of(make_frozen_lake(map_name="8x8")[1]) == MAPS["8x8"]
    with pytest.raises(ValueError):
        make_frozen_lake(map_name="5x5")
    with pytest.raises(ValueError):
        make_frozen_lake(desc=["SFF", "FFF"])  # no goal


def test_post_decision_matches_info():
    env, params = make_env("FrozenLakeStochastic-v0")
    post = jax.jit(env.post_decision)
    for cell in (0, 9, 27):
        for action in range(4):
            p1, p2 = post(at(cell), action, params), post(at(cell), action, params)
            np.testing.assert_array_equal(p1[0], p2[0])
            _, _, reward, _, info = env.step_env(jax.random.PRNGKey(cell + action), at(cell), action, params)
            np.testing.assert_array_equal(info["post_obs"], p1[0])
            np.testing.assert_allclose(info["post_reward"], p1[1])
            np.testing.assert_allclose(reward, info["post_reward"] + info["stochastic_reward"], rtol=1e-6)


@pytest.mark.timeout(120)
def test_jit_vmap_1024_and_contract():
    env, params = make_env("FrozenLakeStochastic-v0")
    assert env.observation_space(params).shape == (64,) and env.action_space(params).n == 4
    roll = random_rollout(env, params, jax.random.PRNGKey(0), 1024, 64)
    check_contract(env, params, roll)
    np.testing.assert_allclose(roll.rewards, roll.info["post_reward"] + roll.info["stochastic_reward"],
                               rtol=1e-6)
    done = np.asarray(roll.terminated | roll.truncated)
    assert done.any()
    # after any episode end, the next observation is the start cell
    np.testing.assert_array_equal(np.asarray(roll.obs).argmax(-1)[done], int(params.start))
    np.testing.assert_array_equal(np.asarray(roll.states.time)[done], 0)


def test_truncation_after_the_time_limit():
    env, params = make_frozen_lake(map_name="4x4", slip_prob=0.0, max_steps_in_episode=100)
    info = check_episode_end(env, params, jax.random.PRNGKey(0), at(0, time=99), UP)
    assert bool(info["truncated"]) and not bool(info["terminated"])
    np.testing.assert_array_equal(info["final_observation"], jax.nn.one_hot(0, 16))
