"""Run an algorithm over seeds × a hyperparameter grid × devices, in jitted chunks of updates.

``run`` initializes every (setting, seed) pair in one vmapped call, then advances all of them by
``chunk`` updates per jitted call in a host loop. Between chunks (never inside the hot path) it updates a
progress bar, writes orbax checkpoints and checks for non-finite losses. The seed axis is sharded over
the local devices with ``jax.sharding`` (a 1-D mesh named ``seeds``); after
``jax.distributed.initialize`` the same code spans hosts.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from purejaxpo import checkpointing
from purejaxpo.batching import map_over_runs, resolve_seeds_per_batch
from purejaxpo.algorithms.registry import ALGORITHMS, Algorithm, check_action_kind, get_algorithm
from purejaxpo.environments import make_env
from purejaxpo.plotting import plot_curves
from purejaxpo.rollout import evaluate
from purejaxpo.types import Trainer, stack_hparams


class NonFiniteError(FloatingPointError):
    """A loss or gradient became NaN/inf; the offending steps were skipped and the run stopped."""


@dataclass
class Results:
    """Everything a run produced. ``metrics[name]`` is ``[G, S, U]`` (settings × seeds × updates)."""

    algo: str
    env_name: str
    config: Any
    hparams: list[Any]
    num_seeds: int
    metrics: dict[str, np.ndarray]
    state: Any
    compile_s: float
    run_s: float
    eval_returns: np.ndarray | None = None  # [G, S]
    sweep_labels: list[str] = field(default_factory=list)

    @property
    def num_updates(self) -> int:
        return next(iter(self.metrics.values())).shape[-1]

    @property
    def env_steps(self) -> np.ndarray:
        return self.metrics["env_steps"][0, 0]

    @property
    def env_steps_per_s(self) -> float:
        total = float(self.env_steps[-1]) * len(self.hparams) * self.num_seeds
        return total / self.run_s if self.run_s > 0 else float("nan")

    def dataframe(self) -> Any:
        """Long format: one row per (hparam, seed, update) with every metric as a column."""
        import pandas as pd

        grid, seeds, updates = next(iter(self.metrics.values())).shape
        index = np.indices((grid, seeds, updates)).reshape(3, -1)
        columns = {"hparam": index[0], "seed": index[1], "update": index[2]}
        columns.update({name: values.reshape(-1) for name, values in self.metrics.items()})
        return pd.DataFrame(columns)

    def final_returns(self, fraction: float = 0.05) -> np.ndarray:
        """``[G, S]``: mean return of the episodes completed in the last ``fraction`` of updates."""
        last = max(1, math.ceil(fraction * self.num_updates))
        returns = np.nan_to_num(self.metrics["episode_return"][..., -last:])
        counts = self.metrics["episode_count"][..., -last:]
        total = counts.sum(-1)
        return np.where(total > 0, (returns * counts).sum(-1) / np.maximum(total, 1), np.nan)

    def summary(self) -> dict[str, Any]:
        """The run's summary (``summary.json``); per-setting entries under ``"sweep"`` for grids."""

        def stats(values: np.ndarray) -> dict[str, Any]:
            return {
                "mean": float(np.nanmean(values)),
                "median": float(np.nanmedian(values)),
                "min": float(np.nanmin(values)),
                "max": float(np.nanmax(values)),
                "per_seed": [float(v) for v in values],
            }

        final = self.final_returns()
        out: dict[str, Any] = {
            "algo": self.algo,
            "env": self.env_name,
            "num_seeds": self.num_seeds,
            "total_timesteps": int(self.env_steps[-1]),
            "num_updates": self.num_updates,
            "compile_s": round(self.compile_s, 3),
            "run_s": round(self.run_s, 3),
            "env_steps_per_s": round(self.env_steps_per_s, 1),
            "final_return": stats(final[0]),
        }
        if self.eval_returns is not None:
            out["eval_return"] = stats(self.eval_returns[0])
        if len(self.hparams) > 1:
            out["sweep"] = [
                {
                    "label": self.sweep_labels[g] if self.sweep_labels else str(g),
                    "hparams": hparams_dict(hp),
                    "final_return": stats(final[g]),
                    **({"eval_return": stats(self.eval_returns[g])} if self.eval_returns is not None else {}),
                }
                for g, hp in enumerate(self.hparams)
            ]
        return out

    def plot(self, metric: str = "episode_return", path: str | Path | None = None, ax: Any = None) -> Any:
        """Learning curves of ``metric``: mean and 95% interval over seeds, one line per setting."""
        labels = self.sweep_labels or [""] * len(self.hparams)
        title = f"{self.algo} on {self.env_name} ({self.num_seeds} seeds)"
        return plot_curves(self.env_steps, self.metrics[metric], labels, title=title, ylabel=metric.replace("_", " "), path=path, ax=ax)


