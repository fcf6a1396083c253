"""Small matplotlib helpers shared by the environments' ``render`` functions.

Figures are drawn on matplotlib's Agg canvas directly (``matplotlib.figure.Figure`` + ``FigureCanvasAgg``), so
rendering never touches pyplot's global state or needs a display. Host-side only: never call inside ``jit``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np


def new_figure(width: float = 6.0, height: float = 6.0) -> tuple[Any, Any]:
    """A fresh ``(figure, axes)`` pair on an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(111)


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 100) -> str:
    """Write ``fig`` to ``path`` (PNG by extension), creating parent folders; returns the path as a string."""
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    return path


def draw_grid_paths(
    value_map: np.ndarray,
    cells: np.ndarray,
    path: str | os.PathLike,
    *,
    title: str = "",
    visited: np.ndarray | None = None,
    max_paths: int = 16,
) -> str:
    """Draw a ``value_map [H, W]`` with the visited cells and the paths of ``cells`` on top; save to ``path``.

    Args:
      value_map: per-cell value ``[H, W]`` (shown with a colour bar).
      cells: visited cell indices (``row·W + col``) ``[T]`` or ``[B, T]``; at most ``max_paths`` paths are drawn.
      visited: optional bool mask ``[H·W]`` or ``[H, W]`` to outline; by default the cells of the first path.
    """
    value_map = np.asarray(value_map, np.float64)
    nrows, ncols = value_map.shape
    cells = np.atleast_2d(np.asarray(cells, np.int64))
    fig, ax = new_figure(6.0, 6.0 * max(nrows / max(ncols, 1), 0.4))
    image = ax.imshow(value_map, cmap="viridis", origin="upper")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    mask = np.zeros(nrows * ncols, bool)
    if visited is None:
        mask[cells[0]] = True
    else:
        mask = np.asarray(visited, bool).reshape(-1)
    rows, cols = np.divmod(np.flatnonzero(mask), ncols)
    ax.scatter(cols, rows, s=max(8.0, 1800.0 / max(nrows * ncols, 1) ** 0.5), marker="s",
               facecolors="none", edgecolors="white", linewidths=1.0, label="visited")
    for b, traj in enumerate(cells[:max_paths]):
        r, c = np.divmod(traj, ncols)
        ax.plot(c, r, "-", color=f"C{b % 10}", linewidth=1.2, alpha=0.9)
        ax.plot(c[:1], r[:1], "o", color="red", markersize=5)
    ax.set_xlim(-0.5, ncols - 0.5)
    ax.set_ylim(nrows - 0.5, -0.5)
    ax.set_xlabel("col")
    ax.set_ylabel("row")
    ax.set_title(title)
    return save_figure(fig, path)
