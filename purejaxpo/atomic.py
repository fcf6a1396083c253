"""Atomic file writes and strict JSON.

Every output file is written to a temporary file in the same directory, flushed to disk and renamed over
its final name (``os.replace`` is atomic on POSIX). A crash, a kill or a full disk therefore leaves either
the previous complete file or none, never a truncated one. JSON is strict (RFC 8259): NaN and ±inf become
``null``, so every reader can parse it.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np


def strict_json_value(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays as Python values, tuples as lists and non-finite floats as ``None``."""
    if isinstance(obj, dict):
        return {str(k): strict_json_value(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json_value(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return strict_json_value(obj.tolist())
    if isinstance(obj, np.generic):
        return strict_json_value(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dumps(obj: Any) -> str:
    """Strict, indented JSON text of ``obj`` (see :func:`strict_json_value`)."""
    return json.dumps(strict_json_value(obj), indent=2, allow_nan=False) + "\n"


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_with(path: str | Path, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` to write a temporary sibling of ``path``, fsync it and rename it to
    ``path``. On any error the temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")  # keeps the extension (formats)
    try:
        writer(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if err.errno is None:
            raise
        raise OSError(err.errno, err.strerror, str(path)) from err  # name the output, not the temporary file
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Atomically replace ``path`` with ``data``."""
    return write_with(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: str | Path, text: str) -> Path:
    """Atomically replace ``path`` with ``text`` (UTF-8)."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> Path:
    """Atomically replace ``path`` with strict JSON of ``obj``."""
    return write_text(path, dumps(obj))


def is_temporary(path: Path) -> bool:
    """True for a temporary file this module leaves behind only if the process died mid-write."""
    return path.name.startswith(".") and ".tmp-" in path.name
