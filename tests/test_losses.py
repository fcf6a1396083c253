"""Losses against hand-worked numbers, closed forms and reductions to the plain case."""

import distrax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run_three_ways

from purejaxpo.primitives import losses


def test_clipped_surrogate_hand_worked():
    # r = [0.5, 1.0, 1.5, 1.5], Â = [1, 1, 1, -1], ε = 0.2
    # min(rÂ, clip(r)Â): [min(.5,.8)=.5, 1, min(1.5,1.2)=1.2, min(-1.5,-1.2)=-1.5] → loss = −that
    log_ratio = jnp.log(jnp.array([0.5, 1.0, 1.5, 1.5]))
    adv = jnp.array([1.0, 1.0, 1.0, -1.0])
    out = run_three_ways(lambda l, a: losses.clipped_surrogate(l, a, 0.2), log_ratio, adv)
    np.testing.assert_allclose(out, [-0.5, -1.0, -1.2, 1.5], rtol=1e-6)


def test_dual_clip_bounds_negative_advantages_and_equals_clip_for_positive(rng):
    # r = 5, Â = −1: clipped PPO gives −min(−5, −1.2) = 5; dual clip c=3 caps it at −c·Â = 3.
    out = losses.clipped_surrogate(jnp.log(jnp.array([5.0])), jnp.array([-1.0]), 0.2, 3.0)
    np.testing.assert_allclose(out, [3.0], rtol=1e-6)
    log_ratio = jnp.asarray(rng.normal(size=64), jnp.float32)
    adv = jnp.abs(jnp.asarray(rng.normal(size=64), jnp.float32))
    np.testing.assert_allclose(
        losses.clipped_surrogate(log_ratio, adv, 0.2, 3.0), losses.clipped_surrogate(log_ratio, adv, 0.2), rtol=1e-6
    )


def test_value_loss_plain_and_clipped():
    v, r, v_old = jnp.array([2.0, 0.0]), jnp.array([0.0, 0.0]), jnp.array([1.0, 0.5])
    np.testing.assert_allclose(losses.value_loss(v, r), [2.0, 0.0])
    # clipped: V_old + clip(V − V_old, ±0.2) = [1.2, 0.3] → ½max((V−R)², (Vc−R)²) = [½·4, ½·0.09]
    out = run_three_ways(lambda a, b, c: losses.value_loss(a, b, c, 0.2), v, r, v_old)
    np.testing.assert_allclose(out, [2.0, 0.045], rtol=1e-6)


def test_sample_kl_estimators(rng):
    # Against the analytic KL of two categoricals, by exact expectation over actions.
    p = jnp.array([0.2, 0.5, 0.3])
    q = jnp.array([0.3, 0.3, 0.4])
    log_ratio = jnp.log(q) - jnp.log(p)  # ℓ = log π_θ − log π_old with π_old = p, π_θ = q
    kl = float(jnp.sum(p * (jnp.log(p) - jnp.log(q))))
    for estimator in ("k1", "k3"):
        assert float(jnp.sum(p * losses.sample_kl(log_ratio, estimator))) == pytest.approx(kl, rel=1e-5)
    assert np.all(np.asarray(losses.sample_kl(log_ratio, "k3")) >= 0)
    np.testing.assert_allclose(losses.sample_kl(log_ratio, "k2"), 0.5 * log_ratio**2)
    with pytest.raises(ValueError, match="unknown KL estimator"):
        losses.sample_kl(log_ratio, "k9")


def test_policy_distributions_kls_match_closed_forms(rng):
    """The analytic KLs the trainers use are distrax's; check them on our distribution builders against the
    closed forms in NumPy (float64) and a hand case."""
    from purejaxpo.networks import distributions

    lp, lq = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    p, q = np.exp(lp) / np.exp(lp).sum(-1, keepdims=True), np.exp(lq) / np.exp(lq).sum(-1, keepdims=True)
    out = distributions.categorical(jnp.asarray(lp, jnp.float32)).kl_divergence(distributions.categorical(jnp.asarray(lq, jnp.float32)))
    np.testing.assert_allclose(out, np.sum(p * (np.log(p) - np.log(q)), -1), rtol=1e-5, atol=1e-6)
    mp, mq, sp, sq = (rng.normal(size=(5, 3)) for _ in range(4))
    expected = np.sum(sq - sp + (np.exp(2 * sp) + (mp - mq) ** 2) / (2 * np.exp(2 * sq)) - 0.5, -1)
    f32 = lambda x: jnp.asarray(x, jnp.float32)
    out = distributions.diag_gaussian(f32(mp), f32(sp)).kl_divergence(distributions.diag_gaussian(f32(mq), f32(sq)))
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    # 1-D hand case: KL(N(0,1) ‖ N(1,1)) = ½
    one = distributions.diag_gaussian(jnp.zeros(1), jnp.zeros(1)).kl_divergence(distributions.diag_gaussian(jnp.ones(1), jnp.zeros(1)))
    assert float(one) == pytest.approx(0.5)


def test_kl_penalty_with_zero_beta_is_unclipped_surrogate(rng):
    log_ratio = jnp.asarray(rng.normal(size=16), jnp.float32)
    adv = jnp.asarray(rng.normal(size=16), jnp.float32)
    kl = losses.sample_kl(log_ratio)
    np.testing.assert_allclose(losses.kl_penalty_surrogate(log_ratio, adv, kl, 0.0), -jnp.exp(log_ratio) * adv, rtol=1e-6)
    out = run_three_ways(lambda l, a, k: losses.kl_penalty_surrogate(l, a, k, 2.0), log_ratio, adv, kl)
    np.testing.assert_allclose(out, -jnp.exp(log_ratio) * adv + 2.0 * kl, rtol=1e-5)


def test_entropy_loss_and_clip_fraction():
    np.testing.assert_allclose(losses.entropy_loss(jnp.array([0.5])), [-0.5])
    frac = losses.clip_fraction(jnp.log(jnp.array([0.7, 0.9, 1.0, 1.3])), 0.2)
    np.testing.assert_allclose(frac, [1.0, 0.0, 0.0, 1.0])
