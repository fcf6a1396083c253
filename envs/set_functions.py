"""Monotone submodular set functions over grid cells, and their marginal gains.

SubRL / SubPO (Prajapat, Mutný, Zeilinger, Krause, "Submodular Reinforcement Learning", ICLR 2024,
arXiv:2307.13372) scores a trajectory by a monotone submodular function ``F`` of the *set* of states it visits
and trains on the marginal gains ``Δ_j = F(τ_{0:j} ∪ {s_{j+1}}) − F(τ_{0:j})``.

Conventions (``N`` = number of cells, ``x`` = one cell index, an int32 scalar):

- a set is a visited mask ``visited: [N]`` (bool, or 0/1 numbers);
- every function here works on **one** set; batch with ``jax.vmap`` (all are pure ``jnp`` code and run under
  ``jit`` and ``vmap``);
- ``*_value(visited, ...) -> []`` is ``F(A)``; ``*_gain(visited, x, ...) -> []`` is ``F(A ∪ {x}) − F(A)``
  (zero when ``x ∈ A``);
- the ``*_from_*`` variants are the incremental forms environments use: they keep a small summary of ``A``
  (covered mask, best similarity, group counts, inverse Cholesky factor) and cost ``O(N)`` or ``O(C²)`` per step.

Log-determinant functions never call a LAPACK decomposition (batched Cholesky/QR/slogdet under ``vmap`` can
deadlock jaxlib's CPU thread pool on small machines): they use the chain rule
``logdet(K_AA + σ²I) = Σ_j log(conditional variance of a_j given a_1..a_{j−1})`` with an inverse Cholesky factor
that is grown by matrix-vector products only.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

# −log2(1e-3): the offset SubRL adds per visited state so that the GP information objective stays ≥ 0 [C].
ENTROPY_OFFSET = 9.965784


def _as_float(visited: Array) -> Array:
    return jnp.asarray(visited).astype(jnp.float32)


def marginal_gain(value_fn: Callable[[Array], Array], visited: Array, x: Array) -> Array:
    """Generic ``F(A ∪ {x}) − F(A)`` from any set function ``value_fn(visited [N]) -> []``.

    Costs two evaluations of ``F``; the specialised ``*_gain`` functions below are cheaper.
    """
    visited = jnp.asarray(visited, bool)
    return value_fn(visited.at[x].set(True)) - value_fn(visited)


# ----------------------------------------------------------------------------------------------------------------
# Weighted coverage
# ----------------------------------------------------------------------------------------------------------------


def disc_footprint(cell: Array, nrows: int, ncols: int, size: int) -> Array:
    """Footprint ``D(s)`` of ``cell``: the ``size × size`` block with offsets ``0..size−1`` in (row, col), clipped.

    ``size=2`` is SubRL's "small" disc ``{s, s+(0,1), s+(1,0), s+(1,1)}``; ``size=3`` its "large" disc [C].
    Returns a bool mask ``[nrows·ncols]``; jittable (``cell`` may be traced, the sizes are static).
    """
    n = jnp.arange(nrows * ncols)
    dr = n // ncols - cell // ncols
    dc = n % ncols - cell % ncols
    return (dr >= 0) & (dr < size) & (dc >= 0) & (dc < size)


def disc_footprints(nrows: int, ncols: int, size: int) -> Array:
    """All footprints as a bool matrix ``D: [N, N]`` with ``D[s, n] = n ∈ D(s)``."""
    return jax.vmap(lambda s: disc_footprint(s, nrows, ncols, size))(jnp.arange(nrows * ncols))


def coverage_value(visited: Array, footprints: Array, weights: Array) -> Array:
    """Weighted coverage ``F(A) = Σ_{n ∈ ∪_{s∈A} D(s)} w(n)``.

    Args: ``visited [N]``, ``footprints [N, M]`` (``D[s, n]``), ``weights [M]`` (≥ 0). Returns ``[]``.
    Monotone submodular for ``w ≥ 0`` (a weighted set cover).
    """
    covered = (_as_float(visited) @ jnp.asarray(footprints, jnp.float32)) > 0
    return jnp.sum(jnp.where(covered, weights, 0.0))


def coverage_gain_from_covered(covered: Array, footprint: Array, weights: Array) -> Array:
    """Incremental coverage gain ``Σ_n w(n) · D(x)[n] · (1 − covered[n])``.

    Args: ``covered [M]`` (bool, the union of footprints of ``A``), ``footprint [M]`` (bool, ``D(x)``),
    ``weights [M]``. Returns ``[]``.
    """
    return jnp.sum(jnp.where(footprint & ~covered, weights, 0.0))


def coverage_gain(visited: Array, x: Array, footprints: Array, weights: Array) -> Array:
    """``F(A ∪ {x}) − F(A)`` for :func:`coverage_value`. Shapes as there; ``x`` an int scalar."""
    footprints = jnp.asarray(footprints)
    covered = (_as_float(visited) @ footprints.astype(jnp.float32)) > 0
    return coverage_gain_from_covered(covered, footprints[x].astype(bool), weights)


# ----------------------------------------------------------------------------------------------------------------
# Facility location
# ----------------------------------------------------------------------------------------------------------------


def facility_location_value(visited: Array, similarity: Array, weights: Array) -> Array:
    """Facility location ``F(A) = Σ_m w(m) · max_{s∈A} S[m, s]`` (``F(∅) = 0``).

    Args: ``visited [N]``, ``similarity [M, N]`` (≥ 0; ``S[m, s]`` = how well a facility at ``s`` serves
    demand point ``m``), ``weights [M]`` (≥ 0). Returns ``[]``. Monotone submodular for ``S, w ≥ 0``.
    """
    sim = jnp.where(jnp.asarray(visited, bool)[None, :], similarity, 0.0)
    return jnp.sum(weights * jnp.max(sim, axis=1, initial=0.0))


def facility_location_gain_from_best(best: Array, column: Array, weights: Array) -> Array:
    """Incremental gain ``Σ_m w(m) · max(0, S[m, x] − best[m])``.

    Args: ``best [M]`` (``max_{s∈A} S[m, s]``, 0 for the empty set), ``column [M]`` (``S[:, x]``),
    ``weights [M]``. Returns ``[]``.
    """
    return jnp.sum(weights * jnp.maximum(column - best, 0.0))


def facility_location_gain(visited: Array, x: Array, similarity: Array, weights: Array) -> Array:
    """``F(A ∪ {x}) − F(A)`` for :func:`facility_location_value`."""
    similarity = jnp.asarray(similarity)
    sim = jnp.where(jnp.asarray(visited, bool)[None, :], similarity, 0.0)
    return facility_location_gain_from_best(jnp.max(sim, axis=1, initial=0.0), similarity[:, x], weights)


def rbf_similarity(coords_a: Array, coords_b: Array, lengthscale: float) -> Array:
    """Gaussian similarity ``exp(−‖a − b‖² / (2ℓ²))``: ``coords_a [A, d]``, ``coords_b [B, d]`` → ``[A, B]``."""
    d2 = jnp.sum((coords_a[:, None, :] - coords_b[None, :, :]) ** 2, axis=-1)
    return jnp.exp(-0.5 * d2 / lengthscale**2)


# ----------------------------------------------------------------------------------------------------------------
# Truncated (Steiner) coverage
# ----------------------------------------------------------------------------------------------------------------


def truncated_coverage_value(visited: Array, groups: Array, demands: Array) -> Array:
    """Steiner covering ``F(A) = Σ_k min(|G_k ∩ A|, d_k)`` (SubRL's ``ret_stiener_covering``) [C].

    Args: ``visited [N]``, ``groups [K, N]`` (bool, ``G_k`` = the cells holding an item of type ``k``),
    ``demands [K]`` (≥ 0). Returns ``[]``. Monotone submodular (a sum of concave functions of counts).
    """
    counts = jnp.asarray(groups, jnp.float32) @ _as_float(visited)
    return jnp.sum(jnp.minimum(counts, demands))


def truncated_coverage_gain_from_counts(counts: Array, group_column: Array, demands: Array) -> Array:
    """Incremental gain for a new cell ``x``: ``Σ_k G_k[x] · [counts_k < d_k]``.

    Args: ``counts [K]`` (``|G_k ∩ A|``), ``group_column [K]`` (bool, ``G[:, x]``), ``demands [K]``.
    The caller must pass zero when ``x ∈ A`` already.
    """
    return jnp.sum(jnp.where(group_column & (counts < demands), 1.0, 0.0))


def truncated_coverage_gain(visited: Array, x: Array, groups: Array, demands: Array) -> Array:
    """``F(A ∪ {x}) − F(A)`` for :func:`truncated_coverage_value`."""
    visited, groups = jnp.asarray(visited, bool), jnp.asarray(groups, bool)
    counts = groups.astype(jnp.float32) @ visited.astype(jnp.float32)
    gain = truncated_coverage_gain_from_counts(counts, groups[:, x], demands)
    return jnp.where(visited[x], 0.0, gain)


# ----------------------------------------------------------------------------------------------------------------
# Gaussian-process information (log-determinant)
# ----------------------------------------------------------------------------------------------------------------


def matern52(coords_a: Array, coords_b: Array, lengthscale: float, variance: float = 1.0) -> Array:
    """Matérn-5/2 kernel ``σ²(1 + √5 r/ℓ + 5r²/(3ℓ²)) exp(−√5 r/ℓ)``: ``[A, d] × [B, d] → [A, B]``."""
    d2 = jnp.sum((coords_a[:, None, :] - coords_b[None, :, :]) ** 2, axis=-1)
    r = jnp.sqrt(jnp.maximum(d2, 1e-30)) / lengthscale
    r = jnp.where(d2 > 0, r, 0.0)
    s5r = jnp.sqrt(5.0) * r
    return variance * (1.0 + s5r + 5.0 / 3.0 * r**2) * jnp.exp(-s5r)


class LogDetCache(NamedTuple):
    """Running Cholesky factorisation of ``K_AA + σ²I`` for the members of ``A`` in the order they were added
    (a member may appear more than once: a multiset).

    ``members [C]`` int32 (cell indices, first ``size`` valid), ``chol [C, C]`` (``L``, lower triangular; rows
    ``≥ size`` are rows of the identity), ``size []`` int32. ``C`` is the capacity (largest set size).
    """

    members: Array
    chol: Array
    size: Array


def logdet_cache_init(capacity: int, dtype=jnp.float32) -> LogDetCache:
    """An empty :class:`LogDetCache` of capacity ``C``."""
    return LogDetCache(jnp.zeros((capacity,), jnp.int32), jnp.eye(capacity, dtype=dtype), jnp.zeros((), jnp.int32))


def _forward_substitution(chol: Array, rhs: Array) -> Array:
    """``L⁻¹ b`` for lower-triangular ``L [C, C]`` by forward substitution (a ``lax.scan`` over rows: no LAPACK,
    and backward stable, unlike multiplying by an explicit inverse factor when ``K_AA`` is nearly singular)."""

    def row(solution: Array, i: Array) -> tuple[Array, None]:
        value = (rhs[i] - jnp.dot(chol[i], solution)) / chol[i, i]  # solution[i:] is still 0
        return solution.at[i].set(value), None

    solution, _ = jax.lax.scan(row, jnp.zeros_like(rhs), jnp.arange(rhs.shape[0]))
    return solution


def _conditional(cache: LogDetCache, x: Array, kernel: Array, noise: float) -> tuple[Array, Array]:
    """``(l, d²)`` with ``l = L⁻¹ k_Ax`` and ``d² = K_xx + σ² − lᵀl`` (the noisy conditional variance).

    When ``x`` is already a member (position ``j``), ``k_Ax = (LLᵀ − σ²I) e_j``, so ``l = Lᵀe_j − σ² w`` and
    ``d² = 2σ² − σ⁴‖w‖²`` with ``w = L⁻¹e_j``: the same values without the catastrophic cancellation of
    ``K_xx + σ² − lᵀl`` at the ``σ²`` scale (in float32 that costs ≈ 0.02 per repeat at σ² = 1e-6).
    """
    capacity = cache.members.shape[0]
    kernel = jnp.asarray(kernel)
    valid = jnp.arange(capacity) < cache.size
    k = jnp.where(valid, kernel[cache.members, x], 0.0)
    l = _forward_substitution(cache.chol, k)
    # K_xx + σ² − k (K_AA + σ²I)⁻¹ k ≥ σ² exactly; the clamp only removes round-off.
    d2 = jnp.maximum(kernel[x, x] + noise - jnp.dot(l, l), noise)
    hits = valid & (cache.members == x)
    position = jnp.argmax(hits)
    w = _forward_substitution(cache.chol, (jnp.arange(capacity) == position).astype(cache.chol.dtype))
    l_repeat = cache.chol[position] - noise * w
    d2_repeat = jnp.maximum(2.0 * noise - noise**2 * jnp.dot(w, w), noise)
    repeat = jnp.any(hits)
    return jnp.where(repeat, l_repeat, l), jnp.where(repeat, d2_repeat, d2)


def logdet_cache_gain(
    cache: LogDetCache, x: Array, kernel: Array, noise: float, offset: float = 0.0
) -> Array:
    """Gain ``½ log(K_xx + σ² − k_Axᵀ (K_AA + σ²I)⁻¹ k_Ax) + offset`` of appending the cell ``x`` to ``A``.

    Equals ``F(A ∪ {x}) − F(A)`` for :func:`logdet_value` when ``x ∉ A`` (set semantics: the caller passes zero
    for members), and the multiset gain ``F(A + x) − F(A)`` of ``½ log det(K_AA + σ²I) + offset·|A|`` when ``x``
    is appended again. Cost ``O(C²)``; matrix-vector products and a forward substitution only.
    """
    _, d2 = _conditional(cache, x, kernel, noise)
    return 0.5 * jnp.log(d2) + offset


def logdet_cache_add(cache: LogDetCache, x: Array, kernel: Array, noise: float, add: Array = True) -> LogDetCache:
    """Append ``x`` to the cache when ``add`` (a bool scalar); otherwise return it unchanged.

    With ``L_new = [[L, 0], [lᵀ, d]]`` the factor grows by the row ``[lᵀ, d]``.
    """
    l, d2 = _conditional(cache, x, kernel, noise)
    row = l.at[cache.size].set(jnp.sqrt(d2))
    add = jnp.asarray(add, bool)
    chol = cache.chol.at[cache.size].set(jnp.where(add, row, cache.chol[cache.size]))
    members = cache.members.at[cache.size].set(jnp.where(add, x, cache.members[cache.size]))
    return LogDetCache(members, chol, cache.size + add.astype(jnp.int32))


def _logdet_scan(visited: Array, kernel: Array, noise: float, offset: float) -> tuple[Array, LogDetCache]:
    kernel = jnp.asarray(kernel)
    n = kernel.shape[0]
    visited = jnp.asarray(visited, bool)

    def body(carry, j):
        cache, total = carry
        gain = jnp.where(visited[j], logdet_cache_gain(cache, j, kernel, noise, offset), 0.0)
        return (logdet_cache_add(cache, j, kernel, noise, visited[j]), total + gain), None

    (cache, total), _ = jax.lax.scan(body, (logdet_cache_init(n, kernel.dtype), jnp.zeros((), kernel.dtype)),
                                     jnp.arange(n))
    return total, cache


def logdet_value(visited: Array, kernel: Array, noise: float = 1e-6, offset: float = ENTROPY_OFFSET) -> Array:
    """GP information ``F(A) = ½ log det(K_AA + σ² I) + offset · |A|`` (SubRL's ``ret_entropy``, set form).

    Args: ``visited [N]``, ``kernel [N, N]`` (PSD covariance), ``noise`` σ² (> 0), ``offset`` per element.
    Returns ``[]`` (``F(∅) = 0``). Monotone when ``½ log σ² + offset ≥ 0`` (true for SubRL's σ² = 1e-6 and
    offset 9.965784) and submodular (Gaussian entropy is submodular; the offset is modular).
    Computed by the chain rule over the members in index order, ``O(N³)``: meant for small ``N`` and tests;
    environments use :class:`LogDetCache` incrementally.
    """
    return _logdet_scan(visited, kernel, noise, offset)[0]


def logdet_gain(
    visited: Array, x: Array, kernel: Array, noise: float = 1e-6, offset: float = ENTROPY_OFFSET
) -> Array:
    """``F(A ∪ {x}) − F(A)`` for :func:`logdet_value`: ``½ log(conditional variance of x given A) + offset``."""
    _, cache = _logdet_scan(visited, kernel, noise, offset)
    return jnp.where(jnp.asarray(visited, bool)[x], 0.0, logdet_cache_gain(cache, x, kernel, noise, offset))


def gp_posterior_covariance(
    coords: np.ndarray, observed: np.ndarray, lengthscale: float, noise: float, variance: float = 1.0
) -> np.ndarray:
    """Host-side (NumPy, float64) GP posterior covariance ``K − K_{·O}(K_OO + noise I)⁻¹K_{O·}``.

    Args: ``coords [N, d]``, ``observed [P, d]``. Returns ``[N, N]``. Used to build instances, not in a jit.
    """
    def kern(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        r = np.sqrt(np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)) / lengthscale
        return variance * (1.0 + np.sqrt(5.0) * r + 5.0 / 3.0 * r**2) * np.exp(-np.sqrt(5.0) * r)

    coords, observed = np.asarray(coords, np.float64), np.asarray(observed, np.float64)
    k, k_no, k_oo = kern(coords, coords), kern(coords, observed), kern(observed, observed)
    post = k - k_no @ np.linalg.solve(k_oo + noise * np.eye(len(observed)), k_no.T)
    return 0.5 * (post + post.T)


# ----------------------------------------------------------------------------------------------------------------
# Modular baseline
# ----------------------------------------------------------------------------------------------------------------


def modular_value(visit_counts: Array, singleton_values: Array) -> Array:
    """Modular (additive, with multiplicity) baseline ``Σ_s count(s) · v(s)``: ``[N] · [N] → []``."""
    return jnp.sum(jnp.asarray(visit_counts, jnp.float32) * singleton_values)
