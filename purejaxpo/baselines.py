"""Reference returns: a uniformly random policy on an environment, evaluated inside ``jit``.

Used for the random-policy line of ``purejaxpo plot`` and the recipe table (``benchmarks/recipes.py``).
Cheap for gymnax envs and ours (one compiled rollout of ``episodes`` parallel episodes over the env's step
limit); brax envs and the adapter suites are not cheap (physics compile, world generation) and
:func:`is_cheap` says so.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from purejaxpo.evaluation import default_max_steps
from purejaxpo.rollout import evaluate


def is_cheap(env_name: str) -> bool:
    """True for envs whose random-policy return takes seconds: everything but brax and the adapter suites."""
    from purejaxpo import adapters
    from purejaxpo.environments import BRAX_ENV_NAMES

    return not (env_name.removeprefix("brax/") in BRAX_ENV_NAMES or adapters.suite_of(env_name) is not None)


def random_returns(env: Any, env_params: Any, *, episodes: int = 256, seed: int = 0, max_steps: int | None = None) -> np.ndarray:
    """``[episodes]`` returns of the first episode of each of ``episodes`` envs under uniformly random actions
    (``action_space.sample``), run to the env's step limit (``max_steps``)."""
    space = env.action_space(env_params)

    def act(_state: Any, obs: jax.Array, key: jax.Array) -> jax.Array:
        return jax.vmap(space.sample)(jax.random.split(key, obs.shape[0]))

    steps = max_steps or default_max_steps(env_params)
    run = jax.jit(lambda key: evaluate(env, env_params, act, None, key, episodes, steps))
    return np.asarray(run(jax.random.key(seed)))


def random_return(env_name: str, *, episodes: int = 256, seed: int = 0) -> dict[str, float]:
    """Mean return of a random policy on ``env_name`` with a 95% interval half-width (normal, over episodes)."""
    from purejaxpo.environments import make_env

    env, env_params = make_env(env_name)
    returns = random_returns(env, env_params, episodes=episodes, seed=seed)
    return {"mean": float(returns.mean()), "ci95": float(1.96 * returns.std() / np.sqrt(len(returns))), "episodes": episodes}
