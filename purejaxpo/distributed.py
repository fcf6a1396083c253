"""Runs that span processes (one per host or GPU): the front door to ``jax.distributed``, and what the
runner needs once a run spans processes — agreement on errors, a watch for lost peers, an orderly exit.

    import purejaxpo.distributed
    purejaxpo.distributed.initialize()      # first: before anything initialises the XLA backend
    from purejaxpo import experiment         # then as usual; experiment.run spans every process

:func:`initialize` takes the coordinator address, process count and process id from its arguments, from
``PUREJAXPO_COORDINATOR`` / ``PUREJAXPO_NUM_PROCESSES`` / ``PUREJAXPO_PROCESS_ID``, or from SLURM / Open MPI
(jax's own detection). It must run before the XLA backend starts (DESIGN.md, "Platform pitfalls": gymnax
builds arrays as it is imported), which is why ``import purejaxpo`` imports nothing heavy.

Faults (the choices :mod:`purejaxpo.experiment` builds on):

- jax's coordination service runs with ``jax_enable_recoverability``, so a lost peer does not abort the
  others from inside XLA: the survivors end themselves with a message naming the last good checkpoint,
  either when a collective fails ("connection closed by peer", at once) or when :class:`PeerWatch` sees the
  peer missing (within the heartbeat timeout). If process 0 dies, the service dies with it and jax ends
  the others at once with its own message ("the leader task ... died"); the checkpoints are intact.
- jax's preemption service (a second SIGTERM handler) is off: Ctrl-C and SIGTERM are the runner's, which
  stops every process at the same chunk boundary (:mod:`purejaxpo.interrupts`).
- At exit, process 0 (which hosts the service) waits until the other processes have disconnected.
"""

from __future__ import annotations

import argparse
import atexit
import itertools
import os
import re
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import jax

ENV_COORDINATOR = "PUREJAXPO_COORDINATOR"
ENV_NUM_PROCESSES = "PUREJAXPO_NUM_PROCESSES"
ENV_PROCESS_ID = "PUREJAXPO_PROCESS_ID"
ENV_INIT_TIMEOUT = "PUREJAXPO_INIT_TIMEOUT"
ENV_HEARTBEAT_TIMEOUT = "PUREJAXPO_HEARTBEAT_TIMEOUT"
DEFAULT_INIT_TIMEOUT_S = 120  # jax's default is 300 s
DEFAULT_HEARTBEAT_TIMEOUT_S = 30  # jax's default is 100 s; heartbeats come from a C++ thread, not blocked by compiling
EXIT_PEER_LOST = 75  # EX_TEMPFAIL: resuming from the last checkpoint is the fix
WATCH_EVERY_S = 0.5


class DistributedError(RuntimeError):
    """A multi-process run cannot start or go on (bad topology, backend already initialised, a peer refused)."""


class PeerLostError(DistributedError):
    """Another process of the run stopped answering; the message names the last good checkpoint."""


@dataclass(frozen=True)
class Topology:
    """Where this process sits: ``process_id`` of ``num_processes``, the coordinator, and where that came from."""

    process_id: int
    num_processes: int
    coordinator: str | None
    source: str  # "arguments", "environment", "SLURM", "Open MPI", "jax"


_heartbeat_timeout_s: float = 100.0  # jax's defaults until initialize() says otherwise
_init_timeout_s: float = 300.0


def backend_started() -> bool:
    """True once anything has initialised the XLA backend (then ``jax.distributed`` can no longer start)."""
    from jax._src import xla_bridge

    return xla_bridge.backends_are_initialized()


def _env_int(name: str) -> int | None:
    text = os.environ.get(name)
    if text in (None, ""):
        return None
    try:
        return int(text)
    except ValueError:
        raise DistributedError(f"{name} must be an integer, got {text!r}") from None


def _detected_cluster() -> str | None:
    from jax._src import clusters

    if clusters.SlurmCluster.is_env_present():
        return "SLURM"
    if clusters.OmpiCluster.is_env_present():
        return "Open MPI"
    return None


