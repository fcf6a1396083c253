"""Batched seed maps: same results as one wide vmap and as a plain loop; ``"auto"`` and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxpo import experiment
from purejaxpo.algorithms import ppo
from purejaxpo.batching import CPU_SEEDS_PER_BATCH, map_over_runs, resolve_seeds_per_batch


def per_run(state, hp):
    """A run: ``{"x": [3], "n": []}`` and its setting's ``{"a": []}`` -> a pytree of outputs."""
    return {"y": jnp.sin(state["x"]) * hp["a"] + state["n"], "s": jnp.sum(state["x"]) * hp["a"]}


def loop_reference(state, hp):
    """The same map as a plain NumPy loop over settings and seeds."""
    g, s = state["n"].shape
    y = np.zeros((g, s, 3), np.float32)
    total = np.zeros((g, s), np.float32)
    for i in range(g):
        for j in range(s):
            x = np.asarray(state["x"][i, j])
            y[i, j] = np.sin(x) * float(hp["a"][i]) + float(state["n"][i, j])
            total[i, j] = x.sum() * float(hp["a"][i])
    return y, total


@pytest.mark.parametrize("runs_per_batch", [None, 1, 3, 4, 8])
def test_map_over_runs_equals_loop(runs_per_batch):
    key = jax.random.key(0)
    state = {"x": jax.random.normal(key, (2, 4, 3)), "n": jnp.arange(8.0).reshape(2, 4)}
    hp = {"a": jnp.array([0.5, -2.0])}
    out = jax.jit(map_over_runs(per_run, runs_per_batch))(state, hp)  # 3 leaves a remainder batch of 2
    y, total = loop_reference(state, hp)
    np.testing.assert_allclose(out["y"], y, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out["s"], total, rtol=1e-6, atol=1e-6)


def test_map_over_runs_with_one_setting_equals_loop_and_the_two_level_vmap():
    """One setting takes a single vmap over seeds (a cheaper trace): same values as the loop and bit-equal to
    the two-level vmap it replaces."""
    state = {"x": jax.random.normal(jax.random.key(1), (1, 4, 3)), "n": jnp.arange(4.0).reshape(1, 4)}
    hp = {"a": jnp.array([0.7])}
    out = jax.jit(map_over_runs(per_run, None))(state, hp)
    y, total = loop_reference(state, hp)
    np.testing.assert_allclose(out["y"], y, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out["s"], total, rtol=1e-6, atol=1e-6)
    two_level = jax.jit(jax.vmap(jax.vmap(per_run, in_axes=(0, None)), in_axes=(0, 0)))(state, hp)
    for name in out:
        np.testing.assert_array_equal(out[name], two_level[name])
    jaxpr = str(jax.make_jaxpr(map_over_runs(lambda s, h: jax.lax.scan(lambda c, _: (c + h["a"], c), s["n"], None, 2)[1], None))(state, hp))
    assert jaxpr.count("scan[") == 1


def test_map_over_runs_under_vmap():
    state = {"x": jnp.ones((5, 2, 4, 3)), "n": jnp.zeros((5, 2, 4))}
    hp = {"a": jnp.ones((5, 2))}
    out = jax.vmap(map_over_runs(per_run, 3))(state, hp)
    assert out["y"].shape == (5, 2, 4, 3) and out["s"].shape == (5, 2, 4)
    np.testing.assert_allclose(out["s"], 3.0)


def test_resolve_seeds_per_batch():
    assert resolve_seeds_per_batch("auto", CPU_SEEDS_PER_BATCH + 1, "cpu") == CPU_SEEDS_PER_BATCH
    assert resolve_seeds_per_batch("auto", CPU_SEEDS_PER_BATCH, "cpu") is None
    assert resolve_seeds_per_batch("auto", 4096, "gpu") is None
    assert resolve_seeds_per_batch(None, 4096, "cpu") is None
    assert resolve_seeds_per_batch(16, 100, "gpu") == 16
    assert resolve_seeds_per_batch(100, 100, "cpu") is None
    for bad in (0, -3, 2.5, True, "fast"):
        with pytest.raises(ValueError, match="seeds_per_batch"):
            resolve_seeds_per_batch(bad, 10, "cpu")


def test_run_batched_equals_wide_vmap():
    config = ppo.PPOConfig(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 4, update_epochs=2, num_minibatches=2,
                           hidden_sizes=(16, 16))
    settings = [ppo.PPOHParams(lr=lr) for lr in (1e-3, 3e-3)]
    common = dict(num_seeds=3, config=config, hparams=settings, progress=False)
    wide = experiment.run("ppo", "CartPole-v1", seeds_per_batch=None, **common)
    batched = experiment.run("ppo", "CartPole-v1", seeds_per_batch=4, **common)  # 6 runs: batches of 4 and 2
    for name in ("loss", "policy_loss", "value_loss", "approx_kl", "episode_return"):
        np.testing.assert_allclose(batched.metrics[name], wide.metrics[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_run_rejects_bad_seeds_per_batch_before_compiling():
    with pytest.raises(ValueError, match="seeds_per_batch"):
        experiment.run("ppo", "CartPole-v1", num_seeds=2, seeds_per_batch=0, progress=False)
