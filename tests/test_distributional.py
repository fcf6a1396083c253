"""HL-Gauss and two-hot targets: normalization, mean recovery, NumPy/erf reference, loss gradient."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxpo.primitives import distributional as dist

EDGES = dist.bin_edges(-10.0, 10.0, 51)
CENTERS = dist.bin_centers(EDGES)
SIGMA = 0.75 * (20.0 / 51)


def np_hl_gauss(y, edges, sigma):
    y = min(max(y, edges[0]), edges[-1])
    cdf = np.array([0.5 * (1 + math.erf((e - y) / (math.sqrt(2) * sigma))) for e in edges.astype(np.float64)])
    return np.diff(cdf) / (cdf[-1] - cdf[0])


def test_edges_and_centers():
    assert EDGES.shape == (52,) and CENTERS.shape == (51,)
    np.testing.assert_allclose(np.diff(EDGES), 20 / 51, rtol=1e-5)
    np.testing.assert_allclose(CENTERS[25], 0.0, atol=1e-6)  # odd bin count: a centre at 0
    with pytest.raises(ValueError):
        dist.bin_edges(1.0, 1.0, 5)


@pytest.mark.parametrize("y", [-12.0, -10.0, -3.3, 0.0, 0.1, 4.71, 9.99, 25.0])
def test_hl_gauss_matches_numpy_and_sums_to_one(y):
    p = np.asarray(dist.hl_gauss_probs(jnp.float32(y), EDGES, SIGMA))
    np.testing.assert_allclose(p, np_hl_gauss(y, EDGES, SIGMA), atol=2e-6)
    np.testing.assert_allclose(p.sum(), 1.0, atol=1e-5)
    assert np.all(p >= 0)


def test_hl_gauss_mean_recovers_target_inside_the_support():
    # away from the ends the truncation is negligible and the bin-centre mean of a discretized Gaussian
    # with σ = 0.75 w is within a small fraction of a bin width of y
    y = jnp.linspace(-8.0, 8.0, 97)
    mean = np.sum(np.asarray(dist.hl_gauss_probs(y, EDGES, SIGMA)) * CENTERS, -1)
    np.testing.assert_allclose(mean, y, atol=0.02 * (20 / 51))
    # categorical_mean of the log-probabilities (as logits) gives the same
    logits = jnp.log(dist.hl_gauss_probs(y, EDGES, SIGMA) + 1e-30)
    np.testing.assert_allclose(dist.categorical_mean(logits, CENTERS), mean, atol=1e-4)
    # clamped targets: the mean is pulled inside [−10, 10]
    assert -10 <= float(np.sum(dist.hl_gauss_probs(jnp.float32(50.0), EDGES, SIGMA) * CENTERS)) <= 10


def test_two_hot_exact_mean_and_sum():
    y = jnp.array([-9.80392, -3.3, 0.0, 0.05, 9.0, 9.80392, 20.0])
    p = dist.two_hot_probs(y, CENTERS)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.sum(p * CENTERS, -1), np.clip(y, CENTERS[0], CENTERS[-1]), atol=1e-5)
    assert np.all(np.sum(np.asarray(p) > 0, -1) <= 2)


def test_loss_minimized_at_target_and_gradient_is_p_minus_q():
    y = jnp.array([1.3, -4.0])
    probs = dist.hl_gauss_probs(y, EDGES, SIGMA)
    logits = jnp.zeros((2, 51))
    grad = jax.grad(lambda l: jnp.sum(dist.hl_gauss_loss(l, y, EDGES, SIGMA)))(logits)
    np.testing.assert_allclose(grad, jax.nn.softmax(logits) - probs, atol=1e-6)  # ∂CE/∂logits = softmax − p
    ce_at_target = dist.hl_gauss_loss(jnp.log(probs + 1e-30), y, EDGES, SIGMA)
    entropy = -jnp.sum(probs * jnp.log(probs + 1e-30), -1)
    np.testing.assert_allclose(ce_at_target, entropy, rtol=1e-4)  # CE(p, p) = H(p), its minimum
    assert np.all(dist.two_hot_loss(logits, y, CENTERS) > 0)


def test_plain_jit_vmap_agree():
    y = jnp.linspace(-11, 11, 7)
    f = lambda y: (dist.hl_gauss_probs(y, EDGES, SIGMA), dist.two_hot_probs(y, CENTERS))
    for a, b, c in zip(f(y), jax.jit(f)(y), jax.vmap(f)(y)):
        np.testing.assert_allclose(a, b, atol=1e-6)
        np.testing.assert_allclose(a, c, atol=1e-6)
