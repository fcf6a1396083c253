"""PPO policy objectives as registry records: ``PPOConfig(objective=name)`` picks one when the trainer is built.

A record is the objective's per-sample loss plus what it carries between gradient steps (kept in
``OnPolicyState.algo``). The losses themselves are primitives (:mod:`purejaxpo.primitives.losses`,
:mod:`purejaxpo.primitives.ppo_objectives`); a record only wires one to the trainer. Register your own with
:func:`register_objective` (before building the config that names it)::

    from purejaxpo.algorithms.ppo_variants import PPOObjective, register_objective
    register_objective(PPOObjective("my_clip", lambda x, hp, carried, config: (my_surrogate(x.log_ratio, x.advantages), {})))
    ppo.make_train(ppo.PPOConfig(objective="my_clip"), env, env_params)

Built in: ``clip`` (PPO-clip, Schulman et al. 2017; ``dual_clip=True`` for dual-clip, Ye et al. 2020),
``kl_penalty`` (adaptive β, Schulman et al. 2017 §4), ``spo`` (Xie et al. 2025), ``ewma`` (PPO-EWMA, Hilton et
al. 2021), ``dpo`` (Lu et al. 2022), ``r2vpo`` (ratio-variance penalty with a dual variable; our
reconstruction).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from purejaxpo.engine.config import register_record
from purejaxpo.primitives.advantages import masked_mean
from purejaxpo.primitives.losses import clip_fraction, clipped_surrogate, kl_penalty_surrogate
from purejaxpo.primitives.ppo_objectives import (
    adaptive_kl_beta,
    dpo_surrogate,
    dual_ascent,
    ewma_decoupled_surrogate,
    ewma_update,
    r2vpo_surrogate,
    ratio_second_moment,
    spo_surrogate,
)

Array = jax.Array
Metrics = dict[str, Array]


class ObjectiveInputs(NamedTuple):
    """What an objective's loss sees, over the minibatch (``[N]``, or ``[T, B]`` for recurrent policies):
    ``log_prob = log π_θ(a|s)``, ``log_ratio = log_prob − log π_old(a|s)``, the (normalized) ``advantages``, the
    distribution ``dist`` of π_θ, the ``batch`` (its ``action``, …) and ``reference_policy()``: the reference
    network's distribution on the same states (π_old, or the carried proximal network for ``ewma``; computed only
    when called; no gradient flows into it)."""

    log_prob: Array
    log_ratio: Array
    advantages: Array
    dist: Any
    batch: Any
    reference_policy: Callable[[], Any]


@dataclass(frozen=True)
class PPOObjective:
    """One PPO policy objective.

    - ``loss(inputs, hp, carried, config) -> (per-sample loss [N], metrics)`` (minimized; the trainer averages);
    - ``init(params, hp) -> carried`` and ``per_step(carried, params, step_metrics, hp) -> carried`` (after
      every gradient step), ``per_update(carried, old_dist, new_dist, batch, hp) -> (carried, metrics)`` (once
      per update, with π_old's and π_new's distributions on the whole batch); ``metrics(carried)`` reports the
      carried state each update;
    - ``reference(carried)`` gives the parameters of the reference network (``None``: π_old);
    - ``dual_clip``: whether ``PPOConfig.dual_clip`` applies;
    - ``check(config)``: raise ``ValueError`` for a config the objective cannot train with (e.g. the advantage
      estimator it needs).
    """

    name: str
    loss: Callable[[ObjectiveInputs, Any, Any, Any], tuple[Array, Metrics]]
    init: Callable[[Any, Any], Any] | None = None
    per_step: Callable[[Any, Any, Metrics, Any], Any] | None = None
    per_update: Callable[[Any, Any, Any, Any, Any], tuple[Any, Metrics]] | None = None
    metrics: Callable[[Any], Metrics] | None = None
    reference: Callable[[Any], Any] | None = None
    dual_clip: bool = False
    check: Callable[[Any], None] | None = None


OBJECTIVES: dict[str, PPOObjective] = {}


def register_objective(objective: PPOObjective, *, overwrite: bool = False) -> PPOObjective:
    """Add ``objective`` under ``objective.name`` (``ValueError`` if taken, unless ``overwrite``)."""
    return register_record(OBJECTIVES, objective, "PPO objective", overwrite=overwrite)


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


def _clip(x: ObjectiveInputs, hp: Any, carried: Any, config: Any) -> tuple[Array, Metrics]:
    dual = hp.dual_clip_c if config.dual_clip else None
    return clipped_surrogate(x.log_ratio, x.advantages, hp.clip_eps, dual), {}


def _kl_penalty(x: ObjectiveInputs, hp: Any, carried: KLPenaltyState, config: Any) -> tuple[Array, Metrics]:
    kl = x.reference_policy().kl_divergence(x.dist)  # analytic KL(π_old ‖ π_θ)
    return kl_penalty_surrogate(x.log_ratio, x.advantages, kl, carried.beta), {"kl": masked_mean(kl)}


def _kl_beta_update(carried: KLPenaltyState, old_dist: Any, new_dist: Any, batch: Any, hp: Any) -> tuple[Any, Metrics]:
    """Adaptive β once per update from ``d = mean KL(π_old ‖ π_new)`` over the whole batch (analytic KL)."""
    kl = masked_mean(old_dist.kl_divergence(new_dist))
    return KLPenaltyState(adaptive_kl_beta(carried.beta, kl, hp.kl_target)), {"kl_after_update": kl}


def _r2vpo(x: ObjectiveInputs, hp: Any, carried: DualState, config: Any) -> tuple[Array, Metrics]:
    ratio_var = masked_mean(ratio_second_moment(x.log_ratio))
    return r2vpo_surrogate(x.log_ratio, x.advantages, carried.lam, hp.r2vpo_delta), {"ratio_variance": ratio_var}


def _ewma(x: ObjectiveInputs, hp: Any, carried: EWMAState, config: Any) -> tuple[Array, Metrics]:
    prox_log_prob = jax.lax.stop_gradient(x.reference_policy().log_prob(x.batch.action))
    loss = ewma_decoupled_surrogate(x.log_prob, x.batch.log_prob, prox_log_prob, x.advantages, hp.clip_eps, hp.ewma_imp_samp_max)
    return loss, {"prox_clip_fraction": masked_mean(clip_fraction(x.log_prob - prox_log_prob, hp.clip_eps))}


register_objective(PPOObjective("clip", _clip, dual_clip=True))
register_objective(PPOObjective(
    "kl_penalty", _kl_penalty,
    init=lambda params, hp: KLPenaltyState(beta=jnp.asarray(hp.kl_beta_init, jnp.float32)),
    per_update=_kl_beta_update,
    metrics=lambda c: {"kl_beta": c.beta},
))
register_objective(PPOObjective("spo", lambda x, hp, c, config: (spo_surrogate(x.log_ratio, x.advantages, hp.clip_eps), {})))
register_objective(PPOObjective(
    "ewma", _ewma,
    init=lambda params, hp: EWMAState(params=params, weight=jnp.ones((), jnp.float32)),
    per_step=lambda c, params, m, hp: EWMAState(*ewma_update(c.params, params, c.weight, hp.ewma_beta)),
    metrics=lambda c: {"ewma_weight": c.weight},
    reference=lambda c: c.params,
))
register_objective(PPOObjective(
    "dpo", lambda x, hp, c, config: (dpo_surrogate(x.log_ratio, x.advantages, hp.dpo_alpha, hp.dpo_beta), {})
))
register_objective(PPOObjective(
    "r2vpo", _r2vpo,
    init=lambda params, hp: DualState(lam=jnp.asarray(hp.r2vpo_lambda_init, jnp.float32)),
    per_step=lambda c, params, m, hp: DualState(dual_ascent(c.lam, m["ratio_variance"] - hp.r2vpo_delta, hp.r2vpo_dual_lr)),
    metrics=lambda c: {"r2vpo_lambda": c.lam},
))
