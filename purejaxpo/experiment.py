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
import time
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from purejaxpo import checkpointing, memory, rundir
from purejaxpo.algorithms.registry import Algorithm, check_action_kind, get_algorithm
from purejaxpo.batching import map_over_runs, resolve_seeds_per_batch
from purejaxpo.environments import make_env
from purejaxpo.evaluation import eval_keys, evaluate_runs
from purejaxpo.interrupts import DeferredInterrupts, RunInterrupted
from purejaxpo.provenance import provenance
from purejaxpo.results import Results, config_dict, hparams_dict
from purejaxpo.types import Trainer, stack_hparams

__all__ = ["NonFiniteError", "Results", "RunInterrupted", "config_dict", "hparams_dict", "run", "run_description"]

MAX_SEED = 2**32 - 2  # jax keys take the low 32 bits (x64 off): larger seeds would alias; eval uses seed + 1
MAX_UPDATES = 2**31 - 1  # update counters are int32
STATUS_EVERY_S = 2.0  # refresh status.json at most this often between checkpoints


class NonFiniteError(FloatingPointError):
    """A loss or gradient became NaN/inf; the offending steps were skipped and the run stopped."""

    results: Results | None = None


def _algorithm_for(trainer: Trainer) -> Algorithm:
    """The registry entry named by ``trainer.algorithm`` (set by every ``make_train``)."""
    if not trainer.algorithm:
        raise ValueError(
            f"this Trainer does not name its algorithm (Trainer.algorithm is empty; config type "
            f"{type(trainer.config).__name__}); build it with a registered make_train"
        )
    return get_algorithm(trainer.algorithm)


def _as_grid(hparams: Any, hparams_cls: type) -> list[Any]:
    if hparams is None:
        return [hparams_cls()]
    settings = list(hparams) if isinstance(hparams, (list, tuple)) else [hparams]
    if not settings:
        raise ValueError("hparams grid is empty")
    for hp in settings:
        if not isinstance(hp, hparams_cls):
            raise TypeError(f"hparams must be {hparams_cls.__name__} (or a list of them), got {type(hp).__name__}")
        hp.validate()
    return settings


def _seed_mesh(devices: list[Any], num_seeds: int) -> Any:
    if len(devices) <= 1:
        return None
    if num_seeds % len(devices):
        raise ValueError(f"num_seeds={num_seeds} must be a multiple of the number of devices ({len(devices)})")
    return jax.sharding.Mesh(np.asarray(devices), ("seeds",))


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_arguments(num_seeds: Any, seed: Any, chunk_updates: Any, checkpoint_every: Any, eval_episodes: Any,
                     eval_max_steps: Any, devices: Any) -> None:
    """``ValueError``/``TypeError`` for scalar arguments of :func:`run`, before anything is built."""
    if not _is_int(num_seeds) or num_seeds <= 0:
        raise ValueError(f"num_seeds must be a positive integer, got {num_seeds!r}")
    if not _is_int(seed) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer in [0, {MAX_SEED}] (jax keys hold 32 bits), got {seed!r}")
    for name, value in (("chunk_updates", chunk_updates), ("checkpoint_every", checkpoint_every), ("eval_max_steps", eval_max_steps)):
        if value is not None and (not _is_int(value) or value <= 0):
            raise ValueError(f"{name} must be a positive integer (or None), got {value!r}")
    if not _is_int(eval_episodes) or eval_episodes < 0:
        raise ValueError(f"eval_episodes must be an integer >= 0, got {eval_episodes!r}")
    if devices is not None:
        devices = list(devices)
        if not devices:
            raise ValueError("devices is empty: pass None (all local devices) or a non-empty list of jax devices")
        if not all(isinstance(d, jax.Device) for d in devices):
            raise TypeError(f"devices must be jax devices (e.g. jax.devices()[:2]), got {[type(d).__name__ for d in devices]}")


def _seed_list(num_seeds: int, seed_indices: Sequence[int] | None) -> list[int] | None:
    if seed_indices is None:
        return None
    indices = [int(i) if _is_int(i) else i for i in seed_indices]
    if not indices or not all(_is_int(i) and 0 <= i < num_seeds for i in indices):
        raise ValueError(f"seed_indices must be a non-empty list of integers in [0, {num_seeds}), got {list(seed_indices)!r}")
    if len(set(indices)) != len(indices):
        raise ValueError(f"seed_indices has repeated entries: {indices}")
    return indices


