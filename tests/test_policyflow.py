"""PolicyFlow trainer: validation, the flow policy's distribution protocol, the ratio at θ = θ_old, the Gaussian
degeneration, runner integration and a short Pendulum learning test."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import purejaxpo
from purejaxpo.algorithms import policyflow as pf
from purejaxpo.algorithms.registry import get_algorithm
from purejaxpo.networks.flow_policy import FlowPolicy

Array = jax.Array

TINY = pf.PolicyFlowConfig(
    num_envs=4, num_steps=8, total_timesteps=64, update_epochs=2, num_minibatches=2,
    hidden_sizes=(16, 16), critic_hidden_sizes=(16,), emb_dim=16, num_flow_steps=3,
)


@pytest.fixture(scope="module")
def pendulum():
    return purejaxpo.make_env("Pendulum-v1")


def test_config_and_hparams_validation():
    with pytest.raises(ValueError, match="interpolant"):
        dataclasses.replace(TINY, interpolant="ddpm")
    with pytest.raises(ValueError, match="brownian_reduction"):
        dataclasses.replace(TINY, brownian_reduction="sum")
    with pytest.raises(ValueError, match="emb_dim"):
        dataclasses.replace(TINY, emb_dim=12)
    with pytest.raises(ValueError, match="num_flow_steps"):
        dataclasses.replace(TINY, num_flow_steps=0)
    with pytest.raises(ValueError, match="num_minibatches"):
        dataclasses.replace(TINY, num_minibatches=3)
    with pytest.raises(ValueError, match="brownian_coef"):
        pf.PolicyFlowHParams(brownian_coef=-1.0)
    with pytest.raises(ValueError, match="gamma"):
        pf.PolicyFlowHParams(gamma=1.5)
    assert TINY.num_updates == 2 and TINY.batch_size == 32


def test_discrete_env_raises_before_compiling():
    env, params = purejaxpo.make_env("CartPole-v1")
    with pytest.raises(ValueError, match="continuous"):
        pf.make_train(TINY, env, params)
    assert get_algorithm("policyflow").action_kinds == ("continuous",)


def _policy(**kwargs) -> FlowPolicy:
    base = dict(hidden_sizes=(16, 16), critic_hidden_sizes=(16,), emb_dim=16, num_flow_steps=3)
    return FlowPolicy(3, 2, **{**base, **kwargs}, rngs=nnx.Rngs(params=jax.random.key(0)))


def test_flow_distribution_protocol():
    model = _policy()
    obs = jax.random.normal(jax.random.key(1), (5, 3))
    dist, value = model(obs, jax.random.key(2))
    assert dist.x0.shape == dist.x1.shape == (5, 2) and value.shape == (5,)
    action, log_prob = dist.sample_and_log_prob(seed=jax.random.key(3))
    np.testing.assert_allclose(dist.log_prob(action), log_prob, rtol=1e-5)
    np.testing.assert_allclose(dist.entropy(), 2 * 0.5 * np.log(2 * np.pi * np.e), rtol=1e-5)  # σ = 1
    np.testing.assert_allclose(dist.kl_divergence(dist), 0.0, atol=1e-6)
    np.testing.assert_array_equal(dist.mode(), dist.x1)
    # the flow endpoint is the midpoint integral of the velocity net from the stored x0
    np.testing.assert_allclose(model.flow(obs, dist.x0), dist.x1, rtol=1e-6)


def test_zero_output_init_gives_identity_flow():
    model = _policy(output_scale=0.0)
    obs, x0 = jnp.ones((4, 3)), jax.random.normal(jax.random.key(0), (4, 2))
    np.testing.assert_array_equal(model.flow(obs, x0), x0)


def _batch_from_rollout(model: FlowPolicy, key: Array | None = None) -> pf.FlowBatch:
    k1, k2, k3 = jax.random.split(jax.random.key(7) if key is None else key, 3)
    obs = jax.random.normal(k1, (32, 3))
    dist = model.distribution(obs, k2)
    action, log_prob = dist.sample_and_log_prob(seed=k3)
    zeros = jnp.zeros(32)
    adv = jax.random.normal(k3, (32,))
    return pf.FlowBatch(obs, dist.x0, dist.x1, action - dist.x1, log_prob, zeros, adv, zeros)


@pytest.mark.parametrize("interpolant", ["rectified_flow", "stochastic_interpolant", "trigflow"])
def test_ratio_is_one_at_theta_old(interpolant):
    config = dataclasses.replace(TINY, interpolant=interpolant)
    model = _policy(interpolant=interpolant)
    batch = _batch_from_rollout(model)
    hp = pf.PolicyFlowHParams()
    _, aux = pf.policyflow_loss(model, model, batch, jax.random.key(0), hp, config)
    assert float(aux["approx_kl"]) < 1e-10 and float(aux["clip_fraction"]) == 0.0
    assert abs(float(aux["kl"])) < 1e-4  # only the 1e-5 inside the code's log
    # the policy term is −mean(Â) at ρ = 1
    np.testing.assert_allclose(aux["policy_loss"], -jnp.mean(batch.advantages), rtol=1e-5, atol=1e-6)


def test_loss_gradient_reaches_velocity_net_and_log_std():
    model = _policy()
    batch = _batch_from_rollout(model)
    graphdef, params = nnx.split(model)
    grads = jax.grad(
        lambda p: pf.policyflow_loss(nnx.merge(graphdef, p), model, batch, jax.random.key(0), pf.PolicyFlowHParams(), TINY)[0]
    )(params)
    assert float(jnp.abs(grads["log_std_param"][...]).sum()) > 0
    assert float(jnp.abs(grads["velocity_net"]["out"]["kernel"][...]).sum()) > 0


def test_degenerate_to_gaussian_is_a_gaussian_policy():
    model = _policy(degenerate_to_gaussian=True)
    obs = jnp.tile(jnp.array([[0.3, -0.2, 1.0]]), (4000, 1))
    dist = model.distribution(obs, jax.random.key(0))
    np.testing.assert_array_equal(dist.x0, 0.0)
    # the mean φ_θ(0; s) does not depend on the latent key: a deterministic function of s, as in a Gaussian policy
    np.testing.assert_array_equal(model.distribution(obs, jax.random.key(9)).x1, dist.x1)
    actions = dist.sample(seed=jax.random.key(1))
    np.testing.assert_allclose(actions.mean(0), dist.x1[0], atol=0.06)
    np.testing.assert_allclose(actions.std(0), 1.0, atol=0.05)  # σ = exp(0)
    # whereas the flow policy spreads x0 through the flow: endpoints vary with the key
    flow = _policy().distribution(obs, jax.random.key(0))
    assert float(flow.x1.std(0).min()) > 0.5


def test_degenerate_ratio_equals_exact_gaussian_ppo_ratio():
    """With x0 = 0 and a velocity net whose output is its bias only (zero output kernel), φ_θ(0; s) = b exactly,
    so the policy is the Gaussian N(b, σ²) and Δv = b − b_old is the exact mean shift: PolicyFlow's ratio and
    loss reduce to Gaussian PPO's."""
    from purejaxpo.networks.distributions import diag_gaussian
    from purejaxpo.primitives.losses import clipped_surrogate

    old = _policy(degenerate_to_gaussian=True, output_scale=0.0)
    new = nnx.clone(old)
    new.velocity_net.out.bias[...] = jnp.array([0.3, -0.2])
    new.log_std_param[...] = jnp.array([0.1, -0.1])
    batch = _batch_from_rollout(old)
    exact = diag_gaussian(new.flow(batch.obs, batch.x0), new.log_std()).log_prob(batch.x1 + batch.delta) - batch.log_prob
    np.testing.assert_allclose(new.flow(batch.obs, batch.x0), jnp.broadcast_to(jnp.array([0.3, -0.2]), (32, 2)), atol=1e-6)
    hp = pf.PolicyFlowHParams()
    _, aux = pf.policyflow_loss(new, old, batch, jax.random.key(0), hp, TINY)
    np.testing.assert_allclose(aux["policy_loss"], clipped_surrogate(exact, batch.advantages, hp.clip_eps).mean(), rtol=1e-5)
    assert float(aux["clip_fraction"]) > 0  # the shift is large enough to clip some samples


