"""Optimizers whose hyperparameters are traced state, not constants: built once, set per update.

Every optimizer here is wrapped in :func:`optax.inject_hyperparams`, so its learning rate and clipping norm
live in ``opt_state.hyperparams``. A trainer builds the optimizer once (outside any trace), writes the current
values (a traced ``hp.lr``, an annealed or KL-adapted rate) into the state with :func:`set_hyperparams`, and
never rebuilds it: the same compiled program serves every hyperparameter setting of a grid.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

Array = jax.Array


def adam_with_clipping(
    eps: float = 1e-5, wrap: Callable[[optax.GradientTransformation], optax.GradientTransformation] | None = None,
) -> optax.GradientTransformation:
    """``clip_by_global_norm(max_grad_norm) → Adam(learning_rate, eps)``, hyperparameters in the state.
    ``max_grad_norm = inf`` turns clipping off. ``wrap`` (optional) wraps that chain inside the hyperparameter
    injection (e.g. :func:`purejaxpo.networks.hyperbolic.with_power_iteration`)."""

    def factory(learning_rate: Array, max_grad_norm: Array) -> optax.GradientTransformation:
        inner = optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(learning_rate, eps=eps))
        return wrap(inner) if wrap is not None else inner

    return optax.inject_hyperparams(factory)(learning_rate=0.0, max_grad_norm=1.0)


def adamw_with_clipping() -> optax.GradientTransformation:
    """``clip_by_global_norm(max_grad_norm) → AdamW(learning_rate, weight_decay)``, hyperparameters in the state."""

    def factory(learning_rate: Array, max_grad_norm: Array, weight_decay: Array) -> optax.GradientTransformation:
        return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adamw(learning_rate, weight_decay=weight_decay))

    return optax.inject_hyperparams(factory)(learning_rate=0.0, max_grad_norm=1.0, weight_decay=0.0)


def set_hyperparams(opt_state: Any, **values: Array) -> Any:
    """``opt_state`` (of an :func:`optax.inject_hyperparams` optimizer) with ``values`` written into its
    ``hyperparams`` (cast to the stored dtype, so a ``lax.scan`` carry keeps its type)."""
    hyperparams = dict(opt_state.hyperparams)
    for name, value in values.items():
        if name not in hyperparams:
            raise KeyError(f"optimizer has no hyperparameter {name!r}; it has {sorted(hyperparams)}")
        hyperparams[name] = jnp.asarray(value, jnp.asarray(hyperparams[name]).dtype)
    return opt_state._replace(hyperparams=hyperparams)


def init_optimizer(optimizer: optax.GradientTransformation, params: Any, **values: Array) -> Any:
    """``optimizer.init(params)`` with its hyperparameters set to ``values``."""
    return set_hyperparams(optimizer.init(params), **values)


def linear_annealing(base: Array, update_index: Array, num_updates: int, anneal: bool) -> Array:
    """``base · (1 − update_index / num_updates)`` when annealing, else ``base`` (PPO's learning-rate schedule,
    constant within an update)."""
    if not anneal:
        return base
    return base * (1.0 - update_index.astype(jnp.float32) / num_updates)


def clip_norm_or_off(max_grad_norm: Array) -> Array:
    """``max_grad_norm`` where it is positive, else ``inf`` (clipping off): for configs where 0 means "no clip"."""
    return jnp.where(max_grad_norm > 0, max_grad_norm, jnp.inf)


def adam(eps: float = 1e-8) -> optax.GradientTransformation:
    """Adam(learning_rate, eps) without clipping, the learning rate in the state."""
    return optax.inject_hyperparams(lambda learning_rate: optax.adam(learning_rate, eps=eps))(learning_rate=0.0)
