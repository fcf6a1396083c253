"""Evaluating trained states: every (setting, seed) of a run for a number of episodes inside ``jit``.

The runner (after training) and :func:`purejaxpo.load_run` / ``purejaxpo eval`` (on a saved run) use the
same keys and the same function, so evaluating a saved run reproduces the in-training evaluation.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np

from purejaxpo.rollout import evaluate


def eval_keys(seed: int, num_seeds: int, seed_indices: Sequence[int] | None = None) -> jax.Array:
    """``[S]`` evaluation keys: seed ``i`` of a ``num_seeds`` family uses ``split(key(seed + 1), num_seeds)[i]``
    (prefix-stable like the training keys, so a subset of seeds gets the same keys)."""
    keys = jax.random.split(jax.random.key(seed + 1), num_seeds)
    return keys if seed_indices is None else keys[np.asarray(seed_indices)]


def default_max_steps(env_params: Any) -> int:
    """The env's episode limit (``max_steps_in_episode``), 1000 when it has none."""
    return int(getattr(env_params, "max_steps_in_episode", 1000))


def evaluate_runs(
    trainer: Any, state: Any, keys: jax.Array, episodes: int, *, deterministic: bool = False, max_steps: int | None = None
) -> np.ndarray:
    """``[G, S]`` mean return over ``episodes`` episodes of each run of ``state`` (leaves ``[G, S, ...]``);
    run ``(g, s)`` uses ``keys[s]``. See :func:`purejaxpo.rollout.evaluate`."""
    return np.asarray(evaluate_runs_on_devices(trainer, state, keys, episodes, deterministic=deterministic, max_steps=max_steps))


def evaluate_runs_on_devices(
    trainer: Any, state: Any, keys: jax.Array, episodes: int, *, deterministic: bool = False, max_steps: int | None = None
) -> jax.Array:
    """:func:`evaluate_runs` without fetching the result: ``[G, S]`` placed like ``state`` (a global array
    when the state spans processes; read it with :meth:`purejaxpo.placement.Placement.gather`)."""
    max_steps = max_steps or default_max_steps(trainer.env_params)
    act = lambda s, o, k, **kw: trainer.act(s, o, k, deterministic=deterministic, **kw)
    fresh = (lambda s: trainer.memory(s, episodes)) if trainer.memory is not None else (lambda s: None)
    one = lambda s, k: evaluate(trainer.env, trainer.env_params, act, s, k, episodes, max_steps, fresh(s)).mean()
    fn = jax.jit(jax.vmap(jax.vmap(one, in_axes=(0, 0)), in_axes=(0, None)))
    return fn(state, keys)
