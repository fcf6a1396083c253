"""MultiGoal-v0 (PolicyFlow): hand-worked dynamics and reward, wall termination, time-out, render, API."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxpo.envs.multigoal import MultiGoalParams, MultiGoalState, goal_positions, make_multigoal, render, rollout
from purejaxpo.envs.testing import check_contract, check_episode_end, random_rollout
from purejaxpo.environments import make_env


def state_of(p, v, time=0) -> MultiGoalState:
    return MultiGoalState(position=jnp.asarray(p, jnp.float32), velocity=jnp.asarray(v, jnp.float32),
                          time=jnp.asarray(time, jnp.int32))


def test_goals():
    goals = np.asarray(goal_positions(MultiGoalParams()))
    assert goals.shape == (6, 2)
    np.testing.assert_allclose(np.linalg.norm(goals, axis=1), 5.0, rtol=1e-6)
    np.testing.assert_allclose(goals[0], [5.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(goals[1], [2.5, 5.0 * math.sqrt(3) / 2], atol=1e-5)  # angle 60°


def test_hand_worked_step():
    env, params = make_env("MultiGoal-v0")
    # p = (4.5, 0), v = (1, 0), u = (10, 0) (clipped to 5 for the dynamics, unclipped in the cost):
    #   p' = p + v*dt = (4.6, 0);  v' = v + 5*dt = (1.5, 0)
    #   nearest goal (5, 0): d² = 0.16
    #   r = 0.1 * (exp(-0.3*0.16) + exp(-0.1*0.16) - 0.01*100) = 0.1 * (0.953134 + 0.984127 - 1) = 0.0937261
    obs, state, reward, terminated, info = env.step_env(jax.random.PRNGKey(0), state_of([4.5, 0.0], [1.0, 0.0]),
                                                        jnp.array([10.0, 0.0]), params)
    np.testing.assert_allclose(obs, [4.6, 0.0, 1.5, 0.0], rtol=1e-6)
    np.testing.assert_allclose(reward, 0.1 * (math.exp(-0.048) + math.exp(-0.016) - 1.0), rtol=1e-5)
    np.testing.assert_allclose(reward, 0.0937261, rtol=1e-5)
    np.testing.assert_allclose(info["goal_distance"], 0.4, rtol=1e-5)
    assert not bool(terminated) and int(state.time) == 1
    # Position uses the *old* velocity: from rest, a push moves nothing this step.
    obs, _, reward, _, _ = env.step_env(jax.random.PRNGKey(0), state_of([0.0, 0.0], [0.0, 0.0]),
                                        jnp.array([-3.0, 4.0]), params)
    np.testing.assert_allclose(obs, [0.0, 0.0, -0.3, 0.4], atol=1e-7)
    # at the origin d² = 25: r = 0.1 * (exp(-7.5) + exp(-2.5) - 0.01*25) = 0.1 * (0.000553 + 0.082085 - 0.25)
    np.testing.assert_allclose(reward, 0.1 * (math.exp(-7.5) + math.exp(-2.5) - 0.25), rtol=1e-5)


def test_wall_termination_and_auto_reset():
    env, params = make_env("MultiGoal-v0")
    # p = (7.95, 0), v = (1, 0): p'_x = 8.05 > 8 -> terminated; obs after the step is a fresh reset.
    info = check_episode_end(env, params, jax.random.PRNGKey(0), state_of([7.95, 0.0], [1.0, 0.0]),
                             jnp.zeros(2))
    np.testing.assert_allclose(info["final_observation"], [8.05, 0.0, 1.0, 0.0], rtol=1e-6)
    assert bool(info["terminated"]) and not bool(info["truncated"])
    obs, state, *_ = env.step(jax.random.PRNGKey(0), state_of([7.95, 0.0], [1.0, 0.0]), jnp.zeros(2), params)
    assert np.all(np.abs(np.asarray(obs[:2])) <= 7.0) and np.all(np.asarray(obs[2:]) == 0.0)
    assert int(state.time) == 0
    # exactly on the wall is still inside (strict inequality)
    _, _, _, terminated, _ = env.step_env(jax.random.PRNGKey(0), state_of([7.9, 0.0], [1.0, 0.0]), jnp.zeros(2),
                                          params)
    assert not bool(terminated)


def test_time_out_after_51_steps():
    env, params = make_env("MultiGoal-v0")
    assert params.max_steps_in_episode == 51  # the code truncates when episode_length > 50
    info = check_episode_end(env, params, jax.random.PRNGKey(0), state_of([1.0, 1.0], [0.0, 0.0], time=50),
                             jnp.zeros(2))
    assert bool(info["truncated"]) and not bool(info["terminated"])
    np.testing.assert_allclose(info["final_observation"], [1.0, 1.0, 0.0, 0.0])
    _, _, _, _, truncated, _ = env.step(jax.random.PRNGKey(0), state_of([1.0, 1.0], [0.0, 0.0], time=49),
                                        jnp.zeros(2), params)
    assert not bool(truncated)


def test_reset_distribution_and_initial_time():
    env, params = make_env("MultiGoal-v0")
    keys = jax.random.split(jax.random.PRNGKey(0), 4096)
    obs, states = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    pos = np.asarray(obs[:, :2])
    assert np.abs(pos).max() <= 7.0 and np.abs(pos).max() > 6.9 and np.all(np.asarray(obs[:, 2:]) == 0)
    times = np.asarray(states.time)
    assert times.min() == 0 and times.max() == 49  # random_init_episode_length: U{0..49}
    _, states = jax.vmap(env.reset, in_axes=(0, None))(keys, params.replace(randomize_initial_time=False))
    assert np.all(np.asarray(states.time) == 0)
    # auto-resets (reset_env) always start at time 0
    _, state = env.reset_env(keys[0], params)
    assert int(state.time) == 0


def test_factory_validates_overrides():
    _, params = make_multigoal(dt=0.05, goal_radius=4.0)
    assert params.dt == 0.05 and params.goal_radius == 4.0
    with pytest.raises(ValueError, match="unknown MultiGoal parameter"):
        make_multigoal(num_goal=6)


@pytest.mark.timeout(120)
def test_jit_vmap_1024_and_contract():
    env, params = make_env("MultiGoal-v0")
    assert env.action_space(params).shape == (2,) and env.observation_space(params).shape == (4,)
    roll = random_rollout(env, params, jax.random.PRNGKey(0), 1024, 60)
    check_contract(env, params, roll)
    done = np.asarray(roll.terminated | roll.truncated)
    assert np.asarray(roll.truncated).any() and np.asarray(roll.terminated).any()
    np.testing.assert_array_equal(np.asarray(roll.states.time)[done], 0)
    np.testing.assert_array_equal(np.asarray(roll.obs)[done][:, 2:], 0.0)  # reset obs: zero velocity


def test_rollout_from_origin_and_render(tmp_path):
    env, params = make_env("MultiGoal-v0")

    def policy(key, obs):
        return 5.0 * jax.random.normal(key, (obs.shape[0], 2))

    run = jax.jit(lambda key: rollout(env, params, key, policy, num_trajectories=64, num_steps=40))
    positions, dones, actions = run(jax.random.PRNGKey(0))
    assert positions.shape == (41, 64, 2) and dones.shape == (40, 64) and actions.shape == (40, 64, 2)
    np.testing.assert_array_equal(positions[0], 0.0)
    np.testing.assert_array_equal(positions[1], 0.0)  # first step moves with the old (zero) velocity
    path = render(positions, tmp_path / "multigoal.png", dones=dones, first_actions=actions[0])
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
