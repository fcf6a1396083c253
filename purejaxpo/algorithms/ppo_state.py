"""State that a PPO objective carries between gradient steps, kept in ``OnPolicyState.algo``.

``objective="clip"``, ``"spo"`` and ``"dpo"`` carry nothing (``algo`` stays ``None``); the others carry:

- ``"kl_penalty"``: :class:`KLPenaltyState` — the adaptive coefficient β, updated once per update;
- ``"r2vpo"``: :class:`DualState` — the Lagrange multiplier λ, updated after every gradient step;
- ``"ewma"``: :class:`EWMAState` — the proximal (EWMA) parameters and their running weight W, updated after
  every gradient step.

The update rules themselves are pure functions in :mod:`purejaxpo.primitives.ppo_objectives`; this module
wires them to the trainer: :func:`per_step_update` and :func:`purejaxpo.algorithms.onpolicy.update_epochs_with_state` (the epochs loop
carrying the state through every gradient step) and :func:`update_kl_beta` (once per update).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

from purejaxpo.primitives.advantages import masked_mean
from purejaxpo.primitives.ppo_objectives import adaptive_kl_beta, dual_ascent, ewma_update

Array = jax.Array
StepUpdate = Callable[[Any, Any, dict[str, Array]], Any]  # (algo, params after the step, step metrics) -> algo


@struct.dataclass
class KLPenaltyState:
    """KL-penalty PPO: the current coefficient ``β`` (scalar)."""

    beta: Array


@struct.dataclass
class DualState:
    """R²VPO: the dual variable ``λ ≥ 0`` of the ratio-variance constraint (scalar)."""

    lam: Array


@struct.dataclass
class EWMAState:
    """PPO-EWMA: proximal parameters ``θ_prox`` (same tree as the network's) and the EWMA weight ``W``."""

    params: Any
    weight: Array


def init_algo_state(objective: str, params: Any, hp: Any) -> Any:
    """The initial carried state for ``objective`` (``None`` when it carries none)."""
    if objective == "kl_penalty":
        return KLPenaltyState(beta=jnp.asarray(hp.kl_beta_init, jnp.float32))
    if objective == "r2vpo":
        return DualState(lam=jnp.asarray(hp.r2vpo_lambda_init, jnp.float32))
    if objective == "ewma":
        return EWMAState(params=params, weight=jnp.ones((), jnp.float32))
    return None


def algo_metrics(algo: Any) -> dict[str, Array]:
    """Per-update scalars describing the carried state (empty when there is none)."""
    if isinstance(algo, KLPenaltyState):
        return {"kl_beta": algo.beta}
    if isinstance(algo, DualState):
        return {"r2vpo_lambda": algo.lam}
    if isinstance(algo, EWMAState):
        return {"ewma_weight": algo.weight}
    return {}


def per_step_update(objective: str, hp: Any) -> StepUpdate | None:
    """The carried-state update after every gradient step (``None`` for objectives without one):
    PPO-EWMA's parameter average, or R²VPO's dual ascent on ``λ`` with the minibatch's ``V̂ar[r] − δ``."""
    if objective == "ewma":
        return lambda algo, params, _: EWMAState(*ewma_update(algo.params, params, algo.weight, hp.ewma_beta))
    if objective == "r2vpo":
        return lambda algo, _, metrics: DualState(
            dual_ascent(algo.lam, metrics["ratio_variance"] - hp.r2vpo_delta, hp.r2vpo_dual_lr)
        )
    return None


def update_kl_beta(
    algo: KLPenaltyState, old_dist: Any, new_dist: Any, hp: Any
) -> tuple[KLPenaltyState, dict[str, Array]]:
    """Adaptive β once per update from ``d = mean KL(π_old ‖ π_new)`` over the whole batch (analytic KL)."""
    kl = masked_mean(old_dist.kl_divergence(new_dist))
    return KLPenaltyState(adaptive_kl_beta(algo.beta, kl, hp.kl_target)), {"kl_after_update": kl}
