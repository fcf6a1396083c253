"""Action masks: an env reports legal actions (``env.has_action_mask``, ``env.action_mask(state)``, True = legal);
PPO puts −∞ logits on the others in sampling, log-probabilities, entropy and KL. A masked action is never taken,
even when it would pay the most, and every gradient stays finite."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment, spaces

from purejaxpo.algorithms import mdpo, ppo
from purejaxpo.networks import distributions
from purejaxpo.rollout import evaluate


@struct.dataclass(kw_only=True)
class _State(environment.EnvState):
    cell: jax.Array
    time: jax.Array


@struct.dataclass(kw_only=True)
class _Params(environment.EnvParams):
    max_steps_in_episode: int = 8


class TemptingBandit(environment.Environment):
    """4 states (one-hot obs), 4 actions; in state s the action s is illegal and would pay 10, every other pays
    its index/3. Unmasked PPO would learn to take the illegal action; masked PPO must never take it."""

    has_action_mask = True

    @property
    def default_params(self):
        return _Params()

    def action_mask(self, state):
        return jnp.arange(4) != state.cell

    def step_env(self, key, state, action, params):
        reward = jnp.where(action == state.cell, 10.0, action.astype(jnp.float32) / 3.0)
        new = _State(cell=jax.random.randint(key, (), 0, 4), time=state.time + 1)
        return jax.nn.one_hot(new.cell, 4), new, reward, jnp.array(False), {}

    def reset_env(self, key, params):
        state = _State(cell=jax.random.randint(key, (), 0, 4), time=jnp.zeros((), jnp.int32))
        return jax.nn.one_hot(state.cell, 4), state

    def is_terminated(self, state, params):
        return jnp.array(False)

    def observation_space(self, params):
        return spaces.Box(0.0, 1.0, (4,), jnp.float32)

    def action_space(self, params=None):
        return spaces.Discrete(4)


TINY = dict(num_envs=8, num_steps=16, total_timesteps=8 * 16 * 12, update_epochs=2, num_minibatches=2, hidden_sizes=(16,))


def test_masked_distribution_never_samples_masked_actions_and_stays_finite():
    logits = jnp.array([[3.0, 0.0, -1.0], [0.5, 9.0, 0.5]])
    mask = jnp.array([[False, True, True], [True, False, True]])
    dist = distributions.masked(distributions.categorical(logits), mask)
    samples = dist.sample(seed=jax.random.key(0), sample_shape=(2000,))
    assert not np.any(np.asarray(mask)[np.arange(2), np.asarray(samples)] == False)  # noqa: E712
    np.testing.assert_array_equal(dist.mode(), [1, 0])  # the best *legal* action
    assert np.all(np.isneginf(dist.log_prob(jnp.array([0, 1]))))
    # renormalized over the legal actions; entropy and KL finite
    np.testing.assert_allclose(np.exp(dist.log_prob(jnp.array([1, 0]))), [np.exp(0) / (np.exp(0) + np.exp(-1)), 0.5], rtol=1e-6)
    other = distributions.masked(distributions.categorical(jnp.zeros((2, 3))), mask)
    assert np.all(np.isfinite(dist.entropy())) and np.all(np.isfinite(dist.kl_divergence(other)))
    grads = jax.grad(lambda l: jnp.sum(distributions.masked(distributions.categorical(l), mask).entropy()
                                       + distributions.masked(distributions.categorical(l), mask).log_prob(jnp.array([2, 2]))))(logits)
    # masked logits do not enter the result (their gradient is 0 up to float32 round-off of distrax's normalization)
    assert np.all(np.isfinite(grads)) and np.all(np.abs(np.asarray(grads)[~np.asarray(mask)]) < 1e-6)


@pytest.mark.parametrize("policy", ["mlp", "gru"])
def test_ppo_never_takes_a_masked_action_and_learns_the_best_legal_one(policy):
    env = TemptingBandit()
    params = env.default_params
    trainer = ppo.make_train(ppo.PPOConfig(**TINY, policy=policy, memory_size=8), env, params)
    state, metrics = jax.jit(trainer.train)(jax.random.key(0), ppo.PPOHParams(lr=3e-3))
    assert float(np.sum(metrics["nonfinite_steps"])) == 0 and np.all(np.isfinite(metrics["loss"]))
    # the reward per step can only come from legal actions: at most 1 (action 3), never the illegal 10
    assert float(np.nanmax(metrics["episode_return"])) <= 8.0 + 1e-5
    # acting: masked actions never chosen, stochastic or greedy
    obs_state = jax.vmap(env.reset_env, in_axes=(0, None))(jax.random.split(jax.random.key(1), 256), params)
    obs, states = obs_state
    mask = jax.vmap(env.action_mask)(states)
    kwargs = {"memory": trainer.memory(state, 256)} if policy == "gru" else {}
    for deterministic in (False, True):
        out = trainer.act(state, obs, jax.random.key(2), deterministic, action_mask=mask, **kwargs)
        action = out[0] if policy == "gru" else out
        assert np.all(np.asarray(mask)[np.arange(256), np.asarray(action)])
    # the evaluation loop reads the mask from the env
    fresh = trainer.memory(state, 16) if policy == "gru" else None
    act = lambda s, o, k, **kw: trainer.act(s, o, k, **kw)
    returns = evaluate(env, params, act, state, jax.random.key(3), 16, 8, fresh)
    assert np.all(returns <= 8.0 + 1e-5)


def test_algorithms_without_masking_refuse_a_masked_env():
    env = TemptingBandit()
    with pytest.raises(ValueError, match="does not apply action masks"):
        mdpo.make_train(mdpo.MDPOConfig(num_envs=2, num_steps=16, total_timesteps=64, vf_minibatches=1), env, env.default_params)
