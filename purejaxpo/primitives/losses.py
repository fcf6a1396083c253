"""Policy and value losses, all *to be minimized* and returned per element (reduce with ``masked_mean``).

Notation: log-ratio ``ℓ = log π_θ(a|s) − log π_old(a|s)``, ratio ``r = exp(ℓ)``, advantage ``Â``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def clipped_surrogate(
    log_ratio: Array, advantages: Array, clip_eps: float | Array, dual_clip: float | Array | None = None
) -> Array:
    """PPO-clip policy loss per element (Schulman et al. 2017, arXiv:1707.06347, eq. 7)::

        L = −min(r Â, clip(r, 1−ε, 1+ε) Â)

    With ``dual_clip = c > 1`` (Ye et al. 2020, arXiv:1912.09729), negative advantages are also bounded::

        L = −max(min(r Â, clip(r) Â), c Â)    where Â < 0

    which caps the loss at ``−c Â`` when ``r`` explodes. For ``Â ≥ 0`` the dual clip changes nothing, and
    ``dual_clip=None`` (or ``c = +inf``) is plain PPO-clip.

    Shapes: ``log_ratio``, ``advantages``: ``[...]`` → ``[...]``.
    """
    ratio = jnp.exp(log_ratio)
    surrogate = jnp.minimum(ratio * advantages, jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages)
    if dual_clip is not None:
        surrogate = jnp.where(advantages < 0, jnp.maximum(surrogate, dual_clip * advantages), surrogate)
    return -surrogate


def value_loss(
    values: Array, targets: Array, old_values: Array | None = None, clip_eps: float | Array | None = None
) -> Array:
    """Squared-error value loss per element, optionally clipped around the rollout's values (PPO2 style)::

        L = ½ (V − R)²                                                       (plain)
        L = ½ max((V − R)², (V_old + clip(V − V_old, −ε, ε) − R)²)           (clipped)

    Clipping is used when both ``old_values`` and ``clip_eps`` are given. Shapes ``[...]`` → ``[...]``.
    """
    loss = jnp.square(values - targets)
    if old_values is not None and clip_eps is not None:
        clipped = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
        loss = jnp.maximum(loss, jnp.square(clipped - targets))
    return 0.5 * loss


def sample_kl(log_ratio: Array, estimator: str = "k3") -> Array:
    """Sample-based estimate of ``KL(π_old ‖ π_θ)`` per element from ``ℓ = log π_θ − log π_old`` at
    actions drawn from ``π_old`` (Schulman, "Approximating KL divergence", 2020)::

        k1 = −ℓ                (unbiased, high variance, can be negative)
        k2 = ½ ℓ²              (biased, low variance; used by PPO-EWMA)
        k3 = (r − 1) − ℓ       (unbiased, ≥ 0, low variance)
    """
    if estimator == "k1":
        return -log_ratio
    if estimator == "k2":
        return 0.5 * jnp.square(log_ratio)
    if estimator == "k3":
        return jnp.expm1(log_ratio) - log_ratio
    raise ValueError(f"unknown KL estimator {estimator!r}; expected 'k1', 'k2' or 'k3'")


def kl_penalty_surrogate(log_ratio: Array, advantages: Array, kl: Array, beta: float | Array) -> Array:
    """KL-penalized surrogate per element (Schulman et al. 2017, §4): ``L = −r Â + β KL``.

    ``kl`` is any per-element KL estimate (analytic or :func:`sample_kl`). With ``β = 0`` this is the
    unclipped surrogate ``−r Â``.
    """
    return -jnp.exp(log_ratio) * advantages + beta * kl


def entropy_loss(entropy: Array) -> Array:
    """Entropy bonus as a loss to minimize: ``−H`` per element."""
    return -entropy


def clip_fraction(log_ratio: Array, clip_eps: float | Array) -> Array:
    """Indicator (float) of ``|r − 1| > ε`` per element: the share of samples the clip is active on."""
    return (jnp.abs(jnp.exp(log_ratio) - 1.0) > clip_eps).astype(log_ratio.dtype)
