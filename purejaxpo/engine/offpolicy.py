"""The off-policy engine: warm-up into a replay buffer, then iterations of (collect ``train_freq`` vector steps →
``gradient_steps`` gradient steps), for SAC-style agents on continuous actions in ``[-1, 1]^D``.

An algorithm declares :class:`OffPolicyParts` (its learner state, one gradient step, its behaviour policy);
:func:`build` returns the pure :class:`~purejaxpo.types.Trainer`. The config needs ``num_envs``,
``steps_per_update``, ``train_freq``, ``gradient_steps``, ``capacity``, ``warmup_steps`` and ``num_updates``
(:class:`purejaxpo.algorithms.mdpo_off.OffPolicyConfig`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

from purejaxpo.engine.config import caller_stacklevel, require_positive_ints
from purejaxpo.engine.trainer import episode_metrics
from purejaxpo.replay import ReplayState, replay_add, replay_init
from purejaxpo.rollout import EnvCarry, EpisodeStats, init_env_carry, rollout
from purejaxpo.spaces import policy_spec
from purejaxpo.types import Trainer, scan_train

Array = jax.Array
Metrics = dict[str, Array]


class ReplayBudget:
    """Mixin for off-policy configs (``num_envs``, ``steps_per_update``, ``total_timesteps``, ``train_freq``,
    ``gradient_steps``, ``buffer_size``, ``learning_starts``): the budget covers the warm-up and the updates.

    Fields:
        num_envs: parallel environments per seed
        steps_per_update: vector steps per update (an update is num_envs × steps_per_update env steps)
        total_timesteps: env-step budget per seed, warm-up included
        train_freq: vector steps between gradient phases
        gradient_steps: gradient steps per phase
        buffer_size: replay capacity in transitions (at most the run's env steps are stored)
        learning_starts: env steps of uniform-random actions collected before learning (the warm-up)
    """

    @property
    def warmup_steps(self) -> int:
        """Vector steps of uniform-random actions ``init`` collects (``⌈learning_starts / num_envs⌉``)."""
        return -(-self.learning_starts // self.num_envs)

    @property
    def warmup_env_steps(self) -> int:
        return self.warmup_steps * self.num_envs

    @property
    def batch_size(self) -> int:
        """Env steps per update (all envs)."""
        return self.num_envs * self.steps_per_update

    @property
    def num_updates(self) -> int:
        return (self.total_timesteps - self.warmup_env_steps) // self.batch_size

    @property
    def capacity(self) -> int:
        """Buffer slots: ``min(buffer_size, total env steps)``."""
        return min(self.buffer_size, max(self.total_timesteps, self.num_envs * self.train_freq))

    @property
    def total_gradient_steps(self) -> int:
        return self.num_updates * (self.steps_per_update // self.train_freq) * self.gradient_steps


def check_replay_budget(config: Any) -> None:
    """The checks of a :class:`ReplayBudget` config: positive counts, ``train_freq`` dividing
    ``steps_per_update``, at least one update after the warm-up (``learning_starts`` below the budget), one
    collection step fitting the buffer; a warning states the env steps actually run when the budget is not exact."""
    name = type(config).__name__
    require_positive_ints(
        config, ("num_envs", "steps_per_update", "total_timesteps", "train_freq", "gradient_steps", "train_batch_size",
                 "buffer_size"),
    )
    starts = config.learning_starts
    if not isinstance(starts, int) or isinstance(starts, bool) or starts < 0:
        raise ValueError(f"{name}.learning_starts must be a non-negative integer, got {starts!r}")
    if config.steps_per_update % config.train_freq:
        raise ValueError(f"{name}.steps_per_update={config.steps_per_update} must be a multiple of train_freq={config.train_freq}")
    if config.num_updates < 1:
        raise ValueError(
            f"{name}: total_timesteps={config.total_timesteps} leaves no update after the warm-up: "
            f"learning_starts={starts} ({config.warmup_env_steps} warm-up env steps) + one update of num_envs × "
            f"steps_per_update = {config.batch_size} env steps are needed"
        )
    if config.num_envs * config.train_freq > config.capacity:
        raise ValueError(f"{name}: one collection step ({config.num_envs * config.train_freq} transitions) exceeds the buffer")
    used = config.warmup_env_steps + config.num_updates * config.batch_size
    if used != config.total_timesteps:
        warnings.warn(
            f"total_timesteps={config.total_timesteps} is not the warm-up ({config.warmup_env_steps}) plus a multiple "
            f"of the update size {config.batch_size}: training runs {config.num_updates} updates = {used} env steps",
            stacklevel=caller_stacklevel(),
        )


@struct.dataclass
class OffPolicyState:
    """Everything one seed needs to resume: the algorithm's ``learner`` (params, targets, optimizers, counters),
    the replay ``buffer``, the envs, the key, the update index and the env steps taken (warm-up included)."""

    learner: Any
    buffer: ReplayState
    env: EnvCarry
    key: Array
    update_index: Array
    env_steps: Array


@dataclass(frozen=True)
class OffPolicyParts:
    """- ``init_learner(key, hp) -> learner``;
    - ``learn(learner, buffer, key, hp) -> (learner, metrics)``: one gradient step (it samples the buffer);
    - ``behaviour(learner, obs, key, deterministic) -> action [B, D]`` in ``[-1, 1]`` (the acting policy);
    - ``before_update(learner, hp) -> learner`` (e.g. write the traced learning rate into the optimizers);
    - ``metrics(learner) -> metrics`` reported after each update (e.g. gradient steps taken)."""

    init_learner: Callable[[Array, Any], Any]
    learn: Callable[[Any, ReplayState, Array, Any], tuple[Any, Metrics]]
    behaviour: Callable[[Any, Array, Array, bool], Array]
    before_update: Callable[[Any, Any], Any] | None = None
    metrics: Callable[[Any], Metrics] | None = None


def build(parts: OffPolicyParts, config: Any, env: Any, env_params: Any, *, deterministic_collection: bool = False) -> Trainer:
    """The off-policy :class:`~purejaxpo.types.Trainer`: actions in ``[-1, 1]^D`` are rescaled to the env's Box.

    ``init`` collects ``config.warmup_steps`` vector steps of uniform-random actions (a rollout, no gradient
    step); each ``update`` runs ``steps_per_update / train_freq`` iterations with the behaviour policy
    (``deterministic_collection``: its mode).
    """
    spec = policy_spec(env, env_params)
    obs_dim, action_dim = spec.obs_shape[0], spec.action_dim
    low, high = jnp.asarray(spec.low, jnp.float32), jnp.asarray(spec.high, jnp.float32)
    iterations = config.steps_per_update // config.train_freq

    def to_env(action: Array) -> Array:
        scaled = low + 0.5 * (action + 1.0) * (high - low)
        return scaled[..., 0] if spec.scalar_action else scaled

    def collect(state: OffPolicyState, key: Array, act: Callable[[Array, Array], Array], num_steps: int) -> tuple[OffPolicyState, EpisodeStats]:
        """``num_steps`` vector steps of ``act(obs, key) -> action`` into the buffer."""

        def policy_step(obs: Array, act_key: Array) -> tuple[Array, Array, Array, Array]:
            action = act(obs.astype(jnp.float32), act_key)
            zeros = jnp.zeros(obs.shape[:1], jnp.float32)
            return action, to_env(action), zeros, zeros

        env_carry, traj, stats = rollout(env, env_params, state.env, key, policy_step, lambda o: o, num_steps)
        flat = lambda x: x.reshape((-1,) + x.shape[2:]).astype(jnp.float32)
        items = {
            "obs": flat(traj.obs), "action": flat(traj.action), "reward": flat(traj.reward),
            "next_obs": flat(traj.final_obs), "terminated": flat(traj.terminated),
        }
        env_steps = state.env_steps + config.num_envs * num_steps
        return state.replace(buffer=replay_add(state.buffer, items), env=env_carry, env_steps=env_steps), stats

    def uniform(obs: Array, key: Array) -> Array:
        return jax.random.uniform(key, obs.shape[:1] + (action_dim,), minval=-1.0, maxval=1.0)

    def init(key: Array, hp: Any) -> OffPolicyState:
        learner_key, env_key, key = jax.random.split(key, 3)
        example = {
            "obs": jnp.zeros((obs_dim,), jnp.float32), "action": jnp.zeros((action_dim,), jnp.float32),
            "reward": jnp.zeros((), jnp.float32), "next_obs": jnp.zeros((obs_dim,), jnp.float32),
            "terminated": jnp.zeros((), jnp.float32),
        }
        state = OffPolicyState(
            learner=parts.init_learner(learner_key, hp), buffer=replay_init(example, config.capacity),
            env=init_env_carry(env, env_params, env_key, config.num_envs), key=key,
            update_index=jnp.zeros((), jnp.int32), env_steps=jnp.zeros((), jnp.int32),
        )
        if config.warmup_steps:  # uniform-random actions into the buffer: no gradient step is spent on warm-up
            warmup_key, key = jax.random.split(state.key)
            state, _ = collect(state.replace(key=key), warmup_key, uniform, config.warmup_steps)
        return state

    def iteration(state: OffPolicyState, hp: Any) -> tuple[OffPolicyState, tuple]:
        """``train_freq`` vector env steps into the buffer, then ``gradient_steps`` gradient steps."""
        key, rollout_key, learn_key = jax.random.split(state.key, 3)
        act = lambda obs, k: parts.behaviour(state.learner, obs, k, deterministic_collection)
        state, stats = collect(state.replace(key=key), rollout_key, act, config.train_freq)
        learner, metrics = jax.lax.scan(
            lambda lrn, k: parts.learn(lrn, state.buffer, k, hp), state.learner,
            jax.random.split(learn_key, config.gradient_steps),
        )
        nonfinite = jnp.sum(metrics.pop("nonfinite"))
        return state.replace(learner=learner), (stats, jax.tree.map(jnp.mean, metrics), nonfinite)

    def update(state: OffPolicyState, hp: Any) -> tuple[OffPolicyState, Metrics]:
        if parts.before_update is not None:
            state = state.replace(learner=parts.before_update(state.learner, hp))
        state, (stats, metrics, nonfinite) = jax.lax.scan(lambda s, _: iteration(s, hp), state, None, length=iterations)
        total = EpisodeStats(count=stats.count.sum(), return_sum=stats.return_sum.sum(), length_sum=stats.length_sum.sum())
        out = {name: jnp.mean(value) for name, value in metrics.items()}
        out.update(episode_metrics(total))
        out["nonfinite_steps"] = nonfinite.sum()
        out["env_steps"] = state.env_steps.astype(jnp.float32)
        if parts.metrics is not None:
            out.update(parts.metrics(state.learner))
        return state.replace(update_index=state.update_index + 1), out

    def act(state: OffPolicyState, obs: Array, key: Array, deterministic: bool = False) -> Array:
        return to_env(parts.behaviour(state.learner, obs.astype(jnp.float32), key, deterministic))

    algorithm = type(config).algorithm_name
    return Trainer(init, update, scan_train(init, update, config.num_updates), act, config, env, env_params, algorithm)