def test_train_jit_vmap_seeds_and_act(pendulum):
    env, params = pendulum
    trainer = pf.make_train(TINY, env, params)
    hp = pf.PolicyFlowHParams()
    keys = jax.random.split(jax.random.key(0), 2)
    state, metrics = jax.jit(jax.vmap(trainer.train, in_axes=(0, None)))(keys, hp)
    for name in ("episode_return", "episode_length", "episode_count", "env_steps", "nonfinite_steps", "loss",
                 "kl", "brownian_loss", "learning_rate"):
        assert metrics[name].shape == (2, TINY.num_updates), name
    assert np.all(np.isfinite(metrics["loss"])) and float(metrics["nonfinite_steps"].sum()) == 0
    np.testing.assert_allclose(metrics["env_steps"][0], [32.0, 64.0])
    # seed i of the vmapped run equals seed i alone
    _, alone = jax.jit(trainer.train)(keys[1], hp)
    np.testing.assert_allclose(alone["loss"], metrics["loss"][1], rtol=2e-4, atol=1e-4)
    single = jax.tree.map(lambda x: x[0], state)
    action = trainer.act(single, jnp.zeros((5, 3)), jax.random.key(1))
    assert action.shape == (5, 1) and np.all(np.abs(action) <= 2.0)
    assert trainer.act(single, jnp.zeros((3,)), jax.random.key(1), deterministic=True).shape == (1,)


