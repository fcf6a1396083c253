"""Learning curves: mean and 95% interval over seeds, one line per hyperparameter setting (or run), and the
run directory's ``curves.png`` (the return plus diagnostics panels).

Every statistic is computed over the finite entries only, with explicit counts, so updates where no
episode finished yet (NaN everywhere) give a gap in the line instead of numpy's "Mean of empty slice"
warnings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

# Metrics shown as extra panels of curves.png when the algorithm reports them (first name found wins).
DIAGNOSTICS = (("entropy",), ("approx_kl", "kl"), ("explained_variance",))


def mean_and_ci95(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``values`` ``[S, U]`` → ``(mean [U], half-width [U])`` over axis 0 (seeds), finite entries only: the
    mean and the half-width of a normal 95% interval of the mean (``1.96 · std / sqrt(n)``, 0 for one
    seed). NaN where no seed is finite; no warnings."""
    values = np.asarray(values, np.float64)
    finite = np.isfinite(values)
    count = finite.sum(axis=0)
    safe = np.where(finite, values, 0.0)
    total = safe.sum(axis=0)
    mean = np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)
    squares = np.where(finite, (safe - np.where(count > 0, mean, 0.0)) ** 2, 0.0).sum(axis=0)
    std = np.sqrt(np.divide(squares, count, out=np.zeros(total.shape), where=count > 0))
    half = np.where(count > 0, 1.96 * std / np.sqrt(np.maximum(count, 1)), np.nan)
    return mean, half


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


def _new_axes(width: float, height: float) -> tuple[Any, Any]:
    """A figure on an Agg canvas (no pyplot state, no display) and one axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(111)


def plot_curves(
    x: np.ndarray,
    values: np.ndarray,
    labels: Sequence[str],
    *,
    title: str = "",
    ylabel: str = "episode return",
    xlabel: str = "env steps",
    path: str | Path | None = None,
    ax: Any = None,
) -> Any:
    """``values`` ``[G, S, U]`` against ``x`` ``[U]``: one mean line with a 95% band per setting ``g``.
    Returns the figure (drawn on ``ax`` when given; saved to ``path`` when given)."""
    own = ax is None
    if own and path is None:  # interactive use (notebooks): a pyplot figure that displays
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.2))
    else:
        fig, ax = _new_axes(7, 4.2) if own else (ax.figure, ax)
    filled = forward_fill(values)
    for g, label in enumerate(labels):
        mean, ci = mean_and_ci95(filled[g])
        (line,) = ax.plot(x, mean, label=label)
        ax.fill_between(x, mean - ci, mean + ci, alpha=0.25, color=line.get_color())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(labels) > 1 or (labels and labels[0]):
        ax.legend(fontsize=8)
    if own:
        fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def diagnostic_panels(metrics: dict[str, np.ndarray]) -> list[str]:
    """The metrics ``curves.png`` shows: the return, then each of :data:`DIAGNOSTICS` the run reports
    with at least one finite value."""
    names = ["episode_return"]
    for choices in DIAGNOSTICS:
        for name in choices:
            if name in metrics and np.isfinite(metrics[name]).any():
                names.append(name)
                break
    return names


def plot_panels(results: Any, path: str | Path) -> Any:
    """``curves.png``: the return (wide, top) and the diagnostics (entropy, approx KL, explained variance,
    when present) below it, each as mean and 95% interval over seeds, one line per setting."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = diagnostic_panels(results.metrics)
    extra = len(names) - 1
    fig = Figure(figsize=(max(7.0, 3.6 * extra), 4.2 + (3.0 if extra else 0.0)))
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2 if extra else 1, max(extra, 1), height_ratios=[1.4, 1] if extra else None)
    labels = results.sweep_labels or [""] * len(results.hparams)
    title = f"{results.algo} on {results.env_name} ({results.num_seeds} seeds)"
    plot_curves(results.env_steps, results.metrics["episode_return"], labels, title=title, ax=fig.add_subplot(grid[0, :]))
    for k, name in enumerate(names[1:]):
        ax = fig.add_subplot(grid[1, k])
        plot_curves(results.env_steps, results.metrics[name], [""] * len(labels), ylabel=name.replace("_", " "), ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return fig
