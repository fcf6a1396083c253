"""PPO trainer contracts: bad input, vmapped seeds equal single seeds, no recompiles, grids, many seeds."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxpo import make_env, stack_hparams
from purejaxpo.algorithms import ppo

TINY = dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 6, update_epochs=2, num_minibatches=2, hidden_sizes=(16, 16))


@pytest.fixture(scope="module")
def cartpole():
    return make_env("CartPole-v1")


@pytest.fixture(scope="module")
def tiny_trainer(cartpole):
    return ppo.make_train(ppo.PPOConfig(**TINY), *cartpole)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_envs=3, num_steps=5, num_minibatches=4), "does not divide"),
        (dict(num_envs=0), "positive integer"),
        (dict(num_steps=-8), "positive integer"),
        (dict(update_epochs=0), "positive integer"),
        (dict(total_timesteps=100), "smaller than one rollout"),
        (dict(hidden_sizes=(64, 0)), "hidden_sizes"),
        (dict(activation="sigmoidish"), "activation"),
        (dict(torso="transformer"), "torso"),
        (dict(action_bounds="wrap"), "action_bounds"),
    ],
)
def test_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ppo.PPOConfig(**kwargs)


def test_inexact_budget_warns_with_the_steps_actually_run():
    with pytest.warns(UserWarning, match="976 updates = 499712 env steps"):
        ppo.PPOConfig(total_timesteps=500_000)


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(lr=-1e-3), "lr must be >= 0"), (dict(gamma=1.5), "gamma"), (dict(clip_eps=0.0), "clip_eps"),
     (dict(max_grad_norm=-1.0), "max_grad_norm"), (dict(ent_coef=float("nan")), "finite"), (dict(dual_clip_c=0.5), "dual_clip_c")],
)
def test_hparam_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ppo.PPOHParams(**kwargs)


def test_settings_that_do_not_fit_the_env(cartpole):
    with pytest.raises(ValueError, match="continuous actions only"):
        ppo.make_train(ppo.PPOConfig(**TINY, action_bounds="tanh"), *cartpole)
    with pytest.raises(ValueError, match="continuous actions only"):
        ppo.make_train(ppo.PPOConfig(**TINY, init_log_std=-0.5), *cartpole)
    with pytest.raises(ValueError, match="H, W, C"):
        ppo.make_train(ppo.PPOConfig(**TINY, torso="cnn"), *cartpole)


def test_vmapped_seed_equals_single_seed(tiny_trainer):
    hp = ppo.PPOHParams()
    keys = jax.random.split(jax.random.key(3), 4)
    states, metrics = jax.jit(jax.vmap(tiny_trainer.train, in_axes=(0, None)))(keys, hp)
    single_state, single_metrics = jax.jit(tiny_trainer.train)(keys[2], hp)
    for name, values in single_metrics.items():
        np.testing.assert_allclose(metrics[name][2], values, rtol=2e-4, atol=2e-5, err_msg=name)
    for a, b in zip(jax.tree.leaves(states.params), jax.tree.leaves(single_state.params)):
        np.testing.assert_allclose(a[2], b, rtol=2e-4, atol=2e-5)


def test_changing_hparams_never_recompiles(tiny_trainer):
    train = jax.jit(tiny_trainer.train)
    key = jax.random.key(0)
    train(key, ppo.PPOHParams())
    for field in dataclasses.fields(ppo.PPOHParams):
        default = getattr(ppo.PPOHParams(), field.name)
        hp = ppo.PPOHParams().replace(**{field.name: default * 0.9 + (0.05 if default < 0.5 else 0.0)})
        train(key, hp)
    assert train._cache_size() == 1


def test_hyperparameter_grid_times_seeds_in_one_call(tiny_trainer):
    grid = stack_hparams([ppo.PPOHParams(lr=lr, ent_coef=e) for lr in (1e-4, 1e-3) for e in (0.0, 0.02)])
    keys = jax.random.split(jax.random.key(0), 3)
    per_seed = jax.vmap(tiny_trainer.train, in_axes=(0, None))
    state, metrics = jax.jit(jax.vmap(per_seed, in_axes=(None, 0)))(keys, grid)
    assert metrics["policy_loss"].shape == (4, 3, tiny_trainer.config.num_updates)
    assert np.isfinite(metrics["loss"]).all()
    # different settings really train differently; lr=0 would leave params untouched
    assert not np.allclose(metrics["entropy"][0], metrics["entropy"][3])


def test_zero_learning_rate_leaves_params_unchanged(tiny_trainer):
    hp = ppo.PPOHParams(lr=0.0)
    state0 = tiny_trainer.init(jax.random.key(0), hp)
    state, _ = jax.jit(tiny_trainer.train)(jax.random.key(0), hp)
    for a, b in zip(jax.tree.leaves(state0.params), jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(a, b)
    assert int(state.update_index) == tiny_trainer.config.num_updates


def test_nonfinite_loss_is_skipped_and_reported(cartpole):
    env, params = cartpole

    class NaNRewards:
        """CartPole whose rewards are NaN: every loss is non-finite."""

        def __getattr__(self, name):
            return getattr(env, name)

        def step(self, key, state, action, params=None):
            obs, state, reward, term, trunc, info = env.step(key, state, action, params)
            return obs, state, reward * jnp.nan, term, trunc, info

    trainer = ppo.make_train(ppo.PPOConfig(**TINY), NaNRewards(), params)
    state0 = trainer.init(jax.random.key(0), ppo.PPOHParams())
    state, metrics = jax.jit(trainer.train)(jax.random.key(0), ppo.PPOHParams())
    steps_per_update = TINY["update_epochs"] * TINY["num_minibatches"]
    np.testing.assert_array_equal(metrics["nonfinite_steps"], steps_per_update)
    for a, b in zip(jax.tree.leaves(state0.params), jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(a, b)  # never trained through


def test_act_returns_env_actions_and_deterministic_is_the_mode(tiny_trainer):
    from flax import nnx

    state = tiny_trainer.init(jax.random.key(0), ppo.PPOHParams())
    obs = jax.random.normal(jax.random.key(3), (64, 4)) * 3.0
    actions = tiny_trainer.act(state, obs, jax.random.key(1))
    assert actions.shape == (64,) and actions.dtype == jnp.int32
    # deterministic = argmax of the policy's logits, whatever the key
    graphdef = nnx.graphdef(ppo.actor_critic_for(tiny_trainer.config, ppo.policy_spec(tiny_trainer.env, tiny_trainer.env_params),
                                                 jax.random.key(0)))
    logits = nnx.merge(graphdef, state.params).distribution(obs).logits
    for key in (1, 2):
        np.testing.assert_array_equal(tiny_trainer.act(state, obs, jax.random.key(key), deterministic=True), np.argmax(logits, -1))
    # sampling follows the probabilities: over many keys both actions of a near-uniform policy appear
    samples = jax.vmap(lambda k: tiny_trainer.act(state, obs[:1], k))(jax.random.split(jax.random.key(4), 200))
    assert set(np.unique(samples)) == {0, 1}


def test_continuous_deterministic_act_is_the_bounded_mean():
    from flax import nnx

    env, params = make_env("Pendulum-v1")
    config = ppo.PPOConfig(**TINY, action_bounds="tanh", init_log_std=0.5)
    trainer = ppo.make_train(config, env, params)
    state = trainer.init(jax.random.key(0), ppo.PPOHParams())
    obs = jax.random.normal(jax.random.key(1), (16, 3))
    graphdef = nnx.graphdef(ppo.actor_critic_for(config, ppo.policy_spec(env, params), jax.random.key(0)))
    mean = nnx.merge(graphdef, state.params).distribution(obs).mean()
    expected = -2.0 + 0.5 * (np.tanh(np.asarray(mean)) + 1.0) * 4.0  # Pendulum's Box is [-2, 2], shape (1,)
    np.testing.assert_allclose(trainer.act(state, obs, jax.random.key(5), deterministic=True), expected, rtol=1e-5, atol=1e-6)


def test_continuous_env_runs_with_normalization_and_tanh_bounds():
    env, params = make_env("Pendulum-v1")
    config = ppo.PPOConfig(**TINY, normalize_obs=True, normalize_rewards=True, action_bounds="tanh", init_log_std=-0.5)
    trainer = ppo.make_train(config, env, params)
    state, metrics = jax.jit(trainer.train)(jax.random.key(0), ppo.PPOHParams())
    assert np.isfinite(metrics["loss"]).all()
    assert float(state.obs_norm.count) > 4 * 16 * 6 - 1  # the normalizer saw every observation
    actions = trainer.act(state, jnp.zeros((50, 3)), jax.random.key(0))
    assert actions.shape == (50, 1) and float(jnp.abs(actions).max()) <= 2.0


@pytest.mark.timeout(600)
def test_64_seeds_init_and_train_vmapped_without_deadlock(cartpole):
    # Guards the batched-QR deadlock (DESIGN.md, platform pitfalls): init + train 64 seeds in one vmap.
    config = ppo.PPOConfig(num_envs=2, num_steps=8, total_timesteps=2 * 8 * 3, update_epochs=1, num_minibatches=1)
    trainer = ppo.make_train(config, *cartpole)
    keys = jax.random.split(jax.random.key(0), 64)
    state, metrics = jax.jit(jax.vmap(trainer.train, in_axes=(0, None)))(keys, ppo.PPOHParams())
    assert metrics["loss"].shape == (64, 3) and np.isfinite(metrics["loss"]).all()


def test_hparam_rule_constructors_hand_checked():
    from purejaxpo.types import above, at_least, in_interval

    values = np.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    holds, message = at_least(0, " (why)")
    np.testing.assert_array_equal(holds(values), [False, True, True, True, True])
    assert message == "must be >= 0 (why)"
    holds, message = above(1)
    np.testing.assert_array_equal(holds(values), [False, False, False, False, True])
    assert message == "must be > 1"
    holds, message = in_interval(0, 1)
    np.testing.assert_array_equal(holds(values), [False, True, True, True, False])
    assert message == "must lie in [0, 1]"
    holds, message = in_interval(0, 1, closed_high=False)
    np.testing.assert_array_equal(holds(values), [False, True, True, False, False])
    assert message == "must lie in [0, 1)"
    with pytest.raises(ValueError, match=r"ewma_beta must lie in \[0, 1\), got 1.0"):
        ppo.PPOHParams(ewma_beta=1.0)
