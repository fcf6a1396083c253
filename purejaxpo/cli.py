"""Command line: ``purejaxpo train ALGO --env ENV ...`` and ``purejaxpo list``.

``train`` writes ``config.json``, ``metrics.csv``, ``curves.png`` and ``summary.json`` (and
``checkpoints/`` when asked) to ``--out`` (default ``runs/<algo>-<env>-<timestamp>``).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import time
import typing
from pathlib import Path
from typing import Any, Sequence

from purejaxpo.algorithms.registry import ALGORITHMS, Algorithm, check_action_kind, get_algorithm

_BOOL_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


class UsageError(ValueError):
    """A command-line value is wrong; the message says which and what is allowed."""


def _parse_scalar(kind: str, text: str, name: str) -> Any:
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            return _BOOL_WORDS[text.lower()]
        if kind == "str":
            return text
    except (ValueError, KeyError):
        raise UsageError(f"{name} takes a {kind}, got {text!r}") from None
    raise UsageError(f"{name} has an unsupported type {kind}")


def parse_field_value(cls: type, name: str, text: str) -> Any:
    """Parse ``text`` as the value of dataclass field ``name`` of ``cls``, checking its declared type."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name not in fields:
        raise UsageError(f"unknown field {name!r} for {cls.__name__}; valid: {', '.join(fields)}")
    annotation = str(typing.get_type_hints(sys.modules[cls.__module__].__dict__[cls.__name__]).get(name, fields[name].type))
    annotation = annotation.replace("typing.", "").replace("<class '", "").replace("'>", "")
    optional = "None" in annotation
    if optional and text.lower() in ("none", "null"):
        return None
    base = annotation.replace("| None", "").replace("Optional[", "").rstrip("]").strip() if optional else annotation
    if base.startswith("tuple["):
        inner = base[len("tuple["):].split(",")[0].strip()
        return tuple(_parse_scalar(inner, part.strip(), name) for part in text.split(",") if part.strip())
    return _parse_scalar(base, text, name)


def split_assignments(items: Sequence[str], what: str) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        if "=" not in item:
            raise UsageError(f"{what} expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        pairs.append((key.strip(), value.strip()))
    return pairs


def build_settings(algorithm: Algorithm, sets: Sequence[str], sweeps: Sequence[str], total_timesteps: int | None):
    """``(config, [hparams...], labels)`` from ``--set``/``--sweep``/``--total-timesteps``."""
    config_fields = {f.name for f in dataclasses.fields(algorithm.config_cls)}
    hparam_fields = {f.name for f in dataclasses.fields(algorithm.hparams_cls)}
    config_kwargs: dict[str, Any] = {}
    hparam_kwargs: dict[str, Any] = {}
    for key, value in split_assignments(sets, "--set"):
        if key in config_fields:
            config_kwargs[key] = parse_field_value(algorithm.config_cls, key, value)
        elif key in hparam_fields:
            hparam_kwargs[key] = parse_field_value(algorithm.hparams_cls, key, value)
        else:
            raise UsageError(
                f"unknown key {key!r} for {algorithm.name}; config fields: {', '.join(sorted(config_fields))}; "
                f"hparam fields: {', '.join(sorted(hparam_fields))}"
            )
    if total_timesteps is not None:
        config_kwargs["total_timesteps"] = total_timesteps
    sweep_axes = []
    for key, values in split_assignments(sweeps, "--sweep"):
        if key not in hparam_fields:
            raise UsageError(
                f"--sweep takes hyperparameters (traced, vmapped): {', '.join(sorted(hparam_fields))}; {key!r} is not one"
                + (" (config fields change shapes and cannot be swept in one compiled call)" if key in config_fields else "")
            )
        parsed = [parse_field_value(algorithm.hparams_cls, key, v) for v in values.split(",") if v.strip()]
        if not parsed:
            raise UsageError(f"--sweep {key}= needs at least one value")
        sweep_axes.append((key, parsed))
    config = algorithm.config_cls(**config_kwargs)
    if not sweep_axes:
        return config, [algorithm.hparams_cls(**hparam_kwargs)], []
    names = [k for k, _ in sweep_axes]
    settings, labels = [], []
    for combo in itertools.product(*[values for _, values in sweep_axes]):
        settings.append(algorithm.hparams_cls(**{**hparam_kwargs, **dict(zip(names, combo))}))
        labels.append(", ".join(f"{k}={v:g}" for k, v in zip(names, combo)))
    return config, settings, labels


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for package in ("purejaxpo", "jax", "jaxlib", "flax", "optax", "gymnax"):
        try:
            out[package] = md.version(package)
        except md.PackageNotFoundError:
            out[package] = "not installed"
    return out


def cmd_train(args: argparse.Namespace) -> int:
    import jax

    from purejaxpo import experiment
    from purejaxpo.environments import make_env

    if args.resume:
        out = Path(args.resume)
        saved_path = out / "config.json"
        if not saved_path.is_file():
            raise UsageError(f"--resume {out}: no config.json there (is it a `purejaxpo train` output directory?)")
        saved = json.loads(saved_path.read_text())
        if (saved["algo"], saved["env"]) != (args.algo.lower(), args.env):
            raise UsageError(f"--resume {out} holds a {saved['algo']} run on {saved['env']}, not {args.algo} on {args.env}")
        algorithm = get_algorithm(saved["algo"])
        config = algorithm.config_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved["config"].items()})
        settings = [algorithm.hparams_cls(**hp) for hp in saved["hparams"]]
        labels, num_seeds, seed = saved.get("sweep_labels", []), saved["num_seeds"], saved["seed"]
        checkpoint_every = args.checkpoint_every or saved.get("checkpoint_every")
    else:
        algorithm = get_algorithm(args.algo)
        if args.num_seeds <= 0:
            raise UsageError(f"--num-seeds must be positive, got {args.num_seeds}")
        if args.total_timesteps is not None and args.total_timesteps <= 0:
            raise UsageError(f"--total-timesteps must be positive, got {args.total_timesteps}")
        config, settings, labels = build_settings(algorithm, args.set, args.sweep, args.total_timesteps)
        num_seeds, seed, checkpoint_every = args.num_seeds, args.seed, args.checkpoint_every
        out = Path(args.out or f"runs/{algorithm.name}-{args.env.replace('/', '_')}-{time.strftime('%Y%m%d-%H%M%S')}")
    if checkpoint_every is not None and checkpoint_every <= 0:
        raise UsageError(f"--checkpoint-every must be positive, got {checkpoint_every}")
    if args.eval_episodes < 0:
        raise UsageError(f"--eval-episodes must be >= 0, got {args.eval_episodes}")
    env, env_params = make_env(args.env)
    check_action_kind(algorithm, env, env_params)
    trainer = algorithm.make_train(config, env, env_params)

    out.mkdir(parents=True, exist_ok=True)
    description = {
        "algo": algorithm.name,
        "env": args.env,
        "config": experiment.config_dict(config),
        "hparams": [experiment.hparams_dict(hp) for hp in settings],
        "sweep_labels": labels,
        "num_seeds": num_seeds,
        "seed": seed,
        "checkpoint_every": checkpoint_every,
        "versions": _versions(),
        "device_kind": jax.devices()[0].device_kind,
        "num_devices": jax.device_count(),
    }
    if not args.resume:
        (out / "config.json").write_text(json.dumps(description, indent=2))
    checkpoint_dir = out / "checkpoints" if (checkpoint_every or args.resume) else None
    results = experiment.run(
        trainer, args.env, num_seeds=num_seeds, hparams=settings, seed=seed,
        checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every, resume=bool(args.resume),
        progress=not args.no_progress, eval_episodes=args.eval_episodes, sweep_labels=labels or None,
        seeds_per_batch=args.seeds_per_batch,
    )
    results.dataframe().to_csv(out / "metrics.csv", index=False)
    results.plot(path=out / "curves.png")
    summary = results.summary()
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(format_summary(summary, out))
    return 0


