"""Hyperbolic layers and the Hyper++ / S-RYM / Euclidean PPO trainer: norm bounds, spectral norm, heads against
the primitives, finite gradients at large inputs, config errors, one update per agent, and learning (``-m learning``)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from purejaxpo import make_env
from purejaxpo.algorithms import hyperpp
from purejaxpo.algorithms.registry import get_algorithm
from purejaxpo.networks import hyperbolic as hnn
from purejaxpo.primitives import hyperbolic as hyp


def test_rms_norm_unit_rms():
    u = jax.random.normal(jax.random.key(0), (7, 32)) * 50.0
    np.testing.assert_allclose(jnp.sqrt(jnp.mean(hnn.rms_norm(u) ** 2, -1)), 1.0, rtol=1e-5)


@pytest.mark.parametrize("c", [0.5, 1.0, 2.0])
def test_hyperpp_regularizer_bounds_the_norm_for_any_input(c):
    alpha = 0.95
    reg = hnn.FeatureRegularizer("hyperpp", 16, last_activation="tanh", alpha=alpha, curvature=c, rngs=nnx.Rngs(0))
    reg.gate.bias.value = jnp.full((1,), 50.0)  # gate s ≈ 1: the worst case
    u = jax.random.normal(jax.random.key(1), (64, 16)) * jnp.logspace(-3, 6, 64)[:, None]
    v = reg(u)
    r_max = math.atanh(alpha) / math.sqrt(c)
    norms = np.linalg.norm(v, axis=-1)
    assert np.all(norms <= r_max * (1 + 1e-5)) and norms.max() > 0.5 * r_max
    # ball radius ≤ α/√c, hyperboloid distance from the origin ≤ artanh(α)/√c
    assert np.all(np.linalg.norm(hyp.poincare_expmap0(v, c), axis=-1) <= alpha / math.sqrt(c) + 1e-5)
    origin = jnp.zeros(17).at[0].set(1 / math.sqrt(c))
    assert np.all(hyp.lorentz_distance(origin, hyp.lorentz_expmap0(v, c), c) <= r_max * (1 + 1e-4))
    srym = hnn.FeatureRegularizer("srym", 16, last_activation="relu", alpha=alpha, curvature=c, rngs=nnx.Rngs(0))
    np.testing.assert_allclose(srym(u), jax.nn.relu(u) / 4.0, rtol=1e-6)  # relu(u)/√d


def test_spectral_normalize_matches_svd():
    w = np.asarray(jax.random.normal(jax.random.key(2), (40, 12))) * 3.0
    w_sn = np.asarray(hnn.spectral_normalize(jnp.asarray(w), num_iterations=100))
    np.testing.assert_allclose(np.linalg.svd(w_sn, compute_uv=False)[0], 1.0, rtol=1e-3)
    np.testing.assert_allclose(w_sn * np.linalg.svd(w, compute_uv=False)[0], w, rtol=1e-3, atol=1e-4)
    kernel = jax.random.normal(jax.random.key(3), (3, 3, 4, 8))  # conv kernels are flattened to [kh·kw·in, out]
    sn = np.asarray(hnn.spectral_normalize(kernel, 100)).reshape(-1, 8)
    np.testing.assert_allclose(np.linalg.svd(sn, compute_uv=False)[0], 1.0, rtol=1e-3)


def _sn_vectors(tree):
    return {p: v for p, v in jax.tree_util.tree_flatten_with_path(tree)[0] if any(getattr(k, "key", None) == "sn_u" for k in p)}


def test_spectral_norm_forward_reads_a_carried_vector():
    """A spectrally normalized forward is one matvec with the layer's carried ``u`` (no power loop per forward:
    the earlier stateless 5-iteration loop ran inside every forward)."""
    layer = hnn.Linear(40, 12, spectral=True, rngs=nnx.Rngs(0))
    x = jnp.ones((3, 40))
    jaxpr = str(jax.make_jaxpr(lambda x: layer(x))(x))
    assert "while" not in jaxpr and "scan" not in jaxpr
    w = np.asarray(layer.kernel[...])
    u = np.asarray(layer.sn_u[...])
    np.testing.assert_allclose(np.linalg.norm(u), 1.0, rtol=1e-5)
    # u₀ came from 15 power steps at init: σ = ‖W u‖ already matches the SVD closely
    np.testing.assert_allclose(np.linalg.norm(w @ u), np.linalg.svd(w, compute_uv=False)[0], rtol=2e-2)
    np.testing.assert_allclose(layer(x), x @ (w / np.linalg.norm(w @ u)) + np.asarray(layer.bias[...]), rtol=1e-5)
    conv = hnn.Conv(4, 8, spectral=True, rngs=nnx.Rngs(1))
    assert conv.sn_u[...].shape == (8,) and "while" not in str(jax.make_jaxpr(conv)(jnp.ones((1, 5, 5, 4))))


def test_power_iteration_advances_once_per_gradient_step():
    """The optimizer wrapper moves every ``u`` by exactly one power step on the pre-step kernel, and repeated
    steps converge to the top singular vector; other leaves get the inner optimizer's update."""
    import optax

    class Net(nnx.Module):
        def __init__(self):
            self.fc = hnn.Linear(30, 6, spectral=True, rngs=nnx.Rngs(2))

    _, params = nnx.split(Net())
    (path, u0), = _sn_vectors(params).items()
    u0 = jax.random.normal(jax.random.key(3), u0.shape)  # a poor start
    u0 = u0 / jnp.linalg.norm(u0)
    params = jax.tree_util.tree_map_with_path(lambda p, v: u0 if p == path else v, params)
    opt = hnn.with_power_iteration(optax.sgd(0.1), 1)
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = opt.update(grads, opt.init(params), params)
    new = optax.apply_updates(params, updates)
    w = np.asarray(params["fc"]["kernel"][...])
    step = w.T @ (w @ np.asarray(u0) / np.linalg.norm(w @ np.asarray(u0)))
    np.testing.assert_allclose(_sn_vectors(new)[path], step / np.linalg.norm(step), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new["fc"]["kernel"][...], w - 0.1, rtol=1e-6)  # the inner SGD step
    zero = jax.tree.map(jnp.zeros_like, params)
    state = opt.init(params)
    for _ in range(60):
        updates, state = opt.update(zero, state, params)
        params = optax.apply_updates(params, updates)
    u = np.asarray(_sn_vectors(params)[path])
    np.testing.assert_allclose(np.linalg.norm(w @ u), np.linalg.svd(w, compute_uv=False)[0], rtol=1e-4)