def resolve(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None
            ) -> tuple[str | None, int | None, int | None, str]:
    """``(coordinator, num_processes, process_id, source)`` from the arguments, then the ``PUREJAXPO_*``
    environment variables; values left ``None`` are for jax's SLURM / Open MPI detection. One-line
    :class:`DistributedError` for anything missing or malformed."""
    source = "arguments" if None not in (coordinator, num_processes, process_id) else "environment"
    coordinator = coordinator if coordinator is not None else (os.environ.get(ENV_COORDINATOR) or None)
    num_processes = num_processes if num_processes is not None else _env_int(ENV_NUM_PROCESSES)
    process_id = process_id if process_id is not None else _env_int(ENV_PROCESS_ID)
    given = {"coordinator": coordinator, "num_processes": num_processes, "process_id": process_id}
    missing = [name for name, value in given.items() if value is None]
    if missing:
        cluster = _detected_cluster()
        if cluster is None:
            raise DistributedError(
                f"no cluster detected and no {', '.join(missing)} given: pass --coordinator HOST:PORT --num-processes N "
                f"--process-id I (or {ENV_COORDINATOR}, {ENV_NUM_PROCESSES}, {ENV_PROCESS_ID}), or run under SLURM "
                f"(srun) or Open MPI (mpirun)"
            )
        source = cluster
    if coordinator is not None:
        match = re.fullmatch(r"(.+):(\d+)", coordinator)
        if not match or not 0 < int(match.group(2)) < 65536:
            raise DistributedError(f"the coordinator address must be HOST:PORT (port 1-65535), got {coordinator!r}")
    if num_processes is not None and num_processes < 1:
        raise DistributedError(f"the number of processes must be at least 1, got {num_processes}")
    if process_id is not None and (process_id < 0 or (num_processes is not None and process_id >= num_processes)):
        bound = f"[0, {num_processes})" if num_processes is not None else ">= 0"
        raise DistributedError(f"the process id must be in {bound}, got {process_id}")
    return coordinator, num_processes, process_id, source


def _timeout(value: float | None, env: str, default: float, what: str) -> int:
    value = value if value is not None else _env_int(env)
    value = default if value is None else value
    if value < 1:
        raise DistributedError(f"the {what} timeout must be at least 1 s, got {value}")
    return int(value)


def initialize(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None, *,
               init_timeout: float | None = None, heartbeat_timeout: float | None = None,
               local_device_ids: list[int] | None = None) -> Topology:
    """Start ``jax.distributed`` for this process (see the module docstring). Call it first, before
    anything computes with jax or imports gymnax / ``purejaxpo.envs``.

    Args:
      coordinator: ``HOST:PORT`` of process 0 (any free port; every process passes the same).
      num_processes / process_id: the run's process count and this process's id in ``[0, num_processes)``.
      init_timeout: seconds to wait for every process to connect (``PUREJAXPO_INIT_TIMEOUT``; default 120).
      heartbeat_timeout: seconds after which a silent process counts as lost (``PUREJAXPO_HEARTBEAT_TIMEOUT``;
        default 30).
      local_device_ids: the local devices this process uses (jax's default: all, or one GPU per process
        under SLURM / Open MPI).

    Returns the :class:`Topology`. Calling it again returns the running topology. Raises
    :class:`DistributedError` (one line) when the backend is already initialised or an argument is wrong.
    """
    global _heartbeat_timeout_s, _init_timeout_s
    if jax.distributed.is_initialized():
        return current()
    coordinator, num_processes, process_id, source = resolve(coordinator, num_processes, process_id)
    init_s = _timeout(init_timeout, ENV_INIT_TIMEOUT, DEFAULT_INIT_TIMEOUT_S, "initialization")
    heartbeat_s = _timeout(heartbeat_timeout, ENV_HEARTBEAT_TIMEOUT, DEFAULT_HEARTBEAT_TIMEOUT_S, "heartbeat")
    if backend_started():
        raise DistributedError(
            "the XLA backend is already initialised, so jax.distributed cannot start: call "
            "purejaxpo.distributed.initialize() first, before any jax computation or importing gymnax, purejaxpo.envs "
            "or purejaxpo.experiment"
        )
    jax.config.update("jax_enable_recoverability", True)
    jax.config.update("jax_enable_preemption_service", False)
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator, num_processes=num_processes, process_id=process_id,
            local_device_ids=local_device_ids, initialization_timeout=init_s, heartbeat_timeout_seconds=heartbeat_s,
            shutdown_timeout_seconds=heartbeat_s,
        )
    except Exception as err:  # jax raises XlaRuntimeError/RuntimeError/ValueError with pages of text
        text = " ".join(str(err).split())
        raise DistributedError(
            f"jax.distributed did not start (process {process_id} of {num_processes}, coordinator {coordinator}, "
            f"{init_s} s timeout): {text[:300]}"
        ) from None
    _heartbeat_timeout_s, _init_timeout_s = float(heartbeat_s), float(init_s)
    atexit.register(_exit_in_order)
    return Topology(jax.process_index(), jax.process_count(), coordinator, source)


def current() -> Topology:
    """The running topology (one process when ``jax.distributed`` was not started)."""
    from jax._src import distributed as jd

    state = jd.global_state
    if state.client is None:
        return Topology(0, 1, None, "jax")
    return Topology(state.process_id, state.num_processes, state.coordinator_address, "jax")


