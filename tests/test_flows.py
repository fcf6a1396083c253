"""PolicyFlow primitives against closed forms and NumPy references, plain, under jit and under vmap."""

from __future__ import annotations

import math

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxpo.primitives import flows


def _numpy_midpoint(v, x0, num_steps, horizon=1.0):
    """Reference explicit-midpoint loop in NumPy."""
    x, dt = np.array(x0, np.float64), horizon / num_steps
    for k in range(num_steps):
        t = k * dt
        x_mid = x + 0.5 * dt * v(x, t)
        x = x + dt * v(x_mid, t + 0.5 * dt)
    return x


def test_midpoint_matches_numpy_loop_on_nonlinear_field():
    field = lambda x, t: np.sin(x) * (1.0 + t) - 0.3 * x
    jfield = lambda x, t: jnp.sin(x) * (1.0 + t[..., None]) - 0.3 * x
    x0 = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    expected = _numpy_midpoint(lambda x, t: field(x, t), x0, 7)
    np.testing.assert_allclose(flows.midpoint_sample(jfield, jnp.asarray(x0), 7), expected, rtol=1e-5, atol=1e-5)


def test_midpoint_linear_field_closed_form():
    # dx/dt = λx: one midpoint step multiplies by 1 + λΔ + (λΔ)²/2 exactly, so x1 = x0 (1 + λ/K + λ²/(2K²))^K;
    # and as K grows it tends to the ODE solution x0 e^λ (global error O(1/K²)).
    lam, x0 = -1.3, jnp.array([[0.5, -2.0]])
    v = lambda x, t: lam * x
    for k in (1, 4, 10):
        factor = (1 + lam / k + lam**2 / (2 * k**2)) ** k
        np.testing.assert_allclose(flows.midpoint_sample(v, x0, k), x0 * factor, rtol=1e-5)
    np.testing.assert_allclose(flows.midpoint_sample(v, x0, 200), x0 * math.exp(lam), rtol=1e-4)


def test_midpoint_exact_for_time_linear_field_and_trig_horizon():
    # v = 2t is linear in t: midpoint quadrature is exact, x1 = x0 + ∫0^1 2t dt = x0 + 1.
    x0 = jnp.array([[0.0, 3.0]])
    np.testing.assert_allclose(flows.midpoint_sample(lambda x, t: 2 * t[..., None] * jnp.ones_like(x), x0, 3), x0 + 1.0, rtol=1e-6)
    # constant velocity over [0, π/2]: x1 = x0 + π/2 · c
    out = flows.midpoint_sample(lambda x, t: jnp.ones_like(x), x0, 5, horizon=math.pi / 2)
    np.testing.assert_allclose(out, x0 + math.pi / 2, rtol=1e-6)


def test_midpoint_jit_and_vmap():
    v = lambda x, t: jnp.tanh(x) + t[..., None]
    x0 = jax.random.normal(jax.random.key(0), (4, 6, 2))
    plain = flows.midpoint_sample(v, x0, 5)
    jitted = jax.jit(lambda x: flows.midpoint_sample(v, x, 5))(x0)
    vmapped = jax.vmap(lambda x: flows.midpoint_sample(v, x, 5))(x0)
    np.testing.assert_allclose(jitted, plain, rtol=1e-6)
    np.testing.assert_allclose(vmapped, plain, rtol=1e-6)
    with pytest.raises(ValueError, match="num_steps"):
        flows.midpoint_sample(v, x0, 0)


def test_solver_times_are_grid_and_midpoints():
    np.testing.assert_allclose(flows.solver_times(2), [0.0, 0.25, 0.5, 0.75, 1.0])
    assert flows.solver_times(10).shape == (21,)
    assert flows.time_horizon("trigflow") == pytest.approx(math.pi / 2)


