"""GAE and reductions against a plain NumPy loop, hand-worked numbers and identities."""

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run_three_ways

from purejaxpo.primitives.advantages import explained_variance, gae, masked_mean, normalize


def numpy_gae(rewards, values, final_values, last_value, terminated, truncated, gamma, lam):
    """Reference: a per-env backwards loop written from the definition."""
    T, B = rewards.shape
    adv = np.zeros((T, B))
    for b in range(B):
        running = 0.0
        for t in reversed(range(T)):
            done = terminated[t, b] or truncated[t, b]
            if done:
                next_value = 0.0 if terminated[t, b] else final_values[t, b]
                running = 0.0
            else:
                next_value = values[t + 1, b] if t + 1 < T else last_value[b]
            delta = rewards[t, b] + gamma * next_value - values[t, b]
            running = delta + gamma * lam * running
            adv[t, b] = running
    return adv


def random_episode_batch(rng, T=12, B=3):
    rewards = rng.normal(size=(T, B)).astype(np.float32)
    values = rng.normal(size=(T, B)).astype(np.float32)
    final_values = rng.normal(size=(T, B)).astype(np.float32)
    last_value = rng.normal(size=(B,)).astype(np.float32)
    terminated = rng.random((T, B)) < 0.15
    truncated = (rng.random((T, B)) < 0.15) & ~terminated
    return rewards, values, final_values, last_value, terminated, truncated


def test_gae_matches_numpy_loop(rng):
    batch = random_episode_batch(rng)
    args = tuple(jnp.asarray(x) for x in batch)
    adv, targets = run_three_ways(lambda *a: gae(*a, 0.97, 0.9), *args)
    expected = numpy_gae(*batch, 0.97, 0.9)
    np.testing.assert_allclose(adv, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(targets, expected + batch[1], rtol=1e-5, atol=1e-5)


def test_gae_hand_worked_truncation_vs_termination():
    # T=2, one env. Step 0 ends the episode; step 1 starts a new one.
    # rewards = [1, 2], values = [0.5, 0.25], V(final_obs_0) = 4, last_value = 8, γ = 0.5, λ = 1.
    # truncated at 0: δ0 = 1 + 0.5·4 − 0.5 = 2.5 (bootstrap from the final obs), trace cut → A0 = 2.5
    #                 δ1 = 2 + 0.5·8 − 0.25 = 5.75 → A1 = 5.75
    # terminated at 0: δ0 = 1 − 0.5 = 0.5 → A0 = 0.5; A1 unchanged.
    args = dict(
        rewards=jnp.array([1.0, 2.0]), values=jnp.array([0.5, 0.25]), final_values=jnp.array([4.0, -99.0]),
        last_value=jnp.array(8.0), gamma=0.5, gae_lambda=1.0,
    )
    adv_trunc, _ = gae(**args, terminated=jnp.array([False, False]), truncated=jnp.array([True, False]))
    adv_term, _ = gae(**args, terminated=jnp.array([True, False]), truncated=jnp.array([False, False]))
    np.testing.assert_allclose(adv_trunc, [2.5, 5.75])
    np.testing.assert_allclose(adv_term, [0.5, 5.75])


def test_gae_lambda_one_is_monte_carlo_return_minus_value(rng):
    T = 10
    rewards = rng.normal(size=(T,)).astype(np.float32)
    values = rng.normal(size=(T,)).astype(np.float32)
    last_value = np.float32(1.5)
    gamma = 0.9
    no = np.zeros(T, bool)
    adv, _ = gae(jnp.asarray(rewards), jnp.asarray(values), jnp.zeros(T), jnp.asarray(last_value), no, no, gamma, 1.0)
    returns = np.array([sum(gamma ** (k - t) * rewards[k] for k in range(t, T)) + gamma ** (T - t) * last_value for t in range(T)])
    np.testing.assert_allclose(adv, returns - values, rtol=1e-5, atol=1e-5)


def test_gae_lambda_zero_is_td_error(rng):
    rewards, values, final_values, last_value, terminated, truncated = random_episode_batch(rng)
    adv, _ = gae(rewards, values, final_values, last_value, terminated, truncated, 0.95, 0.0)
    next_values = np.concatenate([values[1:], last_value[None]])
    next_values = np.where(terminated | truncated, final_values, next_values)
    td = rewards + 0.95 * (1 - terminated) * next_values - values
    np.testing.assert_allclose(adv, td, rtol=1e-5, atol=1e-5)


def test_gae_broadcasts_over_extra_batch_axes(rng):
    batch = random_episode_batch(rng, T=6, B=4)
    flat, _ = gae(*batch, 0.99, 0.95)
    reshaped = [x.reshape((6, 2, 2)) if x.ndim == 2 else x.reshape((2, 2)) for x in batch]
    nested, _ = gae(*reshaped, 0.99, 0.95)
    np.testing.assert_allclose(nested.reshape(6, 4), flat, rtol=1e-6)


def test_normalize_and_masked_mean():
    x = jnp.array([1.0, 2.0, 3.0, 100.0])
    mask = jnp.array([1.0, 1.0, 1.0, 0.0])
    assert float(masked_mean(x, mask)) == pytest.approx(2.0)
    assert float(masked_mean(x)) == pytest.approx(26.5)
    assert float(masked_mean(x, jnp.zeros(4))) == 0.0  # no valid element: 0, not NaN
    z = run_three_ways(lambda a: normalize(a), jnp.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(z, np.array([-1.0, 0.0, 1.0]) / np.sqrt(2 / 3), rtol=1e-5)


def test_explained_variance():
    t = jnp.array([1.0, 2.0, 3.0, 4.0])
    assert float(explained_variance(t, t)) == pytest.approx(1.0)
    assert float(explained_variance(jnp.full(4, 2.5), t)) == pytest.approx(0.0)
    assert float(explained_variance(t, jnp.ones(4))) == 0.0  # constant targets: defined as 0
