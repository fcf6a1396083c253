"""Submodular set functions: hand values, NumPy oracles, monotonicity, diminishing returns, jit and vmap."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxpo.envs import set_functions as sm

NROWS, NCOLS = 5, 6
N = NROWS * NCOLS
COORDS = np.stack(np.divmod(np.arange(N), NCOLS), axis=1).astype(np.float64)


# ------------------------------------------------------------------------------------------------ NumPy oracles


def np_coverage(members: set[int], footprints: np.ndarray, w: np.ndarray) -> float:
    covered: set[int] = set()
    for s in members:
        covered |= set(np.flatnonzero(footprints[s]).tolist())
    return float(sum(w[n] for n in covered))


def np_facility(members: set[int], sim: np.ndarray, w: np.ndarray) -> float:
    if not members:
        return 0.0
    return float(np.sum(w * sim[:, sorted(members)].max(axis=1)))


def np_steiner(members: set[int], groups: np.ndarray, demands: np.ndarray) -> float:
    return float(sum(min(len(members & set(np.flatnonzero(g).tolist())), d) for g, d in zip(groups, demands)))


def np_logdet(members: set[int], kernel: np.ndarray, noise: float, offset: float) -> float:
    idx = sorted(members)
    if not idx:
        return 0.0
    sub = kernel[np.ix_(idx, idx)].astype(np.float64) + noise * np.eye(len(idx))
    sign, logdet = np.linalg.slogdet(sub)
    assert sign > 0
    return 0.5 * logdet + offset * len(idx)


def mask_of(members: set[int]) -> np.ndarray:
    m = np.zeros(N, bool)
    m[sorted(members)] = True
    return m


# ------------------------------------------------------------------------------------------------ fixtures

RNG = np.random.default_rng(0)
WEIGHTS = RNG.uniform(0.0, 2.0, N).astype(np.float32)
FOOTPRINTS = np.asarray(sm.disc_footprints(NROWS, NCOLS, 2))
SIM = np.asarray(sm.rbf_similarity(jnp.asarray(COORDS, jnp.float32), jnp.asarray(COORDS, jnp.float32), 1.5))
GROUPS = RNG.uniform(size=(3, N)) < 0.3
DEMANDS = np.array([2.0, 1.0, 3.0], np.float32)
KERNEL = np.asarray(sm.matern52(jnp.asarray(COORDS, jnp.float32), jnp.asarray(COORDS, jnp.float32), 1.5))
NOISE = 1e-3  # a well-conditioned jitter for float32 comparisons with float64 NumPy
OFFSET = 0.5 * -math.log(NOISE)  # makes every gain ≥ 0, as SubRL's 9.965784 does for 1e-6

FUNCTIONS = {
    "coverage": (lambda v: sm.coverage_value(v, FOOTPRINTS, WEIGHTS),
                 lambda v, x: sm.coverage_gain(v, x, FOOTPRINTS, WEIGHTS),
                 lambda A: np_coverage(A, FOOTPRINTS, WEIGHTS)),
    "facility": (lambda v: sm.facility_location_value(v, SIM, WEIGHTS),
                 lambda v, x: sm.facility_location_gain(v, x, SIM, WEIGHTS),
                 lambda A: np_facility(A, SIM, WEIGHTS)),
    "steiner": (lambda v: sm.truncated_coverage_value(v, GROUPS, DEMANDS),
                lambda v, x: sm.truncated_coverage_gain(v, x, GROUPS, DEMANDS),
                lambda A: np_steiner(A, GROUPS, DEMANDS)),
    "logdet": (lambda v: sm.logdet_value(v, KERNEL, NOISE, OFFSET),
               lambda v, x: sm.logdet_gain(v, x, KERNEL, NOISE, OFFSET),
               lambda A: np_logdet(A, KERNEL, NOISE, OFFSET)),
}
TOL = {"coverage": 1e-5, "facility": 1e-5, "steiner": 1e-6, "logdet": 2e-3}


def random_sets(seed: int, count: int) -> list[tuple[set[int], set[int], int]]:
    """``(A, B, x)`` with ``A ⊆ B`` random subsets of the grid and ``x`` a random cell."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        a = set(rng.choice(N, size=rng.integers(0, 8), replace=False).tolist())
        b = a | set(rng.choice(N, size=rng.integers(0, 10), replace=False).tolist())
        out.append((a, b, int(rng.integers(N))))
    return out


