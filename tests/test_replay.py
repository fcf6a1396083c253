"""The pure circular replay buffer: insert order, wrap-around, sampling only filled slots, jit and vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxpo.replay import replay_add, replay_init, replay_sample

EXAMPLE = {"obs": jnp.zeros((2,)), "reward": jnp.zeros(())}


def items(values):
    values = jnp.asarray(values, jnp.float32)
    return {"obs": jnp.stack([values, -values], axis=-1), "reward": values}


def test_init_shapes_and_empty():
    buf = replay_init(EXAMPLE, 5)
    assert buf.data["obs"].shape == (5, 2) and buf.data["reward"].shape == (5,)
    assert int(buf.size) == 0 and int(buf.position) == 0 and buf.capacity == 5


def test_add_in_order_then_wrap_around():
    buf = replay_add(replay_init(EXAMPLE, 5), items([1, 2, 3]))
    np.testing.assert_array_equal(buf.data["reward"], [1, 2, 3, 0, 0])
    assert (int(buf.position), int(buf.size)) == (3, 3)
    # 4 more: slots 3, 4, then wrap to 0, 1 (oldest items 1, 2 overwritten); item 3 survives in slot 2.
    buf = replay_add(buf, items([4, 5, 6, 7]))
    np.testing.assert_array_equal(buf.data["reward"], [6, 7, 3, 4, 5])
    np.testing.assert_array_equal(buf.data["obs"][:, 1], [-6, -7, -3, -4, -5])
    assert (int(buf.position), int(buf.size)) == (2, 5)


def test_sample_only_filled_slots():
    buf = replay_add(replay_init(EXAMPLE, 100), items([1, 2, 3]))
    batch = replay_sample(buf, jax.random.key(0), 2000)
    values = np.asarray(batch["reward"])
    assert set(np.unique(values)) == {1.0, 2.0, 3.0}  # never an empty (zero) slot, every filled slot reachable
    np.testing.assert_allclose(np.bincount(values.astype(int))[1:] / 2000, 1 / 3, atol=0.05)  # uniform
    np.testing.assert_array_equal(batch["obs"][:, 0], values)  # leaves stay aligned


def test_jit_matches_plain():
    buf = replay_add(replay_init(EXAMPLE, 4), items([1, 2, 3]))
    plain = replay_sample(replay_add(buf, items([8, 9])), jax.random.key(1), 16)
    jitted = jax.jit(lambda b, x, k: replay_sample(replay_add(b, x), k, 16))(buf, items([8, 9]), jax.random.key(1))
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(jitted)):
        np.testing.assert_array_equal(a, b)


def test_vmap_over_seeds_keeps_buffers_separate():
    """Three seeds, each with its own buffer (capacity 4) filled past wrap-around: every seed holds and
    samples only its own items, and seed i equals the same operations run alone."""
    seeds = jnp.arange(3, dtype=jnp.float32)

    def fill(seed, key):
        buf = replay_init(EXAMPLE, 4)
        buf = replay_add(buf, items(100 * seed + jnp.arange(1, 4)))  # 3 items
        buf = replay_add(buf, items(100 * seed + jnp.arange(4, 6)))  # 2 more: wraps, overwrites item 1
        return buf, replay_sample(buf, key, 256)

    keys = jax.random.split(jax.random.key(0), 3)
    bufs, samples = jax.jit(jax.vmap(fill))(seeds, keys)
    np.testing.assert_array_equal(bufs.position, [1, 1, 1])
    np.testing.assert_array_equal(bufs.size, [4, 4, 4])
    for i in range(3):
        expected = {100 * i + v for v in (2, 3, 4, 5)}
        np.testing.assert_array_equal(np.sort(bufs.data["reward"][i]), sorted(expected))
        assert set(np.asarray(samples["reward"][i]).tolist()) == expected
        alone_buf, alone_sample = fill(seeds[i], keys[i])
        np.testing.assert_array_equal(alone_buf.data["reward"], bufs.data["reward"][i])
        np.testing.assert_array_equal(alone_sample["reward"], samples["reward"][i])


def test_vmap_with_different_fill_levels():
    """Seeds whose buffers hold different numbers of items sample only their own filled slots."""
    def fill(n_extra):
        buf = replay_add(replay_init(EXAMPLE, 8), items([1, 2]))
        more = replay_add(buf, items([3, 4, 5]))
        return jax.tree.map(lambda a, b: jnp.where(n_extra > 0, a, b), more, buf)

    bufs = jax.vmap(fill)(jnp.array([0, 1]))
    np.testing.assert_array_equal(bufs.size, [2, 5])
    samples = jax.vmap(replay_sample, in_axes=(0, 0, None))(bufs, jax.random.split(jax.random.key(3), 2), 500)
    assert set(np.asarray(samples["reward"][0]).tolist()) == {1.0, 2.0}
    assert set(np.asarray(samples["reward"][1]).tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}


def test_bad_inputs():
    with pytest.raises(ValueError, match="capacity"):
        replay_init(EXAMPLE, 0)
    with pytest.raises(ValueError, match="cannot add 3"):
        replay_add(replay_init(EXAMPLE, 2), items([1, 2, 3]))
