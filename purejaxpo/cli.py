"""Command line: ``purejaxpo train ALGO --env ENV ...``, ``eval DIR``, ``render DIR``, ``plot DIR...``,
``export DIR`` and ``list [ALGO]``.

``train`` writes a run directory (``--out``, default ``runs/<algo>-<env>-<timestamp>``; see
:mod:`purejaxpo.rundir`): ``config.json``, ``status.json``, ``checkpoints/`` (the final trained state),
``metrics.csv``, ``curves.png`` and ``summary.json``. A non-empty ``--out`` is refused unless ``--resume``
or ``--overwrite``. Every error is one line on stderr (``--debug`` shows the traceback); exit codes: 0 done,
1 unexpected failure, 2 bad input or a failed run, 130/143 stopped by Ctrl-C/SIGTERM (checkpoint saved), 75 another
process of a ``--distributed`` run was lost (resume from the last checkpoint).

Importing this module initialises nothing: ``train --distributed`` starts ``jax.distributed`` before anything
touches the XLA backend (:mod:`purejaxpo.distributed`), so algorithms and environments load inside the commands.

Subcommands are small ``add_<name>(subparsers)`` functions listed in :data:`SUBCOMMANDS`; each sets
``func`` to its ``cmd_<name>(args) -> exit code``. New ones (in their own modules) append to that list.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from purejaxpo import distributed
from purejaxpo.settings import (  # noqa: F401  (re-exported: the CLI's parsing API)
    UsageError,
    build_settings,
    config_from_dict,
    hparams_from_dicts,
    parse_field_value,
    split_assignments,
)
from purejaxpo.shards import add_merge, parse_shard

if TYPE_CHECKING:
    from purejaxpo.algorithms.registry import Algorithm

EXIT_FAILURE = 1  # something unexpected (a bug, the disk, the machine)
EXIT_USAGE = 2  # bad input, or a run that failed cleanly (non-finite loss, damaged checkpoints)


# ---------------------------------------------------------------------------------------------------------------
# argument types
# ---------------------------------------------------------------------------------------------------------------


def parse_count(text: str) -> int:
    """A positive integer, also written ``1e6`` or ``1_000_000``."""
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        try:
            number = float(text.replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
        if not number.is_integer():
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        value = int(number)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def parse_seeds_per_batch(text: str) -> int | str | None:
    """``--seeds-per-batch``: a positive int, ``auto`` or ``none``."""
    if text in ("auto", "none"):
        return None if text == "none" else text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive int, 'auto' or 'none', got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def parse_index_list(text: str) -> list[int]:
    """``--seed-indices 0,3,5``: non-negative integers."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected non-negative integers, got {text!r}")
    return values


def _debug_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return parent


# ---------------------------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------------------------

# Flags that define a run: --resume continues the run exactly as it was started, so these are refused.
RUN_DEFINING_FLAGS = {
    "set": "--set", "sweep": "--sweep", "preset": "--preset", "num_seeds": "--num-seeds", "seed": "--seed",
    "seed_indices": "--seed-indices", "total_timesteps": "--total-timesteps", "out": "--out", "overwrite": "--overwrite",
    "shard": "--shard",
}
DEFAULT_NUM_SEEDS = 8


@dataclass
class TrainPlan:
    """What ``train`` will run, from the flags (a new run) or from ``config.json`` (``--resume``)."""

    algorithm: Algorithm
    env: str
    config: Any
    settings: list[Any]
    labels: list[str]
    num_seeds: int
    seed: int
    seed_indices: list[int] | None
    checkpoint_every: int | None
    out: Path
    eval_episodes: int
    eval_deterministic: bool


