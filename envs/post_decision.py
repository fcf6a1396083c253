"""Post-decision states (PDPPO, Felizardo et al. 2025, arXiv:2504.05150): the env hook the PDPPO trainer reads.

An env that splits its step into a deterministic part ``s^x_t = f(s_t, a_t)`` (reward ``r^x_t``) and a stochastic
part exposes the pure ``post_decision(state, action, params) -> (post_obs, post_reward)``
(:meth:`purejaxpo.envs.lot_sizing.LotSizing.post_decision`). :func:`post_decision_env` returns an env whose step
reports it in ``info["post_obs"]`` / ``info["post_reward"]``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

Array = jax.Array


class PostDecisionInInfo:
    """An env whose ``step`` also reports ``post_decision(state, action)`` in ``info`` (for envs that have the
    hook but do not put its result in ``info``). The pure hook runs on the pre-step state; the env steps once."""

    def __init__(self, env: Any):
        self.env = env

    def step(self, key: Array, state: Any, action: Array, params: Any) -> tuple[Any, ...]:
        post_obs, post_reward = self.env.post_decision(state, action, params)
        obs, new_state, reward, terminated, truncated, info = self.env.step(key, state, action, params)
        return obs, new_state, reward, terminated, truncated, {**info, "post_obs": post_obs, "post_reward": post_reward}


def post_decision_env(env: Any, env_params: Any, spec: Any) -> Any:
    """The env the rollout steps: ``env`` itself when its ``info`` carries ``post_obs`` and ``post_reward``,
    else a wrapper that adds them from ``env.post_decision``. Raises ``ValueError`` when ``env`` has no
    ``post_decision`` hook or its post-decision observation does not have the observation's shape."""
    hook = getattr(env, "post_decision", None)
    if not callable(hook):
        raise ValueError(
            f"PDPPO needs an environment with a post-decision hook: a pure method "
            f"post_decision(state, action, params) -> (post_obs, post_reward) giving the deterministic part of the "
            f"step (see envs.lot_sizing.LotSizing.post_decision); {type(env).__name__} has none"
        )
    key = jax.random.key(0)
    _, state = jax.eval_shape(lambda k: env.reset(k, env_params), key)
    action_shape = (spec.action_dim,) if spec.kind == "multi_discrete" else ()
    action = jax.ShapeDtypeStruct(action_shape, jnp.int32)
    post_obs, post_reward = jax.eval_shape(lambda s, a: hook(s, a, env_params), state, action)
    if tuple(post_obs.shape) != tuple(spec.obs_shape):
        raise ValueError(
            f"PDPPO's post-decision critic reads post_obs with the observation's shape {spec.obs_shape}; "
            f"{type(env).__name__}.post_decision returns post_obs of shape {tuple(post_obs.shape)}"
        )
    if tuple(post_reward.shape) != ():
        raise ValueError(f"post_decision must return a scalar post_reward, got shape {tuple(post_reward.shape)}")
    info = jax.eval_shape(lambda k, s, a: env.step(k, s, a, env_params), key, state, action)[5]
    if "post_obs" in info and "post_reward" in info:
        return env
    return PostDecisionInInfo(env)


def post_decision_extras(info: dict[str, Any]) -> dict[str, Array]:
    return {"post_obs": info["post_obs"], "post_reward": jnp.asarray(info["post_reward"], jnp.float32)}
