"""Shared benchmark plumbing: the machine description and timing of a jitted PPO run."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """Backend, device kind and count, CPU count and versions, recorded with every result."""
    device = jax.devices()[0]
    info = {
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "num_devices": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        # Other processes on the machine slow every number here; the 1-minute load average says how busy it was.
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    if info["backend"] == "gpu":
        try:
            import subprocess

            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=30,
            )
            info["gpu"] = out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            info["gpu"] = "nvidia-smi unavailable"
    return info


def time_ppo(
    num_seeds: int, total_timesteps: int, config_overrides: dict | None = None, env_name: str = "CartPole-v1",
    seeds_per_batch: int | str | None = "auto",
) -> dict[str, Any]:
    """Compile (AOT, timed apart) and run ``num_seeds`` vmapped PPO seeds once; returns timings and returns.

    ``seeds_per_batch`` as in :func:`purejaxpo.experiment.run` (default ``"auto"``: what the runner does)."""
    from purejaxpo import make_env
    from purejaxpo.algorithms import ppo
    from purejaxpo.batching import map_over_runs, resolve_seeds_per_batch

    env, env_params = make_env(env_name)
    config = ppo.PPOConfig(total_timesteps=total_timesteps, **(config_overrides or {}))
    trainer = ppo.make_train(config, env, env_params)
    hp = jax.tree.map(lambda x: jax.numpy.asarray(x)[None], ppo.PPOHParams())  # one setting: [G=1]
    keys = jax.random.split(jax.random.key(0), num_seeds)[None]  # [1, S]
    per_batch = resolve_seeds_per_batch(seeds_per_batch, num_seeds)
    start = time.perf_counter()
    compiled = jax.jit(map_over_runs(trainer.train, per_batch)).lower(keys, hp).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    _, metrics = compiled(keys, hp)
    returns = np.asarray(jax.block_until_ready(metrics["episode_return"]))[0]
    run_s = time.perf_counter() - start
    steps = config.num_updates * config.batch_size * num_seeds
    last = max(1, config.num_updates // 20)
    return {
        "num_seeds": num_seeds,
        "env_steps": steps,
        "num_updates": config.num_updates,
        "seeds_per_batch": per_batch,
        "compile_s": round(compile_s, 3),
        "run_s": round(run_s, 3),
        "env_steps_per_s": round(steps / run_s, 1),
        "final_return_mean": float(np.nanmean(returns[:, -last:])),
    }


def write_json(name: str, payload: dict[str, Any], directory: Path | None = None, indent: int | None = 2) -> Path:
    """Write ``payload`` to ``<directory>/<name>`` (default ``results/``) atomically (a temporary file, then
    ``os.replace``); strict JSON (NaN written as ``null``); ``indent=None`` writes it compact (large files)."""
    directory = RESULTS if directory is None else Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_strict(payload), indent=indent, allow_nan=False))
    os.replace(tmp, path)
    return path


def _strict(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value
