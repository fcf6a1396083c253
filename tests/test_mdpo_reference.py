"""MDPO's reference-faithful options: the released code's fixed step-size horizon (``reference_settings``) and
deterministic off-policy acting after warm-up, each against its neutral setting."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from purejaxpo import make_env
from purejaxpo.algorithms import mdpo, mdpo_off


def test_reference_settings_are_the_released_schedule():
    config, hp = mdpo.reference_settings(total_timesteps=1_000_000)
    assert (config.num_envs, config.num_steps, config.sgd_steps, config.num_minibatches) == (1, 2048, 10, 1)
    assert (config.vf_epochs, config.vf_minibatches, config.anneal_horizon) == (5, 16, mdpo.REFERENCE_ANNEAL_HORIZON)
    assert config.normalize_obs and config.normalize_rewards and hp == mdpo.MDPOHParams()
    assert mdpo.REFERENCE_ANNEAL_HORIZON == int(10e6 / 2048)
    last = config.num_updates - 1  # 487 at 1M steps
    t = np.asarray([mdpo.step_size(config, hp, jnp.asarray(k)) for k in (0, last, 4881, 6000)])
    np.testing.assert_allclose(t, [1.0, 1.0 - last / 4882, 1.0 / 4882, 1.0 / 4882], rtol=2e-4)  # float32 1 − k/K
    assert 1.0 / t[1] == pytest.approx(1.11, abs=0.005)  # the KL weight barely grows within a 1M-step run


def test_anneal_horizon_none_is_the_run_length():
    """The neutral setting ``anneal_horizon=None`` is ``K = num_updates``: the KL weight reaches K at the end."""
    base = dict(num_envs=4, num_steps=32, total_timesteps=4 * 32 * 10)
    default, explicit = mdpo.MDPOConfig(**base), mdpo.MDPOConfig(**base, anneal_horizon=10)
    ks = jnp.arange(12)
    hp = mdpo.MDPOHParams()
    np.testing.assert_array_equal(mdpo.step_size(default, hp, ks), mdpo.step_size(explicit, hp, ks))
    np.testing.assert_allclose(1.0 / mdpo.step_size(default, hp, jnp.asarray(9)), 10.0, rtol=1e-6)


def _off_state(deterministic: bool):
    env, params = make_env("Pendulum-v1")
    config = mdpo_off.MDPOOffConfig(steps_per_update=20, total_timesteps=40, learning_starts=20, train_batch_size=8,
                                    hidden_sizes=(8,), deterministic_collection=deterministic)
    trainer = mdpo_off.make_train(config, env, params)
    hp = mdpo_off.OffPolicyHParams(lr=0.0)  # the learner never moves: the acting policy stays the initial one
    state = trainer.init(jax.random.key(0), hp)
    after, _ = jax.jit(trainer.update)(state, hp)
    return config, state, after


@pytest.mark.parametrize("deterministic", [True, False])
def test_deterministic_collection_stores_the_policy_mode(deterministic):
    """After warm-up the stored actions are ``tanh(μ(s))`` of the acting policy (the released code) with
    ``deterministic_collection=True``, and samples (not the mode) with the default ``False``."""
    config, state, after = _off_state(deterministic)
    graph = nnx.split(mdpo_off.SquashedGaussianActor(3, 1, config.hidden_sizes, config.activation, rngs=nnx.Rngs(0)))[0]
    actor = nnx.merge(graph, state.learner.params["actor"])
    start = config.learning_starts  # first slot written after the warm-up
    obs = after.buffer.data["obs"][start:start + config.steps_per_update]
    actions = after.buffer.data["action"][start:start + config.steps_per_update]
    mode = jnp.tanh(actor(obs)[0])
    if deterministic:
        np.testing.assert_allclose(actions, mode, rtol=1e-5, atol=1e-6)
    else:
        assert np.abs(np.asarray(actions - mode)).max() > 1e-2
