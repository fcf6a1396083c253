"""pass@k against brute-force enumeration of k-subsets, and its identities."""

import itertools

import numpy as np
import pytest

from conftest import run_three_ways
from purejaxpo.primitives.coverage import pass_at_k


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_pass_at_k_equals_the_fraction_of_k_subsets_with_a_success(k, rng):
    successes = rng.random((6, 5)) < 0.35  # 6 configurations × 5 attempts
    expected = [np.mean([any(row[list(c)]) for c in itertools.combinations(range(5), k)]) for row in successes]
    np.testing.assert_allclose(run_three_ways(lambda s: pass_at_k(s, k), successes.astype(np.float32)), expected, rtol=1e-5, atol=1e-6)


def test_pass_at_k_identities():
    s = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0]], np.float32)
    np.testing.assert_allclose(pass_at_k(s, 1), s.mean(-1), rtol=1e-6)  # k = 1: the success rate
    np.testing.assert_allclose(pass_at_k(s, 4), [1, 0, 1, 1], atol=1e-6)  # k = m: any success
    np.testing.assert_allclose(pass_at_k(s, 2)[0], 1 - 3 / 6, rtol=1e-6)  # 1 − C(3,2)/C(4,2) = 1/2, by hand
    with pytest.raises(ValueError, match="1 <= k <= m"):
        pass_at_k(s, 5)