def is_multiprocess() -> bool:
    """True when this run spans more than one process (initialises the backend)."""
    return jax.process_count() > 1


def is_main() -> bool:
    """True on process 0, the one that writes a run's outputs and prints (initialises the backend)."""
    return jax.process_index() == 0


def _client() -> Any:
    from jax._src import distributed as jd

    return jd.global_state.client


_peer_lost = False  # set once a peer is known lost: then nobody waits for it at exit


def peer_lost(reason: BaseException | str, update: int, last_good: str) -> PeerLostError:
    """The error to raise when a collective failed because another process is gone: one line naming the
    update reached and the last good checkpoint (``last_good``)."""
    global _peer_lost
    _peer_lost = True
    text = " ".join(str(reason).split())
    text = re.sub(r"\[external/[^\]]*\]\s*", "", text.replace("UNKNOWN: ", ""))[:200]
    err = PeerLostError(f"another process of the run is gone ({text}) at update {update}; {last_good}")
    err.update = update
    return err


def _exit_in_order() -> None:
    """At exit, process 0 waits (up to the heartbeat timeout) for the others to disconnect: it hosts the
    coordination service, and with recoverability on jax does not wait by itself."""
    client = _client()
    if client is None or _peer_lost or jax.process_index() != 0 or jax.process_count() == 1:
        return
    others = list(range(jax.process_count()))
    deadline = time.monotonic() + _heartbeat_timeout_s
    while time.monotonic() < deadline:
        try:
            if len(client.get_live_nodes(others)) <= 1:
                return
        except Exception:
            return
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------------------------
# agreement and the watch for lost peers (used by the runner; no-ops in one process)
# ---------------------------------------------------------------------------------------------------------------

_rounds = itertools.count()  # every process calls agree() in the same order, so keys match


def agree(stage: str, error: BaseException | None = None) -> None:
    """Every process reports whether ``stage`` passed; on any failure all of them raise (their own error,
    or :class:`DistributedError` naming the process that failed). Uses jax's key-value store, no XLA
    collective, so it also works before anything compiled. In one process: raise ``error`` if given."""
    if jax.process_count() == 1:
        if error is not None:
            raise error
        return
    client, me, count = _client(), jax.process_index(), jax.process_count()
    prefix = f"purejaxpo/agree/{next(_rounds)}-{stage}"
    verdict = "" if error is None else f"{type(error).__name__}: " + " ".join(str(error).split())
    client.key_value_set(f"{prefix}/{me}", verdict or "ok")
    verdicts = {peer: _wait_for(client, f"{prefix}/{peer}", peer, stage) for peer in range(count)}
    if error is not None:
        raise error
    failed = [(peer, text) for peer, text in verdicts.items() if text != "ok"]
    if failed:
        peer, text = failed[0]
        raise DistributedError(f"process {peer} of {count} stopped at '{stage}': {text}")


def all_ok(stage: str, ok: bool) -> bool:
    """True when ``ok`` on every process (each calls it with its own verdict; in one process: ``ok``)."""
    if jax.process_count() == 1:
        return ok
    client, me, count = _client(), jax.process_index(), jax.process_count()
    prefix = f"purejaxpo/agree/{next(_rounds)}-{stage}"
    client.key_value_set(f"{prefix}/{me}", "ok" if ok else "no")
    verdicts = [_wait_for(client, f"{prefix}/{peer}", peer, stage) for peer in range(count)]
    return all(v == "ok" for v in verdicts)


def _wait_for(client: Any, key: str, peer: int, stage: str) -> str:
    """The value of ``key`` once ``peer`` sets it: waits while ``peer`` is alive (it may be compiling or
    checking slowly), at most the initialization timeout; :class:`PeerLostError` once it is gone."""
    deadline = time.monotonic() + max(_init_timeout_s, _heartbeat_timeout_s)
    count = jax.process_count()
    while True:
        try:
            return client.blocking_key_value_get(key, 1000)
        except Exception:
            pass
        try:
            alive = peer in client.get_live_nodes(list(range(count)))
        except Exception:
            alive = False
        if not alive or time.monotonic() > deadline:
            why = "is gone" if not alive else f"did not get there within {max(_init_timeout_s, _heartbeat_timeout_s):.0f} s"
            raise PeerLostError(f"process {peer} of {count} {why} before '{stage}' (see its log)")