def format_summary(summary: dict[str, Any], out: Path) -> str:
    final = summary["final_return"]
    lines = [
        f"{summary['algo']} on {summary['env']}: {summary['num_seeds']} seeds × {summary['total_timesteps']:,} env steps",
        f"  compile {summary['compile_s']:.1f} s, run {summary['run_s']:.1f} s, {summary['env_steps_per_s']:,.0f} env-steps/s",
        f"  final return (last 5% of updates): mean {final['mean']:.1f}, median {final['median']:.1f}, "
        f"min {final['min']:.1f}, max {final['max']:.1f}",
    ]
    if "eval_return" in summary:
        ev = summary["eval_return"]
        lines.append(f"  eval return: mean {ev['mean']:.1f}, min {ev['min']:.1f}, max {ev['max']:.1f}")
    for entry in summary.get("sweep", []):
        lines.append(f"  sweep [{entry['label']}]: final return mean {entry['final_return']['mean']:.1f}")
    lines.append(f"  wrote {out}/ (config.json, metrics.csv, curves.png, summary.json)")
    return "\n".join(lines)


def cmd_list(args: argparse.Namespace) -> int:
    from purejaxpo.environments import list_envs

    print("algorithms:")
    for algorithm in ALGORITHMS.values():
        print(f"  {algorithm.name}: {algorithm.description}")
        for label, cls in (("config", algorithm.config_cls), ("hparams", algorithm.hparams_cls)):
            fields = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(cls))
            print(f"    {label}: {fields}")
    print("environments:")
    for source, names in list_envs().items():
        print(f"  {source}: {', '.join(names) if names else '(none)'}")
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="purejaxpo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train an algorithm over many seeds (and a hyperparameter sweep)")
    train.add_argument("algo", help="algorithm name (see `purejaxpo list`)")
    train.add_argument("--env", required=True, help="environment name (see `purejaxpo list`)")
    train.add_argument("--num-seeds", type=int, default=8)
    train.add_argument("--seed", type=int, default=0, help="base seed; seed i uses split(key(seed), N)[i]")
    train.add_argument("--total-timesteps", type=int, default=None)
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config or hparam field")
    train.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2", help="hparam values to grid over")
    train.add_argument("--out", default=None, help="output directory (default runs/<algo>-<env>-<time>)")
    train.add_argument("--checkpoint-every", type=int, default=None, metavar="K", help="checkpoint every K updates")
    train.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR from its last checkpoint")
    train.add_argument("--eval-episodes", type=int, default=10)
    train.add_argument("--no-progress", action="store_true")
    train.add_argument(
        "--seeds-per-batch", type=parse_seeds_per_batch, default="auto", metavar="K|auto|none",
        help="vmap K runs at a time and loop over the batches (auto: 64 on CPU past 64 runs; none: one wide vmap)",
    )
    train.set_defaults(func=cmd_train)
    lister = sub.add_parser("list", help="algorithms with their fields and defaults, and environment names")
    lister.set_defaults(func=cmd_list)
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, ValueError, TypeError) as err:
        print(f"purejaxpo: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        from purejaxpo.checkpointing import CheckpointError
        from purejaxpo.experiment import NonFiniteError

        if isinstance(err, (CheckpointError, NonFiniteError)):
            print(f"purejaxpo: error: {err}", file=sys.stderr)
            return 2
        raise
