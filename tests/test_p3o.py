"""P3O (pairwise PPO, a reconstruction): hand-worked pair losses and gradients, trajectory log-ratios, the
reduction to LOOP with K = 2 (primitive and trainer), config checks and the pairwise advantage layout."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxpo import make_env
from purejaxpo.algorithms import ppo
from purejaxpo.primitives import p3o
from purejaxpo.primitives.group_advantages import loo_advantage
from purejaxpo.primitives.losses import clipped_surrogate

EPS = 0.2


def test_pair_losses_and_gradients_hand_worked():
    """R = (3, 1) → Δ = 1; ℓ = (log 1.5, log 0.9).
    V1: sibling 1 is clipped (1.5 > 1.2: contributes 1.2, no gradient); sibling 2 contributes min(−0.9, −0.9)
    = −0.9 with ∂/∂ℓ_2 = +ρ_2 Δ = 0.9 → L_sep = −(1.2 − 0.9) = −0.3.
    V2: q = 1.5/0.9 = 5/3 > 1.2 → L_joint = −1.2, no gradient."""
    delta = p3o.pairwise_advantage(jnp.array([[3.0, 1.0]]))
    np.testing.assert_allclose(delta, [1.0])
    ell = jnp.log(jnp.array([[1.5, 0.9]]))
    np.testing.assert_allclose(p3o.p3o_separate_loss(ell, delta, EPS), [-0.3], rtol=1e-6)
    np.testing.assert_allclose(p3o.p3o_joint_loss(ell, delta, EPS), [-1.2], rtol=1e-6)
    grad_sep = jax.grad(lambda l: p3o.p3o_separate_loss(l, delta, EPS).sum())(ell)
    np.testing.assert_allclose(grad_sep, [[0.0, 0.9]], atol=1e-6)
    grad_joint = jax.grad(lambda l: p3o.p3o_joint_loss(l, delta, EPS).sum())(ell)
    np.testing.assert_allclose(grad_joint, [[0.0, 0.0]], atol=1e-6)


def test_at_the_old_policy_both_variants_give_the_pairwise_policy_gradient():
    """ρ = 1: L_sep = 0, L_joint = −Δ, and both gradients are −Δ·(+1, −1) (the pairwise policy gradient)."""
    delta = jnp.array([1.0, -2.5])
    ell = jnp.zeros((2, 2))
    np.testing.assert_allclose(p3o.p3o_separate_loss(ell, delta, EPS), [0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(p3o.p3o_joint_loss(ell, delta, EPS), -delta)
    expected = -delta[:, None] * jnp.array([1.0, -1.0])
    for loss in (p3o.p3o_separate_loss, p3o.p3o_joint_loss):
        np.testing.assert_allclose(jax.grad(lambda l: loss(l, delta, EPS).sum())(ell), expected, atol=1e-6)


def test_reward_shift_invariance_and_pair_shape_error():
    returns = jnp.array([[3.0, 1.0], [-2.0, 5.0]])
    np.testing.assert_allclose(p3o.pairwise_advantage(returns + 17.0), p3o.pairwise_advantage(returns))
    with pytest.raises(ValueError, match="2 siblings"):
        p3o.pairwise_advantage(jnp.ones((3, 4)))


def test_separate_clipping_is_ppo_clip_with_loo_advantages_for_k_2():
    """L_sep = mean_k clipped_surrogate(ℓ_k, Â^LOO_k) with Â^LOO = loo_advantage(R) = ±2Δ (any ratios)."""
    key_r, key_l = jax.random.split(jax.random.key(0))
    returns = jax.random.normal(key_r, (64, 2)) * 3.0
    ell = jax.random.normal(key_l, (64, 2)) * 0.3
    loo = jnp.mean(clipped_surrogate(ell, loo_advantage(returns), EPS), axis=-1)
    np.testing.assert_allclose(p3o.p3o_separate_loss(ell, p3o.pairwise_advantage(returns), EPS), loo, rtol=1e-5, atol=1e-6)


def test_trajectory_log_ratio_sums_masked_steps_in_any_order():
    """Two trajectories over 3 steps; trajectory 1 ends after its first step (its later steps masked out)."""
    log_ratio = jnp.array([0.1, 0.2, 0.3, -0.4, 0.5, 0.6])
    trajectory = jnp.array([0, 1, 0, 1, 0, 1])
    mask = jnp.array([1.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    np.testing.assert_allclose(p3o.trajectory_log_ratio(log_ratio, mask, trajectory, 2), [0.9, 0.2], rtol=1e-6)
    perm = jnp.array([5, 2, 0, 3, 1, 4])
    np.testing.assert_allclose(p3o.trajectory_log_ratio(log_ratio[perm], mask[perm], trajectory[perm], 2), [0.9, 0.2], rtol=1e-6)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(objective="p3o"), "advantage='pairwise'"),
        (dict(objective="p3o", advantage="pairwise", group_size=2), "num_minibatches=1"),
        (dict(advantage="pairwise"), "group_size=2"),
        (dict(objective="p3o_joint", advantage="loo", group_size=2, num_minibatches=1), "advantage='pairwise'"),
    ],
)
def test_config_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        ppo.PPOConfig(**kw)


PENDULUM = dict(num_envs=8, update_epochs=2, num_minibatches=1, hidden_sizes=(16,), group_size=2, normalize_advantages=False,
                anneal_lr=False)


def _train(config, key=0):
    env, params = make_env("Pendulum-v1")
    trainer = ppo.make_train(config, env, params)
    init = trainer.init(jax.random.key(key), ppo.PPOHParams())
    state, metrics = jax.jit(trainer.train)(jax.random.key(key), ppo.PPOHParams())
    return init, state, metrics


def test_with_one_step_trajectories_p3o_trains_exactly_like_loo_with_two_siblings():
    """``num_steps = 1``: each trajectory is one step, so P3O-V1's mean over pairs equals LOOP-clip's mean over
    samples (L_sep = mean_k clip(ℓ_k, Â^LOO_k)); every gradient step, hence the whole run, must match. Pendulum
    has per-step rewards that differ between siblings, so the policy gradient is not zero."""
    cfg = dict(PENDULUM, num_steps=1, total_timesteps=8 * 6)
    init, p3o_state, p3o_metrics = _train(ppo.PPOConfig(**cfg, objective="p3o", advantage="pairwise"))
    _, loo_state, loo_metrics = _train(ppo.PPOConfig(**cfg, objective="clip", advantage="loo"))
    np.testing.assert_allclose(p3o_metrics["policy_loss"], loo_metrics["policy_loss"], atol=1e-6)  # both ≈ 0 at ρ = 1
    for a, b in zip(jax.tree.leaves(p3o_state.params), jax.tree.leaves(loo_state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    moved = lambda name: not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(init.params[name]),
                                                                      jax.tree.leaves(p3o_state.params[name])))
    assert moved("policy_head") and moved("actor_torso")  # the policy gradient is not zero


def test_both_p3o_variants_train():
    """Multi-step trajectories: finite losses and trajectory clip fractions in [0, 1]."""
    cfg = dict(PENDULUM, num_steps=16, total_timesteps=8 * 16 * 2)
    for objective in ("p3o", "p3o_joint"):
        _, _, metrics = _train(ppo.PPOConfig(**cfg, objective=objective, advantage="pairwise"))
        assert np.isfinite(np.asarray(metrics["loss"])).all()
        fraction = np.asarray(metrics["trajectory_clip_fraction"])
        assert np.all((fraction >= 0) & (fraction <= 1))


def test_pairwise_advantages_hand_worked(monkeypatch):
    """2 pairs, 3 steps, γ = 1, env 1's episode ends at t = 0: R = (3, 2) for pair 0 and (2, 4) for pair 1, so
    Δ = (0.5, −1); each sibling gets ±Δ on its first-episode steps and 0 after."""
    from types import SimpleNamespace

    import purejaxpo.algorithms.ppo_variants.p3o as records
    from purejaxpo.algorithms.ppo_variants import ADVANTAGES

    monkeypatch.setattr(records, "gae_of", lambda exp, gamma, lam: (jnp.zeros_like(exp.rewards),) * 2)
    rewards = jnp.array([[1.0, 2.0, 0.0, 4.0], [1.0, 5.0, 1.0, 0.0], [1.0, 5.0, 1.0, 0.0]])
    done = jnp.array([[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], bool)
    exp = SimpleNamespace(rewards=rewards, done=done)
    ctx = SimpleNamespace(hp=SimpleNamespace(gamma=1.0, gae_lambda=0.95))
    out = ADVANTAGES["pairwise"].compute(exp, ctx, SimpleNamespace(group_size=2))
    expected = jnp.array([[0.5, -0.5, -1.0, 1.0], [0.5, 0.0, -1.0, 1.0], [0.5, 0.0, -1.0, 1.0]])
    np.testing.assert_allclose(out.advantages, expected)
    np.testing.assert_array_equal(out.extras["representative"], [[1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(out.extras["in_trajectory"][:, 1], [1, 0, 0])
    np.testing.assert_array_equal(out.extras["trajectory"][0], [0, 1, 2, 3])
