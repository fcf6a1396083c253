"""Orbax checkpoints of a whole run: the trainer state pytree (stacked over grid × seeds), the metrics
so far (item "history": orbax reserves "metrics"), and a JSON description (algorithm, env, config,
hyperparameters, seeds) that a resume must match.

PRNG keys are stored as their raw ``uint32`` data and re-wrapped on restore, so a resumed run continues
the exact random stream of the uninterrupted one.

Faults: a save that died half-way leaves a ``<step>.orbax-checkpoint-tmp-*`` directory, which
:func:`clean_partial` removes (it never held a finished checkpoint). :func:`restore_latest` tries the
finished steps newest first; one that does not restore (truncated array data, a damaged manifest, a
missing item) is moved aside to ``<dir>-damaged/<step>`` (kept, never deleted) and named with the reason,
and the next older one is tried.

Several processes (``jax.distributed``): every process saves its shards of the state into the same
(shared) directory, so :func:`save` and the state restore are collective — every process calls them, in
the same order (orbax synchronises them with barriers). Reading a checkpoint's description only
(:func:`read_meta`) is local to the calling process. :func:`restore_latest` takes an ``agree`` function
so that all processes settle on the same step: a step counts only if it restores on every process.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np
import orbax.checkpoint as ocp

TMP_MARKER = ".orbax-checkpoint-tmp"


class CheckpointError(RuntimeError):
    """A checkpoint directory is missing, corrupt or belongs to a different run."""


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _keys_to_data(tree: Any) -> Any:
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def _key_impl(ref: Any) -> Any:
    # an abstract reference (jax.eval_shape) has no impl to ask: the runner's keys use the default one
    return jax.random.key_impl(ref if isinstance(ref, jax.Array) else jax.random.key(0))


def _data_to_keys(tree: Any, like: Any) -> Any:
    return jax.tree.map(lambda x, ref: jax.random.wrap_key_data(x, impl=_key_impl(ref)) if _is_key(ref) else x, tree, like)


def _abstract(tree: Any) -> Any:
    """Restore targets for ``tree`` (concrete arrays or ``jax.eval_shape`` output): key leaves as their
    ``uint32`` data, with the reference's sharding (one local device when it has none)."""
    data = jax.eval_shape(_keys_to_data, tree)
    default = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    return jax.tree.map(
        lambda x, ref: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(ref, "sharding", None) or default), data, tree
    )


def manager(directory: str | Path, max_to_keep: int | None = 3) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
    handlers = {
        "state": ocp.StandardCheckpointHandler(),
        "history": ocp.StandardCheckpointHandler(),
        "meta": ocp.JsonCheckpointHandler(),
    }
    return ocp.CheckpointManager(Path(directory).absolute(), options=options, item_handlers=handlers)


def _reader(directory: str | Path) -> ocp.CheckpointManager:
    """A manager to read with; with several processes local to this one (no barriers: any process may
    read a description on its own)."""
    if jax.process_count() == 1:
        return manager(directory)
    me = jax.process_index()
    options = ocp.CheckpointManagerOptions(
        create=False, save_root_metadata=False,  # (not read_only=True: orbax logs two warnings per manager)
        multiprocessing_options=ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me}),
    )
    return ocp.CheckpointManager(Path(directory).absolute(), options=options, item_handlers={"meta": ocp.JsonCheckpointHandler()})


