"""Off-policy Mirror Descent Policy Optimization and SAC (Tomar et al., ICLR 2022, arXiv:2005.09814; Haarnoja
et al. 2018, arXiv:1801.01290) from one pure, jittable trainer. Spec: ``shared/specs/mdpo.md`` §2.2.

Networks (spec §3): a tanh-squashed Gaussian policy ``π_θ`` (``log σ`` clipped to ``[−20, 2]``), twin soft Q
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
over the run's MD iterations instead [P, spec §7.4].

Data collection: ``num_envs`` auto-resetting envs; uniform-random actions until ``learning_starts`` env steps,
then *sampled* actions (SAC's choice; ``deterministic_collection=True`` gives the released MDPO code's
``tanh(μ)``) [P, spec §2.2]. Every ``train_freq`` vector steps the transitions go into a pure circular buffer
(:mod:`purejaxpo.replay`; flashbax is not installed, and ours is a plain pytree that vmaps over seeds) and
``gradient_steps`` gradient steps follow (none before ``learning_starts``). One ``update`` is
``steps_per_update`` vector steps, i.e. ``batch_size = num_envs · steps_per_update`` env steps.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct

from purejaxpo.algorithms import common
from purejaxpo.algorithms.onpolicy import gradient_step
from purejaxpo.networks.torsos import ACTIVATIONS, MLP, dense
from purejaxpo.primitives.mdpo import (
    mdpo_off_actor_loss,
    mdpo_step_size,
    sac_actor_loss,
    squashed_gaussian_log_prob,
)
from purejaxpo.replay import ReplayState, replay_add, replay_init, replay_sample
from purejaxpo.rollout import EnvCarry, EpisodeStats, init_env_carry, rollout
from purejaxpo.types import CheckedHParams, Trainer, above, at_least, in_interval, scan_train

Array = jax.Array
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
# The state fields a gradient step changes (everything else, e.g. the replay buffer, is read-only there).
LEARNER_FIELDS = ("params", "target_v", "old_actor", "actor_opt", "critic_opt", "grad_steps")


# ----------------------------------------------------------------------------------------------------------------
# Config and hyperparameters
# ----------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OffPolicyConfig(common.RolloutBudget):
    """Static settings shared by off-policy MDPO and SAC (spec §4 defaults).

    ``sgd_steps`` (``m``) and ``anneal_kl`` are MDPO's; SAC ignores them. ``train_batch_size`` is the replay
    sample per gradient step; ``batch_size`` (a property, for the runner) is env steps per update. The buffer
    holds ``min(buffer_size, total env steps)`` transitions.
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
        name = type(self).__name__
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        if not self.hidden_sizes or any(not isinstance(h, int) or h <= 0 for h in self.hidden_sizes):
            raise ValueError(f"{name}.hidden_sizes must be positive integers, got {self.hidden_sizes!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"{name}.activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        common.require_positive_ints(
            self,
            ("num_envs", "steps_per_update", "total_timesteps", "train_freq", "gradient_steps", "train_batch_size",
             "buffer_size", "sgd_steps"),
        )
        if not isinstance(self.learning_starts, int) or isinstance(self.learning_starts, bool) or self.learning_starts < 0:
            raise ValueError(f"{name}.learning_starts must be a non-negative integer, got {self.learning_starts!r}")
        if self.steps_per_update % self.train_freq:
            raise ValueError(f"{name}.steps_per_update={self.steps_per_update} must be a multiple of train_freq={self.train_freq}")
        if self.total_timesteps < self.batch_size:
            raise ValueError(
                f"total_timesteps={self.total_timesteps} is smaller than one update "
                f"(num_envs × steps_per_update = {self.batch_size})"
            )
        if self.learning_starts >= self.num_updates * self.batch_size:  # gradient steps need env_steps > learning_starts
            raise ValueError(
                f"{name}.learning_starts={self.learning_starts} is not below the {self.num_updates * self.batch_size} env "
                f"steps this budget runs: no gradient step would ever be taken; lower learning_starts or raise total_timesteps"
            )
        if self.num_envs * self.train_freq > self.capacity:
            raise ValueError(f"{name}: one collection step ({self.num_envs * self.train_freq} transitions) exceeds the buffer")
        if self.num_updates * self.batch_size != self.total_timesteps:
            warnings.warn(
                f"total_timesteps={self.total_timesteps} is not a multiple of the update size {self.batch_size}: "
                f"training runs {self.num_updates} updates = {self.num_updates * self.batch_size} env steps",
                stacklevel=3,
            )

    @property
    def batch_size(self) -> int:
        """Env steps per update (all envs)."""
        return self.num_envs * self.steps_per_update

    @property
    def capacity(self) -> int:
        return min(self.buffer_size, max(self.total_timesteps, self.num_envs * self.train_freq))

    @property
    def total_gradient_steps(self) -> int:
        return self.num_updates * (self.steps_per_update // self.train_freq) * self.gradient_steps


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
    """Traced hyperparameters (spec §4): ``ent_coef`` is ``λ``, ``kl_coef`` is ``c_KL = 1/t_k`` (MDPO only),
    ``reg_coef`` the actor's ``mean μ² + mean log σ²`` penalty."""

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


# ----------------------------------------------------------------------------------------------------------------
# Networks
# ----------------------------------------------------------------------------------------------------------------


class SquashedGaussianActor(nnx.Module):
    """``obs [..., O] -> (mean [..., D], log_std [..., D])`` of the pre-tanh Gaussian; ``log σ ∈ [−20, 2]``."""

    def __init__(self, obs_dim: int, action_dim: int, hidden_sizes: tuple[int, ...], activation: str, *, rngs: nnx.Rngs):
        self.torso = MLP(obs_dim, hidden_sizes, activation, rngs=rngs)
        self.mean_head = dense(self.torso.out_features, action_dim, 0.01, rngs)
        self.log_std_head = dense(self.torso.out_features, action_dim, 0.01, rngs)

    def __call__(self, obs: Array) -> tuple[Array, Array]:
        features = self.torso(obs)
        return self.mean_head(features), jnp.clip(self.log_std_head(features), LOG_STD_MIN, LOG_STD_MAX)


class Critic(nnx.Module):
    """``Q(s, a)`` (``in_features = O + D``, call with ``concat(obs, action)``) or ``V(s)``; ``[..., in] -> [...]``."""

    def __init__(self, in_features: int, hidden_sizes: tuple[int, ...], activation: str, *, rngs: nnx.Rngs):
        self.torso = MLP(in_features, hidden_sizes, activation, rngs=rngs)
        self.head = dense(self.torso.out_features, 1, 1.0, rngs)

    def __call__(self, x: Array) -> Array:
        return self.head(self.torso(x))[..., 0]


def sample_squashed(mean: Array, log_std: Array, key: Array) -> tuple[Array, Array, Array]:
    """Reparameterized ``u = μ + σ ε``, ``a = tanh(u)``, ``log π(a)``: ``([..., D], [..., D], [...])``."""
    pre_tanh = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    return jnp.tanh(pre_tanh), pre_tanh, squashed_gaussian_log_prob(pre_tanh, mean, log_std)


# ----------------------------------------------------------------------------------------------------------------
# State and losses
# ----------------------------------------------------------------------------------------------------------------


@struct.dataclass
class OffPolicyState:
    """Everything one seed needs to resume: ``params = {actor, q1, q2, v}``, targets, optimizers, buffer, envs.

    ``old_actor`` is MDPO's ``π_θk`` (unused by SAC); ``env_steps`` counts env steps taken, ``grad_steps``
    gradient steps taken (the old-policy sync clock)."""

    params: dict[str, Any]
    target_v: Any
    old_actor: Any
    actor_opt: Any
    critic_opt: Any
    buffer: ReplayState
    env: EnvCarry
    key: Array
    update_index: Array
    env_steps: Array
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
        old_log_prob = squashed_gaussian_log_prob(pre_tanh, old_mean, old_log_std)
        per_sample = mdpo_off_actor_loss(log_prob, old_log_prob, q, kl_coef, hp.ent_coef)
        kl = jnp.mean(log_prob - old_log_prob)
    reg = hp.reg_coef * (jnp.mean(jnp.square(mean)) + jnp.mean(jnp.square(log_std)))
    loss = jnp.mean(per_sample) + reg
    return loss, {"actor_loss": loss, "entropy": -jnp.mean(log_prob), "kl": kl}


# ----------------------------------------------------------------------------------------------------------------
# Trainer
# ----------------------------------------------------------------------------------------------------------------


def make_train(config: OffPolicyConfig, env: Any, env_params: Any) -> Trainer:
    """Build the off-policy MDPO (``MDPOOffConfig``) or SAC (``SACConfig``) :class:`~purejaxpo.types.Trainer`."""
    if not isinstance(config, OffPolicyConfig):
        raise TypeError(f"mdpo_off.make_train needs an MDPOOffConfig or SACConfig, got {type(config).__name__}")
    variant = config.VARIANT
    spec = common.policy_spec(env, env_params)
    if spec.kind != "continuous":
        raise ValueError(f"off-policy MDPO/SAC need continuous (Box) actions; this env's action space is {spec.kind}")
    if len(spec.obs_shape) != 1:
        raise ValueError(f"off-policy MDPO/SAC need flat observations, got shape {spec.obs_shape}")
    obs_dim, action_dim = spec.obs_shape[0], spec.action_dim
    low, high = jnp.asarray(spec.low, jnp.float32), jnp.asarray(spec.high, jnp.float32)
    iterations = config.steps_per_update // config.train_freq
    num_md_iterations = max(1, config.total_gradient_steps // config.sgd_steps)

    def build(key: Array) -> dict[str, Any]:
        keys = jax.random.split(key, 4)
        h, a = config.hidden_sizes, config.activation
        return {
            "actor": SquashedGaussianActor(obs_dim, action_dim, h, a, rngs=nnx.Rngs(params=keys[0])),
            "q1": Critic(obs_dim + action_dim, h, a, rngs=nnx.Rngs(params=keys[1])),
            "q2": Critic(obs_dim + action_dim, h, a, rngs=nnx.Rngs(params=keys[2])),
            "v": Critic(obs_dim, h, a, rngs=nnx.Rngs(params=keys[3])),
        }

    split = {name: nnx.split(module) for name, module in build(jax.random.key(0)).items()}
    graphdefs = {"actor": split["actor"][0], "q": split["q1"][0], "v": split["v"][0]}

    def to_env(action: Array) -> Array:
        scaled = low + 0.5 * (action + 1.0) * (high - low)
        return scaled[..., 0] if spec.scalar_action else scaled

    def init(key: Array, hp: OffPolicyHParams) -> OffPolicyState:
        net_key, env_key, key = jax.random.split(key, 3)
        params = {name: nnx.split(module)[1] for name, module in build(net_key).items()}
        critics = {k: params[k] for k in ("q1", "q2", "v")}
        example = {
            "obs": jnp.zeros((obs_dim,), jnp.float32),
            "action": jnp.zeros((action_dim,), jnp.float32),
            "reward": jnp.zeros((), jnp.float32),
            "next_obs": jnp.zeros((obs_dim,), jnp.float32),
            "terminated": jnp.zeros((), jnp.float32),
        }
        return OffPolicyState(
            params=params,
            target_v=params["v"],
            old_actor=params["actor"],
            actor_opt=optax.adam(hp.lr).init(params["actor"]),
            critic_opt=optax.adam(hp.lr).init(critics),
            buffer=replay_init(example, config.capacity),
            env=init_env_carry(env, env_params, env_key, config.num_envs),
            key=key,
            update_index=jnp.zeros((), jnp.int32),
            env_steps=jnp.zeros((), jnp.int32),
            grad_steps=jnp.zeros((), jnp.int32),
        )

    def learn(state: OffPolicyState, key: Array, hp: OffPolicyHParams) -> tuple[OffPolicyState, dict[str, Array]]:
        """One gradient step on critics and actor (simultaneous), the Polyak step, and the old-policy sync."""
        sample_key, critic_key, actor_key = jax.random.split(key, 3)
        batch = replay_sample(state.buffer, sample_key, config.train_batch_size)
        params = state.params
        critics = {k: params[k] for k in ("q1", "q2", "v")}
        if config.anneal_kl:
            md_iteration = state.grad_steps // config.sgd_steps
            kl_coef = 1.0 / mdpo_step_size(md_iteration, num_md_iterations, 1.0 / hp.kl_coef)
        else:
            kl_coef = jnp.asarray(hp.kl_coef, jnp.float32)
        c_fn = lambda p, b: critic_loss(graphdefs, p, params["actor"], state.target_v, b, critic_key, hp)
        critics, critic_opt, c_metrics = gradient_step(critics, state.critic_opt, batch, c_fn, optax.adam(hp.lr))
        a_fn = lambda p, b: actor_loss(graphdefs, p, state.old_actor, params["q1"], b, actor_key, hp, kl_coef, variant)
        actor, actor_opt, a_metrics = gradient_step(params["actor"], state.actor_opt, batch, a_fn, optax.adam(hp.lr))
        target_v = optax.incremental_update(critics["v"], state.target_v, hp.tau)
        grad_steps = state.grad_steps + 1
        sync = grad_steps % config.sgd_steps == 0
        old_actor = jax.tree.map(lambda new, old: jnp.where(sync, new, old), actor, state.old_actor)
        new_state = state.replace(
            params={"actor": actor, **critics}, target_v=target_v, old_actor=old_actor, actor_opt=actor_opt,
            critic_opt=critic_opt, grad_steps=grad_steps,
        )
        metrics = {
            "loss": c_metrics["loss"] + a_metrics["loss"],
            "q_loss": c_metrics["q_loss"],
            "value_loss": c_metrics["value_loss"],
            "q_target_mean": c_metrics["q_mean"],
            "actor_loss": a_metrics["actor_loss"],
            "entropy": a_metrics["entropy"],
            "kl": a_metrics["kl"],
            "kl_coef": kl_coef,
            "nonfinite": c_metrics["nonfinite"] + a_metrics["nonfinite"],
        }
        return new_state, metrics

    def iteration(state: OffPolicyState, _: None, hp: OffPolicyHParams) -> tuple[OffPolicyState, Any]:
        """``train_freq`` vector env steps into the buffer, then ``gradient_steps`` gradient steps."""
        key, rollout_key, learn_key = jax.random.split(state.key, 3)
        actor = nnx.merge(graphdefs["actor"], state.params["actor"])
        warmup = state.env_steps < config.learning_starts

        def policy_step(obs: Array, act_key: Array) -> tuple[Array, Array, Array, Array]:
            noise_key, random_key = jax.random.split(act_key)
            mean, log_std = actor(obs.astype(jnp.float32))
            if config.deterministic_collection:
                action = jnp.tanh(mean)
            else:
                action = sample_squashed(mean, log_std, noise_key)[0]
            action = jnp.where(warmup, jax.random.uniform(random_key, action.shape, minval=-1.0, maxval=1.0), action)
            zeros = jnp.zeros(obs.shape[:1], jnp.float32)
            return action, to_env(action), zeros, zeros

        env_carry, traj, stats = rollout(env, env_params, state.env, rollout_key, policy_step, lambda o: o, config.train_freq)
        flat = lambda x: x.reshape((-1,) + x.shape[2:]).astype(jnp.float32)
        items = {
            "obs": flat(traj.obs), "action": flat(traj.action), "reward": flat(traj.reward),
            "next_obs": flat(traj.final_obs), "terminated": flat(traj.terminated),
        }
        env_steps = state.env_steps + config.num_envs * config.train_freq
        state = state.replace(buffer=replay_add(state.buffer, items), env=env_carry, key=key, env_steps=env_steps)
        learning = env_steps > config.learning_starts

        def grad_step(learner: tuple, step_key: Array) -> tuple[tuple, dict[str, Array]]:
            s = state.replace(**dict(zip(LEARNER_FIELDS, learner)))
            new, metrics = learn(s, step_key, hp)
            new_learner = tuple(getattr(new, f) for f in LEARNER_FIELDS)
            return jax.tree.map(lambda n, o: jnp.where(learning, n, o), new_learner, learner), metrics

        learner = tuple(getattr(state, f) for f in LEARNER_FIELDS)
        learner, metrics = jax.lax.scan(grad_step, learner, jax.random.split(learn_key, config.gradient_steps))
        state = state.replace(**dict(zip(LEARNER_FIELDS, learner)))
        metrics = jax.tree.map(lambda x: jnp.mean(x), metrics)
        metrics["nonfinite"] = metrics["nonfinite"] * config.gradient_steps * learning
        return state, (stats, metrics, learning.astype(jnp.float32))

    def update(state: OffPolicyState, hp: OffPolicyHParams) -> tuple[OffPolicyState, dict[str, Array]]:
        state, (stats, metrics, learning) = jax.lax.scan(lambda s, x: iteration(s, x, hp), state, None, length=iterations)
        total = EpisodeStats(count=stats.count.sum(), return_sum=stats.return_sum.sum(), length_sum=stats.length_sum.sum())
        learned = learning.sum()
        mean_learned = lambda x: jnp.where(learned > 0, jnp.sum(x * learning) / jnp.maximum(learned, 1.0), jnp.nan)
        out = {name: mean_learned(value) for name, value in metrics.items() if name != "nonfinite"}
        out.update(common.episode_metrics(total))
        out["nonfinite_steps"] = metrics["nonfinite"].sum()
        out["env_steps"] = state.env_steps.astype(jnp.float32)
        out["gradient_steps"] = state.grad_steps.astype(jnp.float32)
        return state.replace(update_index=state.update_index + 1), out

    def act(state: OffPolicyState, obs: Array, key: Array, deterministic: bool = False) -> Array:
        mean, log_std = nnx.merge(graphdefs["actor"], state.params["actor"])(obs.astype(jnp.float32))
        action = jnp.tanh(mean) if deterministic else sample_squashed(mean, log_std, key)[0]
        return to_env(action)

    return Trainer(init, update, scan_train(init, update, config.num_updates), act, config, env, env_params, type(config).algorithm_name)


__all__ = [
    "Critic", "MDPOOffConfig", "OffPolicyConfig", "OffPolicyHParams", "OffPolicyState", "SACConfig",
    "SquashedGaussianActor", "actor_loss", "critic_loss", "make_train", "sample_squashed",
]