def _plan_new(args: argparse.Namespace) -> TrainPlan:
    from purejaxpo.algorithms.registry import get_algorithm

    algorithm = get_algorithm(args.algo)
    if args.preset is not None:  # a preset's values under the user's --set; its home env unless --env
        from purejaxpo.presets import get_preset, merged_sets

        preset = get_preset(algorithm.name, args.preset)
        args.set = merged_sets(preset, args.set, args.total_timesteps)
        args.env = args.env or preset.env
    if args.env is None:
        raise UsageError("train needs --env (see `purejaxpo list`)")
    from purejaxpo.experiment import MAX_SEED

    if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
        raise UsageError(f"--seed must be an integer in [0, {MAX_SEED}] (jax keys hold 32 bits), got {args.seed}")
    if args.seed_indices is not None and max(args.seed_indices) >= (args.num_seeds or DEFAULT_NUM_SEEDS):
        raise UsageError(f"--seed-indices must be below --num-seeds ({args.num_seeds or DEFAULT_NUM_SEEDS}): "
                         f"seed_indices must be in [0, {args.num_seeds or DEFAULT_NUM_SEEDS}), got {args.seed_indices}")
    if args.eval_episodes is not None and args.eval_episodes < 0:
        raise UsageError(f"--eval-episodes must be >= 0, got {args.eval_episodes}")
    config, settings, labels = build_settings(algorithm, args.set, args.sweep, args.total_timesteps)
    out = Path(args.out or f"runs/{algorithm.name}-{args.env.replace('/', '_')}-{time.strftime('%Y%m%d-%H%M%S')}")
    return TrainPlan(
        algorithm, args.env, config, settings, labels, args.num_seeds or DEFAULT_NUM_SEEDS,
        0 if args.seed is None else args.seed, args.seed_indices, args.checkpoint_every, out,
        10 if args.eval_episodes is None else args.eval_episodes, args.eval_deterministic,
    )


def _plan_resume(args: argparse.Namespace) -> TrainPlan:
    from purejaxpo import rundir
    from purejaxpo.algorithms.registry import get_algorithm

    given = [flag for dest, flag in RUN_DEFINING_FLAGS.items() if getattr(args, dest) not in (None, [], False)]
    if given:
        raise UsageError(
            f"--resume continues the run exactly as it was started; {', '.join(given)} would change it "
            f"(drop {'it' if len(given) == 1 else 'them'}, or start a new run with another --out)"
        )
    out = Path(args.resume)
    saved = rundir.read_description(out, rundir.CLI_TERMS)
    where = str(out / rundir.CONFIG)
    if saved["algo"] != args.algo.lower():
        raise UsageError(f"--resume {out} holds a {saved['algo']} run, not {args.algo}")
    if args.env is not None and args.env != saved["env"]:
        raise UsageError(f"--resume {out} holds a run on {saved['env']}, not {args.env}")
    algorithm = get_algorithm(saved["algo"])
    config = config_from_dict(algorithm, saved["config"], where)
    settings = hparams_from_dicts(algorithm, saved["hparams"], where)
    eval_episodes = args.eval_episodes if args.eval_episodes is not None else saved.get("eval_episodes", 10)
    return TrainPlan(
        algorithm, saved["env"], config, settings, list(saved.get("sweep_labels") or []), saved["num_seeds"],
        saved["seed"], saved.get("seed_indices"), args.checkpoint_every or saved.get("checkpoint_every"), out,
        eval_episodes, args.eval_deterministic or bool(saved.get("eval_deterministic", False)),
    )


