"""JAX's persistent compilation cache for the CLI and the runner: compile once, then load.

:func:`enable` points JAX at a cache directory (default ``$PUREJAXPO_CACHE_DIR``, else
``$XDG_CACHE_HOME/purejaxpo/xla`` or ``~/.cache/purejaxpo/xla``) and caches every compilation worth caching, so a
second run of the same program (same algorithm, config, shapes, devices and jax version) loads its executables
from disk instead of compiling them. :class:`CacheStats` counts cache hits and misses through
``jax.monitoring`` events, so a run's summary can say whether its compile hit the cache.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import jax

_HIT = "/jax/compilation_cache/cache_hits"
_MISS = "/jax/compilation_cache/cache_misses"
_lock = threading.Lock()
_counts = {"hits": 0, "misses": 0}
_listening = False


def default_dir() -> Path:
    """``$PUREJAXPO_CACHE_DIR``, else ``$XDG_CACHE_HOME/purejaxpo/xla``, else ``~/.cache/purejaxpo/xla``."""
    if os.environ.get("PUREJAXPO_CACHE_DIR"):
        return Path(os.environ["PUREJAXPO_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "purejaxpo" / "xla"


def _listen(event: str, **kwargs) -> None:
    with _lock:
        if event == _HIT:
            _counts["hits"] += 1
        elif event == _MISS:
            _counts["misses"] += 1


def enable(directory: str | os.PathLike | None = None) -> Path:
    """Use ``directory`` (default :func:`default_dir`) as JAX's persistent compilation cache, caching every
    executable whatever its size or compile time; returns the directory. Safe to call more than once."""
    global _listening
    path = Path(directory) if directory is not None else default_dir()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    with _lock:
        if not _listening:
            jax.monitoring.register_event_listener(_listen)
            _listening = True
    return path


class CacheStats:
    """Cache hits and misses counted between construction and :meth:`snapshot` (process-wide counters)."""

    def __init__(self) -> None:
        with _lock:
            self._start = dict(_counts)

    def snapshot(self) -> dict[str, int]:
        with _lock:
            return {k: _counts[k] - self._start[k] for k in _counts}
