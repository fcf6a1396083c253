"""``purejaxpo plot DIR... --metric NAME [--x env_steps|wall_clock]``: runs side by side, without code.

Each run directory contributes one line per hyperparameter setting (mean over its seeds with a 95%
interval, :func:`purejaxpo.plotting.plot_curves`), labelled by the directory's name (and the setting's label
for sweeps). Only ``config.json``, ``metrics.csv`` and ``timestamps.csv`` are read: no checkpoint, no
compile. ``--x wall_clock`` puts each update at the seconds since its run started
(:mod:`purejaxpo.timeline`). For ``episode_return`` a dashed line marks a uniformly random policy's return on
each env where that is cheap to compute (:mod:`purejaxpo.baselines`; ``--no-random`` skips it).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

X_AXES = {"env_steps": "env steps (per seed)", "wall_clock": "wall-clock seconds since the run started"}


class PlotError(ValueError):
    """A run directory cannot be plotted as asked (the message names it and why)."""


@dataclass
class RunCurves:
    """One run directory's curves of one metric: ``values [G, S, U]``, ``x [U]``, one label per setting."""

    path: Path
    env: str
    labels: list[str]
    x: np.ndarray
    values: np.ndarray


def load_curves(path: str | Path, metric: str, x_axis: str = "env_steps", label: str | None = None) -> RunCurves:
    """Read ``metric`` of the run in ``path`` (``metrics.csv``) as ``[G, S, U]`` against ``x_axis``."""
    import pandas as pd

    from purejaxpo import rundir, timeline

    path = Path(path)
    description = rundir.read_description(path)
    csv = path / rundir.METRICS
    if not csv.is_file():
        raise PlotError(f"{path} has no {rundir.METRICS} (the run has not finished a chunk of updates yet)")
    frame = pd.read_csv(csv)
    if metric not in frame.columns:
        known = [c for c in frame.columns if c not in ("hparam", "seed", "update")]
        raise PlotError(f"{path} has no metric {metric!r}; it has: {', '.join(known)}")
    grid, seeds = frame["hparam"].nunique(), frame["seed"].nunique()
    updates = int(frame["update"].max()) + 1
    frame = frame.sort_values(["hparam", "seed", "update"])
    if len(frame) != grid * seeds * updates:
        raise PlotError(f"{csv} is not one row per (setting, seed, update)")
    values = frame[metric].to_numpy(np.float64).reshape(grid, seeds, updates)
    if x_axis == "env_steps":
        x = frame["env_steps"].to_numpy(np.float64).reshape(grid, seeds, updates)[0, 0]
    elif x_axis == "wall_clock":
        rows = timeline.read(path / timeline.TIMESTAMPS)
        if not rows:
            raise PlotError(f"{path} has no {timeline.TIMESTAMPS} (a run from before wall-clock timestamps): plot it with --x env_steps")
        x = timeline.seconds_at_updates(rows, updates)
    else:
        raise PlotError(f"--x takes {' or '.join(X_AXES)}, got {x_axis!r}")
    name = label or path.name
    settings = description.get("sweep_labels") or []
    labels = [f"{name} [{s}]" for s in settings] if len(settings) == grid and grid > 1 else [name] * grid
    if grid > 1 and not settings:
        labels = [f"{name} [{g}]" for g in range(grid)]
    return RunCurves(path, description["env"], labels, x, values)


def plot_runs(curves: Sequence[RunCurves], metric: str, x_axis: str, path: str | Path, *,
              references: dict[str, float] | None = None, title: str | None = None) -> Any:
    """Every run's lines on one axes (plus a dashed line per ``references[env]``); saves to ``path``."""
    from purejaxpo.plotting import _new_axes, plot_curves

    fig, ax = _new_axes(8, 4.8)
    for run in curves:
        plot_curves(run.x, run.values, run.labels, ax=ax, ylabel=metric.replace("_", " "), xlabel=X_AXES[x_axis])
    for k, (env, value) in enumerate((references or {}).items()):
        ax.axhline(value, linestyle="--", linewidth=1.2, color="0.35" if k == 0 else f"C{(k + len(curves)) % 10}",
                   label=f"random policy ({env})")
    envs = sorted({run.env for run in curves})
    ax.set_title(title or f"{metric.replace('_', ' ')} on {', '.join(envs)} (mean and 95% interval over seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return fig


def cmd_plot(args: argparse.Namespace) -> int:
    from purejaxpo import atomic

    labels = [s.strip() for s in args.labels.split(",")] if args.labels else [None] * len(args.dirs)
    if len(labels) != len(args.dirs):
        raise PlotError(f"--labels has {len(labels)} names for {len(args.dirs)} run directories")
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise PlotError(f"--out {out}: write a .png, .pdf or .svg")
    curves = [load_curves(d, args.metric, args.x, label) for d, label in zip(args.dirs, labels)]
    references: dict[str, float] = {}
    skipped: list[str] = []
    if args.metric == "episode_return" and not args.no_random:
        from purejaxpo.baselines import is_cheap, random_return

        for env in dict.fromkeys(run.env for run in curves):
            if is_cheap(env):
                references[env] = random_return(env)["mean"]
            else:
                skipped.append(env)
    atomic.write_with(out, lambda tmp: plot_runs(curves, args.metric, args.x, tmp, references=references, title=args.title))
    lines = sum(len(run.labels) for run in curves)
    note = f"; no random-policy line for {', '.join(skipped)} (not cheap to compute)" if skipped else ""
    print(f"wrote {out}: {args.metric} of {lines} line(s) from {len(curves)} run(s) against {args.x}"
          + (f", random policy {', '.join(f'{e} {v:.1f}' for e, v in references.items())}" if references else "") + note)
    return 0


def add_parser(sub: Any, parent: argparse.ArgumentParser) -> None:
    plot = sub.add_parser("plot", parents=[parent], help="overlay runs: mean and 95%% interval over seeds of one metric")
    plot.add_argument("dirs", nargs="+", metavar="DIR", help="run directories written by `purejaxpo train`")
    plot.add_argument("--metric", default="episode_return", help="a metrics.csv column (default episode_return)")
    plot.add_argument("--x", default="env_steps", choices=tuple(X_AXES), help="x axis (default env_steps)")
    plot.add_argument("--out", default="plot.png", help="output image, .png/.pdf/.svg (default plot.png)")
    plot.add_argument("--labels", default=None, metavar="A,B", help="legend names, one per DIR (default: the directory names)")
    plot.add_argument("--title", default=None)
    plot.add_argument("--no-random", action="store_true", help="no random-policy reference line")
    plot.set_defaults(func=cmd_plot)
