"""Running moments and return scaling against NumPy."""

import jax
import jax.numpy as jnp
import numpy as np

from purejaxpo.primitives.stateful import normalize_with, return_scaler, running_moments, scale_rewards


def test_running_moments_match_numpy_over_batches(rng):
    batches = [rng.normal(loc=3.0, scale=2.0, size=(n, 4)).astype(np.float32) for n in (5, 17, 40)]
    state = running_moments.init((4,))
    update = jax.jit(running_moments.update)
    for batch in batches:
        state = update(state, jnp.asarray(batch))
    data = np.concatenate(batches)
    np.testing.assert_allclose(state.mean, data.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(state.var, data.var(0), rtol=1e-3, atol=1e-3)  # prior count 1e-4 is negligible
    z = normalize_with(state, jnp.asarray(data))
    np.testing.assert_allclose(np.asarray(z).mean(0), 0.0, atol=1e-3)


def test_running_moments_flatten_leading_axes_and_vmap_per_seed(rng):
    data = rng.normal(size=(3, 8, 2, 5)).astype(np.float32)  # [seeds, T, B, features]
    states = jax.vmap(lambda x: running_moments.update(running_moments.init((5,)), x))(jnp.asarray(data))
    for s in range(3):  # each seed's statistics are its own
        np.testing.assert_allclose(states.mean[s], data[s].reshape(-1, 5).mean(0), rtol=1e-4, atol=1e-5)


def test_return_scaler_matches_numpy_loop(rng):
    T, B, gamma = 20, 3, 0.9
    rewards = rng.normal(size=(T, B)).astype(np.float32)
    dones = rng.random((T, B)) < 0.2
    state = jax.jit(return_scaler.update)(return_scaler.init((B,)), jnp.asarray(rewards), jnp.asarray(dones), gamma)
    ret = np.zeros(B)
    prev_done = np.zeros(B, bool)
    seen = []
    for t in range(T):
        ret = gamma * ret * (1 - prev_done) + rewards[t]
        seen.append(ret.copy())
        prev_done = dones[t]
    seen = np.array(seen)
    np.testing.assert_allclose(state.moments.var, seen.var(), rtol=1e-3)
    np.testing.assert_allclose(state.returns, ret * (1 - dones[-1]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scale_rewards(state, jnp.asarray(rewards)), np.clip(rewards / np.sqrt(seen.var() + 1e-8), -10, 10), rtol=1e-3)