def is_peer_failure(err: BaseException) -> bool:
    """True for the errors a collective or a barrier raises when another process is gone."""
    if isinstance(err, PeerLostError):
        return True
    if not isinstance(err, Exception) or jax.process_count() == 1:
        return False
    text = str(err)
    return any(marker in text for marker in ("Gloo", "Connection closed", "Connection reset", "heartbeat",
                                              "Barrier", "barrier", "UNAVAILABLE", "DEADLINE_EXCEEDED"))


class PeerWatch:
    """While active (a context manager), a thread checks every :data:`WATCH_EVERY_S` that every process of
    the run is alive. A process that vanished without announcing its end (a crash, ``kill -9``, a frozen
    host past the heartbeat timeout) makes this process print ``describe(lost)`` and exit with
    :data:`EXIT_PEER_LOST` — the main thread may be blocked in a collective that never returns.
    ``on_lost(message)`` runs first (e.g. process 0 records the failure in ``status.json``).

    Leaving the context announces this process's normal end, so peers that finish a little later do
    not mistake it for a loss. In one process it does nothing."""

    _runs = itertools.count()

    def __init__(self, describe: Callable[[list[int]], str], on_lost: Callable[[str], None] | None = None):
        self.describe, self.on_lost = describe, on_lost
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._key = f"purejaxpo/finished/{next(PeerWatch._runs)}"

    def __enter__(self) -> "PeerWatch":
        if jax.process_count() > 1 and _client() is not None:
            self._thread = threading.Thread(target=self._watch, name="purejaxpo-peer-watch", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        try:
            _client().key_value_set(f"{self._key}/{jax.process_index()}", "1")
        except Exception:
            pass

    def _lost(self, client: Any, everyone: list[int]) -> list[int]:
        try:
            live = client.get_live_nodes(everyone)
        except Exception:  # the coordinator (process 0) is gone
            return [0]
        return [p for p in everyone if p not in live and not self._announced(client, p)]

    def _announced(self, client: Any, peer: int) -> bool:
        try:
            client.key_value_try_get(f"{self._key}/{peer}")  # raises NOT_FOUND until the peer sets it
            return True
        except Exception:
            return False

    def _watch(self) -> None:
        client, everyone = _client(), list(range(jax.process_count()))
        while not self._stop.wait(WATCH_EVERY_S):
            try:
                lost = self._lost(client, everyone)
            except Exception:
                lost = []
            if lost and not self._stop.is_set():
                message = self.describe(lost)
                if self.on_lost is not None:
                    try:
                        self.on_lost(message)
                    except Exception:
                        pass
                print(f"purejaxpo: error: {message}", file=sys.stderr, flush=True)
                os._exit(EXIT_PEER_LOST)


# ---------------------------------------------------------------------------------------------------------------
# command-line flags (purejaxpo train ... --distributed)
# ---------------------------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--distributed`` flags of ``purejaxpo train``."""
    group = parser.add_argument_group("more than one process (README: 'More than one machine')")
    group.add_argument("--distributed", action="store_true",
                       help="this process is one of several training one run together (jax.distributed); the "
                            "topology comes from the flags below, PUREJAXPO_* variables, or SLURM / Open MPI")
    group.add_argument("--coordinator", default=None, metavar="HOST:PORT", help=f"process 0's address ({ENV_COORDINATOR})")
    group.add_argument("--num-processes", type=int, default=None, metavar="N", help=f"processes in the run ({ENV_NUM_PROCESSES})")
    group.add_argument("--process-id", type=int, default=None, metavar="I", help=f"this process, 0..N-1 ({ENV_PROCESS_ID})")
    group.add_argument("--init-timeout", type=int, default=None, metavar="S",
                       help=f"seconds to wait for every process to connect (default {DEFAULT_INIT_TIMEOUT_S})")
    group.add_argument("--heartbeat-timeout", type=int, default=None, metavar="S",
                       help=f"seconds after which a silent process counts as lost (default {DEFAULT_HEARTBEAT_TIMEOUT_S})")


def initialize_from_args(args: argparse.Namespace) -> Topology | None:
    """:func:`initialize` from the parsed ``--distributed`` flags (``None`` without ``--distributed``; then
    the topology flags are refused, they would be silently ignored)."""
    flags = {"--coordinator": args.coordinator, "--num-processes": args.num_processes, "--process-id": args.process_id,
             "--init-timeout": args.init_timeout, "--heartbeat-timeout": args.heartbeat_timeout}
    if not args.distributed:
        given = [flag for flag, value in flags.items() if value is not None]
        if given:
            raise DistributedError(f"{', '.join(given)} need{'s' if len(given) == 1 else ''} --distributed")
        return None
    return initialize(args.coordinator, args.num_processes, args.process_id, init_timeout=args.init_timeout,
                      heartbeat_timeout=args.heartbeat_timeout)
