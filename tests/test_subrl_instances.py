"""SubRL's instances in the reference's units (envs/subrl_instances.py): kernel scale, released data, disjoint items."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxpo.envs import subrl_instances as inst
from purejaxpo.envs.submodular_worlds import make_coverage, make_informative_path, make_steiner_covering

RIGHT = 1


def matern52(r: float) -> float:
    return (1 + math.sqrt(5) * r + 5 * r**2 / 3) * math.exp(-math.sqrt(5) * r)


def test_entropy_kernel_has_the_reference_units():
    """Lengthscale 1 at step 0.1 = 10 cells and outputscale ln 2: adjacent cells correlate at Matérn-5/2(r=0.1),
    and a cell next to a visited one gains clearly less than a far one (at 1-cell units both gain ≈ 9.8)."""
    # instance 1 has no conditioning point near the grid: the covariance is the prior there
    env, params = make_informative_path(instance=1)
    kernel = np.asarray(params.data.kernel, np.float64)
    assert kernel.shape == (900, 900)
    np.testing.assert_allclose(np.diag(kernel).max(), math.log(2), rtol=1e-5)
    assert np.diag(kernel).min() > 0.68
    corr = kernel[0, 1] / math.sqrt(kernel[0, 0] * kernel[1, 1])
    np.testing.assert_allclose(corr, matern52(0.1), atol=1e-3)  # 0.9917; 1-cell units would give 0.52
    _, state = env.reset_env(jax.random.key(0), params)
    np.testing.assert_allclose(state.value, 0.5 * math.log(math.log(2) + 1e-6) + 9.965784, atol=2e-3)
    _, state, gain, _, _ = env.step_env(jax.random.key(1), state, jnp.asarray(RIGHT), params)
    assert 7.0 < float(gain) < 8.5  # ½ ln(ln2·(1 − ρ²)) + c ≈ 7.8


def test_released_entropy_instances_condition_on_points():
    """The fitted points of instance 0 lie on the grid: the variance there drops well below ln 2."""
    points = inst.released_entropy_points(0)
    assert points.shape == (5, 2)
    kernel = np.diag(np.asarray(make_informative_path(instance=0)[1].data.kernel))
    assert kernel.min() < 0.1 and kernel.max() > 0.68
    generated = np.diag(np.asarray(make_informative_path(seed=3)[1].data.kernel))
    assert generated.max() <= math.log(2) + 1e-6


def test_gp_weights_released_and_generated():
    released = [inst.released_gp_weights(k) for k in range(inst.NUM_INSTANCES)]
    assert all(w.shape == (900,) and w.min() > 0 for w in released)
    np.testing.assert_allclose(min(w.min() for w in released), 0.32586, atol=1e-5)  # env_8 (README of the data)
    np.testing.assert_allclose(max(w.max() for w in released), 5.18833, atol=1e-5)  # env_7
    np.testing.assert_array_equal(make_coverage(weights="gp", instance=4, horizon=40)[1].data.weights,
                                  np.asarray(released[4], np.float32))
    for seed in range(3):  # a new map in the reference's units: smooth over 10 cells, mean ≈ 3
        w = make_coverage(weights="gp", seed=seed, horizon=40)[1].data.weights.reshape(30, 30)
        w = np.asarray(w, np.float64)
        adjacent = np.corrcoef(w[:, :-1].ravel(), w[:, 1:].ravel())[0, 1]
        assert adjacent > 0.97 and w.min() >= 0.0
        assert 0.5 < w.mean() < 5.5


def test_steiner_items_are_disjoint():
    for k in range(inst.NUM_INSTANCES):
        groups = np.asarray(make_steiner_covering(instance=k)[1].data.groups)
        np.testing.assert_array_equal(groups.sum(axis=1), inst.STEINER_COUNTS)
        assert groups.sum(axis=0).max() == 1 and groups.sum() == 93
    for seed in range(10):  # independent draws per type would overlap almost surely (93 of 105 cells)
        groups = np.asarray(make_steiner_covering(seed=seed)[1].data.groups)
        np.testing.assert_array_equal(groups.sum(axis=1), inst.STEINER_COUNTS)
        assert groups.sum(axis=0).max() == 1
    np.testing.assert_array_equal(make_steiner_covering(instance=0)[1].data.demands, inst.STEINER_DEMANDS)


def test_bad_instances_are_refused():
    with pytest.raises(ValueError, match="instance"):
        make_coverage(weights="gp", instance=10, horizon=40)
    with pytest.raises(ValueError, match="30x30"):
        make_informative_path(nrows=20, ncols=20, instance=0)
    with pytest.raises(ValueError, match="no instances"):
        make_coverage(weights="bimodal", instance=0)
    with pytest.raises(ValueError, match="distinct cells"):
        make_steiner_covering(nrows=5, ncols=5, start_cell=3)
