"""Run an algorithm over seeds × a hyperparameter grid × devices, in jitted chunks of updates.

``run`` checks every argument, the output directory and a memory estimate before anything compiles,
initializes every (setting, seed) pair in one vmapped call, then advances all of them by ``chunk``
updates per jitted call in a host loop. Between chunks (never inside the hot path) it updates a progress
bar, writes orbax checkpoints, checks for non-finite losses and honours Ctrl-C/SIGTERM (save, then stop).
The runs are sharded over the devices with ``jax.sharding`` (a ``settings × seeds`` mesh,
:mod:`purejaxpo.placement`; seeds are split first).

Several processes (after :func:`purejaxpo.distributed.initialize`, one process per host or GPU): the mesh
spans every process's devices and each process trains its share of the runs. Metrics, evaluation and the
final state are gathered, so every process returns the same :class:`Results`; only process 0 prints,
shows the progress bar and writes the run directory, while every process writes its shards of each
checkpoint into the same (shared) directory. A run resumes on any topology whose device count divides
the runs (tests/test_distributed.py resumes a 2-process checkpoint in one process). Ctrl-C/SIGTERM on any
process stops all of them at the same chunk boundary, after a checkpoint they all save; a lost process
ends the others with :class:`~purejaxpo.distributed.PeerLostError` (or, when the main thread is stuck in a
collective, the message and exit code 75) naming the last good checkpoint.

Seeds: seed ``i`` of an ``N``-seed run uses ``jax.random.split(jax.random.key(seed), N)[i]``, which does not
depend on ``N`` (jax's partitionable threefry, the default), so ``run(..., num_seeds=N, seed_indices=[i])``
reruns seed ``i`` alone with the same keys (training and evaluation) as in the ``N``-seed run;
``shard="i/N"`` trains the ``i``-th of ``N`` slices of the (setting × seed) runs that way
(:mod:`purejaxpo.shards`, which also merges the slices' outputs).

With ``out=DIR`` the run owns an output directory (:mod:`purejaxpo.rundir`): ``config.json``,
``status.json``, ``checkpoints/`` (the newest is the final trained state), ``metrics.csv``,
``curves.png`` and ``summary.json``, all written atomically; :func:`purejaxpo.load_run` reads it back.
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from purejaxpo import checkpointing, distributed, memory, rundir, shards
from purejaxpo import compile_cache as xla_cache
from purejaxpo.algorithms.registry import Algorithm
from purejaxpo.batching import map_over_runs, resolve_seeds_per_batch
from purejaxpo.chunks import updates_upto
from purejaxpo.evaluation import eval_keys, evaluate_runs_on_devices
from purejaxpo.interrupts import DeferredInterrupts, RunInterrupted
from purejaxpo.placement import Placement, check_devices, run_mesh
from purejaxpo.provenance import provenance
from purejaxpo.run_args import (  # noqa: F401  (_algorithm_for, _as_grid, _seed_mesh: used by tests and tools)
    MAX_SEED,
    MAX_UPDATES,
    _algorithm_for,
    _as_grid,
    _check_arguments,
    _labels,
    _resolve_trainer,
    _seed_list,
    _seed_mesh,  # noqa: F401
    _varying,
    run_description,
)
from purejaxpo.loggers import LoggerGroup
from purejaxpo.results import Results, config_dict, env_steps_per_s, hparams_dict
from purejaxpo.types import Trainer, stack_hparams

__all__ = ["NonFiniteError", "Results", "RunInterrupted", "config_dict", "hparams_dict", "run", "run_description"]

STATUS_EVERY_S = 2.0  # refresh status.json at most this often between checkpoints


class NonFiniteError(FloatingPointError):
    """A loss or gradient became NaN/inf; the updates holding it were discarded (never trained through) and the run stopped."""

    results: Results | None = None


def run(
    algo: str | Trainer,
    env: str | Any | None = None,
    *,
    num_seeds: int = 1,
    hparams: Any = None,
    config: Any = None,
    env_params: Any = None,
    seed: int = 0,
    seed_indices: Sequence[int] | None = None,
    shard: str | tuple[int, int] | None = None,
    devices: Sequence[Any] | None = None,
    seeds_per_batch: int | str | None = "auto",
    chunk_updates: int | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
    eval_episodes: int = 0,
    eval_deterministic: bool = False,
    eval_max_steps: int | None = None,
    sweep_labels: Sequence[str] | None = None,
    check_memory: bool = True,
    terms: rundir.Terms = rundir.API_TERMS,
    loggers: Sequence[Any] = (),
    compile_cache: bool | str | Path = True,
) -> Results:
    """Train ``algo`` on ``env`` for ``num_seeds`` seeds (× every setting when ``hparams`` is a list).

    Args:
      algo: an algorithm name (``"ppo"``) or a ready :class:`~purejaxpo.types.Trainer` (then ``config`` and
        ``env_params`` come from it, and ``env`` must be ``None`` or the Trainer's env).
      env: an environment name for :func:`make_env`, or an env object (with ``env_params``).
      hparams: ``None`` (defaults), one HParams, or a list of HParams run side by side as a grid.
      seed / seed_indices: seed ``i`` uses ``split(key(seed), num_seeds)[i]``; ``seed_indices=[i, ...]`` runs
        only those seeds of the ``num_seeds`` family (same keys as in the full run).
      shard: ``"i/N"`` or ``(i, N)``: only the ``i``-th of ``N`` slices of the (setting × seed) runs, with the
        keys the whole run gives them (job arrays; :mod:`purejaxpo.shards`). Excludes ``seed_indices``.
      devices: devices to shard the runs over (default: all devices; in a multi-process run those of every
        process, see the module docstring).
      seeds_per_batch: vmap this many runs (settings × seeds) at a time and loop over the batches (same
        results, a working set that fits CPU caches; see :mod:`purejaxpo.batching`). ``"auto"``: 64 on a
        CPU with more than 64 runs, otherwise one wide vmap; ``None``: always one wide vmap. One device only.
      chunk_updates: updates per jitted call (default: ``checkpoint_every`` or ~1/50 of the run).
      checkpoint_dir / checkpoint_every: orbax checkpoints every K updates. With a ``checkpoint_dir`` the
        final state is always saved, and so is the state reached when Ctrl-C/SIGTERM stops the run.
      resume: continue the newest checkpoint that restores (damaged newer ones are moved aside and named)
        bit-exactly; its run description must match this call's.
      out / overwrite: write the run's output directory (see the module docstring); a non-empty ``out`` is
        refused unless ``resume`` (continue it) or ``overwrite`` (move it aside to ``out.old-<time>``).
      eval_episodes: after training, evaluate each seed on this many episodes inside ``jit``.
      check_memory: refuse, before compiling, a run whose memory estimate exceeds the machine's
        (:mod:`purejaxpo.memory`).
      terms: how error messages name options (:data:`rundir.CLI_TERMS` from the command line).
      compile_cache: JAX's persistent compilation cache (:mod:`purejaxpo.compile_cache`): ``True`` (default) uses
        the directory already configured or ``~/.cache/purejaxpo/xla`` (``$PUREJAXPO_CACHE_DIR``), a path uses
        that one, ``False`` none; a second run of the same program loads its executables instead of compiling
        them. The setting is process-wide (JAX's config). ``summary()["compile_cache"]`` says whether it hit.
      loggers: sinks (:mod:`purejaxpo.loggers`: TensorBoard, wandb) fed on the host between chunks, never inside
        the compiled loop; a sink that fails is reported once and dropped, training goes on.

    Raises (before compiling) ``ValueError``/``TypeError`` for bad arguments, :class:`rundir.RunDirError`,
    :class:`checkpointing.CheckpointError` and :class:`memory.InsufficientMemoryError`; while running,
    :class:`NonFiniteError`, :class:`RunInterrupted` (a ``KeyboardInterrupt``; ``.update``, ``.saved``) and,
    over several processes, :class:`~purejaxpo.distributed.PeerLostError`. Over several processes every
    process raises the same error (a check that fails on one fails on all).
    """
    main = jax.process_index() == 0
    try:  # -- every check, before anything is written or compiled (only process 0 reads the filesystem) --
        _check_arguments(num_seeds, seed, chunk_updates, checkpoint_every, eval_episodes, eval_max_steps, devices)
        if (checkpoint_every is not None or resume) and checkpoint_dir is None and out is None:
            raise ValueError("checkpoint_every and resume need a checkpoint_dir (or out)")
        if resume and overwrite:
            raise ValueError(f"{terms.resume} and {terms.overwrite} exclude each other")
        if shard is not None and seed_indices is not None:
            raise ValueError("shard and seed_indices exclude each other (a shard chooses its own seeds)")

        trainer, algorithm, env_name = _resolve_trainer(algo, env, config, env_params)
        settings = _as_grid(hparams, algorithm.hparams_cls)
        labels = _labels(settings, sweep_labels)
        indices = _seed_list(num_seeds, seed_indices)
        shard_info = None
        if shard is not None:
            part, whole_grid = shards.parse_shard(shard), len(settings)
            setting_ids, indices = shards.job_slice(whole_grid, num_seeds, part)
            settings = [settings[g] for g in setting_ids]
            labels = [labels[g] for g in setting_ids] if labels else []
            shard_info = shards.shard_record(part, setting_ids, whole_grid, indices, labels)
        seeds_run = len(indices) if indices is not None else num_seeds
        grid = len(settings)
        num_updates = trainer.config.num_updates
        if num_updates > MAX_UPDATES:
            raise ValueError(f"total_timesteps={trainer.config.total_timesteps:,} means {num_updates:,} updates; the update "
                             f"counter is int32 (at most {MAX_UPDATES:,}): lower total_timesteps")
        chunk = min(chunk_updates or checkpoint_every or max(1, num_updates // 50), num_updates)
        meta = run_description(algorithm.name, env_name, trainer.config, settings, num_seeds, seed, indices)

        run_dir = rundir.RunDir(out, writer=main) if out is not None else None
        if run_dir is not None:
            if main and resume:
                saved = rundir.check_resumable(out, terms)
                checkpointing.check_meta(saved, meta, where=f"{Path(out) / rundir.CONFIG}")
            elif main:
                rundir.check_new(out, overwrite=overwrite, terms=terms)
            checkpoint_dir = checkpoint_dir if checkpoint_dir is not None else run_dir.checkpoints
        if checkpoint_dir is not None:
            checkpoint_dir = Path(checkpoint_dir)
            if main:
                _check_checkpoint_dir(checkpoint_dir, run_dir, meta, resume, terms)

        devices = list(devices) if devices is not None else jax.devices()
        check_devices(devices)
        mesh = run_mesh(devices, grid, seeds_run)
        per_batch = resolve_seeds_per_batch(seeds_per_batch, grid * seeds_run, devices[0].platform)
        if mesh is not None:
            if per_batch is not None and seeds_per_batch != "auto":
                raise ValueError("seeds_per_batch batches the seeds of one device; with several devices the seed axis "
                                 "is already split across them (pass seeds_per_batch=None or one device)")
            per_batch = None

        hp = stack_hparams(settings)
        hp_one = jax.tree.map(lambda x: x[0], hp)
        state_one = jax.eval_shape(trainer.init, jax.random.key(0), hp_one)
        # one jitted update: this probe, the memory estimate and the compiled chunks share its trace (purejaxpo.chunks)
        trainer = trainer._replace(update=jax.jit(trainer.update))
        metric_names = list(jax.eval_shape(trainer.update, state_one, hp_one)[1])
        if check_memory:
            local = [d for d in devices if d.process_index == jax.process_index()]
            runs_here = -(-grid * seeds_run * len(local) // len(devices))  # this process's share
            est = memory.estimate(state_one, trainer, runs=runs_here, runs_at_once=per_batch or runs_here,
                                  num_updates=num_updates, chunk=chunk, num_metrics=len(metric_names))
            memory.check(est, local, batched=per_batch is not None)
    except Exception as err:
        distributed.agree("checking the run", err)  # raises err here, and on the other processes names it
        raise
    distributed.agree("checking the run")

    # -- from here on the run writes (process 0): config.json and status.json first --
    try:
        if run_dir is not None:
            moved = run_dir.create(overwrite=overwrite)
            if moved is not None:
                print(f"moved the previous run in {run_dir.path} to {moved}")
            if main and (not resume or not (run_dir.path / rundir.CONFIG).exists()):
                run_dir.write_config({
                    **meta, "sweep_labels": labels, "checkpoint_every": checkpoint_every, "eval_episodes": eval_episodes,
                    "eval_deterministic": eval_deterministic, "eval_max_steps": eval_max_steps,
                    "device_kind": devices[0].device_kind, "num_devices": len(devices),
                    "num_processes": jax.process_count(), **({"shard": shard_info} if shard_info else {}),
                    "provenance": provenance(),
                })
            run_dir.write_status("running", update=0, num_updates=num_updates)
    except Exception as err:
        distributed.agree("creating the run directory", err)
        raise
    distributed.agree("creating the run directory")

    cache_dir = xla_cache.use(compile_cache)  # after every check: bad input never touches the cache
    job = _Job(
        trainer, algorithm, env_name, settings, labels, hp, num_seeds, indices, seed, devices, mesh, per_batch, chunk,
        metric_names, meta, checkpoint_dir, checkpoint_every, resume, run_dir, progress, eval_episodes,
        eval_deterministic, eval_max_steps, list(loggers), cache_dir,
    )
    try:
        if checkpoint_dir is not None and jax.process_count() > 1:
            _check_shared(checkpoint_dir, main)
        results = _train(job)
    except BaseException as err:
        if run_dir is not None:
            _record_stop(run_dir, err, num_updates)
        raise
    if run_dir is not None:
        try:
            results.out, results.provenance = run_dir.path, provenance()
            run_dir.write_metrics(results)
            run_dir.write_timeline(results)
            run_dir.write_curves(results)
            run_dir.write_summary(results.summary())
        except BaseException as err:
            _record_stop(run_dir, err, num_updates, writing=True)
            raise
        run_dir.write_status("done", update=num_updates, num_updates=num_updates)
    return results


def _check_checkpoint_dir(checkpoint_dir: Path, run_dir: rundir.RunDir | None, meta: dict[str, Any], resume: bool,
                          terms: rundir.Terms) -> None:
    """A resume must find this run's checkpoints (or none); a new run must not find anyone's."""
    inside_out = run_dir is not None and checkpoint_dir.absolute().is_relative_to(run_dir.path.absolute())
    if resume:
        if not checkpoint_dir.is_dir() and run_dir is None:
            raise checkpointing.CheckpointError(f"no checkpoint directory at {checkpoint_dir}")
        found = checkpointing.latest_meta(checkpoint_dir)
        if found is not None:
            checkpointing.check_meta(found[1], meta, where=f"checkpoint {found[0]} in {checkpoint_dir}")
    elif not inside_out and checkpointing.holds_checkpoints(checkpoint_dir):
        raise checkpointing.CheckpointError(
            f"{checkpoint_dir} already holds checkpoints; pass {terms.resume.replace(' DIR', '')} to continue them "
            f"or choose a new directory"
        )


SHARED_PROBE = f".purejaxpo-shared{checkpointing.TMP_MARKER}"  # ignored as an unfinished save if left behind


def _check_shared(checkpoint_dir: Path, main: bool) -> None:
    """Several processes: each must see the file process 0 writes into the checkpoint directory (each
    process writes its own shards of every checkpoint there)."""
    probe = checkpoint_dir / SHARED_PROBE
    failure = None
    if main:
        try:
            checkpoint_dir.mkdir(parents=True, exist_ok=True)
            probe.write_text("written by process 0 to check that every process sees this directory\n")
        except OSError as err:
            failure = err
    distributed.agree("creating the checkpoint directory", failure)
    if not main and not probe.is_file():
        failure = distributed.DistributedError(
            f"process {jax.process_index()} cannot see {probe}, which process 0 just wrote: every process must "
            f"reach the checkpoint directory {checkpoint_dir} on a shared filesystem (README: 'More than one machine')"
        )
    try:
        distributed.agree("sharing the checkpoint directory", failure)
    finally:
        if main:
            probe.unlink(missing_ok=True)


def _record_stop(run_dir: rundir.RunDir, err: BaseException, num_updates: int, writing: bool = False) -> None:
    """``status.json`` (and the metrics reached) of a run that stopped early. Best effort, each write on its
    own: the disk may be what failed."""
    partial = getattr(err, "results", None)
    reason = ("writing outputs: " if writing else "") + (
        str(err) if isinstance(err, NonFiniteError) else f"{type(err).__name__}: {err}")
    if isinstance(err, RunInterrupted):
        status = dict(status="interrupted", update=err.update, saved=err.saved, signal=signal.Signals(err.signum).name)
    else:
        reached = partial.num_updates if partial else getattr(err, "update", None)
        status = dict(status="failed", reason=reason, update=num_updates if writing else reached)
    writes = [lambda: run_dir.write_metrics(partial), lambda: run_dir.write_timeline(partial)] if (
        partial is not None and partial.num_updates and not writing) else []
    writes.append(lambda: run_dir.write_status(num_updates=num_updates, **status))
    for write in writes:
        try:
            write()
        except Exception:
            pass


@dataclass
class _Job:
    """A run as :func:`run` resolved and checked it: what :func:`_train` executes."""

    trainer: Trainer
    algorithm: Algorithm
    env_name: str
    settings: list[Any]
    labels: list[str]
    hp: Any
    num_seeds: int
    indices: list[int] | None
    seed: int
    devices: list[Any]
    mesh: Any
    per_batch: int | None
    chunk: int
    metric_names: list[str]
    meta: dict[str, Any]
    checkpoint_dir: Path | None
    checkpoint_every: int | None
    resume: bool
    run_dir: rundir.RunDir | None
    progress: bool
    eval_episodes: int
    eval_deterministic: bool
    eval_max_steps: int | None
    loggers: list[Any]
    cache_dir: str | None


def _train(job: _Job) -> Results:
    """Compile, initialize (or restore), train in chunks, save and evaluate: the part of :func:`run` that
    runs after every check has passed."""
    trainer, algorithm, env_name, settings, labels = job.trainer, job.algorithm, job.env_name, job.settings, job.labels
    num_seeds, indices, seed, devices, mesh, per_batch, chunk = (
        job.num_seeds, job.indices, job.seed, job.devices, job.mesh, job.per_batch, job.chunk)
    metric_names, meta, checkpoint_dir, checkpoint_every, resume, run_dir, progress = (
        job.metric_names, job.meta, job.checkpoint_dir, job.checkpoint_every, job.resume, job.run_dir, job.progress)
    grid = len(settings)
    seeds_run = len(indices) if indices is not None else num_seeds
    num_updates = trainer.config.num_updates
    placement = Placement(mesh, device=None if mesh is not None or devices == jax.devices()[:1] else devices[0])
    multi, main = placement.multiprocess, jax.process_index() == 0
    keys = jax.random.split(jax.random.key(seed), num_seeds)
    if indices is not None:
        keys = keys[np.asarray(indices)]
    # Every state/metric leaf is [G, S, ...]: sharded over the (settings, seeds) mesh; hparams [G, ...] follow settings.
    keys = placement.put(jnp.broadcast_to(keys, (grid, seeds_run)), placement.runs)
    hp = placement.put(job.hp, placement.settings)
    sharding: dict[str, Any] = {}
    if mesh is not None:
        sharding = {"in_shardings": (placement.runs, placement.settings), "out_shardings": (placement.runs, placement.runs)}

    init_fn = jax.jit(
        map_over_runs(trainer.init, per_batch),
        **({"in_shardings": sharding["in_shardings"], "out_shardings": sharding["out_shardings"][0]} if sharding else {}),
    )

    # One compiled program runs any n <= chunk updates (purejaxpo.chunks): a shorter last chunk, a checkpoint
    # boundary or a resume never compiles again.
    run_upto = updates_upto(trainer.update, chunk)
    chunk_sharding = {}
    if sharding:
        chunk_sharding = {"in_shardings": (*sharding["in_shardings"], placement.sharding()), "out_shardings": sharding["out_shardings"]}
    compiled: list[Any] = []
    compile_s = 0.0
    cache_stats = xla_cache.CacheStats()  # hits and misses of this call's compiles

    def chunk_fn(state: Any) -> Any:
        nonlocal compile_s
        if not compiled:
            start = time.perf_counter()
            fn = jax.jit(lambda s, h, n: map_over_runs(lambda s1, h1: run_upto(s1, h1, n), per_batch)(s, h),
                         donate_argnums=(0,), **chunk_sharding)
            compiled.append(xla_cache.compile_ahead(fn, state, hp, np.int32(chunk)))
            compile_s += time.perf_counter() - start
        return compiled[0]

    metrics = {name: np.full((grid, seeds_run, num_updates), np.nan, np.float32) for name in metric_names}
    started = time.perf_counter()
    timeline: list[tuple[int, float]] = []  # (updates done, seconds since started) at every chunk end
    sinks = LoggerGroup(job.loggers if main else [])  # process 0 logs for the whole run
    done = 0
    last_saved: int | None = None
    run_s = 0.0

    def results_so_far(state: Any, eval_returns: np.ndarray | None = None, upto: int | None = None) -> Results:
        """Over several processes the state is gathered (a collective: only where every process gets here)."""
        full = Results(
            algo=algorithm.name, env_name=env_name, config=trainer.config, hparams=settings, num_seeds=seeds_run,
            metrics=metrics, state=placement.gather(state) if multi and state is not None else state, compile_s=compile_s,
            run_s=run_s, eval_returns=eval_returns, sweep_labels=labels, seed=seed, seed_indices=indices,
            start_update=start_update, steps_per_update=trainer.config.batch_size, timeline=list(timeline),
            compile_cache=xla_cache.report(job.cache_dir, cache_stats),
        )
        return full if upto is None or upto == num_updates else full.truncated(upto)

    def last_good() -> str:
        if checkpoint_dir is None:
            return "nothing was saved (no checkpoint_dir)"
        if not last_saved:
            return f"no checkpoint was saved in {checkpoint_dir} yet"
        return f"the last good checkpoint is update {last_saved} in {checkpoint_dir}"

    def lost(peers: list[int]) -> str:
        return (f"process {', '.join(map(str, peers))} of {jax.process_count()} stopped answering (it crashed, was killed, "
                f"or was silent past the heartbeat timeout) at update {done}; {last_good()}")

    def record_lost(message: str) -> None:
        if run_dir is not None:
            run_dir.write_status("failed", reason=message, update=done, num_updates=num_updates, checkpoint=last_saved)

    def stop_request(interrupts: DeferredInterrupts) -> tuple[int, int] | None:
        """``(signal, process)`` of the first process asked to stop, or ``None``; over several processes a
        collective, so every process stops after the same chunk."""
        if not multi:
            return (interrupts.signum, 0) if interrupts.requested else None
        asked = placement.gather_local(np.int32(interrupts.signum or 0))
        first = np.flatnonzero(asked)
        return (int(asked[first[0]]), int(first[0])) if first.size else None

    with DeferredInterrupts("finishing this chunk of updates, then saving a checkpoint") as interrupts, \
            distributed.PeerWatch(lost, record_lost):
        start_update = 0
        state = mngr = None
        finished = False
        try:
            start = time.perf_counter()
            if progress:  # the first compile takes seconds (minutes for big networks): say so before it starts
                print(f"compiling {algorithm.name} on {env_name} ({grid * seeds_run} run(s))…", file=sys.stderr, flush=True)
            init_compiled = xla_cache.compile_ahead(init_fn, keys, hp)
            compile_s += time.perf_counter() - start
            state = init_compiled(keys, hp)

            if checkpoint_dir is not None:
                if resume and checkpoint_dir.is_dir():
                    agree = (lambda ok: distributed.all_ok("restoring a checkpoint", ok)) if multi else None
                    restored = checkpointing.restore_latest(checkpoint_dir, state, metrics, meta, repair=main, agree=agree)
                    for line in restored.notes(checkpoint_dir) if main else []:
                        print(line)
                    if restored.step is None and restored.skipped:
                        raise checkpointing.CheckpointError(
                            f"no checkpoint in {checkpoint_dir} restores (" + "; ".join(f"{st}: {why}" for st, why in restored.skipped)
                            + f"); they were moved to {restored.moved_to or checkpointing.damaged_dir(checkpoint_dir)}. "
                            f"Resume again to start from update 0"
                        )
                    if restored.step is not None:
                        done, state, metrics = restored.step, restored.state, restored.metrics
                        last_saved = done
                        if sharding and not multi:  # restored global arrays already have the run's sharding
                            state = jax.device_put(state, sharding["out_shardings"][0])
                elif resume:
                    if main:
                        print(f"no checkpoint in {checkpoint_dir}: starting from update 0")
                elif main:
                    checkpointing.clean_partial(checkpoint_dir)
                mngr = checkpointing.manager(checkpoint_dir)
            start_update = done

            def save_now() -> bool:
                nonlocal last_saved
                if mngr is None or done == 0 or last_saved == done:
                    return last_saved == done and done > 0
                checkpointing.save(mngr, done, state, metrics, meta)
                last_saved = done
                return True

            bar = None
            if progress and main:
                from tqdm.auto import tqdm

                # tqdm's own rate would count compile time: the bar shows env_steps_per_s (the summary's definition)
                bar = tqdm(total=num_updates, initial=done, unit="upd", desc=f"{algorithm.name} {env_name}", dynamic_ncols=True,
                           bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} upd [{elapsed}<{remaining}{postfix}]")
            steps_per_update = trainer.config.batch_size * grid * seeds_run
            timeline.append((done, time.perf_counter() - started))
            sinks.start(dict(algo=algorithm.name, env=env_name, labels=labels or [""], num_updates=num_updates,
                             seed_ids=list(indices) if indices is not None else list(range(seeds_run)),
                             steps_per_update=trainer.config.batch_size, out=str(run_dir.path) if run_dir else None))
            last_status = float("-inf")  # the first chunk always refreshes status.json
            stop = None
            try:
                while done < num_updates and (stop := stop_request(interrupts)) is None:
                    length = min(chunk, num_updates - done)
                    if checkpoint_every is not None:  # land on every checkpoint boundary, also after a resume
                        length = min(length, checkpoint_every - done % checkpoint_every)
                    fn = chunk_fn(state)
                    start = time.perf_counter()
                    new_state, chunk_metrics = fn(state, hp, np.int32(length))
                    chunk_metrics = {k: v[..., :length] for k, v in placement.gather(chunk_metrics).items()}
                    elapsed = time.perf_counter() - start
                    run_s += elapsed
                    state = new_state
                    for name, values in chunk_metrics.items():
                        metrics[name][..., done : done + length] = values
                    done += length
                    timeline.append((done, time.perf_counter() - started))
                    bad = np.asarray(chunk_metrics.get("nonfinite_steps", np.zeros(1))) > 0
                    if bad.any():
                        g, s, u = np.argwhere(bad)[0]
                        saved = save_now()
                        err = NonFiniteError(
                            f"non-finite loss or gradient at update {done - length + u} (hparam setting {g}, seed "
                            f"{indices[s] if indices else s}); {int(bad.sum())} update(s) affected. Those updates' gradient "
                            f"steps were discarded; lower the learning rate or check the environment's rewards"
                            + (f"; the state at update {done} is saved in {checkpoint_dir}" if saved else "")
                        )
                        err.results = results_so_far(state, upto=done)
                        raise err
                    sinks.log(done - length, chunk_metrics, timeline[-1][1])
                    if bar is not None:
                        recent = chunk_metrics["episode_return"]
                        bar.update(length)
                        bar.set_postfix(
                            {"return": f"{np.nanmean(recent) if np.isfinite(recent).any() else float('nan'):.1f}",
                             "env-steps/s": f"{env_steps_per_s(steps_per_update * (done - start_update), run_s):,.0f}"},
                            refresh=False,
                        )
                    saved_now = False
                    if checkpoint_every is not None and done % checkpoint_every == 0:
                        saved_now = save_now()
                    if run_dir is not None and (saved_now or time.monotonic() - last_status > STATUS_EVERY_S):
                        run_dir.write_status("running", update=done, num_updates=num_updates, checkpoint=last_saved)
                        last_status = time.monotonic()
            finally:
                if bar is not None:
                    bar.close()
                sinks.close()
            saved = save_now()  # the final state (or where an interrupt stopped the run)
            if stop is not None and done < num_updates:
                signum, by = stop
                what = f"interrupted by {signal.Signals(signum).name} on process {by}" if multi else "interrupted"
                where = f" in {checkpoint_dir}" if saved else ""
                raise RunInterrupted(
                    f"{what}: saved checkpoint at update {done}{where}" if saved
                    else f"{what} at update {done}: nothing saved (no checkpoint_dir)" if done
                    else f"{what} before the first update finished: nothing to save",
                    update=done, saved=saved, signum=signum, results=results_so_far(state, upto=done),
                )
            eval_returns = None
            if job.eval_episodes:  # an interrupt now is noted but the (finished) run still evaluates
                ekeys = placement.put(eval_keys(seed, num_seeds, indices), placement.seeds)
                eval_returns = placement.gather(evaluate_runs_on_devices(
                    trainer, state, ekeys, job.eval_episodes, deterministic=job.eval_deterministic, max_steps=job.eval_max_steps))
            results = results_so_far(state, eval_returns)
            finished = True
        except KeyboardInterrupt as err:
            if isinstance(err, RunInterrupted):
                raise
            # A second Ctrl-C (or one before the handlers were in place): stop now, keep what was saved. Over
            # several processes the others are not stopping with this one: no collective (no state gathered).
            kept = f"; the last checkpoint is update {last_saved} in {checkpoint_dir}" if last_saved else ""
            raise RunInterrupted(
                f"interrupted at once at update {done}{kept}", update=last_saved or 0, saved=bool(last_saved),
                signum=signal.SIGINT, results=results_so_far(state, upto=done) if state is not None and not multi else None,
            ) from None
        except Exception as err:
            if multi and not isinstance(err, (NonFiniteError, checkpointing.CheckpointError)) and distributed.is_peer_failure(err):
                raise distributed.peer_lost(err, done, last_good()) from None
            raise
        finally:
            if mngr is not None:
                try:
                    mngr.close()
                except Exception:
                    if finished:
                        raise
    return results
