"""Checks and resolution of :func:`purejaxpo.experiment.run`'s arguments, all before anything is built
or compiled: scalar arguments, the Trainer (from a name or given) and the env it records, the
hyperparameter grid and its unique labels, seed subsets, and the run description a resume must match."""

from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np

from purejaxpo.algorithms.registry import Algorithm, check_action_kind, get_algorithm
from purejaxpo.environments import make_env
from purejaxpo.results import config_dict, hparams_dict
from purejaxpo.types import Trainer

MAX_SEED = 2**32 - 2  # jax keys take the low 32 bits (x64 off): larger seeds would alias; eval uses seed + 1
MAX_UPDATES = 2**31 - 1  # update counters are int32


def _algorithm_for(trainer: Trainer) -> Algorithm:
    """The registry entry named by ``trainer.algorithm`` (set by every ``make_train``)."""
    if not trainer.algorithm:
        raise ValueError(
            f"this Trainer does not name its algorithm (Trainer.algorithm is empty; config type "
            f"{type(trainer.config).__name__}); build it with a registered make_train"
        )
    return get_algorithm(trainer.algorithm)


def _as_grid(hparams: Any, hparams_cls: type) -> list[Any]:
    if hparams is None:
        return [hparams_cls()]
    settings = list(hparams) if isinstance(hparams, (list, tuple)) else [hparams]
    if not settings:
        raise ValueError("hparams grid is empty")
    for hp in settings:
        if not isinstance(hp, hparams_cls):
            raise TypeError(f"hparams must be {hparams_cls.__name__} (or a list of them), got {type(hp).__name__}")
        hp.validate()
    return settings


def _seed_mesh(devices: list[Any], num_seeds: int) -> Any:
    if len(devices) <= 1:
        return None
    if num_seeds % len(devices):
        raise ValueError(f"num_seeds={num_seeds} must be a multiple of the number of devices ({len(devices)})")
    return jax.sharding.Mesh(np.asarray(devices), ("seeds",))


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_arguments(num_seeds: Any, seed: Any, chunk_updates: Any, checkpoint_every: Any, eval_episodes: Any,
                     eval_max_steps: Any, devices: Any) -> None:
    """``ValueError``/``TypeError`` for scalar arguments of :func:`run`, before anything is built."""
    if not _is_int(num_seeds) or num_seeds <= 0:
        raise ValueError(f"num_seeds must be a positive integer, got {num_seeds!r}")
    if not _is_int(seed) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer in [0, {MAX_SEED}] (jax keys hold 32 bits), got {seed!r}")
    for name, value in (("chunk_updates", chunk_updates), ("checkpoint_every", checkpoint_every), ("eval_max_steps", eval_max_steps)):
        if value is not None and (not _is_int(value) or value <= 0):
            raise ValueError(f"{name} must be a positive integer (or None), got {value!r}")
    if not _is_int(eval_episodes) or eval_episodes < 0:
        raise ValueError(f"eval_episodes must be an integer >= 0, got {eval_episodes!r}")
    if devices is not None:
        devices = list(devices)
        if not devices:
            raise ValueError("devices is empty: pass None (all local devices) or a non-empty list of jax devices")
        if not all(isinstance(d, jax.Device) for d in devices):
            raise TypeError(f"devices must be jax devices (e.g. jax.devices()[:2]), got {[type(d).__name__ for d in devices]}")


def _seed_list(num_seeds: int, seed_indices: Sequence[int] | None) -> list[int] | None:
    if seed_indices is None:
        return None
    indices = [int(i) if _is_int(i) else i for i in seed_indices]
    if not indices or not all(_is_int(i) and 0 <= i < num_seeds for i in indices):
        raise ValueError(f"seed_indices must be a non-empty list of integers in [0, {num_seeds}), got {list(seed_indices)!r}")
    if len(set(indices)) != len(indices):
        raise ValueError(f"seed_indices has repeated entries: {indices}")
    return indices