# ------------------------------------------------------------------------------------------------ hand values


def test_disc_footprint_by_hand():
    # 5x6 grid, small disc of cell 7 = (1, 1): {(1,1), (1,2), (2,1), (2,2)} = cells {7, 8, 13, 14}.
    assert set(np.flatnonzero(sm.disc_footprint(7, NROWS, NCOLS, 2)).tolist()) == {7, 8, 13, 14}
    # bottom-right corner 29 = (4, 5) is clipped to itself; large disc of 0 is the 3x3 block {0,1,2,6,7,8,12,13,14}.
    assert set(np.flatnonzero(sm.disc_footprint(29, NROWS, NCOLS, 2)).tolist()) == {29}
    assert set(np.flatnonzero(sm.disc_footprint(0, NROWS, NCOLS, 3)).tolist()) == {0, 1, 2, 6, 7, 8, 12, 13, 14}


def test_coverage_by_hand():
    w = np.ones(N, np.float32)
    v = mask_of({0})
    # F({0}) = |{0,1,6,7}| = 4; adding 1 covers {1,2,7,8}: new cells {2, 8} -> gain 2.
    assert float(sm.coverage_value(v, FOOTPRINTS, w)) == 4.0
    assert float(sm.coverage_gain(v, 1, FOOTPRINTS, w)) == 2.0
    assert float(sm.coverage_gain(v, 0, FOOTPRINTS, w)) == 0.0


def test_logdet_and_kernel_by_hand():
    # Matérn-5/2 at r = ℓ = 1: (1 + √5 + 5/3) e^{−√5} = 4.902735 · 0.106878 = 0.523994.
    k = sm.matern52(jnp.zeros((1, 2)), jnp.array([[0.0, 1.0]]), 1.0)
    np.testing.assert_allclose(k, [[0.523994]], rtol=1e-5)
    np.testing.assert_allclose(sm.matern52(jnp.zeros((1, 2)), jnp.zeros((1, 2)), 1.0, 2.0), [[2.0]])
    # K = [[1, .5], [.5, 1]], σ² = 0: F({0,1}) = ½ log(1 − .25) = −0.143841; gain of 1 given {0} is the same.
    kernel = jnp.array([[1.0, 0.5], [0.5, 1.0]])
    np.testing.assert_allclose(sm.logdet_value(jnp.array([True, True]), kernel, 1e-12, 0.0), -0.143841, atol=1e-5)
    np.testing.assert_allclose(sm.logdet_gain(jnp.array([True, False]), 1, kernel, 1e-12, 0.0), -0.143841,
                               atol=1e-5)
    assert float(sm.logdet_value(jnp.array([False, False]), kernel)) == 0.0