def _resolve_trainer(algo: Any, env: Any, config: Any, env_params: Any) -> tuple[Trainer, Algorithm, str]:
    """``(trainer, registry entry, env name)`` from an algorithm name + env or a ready Trainer."""
    if isinstance(algo, Trainer):
        trainer = algo
        algorithm = _algorithm_for(trainer)
        if config is not None and config != trainer.config:
            raise ValueError("config comes from the Trainer; pass config=None (or build the Trainer with this config)")
        if env_params is not None and env_params is not trainer.env_params:
            raise ValueError("env_params comes from the Trainer; pass env_params=None")
        check_action_kind(algorithm, trainer.env, trainer.env_params)
        return trainer, algorithm, _trainer_env_name(trainer, env)
    if not isinstance(algo, str):
        raise TypeError(f"algo must be an algorithm name or a Trainer, got {type(algo).__name__}")
    algorithm = get_algorithm(algo)
    if env is None:
        raise ValueError("run(algo_name, env) needs an environment")
    env_name = env if isinstance(env, str) else getattr(env, "name", type(env).__name__)
    if isinstance(env, str):
        env, default_params = make_env(env)
        env_params = default_params if env_params is None else env_params
    if config is None:
        config = algorithm.config_cls()
    elif not isinstance(config, algorithm.config_cls) or getattr(type(config), "algorithm_name", algorithm.name) != algorithm.name:
        raise TypeError(f"config for {algorithm.name} must be a {algorithm.config_cls.__name__}, got {type(config).__name__}")
    check_action_kind(algorithm, env, env_params)
    trainer = algorithm.make_train(config, env, env_params)
    return trainer, _algorithm_for(trainer), env_name


def _trainer_env_name(trainer: Trainer, env: Any) -> str:
    """The name to record for a Trainer's env; ``env`` (a name or the env itself) must be that env."""
    own = getattr(trainer.env, "name", None)
    if env is None:
        return own or type(trainer.env).__name__
    if not isinstance(env, str):
        if env is not trainer.env:
            raise ValueError("env must be the Trainer's own env (or None) when algo is a Trainer")
        return own or type(env).__name__
    if own is not None and own.lower() in (env.lower(), env.split("/")[-1].lower()):
        return env
    made, _ = make_env(env)
    if type(made) is not type(trainer.env) or getattr(made, "name", None) != own:
        raise ValueError(
            f"this Trainer was built on {own or type(trainer.env).__name__}, not {env!r}: pass env=None to use the "
            f"Trainer's env, or build a Trainer for {env!r}"
        )
    return env


def _labels(settings: list[Any], sweep_labels: Sequence[str] | None) -> list[str]:
    """One unique label per setting (``[]`` for a single setting without labels)."""
    grid = len(settings)
    if sweep_labels is not None:
        labels = [str(s) for s in sweep_labels]
        if len(labels) != grid:
            raise ValueError(f"sweep_labels has {len(labels)} entries for {grid} hyperparameter settings")
        if len(set(labels)) != len(labels):
            raise ValueError(f"sweep_labels must be unique, got {labels}")
        return labels
    if grid == 1:
        return []
    varying = _varying(settings)
    for fmt in ("{:g}", "{!r}"):
        labels = [", ".join(f"{k}={fmt.format(v)}" for k, v in d.items()) for d in varying]
        if len(set(labels)) == grid:
            return labels
    return [f"{g}: {label}" if label else str(g) for g, label in enumerate(labels)]


def _varying(settings: list[Any]) -> list[dict[str, float]]:
    """Per setting, only the hyperparameters that differ across the grid (for legend labels)."""
    dicts = [hparams_dict(s) for s in settings]
    keys = [k for k in dicts[0] if len({d[k] for d in dicts}) > 1]
    return [{k: d[k] for k in keys} for d in dicts]


def run_description(algorithm: str, env_name: str, config: Any, settings: list[Any], num_seeds: int, seed: int,
                    seed_indices: list[int] | None) -> dict[str, Any]:
    """What identifies a run (stored in every checkpoint and in ``config.json``): a resume must match it."""
    return {
        "algo": algorithm,
        "env": env_name,
        "config": config_dict(config),
        "hparams": [hparams_dict(s) for s in settings],
        "num_seeds": num_seeds,
        "seed": seed,
        "seed_indices": seed_indices,
    }


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

    results: Results | None = None
    try:
        results = _train(
            trainer, algorithm, env_name, settings, labels, hp, num_seeds, indices, seed, devices, mesh, per_batch,
            chunk, metric_names, meta, checkpoint_dir, checkpoint_every, resume, run_dir, progress, eval_episodes,
            eval_deterministic, eval_max_steps,
        )
    except (RunInterrupted, NonFiniteError) as err:
        if run_dir is not None:
            partial = err.results
            _write_quietly(lambda: partial is not None and partial.num_updates and run_dir.write_metrics(partial))
            if isinstance(err, RunInterrupted):
                _write_quietly(lambda: run_dir.write_status("interrupted", update=err.update, saved=err.saved,
                                                            num_updates=num_updates, signal=signal.Signals(err.signum).name))
            else:
                _write_quietly(lambda: run_dir.write_status("failed", reason=str(err), num_updates=num_updates,
                                                            update=partial.num_updates if partial else None))
        raise
    except BaseException as err:
        if run_dir is not None:
            _write_quietly(lambda: run_dir.write_status("failed", reason=f"{type(err).__name__}: {err}", num_updates=num_updates))
        raise
    if run_dir is not None:
        try:
            results.out, results.provenance = run_dir.path, provenance()
            run_dir.write_metrics(results)
            run_dir.write_curves(results)
            run_dir.write_summary(results.summary())
        except BaseException as err:
            _write_quietly(lambda: run_dir.write_status(
                "failed", reason=f"writing outputs: {type(err).__name__}: {err}", update=num_updates, num_updates=num_updates))
            raise
        run_dir.write_status("done", update=num_updates, num_updates=num_updates)
    return results


