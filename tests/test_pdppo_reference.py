"""PDPPO's single-critic baseline (``critic_mode="ppo"``) and the reference-faithful options: the rolling buffer,
the actor trained on its output layer only, the reference initializations, ``vf_coef`` and the named reference
settings. Every option is checked against its neutral setting (the default) or a case where it must reduce to it."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from purejaxpo.algorithms import pdppo
from purejaxpo.algorithms.pdppo_reference import default_settings, reference_settings
from purejaxpo.envs.lot_sizing import LotSizing, make_lot_sizing
from purejaxpo.networks.distributions import per_component_log_prob
from purejaxpo.networks.dual_critic import DualCriticActorCritic
from purejaxpo.spaces import policy_spec
from purejaxpo.primitives import pdppo as pdppo_prims

from test_pdppo import GAMMA, _window

# 2 envs × one 100-step episode per update (Monte-Carlo targets align with the rollout), 2 full-batch epochs.
TINY = dict(num_envs=2, num_steps=100, total_timesteps=400, update_epochs=2, num_minibatches=1, hidden_sizes=(16,))


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(_leaves(a), _leaves(b)))


def _close(a, b):
    for x, y in zip(_leaves(a), _leaves(b)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


@functools.lru_cache(maxsize=None)
def _trainer(config, env_cls=None):
    """``(trainer, jitted update)``, compiled once per (config, env) for all tests here."""
    env, params = (env_cls(), env_cls().default_params) if env_cls is not None else make_lot_sizing()
    trainer = pdppo.make_train(config, env, params)
    return trainer, jax.jit(trainer.update)


def _run(config, updates, hp=pdppo.PDPPOHParams(), env_cls=None, key=0):
    """Initial state, the states after each of ``updates`` updates, and their metrics."""
    trainer, update = _trainer(config, env_cls)
    state = trainer.init(jax.random.key(key), hp)
    states, metrics = [state], []
    for _ in range(updates):
        state, m = update(state, hp)
        states.append(state)
        metrics.append(m)
    return states, metrics


DEFAULT = pdppo.PDPPOConfig(**TINY)


# ------------------------------------------------------------------------------------------------------------------
# critic_mode="ppo": one pre-decision critic on the total return
# ------------------------------------------------------------------------------------------------------------------


def test_ppo_mode_targets_hand_worked():
    """Window of ``test_pdppo``: total return G = [-5.5, -5, -4, -4], V(s) = [-3, -2, -4, -3] -> A = G − V."""
    out = pdppo_prims.pdppo_targets(_window(), None, None, GAMMA, 0.95, critic_mode="ppo")
    np.testing.assert_allclose(out.pre_target[:, 0], [-5.5, -5.0, -4.0, -4.0])
    np.testing.assert_allclose(out.advantages[:, 0], [-2.5, -3.0, 0.0, -1.0])
    np.testing.assert_allclose(out.post_target[:, 0], 0.0)


class _NoPostReward(LotSizing):
    """Lot sizing whose post-decision reward is reported as 0 (the total reward is unchanged)."""

    def step_env(self, key, state, action, params):
        obs, state, reward, terminated, info = super().step_env(key, state, action, params)
        return obs, state, reward, terminated, {**info, "post_reward": jnp.zeros_like(info["post_reward"])}


def test_ppo_mode_is_dual_pre_only_when_the_post_reward_is_zero():
    """With ``r^x ≡ 0``, ``V_φ`` learns the total return and ``A = A^pre``: the dual trainer with the
    ``pre_only`` combiner must then move the actor and ``V_φ`` exactly as the single-critic baseline does (the
    networks are built actor, pre, post from one stream, so both start from the same actor and ``V_φ``)."""
    single, m_single = _run(pdppo.PDPPOConfig(**TINY, critic_mode="ppo"), 2, env_cls=_NoPostReward)
    dual, _ = _run(pdppo.PDPPOConfig(**TINY, advantage_combiner="pre_only"), 2, env_cls=_NoPostReward)
    assert "post_critic" not in single[0].params and "pre_critic" in single[0].params
    for name in ("actor", "pre_critic"):
        _close(single[-1].params[name], dual[-1].params[name])
    assert not _same(single[0].params["pre_critic"], single[-1].params["pre_critic"])
    assert float(m_single[0]["post_value_loss"]) == 0.0 and float(m_single[0]["pre_value_loss"]) > 0.0


@pytest.mark.parametrize("combiner", ["pre_only", "min_value"])
def test_ppo_mode_refuses_a_combiner(combiner):
    with pytest.raises(ValueError, match="critic_mode='ppo'"):
        pdppo.PDPPOConfig(critic_mode="ppo", advantage_combiner=combiner)


# ------------------------------------------------------------------------------------------------------------------
# buffer_rollouts: the reference's growing-then-rolling buffer with stale log-probs and values
# ------------------------------------------------------------------------------------------------------------------


def test_buffer_grows_one_rollout_per_update_then_rolls_and_keeps_stale_log_probs():
    """K = 3: updates 1, 2, 3, 4 train on 1, 2, 3, 3 rollouts; a stored rollout keeps the log-probabilities of
    the policy that collected it (π before that update), and is not recomputed when it ages."""
    config = pdppo.PDPPOConfig(**TINY, buffer_rollouts=3)  # update() runs past num_updates: no budget check
    states, _ = _run(config, 4)
    for u in range(1, 5):
        buffer = states[u].algo  # the previous K − 1 = 2 rollouts, oldest first, leaves [2, T, B, ...]
        valid = np.asarray(buffer.valid.sum(axis=(1, 2))) / (config.num_steps * config.num_envs)
        np.testing.assert_array_equal(valid, [0.0, 1.0] if u == 1 else [1.0, 1.0])
        collected = _model(config, states[u - 1]).distribution(buffer.obs[1])  # π that collected this rollout
        np.testing.assert_allclose(per_component_log_prob(collected, buffer.action[1], "multi_discrete"), buffer.log_prob[1],
                                   rtol=1e-5, atol=1e-5)
        if u > 1:  # last update's newest rollout has aged one slot, unchanged
            assert _same(jax.tree.map(lambda x: x[1], states[u - 1].algo), jax.tree.map(lambda x: x[0], buffer))


def _model(config, state):
    """The network of ``state`` on lot sizing (params merged into the trainer's module graph)."""
    env, params = make_lot_sizing()
    module = DualCriticActorCritic(policy_spec(env, params), config.hidden_sizes, config.actor_activation,
                                   config.critic_activation, critics=config.critics, init=config.init, rngs=nnx.Rngs(0))
    return nnx.merge(nnx.split(module)[0], state.params)


def test_buffer_first_update_equals_on_policy():
    """In update 1 the buffer holds only the current rollout (empty slots masked out), so K = 6 must give exactly
    the K = 1 result; update 2 differs (it trains on two rollouts)."""
    one, m_one = _run(DEFAULT, 2)
    six, m_six = _run(pdppo.PDPPOConfig(**TINY, buffer_rollouts=6), 2)
    _close(one[1].params, six[1].params)
    for name in ("loss", "policy_loss", "pre_value_loss", "post_value_loss", "explained_variance_pre"):
        np.testing.assert_allclose(m_one[0][name], m_six[0][name], rtol=1e-5, atol=1e-5, err_msg=name)
    assert not _same(one[2].params["actor"], six[2].params["actor"])


# ------------------------------------------------------------------------------------------------------------------
# actor_trainable="head" and the reference initializations
# ------------------------------------------------------------------------------------------------------------------


def test_head_only_actor_keeps_hidden_layers_at_init_and_critics_unaffected():
    """With ``"head"`` the actor's hidden layers stay bit-identical to their init over the run while its output
    layer moves; with ``"all"`` the hidden layers move too. After one update the critics must be equal in both runs:
    they saw the same data (the same initial policy collected it) and losses that do not depend on the actor."""
    head, _ = _run(pdppo.PDPPOConfig(**TINY, actor_trainable="head"), 2)
    full, _ = _run(DEFAULT, 1)
    assert _same(head[0].params, full[0].params)
    assert _same(head[0].params["actor"]["torso"], head[2].params["actor"]["torso"])
    assert not _same(head[0].params["actor"]["head"], head[1].params["actor"]["head"])
    assert not _same(full[0].params["actor"]["torso"], full[1].params["actor"]["torso"])
    for name in ("pre_critic", "post_critic"):
        _close(head[1].params[name], full[1].params[name])


def _layers(module_params):
    return [(np.asarray(layer["kernel"]), np.asarray(layer["bias"])) for layer in module_params["torso"]["layers"].values()]


@pytest.mark.parametrize("init, head_gain", [("reference", math.sqrt(2.0)), ("reference_ppo", 5.0 / 3.0)])
def test_reference_initializations(init, head_gain):
    """PyTorch-default hidden layers (weights and biases U(±1/√fan_in)), a Kaiming-uniform head with zero bias,
    Xavier-uniform critics with zero biases; the sample maxima come close to the bounds (so a wrong bound fails)."""
    env, params = make_lot_sizing()
    trainer = pdppo.make_train(pdppo.PDPPOConfig(init=init), env, params)
    p = trainer.init(jax.random.key(0), pdppo.PDPPOHParams()).params
    for kernel, bias in _layers(p["actor"]):
        bound = 1.0 / math.sqrt(kernel.shape[0])
        assert 0.95 * bound < np.abs(kernel).max() <= bound and 0.8 * bound < np.abs(bias).max() <= bound
    head = np.asarray(p["actor"]["head"]["kernel"])
    bound = head_gain * math.sqrt(3.0 / head.shape[0])
    assert 0.97 * bound < np.abs(head).max() <= bound
    np.testing.assert_array_equal(p["actor"]["head"]["bias"], 0.0)
    for critic in ("pre_critic", "post_critic"):
        for kernel, bias in _layers(p[critic]) + [(np.asarray(p[critic]["head"]["kernel"]), np.asarray(p[critic]["head"]["bias"]))]:
            bound = math.sqrt(6.0 / sum(kernel.shape))
            assert 0.9 * bound < np.abs(kernel).max() <= bound
            np.testing.assert_array_equal(bias, 0.0)


def test_library_init_is_the_default_and_differs_from_the_reference():
    env, params = make_lot_sizing()
    build = lambda **kw: pdppo.make_train(pdppo.PDPPOConfig(**kw), env, params).init(jax.random.key(0), pdppo.PDPPOHParams()).params
    assert _same(build(), build(init="library"))
    assert not _same(build(), build(init="reference"))


@pytest.mark.parametrize("kw, match", [(dict(actor_trainable="torso"), "actor_trainable"), (dict(init="xavier"), "init")])
def test_option_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        pdppo.PDPPOConfig(**kw)


# ------------------------------------------------------------------------------------------------------------------
# vf_coef and the named settings
# ------------------------------------------------------------------------------------------------------------------


def test_vf_coef_zero_freezes_the_critics_and_one_is_the_default():
    frozen, _ = _run(DEFAULT, 1, pdppo.PDPPOHParams(vf_coef=0.0))
    assert _same(frozen[0].params["pre_critic"], frozen[1].params["pre_critic"])
    assert _same(frozen[0].params["post_critic"], frozen[1].params["post_critic"])
    default, _ = _run(DEFAULT, 1)
    one, _ = _run(DEFAULT, 1, pdppo.PDPPOHParams(vf_coef=1.0))
    assert _same(default[1].params, one[1].params)
    with pytest.raises(ValueError, match="vf_coef"):
        pdppo.PDPPOHParams(vf_coef=-1.0)


def test_reference_and_default_settings():
    config, hp = reference_settings("pdppo", total_timesteps=8000)
    assert (config.buffer_rollouts, config.actor_trainable, config.init, config.critic_mode) == (6, "head", "reference", "dual")
    assert config.total_timesteps == 8000 and hp == pdppo.PDPPOHParams()
    config, hp = reference_settings("ppo")
    assert (config.buffer_rollouts, config.actor_trainable, config.init, config.critic_mode) == (6, "head", "reference_ppo", "ppo")
    assert hp.vf_coef == pytest.approx(1.4) and (hp.lr_actor, hp.lr_critic) == (5.5e-4, 1e-3)
    assert default_settings("pdppo")[0] == pdppo.PDPPOConfig()
    assert default_settings("ppo")[0] == pdppo.PDPPOConfig(critic_mode="ppo")
    for settings in (reference_settings, default_settings):
        with pytest.raises(ValueError, match="method"):
            settings("trpo")
