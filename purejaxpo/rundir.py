"""A run's output directory: refuse to reuse a non-empty one, move an old run aside on request, write
every output atomically, and keep ``status.json`` saying what state the run is in.

Layout of ``DIR``::

    config.json    the run description (algorithm, env, config, hyperparameters, seeds) and provenance
    status.json    {"status": "running" | "interrupted" | "failed" | "done", "reason", "update", ...}
    checkpoints/   orbax checkpoints; the newest is the final trained state once the run is done
    metrics.csv    one row per (setting, seed, update)          (also written for interrupted/failed runs)
    timestamps.csv wall-clock seconds at every chunk end        (see :mod:`purejaxpo.timeline`)
    curves.png     return and diagnostics panels                (done runs)
    summary.json   strict JSON summary with provenance          (done runs)

All writes of a run go through :class:`RunDir`; in a run over several processes only process 0's
writes (the others hold ``RunDir(..., writer=False)``). ``status.json`` is refreshed as the run advances, so ``"running"`` with an old ``updated``
time means the process died without a chance to say so (``kill -9``, power loss).
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from purejaxpo import atomic, timeline

CONFIG = "config.json"
STATUS = "status.json"
METRICS = "metrics.csv"
CURVES = "curves.png"
SUMMARY = "summary.json"
TIMESTAMPS = timeline.TIMESTAMPS
CHECKPOINTS = "checkpoints"


class RunDirError(ValueError):
    """An output directory cannot be used as asked (it holds another run, is a file, is read-only, or its
    ``config.json`` is damaged)."""


@dataclass(frozen=True)
class Terms:
    """How the caller spells the options an error message suggests (Python keywords or CLI flags)."""

    out: str = "out"
    resume: str = "resume=True"
    overwrite: str = "overwrite=True"


API_TERMS = Terms()
CLI_TERMS = Terms(out="--out", resume="--resume DIR", overwrite="--overwrite")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_writable(path: Path, terms: Terms) -> None:
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise RunDirError(f"{terms.out} {path}: {existing} is a file, not a directory")
    try:  # a probe file, not os.access: root passes access() on read-only mounts
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".purejaxpo-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise RunDirError(f"{terms.out} {path}: {existing} is not writable ({err.strerror})") from None


def check_new(path: str | Path, *, overwrite: bool = False, terms: Terms = API_TERMS) -> None:
    """Raise :class:`RunDirError` unless a new run may write to ``path``; writes nothing.

    ``path`` may be missing or an empty directory; a non-empty one is refused unless ``overwrite`` (then
    :func:`create` moves it aside, so its parent must be writable)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"{terms.out} {path} is a file, not a directory")
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            held = ", ".join(sorted(p.name for p in path.iterdir())[:6])
            resume = terms.resume.replace("DIR", str(path))
            raise RunDirError(
                f"{terms.out} {path} already holds a run ({held}); {resume} continues it, {terms.overwrite} moves it "
                f"aside to {path.name}.old-<time>, or choose another {terms.out}"
            )
        _check_writable(path.absolute().parent, terms)
    _check_writable(path, terms)


def read_description(path: str | Path, terms: Terms = API_TERMS) -> dict[str, Any]:
    """The run description in ``path/config.json``; :class:`RunDirError` naming the file when it is
    missing, not JSON, or lacks the keys a resume needs."""
    path = Path(path)
    file = path / CONFIG
    if not path.is_dir():
        raise RunDirError(f"{path} is not a run directory (no such directory)")
    if not file.is_file():
        raise RunDirError(f"{file} does not exist: {path} is not a run directory written by purejaxpo")
    try:
        description = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunDirError(f"{file} is damaged (not readable JSON: {err})") from None
    if not isinstance(description, dict):
        raise RunDirError(f"{file} is damaged (expected a JSON object, got {type(description).__name__})")
    required = {"algo": str, "env": str, "config": dict, "hparams": list, "num_seeds": int, "seed": int}
    for key, kind in required.items():
        if not isinstance(description.get(key), kind) or isinstance(description.get(key), bool):
            found = "missing" if key not in description else f"{type(description[key]).__name__}"
            raise RunDirError(f"{file} is damaged: {key!r} should be a {kind.__name__}, found {found}")
    if not description["hparams"] or not all(isinstance(hp, dict) for hp in description["hparams"]):
        raise RunDirError(f"{file} is damaged: 'hparams' should be a non-empty list of objects")
    return description


def check_resumable(path: str | Path, terms: Terms = API_TERMS) -> dict[str, Any]:
    """The description of the run in ``path`` after checking it can be continued in place."""
    description = read_description(path, terms)
    _check_writable(Path(path), terms)
    return description


def aside_name(path: Path) -> Path:
    """A free sibling name for moving ``path`` aside: ``NAME.old-YYYYmmdd-HHMMSS[-k]``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = path.with_name(f"{path.name}.old-{stamp}")
    k = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.old-{stamp}-{k}")
        k += 1
    return candidate


class RunDir:
    """The one writer of a run's output directory (see the module docstring for the layout).

    ``writer=False`` (every process but 0 of a multi-process run) makes every method a no-op: the other
    processes write only their checkpoint shards (through orbax, not through this class)."""

    def __init__(self, path: str | Path, *, writer: bool = True):
        self.path = Path(path)
        self.started = _now()
        self.writer = writer

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    def create(self, *, overwrite: bool = False) -> Path | None:
        """Make the directory; with ``overwrite``, first rename a non-empty one aside (never deleted).
        Returns where the old run went, or ``None``."""
        if not self.writer:
            return
        moved = None
        if overwrite and self.path.is_dir() and any(self.path.iterdir()):
            moved = aside_name(self.path)
            os.rename(self.path, moved)
        self.path.mkdir(parents=True, exist_ok=True)
        return moved

    def write_config(self, description: dict[str, Any]) -> None:
        if not self.writer:
            return
        atomic.write_json(self.path / CONFIG, description)

    def write_status(self, status: str, **fields: Any) -> None:
        """``status.json``: ``status`` plus ``fields`` (``reason``, ``update``, ...), pid, host and times."""
        if not self.writer:
            return
        record = {"status": status, **fields, "pid": os.getpid(), "host": socket.gethostname(),
                  "started": self.started, "updated": _now()}
        atomic.write_json(self.path / STATUS, record)

    def write_metrics(self, results: Any) -> None:
        if not self.writer:
            return
        atomic.write_with(self.path / METRICS, lambda tmp: results.dataframe().to_csv(tmp, index=False))

    def write_timeline(self, results: Any) -> None:
        """``timestamps.csv``; a resumed run continues the rows of the run it resumed."""
        if not self.writer:
            return
        rows = results.timeline
        if results.start_update > 0:
            rows = timeline.merge(timeline.read(self.path / TIMESTAMPS), rows, results.start_update)
        atomic.write_text(self.path / TIMESTAMPS, timeline.to_csv(rows, results.steps_per_update or 0))

    def write_curves(self, results: Any) -> None:
        if not self.writer:
            return
        from purejaxpo.plotting import plot_panels

        def save(tmp: Path) -> None:
            plot_panels(results, tmp)

        atomic.write_with(self.path / CURVES, save)

    def write_summary(self, summary: dict[str, Any]) -> None:
        if not self.writer:
            return
        atomic.write_json(self.path / SUMMARY, summary)


def read_status(path: str | Path) -> dict[str, Any] | None:
    """``status.json`` of the run in ``path`` (``None`` when missing or unreadable)."""
    try:
        return json.loads((Path(path) / STATUS).read_text())
    except (OSError, json.JSONDecodeError):
        return None