def _lr(state) -> float:
    return float(state.opt_state[0].hyperparams["learning_rate"])


def test_lr_is_traced_no_recompile_and_kl_adapts(pendulum):
    """The learning rate lives in the optimizer state (initialized from hp.lr) and moves by ×/÷ lr_factor after
    every epoch: with a desired KL far below any real KL it must fall by 1.5² over TINY's 2 epochs, with one far
    above it must rise by 1.5², and without adaptation it stays at hp.lr. No hp value recompiles."""
    env, params = pendulum
    trainer = pf.make_train(TINY, env, params)
    update = jax.jit(trainer.update)
    hp = pf.PolicyFlowHParams(lr=1e-3)
    state = trainer.init(jax.random.key(0), hp)
    assert _lr(state) == pytest.approx(1e-3)
    down, m_down = update(state, hp.replace(desired_kl=1e-12))
    up, m_up = update(state, hp.replace(desired_kl=1e3))
    assert update._cache_size() == 1
    assert float(m_down["kl"]) > 2e-12 and float(m_up["kl"]) < 5e2
    assert _lr(down) == pytest.approx(1e-3 / 2.25, rel=1e-5) and float(m_down["learning_rate"]) == pytest.approx(1e-3 / 2.25, rel=1e-5)
    assert _lr(up) == pytest.approx(1e-3 * 2.25, rel=1e-5)
    # the adapted rate carries over to the next update instead of being reset to hp.lr
    again, _ = update(down, hp.replace(desired_kl=1e-12))
    assert _lr(again) == pytest.approx(1e-3 / 2.25**2, rel=1e-5)
    fixed = pf.make_train(dataclasses.replace(TINY, kl_adaptive_lr=False), env, params)
    state_fixed, m3 = jax.jit(fixed.update)(fixed.init(jax.random.key(0), hp), hp.replace(desired_kl=1e-12))
    assert _lr(state_fixed) == pytest.approx(1e-3) and float(m3["learning_rate"]) == pytest.approx(1e-3)


def test_gaussian_ablation_has_no_brownian_term():
    """The reference skips the Brownian regularizer when degenerate_to_gaussian: the loss and its gradient must
    not depend on brownian_coef there (and must for the flow policy)."""
    hp = pf.PolicyFlowHParams()
    for degenerate in (True, False):
        model = _policy(degenerate_to_gaussian=degenerate)
        config = dataclasses.replace(TINY, degenerate_to_gaussian=degenerate)
        batch = _batch_from_rollout(model)
        graphdef, params = nnx.split(model)
        other = nnx.clone(model)
        other.velocity_net.out.bias[...] = jnp.array([0.2, -0.1])  # θ ≠ θ_old, so the Brownian term is non-zero

        def loss(p, coef):
            return pf.policyflow_loss(nnx.merge(graphdef, p), other, batch, jax.random.key(0), hp.replace(brownian_coef=coef), config)

        (l0, aux0), g0 = jax.value_and_grad(loss, has_aux=True)(params, 0.0)
        (l1, _), g1 = jax.value_and_grad(loss, has_aux=True)(params, 10.0)
        grad_gap = max(float(jnp.abs(a - b).max()) for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1)))
        if degenerate:
            assert float(l0) == float(l1) and grad_gap == 0.0 and float(aux0["brownian_loss"]) == 0.0
        else:
            assert float(l1) > float(l0) and grad_gap > 0.0


def test_running_mean_kl_drives_the_lr():
    """After each epoch the rule sees the mean KL of all epochs so far in the update [C]: epoch KLs 0.03 then
    0.001 (target 0.01) lower the rate once (running means 0.03, 0.0155); the epoch-mean rule would lower it
    and raise it back (0.001 < 0.005)."""
    from purejaxpo.primitives import kl_adaptive as kla

    hp = pf.PolicyFlowHParams()
    running, lr = kla.running_kl_init(), jnp.asarray(1e-3)
    for epoch_kl in (0.03, 0.001):
        running, lr = kla.adapt_lr_on_running_kl(running, lr, jnp.asarray(epoch_kl), hp)
    np.testing.assert_allclose(lr, 1e-3 / 1.5, rtol=1e-6)
    np.testing.assert_allclose(running.total / running.count, 0.0155, rtol=1e-6)
    epoch_rule = kla.kl_adaptive_lr(kla.kl_adaptive_lr(jnp.asarray(1e-3), 0.03), 0.001)
    np.testing.assert_allclose(epoch_rule, 1e-3, rtol=1e-6)


