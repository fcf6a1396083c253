"""Craftax behind the gymnax 1.x step API: ``make_env("craftax/<id>")``.

Craftax's envs are gymnax-0.x-like: ``step(key, state, action, params) -> (obs, state, reward, done,
info)`` with one ``done`` for the time limit (``state.timestep >= params.max_timesteps``) and for the
episode's real end (death, lava in Classic; death or the final boss in Craftax), and its auto-reset
variant overwrites the terminal observation. :class:`CraftaxGymnaxWrapper` wraps the *no-auto-reset*
variant and reports

- ``terminated``: craftax's ``is_terminal`` with the time limit lifted (``max_timesteps`` set to the
  largest int32), i.e. the episode ended for a reason other than time;
- ``truncated = done and not terminated`` (the time limit only);
- ``info["final_observation"]``: the observation before the reset (drawn with part of the step's key).

``info`` also carries craftax's own per-step entries (``Achievements/<name>``: achievement rates at episode
end), minus its ``discount`` (0 on time-outs too, which is the conflation undone here).

Params are craftax's ``EnvParams`` (``max_timesteps`` = 10000 by default). Observations are craftax's
standard ones for the id: ``float32 [1345]`` (Classic-Symbolic), ``[8268]`` (Symbolic), ``[H, W, 3]``
images (Pixels). Note that every step computes a reset under ``vmap`` (a world generation), as craftax's
own auto-reset does: on 2 CPU cores that is ~10x the cost of the step itself. The first Pixels env built
after installing craftax writes a texture cache into craftax's package directory (about 2 minutes).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from gymnax.environments import spaces

from purejaxpo.adapters.common import tree_where, unknown_id_error

CRAFTAX_ENV_NAMES = (
    "Craftax-Classic-Symbolic-v1", "Craftax-Symbolic-v1", "Craftax-Classic-Pixels-v1", "Craftax-Pixels-v1",
)
_NO_TIME_LIMIT = int(jnp.iinfo(jnp.int32).max)


class CraftaxGymnaxWrapper:
    """Wrap a craftax ``EnvironmentNoAutoReset`` (``reset``, ``step``, ``is_terminal``, spaces)."""

    def __init__(self, craftax_env: Any, name: str = "craftax"):
        self.craftax_env = craftax_env
        self._name = name

    @property
    def default_params(self) -> Any:
        return self.craftax_env.default_params

    @property
    def name(self) -> str:
        return self._name

    def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, Any]:
        params = self.default_params if params is None else params
        return self.craftax_env.reset(key, params)

    def step(
        self, key: jax.Array, state: Any, action: jax.Array, params: Any = None
    ) -> tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        """One craftax step, then a reset if it ended the episode."""
        params = self.default_params if params is None else params
        step_key, reset_key = jax.random.split(key)
        obs, inner, reward, done, craftax_info = self.craftax_env.step(step_key, state, action, params)
        terminated = jnp.asarray(self.craftax_env.is_terminal(inner, params.replace(max_timesteps=_NO_TIME_LIMIT)))
        done = jnp.asarray(done)
        truncated = jnp.logical_and(done, jnp.logical_not(terminated))
        reset_obs, reset_state = self.craftax_env.reset(reset_key, params)
        next_obs, next_state = tree_where(done, (reset_obs, reset_state), (obs, inner))
        info = {k: v for k, v in craftax_info.items() if k != "discount"}
        info.update(final_observation=obs, terminated=terminated, truncated=truncated)
        return next_obs, next_state, jnp.asarray(reward, jnp.float32), terminated, truncated, info

    def observation_space(self, params: Any = None) -> spaces.Box:
        space = self.craftax_env.observation_space(self.default_params if params is None else params)
        return spaces.Box(space.low, space.high, tuple(space.shape), space.dtype)

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(int(self.craftax_env.action_space(params).n))


def make_craftax_env(name: str, **kwargs: Any) -> tuple[CraftaxGymnaxWrapper, Any]:
    """The no-auto-reset craftax env ``name`` wrapped; returns ``(env, params)``.

    ``kwargs`` replace fields of craftax's ``EnvParams`` (``max_timesteps``, ``day_length``, ...).
    """
    if name not in CRAFTAX_ENV_NAMES:
        raise unknown_id_error("craftax", name, CRAFTAX_ENV_NAMES)
    from craftax.craftax_env import make_craftax_env_from_name  # imported lazily: an optional extra

    env = CraftaxGymnaxWrapper(make_craftax_env_from_name(name, auto_reset=False), f"craftax/{name}")
    params = env.default_params
    fields = {f.name for f in dataclasses.fields(params)}
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        raise ValueError(f"craftax/{name}: unknown EnvParams field(s) {unknown}; fields are {sorted(fields)}")
    return env, params.replace(**kwargs)