def test_facility_and_steiner_by_hand():
    # 1x3 line, S = exp(−d²/2): S(adjacent) = e^{−0.5} = 0.606531, S(distance 2) = e^{−2} = 0.135335.
    coords = jnp.array([[0.0, 0.0], [0.0, 1.0], [0.0, 2.0]])
    sim = sm.rbf_similarity(coords, coords, 1.0)
    w = jnp.ones(3)
    # F({0}) = 1 + 0.606531 + 0.135335 = 1.741866; gain of 1 = (1 − .606531) + (.606531 − .135335) = 0.864665.
    np.testing.assert_allclose(sm.facility_location_value(jnp.array([True, False, False]), sim, w), 1.741866,
                               rtol=1e-5)
    np.testing.assert_allclose(sm.facility_location_gain(jnp.array([True, False, False]), 1, sim, w), 0.864665,
                               rtol=1e-5)
    # two types: type 0 at cells {0, 1} with demand 1, type 1 at {1, 2} with demand 2.
    groups = jnp.array([[True, True, False], [False, True, True]])
    demands = jnp.array([1.0, 2.0])
    # F({0}) = min(1,1) + min(0,2) = 1; adding 1: type 0 is saturated, type 1 gains 1 -> F = 2.
    assert float(sm.truncated_coverage_value(jnp.array([True, False, False]), groups, demands)) == 1.0
    assert float(sm.truncated_coverage_gain(jnp.array([True, False, False]), 1, groups, demands)) == 1.0
    assert float(sm.truncated_coverage_gain(jnp.array([True, True, False]), 1, groups, demands)) == 0.0
    assert float(sm.modular_value(jnp.array([2, 0, 1]), jnp.array([1.5, 7.0, 0.5]))) == 3.5


# ------------------------------------------------------------------------------------------------ properties


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_value_and_gain_match_numpy(name):
    value, gain, oracle = FUNCTIONS[name]
    value, gain = jax.jit(value), jax.jit(gain)
    for a, _, x in random_sets(1, 25):
        np.testing.assert_allclose(value(mask_of(a)), oracle(a), rtol=TOL[name], atol=TOL[name])
        expected = oracle(a | {x}) - oracle(a)
        np.testing.assert_allclose(gain(mask_of(a), x), expected, rtol=TOL[name], atol=TOL[name])
        generic = sm.marginal_gain(value, mask_of(a), x)
        np.testing.assert_allclose(generic, expected, rtol=TOL[name], atol=TOL[name])


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_monotone_and_diminishing_returns(name):
    _, gain, _ = FUNCTIONS[name]
    gain = jax.jit(gain)
    for a, b, x in random_sets(2, 40):
        g_a, g_b = float(gain(mask_of(a), x)), float(gain(mask_of(b), x))
        assert g_a >= -TOL[name] and g_b >= -TOL[name], (a, b, x, g_a, g_b)
        assert g_a >= g_b - TOL[name], (a, b, x, g_a, g_b)


def test_logdet_with_subrl_constants_is_monotone():
    # σ² = 1e-6 with offset 9.965784 on a GP posterior covariance (5 observed points, noise 1e-3).
    kernel = sm.gp_posterior_covariance(COORDS, COORDS[[0, 7, 14, 21, 28]], 1.0, 1e-3).astype(np.float32)
    gain = jax.jit(lambda v, x: sm.logdet_gain(v, x, kernel))
    for a, b, x in random_sets(3, 20):
        g_a, g_b = float(gain(mask_of(a), x)), float(gain(mask_of(b), x))
        assert g_a >= 0.0 and g_b >= 0.0
        assert g_a >= g_b - 1e-3
        if x not in b:
            np.testing.assert_allclose(g_b, np_logdet(b | {x}, kernel, 1e-6, sm.ENTROPY_OFFSET)
                                       - np_logdet(b, kernel, 1e-6, sm.ENTROPY_OFFSET), atol=2e-2)


def test_logdet_cache_matches_numpy_conditional_variance():
    order = [3, 17, 4, 29, 10, 11]
    cache = sm.logdet_cache_init(8)
    kernel = jnp.asarray(KERNEL)
    for j, x in enumerate(order):
        gain = float(sm.logdet_cache_gain(cache, x, kernel, NOISE, 0.0))
        prev = order[:j]
        sub = KERNEL[np.ix_(prev, prev)].astype(np.float64) + NOISE * np.eye(len(prev))
        k = KERNEL[prev, x].astype(np.float64)
        var = KERNEL[x, x] + NOISE - (k @ np.linalg.solve(sub, k) if prev else 0.0)
        np.testing.assert_allclose(gain, 0.5 * np.log(var), atol=1e-4)
        cache = sm.logdet_cache_add(cache, x, kernel, NOISE)
    assert int(cache.size) == len(order)
    np.testing.assert_array_equal(cache.members[: len(order)], order)
    # a skipped add leaves the cache unchanged
    same = sm.logdet_cache_add(cache, 0, kernel, NOISE, False)
    for u, v in zip(same, cache):
        np.testing.assert_array_equal(u, v)


