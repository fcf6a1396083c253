"""FPO (flow policy optimization) and PolicyFlow's Gaussian PPO baseline: the FPO primitives against hand-worked
values, the rollout's packing of (ε, t, ℓ_old) checked by a zero-step update (ratio exactly 1), trainer contracts."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purejaxpo
from purejaxpo.algorithms import fpo, gaussian_ppo
from purejaxpo.algorithms.registry import get_algorithm
from purejaxpo.primitives import flows

TINY = dict(num_envs=4, num_steps=8, total_timesteps=64, update_epochs=2, num_minibatches=2, hidden_sizes=(16, 16),
            critic_hidden_sizes=(16,), num_flow_steps=3, num_samples=4)


def test_cfm_loss_modes_and_interpolation():
    key = jax.random.split(jax.random.key(0), 4)
    action = jax.random.normal(key[0], (5, 2))
    eps = jax.random.normal(key[1], (5, 3, 2))
    t = jax.random.uniform(key[2], (5, 3))
    v = jax.random.normal(key[3], (5, 3, 2))
    x_t = flows.cfm_interpolate(action, eps, t)
    np.testing.assert_allclose(x_t[1, 2], t[1, 2] * eps[1, 2] + (1 - t[1, 2]) * action[1], rtol=1e-6)
    plain = flows.cfm_loss(v, x_t, eps, action, t, "u")
    np.testing.assert_allclose(plain, np.mean((np.asarray(v) - (np.asarray(eps) - np.asarray(action)[:, None])) ** 2, -1), rtol=1e-5)
    # "u_but_supervise_as_eps" = (1 − t)² × the "u" loss
    np.testing.assert_allclose(flows.cfm_loss(v, x_t, eps, action, t), (1 - t) ** 2 * plain, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="CFM mode"):
        flows.cfm_loss(v, x_t, eps, action, t, "x")


def test_fpo_ratio_schedule_embedding_and_euler():
    old = jnp.array([[1.0, 3.0], [0.5, 0.5]])
    new = jnp.array([[0.0, 2.0], [10.0, 0.5]])
    np.testing.assert_allclose(flows.fpo_log_ratio(old, new), [1.0, -4.75])  # mean(old) − mean(new)
    np.testing.assert_allclose(flows.fpo_log_ratio(old, new, False), [[1.0, 1.0], [-3.0, 0.0]])  # clipped to ±3
    t_now, t_next = flows.fpo_schedule(4)
    np.testing.assert_allclose(t_now, [1.0, 0.75, 0.5, 0.25])
    np.testing.assert_allclose(t_next, [0.75, 0.5, 0.25, 0.0])
    emb = flows.timestep_embedding(jnp.array([0.0, 0.5]), 8)
    np.testing.assert_allclose(emb[0], [1, 1, 1, 1, 0, 0, 0, 0], atol=1e-7)
    np.testing.assert_allclose(emb[1, 2], np.cos(2.0), rtol=1e-6)  # cos(2² · 0.5)
    noise = jnp.array([[1.0, -2.0]])
    # a constant velocity c (pointing action → noise) carries noise at t = 1 to noise − c at t = 0
    np.testing.assert_allclose(flows.euler_sample(lambda x, t: jnp.full_like(x, 0.5), noise, 7), noise - 0.5, rtol=1e-6)
    # v(x, t) = x integrates exactly to x·(1 − 1/K)^K with K Euler steps backwards in time
    np.testing.assert_allclose(flows.euler_sample(lambda x, t: x, noise, 5), noise * 0.8**5, rtol=1e-5)


@pytest.fixture(scope="module")
def pendulum():
    return purejaxpo.make_env("Pendulum-v1")


def test_zero_step_update_has_ratio_one(pendulum):
    """With lr = 0 the parameters never move, so the CFM losses recomputed from the stored (a, ε, t) must equal
    the stored ℓ_old: ρ = 1 exactly (approx KL and clip fraction 0). A packing error in the raw action breaks it."""
    env, params = pendulum
    trainer = fpo.make_train(fpo.FPOConfig(**TINY), env, params)
    _, metrics = jax.jit(trainer.train)(jax.random.key(0), fpo.FPOHParams(lr=0.0))
    assert float(np.max(np.abs(metrics["approx_kl"]))) < 1e-9 and float(np.max(metrics["clip_fraction"])) == 0.0
    _, moving = jax.jit(trainer.train)(jax.random.key(0), fpo.FPOHParams(lr=3e-2, clip_eps=0.01))
    assert float(np.max(moving["clip_fraction"])) > 0.0


def test_fpo_trainer_contract(pendulum):
    env, params = pendulum
    trainer = fpo.make_train(fpo.FPOConfig(**TINY), env, params)
    hp = fpo.FPOHParams()
    keys = jax.random.split(jax.random.key(1), 2)
    state, metrics = jax.jit(jax.vmap(trainer.train, in_axes=(0, None)))(keys, hp)
    assert np.all(np.isfinite(metrics["loss"])) and float(metrics["nonfinite_steps"].sum()) == 0
    _, alone = jax.jit(trainer.train)(keys[1], hp)
    np.testing.assert_allclose(alone["loss"], metrics["loss"][1], rtol=2e-4, atol=1e-4)
    single = jax.tree.map(lambda x: x[0], state)
    action = trainer.act(single, jnp.zeros((5, 3)), jax.random.key(1))
    assert action.shape == (5, 1) and np.all(np.abs(action) <= 2.0)
    assert trainer.act(single, jnp.zeros((3,)), jax.random.key(1), deterministic=True).shape == (1,)
    assert get_algorithm("fpo").make_train is fpo.make_train


def test_config_errors(pendulum):
    with pytest.raises(ValueError, match="time_embed_dim"):
        fpo.FPOConfig(**{**TINY, "time_embed_dim": 3})
    with pytest.raises(ValueError, match="cfm_mode"):
        fpo.FPOConfig(**{**TINY, "cfm_mode": "eps"})
    with pytest.raises(ValueError, match="action_bounds"):
        gaussian_ppo.GaussianPPOConfig(action_bounds="squash")
    cartpole = purejaxpo.make_env("CartPole-v1")
    for module, config in ((fpo, fpo.FPOConfig(**TINY)), (gaussian_ppo, gaussian_ppo.GaussianPPOConfig(num_envs=4, num_steps=8, total_timesteps=64))):
        with pytest.raises(ValueError, match="continuous"):
            module.make_train(config, *cartpole)


def test_gaussian_ppo_kl_and_lr(pendulum):
    """The reported KL is the analytic KL(π_old ‖ π_θ) (0 at the first step), and the lr adapts per epoch."""
    env, params = pendulum
    config = gaussian_ppo.GaussianPPOConfig(num_envs=4, num_steps=8, total_timesteps=32, update_epochs=2, num_minibatches=2,
                                            hidden_sizes=(16,))
    trainer = gaussian_ppo.make_train(config, env, params)
    hp = gaussian_ppo.GaussianPPOHParams(lr=1e-3)
    state = trainer.init(jax.random.key(0), hp)
    new, metrics = jax.jit(trainer.update)(state, hp.replace(desired_kl=1e-12))
    assert float(metrics["kl"]) > 0 and float(new.opt_state[0].hyperparams["learning_rate"]) == pytest.approx(1e-3 / 2.25, rel=1e-5)
    frozen = hp.replace(lr=0.0, min_lr=0.0)  # the adaptive rate is set from hp.lr at init only
    _, still = jax.jit(trainer.update)(trainer.init(jax.random.key(0), frozen), frozen)
    assert float(still["kl"]) < 1e-9 and float(still["clip_fraction"]) == 0.0
