"""Helpers shared by the suite adapters: auto-reset selection and unknown-id errors."""

from __future__ import annotations

import difflib
from typing import Any, Iterable

import jax
import jax.numpy as jnp


def tree_where(cond: jax.Array, on_true: Any, on_false: Any) -> Any:
    """Leafwise ``where(cond, on_true, on_false)`` over two pytrees of one structure (``cond`` scalar)."""
    return jax.tree.map(lambda a, b: jnp.where(cond, a, b), on_true, on_false)


def unknown_id_error(suite: str, env_id: str, known: Iterable[str]) -> ValueError:
    """A one-line ``ValueError`` for an id the suite does not have, naming close matches."""
    close = difflib.get_close_matches(env_id, sorted(known), n=5, cutoff=0.4)
    hint = f" Did you mean: {', '.join(f'{suite}/{c}' for c in close)}?" if close else ""
    return ValueError(f"unknown {suite} environment {env_id!r}.{hint}")
