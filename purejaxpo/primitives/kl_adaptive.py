"""KL-adaptive learning rate (SKRL's ``KLAdaptiveLR`` rule) driven by a running mean of the update's KL, as
PolicyFlow's released agent drives it (Yang, Liu & Chen, arXiv:2602.01156; ``agents/policyflow/policyflow.py``
``update`` [C]): the list of per-minibatch KLs is created once per update, and after every epoch the scheduler
steps with the mean of **all entries so far in this update** (epochs 1..e), not with the epoch's own mean.

With the same number of minibatches in every epoch, that mean is the mean of the epoch means so far, so the
carried state is a sum and a count (:class:`RunningKL`, reset at the start of each update).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


class RunningKL(NamedTuple):
    """Sum and count of the epoch-mean KLs of the current update (scalars)."""

    total: Array
    count: Array


def running_kl_init() -> RunningKL:
    """An empty running mean (the start of an update)."""
    return RunningKL(jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32))


def running_kl_update(running: RunningKL, epoch_kl: Array) -> tuple[RunningKL, Array]:
    """Add one epoch's mean KL; returns the new state and the running mean over the epochs so far."""
    running = RunningKL(running.total + epoch_kl, running.count + 1.0)
    return running, running.total / running.count


def kl_adaptive_lr(
    lr: Array,
    kl: Array,
    desired_kl: float | Array = 0.01,
    factor: float | Array = 1.5,
    min_lr: float | Array = 1e-6,
    max_lr: float | Array = 1e-2,
) -> Array:
    """SKRL-style KL-adaptive learning rate (the factor and clamps are SKRL's defaults, assumed [P]: the
    reference's ``utils/kl_adaptive.py`` could not be read)::

        lr ← lr / factor  if KL > 2·desired_kl;   lr ← lr · factor  if KL < desired_kl / 2;   clip to [min, max]
    """
    lr = jnp.where(kl > 2.0 * desired_kl, lr / factor, jnp.where(kl < 0.5 * desired_kl, lr * factor, lr))
    return jnp.clip(lr, min_lr, max_lr)


def adapt_lr_on_running_kl(running: RunningKL, lr: Array, epoch_kl: Array, hp: object) -> tuple[RunningKL, Array]:
    """One epoch's step of the schedule: update the running mean with ``epoch_kl`` and adapt ``lr`` on it.
    ``hp`` supplies ``desired_kl``, ``lr_factor``, ``min_lr`` and ``max_lr``."""
    running, mean_kl = running_kl_update(running, epoch_kl)
    return running, kl_adaptive_lr(lr, mean_kl, hp.desired_kl, hp.lr_factor, hp.min_lr, hp.max_lr)


__all__ = ["RunningKL", "adapt_lr_on_running_kl", "kl_adaptive_lr", "running_kl_init", "running_kl_update"]
