"""PPO-family variants: objective and group-advantage primitives against hand-worked numbers and their
reductions to plain forms, the carried-state rules, and every variant training CartPole in the one trainer."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import run_three_ways
from purejaxpo import make_env
from purejaxpo.algorithms import ppo, ppo_variants
from purejaxpo.algorithms.ppo_variants import branch_from_group_leaders as _branch_from_group_leaders
from purejaxpo.primitives import group_advantages as groups
from purejaxpo.primitives import ppo_objectives as obj
from purejaxpo.primitives.advantages import discounted_returns, egae, gae
from purejaxpo.primitives.losses import clipped_surrogate, kl_penalty_surrogate

TINY = dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 6, update_epochs=2, num_minibatches=2, hidden_sizes=(16, 16))
LOG = math.log


# ---------------------------------------------------------------- objectives: hand-worked numbers


def test_spo_hand_numbers():
    log_ratio = jnp.array([LOG(1.5), LOG(0.5), LOG(3.0)])
    adv = jnp.array([2.0, -1.0, 0.0])
    # r=1.5, Â=2:  −(1.5·2 − 2·0.5²/(2·0.2)) = −(3 − 1.25) = −1.75
    # r=0.5, Â=−1: −(−0.5 − 1·0.5²/0.4)     = −(−0.5 − 0.625) = 1.125
    # Â=0: 0 whatever r
    out = run_three_ways(lambda l, a: obj.spo_surrogate(l, a, 0.2), log_ratio, adv)
    np.testing.assert_allclose(out, [-1.75, 1.125, 0.0], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("adv", [1.7, -0.4])
def test_spo_objective_is_maximized_at_the_trust_region_boundary(adv):
    eps = 0.2
    ratios = jnp.linspace(0.5, 1.5, 10001)
    objective = -obj.spo_surrogate(jnp.log(ratios), adv, eps)
    best = float(ratios[jnp.argmax(objective)])
    assert best == pytest.approx(1.0 + eps * np.sign(adv), abs=1e-3)
    # stationary there: d/dr [rÂ − |Â|(r−1)²/(2ε)] = Â − |Â|(r−1)/ε = 0 at r = 1 + ε·sign(Â)
    grad = jax.grad(lambda r: -obj.spo_surrogate(jnp.log(r), adv, eps))(1.0 + eps * np.sign(adv))
    assert abs(float(grad)) < 1e-5


def test_dpo_drift_hand_numbers_and_zero_at_ratio_one():
    log_ratio = jnp.array([LOG(2.0), -1.0, 1.0, 0.0, 0.0])
    adv = jnp.array([1.0, -1.0, -1.0, 3.0, -3.0])
    # r=2, Â=1:    x=(r−1)Â=1,  D = relu(1 − 2·tanh(1/2))   = 1 − 2·0.4621172 = 0.0757657
    # ℓ=−1, Â=−1:  x=ℓÂ=1,      D = relu(1 − 0.6·tanh(1/0.6)) = 1 − 0.6·0.9311096 = 0.4413342
    # ℓ=1, Â=−1:   x=−1,        D = relu(−1 + 0.6·0.9311096) = relu(−0.441) = 0  (move against Â: no drift)
    # r=1: x=0 → D=0 for either sign of Â
    drift = run_three_ways(lambda l, a: obj.dpo_drift(l, a, 2.0, 0.6), log_ratio, adv)
    np.testing.assert_allclose(drift, [0.0757657, 0.4413342, 0.0, 0.0, 0.0], rtol=1e-5, atol=1e-7)
    # L = −(rÂ − D): r=2, Â=1 → −(2 − 0.0757657) = −1.9242343
    np.testing.assert_allclose(obj.dpo_surrogate(log_ratio[:1], adv[:1]), [-1.9242343], rtol=1e-6)
    # the drift is flat at r = 1 (x − α tanh(x/α) has zero slope at 0), so DPO's gradient there is PG's
    g_dpo = jax.grad(lambda l: obj.dpo_surrogate(l, 1.3).sum())(jnp.zeros(()))
    assert float(g_dpo) == pytest.approx(-1.3, abs=1e-6)


def test_kl_penalty_with_zero_beta_is_the_unclipped_surrogate():
    log_ratio = jnp.array([LOG(1.2), LOG(0.7), LOG(1.9)])
    adv = jnp.array([0.5, -2.0, 1.0])
    kl = jnp.array([0.1, 0.3, 0.05])
    np.testing.assert_allclose(kl_penalty_surrogate(log_ratio, adv, kl, 0.0), -jnp.exp(log_ratio) * adv, rtol=1e-6)
    # β=2: −1.2·0.5 + 2·0.1 = −0.4
    assert float(kl_penalty_surrogate(log_ratio[0], adv[0], kl[0], 2.0)) == pytest.approx(-0.4, rel=1e-6)


@pytest.mark.parametrize(
    "kl, expected",
    # d_targ = 0.01: halve below 0.01/1.5 = 0.00667, double above 1.5·0.01 = 0.015, else keep
    [(0.001, 0.5), (0.0066, 0.5), (0.0068, 1.0), (0.01, 1.0), (0.0149, 1.0), (0.0151, 2.0), (0.2, 2.0)],
)
def test_adaptive_kl_beta_rule(kl, expected):
    assert float(obj.adaptive_kl_beta(jnp.float32(1.0), jnp.float32(kl), 0.01)) == pytest.approx(expected)


def test_r2vpo_hand_numbers_and_zero_lambda_is_vanilla_pg():
    log_ratio = jnp.array([LOG(1.5), LOG(0.8)])
    adv = jnp.array([2.0, -1.0])
    # r=1.5, Â=2, λ=0.5, δ=0.04: −3 + 0.5·(0.25 − 0.04) = −2.895
    # r=0.8, Â=−1:               0.8 + 0.5·(0.04 − 0.04) = 0.8
    out = run_three_ways(lambda l, a: obj.r2vpo_surrogate(l, a, 0.5, 0.04), log_ratio, adv)
    np.testing.assert_allclose(out, [-2.895, 0.8], rtol=1e-6)
    vanilla = -jnp.exp(log_ratio) * adv
    np.testing.assert_allclose(obj.r2vpo_surrogate(log_ratio, adv, 0.0, 0.04), vanilla, rtol=1e-6)
    # the vanilla PG gradient at r = 1: d(−rÂ)/dℓ = −Â
    grad = jax.grad(lambda l: obj.r2vpo_surrogate(l, adv, 0.0, 0.04).sum())(jnp.zeros(2))
    np.testing.assert_allclose(grad, -adv, rtol=1e-6)
    np.testing.assert_allclose(obj.ratio_second_moment(log_ratio), [0.25, 0.04], rtol=1e-5)


def test_dual_ascent_is_projected():
    # λ=0.1, violation 0.21, η=1 → 0.31;  violation −0.5 → max(0, −0.4) = 0
    np.testing.assert_allclose(obj.dual_ascent(jnp.array([0.1, 0.1]), jnp.array([0.21, -0.5]), 1.0), [0.31, 0.0], rtol=1e-6)


def test_ewma_decoupled_surrogate_hand_numbers():
    lp, lb, lprox = jnp.log(0.9), jnp.log(0.5), jnp.log(0.6)
    # π_θ/π_b = 1.8, π_prox/π_b = 1.2, π_θ/π_prox = 1.5 → clip 1.2
    # Â=+1: max(−1.8, −1.2·1.2) = −1.44;   Â=−1: max(1.8, 1.44) = 1.8
    out = obj.ewma_decoupled_surrogate(lp, lb, lprox, jnp.array([1.0, -1.0]), 0.2)
    np.testing.assert_allclose(out, [-1.44, 1.8], rtol=1e-5)
    # stale behaviour policy: π_b = 1e-4, π_θ = 0.5 → log π_b raised to log(0.5/100), so π_θ/π_b = 100
    capped = obj.ewma_decoupled_surrogate(jnp.log(0.5), jnp.log(1e-4), jnp.log(0.5), 1.0, 0.2, 100.0)
    assert float(capped) == pytest.approx(-100.0, rel=1e-5)


def test_ewma_surrogate_with_proximal_equal_behaviour_is_ppo_clip(rng):
    behaviour = jnp.asarray(rng.normal(size=50) - 1.0, jnp.float32)
    log_prob = behaviour + jnp.asarray(rng.normal(scale=0.3, size=50), jnp.float32)
    adv = jnp.asarray(rng.normal(size=50), jnp.float32)
    decoupled = obj.ewma_decoupled_surrogate(log_prob, behaviour, behaviour, adv, 0.2)
    np.testing.assert_allclose(decoupled, clipped_surrogate(log_prob - behaviour, adv, 0.2), rtol=1e-5, atol=1e-6)


def test_ewma_update_hand_numbers_and_zero_decay_tracks_current_params():
    prox, weight = {"w": jnp.array(0.0)}, jnp.array(1.0)
    # β=0.5: W' = 1.5, θ_prox = (0.5/1.5)·0 + 3/1.5 = 2          (= (0.5·θ0 + 1·θ1) / 1.5)
    prox, weight = obj.ewma_update(prox, {"w": jnp.array(3.0)}, weight, 0.5)
    assert float(prox["w"]) == pytest.approx(2.0) and float(weight) == pytest.approx(1.5)
    # next: W'' = 0.5·1.5 + 1 = 1.75, θ_prox = (0.75/1.75)·2 + 6/1.75 = 7.5/1.75 = (0.25·0 + 0.5·3 + 1·6)/1.75
    prox, weight = obj.ewma_update(prox, {"w": jnp.array(6.0)}, weight, 0.5)
    assert float(prox["w"]) == pytest.approx(7.5 / 1.75, rel=1e-6) and float(weight) == pytest.approx(1.75)
    # β=0: the proximal parameters become the current ones
    current = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
    prox0, w0 = obj.ewma_update({"w": jnp.zeros(2), "b": jnp.array(9.0)}, current, jnp.array(4.0), 0.0)
    assert float(w0) == 1.0
    for a, b in zip(jax.tree.leaves(prox0), jax.tree.leaves(current)):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- advantages


def test_discounted_returns_cut_at_episode_ends():
    # γ=0.5, rewards 1,1,1, done at t=1:  G2 = 1, G1 = 1 (cut), G0 = 1 + 0.5·1 = 1.5
    returns = discounted_returns(jnp.ones(3), jnp.array([0, 1, 0]), 0.5)
    np.testing.assert_allclose(returns, [1.5, 1.0, 1.0])
    # with a bootstrap V = 4 after the last step: G1 = 1 + 0.5·4 = 3, G0 = 1 + 0.5·3 = 2.5
    np.testing.assert_allclose(discounted_returns(jnp.ones(2), jnp.zeros(2), 0.5, jnp.array(4.0)), [2.5, 3.0])


def test_egae_equals_gae_without_truncation(rng):
    t, b = 12, 3
    rewards, values, final_values = (jnp.asarray(rng.normal(size=(t, b)), jnp.float32) for _ in range(3))
    last_value = jnp.asarray(rng.normal(size=b), jnp.float32)
    terminated = jnp.asarray(rng.random((t, b)) < 0.2).at[-1].set(True)  # every env's episode ends in the window
    truncated = jnp.asarray(rng.random((t, b)) < 0.1)
    args = (rewards, values, final_values, last_value, terminated, truncated, 0.97, 0.9)
    adv, targets, mask = run_three_ways(lambda *a: egae(*a[:-2], 0.97, 0.9), *args[:-2], 0.97, 0.9)
    ref_adv, ref_targets = gae(*args)
    np.testing.assert_allclose(adv, ref_adv, rtol=1e-6)
    np.testing.assert_allclose(targets, ref_targets, rtol=1e-6)
    np.testing.assert_array_equal(mask, 1.0)


def test_egae_value_mask_drops_the_unfinished_tail():
    # one env: episode ends at t=1, the next one is still running at the window end (t=2, 3)
    terminated = jnp.array([[0], [1], [0], [0]], bool)
    zeros = jnp.zeros((4, 1))
    adv, _, mask = egae(jnp.ones((4, 1)), zeros, zeros, jnp.array([5.0]), terminated, jnp.zeros((4, 1), bool), 0.5, 1.0)
    np.testing.assert_array_equal(mask[:, 0], [1, 1, 0, 0])
    # the tail is bootstrapped from V(s_T) = 5 (advantages = GAE): t=3: 1 + 0.5·5 = 3.5; t=2: 1 + 0.5·3.5 = 2.75
    np.testing.assert_allclose(adv[:, 0], [1.5, 1.0, 2.75, 3.5])


def test_loo_advantage_hand_example():
    returns = jnp.array([[1.0, 2.0, 3.0, 6.0]])
    # Σ = 12; b_k = (12 − R_k)/3 = [11/3, 10/3, 3, 2]; Â = R − b = [−8/3, −4/3, 0, 4] = 4/3·(R − mean)
    np.testing.assert_allclose(groups.loo_baseline(returns), [[11 / 3, 10 / 3, 3.0, 2.0]], rtol=1e-6)
    adv = run_three_ways(groups.loo_advantage, returns)
    np.testing.assert_allclose(adv, [[-8 / 3, -4 / 3, 0.0, 4.0]], rtol=1e-6, atol=1e-6)
    # K = 2 (P3O-like pairs): Â = ±(R1 − R2)
    np.testing.assert_allclose(groups.loo_advantage(jnp.array([5.0, 2.0])), [3.0, -3.0])
    with pytest.raises(ValueError, match="at least 2"):
        groups.loo_advantage(jnp.ones((3, 1)))


def test_polychromic_set_advantage_and_distinct_fraction():
    signatures = jnp.array([[1, 0], [1, 0], [0, 1], [2, 2]])
    assert float(groups.distinct_fraction(signatures)) == pytest.approx(0.75)  # 3 distinct of 4
    assert float(groups.distinct_fraction(jnp.zeros((5, 3)))) == pytest.approx(0.2)
    # M=3 sets of n=2: means [2, 2, 0], diversity [1, 0.5, 1] → f = [2, 1, 0]; minus mean 1 → [1, 0, −1]
    set_returns = jnp.array([[1.0, 3.0], [2.0, 2.0], [0.0, 0.0]])
    set_adv = run_three_ways(groups.polychromic_set_advantage, set_returns, jnp.array([1.0, 0.5, 1.0]))
    np.testing.assert_allclose(set_adv, [1.0, 0.0, -1.0])


def test_first_episode_helpers_and_set_advantage_window():
    done = jnp.array([[0, 0], [1, 0], [0, 0], [1, 0]], bool)  # env 0 ends at t=1; env 1 never ends
    np.testing.assert_array_equal(groups.first_episode_mask(done), [[1, 1], [1, 1], [0, 1], [0, 1]])
    per_step = jnp.arange(8.0).reshape(4, 2, 1)  # value at [t, b] = 2t + b
    np.testing.assert_array_equal(groups.first_episode_end(per_step, jnp.array([[-1.0], [-2.0]]), done), [[2.0], [-2.0]])
    adv = groups.apply_set_advantage(jnp.zeros((4, 2)), jnp.array([7.0, 9.0]), groups.first_episode_mask(done), 3)
    # window 3 and the first episode: env 0 gets it at t=0,1 (its episode ended), env 1 at t=0,1,2
    np.testing.assert_array_equal(adv, [[7, 9], [7, 9], [0, 9], [0, 0]])


# ---------------------------------------------------------------- trainer: config, hparams, grouping


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(objective="trpo"), "objective must be one of .*'clip', 'kl_penalty', 'spo', 'ewma', 'dpo', 'r2vpo'"),
        (dict(advantage="vtrace"), "advantage must be one of .*'gae', 'egae', 'loo', 'polychromic'"),
        (dict(objective="spo", dual_clip=True), "dual_clip applies to objective='clip'"),
        (dict(advantage="loo", group_size=3), "must divide num_envs=4"),
        (dict(advantage="loo", group_size=1), "group_size >= 2"),
        (dict(advantage="polychromic", group_size=4, poly_set_size=4), "at least 2 sets"),
        (dict(advantage="polychromic", poly_window=200), "poly_window"),
        (dict(diversity_fn=lambda obs: 1.0), "polychromic' only"),
        (dict(group_size=0), "positive integer"),
    ],
)
def test_variant_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ppo.PPOConfig(**{**TINY, **kwargs})


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(kl_target=0.0), "kl_target"), (dict(kl_beta_init=-1.0), "kl_beta_init"), (dict(ewma_beta=1.0), "ewma_beta"),
     (dict(ewma_imp_samp_max=0.5), "ewma_imp_samp_max"), (dict(dpo_alpha=0.0), "dpo_alpha"), (dict(dpo_beta=-0.1), "dpo_beta"),
     (dict(r2vpo_delta=-0.01), "r2vpo_delta"), (dict(r2vpo_dual_lr=-1.0), "r2vpo_dual_lr"),
     (dict(r2vpo_lambda_init=-0.5), "r2vpo_lambda_init")],
)
def test_variant_hparam_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ppo.PPOHParams(**kwargs)


def test_polychromic_on_continuous_actions_raises_before_compiling():
    with pytest.raises(ValueError, match="polychromic.*discrete actions"):
        ppo.make_train(ppo.PPOConfig(**TINY, advantage="polychromic"), *make_env("Pendulum-v1"))


def test_group_siblings_start_from_their_leader(cartpole):
    trainer = ppo.make_train(ppo.PPOConfig(**{**TINY, "num_envs": 6}, advantage="loo", group_size=3), *cartpole)
    carry = trainer.init(jax.random.key(0), ppo.PPOHParams()).env
    assert not np.allclose(carry.obs[0], carry.obs[1])  # independent resets
    branched = _branch_from_group_leaders(carry, 3)
    for leaf in jax.tree.leaves(branched):
        leaf = np.asarray(leaf)
        np.testing.assert_array_equal(leaf[0:3], np.broadcast_to(leaf[0], leaf[0:3].shape))
        np.testing.assert_array_equal(leaf[3:6], np.broadcast_to(leaf[3], leaf[3:6].shape))
    np.testing.assert_array_equal(branched.obs[3], carry.obs[3])  # leaders are unchanged


# ---------------------------------------------------------------- trainer: every variant trains CartPole


@pytest.fixture(scope="module")
def cartpole():
    return make_env("CartPole-v1")


VARIANTS = [
    # (objective, advantage, the variant's own hyperparameters changed for the second call)
    ("clip", "gae", dict(clip_eps=0.1, dual_clip_c=5.0)),
    ("kl_penalty", "gae", dict(kl_target=0.02, kl_beta_init=0.0)),
    ("spo", "gae", dict(clip_eps=0.3)),
    ("ewma", "gae", dict(ewma_beta=0.0, ewma_imp_samp_max=10.0)),
    ("dpo", "gae", dict(dpo_alpha=1.0, dpo_beta=0.3)),
    ("r2vpo", "gae", dict(r2vpo_delta=0.0, r2vpo_dual_lr=1.0, r2vpo_lambda_init=0.5)),
    ("clip", "egae", dict(gamma=0.9, gae_lambda=0.8)),
    ("clip", "loo", dict(gamma=0.9)),
    ("clip", "polychromic", dict(gamma=0.9, gae_lambda=0.8)),
]


@pytest.mark.parametrize("objective, advantage, changes", VARIANTS, ids=[f"{o}-{a}" for o, a, _ in VARIANTS])
def test_every_variant_trains_and_its_hparams_share_one_compilation(cartpole, objective, advantage, changes):
    dual_clip = objective == "clip" and advantage == "gae"  # dual_clip_c is then one of the traced knobs
    config = ppo.PPOConfig(**TINY, objective=objective, advantage=advantage, dual_clip=dual_clip)
    trainer = ppo.make_train(config, *cartpole)
    train = jax.jit(trainer.train)
    hp_changed = ppo.PPOHParams(lr=1e-2, **changes)
    runs = [train(jax.random.key(1), hp) for hp in (ppo.PPOHParams(), hp_changed)]
    assert train._cache_size() == 1
    for state, metrics in runs:
        assert metrics["loss"].shape == (6,) and np.isfinite(metrics["loss"]).all()
        assert np.all(metrics["nonfinite_steps"] == 0) and int(state.update_index) == 6
    state, metrics = runs[1]
    if objective == "kl_penalty":
        # β follows the rule from the KL measured after each update; β₀ = 0 stays 0 (the unclipped surrogate)
        np.testing.assert_array_equal(metrics["kl_beta"], 0.0)
        beta, kls = 1.0, runs[0][1]["kl_after_update"]
        for kl, reported in zip(kls, runs[0][1]["kl_beta"]):
            beta = beta / 2 if kl < 0.01 / 1.5 else beta * 2 if kl > 0.015 else beta
            assert float(reported) == pytest.approx(beta)
    if objective == "ewma":
        # β_ewma = 0: the proximal policy is the current one after every step
        assert isinstance(state.algo, ppo_variants.EWMAState) and float(state.algo.weight) == 1.0
        for a, b in zip(jax.tree.leaves(state.algo.params), jax.tree.leaves(state.params)):
            np.testing.assert_array_equal(a, b)
    if objective == "r2vpo":
        # δ = 0: every step's ratio variance is a violation, so λ only grows from λ₀ = 0.5
        assert np.all(np.diff(metrics["r2vpo_lambda"]) >= 0) and float(metrics["r2vpo_lambda"][-1]) > 0.5
    if objective in ("clip", "spo", "dpo"):
        assert state.algo is None


def test_kl_penalty_on_continuous_actions_uses_the_gaussian_kl():
    """After one update, ``kl_after_update`` equals the closed-form diagonal-Gaussian KL(π_old ‖ π_new) over the
    rollout's observations, computed here in NumPy from the two parameter sets, and β moved by the rule."""
    from flax import nnx

    env, params = make_env("Pendulum-v1")
    config = ppo.PPOConfig(**TINY, objective="kl_penalty", normalize_obs=False)
    trainer = ppo.make_train(config, env, params)
    hp = ppo.PPOHParams(lr=3e-3)
    state0 = trainer.init(jax.random.key(0), hp)
    state1, metrics = jax.jit(trainer.update)(state0, hp)
    # the batch's observations are the rollout's: collect the same rollout again (same key) to read them
    from purejaxpo.engine import collect_experience, critic_value, actor_critic_step
    from purejaxpo.networks.distributions import env_action
    spec = ppo.policy_spec(env, params)
    graphdef = nnx.graphdef(ppo.actor_critic_for(config, spec, jax.random.key(0)))
    old, new = nnx.merge(graphdef, state0.params), nnx.merge(graphdef, state1.params)
    rollout_key = jax.random.split(state0.key, 3)[1]
    exp = collect_experience(env, params, config, state0, old, rollout_key, hp.gamma,
                             actor_critic_step(lambda a: env_action(spec, a, None)), critic_value)
    obs = exp.trajectory.obs.reshape(-1, 3)
    p, q = old.distribution(obs), new.distribution(obs)
    mp, sp, mq, sq = (np.asarray(x, np.float64) for x in (p.loc, p.scale_diag, q.loc, q.scale_diag))
    expected = np.mean(np.sum(np.log(sq / sp) + (sp**2 + (mp - mq) ** 2) / (2 * sq**2) - 0.5, -1))
    assert expected > 0
    np.testing.assert_allclose(metrics["kl_after_update"], expected, rtol=1e-3)
    d, beta = hp.kl_target, float(hp.kl_beta_init)
    want = beta * 2 if expected > 1.5 * d else beta / 2 if expected < d / 1.5 else beta
    np.testing.assert_allclose(metrics["kl_beta"], want, rtol=1e-6)