def cmd_train(args: argparse.Namespace) -> int:
    distributed.initialize_from_args(args)  # first: before anything initialises the XLA backend
    import warnings

    with warnings.catch_warnings(record=True) as caught:  # the budget note, once, as one line
        warnings.simplefilter("always", UserWarning)
        plan = _plan_resume(args) if args.resume else _plan_new(args)
    args.run_dir = plan.out  # for the resume hint after an interrupt

    from purejaxpo import experiment, rundir
    from purejaxpo.algorithms.registry import check_action_kind
    from purejaxpo.environments import make_env

    loggers = []
    if args.log:
        from purejaxpo.loggers import make_loggers

        loggers = make_loggers(args.log, plan.out)
    env, env_params = make_env(plan.env)
    check_action_kind(plan.algorithm, env, env_params)
    trainer = plan.algorithm.make_train(plan.config, env, env_params)
    for note in dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, UserWarning)):
        print(f"note: {note}", file=sys.stderr)  # after every check: an error stays one line
    results = experiment.run(
        trainer, plan.env, num_seeds=plan.num_seeds, hparams=plan.settings, seed=plan.seed,
        seed_indices=plan.seed_indices, shard=args.shard, checkpoint_every=plan.checkpoint_every, resume=bool(args.resume),
        out=plan.out, overwrite=args.overwrite, progress=not args.no_progress, eval_episodes=plan.eval_episodes,
        eval_deterministic=plan.eval_deterministic, sweep_labels=plan.labels or None,
        seeds_per_batch=args.seeds_per_batch, check_memory=not args.skip_memory_check, terms=rundir.CLI_TERMS,
        loggers=loggers, compile_cache=False if args.no_compile_cache else (args.compile_cache or True),
    )
    if distributed.is_main():
        print(format_summary(results.summary(), plan.out))
    return 0


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "n/a" if value is None or value != value else format(value, spec)  # None / NaN: nothing finished


def _stats_line(name: str, stats: dict[str, Any]) -> str:
    return f"{name}: mean {_fmt(stats['mean'])}, median {_fmt(stats['median'])}, min {_fmt(stats['min'])}, max {_fmt(stats['max'])}"


def _cache_note(cache: dict[str, Any] | None) -> str:
    if not cache:
        return ""
    return "; compile cache: " + ("hit" if cache["hit"] else f"{cache['hits']} hit(s), {cache['misses']} miss(es)")


def format_summary(summary: dict[str, Any], out: Path) -> str:
    """The printed summary: every setting of a sweep, ``n/a`` where no episode finished."""
    seeds = f"{summary['num_seeds']} seeds" + (f" (indices {summary['seed_indices']})" if "seed_indices" in summary else "")
    sweep = summary.get("sweep", [])
    settings = f"{len(sweep)} settings × " if sweep else ""
    lines = [
        f"{summary['algo']} on {summary['env']}: {settings}{seeds} × {summary['total_timesteps']:,} env steps",
        f"  compile {summary['compile_s']:.1f} s, run {summary['run_s']:.1f} s, {_fmt(summary['env_steps_per_s'], ',.0f')} env-steps/s"
        + (f" (resumed at update {summary['resumed_from_update']})" if summary.get("resumed_from_update") else "")
        + _cache_note(summary.get("compile_cache")),
    ]
    if not sweep:
        lines.append("  " + _stats_line("final return (last 5% of updates)", summary["final_return"]))
        if "eval_return" in summary:
            lines.append("  " + _stats_line("eval return", summary["eval_return"]))
    else:
        lines.append("  every setting: final return (last 5% of updates)" + (" | eval return" if "eval_return" in summary else "") + ", mean [min, max] over seeds")
        for entry in sweep:
            final = entry["final_return"]
            text = f"    [{entry['label']}] {_fmt(final['mean'])} [{_fmt(final['min'])}, {_fmt(final['max'])}]"
            if "eval_return" in entry:
                ev = entry["eval_return"]
                text += f" | {_fmt(ev['mean'])} [{_fmt(ev['min'])}, {_fmt(ev['max'])}]"
            lines.append(text)
    lines.append(f"  wrote {out}/ (config.json, status.json, checkpoints/, metrics.csv, timestamps.csv, curves.png, summary.json)")
    return "\n".join(lines)


