"""Logging sinks fed by the runner on the host, between chunks of updates (never inside the compiled loop).

``experiment.run(..., loggers=[...])`` (CLI ``--log tensorboard`` / ``--log wandb``) calls each sink's
``start(run)`` once, ``log(first_update, metrics, elapsed_s)`` after every chunk (``metrics[name]`` is
``[G, S, L]``: settings × seeds × the chunk's updates) and ``close()`` at the end. A sink that raises is
reported once on stderr and dropped; training goes on.

What is logged (:func:`scalars`), with the env steps per seed as the step: every metric's mean over seeds
(``<metric>/mean``) and, for the return, every seed's own curve (``episode_return/seed_<i>``); sweeps prefix
each tag with the setting's label. NaN (no episode finished in that update) is not logged.

TensorBoard goes through tensorboardX, wandb through ``wandb`` (both in the ``logging`` extra:
``pip install "purejaxpo[logging]"``). wandb runs offline unless ``WANDB_MODE`` says otherwise (``wandb sync``
uploads an offline run later).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence

import numpy as np

PER_SEED = ("episode_return",)  # metrics whose per-seed curves are logged (all metrics get the mean)
SINKS = ("tensorboard", "wandb")


class RunLogger(Protocol):
    def start(self, run: dict[str, Any]) -> None: ...

    def log(self, first_update: int, metrics: dict[str, np.ndarray], elapsed_s: float) -> None: ...

    def close(self) -> None: ...


def scalars(run: dict[str, Any], first_update: int, metrics: dict[str, np.ndarray]) -> Iterator[tuple[int, dict[str, float]]]:
    """``(env_steps, {tag: value})`` for each update of a chunk (see the module docstring).

    ``run`` holds ``labels`` (one per setting, ``[""]`` without a sweep), ``seed_ids`` and ``steps_per_update``;
    ``metrics[name]`` is ``[G, S, L]``."""
    labels, seed_ids = run["labels"], run["seed_ids"]
    length = next(iter(metrics.values())).shape[-1]
    for i in range(length):
        values: dict[str, float] = {}
        for g, label in enumerate(labels):
            prefix = f"{label}/" if label else ""
            for name, array in metrics.items():
                column = np.asarray(array[g, :, i], np.float64)
                finite = column[np.isfinite(column)]
                if finite.size:
                    values[f"{prefix}{name}/mean"] = float(finite.mean())
                if name in PER_SEED:
                    for s, seed_id in enumerate(seed_ids):
                        if np.isfinite(column[s]):
                            values[f"{prefix}{name}/seed_{seed_id}"] = float(column[s])
        yield (first_update + i + 1) * run["steps_per_update"], values


class TensorBoardLogger:
    """Scalars to TensorBoard event files in ``logdir`` (tensorboardX)."""

    def __init__(self, logdir: str | Path):
        from tensorboardX import SummaryWriter

        self.logdir = Path(logdir)
        self._writer_cls = SummaryWriter
        self.writer: Any = None
        self.run: dict[str, Any] = {}

    def start(self, run: dict[str, Any]) -> None:
        self.run = run
        self.writer = self._writer_cls(str(self.logdir))
        self.writer.add_text("run", ", ".join(f"{k}={v}" for k, v in run.items() if k != "seed_ids"))

    def log(self, first_update: int, metrics: dict[str, np.ndarray], elapsed_s: float) -> None:
        for step, values in scalars(self.run, first_update, metrics):
            for tag, value in values.items():
                self.writer.add_scalar(tag, value, global_step=step)
        last = first_update + next(iter(metrics.values())).shape[-1]
        self.writer.add_scalar("time/elapsed_s", elapsed_s, global_step=last * self.run["steps_per_update"])
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class WandbLogger:
    """Scalars to a wandb run in ``directory`` (offline unless ``WANDB_MODE`` is set)."""

    def __init__(self, directory: str | Path, project: str = "purejaxpo", mode: str | None = None):
        import wandb

        self.wandb = wandb
        self.directory = Path(directory)
        self.project = project
        self.mode = mode or os.environ.get("WANDB_MODE", "offline")
        self.handle: Any = None
        self.run: dict[str, Any] = {}

    def start(self, run: dict[str, Any]) -> None:
        self.run = run
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{run['algo']}-{run['env']}"
        self.handle = self.wandb.init(project=self.project, dir=str(self.directory), mode=self.mode, name=name,
                                      config={k: v for k, v in run.items() if k != "seed_ids"}, reinit="finish_previous")

    def log(self, first_update: int, metrics: dict[str, np.ndarray], elapsed_s: float) -> None:
        for step, values in scalars(self.run, first_update, metrics):
            self.handle.log({**values, "time/elapsed_s": elapsed_s}, step=step)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.finish()
            self.handle = None


class LoggerGroup:
    """The runner's view of its sinks: each call goes to every sink; one that raises is reported and dropped."""

    def __init__(self, loggers: Sequence[Any]):
        self.loggers = list(loggers)

    def _each(self, method: str, *args: Any) -> None:
        for logger in list(self.loggers):
            try:
                getattr(logger, method)(*args)
            except Exception as err:  # a logging failure must not stop training
                self.loggers.remove(logger)
                print(f"purejaxpo: logger {type(logger).__name__} failed in {method} ({type(err).__name__}: {err}); "
                      f"it logs nothing more, training goes on", file=sys.stderr)

    def start(self, run: dict[str, Any]) -> None:
        self._each("start", run)

    def log(self, first_update: int, metrics: dict[str, np.ndarray], elapsed_s: float) -> None:
        self._each("log", first_update, metrics, elapsed_s)

    def close(self) -> None:
        self._each("close")


def make_loggers(names: Sequence[str], out: str | Path) -> list[Any]:
    """The sinks named on the command line (``--log``), writing under the run directory ``out``
    (``out/tensorboard``, ``out/wandb``). ``ValueError`` naming the extra when a package is missing."""
    sinks: list[Any] = []
    for name in dict.fromkeys(names):
        package = {"tensorboard": "tensorboardX", "wandb": "wandb"}.get(name)
        if package is None:
            raise ValueError(f"--log takes {' or '.join(SINKS)}, got {name!r}")
        try:
            sinks.append(TensorBoardLogger(Path(out) / "tensorboard") if name == "tensorboard" else WandbLogger(Path(out)))
        except ImportError:
            raise ValueError(f"--log {name} needs {package}: pip install \"purejaxpo[logging]\"") from None
    return sinks
