"""Chunks of updates that compile once: ``n ≤ chunk`` updates in one compiled call, whatever ``n`` is.

The runner advances every run by a chunk of updates per jitted call. A scan of fixed length would compile
again for a shorter last chunk (976 default PPO updates = 51 chunks of 19 + 7: a second compile of ~5 s),
and again after a resume or at a checkpoint boundary. :func:`updates_upto` instead runs a ``while_loop`` whose
trip count ``n`` is an argument: one compiled program serves every length up to ``chunk``. The per-update
metrics land in a ``[chunk]`` buffer (entries past ``n`` stay zero and are dropped by the caller). The loop
body is the same ``update`` a scan would run, so results do not depend on how a run is split into chunks
(``tests/test_experiment.py::test_resume_is_bit_identical`` compares runs split differently).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp


def updates_upto(update: Callable[[Any, Any], tuple[Any, dict[str, jax.Array]]], chunk: int) -> Callable[..., Any]:
    """``update(state, hp) -> (state, metrics)`` ↦ ``run(state, hp, n) -> (state, metrics [chunk, ...])``.

    ``run`` applies ``update`` ``n`` times (``0 ≤ n ≤ chunk``, a traced int32 scalar that is not batched, so
    ``vmap`` over runs keeps one loop) and stacks the metrics of update ``i`` at row ``i``. ``update`` is wrapped
    in ``jax.jit``: the metric-shape probe and the loop body then share one trace (JAX caches a jitted function's
    trace by its input types; pass an already jitted ``update`` to share it with the caller's own probe), which
    cuts the time to trace a chunk — what a compile-cache hit still pays.
    """
    if chunk <= 0:
        raise ValueError(f"chunk must be positive, got {chunk}")
    update = jax.jit(update)

    def run(state: Any, hp: Any, n: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
        shapes = jax.eval_shape(update, state, hp)[1]
        buffer = jax.tree.map(lambda m: jnp.zeros((chunk, *m.shape), m.dtype), shapes)

        def body(carry: tuple[jax.Array, Any, Any]) -> tuple[jax.Array, Any, Any]:
            i, s, buf = carry
            s, metrics = update(s, hp)
            buf = jax.tree.map(lambda b, m: jax.lax.dynamic_update_index_in_dim(b, m, i, 0), buf, metrics)
            return i + 1, s, buf

        n = jnp.minimum(jnp.asarray(n, jnp.int32), chunk)
        _, state, buffer = jax.lax.while_loop(lambda c: c[0] < n, body, (jnp.int32(0), state, buffer))
        return state, buffer

    return run
