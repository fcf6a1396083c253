"""Independent-process mode (job arrays): shard ``i`` of ``N`` trains one slice of a run's (setting × seed)
runs with exactly the keys the whole run would give them, and :func:`merge` combines the slices' run
directories into the outputs of the whole run.

A slice is a block of settings × a block of seeds (the runner trains rectangles). ``N = a·b`` is split as
``b`` seed blocks (as many as the seeds allow, preferring more) × ``a`` setting blocks; blocks are
contiguous and differ in size by at most one. Seed ``i`` keeps its keys in any slice because the runner's
keys for seed ``i`` do not depend on which seeds run (:mod:`purejaxpo.experiment`, ``seed_indices``).

Each slice is an ordinary run directory whose ``config.json`` records ``"shard": {"index", "count",
"settings", "num_settings", "seed_indices", "sweep_labels"}``. ``purejaxpo merge DIR... --out MERGED``
checks that the slices belong to one run and cover it exactly once, then writes ``metrics.csv``,
``curves.png``, ``summary.json`` (timings summed over the slices), ``config.json`` and ``status.json``
to ``MERGED``; the trained states stay in the slices' ``checkpoints/``.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence


@dataclass(frozen=True)
class Shard:
    """Slice ``index`` of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(value: str | tuple[int, int] | Shard) -> Shard:
    """``"i/N"`` or ``(i, N)`` → :class:`Shard`; ``ValueError`` unless ``0 <= i < N``."""
    if isinstance(value, Shard):
        index, count = value.index, value.count
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", value)
        if not match:
            raise ValueError(f"shard must be I/N (e.g. 0/4), got {value!r}")
        index, count = int(match.group(1)), int(match.group(2))
    elif isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        index, count = value
    else:
        raise ValueError(f"shard must be 'I/N' or a pair (I, N), got {value!r}")
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard I/N needs N >= 1 and 0 <= I < N, got {index}/{count}")
    return Shard(index, count)


