"""Where a run came from: command line, date, git commit of a source checkout, versions of the stack.

Written into ``config.json`` (the session that started a run) and ``summary.json`` (the session that
finished it), so a result can be traced to the code and packages that produced it.
"""

from __future__ import annotations

import datetime
import importlib.metadata as md
import platform
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

# Every package the training stack imports, by distribution name.
STACK = ("purejaxpo", "jax", "jaxlib", "flax", "optax", "chex", "gymnax", "brax", "distrax", "orbax-checkpoint", "numpy")


def versions() -> dict[str, str]:
    """Installed version of every package in :data:`STACK` (``"not installed"`` when absent) and Python."""
    out = {}
    for package in STACK:
        try:
            out[package] = md.version(package)
        except md.PackageNotFoundError:
            out[package] = "not installed"
    out["python"] = platform.python_version()
    return out


def git_commit(directory: str | Path | None = None) -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` of the git checkout holding ``directory`` (default: this
    package's source), or ``None`` when it is not in a checkout (an installed wheel) or git is missing."""
    directory = Path(directory) if directory is not None else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=directory, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": sha.stdout.strip(), "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}


def command_line(argv: list[str] | None = None) -> str:
    """The command that started this process, shell-quoted (``sys.argv`` by default)."""
    argv = list(sys.argv if argv is None else argv)
    words = [shlex.quote(a) for a in argv]
    if argv and argv[0].endswith("__main__.py"):
        words[0] = "python -m purejaxpo"
    return " ".join(words)


def provenance(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line, UTC date, host, git commit (when run from a checkout) and versions of the stack."""
    return {
        "command": command_line(argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "git": git_commit(),
        "versions": versions(),
    }
