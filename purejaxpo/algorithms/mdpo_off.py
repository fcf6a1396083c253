"""Off-policy Mirror Descent Policy Optimization and SAC (Tomar et al., ICLR 2022, arXiv:2005.09814; Haarnoja
et al. 2018, arXiv:1801.01290) from one pure, jittable trainer.

Networks: a tanh-squashed Gaussian policy ``π_θ`` (``log σ`` clipped to ``[−20, 2]``), twin soft Q
``Q_φ1, Q_φ2``, a state value ``V_ψ`` with a Polyak target ``V_ψ̄`` (the SAC-v1 structure), and for MDPO a frozen
snapshot ``π_θk`` of the policy, re-synced every ``m = sgd_steps`` gradient steps (one MD iteration = m SGD steps).
Per gradient step, on a uniform replay sample ``(s, a, r, s', d)`` and ``ã = tanh(μ_θ(s) + σ_θ(s) ε)``::

    y   = r + γ (1 − d) V_ψ̄(s')                        (d = termination only; truncation bootstraps)
    L_Q = ½ mean (Q_φ1(s,a) − y)² + ½ mean (Q_φ2(s,a) − y)²
    L_V = ½ mean (V_ψ(s) − [min_i Q_φi(s,ã) − λ log π_θ(ã|s)])²
    L_π = mean[ c_KL (log π_θ(ã|s) − log π_θk(ã|s)) + λ log π_θk(ã|s) − Q_φ1(s,ã) ]     (MDPO)
    L_π = mean[ λ log π_θ(ã|s) − Q_φ1(s,ã) ]                                             (SAC)
          + reg · (mean μ_θ(s)² + mean log σ_θ(s)²)
    ψ̄ ← (1 − τ) ψ̄ + τ ψ

(targets under stop-gradient; critics and actor step simultaneously from the same parameters). ``c_KL = 1/t_k``
is the constant ``kl_coef`` as in the released code [C]; ``anneal_kl=True`` uses ``t_k = (1/kl_coef)(1 − k/K)``
over the run's MD iterations instead [P].

Reference (``mdpo_off/mdpo.py`` @c9bd3ba) [C]: after warm-up the released code acts with ``tanh(μ)``
(``deterministic_collection=True``), takes exactly one gradient step per env step (``gradient_steps=1``) and
re-syncs ``π_θk`` every ``sgd_steps`` env steps (ours counts gradient steps: the same clock shifted by the
warm-up). Its log-densities are full-scale (no ``0.5·log p``), each dimension clamped below at ``log 1e-6`` inside
its Tsallis helper (a clamp that rarely binds and is not reproduced here); it treats time-limit ends as terminal
(ours bootstraps them).

Data collection: ``num_envs`` auto-resetting envs. ``init`` fills the buffer with ``warmup_steps`` vector steps
(``⌈learning_starts / num_envs⌉``) of uniform-random actions: warm-up costs a rollout, never a gradient step.
Every update then acts with *sampled* actions (SAC's choice; ``deterministic_collection=True`` gives the
released MDPO code's ``tanh(μ)``) [P]; every ``train_freq`` vector steps the transitions go into a pure circular
buffer (:mod:`purejaxpo.replay`; a plain pytree that vmaps over seeds) and ``gradient_steps`` gradient steps
follow. One ``update`` is ``steps_per_update`` vector steps (``batch_size = num_envs · steps_per_update`` env
steps); the budget ``total_timesteps`` covers the warm-up and the updates.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct

from purejaxpo import engine
from purejaxpo.engine import gradient_step, require_positive_ints, validate_config
from purejaxpo.networks.squashed_gaussian import Critic, SquashedGaussianActor, sample_squashed, squashed_log_prob
from purejaxpo.engine import offpolicy
from purejaxpo.primitives.mdpo import mdpo_off_actor_loss, mdpo_step_size, sac_actor_loss
from purejaxpo.replay import replay_sample
from purejaxpo.spaces import policy_spec
from purejaxpo.types import CheckedHParams, Trainer, above, at_least, in_interval

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class OffPolicyConfig(offpolicy.ReplayBudget):
    """Static settings shared by off-policy MDPO and SAC (defaults).

    ``sgd_steps`` (``m``) and ``anneal_kl`` are MDPO's; SAC ignores them. ``train_batch_size`` is the replay
    sample per gradient step; the budget properties (warm-up, updates, buffer capacity) are
    :class:`~purejaxpo.engine.offpolicy.ReplayBudget`'s.

    Fields:
        train_batch_size: replay sample per gradient step
        sgd_steps: MDPO: gradient steps between syncs of the old policy π_θk (SAC ignores it)
        anneal_kl: MDPO: anneal t_k over the MD iterations instead of the constant kl_coef (SAC ignores it)
        hidden_sizes: widths of the actor, Q and V networks
        activation: hidden activation of every network
        deterministic_collection: collect with tanh(μ) instead of sampled actions
    """

    algorithm_name: ClassVar[str] = "mdpo_off"

    VARIANT: ClassVar[str] = "mdpo"

    num_envs: int = 1
    steps_per_update: int = 1000
    total_timesteps: int = 1_000_000
    train_freq: int = 1
    gradient_steps: int = 1
    train_batch_size: int = 256
    buffer_size: int = 1_000_000
    learning_starts: int = 10_000
    sgd_steps: int = 1000
    anneal_kl: bool = False
    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    deterministic_collection: bool = False

    def __post_init__(self) -> None:
        validate_config(self, batch_layout=False)
        require_positive_ints(self, ("sgd_steps",))
        offpolicy.check_replay_budget(self)


@dataclasses.dataclass(frozen=True)
class MDPOOffConfig(OffPolicyConfig):
    """Off-policy MDPO (KL to the policy from ``sgd_steps`` gradient steps ago, entropy on the old policy)."""

    algorithm_name: ClassVar[str] = "mdpo_off"

    VARIANT: ClassVar[str] = "mdpo"


@dataclasses.dataclass(frozen=True)
class SACConfig(OffPolicyConfig):
    """SAC (v1, fixed temperature, V-network) from the same code: the MDPO-off baseline."""

    algorithm_name: ClassVar[str] = "sac"

    VARIANT: ClassVar[str] = "sac"


@struct.dataclass
class OffPolicyHParams(CheckedHParams):
    """Traced hyperparameters: ``ent_coef`` is ``λ``, ``kl_coef`` is ``c_KL = 1/t_k`` (MDPO only),
    ``reg_coef`` the actor's ``mean μ² + mean log σ²`` penalty.

    Fields:
        lr: Adam learning rate of every network
        tau: Polyak rate of the target value network
        ent_coef: entropy temperature λ
        kl_coef: MDPO: KL weight c_KL = 1/t_k
        reg_coef: weight of the actor's mean μ² + mean log σ² penalty
    """

    lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    ent_coef: float = 0.2
    kl_coef: float = 1.0
    reg_coef: float = 1e-3


OffPolicyHParams.rules = {
    "tau": in_interval(0, 1),
    "kl_coef": above(0),
    "reg_coef": at_least(0),
}


@struct.dataclass
class Learner:
    """What the gradient steps change: ``params = {actor, q1, q2, v}``, the Polyak target ``V_ψ̄``, MDPO's
    ``old_actor`` ``π_θk`` (unused by SAC), the optimizers (learning rate in their state,
    :mod:`purejaxpo.engine.optim`) and ``grad_steps`` (the old-policy sync clock)."""

    params: dict[str, Any]
    target_v: Any
    old_actor: Any
    actor_opt: Any
    critic_opt: Any
    grad_steps: Array


def critic_loss(
    graphdefs: dict[str, Any], critic_params: dict[str, Any], actor_params: Any, target_v: Any, batch: dict[str, Array],
    key: Array, hp: OffPolicyHParams,
) -> tuple[Array, dict[str, Array]]:
    """``L_Q + L_V`` (SAC v1) on one replay sample ``batch`` ``[N, ...]``; targets are stop-gradient."""
    q1, q2 = nnx.merge(graphdefs["q"], critic_params["q1"]), nnx.merge(graphdefs["q"], critic_params["q2"])
    v = nnx.merge(graphdefs["v"], critic_params["v"])
    v_next = nnx.merge(graphdefs["v"], target_v)(batch["next_obs"])
    y = jax.lax.stop_gradient(batch["reward"] + hp.gamma * (1.0 - batch["terminated"]) * v_next)
    sa = jnp.concatenate([batch["obs"], batch["action"]], axis=-1)
    q1_loss = 0.5 * jnp.mean(jnp.square(q1(sa) - y))
    q2_loss = 0.5 * jnp.mean(jnp.square(q2(sa) - y))
    mean, log_std = nnx.merge(graphdefs["actor"], actor_params)(batch["obs"])
    action, _, log_prob = sample_squashed(mean, log_std, key)
    s_new = jnp.concatenate([batch["obs"], action], axis=-1)
    v_target = jax.lax.stop_gradient(jnp.minimum(q1(s_new), q2(s_new)) - hp.ent_coef * log_prob)
    v_loss = 0.5 * jnp.mean(jnp.square(v(batch["obs"]) - v_target))
    return q1_loss + q2_loss + v_loss, {"q_loss": q1_loss + q2_loss, "value_loss": v_loss, "q_mean": jnp.mean(y)}


def actor_loss(
    graphdefs: dict[str, Any], actor_params: Any, old_actor: Any, q1_params: Any, batch: dict[str, Array], key: Array,
    hp: OffPolicyHParams, kl_coef: Array, variant: str,
) -> tuple[Array, dict[str, Array]]:
    """MDPO's or SAC's actor loss (module docstring) on one replay sample; ``Q_φ1`` and ``π_θk`` are fixed."""
    actor_def = graphdefs["actor"]
    mean, log_std = nnx.merge(actor_def, actor_params)(batch["obs"])
    action, pre_tanh, log_prob = sample_squashed(mean, log_std, key)
    q1 = nnx.merge(graphdefs["q"], jax.lax.stop_gradient(q1_params))
    q = q1(jnp.concatenate([batch["obs"], action], axis=-1))
    if variant == "sac":
        per_sample = sac_actor_loss(log_prob, q, hp.ent_coef)
        kl = jnp.zeros(())
    else:
        old_mean, old_log_std = nnx.merge(actor_def, jax.lax.stop_gradient(old_actor))(batch["obs"])
        old_log_prob = squashed_log_prob(pre_tanh, old_mean, old_log_std)
        per_sample = mdpo_off_actor_loss(log_prob, old_log_prob, q, kl_coef, hp.ent_coef)
        kl = jnp.mean(log_prob - old_log_prob)
    reg = hp.reg_coef * (jnp.mean(jnp.square(mean)) + jnp.mean(jnp.square(log_std)))
    loss = jnp.mean(per_sample) + reg
    return loss, {"actor_loss": loss, "entropy": -jnp.mean(log_prob), "kl": kl}


def make_train(config: OffPolicyConfig, env: Any, env_params: Any) -> Trainer:
    """Build the off-policy MDPO (``MDPOOffConfig``) or SAC (``SACConfig``) :class:`~purejaxpo.types.Trainer`."""
    if not isinstance(config, OffPolicyConfig):
        raise TypeError(f"mdpo_off.make_train needs an MDPOOffConfig or SACConfig, got {type(config).__name__}")
    variant = config.VARIANT
    spec = policy_spec(env, env_params)
    if spec.kind != "continuous":
        raise ValueError(f"off-policy MDPO/SAC need continuous (Box) actions; this env's action space is {spec.kind}")
    if len(spec.obs_shape) != 1:
        raise ValueError(f"off-policy MDPO/SAC need flat observations, got shape {spec.obs_shape}")
    obs_dim, action_dim = spec.obs_shape[0], spec.action_dim
    num_md_iterations = max(1, config.total_gradient_steps // config.sgd_steps)
    optimizer = engine.adam()

    def build(key: Array) -> dict[str, Any]:
        keys = jax.random.split(key, 4)
        h, a = config.hidden_sizes, config.activation
        return {
            "actor": SquashedGaussianActor(obs_dim, action_dim, h, a, rngs=nnx.Rngs(params=keys[0])),
            "q1": Critic(obs_dim + action_dim, h, a, rngs=nnx.Rngs(params=keys[1])),
            "q2": Critic(obs_dim + action_dim, h, a, rngs=nnx.Rngs(params=keys[2])),
            "v": Critic(obs_dim, h, a, rngs=nnx.Rngs(params=keys[3])),
        }

    split = {name: nnx.split(module) for name, module in nnx.eval_shape(lambda: build(jax.random.key(0))).items()}
    graphdefs = {"actor": split["actor"][0], "q": split["q1"][0], "v": split["v"][0]}

    def init_learner(key: Array, hp: OffPolicyHParams) -> Learner:
        params = {name: nnx.split(module)[1] for name, module in build(key).items()}
        critics = {k: params[k] for k in ("q1", "q2", "v")}
        return Learner(
            params=params, target_v=params["v"], old_actor=params["actor"],
            actor_opt=engine.init_optimizer(optimizer, params["actor"], learning_rate=hp.lr),
            critic_opt=engine.init_optimizer(optimizer, critics, learning_rate=hp.lr),
            grad_steps=jnp.zeros((), jnp.int32),
        )

    def learn(learner: Learner, buffer: Any, key: Array, hp: OffPolicyHParams) -> tuple[Learner, dict[str, Array]]:
        """One gradient step on critics and actor (simultaneous), the Polyak step, and the old-policy sync."""
        sample_key, critic_key, actor_key = jax.random.split(key, 3)
        batch = replay_sample(buffer, sample_key, config.train_batch_size)
        params = learner.params
        critics = {k: params[k] for k in ("q1", "q2", "v")}
        if config.anneal_kl:
            md_iteration = learner.grad_steps // config.sgd_steps
            kl_coef = 1.0 / mdpo_step_size(md_iteration, num_md_iterations, 1.0 / hp.kl_coef)
        else:
            kl_coef = jnp.asarray(hp.kl_coef, jnp.float32)
        c_fn = lambda p, b: critic_loss(graphdefs, p, params["actor"], learner.target_v, b, critic_key, hp)
        critics, critic_opt, c_metrics = gradient_step(critics, learner.critic_opt, batch, c_fn, optimizer)
        a_fn = lambda p, b: actor_loss(graphdefs, p, learner.old_actor, params["q1"], b, actor_key, hp, kl_coef, variant)
        actor, actor_opt, a_metrics = gradient_step(params["actor"], learner.actor_opt, batch, a_fn, optimizer)
        grad_steps = learner.grad_steps + 1
        sync = grad_steps % config.sgd_steps == 0
        new = Learner(
            params={"actor": actor, **critics}, target_v=optax.incremental_update(critics["v"], learner.target_v, hp.tau),
            old_actor=jax.tree.map(lambda n, o: jnp.where(sync, n, o), actor, learner.old_actor),
            actor_opt=actor_opt, critic_opt=critic_opt, grad_steps=grad_steps,
        )
        metrics = {
            "loss": c_metrics["loss"] + a_metrics["loss"], "q_loss": c_metrics["q_loss"],
            "value_loss": c_metrics["value_loss"], "q_target_mean": c_metrics["q_mean"],
            "actor_loss": a_metrics["actor_loss"], "entropy": a_metrics["entropy"], "kl": a_metrics["kl"],
            "kl_coef": kl_coef, "nonfinite": c_metrics["nonfinite"] + a_metrics["nonfinite"],
        }
        return new, metrics

    def behaviour(learner: Learner, obs: Array, key: Array, deterministic: bool) -> Array:
        mean, log_std = nnx.merge(graphdefs["actor"], learner.params["actor"])(obs)
        return jnp.tanh(mean) if deterministic else sample_squashed(mean, log_std, key)[0]

    def before_update(learner: Learner, hp: OffPolicyHParams) -> Learner:
        return learner.replace(
            actor_opt=engine.set_hyperparams(learner.actor_opt, learning_rate=hp.lr),
            critic_opt=engine.set_hyperparams(learner.critic_opt, learning_rate=hp.lr),
        )

    parts = offpolicy.OffPolicyParts(
        init_learner=init_learner, learn=learn, behaviour=behaviour, before_update=before_update,
        metrics=lambda learner: {"gradient_steps": learner.grad_steps.astype(jnp.float32)},
    )
    return offpolicy.build(parts, config, env, env_params, deterministic_collection=config.deterministic_collection)


__all__ = [
    "Learner", "MDPOOffConfig", "OffPolicyConfig", "OffPolicyHParams", "SACConfig", "actor_loss", "critic_loss", "make_train",
]
