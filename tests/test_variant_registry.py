"""PPO variants are registry records: a user registers a new objective or advantage estimator from outside the
package (one primitive + one record) and trains with it, with no trainer code copied."""

import jax
import numpy as np
import pytest

from purejaxpo import make_env
from purejaxpo.algorithms import ppo
from purejaxpo.algorithms.ppo_variants import (
    ADVANTAGES,
    OBJECTIVES,
    AdvantageEstimator,
    Advantages,
    PPOObjective,
    register_advantage,
    register_objective,
)
from purejaxpo.engine import gae_of
from purejaxpo.primitives.losses import clipped_surrogate

TINY = dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 3, update_epochs=2, num_minibatches=2,
            hidden_sizes=(16, 16), clip_value=False)


def _train(config: ppo.PPOConfig, hp: ppo.PPOHParams) -> dict:
    env, params = make_env("CartPole-v1")
    trainer = ppo.make_train(config, env, params)
    return jax.device_get(jax.jit(trainer.train)(jax.random.key(0), hp)[1])


def test_an_objective_registered_from_outside_trains_and_matches_its_builtin_equivalent():
    """A user objective "clip at half ε" is one primitive call in one record; its run equals the built-in clip
    run with ε halved (value clipping off, so ε only enters the policy loss), metric for metric."""

    def half_clip(x, hp, carried, config):
        return clipped_surrogate(x.log_ratio, x.advantages, 0.5 * hp.clip_eps), {"half_eps": 0.5 * hp.clip_eps}

    register_objective(PPOObjective("test_half_clip", half_clip), overwrite=True)
    try:
        ours = _train(ppo.PPOConfig(**TINY, objective="test_half_clip"), ppo.PPOHParams(clip_eps=0.2))
        builtin = _train(ppo.PPOConfig(**TINY, objective="clip"), ppo.PPOHParams(clip_eps=0.1))
        np.testing.assert_allclose(ours["half_eps"], 0.1, rtol=1e-6)
        for name in ("policy_loss", "value_loss", "entropy", "approx_kl", "episode_return", "grad_norm"):
            np.testing.assert_allclose(ours[name], builtin[name], rtol=1e-5, atol=1e-6, equal_nan=True, err_msg=name)
        with pytest.raises(ValueError, match="already registered"):
            register_objective(PPOObjective("test_half_clip", half_clip))
    finally:
        OBJECTIVES.pop("test_half_clip", None)
    with pytest.raises(ValueError, match="objective must be one of"):
        ppo.PPOConfig(**TINY, objective="test_half_clip")  # gone with its record


def test_an_advantage_registered_from_outside_trains():
    """A Monte-Carlo-style estimator (GAE with λ = 1) as a record equals the built-in GAE run at gae_lambda = 1."""

    def gae_lambda_one(exp, ctx, config):
        return Advantages(*gae_of(exp, ctx.hp.gamma, 1.0))

    register_advantage(AdvantageEstimator("test_gae_1", gae_lambda_one), overwrite=True)
    try:
        ours = _train(ppo.PPOConfig(**TINY, advantage="test_gae_1"), ppo.PPOHParams(gae_lambda=0.5))
        builtin = _train(ppo.PPOConfig(**TINY, advantage="gae"), ppo.PPOHParams(gae_lambda=1.0))
        for name in ("policy_loss", "value_loss", "explained_variance", "episode_return"):
            np.testing.assert_allclose(ours[name], builtin[name], rtol=1e-5, atol=1e-6, equal_nan=True, err_msg=name)
    finally:
        ADVANTAGES.pop("test_gae_1", None)


def test_unknown_variant_names_list_the_registered_ones():
    with pytest.raises(ValueError, match="'clip', 'kl_penalty', 'spo', 'ewma', 'dpo', 'r2vpo'"):
        ppo.PPOConfig(**TINY, objective="ppo2")
    with pytest.raises(ValueError, match="'gae', 'egae', 'loo', 'polychromic'"):
        ppo.PPOConfig(**TINY, advantage="vtrace")
