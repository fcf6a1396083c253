"""MDPO (on- and off-policy) and the SAC configuration: primitives against hand-worked numbers and independent
references, the trainers' contracts, the runner, and learning on Pendulum-v1."""

import warnings

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conftest import run_three_ways
from purejaxpo import experiment, make_env
from purejaxpo.algorithms import mdpo, mdpo_off
from purejaxpo.algorithms.registry import get_algorithm
from purejaxpo.networks.actor_critic import ActorCritic
from purejaxpo.primitives.mdpo import (
    mdpo_off_actor_loss,
    mdpo_on_loss,
    mdpo_step_size,
    sac_actor_loss,
    squashed_gaussian_log_prob,
)

warnings.filterwarnings("ignore", message="total_timesteps=.*is not a multiple")


# ----------------------------------------------------------------------------------------------------------------
# Primitives
# ----------------------------------------------------------------------------------------------------------------


def test_step_size_schedule():
    # K = 4: t = 1 − k/4 for k = 0..3, then held at 1/K (never 0).
    t = run_three_ways(lambda k: mdpo_step_size(k, 4), jnp.arange(6))
    np.testing.assert_allclose(t, [1.0, 0.75, 0.5, 0.25, 0.25, 0.25])
    np.testing.assert_allclose(mdpo_step_size(1, 4, t0=2.0), 1.5)
    # KL weight 1/t_k goes 1 → K over the run (spec §2.1: the last iteration has t = 1/K).
    np.testing.assert_allclose(1.0 / mdpo_step_size(jnp.array([0, 99]), 100), [1.0, 100.0], rtol=1e-5)


def test_on_loss_hand_worked():
    # ratios: 0.5/0.25 = 2 and 0.2/0.4 = 0.5; L = −ρÂ + KL/t with t = 0.5:
    #   [−2·1 + 0.1/0.5, −0.5·(−2) + 0.3/0.5] = [−1.8, 1.6]
    args = (jnp.log(jnp.array([0.5, 0.2])), jnp.log(jnp.array([0.25, 0.4])), jnp.array([1.0, -2.0]),
            jnp.array([0.1, 0.3]), jnp.array(0.5))
    np.testing.assert_allclose(run_three_ways(mdpo_on_loss, *args), [-1.8, 1.6], rtol=1e-6)


def test_on_loss_time_major_broadcast():
    loss = mdpo_on_loss(jnp.zeros((3, 2)), jnp.zeros((3, 2)), jnp.ones((3, 2)), jnp.zeros((3, 2)), 0.7)
    np.testing.assert_allclose(loss, -np.ones((3, 2)))  # θ = θ_k: ρ = 1, KL = 0 → −Â


def test_off_actor_loss_hand_worked_and_sac_reduction():
    # c_KL (lp − lp_old) + λ lp_old − Q = 2·(−1 + 2) + 0.5·(−2) − 3 = −2
    args = (jnp.array([-1.0]), jnp.array([-2.0]), jnp.array([3.0]), jnp.array(2.0), jnp.array(0.5))
    np.testing.assert_allclose(run_three_ways(mdpo_off_actor_loss, *args), [-2.0])
    # π_θk = π_θ: the KL term vanishes for any c_KL and the loss is SAC's λ log π − Q.
    lp, q = jnp.array([-1.3, 0.4]), jnp.array([2.0, -1.0])
    for c in (0.1, 1.0, 10.0):
        np.testing.assert_allclose(mdpo_off_actor_loss(lp, lp, q, c, 0.2), sac_actor_loss(lp, q, 0.2), rtol=1e-6)


def test_squashed_log_prob_matches_distrax(rng):
    mean = jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)
    log_std = jnp.asarray(rng.normal(scale=0.3, size=(5, 3)), jnp.float32)
    pre_tanh = jnp.asarray(rng.normal(scale=0.8, size=(5, 3)), jnp.float32)
    reference = distrax.Transformed(
        distrax.MultivariateNormalDiag(mean, jnp.exp(log_std)), distrax.Block(distrax.Tanh(), ndims=1)
    ).log_prob(jnp.tanh(pre_tanh))
    ours = run_three_ways(squashed_gaussian_log_prob, pre_tanh, mean, log_std)
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4)
    # stable for saturated actions (|u| = 30: tanh(u) rounds to ±1, log(1 − tanh²) would be −inf)
    assert np.isfinite(squashed_gaussian_log_prob(jnp.full((1, 2), 30.0), jnp.zeros((1, 2)), jnp.zeros((1, 2)))).all()


