"""Learning curves: mean and 95% interval over seeds, one line per hyperparameter setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np


def mean_and_ci95(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over axis 0 (seeds, NaN-aware) and the half-width of a normal 95% interval of that mean."""
    mean = np.nanmean(values, axis=0)
    count = np.maximum(np.sum(np.isfinite(values), axis=0), 1)
    sem = np.nanstd(values, axis=0, ddof=0) / np.sqrt(count)
    return mean, 1.96 * sem


def forward_fill(values: np.ndarray) -> np.ndarray:
    """Fill NaN along the last axis with the last finite value (updates where no episode finished)."""
    out = np.array(values, dtype=np.float64)
    for idx in np.ndindex(out.shape[:-1]):
        row = out[idx]
        valid = np.isfinite(row)
        if valid.any():
            last = np.maximum.accumulate(np.where(valid, np.arange(row.size), 0))
            filled = row[last]
            filled[: np.argmax(valid)] = np.nan
            out[idx] = filled
    return out


def plot_curves(
    x: np.ndarray,
    values: np.ndarray,
    labels: Sequence[str],
    *,
    title: str = "",
    ylabel: str = "episode return",
    path: str | Path | None = None,
    ax: Any = None,
) -> Any:
    """``values`` ``[G, S, U]`` against ``x`` ``[U]``: one mean line with a 95% band per setting ``g``."""
    import matplotlib

    if ax is None:
        matplotlib.use("Agg") if path is not None else None
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.2))
    else:
        fig = ax.figure
    filled = forward_fill(values)
    for g, label in enumerate(labels):
        mean, ci = mean_and_ci95(filled[g])
        (line,) = ax.plot(x, mean, label=label)
        ax.fill_between(x, mean - ci, mean + ci, alpha=0.25, color=line.get_color())
    ax.set_xlabel("env steps")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(labels) > 1 or labels[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
