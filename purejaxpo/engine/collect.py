"""Collection: policy step → rollout → bootstrap values of final observations → reward scaling.

Advantages are not computed here: each algorithm's ``prepare`` (or PPO's advantage estimator) computes them
once from the :class:`Experience`, which already holds the rewards it must train on.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

from purejaxpo.engine.state import OnPolicyState, observe_fn
from purejaxpo.primitives.advantages import gae
from purejaxpo.primitives.stateful import MomentsState, ReturnScalerState, return_scaler, running_moments, scale_rewards
from purejaxpo.rollout import EnvCarry, EpisodeStats, rollout
from purejaxpo.types import Trajectory

Array = jax.Array
# policy_step(model, obs [B, ...] (as the network sees it), key) -> (raw_action, env_action, log_prob, value); a
# recurrent or masked policy takes (model, obs, key, memory, action_mask) and returns a fifth value, the next memory.
PolicyStep = Callable[..., tuple]
# value(model, obs [..., *obs_shape]) -> value [...]; a recurrent one takes (model, obs, memory).
ValueFn = Callable[..., Array]


@struct.dataclass
class Experience:
    """One rollout ``[T, B, ...]`` ready for advantage estimation.

    ``trajectory.obs`` / ``final_obs`` are raw observations (networks see ``observe(obs)``);
    ``trajectory.final_value = V(observe(final_obs))`` and ``last_value = V(observe(s_T))`` ``[B]`` when the
    algorithm has a bootstrap critic (zeros otherwise); ``rewards`` ``[T, B]`` are the rewards to train on
    (the env's, or the algorithm's ``train_rewards``, scaled when ``normalize_rewards``); ``stats`` always
    count the env's own rewards. ``reward_scaler``/``obs_norm``/``env`` are the states after this rollout.
    """

    trajectory: Trajectory
    rewards: Array
    last_value: Array
    stats: EpisodeStats
    reward_scaler: ReturnScalerState
    obs_norm: MomentsState
    env: EnvCarry

    @property
    def done(self) -> Array:
        """``terminated or truncated`` ``[T, B]``."""
        return jnp.logical_or(self.trajectory.terminated, self.trajectory.truncated)


def collect_experience(
    env: Any,
    env_params: Any,
    config: Any,
    state: OnPolicyState,
    model: Any,
    key: Array,
    gamma: Array,
    policy_step: PolicyStep,
    value_fn: ValueFn | None,
    info_extras: Callable[[dict[str, Any]], dict[str, Array]] | None = None,
    train_rewards: Callable[[Trajectory], Array] | None = None,
    fresh_memory: Any = None,
) -> Experience:
    """Roll out ``config.num_steps`` steps of every env with ``policy_step(model, observe(obs), key)``.

    ``info_extras(info)`` keeps per-step info arrays in ``trajectory.extras``; ``train_rewards(trajectory)``
    picks the rewards to train on (e.g. SubPO's modular baseline). The observation normalizer is updated with
    this rollout's observations *after* the rollout, so every step of it saw the same statistics.

    Recurrent policies (``state.env.memory`` set, ``fresh_memory`` the fresh-episode memory ``[B, ...]``)
    bootstrap a truncated step from the memory the step produced: ``V(final_obs_t | memory_out_t)``, and the
    rollout end from the carried memory: ``V(s_T | memory_T)``.
    """
    observe = observe_fn(config, state.obs_norm)
    if state.env.memory is not None or state.env.action_mask is not None:
        step = lambda obs, k, memory, mask: policy_step(model, observe(obs), k, memory, mask)
    else:
        step = lambda obs, k: policy_step(model, observe(obs), k)
    env_carry, trajectory, stats = rollout(
        env, env_params, state.env, key, step, lambda obs: obs, config.num_steps, info_extras, fresh_memory
    )
    if value_fn is None:
        last_value = jnp.zeros(env_carry.obs.shape[:1], jnp.float32)
    elif env_carry.memory is not None:
        final_value = value_fn(model, observe(trajectory.final_obs), trajectory.extras["memory_out"])
        trajectory = trajectory.replace(final_value=final_value)
        last_value = value_fn(model, observe(env_carry.obs), env_carry.memory)
    else:
        trajectory = trajectory.replace(final_value=value_fn(model, observe(trajectory.final_obs)))
        last_value = value_fn(model, observe(env_carry.obs))
    rewards = trajectory.reward if train_rewards is None else train_rewards(trajectory)
    reward_scaler = state.reward_scaler
    if getattr(config, "normalize_rewards", False):
        dones = jnp.logical_or(trajectory.terminated, trajectory.truncated)
        reward_scaler = return_scaler.update(reward_scaler, rewards, dones, gamma)
        rewards = scale_rewards(reward_scaler, rewards)
    obs_norm = running_moments.update(state.obs_norm, trajectory.obs) if getattr(config, "normalize_obs", False) else state.obs_norm
    return Experience(trajectory, rewards, last_value, stats, reward_scaler, obs_norm, env_carry)


def gae_of(exp: Experience, gamma: Array, gae_lambda: Array) -> tuple[Array, Array]:
    """``(advantages, targets)`` ``[T, B]``: :func:`~purejaxpo.primitives.advantages.gae` of the experience's
    rewards and critic values (truncated steps bootstrap from ``final_value``)."""
    traj = exp.trajectory
    return gae(exp.rewards, traj.value, traj.final_value, exp.last_value, traj.terminated, traj.truncated, gamma, gae_lambda)
