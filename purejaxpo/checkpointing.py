"""Orbax checkpoints of a whole run: the trainer state pytree (stacked over grid × seeds), the metrics
so far (item "history": orbax reserves "metrics"), and a JSON description (algorithm, env, config, hyperparameters, seeds) that a resume must match.

PRNG keys are stored as their raw ``uint32`` data and re-wrapped on restore, so a resumed run continues
the exact random stream of the uninterrupted one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
    """A checkpoint directory is missing, corrupt or belongs to a different run."""


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _keys_to_data(tree: Any) -> Any:
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def _data_to_keys(tree: Any, like: Any) -> Any:
    return jax.tree.map(lambda x, ref: jax.random.wrap_key_data(x, impl=jax.random.key_impl(ref)) if _is_key(ref) else x, tree, like)


def manager(directory: str | Path, max_to_keep: int | None = 3) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
    handlers = {
        "state": ocp.StandardCheckpointHandler(),
        "history": ocp.StandardCheckpointHandler(),
        "meta": ocp.JsonCheckpointHandler(),
    }
    return ocp.CheckpointManager(Path(directory).absolute(), options=options, item_handlers=handlers)


def save(mngr: ocp.CheckpointManager, step: int, state: Any, metrics: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Save ``state``, ``metrics`` (host arrays) and ``meta`` (JSON) as checkpoint ``step``; waits for the write."""
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


def read_meta(directory: str | Path) -> tuple[int, dict[str, Any]]:
    """``(latest step, meta)`` of a checkpoint directory; :class:`CheckpointError` if there is none."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"no checkpoint directory at {directory}")
    mngr = manager(directory)
    step = mngr.latest_step()
    if step is None:
        raise CheckpointError(f"{directory} holds no checkpoint")
    try:
        meta = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
    except Exception as err:  # orbax raises many types for unreadable data
        raise CheckpointError(f"checkpoint {step} in {directory} is unreadable: {err}") from err
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {step} in {directory} has no run description")
    return step, meta


def check_meta(found: dict[str, Any], expected: dict[str, Any]) -> None:
    """Raise :class:`CheckpointError` naming every field where a checkpoint's run differs from this one."""
    diffs = [
        f"{key}: checkpoint has {found.get(key)!r}, this run has {value!r}"
        for key, value in expected.items()
        if json.loads(json.dumps(found.get(key))) != json.loads(json.dumps(value))
    ]
    if diffs:
        raise CheckpointError("checkpoint belongs to a different run:\n  " + "\n  ".join(diffs))


def restore(directory: str | Path, state_like: Any, metrics_like: dict[str, Any]) -> tuple[int, Any, dict[str, np.ndarray]]:
    """Restore the latest ``(step, state, metrics)`` shaped like ``state_like``/``metrics_like``."""
    mngr = manager(directory)
    step = mngr.latest_step()
    if step is None:
        raise CheckpointError(f"{directory} holds no checkpoint")
    abstract_state = jax.tree.map(ocp.utils.to_shape_dtype_struct, _keys_to_data(state_like))
    abstract_metrics = {k: ocp.utils.to_shape_dtype_struct(np.asarray(v)) for k, v in metrics_like.items()}
    try:
        restored = mngr.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_state), history=ocp.args.StandardRestore(abstract_metrics)
            ),
        )
    except Exception as err:
        raise CheckpointError(f"checkpoint {step} in {directory} does not match this run's state: {err}") from err
    return step, _data_to_keys(restored.state, state_like), {k: np.asarray(v) for k, v in restored.history.items()}