def _write_quietly(write: Any) -> None:
    """Best-effort write of a failure record (the disk may be what failed)."""
    try:
        write()
    except Exception:
        pass


def _train(
    trainer: Trainer, algorithm: Algorithm, env_name: str, settings: list[Any], labels: list[str], hp: Any,
    num_seeds: int, indices: list[int] | None, seed: int, devices: list[Any], mesh: Any, per_batch: int | None,
    chunk: int, metric_names: list[str], meta: dict[str, Any], checkpoint_dir: Path | None,
    checkpoint_every: int | None, resume: bool, run_dir: rundir.RunDir | None, progress: bool, eval_episodes: int,
    eval_deterministic: bool, eval_max_steps: int | None,
) -> Results:
    """Compile, initialize (or restore), train in chunks, save and evaluate: the part of :func:`run` that
    runs after every check has passed."""
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

    def updates(state: Any, hp_one: Any, length: int) -> tuple[Any, dict[str, jax.Array]]:
        return jax.lax.scan(lambda s, _: trainer.update(s, hp_one), state, None, length=length)

    compiled: dict[int, Any] = {}
    compile_s = 0.0

    def chunk_fn(length: int, state: Any) -> Any:
        nonlocal compile_s
        if length not in compiled:
            start = time.perf_counter()
            fn = jax.jit(map_over_runs(lambda s, h: updates(s, h, length), per_batch), donate_argnums=(0,), **sharding)
            compiled[length] = fn.lower(state, hp).compile()
            compile_s += time.perf_counter() - start
        return compiled[length]

    metrics = {name: np.full((grid, seeds_run, num_updates), np.nan, np.float32) for name in metric_names}
    done = 0
    last_saved: int | None = None
    run_s = 0.0

    def results_so_far(state: Any, eval_returns: np.ndarray | None = None, upto: int | None = None) -> Results:
        full = Results(
            algo=algorithm.name, env_name=env_name, config=trainer.config, hparams=settings, num_seeds=seeds_run,
            metrics=metrics, state=state, compile_s=compile_s, run_s=run_s, eval_returns=eval_returns,
            sweep_labels=labels, seed=seed, seed_indices=indices, start_update=start_update,
            steps_per_update=trainer.config.batch_size,
        )
        return full if upto is None or upto == num_updates else full.truncated(upto)

    with DeferredInterrupts("finishing this chunk of updates, then saving a checkpoint") as interrupts:
        start_update = 0
        state = None
        try:
            start = time.perf_counter()
            init_compiled = init_fn.lower(keys, hp).compile()
            compile_s += time.perf_counter() - start
            state = init_compiled(keys, hp)

            mngr = None
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

                bar = tqdm(total=num_updates, initial=done, unit="upd", desc=f"{algorithm.name} {env_name}", dynamic_ncols=True)
            steps_per_update = trainer.config.batch_size * grid * seeds_run
            last_status = float("-inf")  # the first chunk always refreshes status.json
            try:
                while done < num_updates and not interrupts.requested:
                    length = min(chunk, num_updates - done)
                    if checkpoint_every is not None:  # land on every checkpoint boundary, also after a resume
                        length = min(length, checkpoint_every - done % checkpoint_every)
                    fn = chunk_fn(length, state)
                    start = time.perf_counter()
                    new_state, chunk_metrics = fn(state, hp)
                    chunk_metrics = jax.device_get(chunk_metrics)
                    elapsed = time.perf_counter() - start
                    run_s += elapsed
                    state = new_state
                    for name, values in chunk_metrics.items():
                        metrics[name][..., done : done + length] = values
                    done += length
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
                    if bar is not None:
                        recent = chunk_metrics["episode_return"]
                        bar.update(length)
                        bar.set_postfix(
                            {"return": f"{np.nanmean(recent) if np.isfinite(recent).any() else float('nan'):.1f}",
                             "steps/s": f"{steps_per_update * length / max(elapsed, 1e-9):,.0f}"},
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
            if eval_episodes:  # an interrupt now is noted but the (finished) run still evaluates
                ekeys = eval_keys(seed, num_seeds, indices)
                eval_returns = evaluate_runs(trainer, state, ekeys, eval_episodes, deterministic=eval_deterministic,
                                             max_steps=eval_max_steps)
        except KeyboardInterrupt as err:
            if isinstance(err, RunInterrupted):
                raise
            # A second Ctrl-C (or one before the handlers were in place): stop now, keep what was saved.
            kept = f"; the last checkpoint is update {last_saved} in {checkpoint_dir}" if last_saved else ""
            raise RunInterrupted(
                f"interrupted at once at update {done}{kept}", update=last_saved or 0, saved=bool(last_saved),
                signum=signal.SIGINT, results=results_so_far(state, upto=done) if state is not None else None,
            ) from None
    return results_so_far(state, eval_returns)