def test_srym_training_state_carries_the_vectors():
    """Hyper+S-RYM's vectors live in the training state (so resume is bit-exact) and move with training."""
    env, env_params = make_env("Breakout-MinAtar")
    config = hyperpp.HyperSRYMConfig(encoder="cnn", num_envs=4, num_steps=8, total_timesteps=4 * 8 * 2, update_epochs=1,
                                     num_minibatches=2, hidden_sizes=(16,), embedding_dim=8)
    trainer = hyperpp.make_train(config, env, env_params)
    hp = hyperpp.HyperPPHParams()
    state0 = trainer.init(jax.random.key(0), hp)
    state1, _ = jax.jit(trainer.update)(state0, hp)
    state2, _ = jax.jit(trainer.update)(state1, hp)
    before, after = _sn_vectors(state0.params), _sn_vectors(state2.params)
    assert len(before) == 3  # conv, MLP layer, penultimate linear
    assert all(not np.array_equal(before[p], after[p]) for p in before)
    np.testing.assert_allclose([np.linalg.norm(v) for v in after.values()], 1.0, rtol=1e-5)
    final, _ = jax.jit(trainer.train)(jax.random.key(0), hp)  # the scanned run reaches the same state (to float
    for p, v in _sn_vectors(final.params).items():  # round-off: separately compiled programs fuse differently)
        np.testing.assert_allclose(v, after[p], rtol=1e-5, atol=1e-6)