def hparams_dict(hp: Any) -> dict[str, float]:
    return {f.name: float(np.asarray(getattr(hp, f.name))) for f in dataclasses.fields(hp)}


def config_dict(config: Any) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


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


def run(
    algo: str | Trainer,
    env: str | Any | None = None,
    *,
    num_seeds: int = 1,
    hparams: Any = None,
    config: Any = None,
    env_params: Any = None,
    seed: int = 0,
    devices: Sequence[Any] | None = None,
    seeds_per_batch: int | str | None = "auto",
    chunk_updates: int | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    progress: bool = True,
    eval_episodes: int = 0,
    eval_deterministic: bool = False,
    eval_max_steps: int | None = None,
    sweep_labels: Sequence[str] | None = None,
) -> Results:
    """Train ``algo`` on ``env`` for ``num_seeds`` seeds (× every setting when ``hparams`` is a list).

    Args:
      algo: an algorithm name (``"ppo"``) or a ready :class:`~purejaxpo.types.Trainer` (then ``env`` and
        ``config`` come from it).
      env: an environment name for :func:`make_env`, or an env object (with ``env_params``).
      hparams: ``None`` (defaults), one HParams, or a list of HParams run side by side as a grid.
      devices: devices to shard the seed axis over (default: all local devices).
      seeds_per_batch: vmap this many runs (settings × seeds) at a time and loop over the batches (same
        results, a working set that fits CPU caches; see :mod:`purejaxpo.batching`). ``"auto"``: 64 on a
        CPU with more than 64 runs, otherwise one wide vmap; ``None``: always one wide vmap. One device only.
      chunk_updates: updates per jitted call (default: ``checkpoint_every`` or ~1/50 of the run).
      checkpoint_dir / checkpoint_every / resume: orbax checkpoints every K updates; ``resume=True``
        continues the latest checkpoint in ``checkpoint_dir`` bit-exactly (its run description must match).
      eval_episodes: after training, evaluate each seed on this many episodes inside ``jit``.

    Seed ``i`` uses ``jax.random.split(jax.random.key(seed), num_seeds)[i]`` for every setting.
    """
    if not isinstance(num_seeds, int) or num_seeds <= 0:
        raise ValueError(f"num_seeds must be a positive integer, got {num_seeds!r}")
    if checkpoint_every is not None and (not isinstance(checkpoint_every, int) or checkpoint_every <= 0):
        raise ValueError(f"checkpoint_every must be a positive integer, got {checkpoint_every!r}")
    if (checkpoint_every is not None or resume) and checkpoint_dir is None:
        raise ValueError("checkpoint_every and resume need a checkpoint_dir")
    if eval_episodes < 0:
        raise ValueError(f"eval_episodes must be >= 0, got {eval_episodes}")

    if isinstance(algo, Trainer):
        trainer = algo
        algorithm = _algorithm_for(trainer)
        check_action_kind(algorithm, trainer.env, trainer.env_params)
        env_name = env if isinstance(env, str) else getattr(trainer.env, "name", type(trainer.env).__name__)
    else:
        algorithm = get_algorithm(algo)
        if env is None:
            raise ValueError("run(algo_name, env) needs an environment")
        env_name = env if isinstance(env, str) else getattr(env, "name", type(env).__name__)
        if isinstance(env, str):
            env, default_params = make_env(env)
            env_params = default_params if env_params is None else env_params
        config = algorithm.config_cls() if config is None else config
        check_action_kind(algorithm, env, env_params)
        trainer = algorithm.make_train(config, env, env_params)
    settings = _as_grid(hparams, algorithm.hparams_cls)
    hp = stack_hparams(settings)
    grid = len(settings)
    num_updates = trainer.config.num_updates
    chunk = chunk_updates or checkpoint_every or max(1, num_updates // 50)
    chunk = min(chunk, num_updates)

    meta = {
        "algo": algorithm.name,
        "env": env_name,
        "config": config_dict(trainer.config),
        "hparams": [hparams_dict(s) for s in settings],
        "num_seeds": num_seeds,
        "seed": seed,
    }
    keys = jax.random.split(jax.random.key(seed), num_seeds)
    keys = jnp.broadcast_to(keys, (grid, num_seeds))
    devices = list(devices) if devices is not None else jax.devices()
    mesh = _seed_mesh(devices, num_seeds)
    # Every state/metric leaf is [G, S, ...]: shard axis 1 (seeds) over the mesh; hparams are replicated.
    sharding: dict[str, Any] = {}
    if mesh is not None:
        seeds_sharded = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, "seeds"))
        replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
        keys = jax.device_put(keys, seeds_sharded)
        sharding = {"in_shardings": (seeds_sharded, replicated), "out_shardings": (seeds_sharded, seeds_sharded)}

    per_batch = resolve_seeds_per_batch(seeds_per_batch, grid * num_seeds, devices[0].platform)
    if mesh is not None:
        if per_batch is not None and seeds_per_batch != "auto":
            raise ValueError("seeds_per_batch batches the seeds of one device; with several devices the seed axis "
                             "is already split across them (pass seeds_per_batch=None or one device)")
        per_batch = None
    init_fn = jax.jit(
        map_over_runs(trainer.init, per_batch),
        **({"in_shardings": sharding["in_shardings"], "out_shardings": sharding["out_shardings"][0]} if sharding else {}),
    )

    def updates(state: Any, hp_one: Any, length: int) -> tuple[Any, dict[str, jax.Array]]:
        return jax.lax.scan(lambda s, _: trainer.update(s, hp_one), state, None, length=length)

    compiled: dict[int, Any] = {}
    compile_s = 0.0

    def chunk_fn(length: int, state: Any) -> Any:
        nonlocal compile_s
        if length not in compiled:
            start = time.perf_counter()
            fn = jax.jit(map_over_runs(lambda s, h: updates(s, h, length), per_batch), donate_argnums=(0,), **sharding)
            compiled[length] = fn.lower(state, hp).compile()
            compile_s += time.perf_counter() - start
        return compiled[length]

    start = time.perf_counter()
    init_compiled = init_fn.lower(keys, hp).compile()
    compile_s += time.perf_counter() - start
    state = init_compiled(keys, hp)
    metric_names = list(jax.eval_shape(lambda s: jax.vmap(jax.vmap(trainer.update, in_axes=(0, None)))(s, hp)[1], state))
    metrics = {name: np.full((grid, num_seeds, num_updates), np.nan, np.float32) for name in metric_names}

    done = 0
    mngr = None
    if checkpoint_dir is not None:
        if resume:
            step, found = checkpointing.read_meta(checkpoint_dir)
            checkpointing.check_meta(found, meta)
            done, state, metrics = checkpointing.restore(checkpoint_dir, state, metrics)
            if sharding:
                state = jax.device_put(state, sharding["out_shardings"][0])
        elif Path(checkpoint_dir).exists() and any(Path(checkpoint_dir).iterdir()):
            raise checkpointing.CheckpointError(
                f"{checkpoint_dir} already holds checkpoints; pass resume=True to continue it or choose a new directory"
            )
        mngr = checkpointing.manager(checkpoint_dir)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=num_updates, initial=done, unit="upd", desc=f"{algorithm.name} {env_name}", dynamic_ncols=True)
    run_s = 0.0
    steps_per_update = trainer.config.batch_size * grid * num_seeds
    try:
        while done < num_updates:
            length = min(chunk, num_updates - done)
            fn = chunk_fn(length, state)
            start = time.perf_counter()
            new_state, chunk_metrics = fn(state, hp)
            chunk_metrics = jax.device_get(chunk_metrics)
            elapsed = time.perf_counter() - start
            run_s += elapsed
            state = new_state
            for name, values in chunk_metrics.items():
                metrics[name][..., done : done + length] = values
            done += length
            bad = np.asarray(chunk_metrics.get("nonfinite_steps", np.zeros(1))) > 0
            if bad.any():
                g, s, u = np.argwhere(bad)[0]
                raise NonFiniteError(
                    f"non-finite loss or gradient at update {done - length + u} (hparam setting {g}, seed {s}); "
                    f"{int(bad.sum())} update(s) affected. Those gradient steps were skipped; lower the "
                    f"learning rate or check the environment's rewards. Checkpoints written so far are kept."
                )
            if bar is not None:
                recent = chunk_metrics["episode_return"]
                bar.update(length)
                bar.set_postfix(
                    {"return": f"{np.nanmean(recent) if np.isfinite(recent).any() else float('nan'):.1f}",
                     "steps/s": f"{steps_per_update * length / max(elapsed, 1e-9):,.0f}"},
                    refresh=False,
                )
            if mngr is not None and checkpoint_every is not None and (done % checkpoint_every == 0 or done == num_updates):
                checkpointing.save(mngr, done, state, metrics, meta)
    except KeyboardInterrupt:
        if mngr is not None and done > 0:
            checkpointing.save(mngr, done, state, metrics, meta)
            print(f"\ninterrupted: saved checkpoint at update {done} in {checkpoint_dir}")
        raise
    finally:
        if bar is not None:
            bar.close()

    eval_returns = None
    if eval_episodes:
        max_steps = eval_max_steps or int(getattr(trainer.env_params, "max_steps_in_episode", 1000))
        act = lambda s, o, k: trainer.act(s, o, k, deterministic=eval_deterministic)
        evaluate_one = lambda s, k: evaluate(trainer.env, trainer.env_params, act, s, k, eval_episodes, max_steps).mean()
        eval_keys = jax.random.split(jax.random.key(seed + 1), num_seeds)
        eval_fn = jax.jit(jax.vmap(jax.vmap(evaluate_one, in_axes=(0, 0)), in_axes=(0, None)))
        eval_returns = np.asarray(eval_fn(state, eval_keys))

    labels = list(sweep_labels) if sweep_labels is not None else (
        [", ".join(f"{k}={v:g}" for k, v in _varying(settings)[g].items()) for g in range(grid)] if grid > 1 else []
    )
    return Results(
        algo=algorithm.name, env_name=env_name, config=trainer.config, hparams=settings, num_seeds=num_seeds,
        metrics=metrics, state=state, compile_s=compile_s, run_s=run_s, eval_returns=eval_returns, sweep_labels=labels,
    )


def _varying(settings: list[Any]) -> list[dict[str, float]]:
    """Per setting, only the hyperparameters that differ across the grid (for legend labels)."""
    dicts = [hparams_dict(s) for s in settings]
    keys = [k for k in dicts[0] if len({d[k] for d in dicts}) > 1]
    return [{k: d[k] for k in keys} for d in dicts]
