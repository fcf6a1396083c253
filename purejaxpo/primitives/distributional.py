"""Categorical (distributional) value targets: HL-Gauss and two-hot over fixed bins.

Farebrother et al. 2024, "Stop Regressing: Training Value Functions via Classification for Scalable Deep RL"
(arXiv:2403.03950). A scalar target ``y`` becomes a distribution over ``m`` bins with edges
``e_0 < … < e_m`` and centres ``c_i = (e_i + e_{i+1})/2``; the critic outputs ``m`` logits, is trained by
cross-entropy, and reads its value out as the categorical mean ``Σ_i softmax(logits)_i c_i``.
Hyper++ default (Klein et al. 2025, ``hl_gauss.py``): 51 bins on ``[−10, 10]``, ``σ = 0.75`` bin widths.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erf

Array = jax.Array


def bin_edges(v_min: float, v_max: float, num_bins: int) -> np.ndarray:
    """``num_bins + 1`` evenly spaced edges ``linspace(v_min, v_max, num_bins + 1)`` (float32 NumPy)."""
    if not v_max > v_min:
        raise ValueError(f"v_max must exceed v_min, got v_min={v_min}, v_max={v_max}")
    if num_bins < 2:
        raise ValueError(f"num_bins must be >= 2, got {num_bins}")
    return np.linspace(v_min, v_max, num_bins + 1, dtype=np.float32)


def bin_centers(edges: Array) -> Array:
    """``c_i = (e_i + e_{i+1})/2``: ``[m+1] -> [m]``."""
    return 0.5 * (edges[1:] + edges[:-1])


def hl_gauss_probs(y: Array, edges: Array, sigma: float | Array) -> Array:
    """HL-Gauss target: the mass of ``N(y, σ²)`` (``y`` clamped to ``[e_0, e_m]``) in each bin, renormalized
    to the support (Farebrother et al. 2024, §3.1)::

        p_i(y) = [Φ((e_{i+1} − y)/σ) − Φ((e_i − y)/σ)] / [Φ((e_m − y)/σ) − Φ((e_0 − y)/σ)]

    with ``Φ(u) = ½(1 + erf(u/√2))``. ``y [...]``, ``edges [m+1]`` ``-> [..., m]``; sums to 1.
    """
    y = jnp.clip(y, edges[0], edges[-1])[..., None]
    cdf = erf((edges - y) / (jnp.sqrt(2.0) * sigma))  # [..., m+1]; the ½(1 + ·) cancels in the ratio
    z = cdf[..., -1:] - cdf[..., :1]
    return jnp.maximum(cdf[..., 1:] - cdf[..., :-1], 0.0) / z  # erf saturates in float32: no tiny negatives


def two_hot_probs(y: Array, centers: Array) -> Array:
    """Two-hot target: mass split between the two centres around ``y`` (clamped to ``[c_0, c_{m−1}]``) so the
    mean is exactly ``y``. ``y [...]``, ``centers [m]`` (sorted, evenly spaced or not) ``-> [..., m]``."""
    centers = jnp.asarray(centers)
    y = jnp.clip(y, centers[0], centers[-1])
    upper = jnp.clip(jnp.searchsorted(centers, y, side="right"), 1, centers.shape[0] - 1)
    lower = upper - 1
    weight_upper = (y - centers[lower]) / (centers[upper] - centers[lower])
    m = centers.shape[0]
    return jax.nn.one_hot(lower, m) * (1.0 - weight_upper)[..., None] + jax.nn.one_hot(upper, m) * weight_upper[..., None]


def categorical_cross_entropy(logits: Array, probs: Array) -> Array:
    """``−Σ_i p_i log softmax(logits)_i``: ``[..., m], [..., m] -> [...]``."""
    return -jnp.sum(probs * jax.nn.log_softmax(logits, axis=-1), axis=-1)


def categorical_mean(logits: Array, centers: Array) -> Array:
    """Expected value ``Σ_i softmax(logits)_i c_i``: ``[..., m] -> [...]``."""
    return jnp.sum(jax.nn.softmax(logits, axis=-1) * centers, axis=-1)


def hl_gauss_loss(logits: Array, y: Array, edges: Array, sigma: float | Array) -> Array:
    """Cross-entropy of the critic's logits ``[..., m]`` to the HL-Gauss target of ``y [...]``: ``-> [...]``.
    The target receives no gradient."""
    return categorical_cross_entropy(logits, jax.lax.stop_gradient(hl_gauss_probs(y, edges, sigma)))


def two_hot_loss(logits: Array, y: Array, centers: Array) -> Array:
    """Cross-entropy of ``logits [..., m]`` to the two-hot target of ``y [...]``: ``-> [...]``."""
    return categorical_cross_entropy(logits, jax.lax.stop_gradient(two_hot_probs(y, centers)))