def add_train(sub: Any) -> None:
    train = sub.add_parser("train", parents=[_debug_parent()],
                           help="train an algorithm over many seeds (and a hyperparameter sweep)")
    train.add_argument("algo", help="algorithm name (see `purejaxpo list`)")
    train.add_argument("--env", default=None, help="environment name (see `purejaxpo list`); optional with --resume or --preset")
    train.add_argument("--preset", default=None, metavar="NAME",
                       help="named settings, e.g. cpu-small (see `purejaxpo list ALGO`); --set overrides its values")
    train.add_argument("--num-seeds", type=parse_count, default=None, help=f"seeds (default {DEFAULT_NUM_SEEDS})")
    train.add_argument("--seed", type=int, default=None, help="base seed (default 0); seed i uses split(key(seed), N)[i]")
    train.add_argument("--seed-indices", type=parse_index_list, default=None, metavar="I,J",
                       help="run only these seeds of the --num-seeds family (same keys as in the full run)")
    train.add_argument("--total-timesteps", type=parse_count, default=None, help="env steps per seed (1e6 is fine)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config or hparam field")
    train.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2", help="hparam values to grid over")
    train.add_argument("--out", default=None, help="output directory (default runs/<algo>-<env>-<time>); must be new or empty")
    train.add_argument("--overwrite", action="store_true", help="move a non-empty --out aside (to OUT.old-<time>) first")
    train.add_argument("--checkpoint-every", type=parse_count, default=None, metavar="K",
                       help="checkpoint every K updates (the final state, and the state at Ctrl-C/SIGTERM, are always saved)")
    train.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR from its newest checkpoint that restores")
    train.add_argument("--eval-episodes", type=int, default=None, help="evaluation episodes per seed after training (default 10)")
    train.add_argument("--eval-deterministic", action="store_true", help="evaluate with the deterministic action")
    train.add_argument("--no-progress", action="store_true")
    train.add_argument("--log", action="append", default=[], choices=("tensorboard", "wandb"),
                       help="also log to TensorBoard (DIR/tensorboard) or wandb (DIR/wandb, offline unless WANDB_MODE); "
                            "repeatable; needs the logging extra")
    train.add_argument(
        "--seeds-per-batch", type=parse_seeds_per_batch, default="auto", metavar="K|auto|none",
        help="vmap K runs at a time and loop over the batches (auto: 64 on CPU past 64 runs; none: one wide vmap)",
    )
    train.add_argument("--skip-memory-check", action="store_true", help="do not refuse runs whose memory estimate exceeds the machine's")
    train.add_argument("--shard", type=_shard_arg, default=None, metavar="I/N",
                       help="train only slice I of N of the (setting × seed) runs, with the seeds the whole run gives "
                            "them (job arrays); combine the slices with `purejaxpo merge`")
    cache = train.add_mutually_exclusive_group()
    cache.add_argument("--compile-cache", default=None, metavar="DIR",
                       help="persistent compilation cache directory (default $PUREJAXPO_CACHE_DIR or ~/.cache/purejaxpo/xla)")
    cache.add_argument("--no-compile-cache", action="store_true", help="compile from scratch, cache nothing")
    distributed.add_arguments(train)
    train.set_defaults(func=cmd_train)