def _resolve_trainer(algo: Any, env: Any, config: Any, env_params: Any) -> tuple[Trainer, Algorithm, str]:
    """``(trainer, registry entry, env name)`` from an algorithm name + env or a ready Trainer."""
    if isinstance(algo, Trainer):
        trainer = algo
        algorithm = _algorithm_for(trainer)
        if config is not None and config != trainer.config:
            raise ValueError("config comes from the Trainer; pass config=None (or build the Trainer with this config)")
        if env_params is not None and env_params is not trainer.env_params:
            raise ValueError("env_params comes from the Trainer; pass env_params=None")
        check_action_kind(algorithm, trainer.env, trainer.env_params)
        return trainer, algorithm, _trainer_env_name(trainer, env)
    if not isinstance(algo, str):
        raise TypeError(f"algo must be an algorithm name or a Trainer, got {type(algo).__name__}")
    algorithm = get_algorithm(algo)
    if env is None:
        raise ValueError("run(algo_name, env) needs an environment")
    env_name = env if isinstance(env, str) else getattr(env, "name", type(env).__name__)
    if isinstance(env, str):
        env, default_params = make_env(env)
        env_params = default_params if env_params is None else env_params
    if config is None:
        config = algorithm.config_cls()
    elif not isinstance(config, algorithm.config_cls) or getattr(type(config), "algorithm_name", algorithm.name) != algorithm.name:
        raise TypeError(f"config for {algorithm.name} must be a {algorithm.config_cls.__name__}, got {type(config).__name__}")
    check_action_kind(algorithm, env, env_params)
    trainer = algorithm.make_train(config, env, env_params)
    return trainer, _algorithm_for(trainer), env_name


def _trainer_env_name(trainer: Trainer, env: Any) -> str:
    """The name to record for a Trainer's env; ``env`` (a name or the env itself) must be that env."""
    own = getattr(trainer.env, "name", None)
    if env is None:
        return own or type(trainer.env).__name__
    if not isinstance(env, str):
        if env is not trainer.env:
            raise ValueError("env must be the Trainer's own env (or None) when algo is a Trainer")
        return own or type(env).__name__
    if own is not None and own.lower() in (env.lower(), env.split("/")[-1].lower()):
        return env
    made, _ = make_env(env)
    if type(made) is not type(trainer.env) or getattr(made, "name", None) != own:
        raise ValueError(
            f"this Trainer was built on {own or type(trainer.env).__name__}, not {env!r}: pass env=None to use the "
            f"Trainer's env, or build a Trainer for {env!r}"
        )
    return env


def _labels(settings: list[Any], sweep_labels: Sequence[str] | None) -> list[str]:
    """One unique label per setting (``[]`` for a single setting without labels)."""
    grid = len(settings)
    if sweep_labels is not None:
        labels = [str(s) for s in sweep_labels]
        if len(labels) != grid:
            raise ValueError(f"sweep_labels has {len(labels)} entries for {grid} hyperparameter settings")
        if len(set(labels)) != len(labels):
            raise ValueError(f"sweep_labels must be unique, got {labels}")
        return labels
    if grid == 1:
        return []
    varying = _varying(settings)
    for fmt in ("{:g}", "{!r}"):
        labels = [", ".join(f"{k}={fmt.format(v)}" for k, v in d.items()) for d in varying]
        if len(set(labels)) == grid:
            return labels
    return [f"{g}: {label}" if label else str(g) for g, label in enumerate(labels)]


def _varying(settings: list[Any]) -> list[dict[str, float]]:
    """Per setting, only the hyperparameters that differ across the grid (for legend labels)."""
    dicts = [hparams_dict(s) for s in settings]
    keys = [k for k in dicts[0] if len({d[k] for d in dicts}) > 1]
    return [{k: d[k] for k in keys} for d in dicts]


def run_description(algorithm: str, env_name: str, config: Any, settings: list[Any], num_seeds: int, seed: int,
                    seed_indices: list[int] | None) -> dict[str, Any]:
    """What identifies a run (stored in every checkpoint and in ``config.json``): a resume must match it."""
    return {
        "algo": algorithm,
        "env": env_name,
        "config": config_dict(config),
        "hparams": [hparams_dict(s) for s in settings],
        "num_seeds": num_seeds,
        "seed": seed,
        "seed_indices": seed_indices,
    }
