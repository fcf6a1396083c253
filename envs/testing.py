"""Reusable checks of the gymnax step contract for any environment (used by the test-suite; no pytest needed).

``random_rollout`` runs ``B`` vmapped envs for ``T`` random-action steps in one jitted ``lax.scan``;
``check_contract`` asserts the API properties every environment here must have.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Rollout(NamedTuple):
    """Stacked outputs of :func:`random_rollout`: leading axes ``[T, B]`` (``obs0`` and ``state0``: ``[B]``)."""

    obs0: Any
    state0: Any
    actions: Any
    obs: Any
    states: Any
    rewards: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    info: dict[str, jax.Array]


@partial(jax.jit, static_argnames=("env", "num_envs", "num_steps"))
def random_rollout(env: Any, params: Any, key: jax.Array, num_envs: int, num_steps: int) -> Rollout:
    """Reset ``num_envs`` envs and take ``num_steps`` uniformly random actions, vmapped over envs."""
    key_reset, key_run = jax.random.split(key)
    obs0, state0 = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key_reset, num_envs), params)
    space = env.action_space(params)

    def body(state, key_t):
        key_act, key_step = jax.random.split(key_t)
        actions = jax.vmap(space.sample)(jax.random.split(key_act, num_envs))
        out = jax.vmap(env.step, in_axes=(0, 0, 0, None))(jax.random.split(key_step, num_envs), state, actions,
                                                           params)
        obs, state, reward, terminated, truncated, info = out
        return state, (actions, obs, state, reward, terminated, truncated, info)

    _, stacked = jax.lax.scan(body, state0, jax.random.split(key_run, num_steps))
    return Rollout(obs0, state0, *stacked)


def check_contract(env: Any, params: Any, rollout: Rollout) -> None:
    """Assert dtypes/shapes against the spaces, flags, and the auto-reset / ``final_observation`` contract.

    - observations (reset, step and final) have the observation space's dtype and shape and lie in it;
    - sampled actions lie in the action space with its dtype;
    - rewards are float32 scalars per env; ``terminated``/``truncated`` are bool;
    - where an episode did not end, ``final_observation == obs``; ``info["terminated"/"truncated"]`` match.
    """
    obs_space, act_space = env.observation_space(params), env.action_space(params)
    num_steps, num_envs = rollout.rewards.shape
    for name, obs in (("obs0", rollout.obs0), ("obs", rollout.obs), ("final_observation",
                                                                      rollout.info["final_observation"])):
        assert obs.dtype == obs_space.dtype, (name, obs.dtype, obs_space.dtype)
        assert obs.shape[-len(obs_space.shape):] == tuple(obs_space.shape), (name, obs.shape, obs_space.shape)
        flat = obs.reshape((-1,) + tuple(obs_space.shape))
        inside = np.asarray(jax.vmap(obs_space.contains)(flat))
        assert inside.all(), f"{name}: {int((~inside).sum())} observations outside {obs_space}"
    assert rollout.actions.dtype == act_space.dtype, (rollout.actions.dtype, act_space.dtype)
    flat_actions = rollout.actions.reshape((-1,) + tuple(act_space.shape))
    assert np.asarray(jax.vmap(act_space.contains)(flat_actions)).all()
    assert rollout.rewards.dtype == jnp.float32 and rollout.rewards.shape == (num_steps, num_envs)
    assert rollout.terminated.dtype == jnp.bool_ and rollout.truncated.dtype == jnp.bool_
    np.testing.assert_array_equal(rollout.info["terminated"], rollout.terminated)
    np.testing.assert_array_equal(rollout.info["truncated"], rollout.truncated)
    done = np.asarray(rollout.terminated | rollout.truncated)
    final = np.asarray(rollout.info["final_observation"])
    obs = np.asarray(rollout.obs)
    np.testing.assert_array_equal(final[~done], obs[~done])
    assert np.isfinite(np.asarray(rollout.rewards)).all()
    for key, value in rollout.info.items():
        assert value.shape[:2] == (num_steps, num_envs), (key, value.shape)


def check_episode_end(env: Any, params: Any, key: jax.Array, state: Any, action: Any) -> dict[str, jax.Array]:
    """Step from ``state`` (one env, chosen so that the step ends the episode) and assert the auto-reset contract:
    ``final_observation`` is the pre-reset observation of ``step_env``, and ``obs``/state are those of
    ``reset_env`` with the reset key ``env.step`` derives. Returns the step's ``info``."""
    obs, new_state, reward, terminated, truncated, info = env.step(key, state, action, params)
    key_step, key_reset = jax.random.split(key)
    obs_st, _, reward_st, terminated_st, _ = env.step_env(key_step, state, action, params)
    obs_re, state_re = env.reset_env(key_reset, params)
    assert bool(terminated | truncated), "this step was expected to end the episode"
    assert bool(terminated == terminated_st)
    np.testing.assert_array_equal(info["final_observation"], obs_st)
    np.testing.assert_array_equal(obs, obs_re)
    np.testing.assert_allclose(reward, reward_st, rtol=1e-5, atol=1e-6)  # jit vs eager rounding
    for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(state_re)):
        np.testing.assert_array_equal(a, b)
    return info
