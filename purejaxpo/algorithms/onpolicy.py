"""The shared on-policy update: epochs × shuffled minibatches of gradient steps, with global-norm
clipping and non-finite protection. Algorithms supply only a loss.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

Array = jax.Array
# loss_fn(params, minibatch) -> (loss scalar, aux dict of scalars)
LossFn = Callable[[Any, Any], tuple[Array, dict[str, Array]]]


def adam_with_clipping(learning_rate: Array, max_grad_norm: Array, eps: float = 1e-5) -> optax.GradientTransformation:
    """``clip_by_global_norm → Adam``. Both knobs may be traced: the optimizer is rebuilt inside each
    traced update from the hyperparameters, and its state does not depend on them."""
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(learning_rate, eps=eps))


def linear_annealing(base_lr: Array, update_index: Array, num_updates: int, anneal: bool) -> Array:
    """``lr · (1 − update_index / num_updates)`` when annealing, else ``lr``."""
    if not anneal:
        return base_lr
    return base_lr * (1.0 - update_index.astype(jnp.float32) / num_updates)


def _tree_all_finite(tree: Any) -> Array:
    leaves = jax.tree.leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


def gradient_step(
    params: Any, opt_state: Any, minibatch: Any, loss_fn: LossFn, optimizer: optax.GradientTransformation
) -> tuple[Any, Any, dict[str, Array]]:
    """One gradient step. If the loss or any gradient is non-finite the step is *skipped* (params and
    optimizer state unchanged) and ``nonfinite`` is 1, so callers can report it instead of training on."""
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, minibatch)
    finite = jnp.logical_and(jnp.isfinite(loss), _tree_all_finite(grads))
    updates, new_opt_state = optimizer.update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
    metrics = {**aux, "loss": loss, "grad_norm": optax.tree.norm(grads), "nonfinite": 1.0 - finite.astype(jnp.float32)}
    return keep(new_params, params), keep(new_opt_state, opt_state), metrics


def shuffled_minibatches(key: Array, batch: Any, num_minibatches: int) -> Any:
    """Permute the leading ``[N]`` axis of every leaf and split it into ``[num_minibatches, N/M, ...]``."""
    leaves = jax.tree.leaves(batch)
    size = leaves[0].shape[0]
    permutation = jax.random.permutation(key, size)
    return jax.tree.map(
        lambda x: jnp.take(x, permutation, axis=0).reshape((num_minibatches, size // num_minibatches) + x.shape[1:]),
        batch,
    )


def update_epochs_with_state(
    key: Array,
    params: Any,
    opt_state: Any,
    carried: Any,
    batch: Any,
    loss_fn: Callable[[Any, Any, Any], tuple[Array, dict[str, Array]]],
    optimizer: optax.GradientTransformation,
    step_update: Callable[[Any, Any, dict[str, Array]], Any] | None,
    num_epochs: int,
    num_minibatches: int,
) -> tuple[Any, Any, Any, dict[str, Array]]:
    """``num_epochs`` passes over ``batch`` (leaves ``[N, ...]``) in shuffled minibatches, carrying
    algorithm state ``carried`` (e.g. a dual variable or an EWMA of parameters).

    The loss is ``loss_fn(params, minibatch, carried)``; after every gradient step
    ``carried ← step_update(carried, params, step_metrics)`` (unchanged when the step was skipped as
    non-finite, or when ``step_update`` is None). Returns new params, optimizer state, ``carried`` and
    metrics averaged over all gradient steps, except ``nonfinite``: the number of skipped steps.
    """

    def minibatch_step(carry: tuple[Any, Any, Any], minibatch: Any) -> tuple[tuple[Any, Any, Any], dict[str, Array]]:
        params, opt_state, carried = carry
        params, opt_state, metrics = gradient_step(
            params, opt_state, minibatch, lambda p, mb: loss_fn(p, mb, carried), optimizer
        )
        if step_update is not None:
            finite = metrics["nonfinite"] == 0
            updated = step_update(carried, params, metrics)
            carried = jax.tree.map(lambda new, old: jnp.where(finite, new, old), updated, carried)
        return (params, opt_state, carried), metrics

    def epoch(carry: tuple[Any, Any, Any], epoch_key: Array) -> tuple[tuple[Any, Any, Any], dict[str, Array]]:
        return jax.lax.scan(minibatch_step, carry, shuffled_minibatches(epoch_key, batch, num_minibatches))

    (params, opt_state, carried), metrics = jax.lax.scan(
        epoch, (params, opt_state, carried), jax.random.split(key, num_epochs)
    )
    summary = {name: jnp.mean(value) for name, value in metrics.items()}
    summary["nonfinite"] = jnp.sum(metrics["nonfinite"])
    return params, opt_state, carried, summary


def update_epochs(
    key: Array,
    params: Any,
    opt_state: Any,
    batch: Any,
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    num_epochs: int,
    num_minibatches: int,
) -> tuple[Any, Any, dict[str, Array]]:
    """:func:`update_epochs_with_state` without carried state: ``loss_fn(params, minibatch)``."""
    params, opt_state, _, summary = update_epochs_with_state(
        key, params, opt_state, None, batch, lambda p, mb, _: loss_fn(p, mb), optimizer, None, num_epochs, num_minibatches
    )
    return params, opt_state, summary


def flatten_time_and_batch(tree: Any) -> Any:
    """``[T, B, ...] -> [T·B, ...]`` for every leaf."""
    return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), tree)