@pytest.mark.parametrize("kind", ["continuous", "discrete", "multi_discrete"])
def test_closed_form_kl_matches_distrax_and_direction(kind, rng):
    """``KL(π_new ‖ π_old)`` equals distrax's KL with the *new* policy first (spec §2.1), and differs from the
    reverse direction on this example."""
    if kind == "continuous":
        new = {"mean": rng.normal(size=(4, 2)), "log_std": rng.normal(scale=0.5, size=(4, 2))}
        old = {"mean": rng.normal(size=(4, 2)), "log_std": rng.normal(scale=0.5, size=(4, 2))}
        make = lambda d: distrax.MultivariateNormalDiag(d["mean"], np.exp(d["log_std"]))
    else:
        shape = (4, 3) if kind == "discrete" else (4, 2, 3)
        new, old = {"logits": rng.normal(size=shape)}, {"logits": rng.normal(size=shape)}
        make = lambda d: (distrax.Categorical(logits=d["logits"]) if kind == "discrete"
                          else distrax.Independent(distrax.Categorical(logits=d["logits"]), 1))
    new = {k: jnp.asarray(v, jnp.float32) for k, v in new.items()}
    old = {k: jnp.asarray(v, jnp.float32) for k, v in old.items()}
    ours = mdpo.closed_form_kl(new, old, kind)
    np.testing.assert_allclose(ours, make(new).kl_divergence(make(old)), rtol=1e-5, atol=1e-6)
    assert not np.allclose(ours, make(old).kl_divergence(make(new)), rtol=1e-3)
    # distribution_params round-trips the distribution the network builds
    np.testing.assert_allclose(mdpo.closed_form_kl(mdpo.distribution_params(make(new), kind), old, kind), ours,
                               rtol=1e-5, atol=1e-6)


def _model_and_batch(kind: str, rng):
    action_dim, obs = 2, jnp.asarray(rng.normal(size=(32, 3)), jnp.float32)
    model = ActorCritic((3,), kind, action_dim, num_categories=3 if kind == "multi_discrete" else 0,
                        rngs=nnx.Rngs(params=jax.random.key(1)))
    if kind == "continuous":  # move away from the near-zero init so gradients are not tiny
        model.log_std[...] = jnp.array([-0.3, 0.2])
    dist = model.distribution(obs)
    action, log_prob = dist.sample_and_log_prob(seed=jax.random.key(2))
    adv = jnp.asarray(rng.normal(size=(32,)), jnp.float32)
    batch = mdpo.MDPOBatch(obs, action, log_prob, jnp.zeros(32), adv, jnp.zeros(32), mdpo.distribution_params(dist, kind))
    return model, batch


