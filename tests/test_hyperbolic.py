"""Hyperbolic primitives against closed forms and NumPy (float64) references; plain, jit and vmap;
points stay on the manifold; values and gradients finite at large norms."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxpo.primitives import hyperbolic as hyp

CURVATURES = [0.5, 1.0, 2.0]


def np_mobius_add(x, y, c):
    xy, x2, y2 = x @ y, x @ x, y @ y
    return ((1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y) / (1 + 2 * c * xy + c**2 * x2 * y2)


def np_poincare_dist(x, y, c):  # the classic arcosh form, independent of Möbius addition
    num = 2 * c * np.sum((x - y) ** 2)
    return np.arccosh(1 + num / ((1 - c * x @ x) * (1 - c * y @ y))) / np.sqrt(c)


def rand(shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32) * scale


@pytest.mark.parametrize("c", CURVATURES)
def test_poincare_expmap_logmap_closed_form_and_inverse(c):
    v = rand((16, 5), scale=0.3)  # inside the projection radius (1 − 4e-3)/√c
    x = np.asarray(hyp.poincare_expmap0(v, c))
    n = np.linalg.norm(v.astype(np.float64), axis=-1, keepdims=True)
    np.testing.assert_allclose(x, np.tanh(np.sqrt(c) * n) * v / (np.sqrt(c) * n), rtol=1e-5, atol=1e-6)
    assert np.all(c * np.sum(x.astype(np.float64) ** 2, -1) < 1)
    np.testing.assert_allclose(hyp.poincare_logmap0(x, c), v, rtol=1e-4, atol=1e-5)
    # distance from the origin is 2‖v‖ (exp_0 with λ_0 = 2 scales the tangent norm by 2)
    np.testing.assert_allclose(hyp.poincare_distance(np.zeros_like(x), x, c), 2 * n[:, 0], rtol=1e-4)


@pytest.mark.parametrize("c", CURVATURES)
def test_mobius_add_and_distance_against_numpy(c):
    x = np.asarray(hyp.poincare_expmap0(rand((8, 4), 1), c), np.float64)
    y = np.asarray(hyp.poincare_expmap0(rand((8, 4), 2), c), np.float64)
    ref = np.stack([np_mobius_add(a, b, c) for a, b in zip(x, y)])
    np.testing.assert_allclose(hyp.mobius_add(x.astype(np.float32), y.astype(np.float32), c), ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(hyp.mobius_add(-x, x, c), 0.0, atol=1e-5)  # (−x) ⊕ x = 0
    np.testing.assert_allclose(hyp.mobius_add(np.zeros_like(y), y, c), y, atol=1e-6)
    dref = np.array([np_poincare_dist(a, b, c) for a, b in zip(x, y)])
    np.testing.assert_allclose(hyp.poincare_distance(x.astype(np.float32), y.astype(np.float32), c), dref, rtol=1e-3)


def test_mobius_matvec_is_exp_of_matvec_of_log():
    m = rand((3, 4), 3)
    x = np.asarray(hyp.poincare_expmap0(rand((6, 4), 4)))
    ref = hyp.poincare_expmap0(np.asarray(hyp.poincare_logmap0(x)) @ m.T)
    np.testing.assert_allclose(hyp.mobius_matvec(m, x), ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(hyp.mobius_matvec(np.zeros((3, 4), np.float32), x), 0.0)  # Mx = 0 -> origin
    np.testing.assert_allclose(hyp.mobius_matvec(np.eye(4, dtype=np.float32), x), x, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("c", CURVATURES)
def test_lorentz_expmap_on_manifold_inverse_and_distance(c):
    v = rand((16, 5), 5)
    x = np.asarray(hyp.lorentz_expmap0(v, c), np.float64)
    n = np.linalg.norm(v.astype(np.float64), axis=-1)
    sc = np.sqrt(c)
    np.testing.assert_allclose(x[:, 0], np.cosh(sc * n) / sc, rtol=1e-5)  # closed form
    np.testing.assert_allclose(x[:, 1:], (np.sinh(sc * n) / (sc * n))[:, None] * v, rtol=1e-5, atol=1e-6)
    # ⟨x,x⟩_L = −1/c up to float32 cancellation, which grows with x₀²
    np.testing.assert_allclose(-x[:, 0] ** 2 + np.sum(x[:, 1:] ** 2, -1), -1 / c, atol=1e-6 * np.max(x[:, 0] ** 2))
    np.testing.assert_allclose(hyp.lorentz_logmap0(x.astype(np.float32), c), v, rtol=1e-4, atol=1e-5)
    origin = np.zeros_like(x)
    origin[:, 0] = 1 / sc
    np.testing.assert_allclose(hyp.lorentz_distance(origin.astype(np.float32), x.astype(np.float32), c), n, rtol=1e-4)


@pytest.mark.parametrize("c", CURVATURES)
def test_lorentz_poincare_isometry(c):
    x = hyp.lorentz_expmap0(rand((8, 3), 6, 0.8), c)
    y = hyp.lorentz_expmap0(rand((8, 3), 7, 0.8), c)
    px, py = hyp.lorentz_to_poincare(x, c), hyp.lorentz_to_poincare(y, c)
    np.testing.assert_allclose(hyp.poincare_to_lorentz(px, c), x, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(hyp.poincare_distance(px, py, c), hyp.lorentz_distance(x, y, c), rtol=2e-3)
    # exp maps commute with the isometry: exp_0^B(v) = ι(exp_o^L(v/2))... check via the distance to the origin
    v = rand((8, 3), 8, 0.5)
    np.testing.assert_allclose(
        hyp.lorentz_to_poincare(hyp.lorentz_expmap0(v, c), c), hyp.poincare_expmap0(v / 2, c), rtol=1e-4, atol=1e-6
    )


def test_poincare_mlr_hand_worked():
    # c = 1, p = 0, a = (1, 0), x = (0.5, 0): δ = x, arg = 2·0.5/(0.75·1) = 4/3, logit = asinh(4/3) = ln 3,
    # which is also d(0, x) = 2 artanh(0.5) = ln 3: x lies on the normal through the hyperplane's foot.
    x = jnp.array([[0.5, 0.0], [0.0, 0.3], [-0.5, 0.0]])
    a, p = jnp.array([[1.0, 0.0]]), jnp.zeros((1, 2))
    np.testing.assert_allclose(hyp.poincare_mlr(x, a, p)[:, 0], [math.log(3), 0.0, -math.log(3)], rtol=1e-6, atol=1e-7)
    # ‖a‖ scales the logit linearly (the argument is invariant to ‖a‖)
    np.testing.assert_allclose(hyp.poincare_mlr(x, 2 * a, p)[:, 0], [2 * math.log(3), 0.0, -2 * math.log(3)], rtol=1e-6)
    # offset p = (0.5, 0): x = p lies on the hyperplane -> logit 0
    np.testing.assert_allclose(hyp.poincare_mlr(x[:1], a, jnp.array([[0.5, 0.0]])), [[0.0]], atol=1e-6)


def test_lorentz_mlr_hand_worked():
    # c = 1, z = (1, 0), x = exp_o((t, 0)) = (cosh t, sinh t, 0): α = −cosh t sinh r + cosh r sinh t = sinh(t − r),
    # logit = asinh(sinh(t − r)) = t − r. t = 1, r = 0.25 -> 0.75; r = 0 -> 1; and −1 for t = −1, r = 0.
    x = hyp.lorentz_expmap0(jnp.array([[1.0, 0.0], [-1.0, 0.0]]))
    z = jnp.array([[1.0, 0.0], [1.0, 0.0]])
    r = jnp.array([0.0, 0.25])
    np.testing.assert_allclose(hyp.lorentz_mlr(x, z, r), [[1.0, 0.75], [-1.0, -1.25]], rtol=1e-5)
    # ‖z‖ = 3 scales the logit: 3·asinh(α/3) with α = 3 sinh(1) -> 3·1
    np.testing.assert_allclose(hyp.lorentz_mlr(x[:1], 3 * z[:1], r[:1]), [[3.0]], rtol=1e-5)


@pytest.mark.parametrize("c", CURVATURES)
def test_lorentz_mlr_equals_poincare_mlr_through_origin(c):
    v = rand((10, 4), 9)
    z = rand((3, 4), 10)
    x = hyp.lorentz_expmap0(v, c)
    lorentz = hyp.lorentz_mlr(x, z, jnp.zeros(3), c)
    poincare = hyp.poincare_mlr(hyp.lorentz_to_poincare(x, c), z, jnp.zeros((3, 4)), c)
    np.testing.assert_allclose(lorentz, poincare, rtol=1e-3, atol=1e-4)


def test_smooth_clamp():
    x = jnp.array([-100.0, -20.0, -3.0, 0.0, 3.0, 15.0, 20.0, 100.0])
    y = hyp.smooth_clamp(x, 16.6)
    np.testing.assert_allclose(y[2:6], x[2:6], atol=1e-5)  # identity inside
    assert np.all(np.abs(y) <= 16.6) and np.all(np.diff(y) >= 0)
    np.testing.assert_allclose(jax.grad(lambda t: hyp.smooth_clamp(t, 16.6))(0.0), 1.0, atol=1e-6)


def test_large_norms_stay_finite_on_manifold_with_finite_gradients():
    v = rand((32, 8), 11, 1e3)  # ‖v‖ ~ 3e3: tanh saturates, cosh(‖v‖) would overflow float32
    x = hyp.poincare_expmap0(v)
    assert np.all(np.linalg.norm(x, axis=-1) < 1.0)
    assert np.all(np.isfinite(hyp.poincare_logmap0(x)))
    lx = hyp.lorentz_expmap0(v)
    assert np.all(np.isfinite(lx))
    z, r = rand((4, 8), 12), jnp.zeros(4)

    def losses(v):
        a, p = rand((4, 8), 13), jnp.zeros((4, 8))
        return (
            jnp.sum(hyp.poincare_mlr(hyp.poincare_expmap0(v), a, p)),
            jnp.sum(hyp.lorentz_mlr(hyp.lorentz_expmap0(v), z, r)),
            jnp.sum(hyp.poincare_distance(hyp.poincare_expmap0(v), hyp.poincare_expmap0(-v))),
            jnp.sum(hyp.lorentz_logmap0(hyp.lorentz_expmap0(v))),
        )

    for i in range(4):
        val, grad = jax.value_and_grad(lambda v: losses(v)[i])(v)
        assert np.isfinite(val) and np.all(np.isfinite(grad)), i
    logits = hyp.lorentz_mlr(lx, z, r)
    assert np.all(np.abs(logits) <= np.linalg.norm(z, axis=-1) * np.arcsinh(hyp.MLR_KAPPA_F32) + 1e-3)
    # gradients at the origin (norm floor) are finite too
    for fn in (hyp.poincare_expmap0, hyp.lorentz_expmap0, hyp.poincare_logmap0):
        g = jax.grad(lambda v: jnp.sum(fn(v)))(jnp.zeros(3))
        assert np.all(np.isfinite(g))


def test_artanh_clipped_and_finite():
    x = jnp.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    y = hyp.artanh(x)
    np.testing.assert_allclose(y[1:4], np.arctanh([-0.5, 0.0, 0.5]), rtol=1e-6)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(jax.vmap(jax.grad(hyp.artanh))(x)))


def test_plain_jit_vmap_agree():
    v = rand((6, 5), 14)
    z, r = rand((3, 5), 15), rand((3,), 16)
    a, p = rand((3, 5), 17), np.asarray(hyp.poincare_expmap0(rand((3, 5), 18, 0.3)))

    def f(v):
        return (
            hyp.lorentz_mlr(hyp.lorentz_expmap0(v), z, r),
            hyp.poincare_mlr(hyp.poincare_expmap0(v), a, p),
            hyp.lorentz_logmap0(hyp.lorentz_expmap0(v)),
        )

    plain, jitted, vmapped = f(v), jax.jit(f)(v), jax.vmap(f)(v)
    for x, y, w in zip(plain, jitted, vmapped):  # logits up to ~20: float32 reassociation under jit
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(x, w, rtol=1e-4, atol=1e-5)
