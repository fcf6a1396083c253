"""The engine's update half (``purejaxpo/engine/update.py``): non-finite protection per phase and per step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from purejaxpo.engine.optim import adam_with_clipping, init_optimizer
from purejaxpo.engine.update import LossContext, Phase, gradient_step, run_phase

HP = {"learning_rate": 0.1, "max_grad_norm": 10.0}


def quadratic(params, batch):
    """``mean((w·x − y)²)``; a NaN in ``y`` makes exactly the minibatch holding it non-finite."""
    return jnp.mean((batch["x"] @ params["w"] - batch["y"]) ** 2), {}


def setup(poison: bool):
    x = jax.random.normal(jax.random.key(0), (8, 3))
    y = x @ jnp.array([1.0, -2.0, 0.5])
    if poison:
        y = y.at[5].set(jnp.nan)  # one sample: one minibatch of one epoch's shuffle
    params = {"w": jnp.zeros(3)}
    optimizer = adam_with_clipping()
    return params, init_optimizer(optimizer, params, **HP), {"x": x, "y": y}, optimizer


def run(poison: bool, per_step=None):
    params, opt_state, batch, optimizer = setup(poison)
    phase = Phase(loss=lambda model, mb, ctx: quadratic(model, mb), optimizer=optimizer, epochs=2, minibatches=4,
                  hyperparams=lambda hp, i: HP, per_step=per_step)
    context = lambda carried, key: LossContext(None, None, carried, key, jnp.zeros((), jnp.int32))
    carried = jnp.zeros(())
    out = jax.jit(lambda p, o, c: run_phase(phase, jax.random.key(1), p, o, c, batch, lambda p: p, context))(
        params, opt_state, carried)
    return (params, opt_state, carried), out


def test_a_finite_phase_trains_and_reports_no_skips():
    (params, _, _), (new_params, _, _, summary) = run(poison=False)
    assert float(summary["nonfinite"]) == 0
    assert not np.allclose(new_params["w"], params["w"])


def test_one_nonfinite_step_discards_the_whole_phase():
    """The poisoned sample lands in one minibatch per epoch: 2 of 8 steps are NaN, but every later step trains on
    NaN params too, so the count is at least 2; what matters is that nothing of the phase survives — params,
    optimizer state and the carried state (here a per-step counter) are returned exactly as they came in."""
    count_steps = lambda carried, params, metrics, hp: carried + 1.0
    (params, opt_state, carried), (new_params, new_opt, new_carried, summary) = run(poison=True, per_step=count_steps)
    assert 2 <= float(summary["nonfinite"]) <= 8
    for a, b in zip(jax.tree.leaves((params, opt_state, carried)), jax.tree.leaves((new_params, new_opt, new_carried))):
        np.testing.assert_array_equal(a, b)
    _, (_, _, finite_carried, _) = run(poison=False, per_step=count_steps)
    assert float(finite_carried) == 8.0  # the hook did run on every step of a finite phase


def test_gradient_step_skips_a_nonfinite_step_by_default_and_can_leave_it_to_the_caller():
    params, opt_state, batch, optimizer = setup(poison=True)
    skipped = gradient_step(params, opt_state, batch, quadratic, optimizer)
    np.testing.assert_array_equal(skipped[0]["w"], params["w"])
    assert float(skipped[2]["nonfinite"]) == 1.0
    taken = gradient_step(params, opt_state, batch, quadratic, optimizer, skip_nonfinite=False)
    assert not np.all(np.isfinite(taken[0]["w"])) and float(taken[2]["nonfinite"]) == 1.0


def test_an_inf_gradient_with_a_finite_loss_counts_as_nonfinite():
    """``sqrt(w₀)`` at ``w₀ = 0``: the loss is finite, its gradient infinite (detected through the global norm)."""
    params, opt_state, batch, optimizer = setup(poison=False)
    loss = lambda p, b: (quadratic(p, b)[0] + jnp.sqrt(p["w"][0]), {})
    (value, _), grads = jax.value_and_grad(loss, has_aux=True)(params, batch)
    assert np.isfinite(float(value)) and np.isinf(float(grads["w"][0]))
    new_params, _, metrics = gradient_step(params, opt_state, batch, loss, optimizer)
    assert float(metrics["nonfinite"]) == 1.0
    np.testing.assert_array_equal(new_params["w"], params["w"])