def save(mngr: ocp.CheckpointManager, step: int, state: Any, metrics: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Save ``state``, ``metrics`` (host arrays) and ``meta`` (JSON) as checkpoint ``step``; waits for the write
    (orbax writes into a temporary directory and renames it when complete)."""
    mngr.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(_keys_to_data(state)),
            history=ocp.args.StandardSave({k: np.asarray(v) for k, v in metrics.items()}),
            meta=ocp.args.JsonSave(meta),
        ),
        force=True,
    )
    mngr.wait_until_finished()


def finished_steps(directory: str | Path) -> list[int]:
    """Steps with a finished checkpoint directory (integer names), oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(int(p.name) for p in directory.iterdir() if p.is_dir() and p.name.isdigit())


def partial_saves(directory: str | Path) -> list[Path]:
    """Directories a save left unfinished (the process died during it)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if TMP_MARKER in p.name)


def clean_partial(directory: str | Path) -> list[str]:
    """Remove unfinished saves from ``directory``; returns their names."""
    removed = []
    for path in partial_saves(directory):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        removed.append(path.name)
    return removed


def holds_checkpoints(directory: str | Path) -> bool:
    """True when ``directory`` holds anything besides unfinished saves."""
    directory = Path(directory)
    return directory.is_dir() and any(TMP_MARKER not in p.name for p in directory.iterdir())


def _short(err: BaseException) -> str:
    """One line of an orbax/TensorStore error (they run to kilobytes of spec)."""
    text = str(err).split("See full TensorStore details")[0]
    text = " ".join(text.split())
    return f"{type(err).__name__}: {text[:200]}{'…' if len(text) > 200 else ''}"


def read_meta(directory: str | Path, step: int | None = None) -> tuple[int, dict[str, Any]]:
    """``(step, meta)`` of checkpoint ``step`` (default: the newest finished one); :class:`CheckpointError`
    if there is none or it is unreadable."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"no checkpoint directory at {directory}")
    steps = finished_steps(directory)
    if not steps:
        raise CheckpointError(f"{directory} holds no checkpoint")
    step = steps[-1] if step is None else step
    mngr = _reader(directory)
    try:
        meta = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
    except Exception as err:  # orbax raises many types for unreadable data
        raise CheckpointError(f"checkpoint {step} in {directory} is unreadable ({_short(err)})") from None
    finally:
        mngr.close()
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {step} in {directory} has no run description")
    return step, meta


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def differences(found: Any, expected: Any, prefix: str = "") -> list[str]:
    """``"key: checkpoint has X, this run has Y"`` for every differing leaf (nested keys as ``config.lr``,
    list entries as ``hparams[0].lr``)."""
    if isinstance(found, dict) and isinstance(expected, dict):
        out = []
        for key in list(expected) + [k for k in found if k not in expected]:
            name = f"{prefix}.{key}" if prefix else str(key)
            if key not in found:
                out.append(f"{name}: missing in the checkpoint, this run has {expected[key]!r}")
            elif key not in expected:
                out.append(f"{name}: checkpoint has {found[key]!r}, this run has no such key")
            else:
                out.extend(differences(found[key], expected[key], name))
        return out
    if isinstance(found, list) and isinstance(expected, list) and len(found) == len(expected) and any(
        isinstance(x, (dict, list)) for x in found
    ):
        return [d for i, (f, e) in enumerate(zip(found, expected)) for d in differences(f, e, f"{prefix}[{i}]")]
    return [] if _json(found) == _json(expected) else [f"{prefix}: checkpoint has {found!r}, this run has {expected!r}"]


def check_meta(found: dict[str, Any], expected: dict[str, Any], where: str = "checkpoint") -> None:
    """Raise :class:`CheckpointError` naming every field where a saved run differs from this one."""
    diffs = differences({k: found.get(k) for k in expected}, expected)
    if diffs:
        shown = "; ".join(diffs[:8]) + (f"; and {len(diffs) - 8} more" if len(diffs) > 8 else "")
        raise CheckpointError(f"{where} belongs to a different run: {shown}")


@dataclass
class Restored:
    """What :func:`restore_latest` found: the step restored (``None``: start from scratch) and what was skipped."""

    step: int | None
    state: Any = None
    metrics: dict[str, np.ndarray] | None = None
    skipped: list[tuple[int, str]] = field(default_factory=list)
    moved_to: Path | None = None
    partial_removed: list[str] = field(default_factory=list)

    def notes(self, directory: str | Path) -> list[str]:
        """Human-readable lines: removed unfinished saves, skipped damaged steps, where they went."""
        lines = [f"removed unfinished checkpoint save {name} in {directory}" for name in self.partial_removed]
        lines += [f"skipped damaged checkpoint {step} ({reason})" for step, reason in self.skipped]
        if self.moved_to is not None and self.skipped:
            lines.append(f"moved the damaged checkpoint(s) to {self.moved_to}")
        if self.step is None and not self.skipped:
            lines.append(f"no finished checkpoint in {directory}: starting from update 0")
        return lines


def damaged_dir(directory: str | Path) -> Path:
    directory = Path(directory)
    return directory.with_name(f"{directory.name}-damaged")


def _move_aside(directory: Path, step: int) -> Path:
    target_root = damaged_dir(directory)
    target_root.mkdir(parents=True, exist_ok=True)
    target = target_root / str(step)
    if target.exists():
        target = target_root / f"{step}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    os.rename(directory / str(step), target)
    return target_root


def restore_latest(
    directory: str | Path, state_like: Any, metrics_like: dict[str, Any], expected_meta: dict[str, Any], *, repair: bool = True,
    agree: Callable[[bool], bool] | None = None,
) -> Restored:
    """Restore the newest checkpoint of ``directory`` that matches ``expected_meta`` and restores into the
    shapes of ``state_like``/``metrics_like``.

    Unfinished saves are removed; damaged steps (unreadable description or data) are moved aside and
    listed in ``Restored.skipped``; a readable description of a *different* run raises
    :class:`CheckpointError` (that is not damage, and older steps of the same directory are no better).
    ``repair=False`` only reads: damaged steps are skipped but left in place, unfinished saves kept.

    ``agree(ok) -> bool`` (several processes): every process calls it after each attempt with its own
    verdict and gets whether the step passed on all of them, so they restore the same step; a step that
    failed only elsewhere is skipped as "damaged on another process". Only the process given
    ``repair=True`` (process 0) removes or moves anything, and only after every process tried the step.
    """
    agree = agree or (lambda ok: ok)
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"no checkpoint directory at {directory}")
    result = Restored(step=None, partial_removed=clean_partial(directory) if repair else [])
    move_aside = (lambda step: _move_aside(directory, step)) if repair else (lambda step: None)
    abstract_state = _abstract(state_like)
    abstract_metrics = {k: ocp.utils.to_shape_dtype_struct(np.asarray(v)) for k, v in metrics_like.items()}
    elsewhere = "damaged on another process"
    for step in reversed(finished_steps(directory)):
        why = None
        try:
            _, meta = read_meta(directory, step)
        except CheckpointError as err:
            why = str(err).split(" is unreadable ")[-1].strip("()") or str(err)
        if not agree(why is None):
            result.skipped.append((step, why or elsewhere))
            result.moved_to = move_aside(step)
            continue
        check_meta(meta, expected_meta, where=f"checkpoint {step} in {directory}")
        mngr = manager(directory)
        try:
            restored = mngr.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract_state), history=ocp.args.StandardRestore(abstract_metrics)
                ),
            )
        except Exception as err:  # truncated data, damaged manifest, a missing item, shape mismatch
            why = _short(err)
        finally:
            mngr.close()
        if not agree(why is None):
            result.skipped.append((step, why or elsewhere))
            result.moved_to = move_aside(step)
            continue
        result.step = step
        result.state = _data_to_keys(restored.state, state_like)
        result.metrics = {k: np.asarray(v) for k, v in restored.history.items()}
        return result
    return result


def latest_meta(directory: str | Path) -> tuple[int, dict[str, Any]] | None:
    """``(step, meta)`` of the newest finished checkpoint whose description reads (no data is read);
    ``None`` when there is none. Used to refuse a different run before anything compiles."""
    for step in reversed(finished_steps(directory)):
        try:
            return read_meta(directory, step)
        except CheckpointError:
            continue
    return None
