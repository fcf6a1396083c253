"""Coverage of a stochastic policy over start configurations: pass@k.

``pass@k`` is the fraction of configurations (levels, seeds, start states) that at least one of ``k`` independent
attempts solves. From ``m ≥ k`` attempts per configuration with ``s`` successes, the unbiased estimator (Chen et al.
2021, arXiv:2107.03374, §2.1) is ``1 − C(m − s, k) / C(m, k)``, averaged over configurations.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def pass_at_k(successes: Array, k: int) -> Array:
    """Unbiased pass@k of each configuration from its attempts: ``successes`` ``[..., m]`` (bool or 0/1) → ``[...]``.

    ``1 − C(m − s, k)/C(m, k)`` with ``s`` the number of successes: 1 when fewer than ``k`` attempts failed, and the
    plain success rate for ``k = 1``. Requires ``1 ≤ k ≤ m``."""
    m = successes.shape[-1]
    if not 1 <= k <= m:
        raise ValueError(f"pass@k needs 1 <= k <= m attempts per configuration, got k={k}, m={m}")
    failures = m - jnp.sum(jnp.asarray(successes, jnp.float32), axis=-1)
    # C(f, k) / C(m, k) = Π_{i<k} (f − i)/(m − i), zero once f < k
    none_pass = jnp.prod(jnp.stack([jnp.maximum(failures - i, 0.0) / (m - i) for i in range(k)]), axis=0)
    return 1.0 - none_pass