def _block(k: int, items: int, blocks: int) -> list[int]:
    return list(range(k * items // blocks, (k + 1) * items // blocks))


def job_slice(num_settings: int, num_seeds: int, shard: Shard) -> tuple[list[int], list[int]]:
    """``(setting indices, seed indices)`` of ``shard`` (see the module docstring); ``ValueError`` when the
    ``num_settings × num_seeds`` runs cannot give ``shard.count`` non-empty slices."""
    n = shard.count
    for seed_blocks in range(min(n, num_seeds), 0, -1):
        if n % seed_blocks == 0 and n // seed_blocks <= num_settings:
            setting_blocks = n // seed_blocks
            g, s = divmod(shard.index, seed_blocks)
            return _block(g, num_settings, setting_blocks), _block(s, num_seeds, seed_blocks)
    raise ValueError(
        f"{num_settings} setting(s) × {num_seeds} seeds cannot be split into {n} slices of whole setting and seed "
        f"blocks: use at most {num_seeds} shards, or a count that is (a divisor of {num_seeds}) × (at most {num_settings})"
    )


def shard_record(shard: Shard, settings: list[int], num_settings: int, seeds: list[int], labels: list[str]) -> dict[str, Any]:
    """The ``"shard"`` entry of a slice's ``config.json``."""
    return {"index": shard.index, "count": shard.count, "settings": settings, "num_settings": num_settings,
            "seed_indices": seeds, "sweep_labels": labels}


# ---------------------------------------------------------------------------------------------------------------
# merge
# ---------------------------------------------------------------------------------------------------------------

# keys of config.json that every slice of one run shares
_SAME = ("algo", "env", "config", "num_seeds", "seed", "eval_episodes", "eval_deterministic", "eval_max_steps")


class MergeError(ValueError):
    """The directories are not the complete, finished slices of one run."""


def _read_slice(path: Path) -> dict[str, Any]:
    from purejaxpo import rundir

    description = rundir.read_description(path)
    shard = description.get("shard")
    if not isinstance(shard, dict):
        raise MergeError(f"{path} is not a slice of a sharded run (its config.json has no 'shard'; train it with --shard I/N)")
    status = rundir.read_status(path) or {}
    if status.get("status") != "done":
        raise MergeError(f"{path} (shard {shard['index']}/{shard['count']}) is not finished (status "
                         f"{status.get('status', 'missing')!r}): resume it with `purejaxpo train {description['algo']} --resume {path}`")
    summary_file = path / rundir.SUMMARY
    try:
        summary = json.loads(summary_file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise MergeError(f"{summary_file} is missing or damaged ({err})") from None
    return {"path": path, "description": description, "shard": shard, "summary": summary}


def _eval_of(summary: dict[str, Any], local_setting: int) -> list[float] | None:
    if "eval_return" not in summary:
        return None
    if "sweep" in summary:
        return summary["sweep"][local_setting]["eval_return"]["per_seed"]
    return summary["eval_return"]["per_seed"]


def merge(dirs: Sequence[str | Path], out: str | Path, *, overwrite: bool = False) -> Any:
    """Combine the slice directories ``dirs`` into ``out`` (see the module docstring); returns the whole
    run's :class:`purejaxpo.results.Results` (no state). :class:`MergeError` names what is missing or
    inconsistent, before anything is written."""
    import numpy as np
    import pandas as pd

    from purejaxpo import rundir
    from purejaxpo.algorithms.registry import get_algorithm
    from purejaxpo.provenance import provenance
    from purejaxpo.results import Results
    from purejaxpo.settings import config_from_dict, hparams_from_dicts

    if not dirs:
        raise MergeError("merge needs the slices' run directories")
    slices = [_read_slice(Path(d)) for d in dirs]
    first = slices[0]
    for other in slices[1:]:
        for key in _SAME:
            if other["description"].get(key) != first["description"].get(key):
                raise MergeError(f"{other['path']} and {first['path']} are slices of different runs ({key} differs)")
    count, num_settings = first["shard"]["count"], first["shard"]["num_settings"]
    seen = {}
    for piece in slices:
        shard = piece["shard"]
        if shard["count"] != count or shard["num_settings"] != num_settings:
            raise MergeError(f"{piece['path']} is shard {shard['index']}/{shard['count']} of {shard['num_settings']} "
                             f"settings, {first['path']} of {count} shards of {num_settings} settings")
        if shard["index"] in seen:
            raise MergeError(f"shard {shard['index']}/{count} is given twice: {seen[shard['index']]} and {piece['path']}")
        seen[shard["index"]] = piece["path"]
    missing = sorted(set(range(count)) - set(seen))
    if missing:
        raise MergeError(f"missing shard(s) {', '.join(f'{i}/{count}' for i in missing)}: pass every slice's directory")

    description = first["description"]
    algorithm = get_algorithm(description["algo"])
    config = config_from_dict(algorithm, description["config"], str(first["path"] / rundir.CONFIG))
    num_seeds, num_updates = description["num_seeds"], config.num_updates
    hparams: list[Any] = [None] * num_settings
    labels: list[str] = [""] * num_settings
    covered = np.zeros((num_settings, num_seeds), bool)
    metrics: dict[str, np.ndarray] = {}
    eval_returns = np.full((num_settings, num_seeds), np.nan) if description.get("eval_episodes") else None
    compile_s = run_s = 0.0
    for piece in slices:
        shard, path = piece["shard"], piece["path"]
        settings, seeds = shard["settings"], shard["seed_indices"]
        for local, g in enumerate(settings):
            entry = hparams_from_dicts(algorithm, [piece["description"]["hparams"][local]], str(path / rundir.CONFIG))[0]
            if hparams[g] is not None and hparams[g] != entry:
                raise MergeError(f"setting {g} differs between the slices ({path})")
            hparams[g] = entry
            labels[g] = shard["sweep_labels"][local] if shard["sweep_labels"] else ""
        frame = pd.read_csv(path / rundir.METRICS)
        names = [c for c in frame.columns if c not in ("hparam", "seed", "update")]
        if len(frame) != len(settings) * len(seeds) * num_updates:
            raise MergeError(f"{path / rundir.METRICS} has {len(frame)} rows, expected {len(settings) * len(seeds) * num_updates}")
        g_of = np.asarray(settings)[frame["hparam"].to_numpy()]
        s_of, u_of = frame["seed"].to_numpy(), frame["update"].to_numpy()
        for name in names:
            metrics.setdefault(name, np.full((num_settings, num_seeds, num_updates), np.nan, np.float32))
            metrics[name][g_of, s_of, u_of] = frame[name].to_numpy(np.float32)
        for (g, s) in ((g, s) for g in settings for s in seeds):
            if covered[g, s]:
                raise MergeError(f"setting {g}, seed {s} is in more than one slice ({path})")
            covered[g, s] = True
        if eval_returns is not None:
            for local, g in enumerate(settings):
                eval_returns[g, seeds] = _eval_of(piece["summary"], local)
        compile_s += piece["summary"].get("compile_s", 0.0)
        run_s += piece["summary"].get("run_s", 0.0)
    if not covered.all():
        g, s = np.argwhere(~covered)[0]
        raise MergeError(f"no slice trained setting {g}, seed {s}")

    sweep_labels = labels if num_settings > 1 else []
    results = Results(
        algo=algorithm.name, env_name=description["env"], config=config, hparams=hparams, num_seeds=num_seeds,
        metrics=metrics, state=None, compile_s=compile_s, run_s=run_s, eval_returns=eval_returns,
        sweep_labels=sweep_labels, seed=description["seed"], steps_per_update=config.batch_size,
    )
    rundir.check_new(out, overwrite=overwrite, terms=rundir.CLI_TERMS)
    target = rundir.RunDir(out)
    target.create(overwrite=overwrite)
    whole = {k: v for k, v in description.items() if k not in ("shard", "seed_indices", "hparams", "sweep_labels", "provenance")}
    from purejaxpo.results import hparams_dict

    target.write_config({**whole, "hparams": [hparams_dict(h) for h in hparams], "seed_indices": None,
                         "sweep_labels": sweep_labels, "merged_from": [str(p["path"]) for p in slices], "provenance": provenance()})
    results.out, results.provenance = target.path, provenance()
    target.write_metrics(results)
    target.write_curves(results)
    target.write_summary(results.summary())
    target.write_status("done", update=num_updates, num_updates=num_updates)
    return results


def cmd_merge(args: argparse.Namespace) -> int:
    from purejaxpo.cli import format_summary

    results = merge(args.dirs, args.out, overwrite=args.overwrite)
    lines = format_summary(results.summary(), Path(args.out)).splitlines()[:-1]
    lines.append(f"  wrote {args.out}/ (config.json, status.json, metrics.csv, curves.png, summary.json) from {len(args.dirs)} "
                 f"slices; the trained states stay in each slice's checkpoints/")
    print("\n".join(lines))
    return 0


def add_merge(sub: Any) -> None:
    """``purejaxpo merge DIR... --out MERGED``."""
    from purejaxpo.cli import _debug_parent

    merger = sub.add_parser("merge", parents=[_debug_parent()],
                            help="combine the run directories of `train --shard I/N` slices into the whole run's outputs")
    merger.add_argument("dirs", nargs="+", metavar="DIR", help="every slice's run directory (shards 0/N .. N-1/N)")
    merger.add_argument("--out", required=True, help="directory for the merged outputs (must be new or empty)")
    merger.add_argument("--overwrite", action="store_true", help="move a non-empty --out aside (to OUT.old-<time>) first")
    merger.set_defaults(func=cmd_merge)