def test_interpolants_hit_endpoints():
    x0, x1 = jnp.array([[1.0, -1.0]]), jnp.array([[3.0, 5.0]])
    xi = jnp.array([[7.0, 7.0]])
    for kind, end in (("rectified_flow", 1.0), ("stochastic_interpolant", 1.0), ("trigflow", math.pi / 2)):
        noise = xi if kind == "stochastic_interpolant" else None
        np.testing.assert_allclose(flows.interpolate(x0, x1, jnp.zeros(1), kind, noise), x0, atol=1e-6)
        np.testing.assert_allclose(flows.interpolate(x0, x1, jnp.full(1, end), kind, noise), x1, atol=1e-5)
    # rectified flow midpoint; stochastic interpolant adds sqrt(2·½·½)·ξ = sqrt(½)·ξ at t = ½
    np.testing.assert_allclose(flows.interpolate(x0, x1, jnp.full(1, 0.5)), [[2.0, 2.0]])
    np.testing.assert_allclose(
        flows.interpolate(x0, x1, jnp.full(1, 0.5), "stochastic_interpolant", xi), 2.0 + math.sqrt(0.5) * 7.0, rtol=1e-6
    )
    with pytest.raises(ValueError, match="noise"):
        flows.interpolate(x0, x1, jnp.zeros(1), "stochastic_interpolant")
    with pytest.raises(ValueError, match="unknown interpolant"):
        flows.interpolate(x0, x1, jnp.zeros(1), "ddpm")


def test_residual_gaussian_log_prob_and_entropy_match_numpy():
    x = np.array([[0.3, -1.0], [2.0, 0.5]])
    mean, log_std = np.array([[0.1, 0.2], [-0.5, 0.0]]), np.array([0.2, -0.7])
    ref = np.sum(-0.5 * ((x - mean) / np.exp(log_std)) ** 2 - log_std - 0.5 * np.log(2 * np.pi), -1)
    dist = flows.residual_gaussian(jnp.asarray(mean, jnp.float32), jnp.asarray(log_std, jnp.float32))  # log_std broadcast
    np.testing.assert_allclose(dist.log_prob(jnp.asarray(x, jnp.float32)), ref, rtol=1e-5)
    np.testing.assert_allclose(dist.entropy(), np.full(2, np.sum(0.5 * np.log(2 * np.pi * np.e) + log_std)), rtol=1e-5)


def test_ratio_is_one_when_theta_equals_theta_old():
    v = lambda x, t: jnp.sin(x) + t[..., None]
    key = jax.random.key(1)
    x_t, t = jax.random.normal(key, (8, 3)), jnp.linspace(0, 1, 8)
    delta_v = flows.velocity_variation(v, v, x_t, t)
    np.testing.assert_array_equal(delta_v, 0.0)
    log_std = jnp.array([0.1, -0.3, 0.0])
    delta = jax.random.normal(jax.random.key(2), (8, 3))
    log_old = flows.residual_gaussian(jnp.zeros_like(delta), log_std).log_prob(delta)
    np.testing.assert_allclose(flows.policyflow_log_ratio(delta_v, delta, log_std, log_old), 0.0, atol=1e-6)
    np.testing.assert_allclose(flows.policyflow_kl(delta_v, log_std, log_std, eps=0.0), 0.0, atol=1e-6)


def test_log_ratio_numpy_reference_and_gradient_only_through_new_velocity():
    delta_v, delta = np.array([[0.2, -0.1]]), np.array([[0.5, 0.4]])
    ls_new, ls_old = np.array([0.1, 0.0]), np.array([0.0, 0.0])
    log_old = np.sum(-0.5 * delta**2 - 0.5 * np.log(2 * np.pi), -1)
    s = np.exp(ls_new)
    log_new = np.sum(-0.5 * ((delta - delta_v) / s) ** 2 - ls_new - 0.5 * np.log(2 * np.pi), -1)
    np.testing.assert_allclose(
        flows.policyflow_log_ratio(jnp.asarray(delta_v), jnp.asarray(delta), jnp.asarray(ls_new), jnp.asarray(log_old)),
        log_new - log_old, rtol=1e-5,
    )
    # d Δv / d(old-field scale) is zero: the old field is a constant
    x = jnp.ones((1, 2))
    grad_old = jax.grad(lambda a: flows.velocity_variation(lambda x, t: 2 * x, lambda x, t: a * x, x, jnp.zeros(1)).sum())(1.0)
    grad_new = jax.grad(lambda a: flows.velocity_variation(lambda x, t: a * x, lambda x, t: x, x, jnp.zeros(1)).sum())(1.0)
    assert grad_old == 0.0 and grad_new == 2.0


