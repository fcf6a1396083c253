"""What a run produced (:class:`Results`): metrics ``[G, S, U]``, the final state, timings, evaluation,
and the strict-JSON summary written to ``summary.json``."""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from purejaxpo.plotting import plot_curves


def hparams_dict(hp: Any) -> dict[str, float]:
    return {f.name: float(np.asarray(getattr(hp, f.name))) for f in dataclasses.fields(hp)}


def config_dict(config: Any) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def env_steps_per_s(env_steps: float, run_s: float) -> float:
    """Throughput: env steps (summed over settings and seeds) per second of training, compile time excluded
    (``run_s`` sums the compiled chunks' execution). The progress bar and ``summary.json`` both use it."""
    return env_steps / run_s if run_s > 0 and env_steps > 0 else float("nan")


def stats(values: np.ndarray) -> dict[str, Any]:
    """Mean/median/min/max over the finite entries, and every value; NaN where nothing is finite (written
    as ``null`` to ``summary.json``, see :mod:`purejaxpo.atomic`)."""
    values = np.asarray(values, np.float64)
    finite = values[np.isfinite(values)]
    agg = (lambda fn: float(fn(finite))) if finite.size else (lambda fn: float("nan"))
    return {
        "mean": agg(np.mean), "median": agg(np.median), "min": agg(np.min), "max": agg(np.max),
        "per_seed": [float(v) for v in values],
    }


@dataclass
class Results:
    """Everything a run produced. ``metrics[name]`` is ``[G, S, U]`` (settings × seeds × updates).

    ``seed_indices[s]`` is the position of seed ``s`` in the family ``split(key(seed), num_seeds_total)``;
    ``start_update`` is the update a resumed run continued from (0 for a fresh run), so throughput counts
    only the updates this call ran.
    """

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
    seed: int = 0
    seed_indices: list[int] | None = None
    start_update: int = 0
    steps_per_update: int | None = None
    out: Path | None = None
    provenance: dict[str, Any] | None = None
    # (updates done, seconds since the call started) at the start and after every chunk: timestamps.csv
    timeline: list[tuple[int, float]] = field(default_factory=list)
    # the persistent compilation cache this call used: {"dir", "hits", "misses", "hit"} (purejaxpo.compile_cache)
    compile_cache: dict[str, Any] | None = None

    @property
    def num_updates(self) -> int:
        return next(iter(self.metrics.values())).shape[-1]

    @property
    def env_steps(self) -> np.ndarray:
        """``[U]`` env steps per seed after each update (exact integers)."""
        if self.steps_per_update:
            return (np.arange(self.num_updates, dtype=np.int64) + 1) * self.steps_per_update
        return self.metrics["env_steps"][0, 0]

    @property
    def total_env_steps(self) -> int:
        """Env steps per seed the run has taken (all updates, including those before a resume)."""
        return int(np.rint(self.env_steps[-1])) if self.num_updates else 0

    @property
    def env_steps_run(self) -> int:
        """Env steps this call ran, summed over settings and seeds (updates before a resume excluded)."""
        before = int(np.rint(self.env_steps[self.start_update - 1])) if self.start_update > 0 else 0
        return (self.total_env_steps - before) * len(self.hparams) * self.num_seeds

    @property
    def env_steps_per_s(self) -> float:
        return env_steps_per_s(self.env_steps_run, self.run_s)

    def dataframe(self) -> Any:
        """Long format: one row per (hparam, seed, update) with every metric as a column; ``seed`` is the
        seed's index in its family (``seed_indices``)."""
        import pandas as pd

        grid, seeds, updates = next(iter(self.metrics.values())).shape
        index = np.indices((grid, seeds, updates)).reshape(3, -1)
        seed_ids = np.asarray(self.seed_indices if self.seed_indices is not None else range(seeds))
        columns = {"hparam": index[0], "seed": seed_ids[index[1]], "update": index[2]}
        columns.update({name: values.reshape(-1) for name, values in self.metrics.items()})
        return pd.DataFrame(columns)

    def final_returns(self, fraction: float = 0.05) -> np.ndarray:
        """``[G, S]``: mean return of the episodes completed in the last ``fraction`` of updates (NaN when
        none completed)."""
        last = max(1, math.ceil(fraction * self.num_updates))
        returns = np.nan_to_num(self.metrics["episode_return"][..., -last:])
        counts = self.metrics["episode_count"][..., -last:]
        total = counts.sum(-1)
        return np.where(total > 0, (returns * counts).sum(-1) / np.maximum(total, 1), np.nan)

    def summary(self) -> dict[str, Any]:
        """The run's summary (``summary.json``): NaN where a value is missing (no episode finished), which
        ``summary.json`` stores as ``null`` (strict JSON).

        ``final_return``/``eval_return`` at the top level are those of setting 0 (``headline_setting``
        names it for grids); ``sweep`` has every setting's. ``env_steps_per_s`` counts the env steps this
        call ran (``env_steps_run``), not the steps a resumed run had already taken."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            final = self.final_returns()
        out: dict[str, Any] = {
            "algo": self.algo,
            "env": self.env_name,
            "num_seeds": self.num_seeds,
            "seed": self.seed,
            "total_timesteps": self.total_env_steps,
            "num_updates": self.num_updates,
            "compile_s": round(self.compile_s, 3),
            "compile_cache": self.compile_cache,
            "run_s": round(self.run_s, 3),
            "resumed_from_update": self.start_update,
            "env_steps_run": self.env_steps_run,
            "env_steps_per_s": round(self.env_steps_per_s, 1),
            "final_return": stats(final[0]),
        }
        if self.seed_indices is not None and list(self.seed_indices) != list(range(self.num_seeds)):
            out["seed_indices"] = list(self.seed_indices)
        if self.eval_returns is not None:
            out["eval_return"] = stats(self.eval_returns[0])
        if len(self.hparams) > 1:
            out["headline_setting"] = {"index": 0, "label": self.label(0)}
            out["sweep"] = [
                {
                    "label": self.label(g),
                    "hparams": hparams_dict(hp),
                    "final_return": stats(final[g]),
                    **({"eval_return": stats(self.eval_returns[g])} if self.eval_returns is not None else {}),
                }
                for g, hp in enumerate(self.hparams)
            ]
        if self.provenance is not None:
            out["provenance"] = self.provenance
        return out

    def label(self, g: int) -> str:
        return self.sweep_labels[g] if self.sweep_labels else str(g)

    def plot(self, metric: str = "episode_return", path: str | Path | None = None, ax: Any = None) -> Any:
        """Learning curves of ``metric``: mean and 95% interval over seeds, one line per setting."""
        labels = self.sweep_labels or [""] * len(self.hparams)
        title = f"{self.algo} on {self.env_name} ({self.num_seeds} seeds)"
        return plot_curves(self.env_steps, self.metrics[metric], labels, title=title, ylabel=metric.replace("_", " "), path=path, ax=ax)

    def truncated(self, updates: int) -> "Results":
        """A copy holding only the first ``updates`` updates (what an interrupted or failed run reached)."""
        return dataclasses.replace(self, metrics={k: v[..., :updates] for k, v in self.metrics.items()})