# ------------------------------------------------------------------------------------------------ jit / vmap


@pytest.mark.timeout(120)
def test_gains_under_vmap_1024():
    rng = np.random.default_rng(4)
    masks = jnp.asarray(rng.uniform(size=(1024, N)) < 0.2)
    xs = jnp.asarray(rng.integers(0, N, 1024), jnp.int32)
    for name in ("coverage", "facility", "steiner"):
        value, gain, _ = FUNCTIONS[name]
        batched = jax.jit(jax.vmap(gain))(masks, xs)
        values = jax.jit(jax.vmap(value))(masks)
        assert batched.shape == (1024,) and values.shape == (1024,)
        for i in (0, 511, 1023):
            np.testing.assert_allclose(batched[i], gain(masks[i], xs[i]), rtol=1e-5, atol=1e-5)
    # log-det: the O(N³) value on 64 sets, and the incremental cache on 1024 parallel sequences.
    value, gain, _ = FUNCTIONS["logdet"]
    batched = jax.jit(jax.vmap(gain))(masks[:64], xs[:64])
    np.testing.assert_allclose(batched[5], gain(masks[5], xs[5]), rtol=1e-4, atol=1e-4)
    kernel = jnp.asarray(KERNEL)

    def grow(seq):
        def body(cache, x):
            g = sm.logdet_cache_gain(cache, x, kernel, NOISE, OFFSET)
            return sm.logdet_cache_add(cache, x, kernel, NOISE), g
        return jax.lax.scan(body, sm.logdet_cache_init(seq.shape[0]), seq)[1]

    seqs = jnp.asarray(np.stack([rng.permutation(N)[:10] for _ in range(1024)]), jnp.int32)
    gains = jax.jit(jax.vmap(grow))(seqs)
    assert gains.shape == (1024, 10)
    for i in (0, 1023):
        members = set(seqs[i].tolist())
        np.testing.assert_allclose(gains[i].sum(), np_logdet(members, KERNEL, NOISE, OFFSET), atol=5e-3)


def test_value_is_exhaustively_submodular_on_a_tiny_ground_set():
    # All pairs A ⊆ B ⊆ {0..4} on a 1x5 line and every x: diminishing returns for all four functions.
    coords = jnp.stack([jnp.zeros(5), jnp.arange(5.0)], axis=1)
    kernel = sm.matern52(coords, coords, 1.0)
    sim = sm.rbf_similarity(coords, coords, 1.0)
    fps = sm.disc_footprints(1, 5, 2)
    groups = jnp.array([[1, 1, 0, 0, 1], [0, 1, 1, 1, 0]], bool)
    fns = [lambda v, x: sm.coverage_gain(v, x, fps, jnp.arange(1.0, 6.0)),
           lambda v, x: sm.facility_location_gain(v, x, sim, jnp.ones(5)),
           lambda v, x: sm.truncated_coverage_gain(v, x, groups, jnp.array([1.0, 2.0])),
           lambda v, x: sm.logdet_gain(v, x, kernel, 1e-3, OFFSET)]
    subsets = [np.array(bits, bool) for bits in itertools.product([0, 1], repeat=5)]
    masks = jnp.asarray(np.stack(subsets))
    for fn in fns:
        gains = np.asarray(jax.jit(jax.vmap(jax.vmap(fn, (None, 0)), (0, None)))(masks, jnp.arange(5)))  # [32, 5]
        for i, a in enumerate(subsets):
            for j, b in enumerate(subsets):
                if np.all(a <= b):
                    assert np.all(gains[i] >= gains[j] - 1e-4)
        assert np.all(gains >= -1e-5)