def test_trainer_keeps_the_running_kl_of_the_update(pendulum):
    """The trainer's carried running KL after an update is the mean KL over all of its gradient steps (the
    reported metric), counted once per epoch; it restarts every update."""
    env, params = pendulum
    config = dataclasses.replace(TINY, update_epochs=3)
    trainer = pf.make_train(config, env, params)
    hp = pf.PolicyFlowHParams(lr=1e-3)
    state, metrics = jax.jit(trainer.update)(trainer.init(jax.random.key(0), hp), hp)
    assert float(state.algo.count) == 3.0
    np.testing.assert_allclose(state.algo.total / state.algo.count, metrics["kl"], rtol=1e-5)
    state2, metrics2 = jax.jit(trainer.update)(state, hp)
    assert float(state2.algo.count) == 3.0  # not 6: the running mean restarts every update
    np.testing.assert_allclose(state2.algo.total / 3.0, metrics2["kl"], rtol=1e-5)


@pytest.mark.parametrize("algorithm", ["policyflow", "gaussian_ppo"])
def test_raw_action_reaches_the_env_with_action_bounds_none(algorithm):
    """MultiGoal charges the action cost on the action it receives; with reward = +dt·Σu² (action_cost_scale −1,
    no distance term) and σ = e² ≈ 7.4, 'none' must pay on the raw action (per-step reward ≈ dt·2σ² ≈ 11),
    'clip' at most dt·2·5² = 5. The ±5 clip before the env was the defect."""
    env, params = purejaxpo.make_env("MultiGoal-v0", distance_scale=0.0, action_cost_scale=-1.0)
    algo = get_algorithm(algorithm)
    base = dict(num_envs=16, num_steps=64, total_timesteps=16 * 64, update_epochs=1, num_minibatches=1,
                hidden_sizes=(16,), init_log_std=2.0)
    if algorithm == "policyflow":
        base.update(critic_hidden_sizes=(16,), emb_dim=16, num_flow_steps=2)
    per_step = {}
    for bounds in ("none", "clip"):
        trainer = algo.make_train(algo.config_cls(**base, action_bounds=bounds), env, params)
        _, metrics = jax.jit(trainer.train)(jax.random.key(0), algo.hparams_cls(lr=1e-6))
        per_step[bounds] = float(metrics["episode_return"][0] / metrics["episode_length"][0])
    assert per_step["clip"] <= 5.0 + 1e-4 and per_step["none"] > 7.0, per_step


def test_runs_through_the_runner():
    from purejaxpo import experiment

    results = experiment.run("policyflow", "Pendulum-v1", num_seeds=2, config=TINY, progress=False, eval_episodes=2)
    assert results.metrics["loss"].shape == (1, 2, TINY.num_updates)
    assert results.eval_returns.shape == (1, 2) and np.all(np.isfinite(results.eval_returns))


@pytest.mark.learning
def test_pendulum_learning_beats_untrained():
    """Pendulum-v1, 1 seed, 32 envs × 64 steps × 100 updates (204,800 steps; ~15 s measured on the shared CPU).

    The untrained policy (x1 ≈ x0, σ = 1, clipped to ±2) scores about −1260 per episode (the first completed
    episodes of this run); seed 0 reaches about −200 by the end. We require the mean of the last 5 updates with
    completed episodes to exceed −600 (a swing-up policy; the untrained one never gets near) and to be at least
    400 above the first completed episodes.
    """
    env, params = purejaxpo.make_env("Pendulum-v1")
    config = pf.PolicyFlowConfig(
        num_envs=32, num_steps=64, total_timesteps=32 * 64 * 100, hidden_sizes=(64, 64), critic_hidden_sizes=(64, 64),
        emb_dim=32, num_flow_steps=4, normalize_rewards=True,
    )
    trainer = pf.make_train(config, env, params)
    _, metrics = jax.jit(trainer.train)(jax.random.key(0), pf.PolicyFlowHParams(lr=1e-3, ent_coef=0.0, brownian_coef=0.01))
    returns = np.asarray(metrics["episode_return"])
    returns = returns[np.isfinite(returns)]
    assert returns[0] < -1000.0, returns  # the untrained baseline really is bad
    assert returns[-5:].mean() > -600.0, returns
    assert returns[-5:].mean() - returns[0] > 400.0, returns