@pytest.mark.parametrize("kind", ["continuous", "discrete", "multi_discrete"])
def test_kl_term_zero_at_theta_k(kind, rng):
    """At θ = θ_k the KL term and its gradient vanish: the loss is −mean(Â) and its gradient is the vanilla
    policy gradient −mean(Â ∇log π), whatever the step size."""
    model, batch = _model_and_batch(kind, rng)
    graphdef, params = nnx.split(model)

    def loss(p, t):
        return mdpo.mdpo_policy_loss(nnx.merge(graphdef, p), batch, t, kind)

    (value, aux), grads = jax.value_and_grad(loss, has_aux=True)(params, 0.01)
    np.testing.assert_allclose(aux["kl"], 0.0, atol=1e-6)
    np.testing.assert_allclose(value, -jnp.mean(batch.advantages), rtol=1e-5)
    pg = jax.grad(lambda p: -jnp.mean(batch.advantages * nnx.merge(graphdef, p).distribution(batch.obs).log_prob(batch.action)))(params)
    kl_grad = jax.grad(lambda p: mdpo.closed_form_kl(
        mdpo.distribution_params(nnx.merge(graphdef, p).distribution(batch.obs), kind), batch.old_dist, kind).mean())(params)
    for g, ref, k in zip(jax.tree.leaves(grads), jax.tree.leaves(pg), jax.tree.leaves(kl_grad)):
        np.testing.assert_allclose(g, ref, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(k, 0.0, atol=1e-6)
    # away from θ_k the KL is positive and weighted by 1/t
    moved = jax.tree.map(lambda p, g: p - 0.5 * g, params, grads)
    (_, aux1) = loss(moved, 1.0)
    assert float(aux1["kl"]) > 1e-4
    np.testing.assert_allclose(loss(moved, 0.5)[0] - loss(moved, 1.0)[0], aux1["kl"], rtol=1e-4)


def test_off_policy_m1_gradient_is_sac_in_expectation():
    """With π_θk = π_θ (m = 1), ∇L_MDPO − ∇L_SAC = (c_KL − λ) · E[∇_θ log π_θ(a)|_{a fixed}] exactly, and that
    score term has zero mean, so the two actor gradients agree in expectation (spec §6, sanity check 3)."""
    actor = mdpo_off.SquashedGaussianActor(3, 1, (16, 16), "relu", rngs=nnx.Rngs(params=jax.random.key(0)))
    q = mdpo_off.Critic(4, (16, 16), "relu", rngs=nnx.Rngs(params=jax.random.key(1)))
    a_def, a_params = nnx.split(actor)
    q_def, q_params = nnx.split(q)
    graphdefs = {"actor": a_def, "q": q_def}
    obs = jnp.tile(jnp.array([[0.3, -0.5, 0.8]]), (200_000, 1))
    batch = {"obs": obs}
    hp = mdpo_off.OffPolicyHParams(ent_coef=0.2, kl_coef=3.0, reg_coef=0.0)
    key = jax.random.key(5)
    grad = lambda variant: jax.grad(lambda p: mdpo_off.actor_loss(graphdefs, p, a_params, q_params, batch, key, hp,
                                                                   jnp.array(3.0), variant)[0])(a_params)
    g_mdpo, g_sac = grad("mdpo"), grad("sac")

    # the actor_loss draws its noise from `key` directly
    def score_term_same_noise(p):
        mean, log_std = nnx.merge(a_def, p)(obs)
        m0, s0 = nnx.merge(a_def, a_params)(obs)
        pre = jax.lax.stop_gradient(m0 + jnp.exp(s0) * jax.random.normal(key, m0.shape))
        return jnp.mean(squashed_gaussian_log_prob(pre, mean, log_std))

    score = jax.grad(score_term_same_noise)(a_params)
    for gm, gs, sc in zip(jax.tree.leaves(g_mdpo), jax.tree.leaves(g_sac), jax.tree.leaves(score)):
        np.testing.assert_allclose(gm - gs, (3.0 - 0.2) * sc, rtol=1e-3, atol=1e-5)
        scale = max(float(np.abs(gs).max()), 1e-3)
        assert float(np.abs(sc).max()) < 0.02 * scale + 0.01  # E[score] = 0 up to Monte-Carlo error


# ----------------------------------------------------------------------------------------------------------------
# Config / hparams validation
# ----------------------------------------------------------------------------------------------------------------


def test_config_and_hparam_errors():
    with pytest.raises(ValueError, match="vf_minibatches"):
        mdpo.MDPOConfig(num_envs=2, num_steps=10, total_timesteps=100, vf_minibatches=3)
    with pytest.raises(ValueError, match="sgd_steps"):
        mdpo.MDPOConfig(sgd_steps=0)
    with pytest.raises(ValueError, match="anneal_horizon"):
        mdpo.MDPOConfig(anneal_horizon=0)
    with pytest.raises(ValueError, match="num_minibatches"):
        mdpo.MDPOConfig(num_envs=1, num_steps=10, total_timesteps=100, num_minibatches=3, vf_minibatches=1)
    with pytest.raises(ValueError, match="step_size"):
        mdpo.MDPOHParams(step_size=0.0)
    with pytest.raises(ValueError, match="train_freq"):
        mdpo_off.MDPOOffConfig(steps_per_update=10, train_freq=3, total_timesteps=100)
    with pytest.raises(ValueError, match="smaller than one update"):
        mdpo_off.SACConfig(steps_per_update=1000, total_timesteps=100)
    with pytest.raises(ValueError, match="learning_starts"):
        mdpo_off.SACConfig(learning_starts=-1)
    with pytest.raises(ValueError, match="kl_coef"):
        mdpo_off.OffPolicyHParams(kl_coef=0.0)
    with pytest.raises(ValueError, match="tau"):
        mdpo_off.OffPolicyHParams(tau=1.5)
    env, env_params = make_env("CartPole-v1")
    with pytest.raises(ValueError, match="continuous"):
        mdpo_off.make_train(mdpo_off.SACConfig(steps_per_update=10, total_timesteps=100, learning_starts=0), env, env_params)
    with pytest.raises(ValueError, match="continuous actions only"):
        mdpo.make_train(mdpo.MDPOConfig(num_steps=64, total_timesteps=64, vf_minibatches=1, init_log_std=0.0), env, env_params)


# ----------------------------------------------------------------------------------------------------------------
# On-policy trainer
# ----------------------------------------------------------------------------------------------------------------

SMALL_ON = dict(num_envs=4, num_steps=32, total_timesteps=4 * 32 * 4, sgd_steps=3, num_minibatches=2, vf_epochs=2,
                vf_minibatches=2)


@pytest.mark.parametrize("env_name, overrides, step_size, expected", [
    ("CartPole-v1", {}, 1.0, [1.0, 0.75, 0.5, 0.25]),  # t_k = 1 − k/K with K = num_updates = 4
    ("Pendulum-v1", {"anneal_horizon": 2}, 2.0, [2.0, 1.0, 1.0, 1.0]),  # K = 2, t0 = 2, then held at t0/K
])
def test_on_policy_train_runs_and_schedule(env_name, overrides, step_size, expected):
    env, env_params = make_env(env_name)
    trainer = mdpo.make_train(mdpo.MDPOConfig(**SMALL_ON, **overrides), env, env_params)
    state, metrics = jax.jit(trainer.train)(jax.random.key(0), mdpo.MDPOHParams(step_size=step_size))
    for name in ("episode_return", "episode_length", "episode_count", "env_steps", "nonfinite_steps", "loss", "kl"):
        assert metrics[name].shape == (4,), name
    np.testing.assert_allclose(metrics["step_size"], expected)
    np.testing.assert_allclose(metrics["env_steps"], [128, 256, 384, 512])
    assert np.all(np.asarray(metrics["nonfinite_steps"]) == 0)
    assert np.all(np.isfinite(metrics["loss"])) and np.all(np.asarray(metrics["kl"]) >= 0)
    action = trainer.act(state, jnp.zeros((5,) + env.observation_space(env_params).shape), jax.random.key(1))
    assert action.shape[0] == 5


def test_on_policy_vmap_seed_equals_alone_and_no_recompile():
    env, env_params = make_env("Pendulum-v1")
    trainer = mdpo.make_train(mdpo.MDPOConfig(**SMALL_ON), env, env_params)
    keys = jax.random.split(jax.random.key(0), 3)
    train = jax.jit(jax.vmap(trainer.train, in_axes=(0, None)))
    _, batched = train(keys, mdpo.MDPOHParams())
    _, alone = jax.jit(trainer.train)(keys[1], mdpo.MDPOHParams())
    np.testing.assert_allclose(batched["loss"][1], alone["loss"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(batched["episode_return"][1], alone["episode_return"], rtol=1e-4)
    train(keys, mdpo.MDPOHParams(lr=1e-3, step_size=0.5))
    assert train._cache_size() == 1  # a new hyperparameter value does not recompile


def test_value_phase_moves_only_critic():
    """Policy and value phases each move only their own parameters (two Adams over the same tree); with
    ``anneal_step_size=False`` the step size is the constant ``t0``."""
    env, env_params = make_env("Pendulum-v1")
    config = mdpo.MDPOConfig(**{**SMALL_ON, "total_timesteps": 128}, anneal_step_size=False)
    trainer = mdpo.make_train(config, env, env_params)
    state = trainer.init(jax.random.key(0), mdpo.MDPOHParams())
    update = jax.jit(trainer.update)
    is_critic = lambda path: path[0].key in ("critic_torso", "value_head")
    leaves = lambda s, critic: [v for path, v in jax.tree_util.tree_leaves_with_path(s.params) if is_critic(path) == critic]
    for lr, vf_lr, critic_moves in ((0.0, 1e-2, True), (1e-2, 0.0, False)):
        new, metrics = update(state, mdpo.MDPOHParams(lr=lr, vf_lr=vf_lr, step_size=0.3))
        np.testing.assert_allclose(metrics["step_size"], 0.3, rtol=1e-6)
        assert any(not np.allclose(a, b) for a, b in zip(leaves(new, critic_moves), leaves(state, critic_moves)))
        assert all(np.array_equal(a, b) for a, b in zip(leaves(new, not critic_moves), leaves(state, not critic_moves)))


# ----------------------------------------------------------------------------------------------------------------
# Off-policy trainer
# ----------------------------------------------------------------------------------------------------------------

SMALL_OFF = dict(steps_per_update=50, total_timesteps=200, learning_starts=50, train_batch_size=32, hidden_sizes=(16, 16))


@pytest.mark.parametrize("config_cls", [mdpo_off.MDPOOffConfig, mdpo_off.SACConfig])
def test_off_policy_train_runs(config_cls):
    env, env_params = make_env("Pendulum-v1")
    config = config_cls(**SMALL_OFF, num_envs=2, sgd_steps=7)
    trainer = mdpo_off.make_train(config, env, env_params)
    keys = jax.random.split(jax.random.key(0), 2)
    state, metrics = jax.jit(jax.vmap(trainer.train, in_axes=(0, None)))(keys, mdpo_off.OffPolicyHParams())
    for name in ("episode_return", "episode_length", "episode_count", "env_steps", "nonfinite_steps", "loss"):
        assert metrics[name].shape == (2, 2), name
    np.testing.assert_allclose(metrics["env_steps"][0], [100, 200])
    # learning starts after 50 env steps = 25 vector steps: 25 + 50 gradient steps (1 per vector step after)
    np.testing.assert_array_equal(state.grad_steps, [75, 75])
    np.testing.assert_array_equal(state.buffer.size, [200, 200])  # capacity = min(buffer_size, total steps)
    assert np.all(np.isfinite(metrics["loss"][:, -1])) and np.all(np.asarray(metrics["nonfinite_steps"]) == 0)
    one = jax.tree.map(lambda x: x[0], state)
    if config_cls is mdpo_off.MDPOOffConfig:
        # the old policy was last synced at gradient step 70 (m = 7), so it lags the current one
        assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(one.old_actor), jax.tree.leaves(one.params["actor"])))
    action = trainer.act(one, jnp.zeros((4, 3)), jax.random.key(1))
    assert action.shape == (4, 1) and np.all(np.abs(action) <= 2.0)
    det = trainer.act(one, jnp.zeros((4, 3)), jax.random.key(1), deterministic=True)
    np.testing.assert_allclose(det, trainer.act(one, jnp.zeros((4, 3)), jax.random.key(2), deterministic=True))


def test_off_policy_old_policy_sync():
    """With m = sgd_steps = 5, π_θk equals π_θ right after every 5th gradient step and not in between."""
    env, env_params = make_env("Pendulum-v1")
    config = mdpo_off.MDPOOffConfig(steps_per_update=5, total_timesteps=20, learning_starts=0, train_batch_size=8,
                                    hidden_sizes=(8,), sgd_steps=5)
    trainer = mdpo_off.make_train(config, env, env_params)
    hp = mdpo_off.OffPolicyHParams(lr=1e-2)
    state = trainer.init(jax.random.key(0), hp)
    update = jax.jit(trainer.update)
    same = lambda s: all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(s.old_actor), jax.tree.leaves(s.params["actor"])))
    for _ in range(2):
        state, metrics = update(state, hp)
        assert int(state.grad_steps) % 5 == 0 and same(state)
    config4 = mdpo_off.MDPOOffConfig(steps_per_update=4, total_timesteps=20, learning_starts=0, train_batch_size=8,
                                     hidden_sizes=(8,), sgd_steps=5)
    state4, _ = jax.jit(mdpo_off.make_train(config4, env, env_params).update)(trainer.init(jax.random.key(0), hp), hp)
    assert int(state4.grad_steps) == 4 and not same(state4)