def test_heads_equal_primitives():
    rngs = nnx.Rngs(0)
    lorentz = hnn.LorentzMLR(5, 3, 1.0, rngs=rngs)
    lorentz.r.value = jnp.array([0.1, -0.2, 0.3])
    x = hyp.lorentz_expmap0(jax.random.normal(jax.random.key(4), (6, 5)))
    np.testing.assert_allclose(lorentz(x), hyp.lorentz_mlr(x, lorentz.z.value, lorentz.r.value), rtol=1e-6)
    poincare = hnn.PoincareMLR(5, 3, 1.0, rngs=rngs)
    poincare.offset_tangent.value = 0.1 * jnp.ones((3, 5))
    y = hyp.poincare_expmap0(jax.random.normal(jax.random.key(5), (6, 5)))
    p = hyp.poincare_expmap0(poincare.offset_tangent.value)
    np.testing.assert_allclose(poincare(y), hyp.poincare_mlr(y, poincare.normal.value, p), rtol=1e-6)


@pytest.mark.parametrize(
    "geometry,reg,encoder", [("hyperboloid", "hyperpp", "impala"), ("poincare", "srym", "cnn"), ("hyperboloid", "none", "mlp"), ("euclidean", "none", "cnn")]
)
def test_actor_critic_shapes_and_finite_gradients_at_large_inputs(geometry, reg, encoder):
    centers = np.linspace(-9.8, 9.8, 51) if geometry == "hyperboloid" else None
    model = hnn.HyperActorCritic(
        (10, 10, 4), 5, encoder=encoder, geometry=geometry, feature_reg=reg, value_centers=centers,
        spectral_norm=reg == "srym", rngs=nnx.Rngs(0),
    )
    obs = jax.random.normal(jax.random.key(6), (3, 10, 10, 4)) * 1e4  # huge inputs: huge embeddings without a bound
    graphdef, params = nnx.split(model)
    forward = jax.jit(lambda params: nnx.merge(graphdef, params).forward(obs))  # jitted: eager Impala took ~100 s

    def sample_and_value(params):
        dist, value = nnx.merge(graphdef, params)(obs)
        return dist.sample(seed=jax.random.key(0)), value

    logits, value_out, v = forward(params)
    assert logits.shape == (3, 5) and value_out.shape == (3, 51 if centers is not None else 1) and v.shape == (3, 32)
    action, value = jax.jit(sample_and_value)(params)
    assert value.shape == (3,) and action.shape == (3,)

    def loss(params):
        logits, out, _ = nnx.merge(graphdef, params).forward(obs)
        return jnp.sum(jax.nn.log_softmax(logits)[:, 0]) + jnp.sum(out)

    grads = jax.jit(jax.grad(loss))(params)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
    if reg == "hyperpp":
        assert np.all(np.linalg.norm(v, axis=-1) <= math.atanh(0.95) + 1e-4)


def test_config_and_hparam_errors():
    with pytest.raises(ValueError, match="geometry"):
        hyperpp.HyperPPConfig(geometry="sphere")
    with pytest.raises(ValueError, match="alpha"):
        hyperpp.HyperPPConfig(alpha=1.0)
    with pytest.raises(ValueError, match="curvature"):
        hyperpp.HyperPPConfig(curvature=0.0)
    with pytest.raises(ValueError, match="clip_value"):
        hyperpp.HyperPPConfig(clip_value=True)  # hl_gauss critic
    with pytest.raises(ValueError, match="num_minibatches"):
        hyperpp.HyperPPConfig(num_envs=3, num_steps=3, num_minibatches=2)
    with pytest.raises(ValueError, match="kl_limit"):
        hyperpp.HyperPPHParams(kl_limit=0.0)
    env, params = make_env("Pendulum-v1")
    with pytest.raises(ValueError, match="discrete"):
        hyperpp.make_train(hyperpp.HyperPPConfig(encoder="mlp"), env, params)
    env, params = make_env("CartPole-v1")
    with pytest.raises(ValueError, match="impala"):
        hyperpp.make_train(hyperpp.HyperPPConfig(), env, params)


