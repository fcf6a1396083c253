"""Run an algorithm over seeds × a hyperparameter grid × devices, in jitted chunks of updates.

``run`` checks every argument, the output directory and a memory estimate before anything compiles,
initializes every (setting, seed) pair in one vmapped call, then advances all of them by ``chunk``
updates per jitted call in a host loop. Between chunks (never inside the hot path) it updates a progress
bar, writes orbax checkpoints, checks for non-finite losses and honours Ctrl-C/SIGTERM (save, then stop).
The seed axis is sharded over the local devices with ``jax.sharding`` (a 1-D mesh named ``seeds``).

Seeds: seed ``i`` of an ``N``-seed run uses ``jax.random.split(jax.random.key(seed), N)[i]``, which does not
depend on ``N`` (jax's partitionable threefry, the default), so ``run(..., num_seeds=N, seed_indices=[i])``
reruns seed ``i`` alone with the same keys (training and evaluation) as in the ``N``-seed run.

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

from purejaxpo import checkpointing, memory, rundir
from purejaxpo.algorithms.registry import Algorithm
from purejaxpo.batching import map_over_runs, resolve_seeds_per_batch
from purejaxpo.chunks import updates_upto
from purejaxpo.evaluation import eval_keys, evaluate_runs
from purejaxpo.interrupts import DeferredInterrupts, RunInterrupted
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
    _seed_mesh,
    _varying,
    run_description,
)
from purejaxpo.loggers import LoggerGroup
from purejaxpo.results import Results, config_dict, env_steps_per_s, hparams_dict
from purejaxpo.types import Trainer, stack_hparams

__all__ = ["NonFiniteError", "Results", "RunInterrupted", "config_dict", "hparams_dict", "run", "run_description"]

STATUS_EVERY_S = 2.0  # refresh status.json at most this often between checkpoints


class NonFiniteError(FloatingPointError):
    """A loss or gradient became NaN/inf; the offending steps were skipped and the run stopped."""

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
) -> Results:
    """Train ``algo`` on ``env`` for ``num_seeds`` seeds (× every setting when ``hparams`` is a list).

    Args:
      algo: an algorithm name (``"ppo"``) or a ready :class:`~purejaxpo.types.Trainer` (then ``config`` and
        ``env_params`` come from it, and ``env`` must be ``None`` or the Trainer's env).
      env: an environment name for :func:`make_env`, or an env object (with ``env_params``).
      hparams: ``None`` (defaults), one HParams, or a list of HParams run side by side as a grid.
      seed / seed_indices: seed ``i`` uses ``split(key(seed), num_seeds)[i]``; ``seed_indices=[i, ...]`` runs
        only those seeds of the ``num_seeds`` family (same keys as in the full run).
      devices: devices to shard the seed axis over (default: all local devices).
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
      loggers: sinks (:mod:`purejaxpo.loggers`: TensorBoard, wandb) fed on the host between chunks, never inside
        the compiled loop; a sink that fails is reported once and dropped, training goes on.

    Raises (before compiling) ``ValueError``/``TypeError`` for bad arguments, :class:`rundir.RunDirError`,
    :class:`checkpointing.CheckpointError` and :class:`memory.InsufficientMemoryError`; while running,
    :class:`NonFiniteError` and :class:`RunInterrupted` (a ``KeyboardInterrupt``; ``.update``, ``.saved``).
    """
    _check_arguments(num_seeds, seed, chunk_updates, checkpoint_every, eval_episodes, eval_max_steps, devices)
    if (checkpoint_every is not None or resume) and checkpoint_dir is None and out is None:
        raise ValueError("checkpoint_every and resume need a checkpoint_dir (or out)")
    if resume and overwrite:
        raise ValueError(f"{terms.resume} and {terms.overwrite} exclude each other")

    trainer, algorithm, env_name = _resolve_trainer(algo, env, config, env_params)
    settings = _as_grid(hparams, algorithm.hparams_cls)
    labels = _labels(settings, sweep_labels)
    indices = _seed_list(num_seeds, seed_indices)
    seeds_run = len(indices) if indices is not None else num_seeds
    grid = len(settings)
    num_updates = trainer.config.num_updates
    if num_updates > MAX_UPDATES:
        raise ValueError(f"total_timesteps={trainer.config.total_timesteps:,} means {num_updates:,} updates; the update "
                         f"counter is int32 (at most {MAX_UPDATES:,}): lower total_timesteps")
    chunk = min(chunk_updates or checkpoint_every or max(1, num_updates // 50), num_updates)
    meta = run_description(algorithm.name, env_name, trainer.config, settings, num_seeds, seed, indices)

    # -- the output directory and checkpoints: checked before anything is written or compiled --
    run_dir = rundir.RunDir(out) if out is not None else None
    if run_dir is not None:
        if resume:
            saved = rundir.check_resumable(out, terms)
            checkpointing.check_meta(saved, meta, where=f"{Path(out) / rundir.CONFIG}")
        else:
            rundir.check_new(out, overwrite=overwrite, terms=terms)
        checkpoint_dir = checkpoint_dir if checkpoint_dir is not None else run_dir.checkpoints
    if checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir)
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

    devices = list(devices) if devices is not None else jax.devices()
    mesh = _seed_mesh(devices, seeds_run)
    per_batch = resolve_seeds_per_batch(seeds_per_batch, grid * seeds_run, devices[0].platform)
    if mesh is not None:
        if per_batch is not None and seeds_per_batch != "auto":
            raise ValueError("seeds_per_batch batches the seeds of one device; with several devices the seed axis "
                             "is already split across them (pass seeds_per_batch=None or one device)")
        per_batch = None

    hp = stack_hparams(settings)
    hp_one = jax.tree.map(lambda x: x[0], hp)
    state_one = jax.eval_shape(trainer.init, jax.random.key(0), hp_one)
    metric_names = list(jax.eval_shape(trainer.update, state_one, hp_one)[1])
    if check_memory:
        est = memory.estimate(state_one, trainer, runs=grid * seeds_run, runs_at_once=per_batch or grid * seeds_run,
                              num_updates=num_updates, chunk=chunk, num_metrics=len(metric_names))
        memory.check(est, devices, batched=per_batch is not None)

    # -- from here on the run writes: config.json and status.json first --
    if run_dir is not None:
        moved = run_dir.create(overwrite=overwrite)
        if moved is not None:
            print(f"moved the previous run in {run_dir.path} to {moved}")
        if not resume or not (run_dir.path / rundir.CONFIG).exists():
            run_dir.write_config({
                **meta, "sweep_labels": labels, "checkpoint_every": checkpoint_every, "eval_episodes": eval_episodes,
                "eval_deterministic": eval_deterministic, "eval_max_steps": eval_max_steps,
                "device_kind": devices[0].device_kind, "num_devices": len(devices), "provenance": provenance(),
            })
        run_dir.write_status("running", update=0, num_updates=num_updates)

    job = _Job(
        trainer, algorithm, env_name, settings, labels, hp, num_seeds, indices, seed, devices, mesh, per_batch, chunk,
        metric_names, meta, checkpoint_dir, checkpoint_every, resume, run_dir, progress, eval_episodes,
        eval_deterministic, eval_max_steps, list(loggers),
    )
    try:
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


def _record_stop(run_dir: rundir.RunDir, err: BaseException, num_updates: int, writing: bool = False) -> None:
    """``status.json`` (and the metrics reached) of a run that stopped early. Best effort, each write on its
    own: the disk may be what failed."""
    partial = getattr(err, "results", None)
    reason = ("writing outputs: " if writing else "") + (
        str(err) if isinstance(err, NonFiniteError) else f"{type(err).__name__}: {err}")
    if isinstance(err, RunInterrupted):
        status = dict(status="interrupted", update=err.update, saved=err.saved, signal=signal.Signals(err.signum).name)
    else:
        status = dict(status="failed", reason=reason, update=num_updates if writing else (partial.num_updates if partial else None))
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


def _train(job: _Job) -> Results:
    """Compile, initialize (or restore), train in chunks, save and evaluate: the part of :func:`run` that
    runs after every check has passed."""
    trainer, algorithm, env_name, settings, labels, hp = job.trainer, job.algorithm, job.env_name, job.settings, job.labels, job.hp
    num_seeds, indices, seed, devices, mesh, per_batch, chunk = (
        job.num_seeds, job.indices, job.seed, job.devices, job.mesh, job.per_batch, job.chunk)
    metric_names, meta, checkpoint_dir, checkpoint_every, resume, run_dir, progress = (
        job.metric_names, job.meta, job.checkpoint_dir, job.checkpoint_every, job.resume, job.run_dir, job.progress)
    grid = len(settings)
    seeds_run = len(indices) if indices is not None else num_seeds
    num_updates = trainer.config.num_updates
    keys = jax.random.split(jax.random.key(seed), num_seeds)
    if indices is not None:
        keys = keys[np.asarray(indices)]
    keys = jnp.broadcast_to(keys, (grid, seeds_run))
    # Every state/metric leaf is [G, S, ...]: shard axis 1 (seeds) over the mesh; hparams are replicated.
    sharding: dict[str, Any] = {}
    if mesh is not None:
        seeds_sharded = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, "seeds"))
        replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
        keys = jax.device_put(keys, seeds_sharded)
        sharding = {"in_shardings": (seeds_sharded, replicated), "out_shardings": (seeds_sharded, seeds_sharded)}
    elif devices != jax.devices()[:1]:
        keys = jax.device_put(keys, devices[0])

    init_fn = jax.jit(
        map_over_runs(trainer.init, per_batch),
        **({"in_shardings": sharding["in_shardings"], "out_shardings": sharding["out_shardings"][0]} if sharding else {}),
    )

    # One compiled program runs any n <= chunk updates (purejaxpo.chunks): a shorter last chunk, a checkpoint
    # boundary or a resume never compiles again.
    run_upto = updates_upto(trainer.update, chunk)
    chunk_sharding = {}
    if sharding:
        chunk_sharding = {"in_shardings": (*sharding["in_shardings"], replicated), "out_shardings": sharding["out_shardings"]}
    compiled: list[Any] = []
    compile_s = 0.0

    def chunk_fn(state: Any) -> Any:
        nonlocal compile_s
        if not compiled:
            start = time.perf_counter()
            fn = jax.jit(lambda s, h, n: map_over_runs(lambda s1, h1: run_upto(s1, h1, n), per_batch)(s, h),
                         donate_argnums=(0,), **chunk_sharding)
            compiled.append(fn.lower(state, hp, np.int32(chunk)).compile())
            compile_s += time.perf_counter() - start
        return compiled[0]

    metrics = {name: np.full((grid, seeds_run, num_updates), np.nan, np.float32) for name in metric_names}
    started = time.perf_counter()
    timeline: list[tuple[int, float]] = []  # (updates done, seconds since started) at every chunk end
    sinks = LoggerGroup(job.loggers)
    done = 0
    last_saved: int | None = None
    run_s = 0.0

    def results_so_far(state: Any, eval_returns: np.ndarray | None = None, upto: int | None = None) -> Results:
        full = Results(
            algo=algorithm.name, env_name=env_name, config=trainer.config, hparams=settings, num_seeds=seeds_run,
            metrics=metrics, state=state, compile_s=compile_s, run_s=run_s, eval_returns=eval_returns,
            sweep_labels=labels, seed=seed, seed_indices=indices, start_update=start_update,
            steps_per_update=trainer.config.batch_size, timeline=list(timeline),
        )
        return full if upto is None or upto == num_updates else full.truncated(upto)

    with DeferredInterrupts("finishing this chunk of updates, then saving a checkpoint") as interrupts:
        start_update = 0
        state = mngr = None
        try:
            start = time.perf_counter()
            if progress:  # the first compile takes seconds (minutes for big networks): say so before it starts
                print(f"compiling {algorithm.name} on {env_name} ({grid * seeds_run} run(s))…", file=sys.stderr, flush=True)
            init_compiled = init_fn.lower(keys, hp).compile()
            compile_s += time.perf_counter() - start
            state = init_compiled(keys, hp)

            if checkpoint_dir is not None:
                if resume and checkpoint_dir.is_dir():
                    restored = checkpointing.restore_latest(checkpoint_dir, state, metrics, meta)
                    for line in restored.notes(checkpoint_dir):
                        print(line)
                    if restored.step is None and restored.skipped:
                        raise checkpointing.CheckpointError(
                            f"no checkpoint in {checkpoint_dir} restores (" + "; ".join(f"{st}: {why}" for st, why in restored.skipped)
                            + f"); they were moved to {restored.moved_to}. Resume again to start from update 0"
                        )
                    if restored.step is not None:
                        done, state, metrics = restored.step, restored.state, restored.metrics
                        last_saved = done
                        if sharding:
                            state = jax.device_put(state, sharding["out_shardings"][0])
                elif resume:
                    print(f"no checkpoint in {checkpoint_dir}: starting from update 0")
                else:
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
            if progress:
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
            try:
                while done < num_updates and not interrupts.requested:
                    length = min(chunk, num_updates - done)
                    if checkpoint_every is not None:  # land on every checkpoint boundary, also after a resume
                        length = min(length, checkpoint_every - done % checkpoint_every)
                    fn = chunk_fn(state)
                    start = time.perf_counter()
                    new_state, chunk_metrics = fn(state, hp, np.int32(length))
                    chunk_metrics = {k: v[..., :length] for k, v in jax.device_get(chunk_metrics).items()}
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
                            f"{indices[s] if indices else s}); {int(bad.sum())} update(s) affected. Those gradient steps "
                            f"were skipped; lower the learning rate or check the environment's rewards"
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
            if interrupts.requested and done < num_updates:
                where = f" in {checkpoint_dir}" if saved else ""
                raise RunInterrupted(
                    f"interrupted: saved checkpoint at update {done}{where}" if saved
                    else f"interrupted at update {done}: nothing saved (no checkpoint_dir)" if done
                    else "interrupted before the first update finished: nothing to save",
                    update=done, saved=saved, signum=interrupts.signum, results=results_so_far(state, upto=done),
                )
            eval_returns = None
            if job.eval_episodes:  # an interrupt now is noted but the (finished) run still evaluates
                ekeys = eval_keys(seed, num_seeds, indices)
                eval_returns = evaluate_runs(trainer, state, ekeys, job.eval_episodes, deterministic=job.eval_deterministic,
                                             max_steps=job.eval_max_steps)
        except KeyboardInterrupt as err:
            if isinstance(err, RunInterrupted):
                raise
            # A second Ctrl-C (or one before the handlers were in place): stop now, keep what was saved.
            kept = f"; the last checkpoint is update {last_saved} in {checkpoint_dir}" if last_saved else ""
            raise RunInterrupted(
                f"interrupted at once at update {done}{kept}", update=last_saved or 0, saved=bool(last_saved),
                signum=signal.SIGINT, results=results_so_far(state, upto=done) if state is not None else None,
            ) from None
        finally:
            if mngr is not None:
                mngr.close()
    return results_so_far(state, eval_returns)