def test_off_policy_vmap_seed_equals_alone():
    env, env_params = make_env("Pendulum-v1")
    trainer = mdpo_off.make_train(mdpo_off.MDPOOffConfig(**SMALL_OFF, sgd_steps=10), env, env_params)
    keys = jax.random.split(jax.random.key(4), 2)
    _, batched = jax.jit(jax.vmap(trainer.train, in_axes=(0, None)))(keys, mdpo_off.OffPolicyHParams())
    _, alone = jax.jit(trainer.train)(keys[1], mdpo_off.OffPolicyHParams())
    np.testing.assert_allclose(batched["loss"][1], alone["loss"], rtol=1e-3, atol=1e-4)


# ----------------------------------------------------------------------------------------------------------------
# Registry and runner
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, config", [
    ("mdpo", mdpo.MDPOConfig(**SMALL_ON)),
    ("mdpo_off", mdpo_off.MDPOOffConfig(**SMALL_OFF)),
    ("sac", mdpo_off.SACConfig(**SMALL_OFF)),
])
def test_runner_and_registry(name, config):
    algorithm = get_algorithm(name)
    assert isinstance(config, algorithm.config_cls)
    results = experiment.run(name, "Pendulum-v1", config=config, num_seeds=2, progress=False, chunk_updates=2,
                             eval_episodes=2, eval_max_steps=20)
    assert results.algo == name
    assert results.metrics["episode_return"].shape == (1, 2, config.num_updates)
    assert results.eval_returns.shape == (1, 2)
    # the runner finds the registered algorithm back from a trainer (SAC and MDPO-off configs are distinct types)
    trainer = algorithm.make_train(config, *make_env("Pendulum-v1"))
    assert experiment._algorithm_for(trainer).name == name


