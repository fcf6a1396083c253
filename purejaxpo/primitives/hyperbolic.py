"""Hyperbolic geometry in float32-safe pure ``jnp``: the Poincaré ball and the hyperboloid (Lorentz) model.

Both models have constant sectional curvature ``−c`` (``c > 0``). Points are ``[..., d]`` on the ball and
``[..., d+1]`` on the hyperboloid (time coordinate first); every function broadcasts over leading axes.

- Poincaré ball ``B_c = {x : c‖x‖² < 1}`` with conformal factor ``λ_x = 2 / (1 − c‖x‖²)``
  (Ganea, Bécigneul & Hofmann 2018, "Hyperbolic Neural Networks", arXiv:1805.09112).
- Hyperboloid ``L_c = {x : ⟨x,x⟩_L = −1/c, x₀ > 0}``, ``⟨x,y⟩_L = −x₀y₀ + Σ_{i≥1} x_i y_i``, origin
  ``o = (1/√c, 0, …, 0)`` (Bdeir, Schwethelm & Landwehr 2023, "Fully Hyperbolic CNNs", arXiv:2303.15919).

Numerical care (float32): norms are floored at ``MIN_NORM`` before dividing; ``artanh`` arguments are
clipped to ``1 − 1e-6``-ish (:func:`artanh`), which also bounds gradients; points are projected back inside the
ball at radius ``(1 − BALL_EPS)/√c``; ``cosh``/``sinh`` arguments are smoothly clamped below ``COSH_MAX``
so nothing overflows (also ``‖x_{1:}‖²`` and ``x₀ sinh(r)``); ``acosh`` arguments are floored at ``1 + 1e-7``. The hyperbolic MLR layers'
``asinh`` argument uses the smooth clamp ``κ = ln(2/eps_float32) ≈ 16.6`` of the Hyper++ reference code
(its float64 heads use ``κ ≈ 36.7``; we stay in float32 and document the smaller range).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

Array = jax.Array

MIN_NORM = 1e-15
BALL_EPS = 4e-3  # float32: stay at radius (1 − 4e-3)/√c inside the ball, geoopt's float32 margin
ARTANH_EPS = 1e-6
COSH_MAX = 40.0  # sinh(40)² ≈ 1e34 < float32 max 3.4e38, so ‖x_{1:}‖² in the back-projection is finite
MLR_KAPPA_F32 = math.log(2.0 / float(jnp.finfo(jnp.float32).eps))  # ≈ 16.6, Hyper++'s clamp for float32
MLR_KAPPA_F64 = math.log(2.0 / float(jnp.finfo(jnp.float64).eps))  # ≈ 36.7 (reference float64 heads)


def _norm(x: Array, axis: int = -1, keepdims: bool = True) -> Array:
    """``max(‖x‖₂, MIN_NORM)`` with a finite gradient at ``x = 0`` (``sqrt`` of a floored square)."""
    return jnp.sqrt(jnp.maximum(jnp.sum(jnp.square(x), axis=axis, keepdims=keepdims), MIN_NORM**2))


def artanh(x: Array, eps: float = ARTANH_EPS) -> Array:
    """``artanh(clip(x, −1+eps, 1−eps)) = ½ log((1+x)/(1−x))`` via ``log1p``; finite value and gradient."""
    x = jnp.clip(x, -1.0 + eps, 1.0 - eps)
    return 0.5 * (jnp.log1p(x) - jnp.log1p(-x))


def smooth_clamp_max(x: Array, high: float, beta: float = 50.0) -> Array:
    """``high − softplus_β(high − x)`` (``softplus_β(u) = log(1 + e^{βu})/β``): ≈ ``x`` well below ``high``,
    never above it, smooth everywhere (Hyper++ ``helpers.py`` SmoothClamp, β = ``smoothing_factor`` = 50)."""
    return high - jax.nn.softplus(beta * (high - x)) / beta


def smooth_clamp(x: Array, bound: float, beta: float = 50.0) -> Array:
    """Two-sided :func:`smooth_clamp_max` to ``[−bound, bound]``; identity to float32 precision for
    ``|x| < bound − 1`` when β = 50."""
    return -smooth_clamp_max(-smooth_clamp_max(x, bound, beta), bound, beta)


# ------------------------------------------------------------------------------------------------------------
# Poincaré ball
# ------------------------------------------------------------------------------------------------------------


def poincare_project(x: Array, c: float | Array = 1.0, eps: float = BALL_EPS) -> Array:
    """Rescale points with ``‖x‖ > (1 − eps)/√c`` onto that radius; others unchanged. ``[..., d]``."""
    max_norm = (1.0 - eps) / jnp.sqrt(c)
    norm = _norm(x)
    return jnp.where(norm > max_norm, x / norm * max_norm, x)


def poincare_expmap0(v: Array, c: float | Array = 1.0) -> Array:
    """``exp_0(v) = tanh(√c‖v‖) v / (√c‖v‖)``, projected into the ball. ``v [..., d] -> [..., d]``."""
    sqrt_c = jnp.sqrt(c)
    norm = _norm(v)
    return poincare_project(jnp.tanh(sqrt_c * norm) * v / (sqrt_c * norm), c)


def poincare_logmap0(x: Array, c: float | Array = 1.0) -> Array:
    """``log_0(x) = artanh(√c‖x‖) x / (√c‖x‖)``, the inverse of :func:`poincare_expmap0`. ``[..., d]``."""
    sqrt_c = jnp.sqrt(c)
    norm = _norm(x)
    return artanh(sqrt_c * norm) * x / (sqrt_c * norm)


def mobius_add(x: Array, y: Array, c: float | Array = 1.0) -> Array:
    """Möbius addition (Ganea et al. 2018, eq. 4)::

        x ⊕_c y = ((1 + 2c⟨x,y⟩ + c‖y‖²) x + (1 − c‖x‖²) y) / (1 + 2c⟨x,y⟩ + c²‖x‖²‖y‖²)

    ``x, y [..., d]`` (broadcast) ``-> [..., d]``; ``0 ⊕ y = y``, ``x ⊕ 0 = x``, ``(−x) ⊕ x = 0``.
    """
    xy = jnp.sum(x * y, axis=-1, keepdims=True)
    x2 = jnp.sum(x * x, axis=-1, keepdims=True)
    y2 = jnp.sum(y * y, axis=-1, keepdims=True)
    num = (1.0 + 2.0 * c * xy + c * y2) * x + (1.0 - c * x2) * y
    den = 1.0 + 2.0 * c * xy + c**2 * x2 * y2
    return num / jnp.maximum(den, MIN_NORM)


def mobius_matvec(m: Array, x: Array, c: float | Array = 1.0) -> Array:
    """Möbius matrix-vector product (Ganea et al. 2018, eq. 8) with ``m [d_out, d_in]``, ``x [..., d_in]``::

        M ⊗_c x = tanh(‖Mx‖/‖x‖ · artanh(√c‖x‖)) Mx / (√c‖Mx‖)    (= exp_0(M log_0(x)))

    Rows with ``Mx = 0`` map to the origin. Output ``[..., d_out]``, projected into the ball.
    """
    sqrt_c = jnp.sqrt(c)
    mx = jnp.einsum("oi,...i->...o", m, x)
    x_norm, mx_norm = _norm(x), _norm(mx)
    out = jnp.tanh(mx_norm / x_norm * artanh(sqrt_c * x_norm)) * mx / (mx_norm * sqrt_c)
    zero = jnp.all(mx == 0, axis=-1, keepdims=True)
    return poincare_project(jnp.where(zero, 0.0, out), c)


def poincare_distance(x: Array, y: Array, c: float | Array = 1.0) -> Array:
    """``d_c(x, y) = (2/√c) artanh(√c ‖(−x) ⊕_c y‖)``. ``[..., d] -> [...]``."""
    sqrt_c = jnp.sqrt(c)
    return 2.0 / sqrt_c * artanh(sqrt_c * _norm(mobius_add(-x, y, c), keepdims=False))


def poincare_mlr(x: Array, a: Array, p: Array, c: float | Array = 1.0) -> Array:
    """Signed, scaled distance of ``x`` to K Poincaré hyperplanes (Ganea et al. 2018, §3.1; geoopt's
    ``dist2plane(signed=True, scaled=True)``, as Hyper+S-RYM's head)::

        δ_k     = (−p_k) ⊕_c x
        logit_k = ‖a_k‖ / √c · asinh( 2√c ⟨δ_k, a_k⟩ / ((1 − c‖δ_k‖²) ‖a_k‖) )

    ``x [..., d]`` on the ball, normals ``a [K, d]``, offsets ``p [K, d]`` on the ball ``-> [..., K]``. Ganea's
    MLR multiplies by the conformal factor ``λ_{p_k}`` as well; with ``p = 0`` that is a constant 2 (not applied
    here, as in the reference layer).
    """
    sqrt_c = jnp.sqrt(c)
    delta = mobius_add(-p, x[..., None, :], c)  # [..., K, d]
    a_norm = _norm(a, keepdims=False)  # [K]
    delta2 = jnp.sum(delta * delta, axis=-1)
    inner = jnp.sum(delta * a, axis=-1)
    arg = 2.0 * sqrt_c * inner / (jnp.maximum(1.0 - c * delta2, MIN_NORM) * a_norm)
    return a_norm / sqrt_c * jnp.arcsinh(arg)


# ------------------------------------------------------------------------------------------------------------
# Hyperboloid (Lorentz) model
# ------------------------------------------------------------------------------------------------------------


def minkowski_dot(x: Array, y: Array, keepdims: bool = False) -> Array:
    """``⟨x,y⟩_L = −x₀y₀ + Σ_{i≥1} x_i y_i``. ``[..., d+1] -> [...]`` (or ``[..., 1]``)."""
    out = jnp.sum(x[..., 1:] * y[..., 1:], axis=-1) - x[..., 0] * y[..., 0]
    return out[..., None] if keepdims else out


def lorentz_project(x: Array, c: float | Array = 1.0) -> Array:
    """Back-project onto the hyperboloid by recomputing the time coordinate:
    ``x₀ ← sqrt(‖x_{1:}‖² + 1/c)``. ``[..., d+1] -> [..., d+1]``."""
    space = x[..., 1:]
    time = jnp.sqrt(jnp.sum(space * space, axis=-1, keepdims=True) + 1.0 / c)
    return jnp.concatenate([time, space], axis=-1)


def lorentz_expmap0(v: Array, c: float | Array = 1.0) -> Array:
    """Exponential map at the origin of the tangent vector ``(0, v)``, ``v [..., d] -> x [..., d+1]``::

        exp_o(v) = ( cosh(√c‖v‖)/√c ,  sinh(√c‖v‖) v / (√c‖v‖) ),   then x₀ ← sqrt(‖x_{1:}‖² + 1/c)

    ``√c‖v‖`` is smoothly clamped below ``COSH_MAX`` so ``sinh`` cannot overflow float32.
    """
    sqrt_c = jnp.sqrt(c)
    norm = _norm(v)
    theta = smooth_clamp_max(sqrt_c * norm, COSH_MAX)
    space = jnp.sinh(theta) * v / (sqrt_c * norm)
    return lorentz_project(jnp.concatenate([jnp.zeros_like(norm), space], axis=-1), c)


def lorentz_logmap0(x: Array, c: float | Array = 1.0) -> Array:
    """Inverse of :func:`lorentz_expmap0`: the spatial part of ``log_o(x)``, ``[..., d+1] -> [..., d]``::

        log_o(x)_{1:} = asinh(√c‖x_{1:}‖) x_{1:} / (√c‖x_{1:}‖)

    (``asinh`` of the spatial norm instead of ``acosh(√c x₀)``: exact on the manifold and well-conditioned
    near the origin.)
    """
    sqrt_c = jnp.sqrt(c)
    space = x[..., 1:]
    norm = _norm(space)
    return jnp.arcsinh(sqrt_c * norm) * space / (sqrt_c * norm)


def lorentz_distance(x: Array, y: Array, c: float | Array = 1.0) -> Array:
    """``d_c(x, y) = acosh(−c⟨x,y⟩_L)/√c`` (argument floored at ``1 + 1e-7``). ``[..., d+1] -> [...]``."""
    return jnp.arccosh(jnp.maximum(-c * minkowski_dot(x, y), 1.0 + 1e-7)) / jnp.sqrt(c)


def lorentz_to_poincare(x: Array, c: float | Array = 1.0) -> Array:
    """The isometry ``L_c → B_c``: ``y = x_{1:} / (1 + √c x₀)``. ``[..., d+1] -> [..., d]``."""
    return x[..., 1:] / (1.0 + jnp.sqrt(c) * x[..., :1])


def poincare_to_lorentz(y: Array, c: float | Array = 1.0) -> Array:
    """Inverse of :func:`lorentz_to_poincare`: ``x = ((1 + c‖y‖²)/√c, 2y) / (1 − c‖y‖²)``."""
    y2 = jnp.sum(y * y, axis=-1, keepdims=True)
    den = jnp.maximum(1.0 - c * y2, MIN_NORM)
    return jnp.concatenate([(1.0 + c * y2) / jnp.sqrt(c), 2.0 * y], axis=-1) / den


def lorentz_mlr(
    x: Array,
    z: Array,
    r: Array,
    c: float | Array = 1.0,
    kappa: float = MLR_KAPPA_F32,
    beta: float = 50.0,
) -> Array:
    """Lorentz multinomial logistic regression (Bdeir et al. 2023, eq. 11; the Hyper++ head)::

        α_k     = −x₀ sinh(√c r_k) ‖z_k‖ + cosh(√c r_k) ⟨z_k, x_{1:}⟩
        logit_k = ‖z_k‖ / √c · asinh( SmoothClamp(√c α_k / ‖z_k‖, ±κ) )

    ``x [..., d+1]`` on the hyperboloid, normals ``z [K, d]`` (tangent at the origin, time part omitted),
    offsets ``r [K]`` (signed distance of the hyperplane from the origin along ``z_k``) ``-> [..., K]``.
    For ``r = 0`` and ``x = exp_o(t ẑ)`` with unit ``ẑ``: ``logit = t`` (the signed distance). The logit equals
    :func:`poincare_mlr` with ``p = 0`` at the isometric image of ``x`` when ``r = 0``. The ``cosh``/``sinh``
    arguments are smoothly clamped to ``±COSH_MAX``.
    """
    sqrt_c = jnp.sqrt(c)
    z_norm = _norm(z, keepdims=False)  # [K]
    theta = smooth_clamp(sqrt_c * r, COSH_MAX, beta)
    inner = jnp.einsum("...d,kd->...k", x[..., 1:], z)
    alpha = -x[..., :1] * jnp.sinh(theta) * z_norm + jnp.cosh(theta) * inner
    arg = smooth_clamp(sqrt_c * alpha / z_norm, kappa, beta)
    return z_norm / sqrt_c * jnp.arcsinh(arg)
