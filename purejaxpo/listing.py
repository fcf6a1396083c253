"""``purejaxpo list [ALGO]``: algorithms, their fields and presets, and environments by source.

``purejaxpo list`` prints one line per algorithm and every environment name grouped by source with its
action kind; ``purejaxpo list ALGO`` prints the algorithm's config and hyperparameter tables (field, type,
default, allowed values, one-line description) and its presets.

Descriptions come from the dataclass docstrings: a ``Fields:`` section with one ``name: description`` line
per field, searched along the class's bases (so :class:`purejaxpo.engine.RolloutBudget` and
:class:`purejaxpo.types.CheckedHParams` describe the fields every algorithm shares, and a class's own line
wins). Allowed values come from the config's ``choices`` and the shared checks of
:mod:`purejaxpo.engine.config` (activations, torsos, action bounds).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shutil
from typing import Any

_FIELD_LINE = re.compile(r"^\s+([A-Za-z_][A-Za-z0-9_]*): (.+)$")


def docstring_fields(doc: str | None) -> dict[str, str]:
    """The ``name: description`` lines that follow ``Fields:`` in ``doc`` (up to the first other line)."""
    if not doc or "Fields:" not in doc:
        return {}
    out: dict[str, str] = {}
    for line in doc.split("Fields:", 1)[1].splitlines()[1:]:
        match = _FIELD_LINE.match(line)
        if not match:
            break
        out[match.group(1)] = match.group(2).strip()
    return out


def field_help(cls: type) -> dict[str, str]:
    """One-line description of each field of ``cls``, from the ``Fields:`` sections of its docstring and its
    bases' (the class's own wins)."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        out.update(docstring_fields(klass.__dict__.get("__doc__")))
    return {f.name: out.get(f.name, "") for f in dataclasses.fields(cls)}


def allowed_values(cls: type, name: str) -> tuple[Any, ...] | None:
    """The values a field may take, when it is an enum (``None`` otherwise)."""
    from purejaxpo.engine.config import ACTION_BOUNDS, ACTIVATION_FIELDS
    from purejaxpo.networks.actor_critic import TORSOS
    from purejaxpo.networks.torsos import ACTIVATIONS

    choices = getattr(cls, "choices", {}) or {}
    if name in choices:
        return tuple(choices[name])
    if name in ACTIVATION_FIELDS:
        return tuple(sorted(ACTIVATIONS))
    if name == "torso":
        return tuple(TORSOS)
    if name == "action_bounds":
        return ACTION_BOUNDS
    return None


def type_name(cls: type, name: str) -> str:
    """The field's annotation as written in the class (``int``, ``tuple[int, ...]``, ``str | None``)."""
    kind = next(f.type for f in dataclasses.fields(cls) if f.name == name)
    return kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))


def _default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
        if isinstance(value, tuple):
            return ",".join(str(v) for v in value)
        return "None" if value is None else str(value).lower() if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) else str(value)
    return "(computed)"


def field_rows(cls: type) -> list[tuple[str, str, str, str]]:
    """``(name, type, default, description)`` per field of ``cls``; enum fields end their description with
    their allowed values."""
    descriptions = field_help(cls)
    rows = []
    for field in dataclasses.fields(cls):
        allowed = allowed_values(cls, field.name)
        text = descriptions[field.name]
        if allowed is not None:
            text += f" [{' | '.join('None' if v is None else str(v) for v in allowed)}]"
        kind = re.sub(r"Callable\[.*\]", "callable", type_name(cls, field.name))
        rows.append((field.name, kind, _default(field), text))
    return rows


def table(rows: list[tuple[str, ...]], header: tuple[str, ...], width: int | None = None) -> str:
    """Aligned columns; the last column is wrapped to ``width`` (the terminal's by default)."""
    import textwrap

    width = width or shutil.get_terminal_size((120, 24)).columns
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header) - 1)]
    lead = sum(widths) + 2 * len(widths)
    room = max(40, width - lead)
    lines = []
    for row in [header, *rows]:
        head = "".join(cell.ljust(w + 2) for cell, w in zip(row, widths))
        wrapped = textwrap.wrap(row[-1], room) or [""]
        lines.append((head + wrapped[0]).rstrip())
        lines.extend((" " * lead + more).rstrip() for more in wrapped[1:])
    return "\n".join(lines)


def algorithm_text(name: str, width: int | None = None) -> str:
    """The tables of one algorithm: config fields, hyperparameters (traced: ``--sweep``-able) and presets."""
    from purejaxpo import presets
    from purejaxpo.algorithms.registry import get_algorithm

    algorithm = get_algorithm(name)
    header = ("field", "type", "default", "description [allowed values]")
    parts = [f"{algorithm.name}: {algorithm.description}",
             f"  actions: {', '.join(algorithm.action_kinds)}",
             "",
             f"config ({algorithm.config_cls.__name__}; static: --set KEY=VALUE)",
             table(field_rows(algorithm.config_cls), header, width),
             "",
             f"hyperparameters ({algorithm.hparams_cls.__name__}; traced: --set or --sweep KEY=V1,V2)",
             table(field_rows(algorithm.hparams_cls), header, width)]
    known = presets.for_algorithm(algorithm.name)
    if known:
        parts += ["", "presets (--preset NAME; --set overrides a preset's value)"]
        rows = [(p.name, p.env, p.summary) for p in known.values()]
        parts.append(table(rows, ("preset", "env", "what"), width))
    return "\n".join(parts)


def env_kinds() -> dict[str, list[tuple[str, str]]]:
    """``{source: [(name, action kind), ...]}``: gymnax and our envs are built to read their action space;
    brax envs are continuous; the adapter suites are listed by known id without importing them."""
    from purejaxpo import adapters
    from purejaxpo.environments import list_envs, make_env
    from purejaxpo.spaces import action_kind

    out: dict[str, list[tuple[str, str]]] = {}
    suites = set(adapters.SUITES)
    for source, names in list_envs().items():
        rows = []
        for name in names:
            if source == "brax":
                kind = "continuous"
            elif source in suites:
                kind = "(optional suite: not built)"
            else:
                try:
                    env, params = make_env(name)
                    kind = action_kind(env.action_space(params))
                except Exception as err:  # an env that does not build here is listed with the reason
                    kind = f"(does not build: {type(err).__name__})"
            rows.append((name, kind))
        out[source] = rows
    return out


def overview_text(width: int | None = None) -> str:
    from purejaxpo.algorithms.registry import ALGORITHMS

    rows = [(a.name, ", ".join(a.action_kinds), a.description) for a in ALGORITHMS.values()]
    parts = ["algorithms (purejaxpo list ALGO shows its fields and presets):",
             table(rows, ("name", "actions", "what"), width), "", "environments:"]
    for source, rows in env_kinds().items():
        parts.append(f"  {source}")
        parts.append("\n".join("    " + line for line in table(rows, ("name", "actions"), width).splitlines()[1:]))
    return "\n".join(parts)


def cmd_list(args: argparse.Namespace) -> int:
    print(algorithm_text(args.algo) if args.algo else overview_text())
    return 0


def add_parser(sub: Any, parent: argparse.ArgumentParser) -> None:
    lister = sub.add_parser("list", parents=[parent],
                            help="algorithms (with ALGO: its fields, types, defaults, allowed values, presets) and environments")
    lister.add_argument("algo", nargs="?", default=None, help="an algorithm name: show its config and hyperparameter tables")
    lister.set_defaults(func=cmd_list)
