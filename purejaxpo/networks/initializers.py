"""A vmap-safe orthogonal initializer.

On 2-core machines jaxlib 0.10.2 can deadlock when several *batched* LAPACK QR decompositions run at
once (``jax.jit(jax.vmap(init))`` over seeds of a network with orthogonal weights; see DESIGN.md). Our QR
is wrapped in ``jax.custom_batching.custom_vmap`` whose batching rule loops over the batch with
``lax.map``, so the QR kernel is never batched — however many ``vmap``s (seeds, hyperparameter grids)
wrap the initializer. Numerically it is the standard construction (Saxe et al. 2014): the Q factor of a
Gaussian matrix with the signs of R's diagonal folded in, times ``scale``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap


@custom_vmap
def _haar_q(gaussian: jax.Array) -> jax.Array:
    """Q of ``gaussian = QR`` with ``diag(R) > 0`` (Haar-distributed); ``[rows, cols]``, rows ≥ cols."""
    q, r = jnp.linalg.qr(gaussian)
    return q * jnp.sign(jnp.diagonal(r))[None, :]


@_haar_q.def_vmap
def _haar_q_vmap(axis_size: int, in_batched: list[bool], gaussian: jax.Array) -> tuple[jax.Array, bool]:
    (batched,) = in_batched
    if not batched:
        return _haar_q(gaussian), False
    return jax.lax.map(_haar_q, gaussian), True


def orthogonal(scale: float = 1.0) -> Any:
    """``init(key, shape, dtype) -> array``: a (semi-)orthogonal matrix scaled by ``scale``; the last axis
    is the output axis and all leading axes are flattened into the input axis (as flax's initializer)."""

    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        num_rows = 1
        for dim in shape[:-1]:
            num_rows *= dim
        num_cols = shape[-1]
        tall = (max(num_rows, num_cols), min(num_rows, num_cols))
        q = _haar_q(jax.random.normal(key, tall, jnp.float32))
        if num_rows < num_cols:
            q = q.T
        return (scale * q).reshape(shape).astype(dtype)

    return init
