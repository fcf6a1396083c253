"""The update half of the engine: epochs × shuffled minibatches of gradient steps, with global-norm clipping
(inside the optimizer), non-finite protection, carried algorithm state and per-step / per-epoch hooks.

Non-finite protection is per phase: every gradient step reports whether its loss and gradients were finite, and a
phase with any non-finite step is discarded whole (params, optimizer state and carried state back to their values
before it). One select per phase instead of one per step: the per-step select kept two copies of every parameter
and moment alive in the minibatch loop (README, "Library overhead, measured").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

Array = jax.Array
Metrics = dict[str, Array]


class LossContext(NamedTuple):
    """What a loss sees besides the network and the minibatch: the hyperparameters, the network that collected
    the data (``old_model``, π_old / θ_k: no gradient flows into it), the carried state *as of this gradient
    step*, a per-step PRNG key (``None`` unless the phase asks for one) and the update index."""

    hp: Any
    old_model: Any
    carried: Any
    key: Array | None
    update_index: Array


# loss(model, minibatch, ctx) -> (scalar loss, scalar metrics)
LossFn = Callable[[Any, Any, LossContext], tuple[Array, Metrics]]


@dataclass(frozen=True)
class Phase:
    """One schedule of gradient steps: ``epochs`` passes over the batch in ``minibatches`` shuffled minibatches,
    minimizing ``loss`` with ``optimizer`` (an :func:`optax.inject_hyperparams` optimizer, its own state slot).

    - ``hyperparams(hp, update_index) -> {name: value}``: written into the optimizer state at init and before
      every update (learning-rate schedules, ``max_grad_norm``); names in ``adaptive`` are written at init only
      and then left to the hooks (a KL-adapted learning rate).
    - ``per_step(carried, params, step_metrics, hp) -> carried``: after every gradient step (a phase with a
      non-finite step is discarded whole, its carried state included).
    - ``per_epoch(carried, opt_state, epoch_metrics, hp) -> (carried, opt_state)``: after every epoch.
    - ``step_keys``: give each gradient step its own key (a chain ``k_{i+1} = split(k_i)[0]``).
    - ``metrics``: the step metrics this phase reports (``None`` = all); ``report`` maps optimizer
      hyperparameters to the metric names they are reported under.
    - ``layout``: ``"steps"`` shuffles individual samples (the batch is flattened to ``[T·B, ...]``);
      ``"sequences"`` keeps each env's ``[T]`` sequence whole and shuffles envs (minibatches ``[T, B/M, ...]``), for
      recurrent policies.
    """

    loss: LossFn
    optimizer: optax.GradientTransformation
    epochs: int
    minibatches: int
    hyperparams: Callable[[Any, Array], dict[str, Array]]
    adaptive: tuple[str, ...] = ()
    per_step: Callable[[Any, Any, Metrics, Any], Any] | None = None
    per_epoch: Callable[[Any, Any, Metrics, Any], tuple[Any, Any]] | None = None
    step_keys: bool = False
    metrics: tuple[str, ...] | None = None
    report: dict[str, str] = field(default_factory=lambda: {"learning_rate": "learning_rate"})
    layout: str = "steps"


def keep_where(ok: Array, new: Any, old: Any) -> Any:
    """``new`` where the scalar ``ok`` else ``old``, leaf by leaf."""
    return jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)


def gradient_step(
    params: Any, opt_state: Any, minibatch: Any, loss_fn: Callable[[Any, Any], tuple[Array, Metrics]],
    optimizer: optax.GradientTransformation, skip_nonfinite: bool = True,
) -> tuple[Any, Any, Metrics]:
    """One gradient step; ``nonfinite`` is 1 when the loss or the gradients' global norm is non-finite (any NaN or
    inf gradient makes it so, and so does a norm past float32's range), so callers can report it instead of
    training on. With ``skip_nonfinite`` such a step is *skipped* (params and optimizer state
    unchanged); :func:`run_phase` turns it off and discards the whole phase instead."""
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, minibatch)
    grad_norm = optax.tree.norm(grads)
    finite = jnp.logical_and(jnp.isfinite(loss), jnp.isfinite(grad_norm))
    updates, new_opt_state = optimizer.update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    metrics = {**aux, "loss": loss, "grad_norm": grad_norm, "nonfinite": 1.0 - finite.astype(jnp.float32)}
    if skip_nonfinite:
        return keep_where(finite, new_params, params), keep_where(finite, new_opt_state, opt_state), metrics
    return new_params, new_opt_state, metrics


def shuffled_minibatches(key: Array, batch: Any, num_minibatches: int) -> Any:
    """Permute the leading ``[N]`` axis of every leaf and split it into ``[num_minibatches, N/M, ...]``."""
    size = jax.tree.leaves(batch)[0].shape[0]
    permutation = jax.random.permutation(key, size)
    return jax.tree.map(
        lambda x: jnp.take(x, permutation, axis=0).reshape((num_minibatches, size // num_minibatches) + x.shape[1:]),
        batch,
    )


def shuffled_sequences(key: Array, batch: Any, num_minibatches: int) -> Any:
    """Permute the env axis (axis 1) of every ``[T, B, ...]`` leaf and split it: ``[num_minibatches, T, B/M, ...]``."""
    size = jax.tree.leaves(batch)[0].shape[1]
    permutation = jax.random.permutation(key, size)

    def split(x: Array) -> Array:
        x = jnp.take(x, permutation, axis=1).reshape((x.shape[0], num_minibatches, size // num_minibatches) + x.shape[2:])
        return jnp.moveaxis(x, 1, 0)

    return jax.tree.map(split, batch)


def phase_batch(phase: Phase, batch: Any) -> Any:
    """The ``[T, B, ...]`` batch laid out for ``phase``: flattened to ``[T·B, ...]`` for ``"steps"``, as is for
    ``"sequences"``."""
    return flatten_time_and_batch(batch) if phase.layout == "steps" else batch


def run_phase(
    phase: Phase,
    key: Array,
    params: Any,
    opt_state: Any,
    carried: Any,
    batch: Any,
    merge: Callable[[Any], Any],
    context: Callable[[Any, Array | None], LossContext],
    step_key: Array | None = None,
) -> tuple[Any, Any, Any, Metrics]:
    """``phase.epochs`` shuffled passes over ``batch`` (leaves ``[N, ...]``, or ``[T, B, ...]`` for the
    ``"sequences"`` layout).

    ``merge(params)`` builds the network; ``context(carried, step_key)`` the :class:`LossContext`. Returns new
    params, optimizer state, carried state and the step metrics averaged over all gradient steps, except
    ``nonfinite``: the number of non-finite steps. If there is any, the phase is discarded: params, optimizer state
    and carried state are returned as they came in.
    """
    hp = context(carried, None).hp

    def minibatch_step(carry: tuple, minibatch: Any) -> tuple[tuple, Metrics]:
        params, opt_state, carried, step_key = carry
        ctx = context(carried, step_key)
        params, opt_state, metrics = gradient_step(
            params, opt_state, minibatch, lambda p, mb: phase.loss(merge(p), mb, ctx), phase.optimizer, skip_nonfinite=False
        )
        if phase.per_step is not None:
            carried = phase.per_step(carried, params, metrics, hp)
        if step_key is not None:
            step_key = jax.random.split(step_key)[0]
        return (params, opt_state, carried, step_key), metrics

    shuffle = shuffled_minibatches if phase.layout == "steps" else shuffled_sequences

    def epoch(carry: tuple, epoch_key: Array) -> tuple[tuple, Metrics]:
        carry, metrics = jax.lax.scan(minibatch_step, carry, shuffle(epoch_key, batch, phase.minibatches))
        if phase.per_epoch is not None:
            params, opt_state, carried, step_key = carry
            epoch_means = {name: jnp.mean(value) for name, value in metrics.items()}
            carried, opt_state = phase.per_epoch(carried, opt_state, epoch_means, hp)
            carry = (params, opt_state, carried, step_key)
        return carry, metrics

    before = (params, opt_state, carried)
    (params, opt_state, carried, _), metrics = jax.lax.scan(
        epoch, (params, opt_state, carried, step_key), jax.random.split(key, phase.epochs)
    )
    keep = phase.metrics
    summary = {name: jnp.mean(value) for name, value in metrics.items() if keep is None or name in keep or name == "nonfinite"}
    summary["nonfinite"] = jnp.sum(metrics["nonfinite"])
    params, opt_state, carried = keep_where(summary["nonfinite"] == 0, (params, opt_state, carried), before)
    return params, opt_state, carried, summary


def flatten_time_and_batch(tree: Any) -> Any:
    """``[T, B, ...] -> [T·B, ...]`` for every leaf."""
    return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), tree)