def test_policyflow_kl_matches_closed_form_gaussian_kl():
    delta_v, ls_new, ls_old = jnp.array([[0.3, -0.2]]), jnp.array([0.2, -0.1]), jnp.array([0.0, 0.1])
    p = distrax.MultivariateNormalDiag(jnp.zeros(2), jnp.exp(ls_old))
    q = distrax.MultivariateNormalDiag(delta_v[0], jnp.exp(ls_new))
    np.testing.assert_allclose(flows.policyflow_kl(delta_v, ls_new, ls_old, eps=0.0)[0], p.kl_divergence(q), rtol=1e-5)


def test_brownian_fixed_point_is_identity_field_for_beta_one():
    key = jax.random.key(3)
    x_t = jax.random.normal(key, (16, 4))
    t = jax.random.uniform(jax.random.key(4), (16,))
    # v(x, t) = x is the fixed point: (1 − t) x = x − t x
    np.testing.assert_allclose(flows.brownian_regularizer(x_t, x_t, x_t, t), 0.0, atol=1e-10)
    grad = jax.grad(lambda v: flows.brownian_regularizer(v, x_t, x_t, t).sum())(x_t)
    np.testing.assert_allclose(grad, 0.0, atol=1e-6)  # float32 rounding of (1 − t)x vs x − tx
    # any other field is penalized; iterating the per-step minimizer from v = 0 at t < ½ converges to x
    assert float(flows.brownian_regularizer(0.5 * x_t, 0.5 * x_t, x_t, t).min()) > 0
    v, t_half = jnp.zeros_like(x_t), jnp.full((16,), 0.3)
    for _ in range(60):  # argmin_v of the loss with v_old = v: v ← (x − t v)/(1 − t), a contraction for t < ½
        v = (x_t - t_half[:, None] * v) / (1 - t_half[:, None])
    np.testing.assert_allclose(v, x_t, rtol=1e-4, atol=1e-5)


def test_brownian_reductions_and_other_interpolants():
    v_new, v_old = jnp.array([[1.0, 2.0, 3.0]]), jnp.array([[0.5, 0.0, -1.0]])
    x_t, t = jnp.array([[0.2, 0.1, 0.0]]), jnp.array([0.4])
    mean = flows.brownian_regularizer(v_new, v_old, x_t, t, reduction="mean")
    l2 = flows.brownian_regularizer(v_new, v_old, x_t, t, reduction="l2")
    np.testing.assert_allclose(l2, 3 * mean, rtol=1e-6)
    # NumPy references, β = 0.7
    b = 0.7
    ref_rf = np.mean(((1 - 0.4) * v_new - b * (x_t - 0.4 * v_old)) ** 2)
    ref_si = np.mean(((2 * (0.4 - 0.5) ** 2 + 0.5) * v_new - b * (x_t - 0.4 * v_old)) ** 2)
    ref_tf = np.mean((np.cos(0.4) * v_new - b * (np.cos(0.4) * x_t - np.sin(0.4) * v_old)) ** 2)
    for kind, ref in (("rectified_flow", ref_rf), ("stochastic_interpolant", ref_si), ("trigflow", ref_tf)):
        np.testing.assert_allclose(flows.brownian_regularizer(v_new, v_old, x_t, t, kind, b)[0], ref, rtol=1e-5)
    with pytest.raises(ValueError, match="reduction"):
        flows.brownian_regularizer(v_new, v_old, x_t, t, reduction="sum")
    # jit / vmap
    f = lambda vn: flows.brownian_regularizer(vn, v_old, x_t, t)
    np.testing.assert_allclose(jax.jit(f)(v_new), f(v_new))
    np.testing.assert_allclose(jax.vmap(f)(jnp.stack([v_new, v_new]))[:, 0], jnp.full(2, f(v_new)[0]))


def test_kl_adaptive_lr_rule():
    lr = jnp.array([1e-3, 1e-3, 1e-3, 9e-3, 1e-6])
    kl = jnp.array([0.03, 0.001, 0.01, 0.0, 1.0])
    np.testing.assert_allclose(
        flows.kl_adaptive_lr(lr, kl), [1e-3 / 1.5, 1.5e-3, 1e-3, 1e-2, 1e-6], rtol=1e-6
    )
    np.testing.assert_allclose(jax.jit(flows.kl_adaptive_lr)(lr, kl), flows.kl_adaptive_lr(lr, kl))
