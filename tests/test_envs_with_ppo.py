"""Every environment of our own registry trains under the PPO trainer for a few updates."""

import jax
import numpy as np
import pytest

from purejaxpo import list_envs, make_env
from purejaxpo.algorithms import ppo

OUR_ENVS = list_envs()["purejaxpo"]


def test_our_envs_are_listed():
    assert {"LotSizing-v0", "FrozenLakeStochastic-v0", "MultiGoal-v0", "Coverage-v0", "InformativePath-v0", "FacilityLocation-v0"} <= set(OUR_ENVS)


@pytest.mark.parametrize("name", OUR_ENVS)
def test_ppo_trains_a_few_updates(name):
    env, params = make_env(name)
    config = ppo.PPOConfig(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 3, update_epochs=1, num_minibatches=2, hidden_sizes=(16,))
    trainer = ppo.make_train(config, env, params)
    state, metrics = jax.jit(trainer.train)(jax.random.key(0), ppo.PPOHParams())
    assert np.isfinite(np.asarray(metrics["loss"])).all()
    assert np.asarray(metrics["nonfinite_steps"]).sum() == 0
    assert int(state.update_index) == 3
