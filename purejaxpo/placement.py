"""Where a run's arrays live: a mesh over the devices (of one process or of all of them), host values
placed onto it, and global values brought back to the host.

Every state and metric leaf of a run is ``[G, S, ...]`` (settings × seeds); the mesh has axes
``("settings", "seeds")`` and splits the seeds first, then the settings, so ``G × S`` runs spread over
``n`` devices whenever ``n = g·s`` with ``g | G`` and ``s | S``. Hyperparameters ``[G, ...]`` follow the
settings axis; evaluation keys ``[S]`` the seeds axis.

With several processes (``jax.distributed``) two things change (DESIGN.md, "Platform pitfalls"):
``jax.device_put`` of a PRNG key array onto a sharding with other processes' devices is refused, so
:meth:`Placement.put` builds global arrays from each process's identical host copy
(``jax.make_array_from_callback``); and a global array cannot be read on the host, so
:meth:`Placement.gather` makes it fully replicated first (a collective: every process must call it).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def _divisors_descending(n: int) -> list[int]:
    return [d for d in range(n, 0, -1) if n % d == 0]


def run_mesh(devices: list[Any], grid: int, seeds: int) -> Mesh | None:
    """A ``(settings, seeds)`` mesh over ``devices`` for ``grid × seeds`` runs (``None`` for one device);
    ``ValueError`` when the runs do not split evenly."""
    n = len(devices)
    if n <= 1:
        return None
    for s in _divisors_descending(n):
        g = n // s
        if seeds % s == 0 and grid % g == 0:
            return Mesh(np.asarray(devices).reshape(g, s), ("settings", "seeds"))
    raise ValueError(
        f"num_seeds={seeds} must be a multiple of the number of devices ({n})"
        + (f", or the {grid} settings × {seeds} seeds must split into {n} equal blocks" if grid > 1 else "")
        + (f" ({jax.process_count()} processes)" if len({d.process_index for d in devices}) > 1 else "")
    )


def check_devices(devices: list[Any]) -> None:
    """In a multi-process run the devices must come from every process, the same number from each (each
    process trains its share of the seeds); ``ValueError`` otherwise."""
    count = jax.process_count()
    if count == 1:
        return
    per_process = [sum(d.process_index == p for d in devices) for p in range(count)]
    if min(per_process) == 0 or len(set(per_process)) > 1:
        raise ValueError(
            f"in a run over {count} processes the devices must include the same number from every process "
            f"(default: jax.devices()); got {per_process} device(s) per process"
        )


def _identity(tree: Any) -> Any:
    return tree


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


@dataclass
class Placement:
    """The mesh of one run (``None``: one device, ``device`` or jax's default) and how values reach it."""

    mesh: Mesh | None
    device: Any = None

    @property
    def multiprocess(self) -> bool:
        return self.mesh is not None and not all(d.process_index == jax.process_index() for d in self.mesh.devices.flat)

    def sharding(self, *axes: str | None) -> NamedSharding:
        """``NamedSharding`` with ``PartitionSpec(*axes)`` (``()``: replicated)."""
        assert self.mesh is not None
        return NamedSharding(self.mesh, PartitionSpec(*axes))

    @property
    def runs(self) -> NamedSharding | None:
        """``[G, S, ...]`` leaves (state, metrics, training keys)."""
        return None if self.mesh is None else self.sharding("settings", "seeds")

    @property
    def settings(self) -> NamedSharding | None:
        """``[G, ...]`` leaves (hyperparameters)."""
        return None if self.mesh is None else self.sharding("settings")

    @property
    def seeds(self) -> NamedSharding | None:
        """``[S, ...]`` leaves (evaluation keys)."""
        return None if self.mesh is None else self.sharding("seeds")

    def put(self, tree: Any, sharding: NamedSharding | None) -> Any:
        """Host values (identical on every process) → arrays with ``sharding`` (or on ``device``)."""
        if sharding is None:
            return tree if self.device is None else jax.device_put(tree, self.device)
        if not self.multiprocess:
            return jax.device_put(tree, sharding)

        def one(x: Any) -> Any:
            if _is_key(x):
                impl = jax.random.key_impl(x)
                data = one(jax.random.key_data(x))
                return jax.jit(lambda d: jax.random.wrap_key_data(d, impl=impl), out_shardings=sharding)(data)
            host = np.asarray(x)
            return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

        return jax.tree.map(one, tree)

    def gather(self, tree: Any) -> Any:
        """Global arrays → host values every process holds in full: numpy arrays, and PRNG keys as key
        arrays on this process's first device. One collective for the whole tree (every process must call
        it); in one process the arrays are fetched, keys stay as they are."""
        if not self.multiprocess:
            return jax.tree.map(lambda x: x if _is_key(x) else np.asarray(jax.device_get(x)), tree)
        replicated = self._replicate(tree)
        return jax.tree.map(lambda x: x.addressable_data(0) if _is_key(x) else np.asarray(x.addressable_data(0)), replicated)

    @functools.cached_property
    def _replicate(self) -> Callable[[Any], Any]:
        """One jitted identity per placement (jax reuses its compilations chunk after chunk)."""
        return jax.jit(_identity, out_shardings=self.sharding())

    def gather_local(self, value: np.ndarray) -> np.ndarray:
        """``[P, ...]``: every process's own ``value`` (same shape everywhere), stacked in process order."""
        if not self.multiprocess:
            return np.asarray(value)[None]
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(np.asarray(value), tiled=False))