def _shard_arg(text: str) -> Any:
    try:
        return parse_shard(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


# ---------------------------------------------------------------------------------------------------------------
# eval
# ---------------------------------------------------------------------------------------------------------------


def cmd_eval(args: argparse.Namespace) -> int:
    from purejaxpo.results import stats
    from purejaxpo.saved_run import load_run

    if args.episodes is not None and args.episodes <= 0:
        raise UsageError(f"--episodes must be positive, got {args.episodes}")
    run = load_run(args.dir)
    deterministic = True if args.deterministic else None
    returns = run.evaluate(args.episodes, deterministic=deterministic, seed=args.seed)
    episodes = args.episodes or run.description.get("eval_episodes") or 10
    labels = run.sweep_labels or [str(g) for g in range(len(run.hparams))]
    report = {
        "dir": str(run.path), "algo": run.algorithm.name, "env": run.description["env"], "update": run.update,
        "done": run.done, "episodes": episodes, "deterministic": bool(deterministic or run.description.get("eval_deterministic")),
        "eval_return": [{"label": labels[g], **stats(returns[g])} for g in range(len(labels))],
    }
    if args.json:
        from purejaxpo import atomic

        print(atomic.dumps(report), end="")
        return 0
    state = "final state" if run.done else f"state at update {run.update} of {run.config.num_updates}"
    print(f"{run.algorithm.name} on {report['env']} ({state}), {episodes} episodes per seed"
          f"{', deterministic' if report['deterministic'] else ''}:")
    for entry in report["eval_return"]:
        name = f"[{entry['label']}] " if len(labels) > 1 else ""
        print(f"  {name}{_stats_line('eval return', entry)}")
    return 0


def add_eval(sub: Any) -> None:
    ev = sub.add_parser("eval", parents=[_debug_parent()], help="evaluate the trained state saved in a run directory")
    ev.add_argument("dir", help="a run directory written by `purejaxpo train`")
    ev.add_argument("--episodes", type=int, default=None, help="episodes per seed (default: the run's --eval-episodes)")
    ev.add_argument("--deterministic", action="store_true", help="deterministic actions (default: the run's setting)")
    ev.add_argument("--seed", type=int, default=None, help="evaluation keys from this seed (default: the run's, which "
                    "reproduces the evaluation in summary.json)")
    ev.add_argument("--json", action="store_true", help="print the result as JSON")
    ev.set_defaults(func=cmd_eval)


# ---------------------------------------------------------------------------------------------------------------
# list
# ---------------------------------------------------------------------------------------------------------------


def add_list(sub: Any) -> None:
    from purejaxpo import listing

    listing.add_parser(sub, _debug_parent())


def add_render(sub: Any) -> None:
    from purejaxpo import render

    render.add_parser(sub, _debug_parent())


def add_plot(sub: Any) -> None:
    from purejaxpo import compare

    compare.add_parser(sub, _debug_parent())


def add_export(sub: Any) -> None:
    from purejaxpo import export

    export.add_parser(sub, _debug_parent())


# ---------------------------------------------------------------------------------------------------------------
# the parser and main
# ---------------------------------------------------------------------------------------------------------------

SUBCOMMANDS: list[Callable[[Any], None]] = [add_train, add_eval, add_render, add_plot, add_export, add_list]
SUBCOMMANDS.append(add_merge)  # purejaxpo.shards: combine `train --shard I/N` slices


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="purejaxpo", description="Train, evaluate, render, compare, export and list "
                                     "vectorized policy-optimization runs.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def one_line(err: BaseException) -> str:
    """An exception's message on one line (multi-line messages joined with ``; ``)."""
    text = "; ".join(part.strip() for part in str(err).splitlines() if part.strip())
    return text or type(err).__name__


def _expected_errors() -> tuple[type[BaseException], ...]:
    from purejaxpo.checkpointing import CheckpointError
    from purejaxpo.experiment import NonFiniteError
    from purejaxpo.memory import InsufficientMemoryError

    return (ValueError, TypeError, CheckpointError, NonFiniteError, InsufficientMemoryError, distributed.DistributedError)


def _resume_hint(args: argparse.Namespace) -> str:
    out = getattr(args, "run_dir", None)
    if args.command != "train" or not out:
        return ""
    return f"; continue with: purejaxpo train {args.algo} --resume {out}" + (
        " --distributed (on every process)" if getattr(args, "distributed", False) else "")


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt as err:
        from purejaxpo.interrupts import RunInterrupted

        if not isinstance(err, RunInterrupted):
            print("purejaxpo: interrupted", file=sys.stderr)
            return 130
        hint = _resume_hint(args) if err.saved else ""
        print(f"{one_line(err)}{hint}", file=sys.stderr)
        return err.exit_code
    except distributed.PeerLostError as err:
        print(f"purejaxpo: error: {one_line(err)}{_resume_hint(args)}", file=sys.stderr)
        return distributed.EXIT_PEER_LOST
    except Exception as err:
        if args.debug:
            raise
        expected = isinstance(err, _expected_errors())
        suffix = "" if expected else f" ({type(err).__name__}; rerun with --debug for the traceback)"
        print(f"purejaxpo: error: {one_line(err)}{suffix}", file=sys.stderr)
        return EXIT_USAGE if expected else EXIT_FAILURE
