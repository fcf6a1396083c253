"""A memory estimate made before anything compiles, so a run that cannot fit is refused in a second
instead of failing with an out-of-memory error after minutes of compiling and initializing.

The estimate is a lower bound from shapes alone (``jax.eval_shape``, no compilation):

- **state**: every leaf of one run's training state (params, optimizer, normalizers, env state, replay
  buffer for off-policy algorithms) × the number of runs (settings × seeds): all of it is resident;
- **rollout buffers**: one update's trajectory, ``config.batch_size`` env steps of observation, final
  observation, action and eight float32 per-step scalars (log-prob, value, reward, flags, advantages,
  targets), × the runs vmapped at once (``seeds_per_batch``, or all runs);
- **metrics**: the host copy ``[settings, seeds, updates]`` float32 per metric, plus one chunk of them on
  the device.

XLA's temporaries (activations, gradients) come on top, so a run that passes can still be tight; one that
fails this check cannot fit.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

GiB = 2**30
_STEP_SCALARS = 8  # float32 per env step besides obs/final_obs/action: log_prob, value, reward, flags, adv, targets


class InsufficientMemoryError(MemoryError):
    """The estimate of a run's memory exceeds what the machine has; the message says what to reduce."""


def tree_bytes(tree: Any) -> int:
    """Bytes of every array leaf of ``tree`` (concrete arrays or ``jax.ShapeDtypeStruct``); PRNG keys count
    their raw ``uint32`` data."""
    total = 0
    for leaf in jax.tree.leaves(tree):
        dtype = leaf.dtype
        if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            total += math.prod(leaf.shape) * 8  # threefry key data: 2 × uint32
        else:
            total += math.prod(leaf.shape) * np.dtype(dtype).itemsize
    return total


def _space_bytes(space: Any) -> int:
    shape = tuple(getattr(space, "shape", ()) or ())
    return max(1, math.prod(shape)) * 4


def rollout_bytes_per_run(trainer: Any) -> int:
    """Bytes of one update's trajectory for one run (``config.batch_size`` env steps)."""
    obs = _space_bytes(trainer.env.observation_space(trainer.env_params))
    action = _space_bytes(trainer.env.action_space(trainer.env_params))
    return int(trainer.config.batch_size) * (2 * obs + action + 4 * _STEP_SCALARS)


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run needs at least (see the module docstring); ``runs`` = settings × seeds."""

    runs: int
    runs_at_once: int
    state_per_run: int
    rollout_per_run: int
    metrics_host: int
    metrics_device: int

    @property
    def state(self) -> int:
        return self.state_per_run * self.runs

    @property
    def rollout(self) -> int:
        return self.rollout_per_run * self.runs_at_once

    @property
    def device(self) -> int:
        """What lives on the accelerator: state, rollout buffers and one chunk of metrics."""
        return self.state + self.rollout + self.metrics_device

    def describe(self) -> str:
        return (
            f"state {_fmt(self.state)} ({self.runs:,} runs × {_fmt(self.state_per_run)}), rollout buffers "
            f"{_fmt(self.rollout)} ({self.runs_at_once:,} runs at once × {_fmt(self.rollout_per_run)}), metrics "
            f"{_fmt(self.metrics_host)} on the host"
        )


def _fmt(num_bytes: float) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", GiB), ("MiB", 2**20), ("KiB", 2**10)):
        if num_bytes >= size:
            return f"{num_bytes / size:.1f} {unit}"
    return f"{int(num_bytes)} B"


def estimate(
    state_shape: Any, trainer: Any, *, runs: int, runs_at_once: int, num_updates: int, chunk: int, num_metrics: int
) -> MemoryEstimate:
    """The estimate for ``runs`` runs whose one-run state has shapes ``state_shape``."""
    per_metric = 4 * runs
    return MemoryEstimate(
        runs=runs,
        runs_at_once=runs_at_once,
        state_per_run=tree_bytes(state_shape),
        rollout_per_run=rollout_bytes_per_run(trainer),
        metrics_host=per_metric * num_updates * num_metrics,
        metrics_device=per_metric * chunk * num_metrics,
    )


def host_available() -> int | None:
    """Bytes of host memory this process can still use: ``MemAvailable`` and the cgroup limit (Linux),
    else physical memory; ``None`` when unknown."""
    candidates = []
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    candidates.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    try:
        limit = open("/sys/fs/cgroup/memory.max").read().strip()
        if limit != "max":
            used = int(open("/sys/fs/cgroup/memory.current").read().strip())
            candidates.append(max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    if not candidates:
        try:
            candidates.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        except (ValueError, OSError, AttributeError):
            return None
    return min(candidates)


def device_available(devices: list[Any]) -> int | None:
    """Free accelerator memory summed over ``devices`` (``None`` on a CPU or when jax does not say)."""
    total = 0
    for device in devices:
        if device.platform == "cpu":
            return None
        try:
            stats = device.memory_stats()
        except Exception:  # backends without memory statistics
            return None
        if not stats or "bytes_limit" not in stats:
            return None
        total += int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    return total


def check(est: MemoryEstimate, devices: list[Any], *, batched: bool) -> None:
    """Raise :class:`InsufficientMemoryError` when ``est`` cannot fit the devices' or the host's memory."""
    device_free = device_available(devices)
    host_free = host_available()
    if device_free is None:  # CPU: everything lives in host memory
        needs, has, where = est.device + est.metrics_host, host_free, "host memory"
    elif est.device > device_free:
        needs, has, where = est.device, device_free, f"free memory of {len(devices)} {devices[0].platform} device(s)"
    else:
        needs, has, where = est.metrics_host, host_free, "host memory (metrics)"
    if has is None or needs <= has:
        return
    advice = "use fewer seeds or a smaller sweep"
    if est.rollout > est.state and not batched:
        advice = "vmap fewer runs at once (seeds_per_batch=K, CLI --seeds-per-batch K), or " + advice
    elif est.metrics_host > est.state:
        advice = "train fewer updates (a smaller total_timesteps or a larger num_envs × num_steps), or " + advice
    raise InsufficientMemoryError(
        f"this run needs at least {_fmt(needs)} but the {where} has {_fmt(has)} free: {est.describe()}; "
        f"{advice} (CLI --num-seeds; split seeds over runs with seed_indices / --seed-indices)"
    )
