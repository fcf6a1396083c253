"""Networks: orthogonal init (also vmapped over many seeds), heads for every action kind, bounds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from purejaxpo.networks import distributions, make_actor_critic, orthogonal


@pytest.mark.parametrize("shape", [(8, 8), (16, 4), (4, 16), (3, 3, 2, 5)])
def test_orthogonal_is_orthogonal(shape):
    w = np.asarray(orthogonal(2.0)(jax.random.key(0), shape)).reshape(-1, shape[-1])
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    np.testing.assert_allclose(gram, 4.0 * np.eye(gram.shape[0]), atol=1e-4)


def test_orthogonal_vmapped_equals_per_seed_and_never_batches_qr():
    keys = jax.random.split(jax.random.key(1), 5)
    batched = jax.jit(jax.vmap(lambda k: orthogonal()(k, (6, 6))))(keys)
    for i, k in enumerate(keys):
        np.testing.assert_allclose(batched[i], orthogonal()(k, (6, 6)), atol=1e-6)
    hlo = jax.jit(jax.vmap(lambda k: orthogonal()(k, (6, 6)))).lower(keys).as_text()
    assert "while" in hlo  # the QR runs inside a loop over the batch (lax.map), not as one batched call


@pytest.mark.timeout(300)
def test_init_of_64_seeds_vmapped_does_not_deadlock():
    # The platform trap: several batched QRs at once used to hang jaxlib on 2 cores.
    init = lambda k: make_actor_critic(k, obs_shape=(4,), action_kind="discrete", action_dim=2, hidden_sizes=(64, 64, 64))[1]
    params = jax.jit(jax.vmap(init))(jax.random.split(jax.random.key(0), 64))
    kernel = params["actor_torso"]["layers"][1]["kernel"][...]
    assert kernel.shape == (64, 64, 64) and np.all(np.isfinite(kernel))


@pytest.mark.parametrize(
    "kwargs, action_shape",
    [
        (dict(action_kind="discrete", action_dim=3), ()),
        (dict(action_kind="multi_discrete", action_dim=5, num_categories=4), (5,)),
        (dict(action_kind="continuous", action_dim=2, init_log_std=-0.5), (2,)),
    ],
)
def test_actor_critic_shapes(kwargs, action_shape):
    graphdef, params = make_actor_critic(jax.random.key(0), obs_shape=(6,), **kwargs)
    obs = jnp.ones((7, 6))
    dist, value = nnx.merge(graphdef, params)(obs)
    action, log_prob = dist.sample_and_log_prob(seed=jax.random.key(1))
    assert value.shape == (7,) and log_prob.shape == (7,) and action.shape == (7,) + action_shape
    assert dist.entropy().shape == (7,)
    np.testing.assert_allclose(dist.log_prob(action), log_prob, rtol=1e-5)
    # log-probabilities against NumPy closed forms from the network's own outputs
    a = np.asarray(action)
    if kwargs["action_kind"] == "continuous":
        mean, std = np.asarray(dist.loc, np.float64), np.asarray(dist.scale_diag, np.float64)
        np.testing.assert_allclose(std, np.exp(-0.5), rtol=1e-6)  # the state-independent init_log_std
        ref = np.sum(-0.5 * ((a - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi), -1)
    else:
        logits = np.asarray(dist.distribution.logits if kwargs["action_kind"] == "multi_discrete" else dist.logits, np.float64)
        log_p = logits - np.log(np.sum(np.exp(logits), -1, keepdims=True))
        picked = np.take_along_axis(log_p, a[..., None].astype(int), -1)[..., 0]
        ref = picked.sum(-1) if kwargs["action_kind"] == "multi_discrete" else picked
    np.testing.assert_allclose(log_prob, ref, rtol=1e-5, atol=1e-5)


def test_cnn_torso_on_minatar_shaped_obs():
    graphdef, params = make_actor_critic(jax.random.key(0), obs_shape=(10, 10, 4), action_kind="discrete", action_dim=6, torso="cnn")
    dist, value = nnx.merge(graphdef, params)(jnp.ones((3, 10, 10, 4)))
    assert dist.logits.shape == (3, 6) and value.shape == (3,)
    with pytest.raises(ValueError, match="H, W, C"):
        make_actor_critic(jax.random.key(0), obs_shape=(4,), action_kind="discrete", action_dim=2, torso="cnn")


def test_initial_policy_is_near_uniform_and_value_head_scaled():
    graphdef, params = make_actor_critic(jax.random.key(0), obs_shape=(4,), action_kind="discrete", action_dim=2)
    dist, _ = nnx.merge(graphdef, params)(jax.random.normal(jax.random.key(1), (100, 4)))
    np.testing.assert_allclose(dist.probs, 0.5, atol=0.05)  # 0.01-scaled policy head


def test_to_env_action_bounds():
    low, high = jnp.array([-2.0]), jnp.array([2.0])
    raw = jnp.array([[-5.0], [0.0], [1.0]])
    np.testing.assert_allclose(distributions.to_env_action(raw, low, high, "clip"), [[-2.0], [0.0], [1.0]])
    np.testing.assert_allclose(distributions.to_env_action(raw, low, high, "tanh"), 2.0 * np.tanh(raw), rtol=1e-6)
    # an asymmetric Box [0, 3] x [-1, 5]: tanh maps 0 to the centre and ±∞ to the bounds
    low2, high2 = jnp.array([0.0, -1.0]), jnp.array([3.0, 5.0])
    raw2 = jnp.array([[0.0, 0.0], [40.0, -40.0], [0.5, -0.25]])
    expected = np.asarray(low2) + 0.5 * (np.tanh(np.asarray(raw2)) + 1.0) * np.asarray(high2 - low2)
    out = distributions.to_env_action(raw2, low2, high2, "tanh")
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    np.testing.assert_allclose(out[0], [1.5, 2.0]) and np.testing.assert_allclose(out[1], [3.0, -1.0])
    np.testing.assert_allclose(distributions.to_env_action(raw2 * 10, low2, high2, "clip"), [[0.0, 0.0], [3.0, -1.0], [3.0, -1.0]])
    with pytest.raises(ValueError, match="bounds"):
        distributions.to_env_action(raw, low, high, "sigmoid")


def test_graphdef_of_equals_the_eager_graphdef_and_compiles_nothing():
    from jax._src import monitoring

    from purejaxpo.networks.actor_critic import ActorCritic
    from purejaxpo.networks.graphdef import graphdef_of

    def build(key, obs=4, hidden=(8, 8)):
        return ActorCritic((obs,), "discrete", 2, hidden_sizes=hidden, rngs=nnx.Rngs(params=key))

    eager, _ = nnx.split(build(jax.random.key(0)))
    assert graphdef_of(build) == eager
    compiles = []  # an eager build runs every initializer, each a small XLA compile
    listener = lambda event, duration, **kw: compiles.append(event) if event.endswith("backend_compile_duration") else None
    monitoring.register_event_duration_secs_listener(listener)
    try:
        graphdef_of(lambda key: build(key, obs=5, hidden=(7,)))
    finally:
        monitoring.unregister_event_duration_listener(listener)
    assert compiles == []
