"""Wall-clock timestamps of a run: ``timestamps.csv``, one row per chunk of updates.

The runner records ``(updates done, seconds since the run started)`` when training starts and after every
chunk (compile time included: it is part of the time a user waits). They live in their own file, not in
``metrics.csv``, so ``metrics.csv`` stays a deterministic function of the run (a resumed run's is
byte-identical to an uninterrupted one's). A resumed run keeps the rows up to the update it resumed from
and continues the clock from there (the time between the two processes is not counted); when the first
process left no file (``kill -9``), the updates before the resume have no timestamp (NaN).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

import numpy as np

TIMESTAMPS = "timestamps.csv"
HEADER = ("update", "env_steps", "elapsed_s")

Rows = list[tuple[int, float]]


def read(path: str | Path) -> Rows:
    """The ``(update, elapsed_s)`` rows of a ``timestamps.csv`` (``[]`` when it is missing or unreadable)."""
    try:
        with open(path, newline="") as handle:
            return [(int(row["update"]), float(row["elapsed_s"])) for row in csv.DictReader(handle)]
    except (OSError, KeyError, ValueError, TypeError):
        return []


def merge(previous: Rows, new: Rows, start_update: int) -> Rows:
    """The rows of a run resumed at ``start_update``: ``previous`` up to it, then ``new`` shifted so the
    clock continues where ``previous`` was at ``start_update``."""
    kept = [(u, t) for u, t in previous if u <= start_update]
    offset = kept[-1][1] if kept else 0.0
    return kept + [(u, offset + t) for u, t in new if not kept or u > kept[-1][0]]


def to_csv(rows: Sequence[tuple[int, float]], steps_per_update: int) -> str:
    """CSV text: ``update, env_steps (per seed), elapsed_s``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for update, elapsed in rows:
        writer.writerow((update, update * steps_per_update, f"{elapsed:.3f}"))
    return out.getvalue()


def seconds_at_updates(rows: Sequence[tuple[int, float]], num_updates: int) -> np.ndarray:
    """``[num_updates]``: seconds since the start when update ``u`` (1-based count ``u + 1``) finished,
    linear between chunk ends; NaN outside the recorded span."""
    out = np.full(num_updates, np.nan)
    if len(rows) < 2:
        return out
    updates = np.asarray([u for u, _ in rows], np.float64)
    seconds = np.asarray([t for _, t in rows], np.float64)
    count = np.arange(1, num_updates + 1, dtype=np.float64)
    inside = (count >= updates[0]) & (count <= updates[-1])
    out[inside] = np.interp(count[inside], updates, seconds)
    return out
