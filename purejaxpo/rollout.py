"""Rollouts: a ``lax.scan`` over vmapped, auto-resetting environment steps.

The environment follows the gymnax 1.x API (``step -> obs, state, reward, terminated, truncated, info``
with ``info["final_observation"]``). Episode statistics are reduced inside the graph to a few scalars per
rollout, so memory never grows with steps × envs.

Two optional per-env carries ride along with the env state (both ``None`` for feed-forward, unmasked policies):

- ``memory``: a recurrent policy's hidden state. The policy step returns the next memory; after every env step
  it is reset to the fresh-episode memory wherever the episode ended (terminated *or* truncated), so the memory a
  step uses always belongs to the episode of its observation. The trajectory keeps the memory each step used
  (``extras["memory"]``) and the memory it produced (``extras["memory_out"]``, to bootstrap truncated steps).
- ``action_mask``: the legal actions of the current observation (``env.action_mask(state)``, True = legal; the
  Jumanji/Pgx convention), passed to the policy step and kept in ``extras["action_mask"]``.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

from purejaxpo.types import Trajectory

Array = jax.Array
# policy_step(obs [B, ...], key) -> (raw_action [B, ...], env_action [B, ...], log_prob [B], value [B])
PolicyStep = Callable[[Array, Array], tuple[Array, Array, Array, Array]]
# observe(raw_obs [B, ...]) -> obs the policy sees (e.g. normalized) [B, ...]
Observe = Callable[[Array], Array]


@struct.dataclass
class EnvCarry:
    """Per-env state carried across rollouts: env state, last raw observation, running episode stats, and the
    optional recurrent ``memory`` (leaves ``[B, ...]``) and ``action_mask`` (``[B, ..., n]`` bool)."""

    env_state: Any
    obs: Array
    episode_return: Array  # [B]
    episode_length: Array  # [B]
    memory: Any = None
    action_mask: Any = None


def has_action_mask(env: Any) -> bool:
    """Whether ``env`` reports legal actions: ``env.has_action_mask`` and ``env.action_mask(state)``."""
    return bool(getattr(env, "has_action_mask", False)) and callable(getattr(env, "action_mask", None))


def batched_action_mask(env: Any, env_state: Any) -> Array:
    """``env.action_mask`` of every env of a batched state: ``[B, ..., n]`` bool."""
    return jax.vmap(env.action_mask)(env_state).astype(bool)


@struct.dataclass
class EpisodeStats:
    """Sums over the episodes completed in a rollout (scalars): divide by ``count`` for means."""

    count: Array
    return_sum: Array
    length_sum: Array

    @property
    def mean_return(self) -> Array:
        """Mean return of completed episodes; NaN when none completed (so plots show a gap, not a 0)."""
        return jnp.where(self.count > 0, self.return_sum / jnp.maximum(self.count, 1.0), jnp.nan)

    @property
    def mean_length(self) -> Array:
        return jnp.where(self.count > 0, self.length_sum / jnp.maximum(self.count, 1.0), jnp.nan)


def vmapped_reset(env: Any, env_params: Any, key: Array, num_envs: int) -> tuple[Array, Any]:
    """Reset ``num_envs`` environments: ``obs [B, ...]``, batched env state."""
    return jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_envs), env_params)


def init_env_carry(env: Any, env_params: Any, key: Array, num_envs: int, memory: Any = None) -> EnvCarry:
    """``num_envs`` freshly reset envs; ``memory`` is the recurrent policy's fresh-episode memory ``[B, ...]``
    (``None`` for feed-forward policies). The action mask is read from the env when it has one."""
    obs, env_state = vmapped_reset(env, env_params, key, num_envs)
    zeros = jnp.zeros((num_envs,), jnp.float32)
    mask = batched_action_mask(env, env_state) if has_action_mask(env) else None
    return EnvCarry(env_state=env_state, obs=obs, episode_return=zeros, episode_length=zeros, memory=memory,
                    action_mask=mask)


def reset_where(done: Array, fresh: Any, current: Any) -> Any:
    """``fresh`` where ``done [B]`` else ``current``, leaf by leaf (leaves ``[B, ...]``)."""
    def pick(f: Array, c: Array) -> Array:
        return jnp.where(done.reshape(done.shape + (1,) * (c.ndim - 1)), f, c)

    return jax.tree.map(pick, fresh, current)


def rollout(
    env: Any,
    env_params: Any,
    carry: EnvCarry,
    key: Array,
    policy_step: PolicyStep,
    observe: Observe,
    num_steps: int,
    extras_fn: Callable[[dict[str, Any]], dict[str, Array]] | None = None,
    fresh_memory: Any = None,
) -> tuple[EnvCarry, Trajectory, EpisodeStats]:
    """Collect ``num_steps`` steps from every env in ``carry``.

    Returns the new carry, a :class:`Trajectory` ``[T, B, ...]`` whose ``final_value`` is still zero (the
    caller fills it with one batched critic pass over ``final_obs``, see :func:`bootstrap_values`), and
    the episode statistics of the rollout. ``extras_fn(info)`` picks per-step arrays from ``info`` into
    ``Trajectory.extras``.

    When ``carry.memory`` or ``carry.action_mask`` is set, ``policy_step(obs, key, memory, action_mask)``
    returns a fifth value, the next memory (``None`` for a feed-forward policy); ``fresh_memory`` (leaves
    ``[B, ...]``) replaces it wherever an episode ended. Otherwise ``policy_step(obs, key)`` returns four.
    """
    step_env = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    stateful = carry.memory is not None or carry.action_mask is not None

    def step(carry: EnvCarry, step_keys: tuple[Array, Array]) -> tuple[EnvCarry, tuple[Trajectory, Array, Array, Array]]:
        act_key, env_keys = step_keys
        obs = observe(carry.obs)
        extras: dict[str, Any] = {}
        if stateful:
            raw_action, env_action, log_prob, value, memory_out = policy_step(obs, act_key, carry.memory, carry.action_mask)
        else:
            raw_action, env_action, log_prob, value = policy_step(obs, act_key)
        next_obs, env_state, reward, terminated, truncated, info = step_env(env_keys, carry.env_state, env_action, env_params)
        reward = reward.astype(jnp.float32)
        done = jnp.logical_or(terminated, truncated)
        memory, mask = carry.memory, carry.action_mask
        if memory is not None:
            extras["memory"], extras["memory_out"] = memory, memory_out
            memory = reset_where(done, fresh_memory, memory_out)
        if mask is not None:
            extras["action_mask"] = mask
            mask = batched_action_mask(env, env_state)
        episode_return = carry.episode_return + reward
        episode_length = carry.episode_length + 1.0
        transition = Trajectory(
            obs=obs,
            action=raw_action,
            log_prob=log_prob,
            value=value,
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            final_obs=observe(info["final_observation"]),
            final_value=jnp.zeros_like(value),
            extras={**(extras_fn(info) if extras_fn is not None else {}), **extras},
        )
        new_carry = EnvCarry(
            env_state=env_state,
            obs=next_obs,
            episode_return=jnp.where(done, 0.0, episode_return),
            episode_length=jnp.where(done, 0.0, episode_length),
            memory=memory,
            action_mask=mask,
        )
        done_f = done.astype(jnp.float32)
        return new_carry, (transition, done_f.sum(), (episode_return * done_f).sum(), (episode_length * done_f).sum())

    # All keys are drawn up front in two batched splits: fewer ops inside the (overhead-bound) scan body.
    act_key, env_key = jax.random.split(key)
    num_envs = carry.episode_return.shape[0]
    step_keys = (jax.random.split(act_key, num_steps), jax.random.split(env_key, (num_steps, num_envs)))
    carry, (trajectory, counts, returns, lengths) = jax.lax.scan(step, carry, step_keys)
    stats = EpisodeStats(count=counts.sum(), return_sum=returns.sum(), length_sum=lengths.sum())
    return carry, trajectory, stats


def bootstrap_values(trajectory: Trajectory, value_fn: Callable[[Array], Array]) -> Trajectory:
    """Fill ``final_value = V(final_obs)`` with one batched critic pass over ``[T, B, ...]``."""
    return trajectory.replace(final_value=value_fn(trajectory.final_obs))


def evaluate(
    env: Any,
    env_params: Any,
    act: Callable[..., Any],
    state: Any,
    key: Array,
    num_episodes: int,
    max_steps: int,
    memory: Any = None,
) -> Array:
    """Return of the first episode of ``num_episodes`` parallel envs under ``act(state, obs, key)``.

    Runs a fixed ``max_steps`` (``lax.scan``; pass the env's episode limit) and counts rewards until each
    env's first ``terminated or truncated``. Returns ``[num_episodes]``; an episode still running at
    ``max_steps`` contributes its partial return.

    A recurrent policy passes its fresh-episode ``memory`` (leaves ``[num_episodes, ...]``); ``act`` is then
    called as ``act(state, obs, key, memory=m, action_mask=mask)`` and returns ``(action, memory)``. For an env
    with action masks (:func:`has_action_mask`) ``act`` receives ``action_mask=`` as well.
    """
    reset_key, key = jax.random.split(key)
    obs, env_state = vmapped_reset(env, env_params, reset_key, num_episodes)
    step_env = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    masked = has_action_mask(env)

    def step(carry: tuple, step_key: Array) -> tuple[tuple, None]:
        env_state, obs, memory, total, running = carry
        act_key, env_key = jax.random.split(step_key)
        kwargs = {"action_mask": batched_action_mask(env, env_state)} if masked else {}
        if memory is not None:
            action, memory = act(state, obs, act_key, memory=memory, **kwargs)
        else:
            action = act(state, obs, act_key, **kwargs)
        obs, env_state, reward, terminated, truncated, _ = step_env(
            jax.random.split(env_key, num_episodes), env_state, action, env_params
        )
        total = total + running * reward.astype(jnp.float32)
        done = jnp.logical_or(terminated, truncated)
        running = running * (1.0 - done.astype(jnp.float32))
        return (env_state, obs, memory, total, running), None

    init = (env_state, obs, memory, jnp.zeros((num_episodes,)), jnp.ones((num_episodes,)))
    (_, _, _, total, _), _ = jax.lax.scan(step, init, jax.random.split(key, max_steps))
    return total
