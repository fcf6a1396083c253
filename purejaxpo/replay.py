"""A pure, fixed-capacity circular replay buffer over a pytree of arrays.

``replay_init / replay_add / replay_sample`` are pure functions on :class:`ReplayState`, so a buffer is an
ordinary pytree leaf of a training state: it jits, scans and ``vmap``s over seeds (each seed its own buffer
with its own ``position``/``size``). We write our own rather than use flashbax (not installed here); the
semantics are the usual ones:

- ``add`` writes ``N`` items at ``position, …, position + N − 1`` modulo the capacity (oldest overwritten);
- ``sample`` draws indices uniformly, with replacement, from the ``size`` filled slots only.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

Array = jax.Array


@struct.dataclass
class ReplayState:
    """``data``: pytree with leaves ``[C, ...]``; ``position``: next slot to write; ``size``: filled slots (≤ C)."""

    data: Any
    position: Array
    size: Array

    @property
    def capacity(self) -> int:
        return jax.tree.leaves(self.data)[0].shape[0]


def replay_init(example: Any, capacity: int) -> ReplayState:
    """An empty buffer for items shaped like ``example`` (one item, no leading axis); leaves ``[C, ...]`` zeros."""
    if not isinstance(capacity, int) or capacity <= 0:
        raise ValueError(f"replay capacity must be a positive integer, got {capacity!r}")
    data = jax.tree.map(lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype), example)
    return ReplayState(data=data, position=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))


def replay_add(state: ReplayState, items: Any) -> ReplayState:
    """Insert a batch ``items`` (leaves ``[N, ...]``, ``N ≤ C``) at the write position, wrapping around."""
    capacity = state.capacity
    num = jax.tree.leaves(items)[0].shape[0]
    if num > capacity:
        raise ValueError(f"cannot add {num} items at once to a buffer of capacity {capacity}")
    index = (state.position + jnp.arange(num, dtype=jnp.int32)) % capacity
    data = jax.tree.map(lambda buf, x: buf.at[index].set(x.astype(buf.dtype)), state.data, items)
    return ReplayState(
        data=data,
        position=(state.position + num) % capacity,
        size=jnp.minimum(state.size + num, capacity),
    )


def replay_sample(state: ReplayState, key: Array, batch_size: int) -> Any:
    """``batch_size`` items drawn uniformly with replacement from the filled slots ``[0, size)``.

    On an empty buffer it returns copies of slot 0 (zeros); callers gate learning on ``size``.
    """
    index = jax.random.randint(key, (batch_size,), 0, jnp.maximum(state.size, 1))
    return jax.tree.map(lambda buf: buf[index], state.data)


__all__ = ["ReplayState", "replay_add", "replay_init", "replay_sample"]