# ----------------------------------------------------------------------------------------------------------------
# Learning on Pendulum-v1
# ----------------------------------------------------------------------------------------------------------------
# An untrained (near-zero-mean Gaussian) policy scores about −1200 on Pendulum-v1 (−1000 to −1600 per episode;
# see the first-update returns). A policy that only pumps energy without balancing stays below about −700; a
# mean of −400 over the final updates needs swing-up *and* balancing in most episodes. Both thresholds sit
# ≥ 200 below what the runs reach (≈ −150 to −200), and ≥ 800 above the untrained policy.

THRESHOLD = -400.0


@pytest.mark.learning
def test_on_policy_learns_pendulum():
    env, env_params = make_env("Pendulum-v1")
    config = mdpo.MDPOConfig(num_envs=16, num_steps=128, total_timesteps=200_000, sgd_steps=10, num_minibatches=16,
                             vf_epochs=5, vf_minibatches=16)
    trainer = mdpo.make_train(config, env, env_params)
    hp = mdpo.MDPOHParams(lr=1e-3, vf_lr=1e-3, gamma=0.95)
    keys = jax.random.split(jax.random.key(0), 2)
    _, metrics = jax.jit(jax.vmap(trainer.train, in_axes=(0, None)))(keys, hp)
    returns = np.asarray(metrics["episode_return"])
    first = np.nanmean(returns[:, :3])
    final = np.nanmean(returns[:, -10:])
    assert first < -900, first  # the untrained policy
    assert final > THRESHOLD, (first, final)
    assert np.all(np.asarray(metrics["nonfinite_steps"]) == 0)


@pytest.mark.learning
@pytest.mark.parametrize("config_cls", [mdpo_off.MDPOOffConfig, mdpo_off.SACConfig])
def test_off_policy_learns_pendulum(config_cls):
    env, env_params = make_env("Pendulum-v1")
    config = config_cls(total_timesteps=15_000, steps_per_update=1000, learning_starts=1000, hidden_sizes=(64, 64),
                        sgd_steps=1000)
    trainer = mdpo_off.make_train(config, env, env_params)
    _, metrics = jax.jit(trainer.train)(jax.random.key(0), mdpo_off.OffPolicyHParams())
    returns = np.asarray(metrics["episode_return"])
    first, final = np.nanmean(returns[:2]), np.nanmean(returns[-4:])
    assert first < -900, first
    assert final > THRESHOLD, (first, final)
    assert np.all(np.asarray(metrics["nonfinite_steps"]) == 0)

