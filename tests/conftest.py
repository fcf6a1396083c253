"""Shared test fixtures. Learning tests carry ``@pytest.mark.learning``; CI runs both kinds."""

import warnings

import jax
import numpy as np
import pytest

warnings.filterwarnings("ignore", message="total_timesteps=.*is not a multiple")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def run_three_ways(fn, *args):
    """``fn(*args)`` plainly, under ``jax.jit`` and (on a stacked copy of the inputs) under ``jax.vmap``;
    asserts all three agree and returns the plain result."""
    plain = fn(*args)
    jitted = jax.jit(fn)(*args)
    stacked = jax.tree.map(lambda x: np.stack([np.asarray(x)] * 3), args)
    vmapped = jax.vmap(fn)(*stacked)
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(jitted)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(vmapped)):
        np.testing.assert_allclose(np.stack([np.asarray(a)] * 3), b, rtol=1e-5, atol=1e-6)
    return plain
