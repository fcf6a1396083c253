"""Shared test fixtures. Learning tests carry ``@pytest.mark.learning``; CI runs both kinds."""

import os
import tempfile
import warnings

import chex
import jax
import numpy as np
import pytest

warnings.filterwarnings("ignore", message="total_timesteps=.*is not a multiple")

# Runs (in-process and the CLI's subprocesses, which inherit the environment) cache their compilations in one
# fresh directory per session: nothing lands in the user's ~/.cache, and a program compiled once (the CLI tests
# train the same small PPO many times) loads from the cache afterwards.
os.environ.setdefault("PUREJAXPO_CACHE_DIR", tempfile.mkdtemp(prefix="purejaxpo-test-xla-"))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def run_three_ways(fn, *args):
    """``fn(*args)`` plainly, under ``jax.jit`` and (on a stacked copy of the inputs) under ``jax.vmap``;
    asserts all three agree and returns the plain result.

    Kept instead of ``chex.variants`` because that covers jit/no-jit/device placement but has no ``vmap``
    variant, and every primitive must also broadcast under ``vmap`` (seeds and grids); the comparisons are chex's."""
    plain = fn(*args)
    jitted = jax.jit(fn)(*args)
    stacked = jax.tree.map(lambda x: np.stack([np.asarray(x)] * 3), args)
    vmapped = jax.vmap(fn)(*stacked)
    chex.assert_trees_all_close(jitted, plain, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(vmapped, jax.tree.map(lambda a: np.stack([np.asarray(a)] * 3), plain), rtol=1e-5, atol=1e-6)
    return plain
