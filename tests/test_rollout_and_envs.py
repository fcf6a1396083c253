"""Rollout bookkeeping, evaluation, make_env and the brax wrapper's truncation handling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment, spaces

from purejaxpo import make_env
from purejaxpo.brax_wrapper import BraxGymnaxWrapper
from purejaxpo.rollout import evaluate, init_env_carry, rollout


@struct.dataclass
class CounterState(environment.EnvState):
    position: jax.Array


@struct.dataclass
class CounterParams(environment.EnvParams):
    max_steps_in_episode: int = 4


class Counter(environment.Environment):
    """Deterministic probe: reward = action + 1, obs = position; terminates when position reaches 3
    (action 1 moves +1, action 0 stays); truncates after 4 steps."""

    @property
    def default_params(self):
        return CounterParams()

    def step_env(self, key, state, action, params):
        position = state.position + action
        state = CounterState(time=state.time + 1, position=position)
        return self.get_obs(state), state, (action + 1).astype(jnp.float32), position >= 3, {}

    def reset_env(self, key, params):
        state = CounterState(time=0, position=jnp.int32(0))
        return self.get_obs(state), state

    def get_obs(self, state, params=None, key=None):
        return jnp.array([state.position], jnp.float32)

    def is_terminated(self, state, params):
        return state.position >= 3

    def observation_space(self, params):
        return spaces.Box(0, 10, (1,), jnp.float32)

    def action_space(self, params):
        return spaces.Discrete(2)


def constant_policy(action):
    def policy_step(obs, key):
        a = jnp.full((obs.shape[0],), action, jnp.int32)
        return a, a, jnp.zeros(obs.shape[0]), jnp.zeros(obs.shape[0])

    return policy_step


def test_rollout_terminated_truncated_and_final_obs():
    env, params = Counter(), CounterParams()
    carry = init_env_carry(env, params, jax.random.key(0), 2)
    # action 1: positions 1, 2, 3 → terminated at t=2 (return 2+2+2 = 6), then restarts.
    carry, traj, stats = rollout(env, params, carry, jax.random.key(1), constant_policy(1), lambda o: o, 6)
    np.testing.assert_array_equal(traj.terminated[:, 0], [0, 0, 1, 0, 0, 1])
    np.testing.assert_array_equal(traj.truncated[:, 0], [0] * 6)
    np.testing.assert_allclose(traj.final_obs[2, 0], [3.0])  # pre-reset observation
    np.testing.assert_allclose(traj.obs[3, 0], [0.0])  # the reset observation follows
    assert float(stats.count) == 4 and float(stats.mean_return) == 6.0 and float(stats.mean_length) == 3.0
    # action 0 never moves: truncated after 4 steps with return 4.
    carry = init_env_carry(env, params, jax.random.key(0), 1)
    carry, traj, stats = rollout(env, params, carry, jax.random.key(1), constant_policy(0), lambda o: o, 5)
    np.testing.assert_array_equal(traj.truncated[:, 0], [0, 0, 0, 1, 0])
    np.testing.assert_array_equal(traj.terminated[:, 0], [0] * 5)
    assert float(stats.count) == 1 and float(stats.mean_return) == 4.0
    assert float(carry.episode_return[0]) == 1.0  # the unfinished episode carries over


def test_rollout_without_finished_episodes_reports_nan_mean():
    env, params = Counter(), CounterParams()
    carry = init_env_carry(env, params, jax.random.key(0), 1)
    _, _, stats = rollout(env, params, carry, jax.random.key(1), constant_policy(0), lambda o: o, 2)
    assert float(stats.count) == 0 and np.isnan(float(stats.mean_return))


def test_evaluate_counts_first_episode_only():
    env, params = Counter(), CounterParams()
    act = lambda state, obs, key: jnp.ones((obs.shape[0],), jnp.int32)
    returns = jax.jit(lambda k: evaluate(env, params, act, None, k, 3, 10))(jax.random.key(0))
    np.testing.assert_allclose(returns, [6.0, 6.0, 6.0])


def test_make_env_names_and_errors():
    env, params = make_env("CartPole-v1")
    obs, state = env.reset(jax.random.key(0), params)
    assert obs.shape == (4,)
    with pytest.raises(ValueError, match="Did you mean: CartPole-v1"):
        make_env("CartPol-v1")
    with pytest.raises(ValueError, match="unknown environment"):
        make_env("no-such-env-anywhere")


@struct.dataclass
class FakeBraxState:
    obs: jax.Array
    reward: jax.Array
    done: jax.Array
    t: jax.Array


class FakeBraxEnv:
    """Brax-like: obs = [t], terminates (done=1) when t reaches 5."""

    observation_size = 1
    action_size = 2

    def reset(self, rng):
        return FakeBraxState(obs=jnp.zeros(1), reward=jnp.zeros(()), done=jnp.zeros(()), t=jnp.zeros(()))

    def step(self, state, action):
        t = state.t + 1
        return FakeBraxState(obs=jnp.array([t]), reward=jnp.ones(()), done=(t >= 5).astype(jnp.float32), t=t)


def test_brax_wrapper_keeps_final_observation_and_separates_truncation():
    env = BraxGymnaxWrapper(FakeBraxEnv(), episode_length=3)
    obs, state = env.reset(jax.random.key(0))
    step = jax.jit(env.step)
    for expected_t in (1, 2):
        obs, state, reward, term, trunc, info = step(jax.random.key(0), state, jnp.zeros(2))
        assert not term and not trunc and float(obs[0]) == expected_t
    obs, state, reward, term, trunc, info = step(jax.random.key(0), state, jnp.zeros(2))
    assert bool(trunc) and not bool(term)
    assert float(info["final_observation"][0]) == 3.0 and float(obs[0]) == 0.0  # reset, final obs kept
    # with a longer limit the env terminates at t=5 instead
    env = BraxGymnaxWrapper(FakeBraxEnv(), episode_length=100)
    _, state = env.reset(jax.random.key(0))
    for _ in range(5):
        obs, state, reward, term, trunc, info = env.step(jax.random.key(0), state, jnp.zeros(2))
    assert bool(term) and not bool(trunc) and float(info["final_observation"][0]) == 5.0
    assert env.action_space().shape == (2,) and env.observation_space().shape == (1,)


def test_real_brax_env_through_make_env_and_ppo():
    from purejaxpo.algorithms import ppo

    env, params = make_env("brax/inverted_pendulum", episode_length=20)
    assert env.action_space(params).shape == (1,) and env.observation_space(params).shape == (4,)
    config = ppo.PPOConfig(num_envs=2, num_steps=32, total_timesteps=2 * 32 * 2, update_epochs=1, num_minibatches=2, hidden_sizes=(16,))
    trainer = ppo.make_train(config, env, params)
    state, metrics = jax.jit(trainer.train)(jax.random.key(0), ppo.PPOHParams())
    assert np.isfinite(np.asarray(metrics["loss"])).all()
    # 128 steps of episodes capped at 20 steps: every finished episode is at most 20 long
    assert float(metrics["episode_count"].sum()) >= 128 / 20 - 2
    assert float(np.nanmax(np.asarray(metrics["episode_length"]))) <= 20
