"""Post-Decision PPO with dual critics (PDPPO; Felizardo et al. 2025, arXiv:2504.05150) as a pure trainer.

PDPPO is clipped PPO for MDPs whose step splits into a deterministic part ``s^x_t = f(s_t, a_t)`` (the
*post-decision state*, reward ``r^x_t``) and a stochastic part ``s_{t+1} = g(s^x_t, ξ_{t+1})``. It trains two
critics, each on its own part of the reward (reference code ``PDPPO.py`` @bf3f368 [C])::

    r^pre_t = r_t − r^x_t                                  (the noise-dependent part)
    R_t   = r^pre_t + γ (1 − d_t) R_{t+1},   A^pre_t = R_t   − V_φ(s_t)
    R^x_t = r^x_t   + γ (1 − d_t) R^x_{t+1}, A^x_t   = R^x_t − V_ψ(s^x_t)
    A_t   = max(A^pre_t, A^x_t)                                       (element-wise)
    L_π   = mean_{t,m}[ −min(ρ_{t,m} A_t, clip(ρ_{t,m}, 1 ± ε) A_t) ] − c_H · mean_{t,m} H[π_m(·|s_t)]
    L_V   = mean_t (V_φ(s_t) − R_t)²,   L_Vx = mean_t (V_ψ(s^x_t) − R^x_t)²

with ``ρ_{t,m}`` the ratio of sub-action ``m`` (one categorical per machine for MultiDiscrete actions; the
scalar advantage is broadcast over ``m``), and one Adam optimizer per network (actor, V_φ, V_ψ). The env must expose the pure ``post_decision(state, action, params) -> (post_obs, post_reward)``. Its result is
read from ``info["post_obs"]``/``info["post_reward"]`` of the ordinary step when the env reports them there (our
``LotSizing`` and ``FrozenLakeStochastic`` do); otherwise the trainer evaluates ``post_decision`` on the pre-step
state inside the rollout. Either way the env is stepped once per transition.

Variants ([P] where marked; the defaults are the paper's final code):

- ``target_mode="monte_carlo"`` (paper): discounted returns of the buffer, reset at episode ends, no bootstrap
  at the buffer end; exact when episodes align with the buffer (lot sizing: 4 envs × 100 steps = 4 episodes,
  as the reference's "update every 4 episodes"). ``"gae"`` [P, our extension]: GAE(λ) per critic,
  see :func:`critic_targets`.
- ``advantage_combiner``: ``"max"`` (paper), ``"pre_only"`` (``A = A^pre``), ``"post_only"`` (``A = A^x``),
  ``"min_value"`` (the older ``PDPPO.py`` @a760530: both critics predict the *total* return ``G_t`` and
  ``A = G_t − min(V_φ(s_t), V_ψ(s^x_t))``, critic loss ``(min(V_φ, V_ψ) − G)²``; we do not normalize returns).
- ``critic_mode="one_critic"`` ("PDPPO one critic"): a single critic ``V_ψ(s^x_t)`` on the total return,
  ``A = G_t − V_ψ(s^x_t)``. ``critic_mode="ppo"``: PPO inside this trainer, one pre-decision critic ``V_φ(s_t)``
  on the total return, ``A = G_t − V_φ(s_t)``, everything else (per-machine ratio, mean entropy, networks,
  optimizers, batch layout) PDPPO's: the matched baseline (reference ``PPO.py`` @ff58990 [C]).

Reference-faithful options [C]; each default is the option's neutral (clean) value, and
:func:`~purejaxpo.algorithms.pdppo_reference.reference_settings` names both reference methods' full settings:

- ``buffer_rollouts=6``: the reference never clears its buffer and drops the oldest 400 transitions after an
  update once it holds more than 2000, so updates 1..5 train on 400..2000 transitions and later ones on 2400 = 6
  rollouts, old samples keeping the collecting policy's log-probs and values (see ``rolling_window``).
- ``actor_trainable="head"``: the actor's optimizer holds its output layer only, the hidden layers stay at their
  init (``Adam(self.policy.actor.parameters())``, PDPPO and PPO alike); ``init="reference"``/``"reference_ppo"``:
  the reference's initializations (:mod:`purejaxpo.networks.dual_critic`).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx, struct

from purejaxpo import engine
from purejaxpo.engine import RolloutBudget, require_positive_ints, validate_config
from purejaxpo.envs.post_decision import post_decision_env, post_decision_extras
from purejaxpo.networks.distributions import per_component_entropy, per_component_log_prob
from purejaxpo.networks.dual_critic import INITS, DualCriticActorCritic, dual_critic_optimizer
from purejaxpo.primitives.advantages import masked_mean, normalize
from purejaxpo.primitives.losses import clip_fraction, sample_kl, value_loss
from purejaxpo.primitives.pdppo import (
    COMBINERS, CRITIC_MODES, TARGET_MODES, RolloutData, empty_rollouts, masked_explained_variance, pdppo_targets,
    rolling_window, sub_action_surrogate,
)
from purejaxpo.spaces import policy_spec
from purejaxpo.types import CheckedHParams, Trainer, at_least

Array = jax.Array
ADAM_EPS = 1e-8  # PyTorch's Adam default, as in the reference code
ACTOR_TRAINABLE = ("all", "head")


@dataclasses.dataclass(frozen=True)
class PDPPOConfig(RolloutBudget):
    """Static settings (shapes, loop counts, flags). Defaults follow the reference lot-sizing code:
    4 envs × 100 steps = 400 env steps (4 episodes) per update, 40 full-batch epochs, 128-128 networks with a
    ReLU actor and tanh critics, Monte-Carlo targets, the max combiner, no normalization.

    ``normalize_obs`` uses running observation statistics for both ``s`` and ``s^x`` (same layout). Fields:
        actor_activation: hidden activation of the actor
        critic_activation: hidden activation of the critics
        critic_mode: dual (pre- and post-decision critics), one_critic (post-decision only) or ppo (the single-critic baseline)
        advantage_combiner: how the dual critics' advantages combine
        target_mode: critic targets: Monte-Carlo returns or GAE
        buffer_rollouts: rollouts trained on per update (6 at steady state in the reference, growing 1..6; 1 = on-policy)
        actor_trainable: which actor parameters the optimizer updates: all, or the output layer only (head, as the reference)
        init: parameter initialization (one of dual_critic.INITS)
    """

    algorithm_name: ClassVar[str] = "pdppo"
    choices: ClassVar[dict[str, Any]] = {"critic_mode": CRITIC_MODES, "advantage_combiner": COMBINERS, "target_mode": TARGET_MODES,
                                         "actor_trainable": ACTOR_TRAINABLE, "init": INITS}

    num_envs: int = 4
    num_steps: int = 100
    total_timesteps: int = 1_000_000
    update_epochs: int = 40
    num_minibatches: int = 1
    hidden_sizes: tuple[int, ...] = (128, 128)
    actor_activation: str = "relu"
    critic_activation: str = "tanh"
    critic_mode: str = "dual"
    advantage_combiner: str = "max"
    target_mode: str = "monte_carlo"
    buffer_rollouts: int = 1
    actor_trainable: str = "all"
    init: str = "library"
    normalize_obs: bool = False
    normalize_advantages: bool = False
    anneal_lr: bool = False

    def __post_init__(self) -> None:
        validate_config(self)
        if self.critic_mode != "dual" and self.advantage_combiner != "max":
            raise ValueError(
                "PDPPOConfig.advantage_combiner combines the two critics of critic_mode='dual'; with "
                f"critic_mode={self.critic_mode!r} leave it at 'max', got {self.advantage_combiner!r}"
            )
        require_positive_ints(self, ("buffer_rollouts",))

    @property
    def critics(self) -> tuple[str, ...]:
        """The critics this mode trains: ``pre`` = ``V_φ(s)``, ``post`` = ``V_ψ(s^x)``."""
        return {"dual": ("pre", "post"), "one_critic": ("post",), "ppo": ("pre",)}[self.critic_mode]


@struct.dataclass
class PDPPOHParams(CheckedHParams):
    """Traced hyperparameters (reference lot-sizing values; the final reference code does not clip gradients,
    the older one clipped at 1.0). ``vf_coef`` weighs each critic's ½-squared-error loss; with one Adam per network
    it only rescales the critics' gradients, which Adam undoes (up to ``eps``), so the reference PPO's ``0.7·MSE``
    is ``vf_coef = 1.4`` here and changes little. Fields:
        lr_actor: actor learning rate
        lr_critic: learning rate of each critic
        gae_lambda: GAE λ (target_mode gae only)
        max_grad_norm: global-norm clip, per optimizer (actor, each critic); 0 = off
        vf_coef: weight of each critic's loss
    """

    lr_actor: float = 5.5e-4
    lr_critic: float = 1e-3
    gamma: float = 0.9
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 0.001
    max_grad_norm: float = 0.0
    vf_coef: float = 1.0


PDPPOHParams.rules = {"vf_coef": at_least(0), "lr_actor": at_least(0), "lr_critic": at_least(0),
                      "max_grad_norm": at_least(0, " (0 turns clipping off)")}


@struct.dataclass
class PDPPOBatch:
    """Training samples ``[T, B, ...]`` (observations already normalized when configured)."""

    obs: Array
    post_obs: Array
    action: Array
    log_prob: Array  # [N, M]
    advantages: Array
    pre_target: Array
    post_target: Array
    mask: Array  # [N] 1 = a real sample, 0 = an empty buffer slot


def pdppo_loss(
    model: DualCriticActorCritic, batch: PDPPOBatch, hp: PDPPOHParams, config: PDPPOConfig, kind: str
) -> tuple[Array, dict[str, Array]]:
    """``L = L_π − c_H H + c_V (L_V + L_Vx)`` on one minibatch (module docstring). The critic terms use
    :func:`~purejaxpo.primitives.losses.value_loss` (½ squared error: with a separate Adam per critic the ½ only
    rescales gradients, which Adam normalizes away). The reference's ``+ 0.7·(L_V + L_Vx).detach()`` in the actor
    loss is a constant and is left out."""
    mask = batch.mask
    dist = model.distribution(batch.obs)
    log_ratio = per_component_log_prob(dist, batch.action, kind) - batch.log_prob  # [N, M]
    advantages = normalize(batch.advantages, mask) if config.normalize_advantages else batch.advantages
    policy_loss = masked_mean(sub_action_surrogate(log_ratio, advantages, hp.clip_eps), mask)
    entropy = masked_mean(jnp.mean(per_component_entropy(dist, kind), axis=-1), mask)
    zero = jnp.zeros(())
    if config.critic_mode == "ppo":
        pre_loss, post_loss = masked_mean(value_loss(model.pre_value(batch.obs), batch.pre_target), mask), zero
    elif config.critic_mode == "one_critic":
        pre_loss, post_loss = zero, masked_mean(value_loss(model.post_value(batch.post_obs), batch.post_target), mask)
    elif config.advantage_combiner == "min_value":
        pre_loss, value = zero, jnp.minimum(model.pre_value(batch.obs), model.post_value(batch.post_obs))
        post_loss = masked_mean(value_loss(value, batch.post_target), mask)
    else:
        pre_loss = masked_mean(value_loss(model.pre_value(batch.obs), batch.pre_target), mask)
        post_loss = masked_mean(value_loss(model.post_value(batch.post_obs), batch.post_target), mask)
    loss = policy_loss - hp.ent_coef * entropy + hp.vf_coef * (pre_loss + post_loss)
    joint_log_ratio = jnp.sum(log_ratio, axis=-1)
    aux = {
        "policy_loss": policy_loss,
        "pre_value_loss": pre_loss,
        "post_value_loss": post_loss,
        "entropy": entropy,
        "approx_kl": masked_mean(sample_kl(joint_log_ratio, "k3"), mask),
        "clip_fraction": masked_mean(jnp.mean(clip_fraction(log_ratio, hp.clip_eps), axis=-1), mask),
    }
    return loss, aux


def make_train(config: PDPPOConfig, env: Any, env_params: Any) -> Trainer:
    """Build the PDPPO :class:`~purejaxpo.types.Trainer`; raises ``ValueError`` for continuous actions or an env
    without ``post_decision``. ``state.algo`` holds the previous ``buffer_rollouts − 1`` rollouts (or ``None``)."""
    spec = policy_spec(env, env_params)
    if spec.kind not in ("discrete", "multi_discrete"):
        raise ValueError(f"PDPPO supports discrete and multi_discrete actions; this env's actions are {spec.kind}")
    stepper = post_decision_env(env, env_params, spec)
    horizon = getattr(env_params, "max_steps_in_episode", None)
    if config.target_mode == "monte_carlo" and isinstance(horizon, int) and config.num_steps % horizon:
        warnings.warn(f"target_mode='monte_carlo' does not bootstrap at the end of a rollout, but num_steps={config.num_steps} "
                      f"is not a multiple of the episode limit {horizon}: the returns of the episodes cut at the rollout end "
                      f"are truncated (consider num_steps={horizon} or target_mode='gae')", stacklevel=2)
    past_rollouts = config.buffer_rollouts - 1
    gae_mode, pre, post = config.target_mode == "gae", "pre" in config.critics, "post" in config.critics

    def policy_step(model: DualCriticActorCritic, obs: Array, key: Array) -> tuple[Array, Array, Array, Array]:
        dist = model.distribution(obs)
        action = dist.sample(seed=key)
        return action, action, per_component_log_prob(dist, action, spec.kind), jnp.zeros(obs.shape[:1])

    def prepare(exp: engine.Experience, ctx: engine.UpdateContext) -> engine.Prepared:
        """π_old's critic values of this rollout, the window of the last K rollouts, targets and the batch."""
        model, observe, traj = ctx.model, ctx.observe, exp.trajectory
        post_obs, zeros = traj.extras["post_obs"], jnp.zeros_like(traj.reward)
        current = RolloutData(
            obs=traj.obs, post_obs=post_obs, action=traj.action, log_prob=traj.log_prob, reward=traj.reward,
            post_reward=traj.extras["post_reward"], value=model.pre_value(observe(traj.obs)) if pre else zeros,
            post_value=model.post_value(observe(post_obs)) if post else zeros,
            final_value=model.pre_value(observe(traj.final_obs)) if gae_mode and pre else zeros,
            terminated=traj.terminated, truncated=traj.truncated, valid=jnp.ones_like(traj.reward),
        )
        last_value = last_post_value = None
        if gae_mode:  # bootstrap V_φ(s_T) and V_ψ(f(s_T, a')), a' ~ π(·|s_T)
            next_obs = observe(exp.env.obs)
            last_value = model.pre_value(next_obs) if pre else None
            if post:
                next_action = model.distribution(next_obs).sample(seed=ctx.key)
                next_post_obs, _ = jax.vmap(env.post_decision, in_axes=(0, 0, None))(exp.env.env_state, next_action, env_params)
                last_post_value = model.post_value(observe(next_post_obs))
        window, buffer = rolling_window(ctx.carried, current) if past_rollouts else (current, None)
        hp = ctx.hp
        targets = pdppo_targets(
            window, last_value, last_post_value, hp.gamma, hp.gae_lambda,
            target_mode=config.target_mode, combiner=config.advantage_combiner, critic_mode=config.critic_mode,
        )
        batch = PDPPOBatch(observe(window.obs), observe(window.post_obs), window.action, window.log_prob, targets.advantages,
                           targets.pre_target, targets.post_target, window.valid)
        metrics = {
            "explained_variance_pre": masked_explained_variance(window.value, targets.pre_target, window.valid),
            "explained_variance_post": masked_explained_variance(window.post_value, targets.post_target, window.valid),
            "post_advantage_share": masked_mean((targets.adv_post > targets.adv_pre).astype(jnp.float32), window.valid),
            "advantage_mean": masked_mean(targets.advantages, window.valid),
        }
        return engine.Prepared(batch, buffer, metrics)

    def hyperparams(hp: PDPPOHParams, update_index: Array) -> dict[str, Array]:
        scale = engine.linear_annealing(jnp.ones(()), update_index, config.num_updates, config.anneal_lr)
        return {"lr_actor": hp.lr_actor * scale, "lr_critic": hp.lr_critic * scale,
                "max_grad_norm": jnp.where(hp.max_grad_norm > 0, hp.max_grad_norm, jnp.inf)}

    def keys(key: Array) -> engine.UpdateKeys:
        next_key, collect_key, epoch_key = jax.random.split(key, 3)
        rollout_key, boot_key = jax.random.split(collect_key)
        return engine.UpdateKeys(next_key, rollout_key, boot_key, (epoch_key,), None)

    phase = engine.Phase(
        loss=lambda m, mb, ctx: pdppo_loss(m, mb, ctx.hp, config, spec.kind),
        optimizer=dual_critic_optimizer(config.critics, config.actor_trainable, ADAM_EPS), epochs=config.update_epochs, minibatches=config.num_minibatches,
        hyperparams=hyperparams, report={"lr_actor": "learning_rate_actor"},
    )
    parts = engine.OnPolicyParts(
        network=lambda key: DualCriticActorCritic(spec, config.hidden_sizes, config.actor_activation, config.critic_activation,
                                                  critics=config.critics, init=config.init, rngs=nnx.Rngs(params=key)),
        policy_step=policy_step,
        prepare=prepare,
        phases=(phase,),
        init_carried=(lambda params, hp: empty_rollouts(past_rollouts, config.num_steps, config.num_envs, spec)) if past_rollouts else None,
        info_extras=post_decision_extras,
        env=stepper,
        keys=keys,
    )
    return engine.build(parts, config, env, env_params)