def test_registry_and_baseline_defaults():
    assert get_algorithm("hyperpp").config_cls is hyperpp.HyperPPConfig
    srym, euc = get_algorithm("hyper_srym").config_cls(), get_algorithm("ppo_impala").config_cls()
    assert (srym.geometry, srym.feature_reg, srym.value_loss, srym.update_epochs) == ("poincare", "srym", "mse", 3)
    assert (euc.geometry, euc.feature_reg, euc.value_loss, euc.update_epochs) == ("euclidean", "none", "mse", 3)
    hpp = hyperpp.HyperPPConfig()
    assert (hpp.geometry, hpp.feature_reg, hpp.value_loss, hpp.update_epochs) == ("hyperboloid", "hyperpp", "hl_gauss", 2)


@pytest.mark.parametrize("cls", [hyperpp.HyperPPConfig, hyperpp.HyperSRYMConfig, hyperpp.EuclideanPPOConfig])
def test_one_update_per_agent_reports_finite_metrics(cls):
    env, params = make_env("Breakout-MinAtar")
    config = cls(encoder="cnn", num_envs=2, num_steps=8, num_minibatches=2, total_timesteps=32, hidden_sizes=(16,))
    trainer = hyperpp.make_train(config, env, params)
    hp = hyperpp.HyperPPHParams()
    state, metrics = jax.jit(lambda k: trainer.train(k, hp))(jax.random.key(0))
    for name in ("episode_return", "episode_length", "episode_count", "env_steps", "nonfinite_steps", "loss",
                 "approx_kl", "embedding_norm", "kl_violation_fraction", "trust_region_violation", "post_update_kl"):
        assert metrics[name].shape == (config.num_updates,), name
    for name in ("loss", "approx_kl", "embedding_norm", "post_update_kl", "value_loss"):
        assert np.all(np.isfinite(metrics[name])), name
    assert float(metrics["nonfinite_steps"].sum()) == 0
    np.testing.assert_allclose(metrics["env_steps"], [16, 32])
    action = trainer.act(state, state.env.obs, jax.random.key(1))
    assert action.shape == (2,)


def final_returns(metrics, fraction=0.05):
    returns, counts = np.asarray(metrics["episode_return"]), np.asarray(metrics["episode_count"])
    last = max(1, int(np.ceil(fraction * returns.shape[-1])))
    r, c = np.nan_to_num(returns[:, -last:]), counts[:, -last:]
    return (r * c).sum(-1) / np.maximum(c.sum(-1), 1)


@pytest.mark.learning
@pytest.mark.timeout(300)
def test_hyperpp_learns_cartpole_2_seeds():
    # Hyper++ (hyperboloid + RMSNorm/learned scaling + HL-Gauss) with an MLP encoder on CartPole, ~1e5 steps.
    # A random policy scores ≈ 22; measured ≈ 260–500 at the end of this budget for these seeds. Threshold 150
    # (7× random, a clear learning signal with margin for seed noise) on the seed mean and 80 per seed.
    env, params = make_env("CartPole-v1")
    config = hyperpp.HyperPPConfig(
        encoder="mlp", activation="tanh", num_envs=8, num_steps=128, num_minibatches=4, update_epochs=4,
        total_timesteps=98_304,
    )
    trainer = hyperpp.make_train(config, env, params)
    keys = jax.random.split(jax.random.key(0), 2)
    _, metrics = jax.jit(jax.vmap(trainer.train, in_axes=(0, None)))(keys, hyperpp.HyperPPHParams())
    final = final_returns(metrics)
    print("Hyper++ CartPole final returns per seed:", np.round(final, 1))
    assert final.mean() >= 150 and final.min() >= 80
    assert np.asarray(metrics["nonfinite_steps"]).sum() == 0
    assert np.all(np.asarray(metrics["embedding_norm_max"]) <= math.atanh(0.95) + 1e-4)  # the guaranteed bound
