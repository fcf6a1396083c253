"""Command-line values → a Config and a list of HParams: ``--set KEY=VALUE`` reaches every field (types
checked against the dataclass), ``--sweep KEY=V1,V2`` grids hyperparameters. Every key appears once, so a
label always names the values that actually run."""

from __future__ import annotations

import dataclasses
import itertools
import sys
import typing
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:  # no run-time import: the CLI parses flags before anything initialises the XLA backend
    from purejaxpo.algorithms.registry import Algorithm

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
    """``["k=v", ...]`` → ``[(k, v), ...]``; a repeated key is an error (the last would silently win)."""
    pairs = []
    for item in items:
        if "=" not in item:
            raise UsageError(f"{what} expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        pairs.append((key.strip(), value.strip()))
    keys = [k for k, _ in pairs]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise UsageError(f"{what} names {', '.join(repeated)} more than once; give each key once"
                         + (" (list several values in one --sweep KEY=V1,V2)" if what == "--sweep" else ""))
    return pairs


def _label(names: Sequence[str], combo: Sequence[Any], fmt: str) -> str:
    return ", ".join(f"{k}={fmt.format(v)}" for k, v in zip(names, combo))


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
        if "total_timesteps" in config_kwargs:
            raise UsageError("total_timesteps is given by both --total-timesteps and --set; give it once")
        config_kwargs["total_timesteps"] = total_timesteps
    sweep_axes = []
    for key, values in split_assignments(sweeps, "--sweep"):
        if key not in hparam_fields:
            raise UsageError(
                f"--sweep takes hyperparameters (traced, vmapped): {', '.join(sorted(hparam_fields))}; {key!r} is not one"
                + (" (config fields change shapes and cannot be swept in one compiled call)" if key in config_fields else "")
            )
        if key in hparam_kwargs:
            raise UsageError(f"{key} is given by both --set and --sweep; give it once")
        parsed = [parse_field_value(algorithm.hparams_cls, key, v) for v in values.split(",") if v.strip()]
        if not parsed:
            raise UsageError(f"--sweep {key}= needs at least one value")
        if len(set(parsed)) != len(parsed):
            raise UsageError(f"--sweep {key}={values} repeats a value; give each value once")
        sweep_axes.append((key, parsed))
    config = algorithm.config_cls(**config_kwargs)
    if not sweep_axes:
        return config, [algorithm.hparams_cls(**hparam_kwargs)], []
    names = [k for k, _ in sweep_axes]
    combos = list(itertools.product(*[values for _, values in sweep_axes]))
    settings = [algorithm.hparams_cls(**{**hparam_kwargs, **dict(zip(names, combo))}) for combo in combos]
    labels = [_label(names, combo, "{:g}") for combo in combos]
    if len(set(labels)) != len(labels):  # values that differ beyond 6 significant digits
        labels = [_label(names, combo, "{!r}") for combo in combos]
    return config, settings, labels


def config_from_dict(algorithm: Algorithm, fields: dict[str, Any], where: str) -> Any:
    """``algorithm.config_cls(**fields)`` from JSON (lists back to tuples); ``UsageError`` naming ``where``."""
    known = {f.name for f in dataclasses.fields(algorithm.config_cls)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise UsageError(f"{where} is damaged: unknown {algorithm.config_cls.__name__} field(s) {', '.join(unknown)}")
    try:
        return algorithm.config_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
    except (TypeError, ValueError) as err:
        raise UsageError(f"{where} is damaged: {err}") from None


def hparams_from_dicts(algorithm: Algorithm, entries: list[dict[str, Any]], where: str) -> list[Any]:
    """One ``algorithm.hparams_cls`` per JSON object; ``UsageError`` naming ``where``."""
    known = {f.name for f in dataclasses.fields(algorithm.hparams_cls)}
    out = []
    for entry in entries:
        unknown = sorted(set(entry) - known)
        if unknown:
            raise UsageError(f"{where} is damaged: unknown {algorithm.hparams_cls.__name__} field(s) {', '.join(unknown)}")
        try:
            out.append(algorithm.hparams_cls(**entry))
        except (TypeError, ValueError) as err:
            raise UsageError(f"{where} is damaged: {err}") from None
    return out
