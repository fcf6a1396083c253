"""P3O (Pairwise PPO; Wu et al. 2023, arXiv:2310.00212) as PPO-family records — a reconstruction [P], see
:mod:`purejaxpo.primitives.p3o` for what is confirmed and what is ours.

- advantage ``"pairwise"`` (grouped, ``group_size = 2``): each pair of sibling envs is branched from one start
  state before every rollout (:func:`~purejaxpo.algorithms.ppo_variants.advantages.branch_from_group_leaders`,
  the grouping LOOP uses). Sibling ``k``'s trajectory is its steps from the window start to its first episode end
  (or the window end: the partial return is used), ``R_k`` its discounted return (``hp.gamma``; 1 gives the
  paper's plain sum), ``Δ = (R_1 − R_2)/2``. The per-step advantages are ``±Δ`` on the trajectory's steps and 0
  after it: with ``objective="clip"`` that is the per-step variant (per-step ratios, not P3O's trajectory ones).
  The critic still trains on GAE targets, as with ``"loo"``; P3O does not read it.
- objectives ``"p3o"`` (V1, separate clipping) and ``"p3o_joint"`` (V2, joint clipping): the trajectory log-ratio
  ``ℓ_k = Σ_t (log π_θ − log π_old)`` over each sibling's trajectory steps, and the pair losses
  :func:`~purejaxpo.primitives.p3o.p3o_separate_loss` / :func:`~purejaxpo.primitives.p3o.p3o_joint_loss`,
  averaged over pairs. A trajectory's steps must share a gradient step, so these need ``num_minibatches = 1``
  (full-batch steps; ``update_epochs`` sets their number) and ``advantage="pairwise"``.

With ``num_steps = 1`` each trajectory is one step and ``"p3o"`` equals PPO-clip with ``advantage="loo"``,
``group_size = 2`` (tested): the LOOP reduction of :mod:`purejaxpo.primitives.p3o` inside the trainer.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from purejaxpo.algorithms.ppo_variants.advantages import (
    AdvantageEstimator, Advantages, _grouped_returns, check_groups, register_advantage,
)
from purejaxpo.algorithms.ppo_variants.objectives import ObjectiveInputs, PPOObjective, register_objective
from purejaxpo.engine import Experience, UpdateContext, gae_of
from purejaxpo.primitives import p3o
from purejaxpo.primitives.advantages import masked_mean
from purejaxpo.primitives.group_advantages import first_episode_mask

Array = jax.Array
P3O_OBJECTIVES = ("p3o", "p3o_joint")


def check_pairs(config: Any) -> None:
    """``group_size = 2`` siblings per pair (and :func:`check_groups`)."""
    check_groups(config)
    if config.group_size != 2:
        raise ValueError(f"advantage='pairwise' compares pairs: set group_size=2, got {config.group_size}")


def check_p3o(config: Any) -> None:
    if config.advantage != "pairwise":
        raise ValueError(f"objective={config.objective!r} needs advantage='pairwise' (its pair ids), got {config.advantage!r}")
    if config.num_minibatches != 1:
        raise ValueError(
            f"objective={config.objective!r} sums log-ratios over whole trajectories, which must share a gradient "
            f"step: set num_minibatches=1 (full-batch steps), got {config.num_minibatches}"
        )


def _pairwise(exp: Experience, ctx: UpdateContext, config: Any) -> Advantages:
    """``±Δ`` on each sibling's first-episode steps, the GAE targets for the critic, and the pair layout."""
    _, targets = gae_of(exp, ctx.hp.gamma, ctx.hp.gae_lambda)
    delta = p3o.pairwise_advantage(_grouped_returns(exp, ctx, config)[0])  # [G]
    first = first_episode_mask(exp.done)  # [T, B]
    num_steps, num_envs = first.shape
    env = jnp.broadcast_to(jnp.arange(num_envs), (num_steps, num_envs))
    sibling_sign = jnp.where(env % 2 == 0, 1.0, -1.0)
    delta_per_env = jnp.repeat(delta, 2)[None, :]  # [1, B]
    extras = {
        "trajectory": env.astype(jnp.int32),
        "in_trajectory": first,
        "delta": jnp.broadcast_to(delta_per_env, first.shape),
        "representative": ((jnp.arange(num_steps)[:, None] == 0) & (env % 2 == 0)).astype(jnp.float32),
    }
    return Advantages(first * sibling_sign * delta_per_env, targets, None, extras)


def _p3o_loss(joint: bool):
    def loss(x: ObjectiveInputs, hp: Any, carried: Any, config: Any) -> tuple[Array, dict[str, Array]]:
        e = x.batch.extras
        num_envs = config.num_envs
        ell = p3o.trajectory_log_ratio(x.log_ratio, e["in_trajectory"], e["trajectory"], num_envs).reshape(-1, 2)
        delta = jax.ops.segment_sum(e["representative"] * e["delta"], e["trajectory"] // 2, num_segments=num_envs // 2)
        pair_loss = (p3o.p3o_joint_loss if joint else p3o.p3o_separate_loss)(ell, delta, hp.clip_eps)  # [G]
        # One sample per pair carries its loss, scaled so the trainer's mean over the N samples is the mean over pairs.
        scale = x.log_ratio.shape[0] / pair_loss.shape[0]
        per_sample = e["representative"] * pair_loss[e["trajectory"] // 2] * scale
        ratio = jnp.exp(ell[:, 0] - ell[:, 1]) if joint else jnp.exp(ell)
        metrics = {"trajectory_clip_fraction": jnp.mean((jnp.abs(ratio - 1.0) > hp.clip_eps).astype(jnp.float32)),
                   "trajectory_log_ratio_abs": jnp.mean(jnp.abs(ell)), "pair_delta_abs": masked_mean(jnp.abs(delta))}
        return per_sample, metrics

    return loss


register_advantage(AdvantageEstimator("pairwise", _pairwise, grouped=True, check=check_pairs))
register_objective(PPOObjective("p3o", _p3o_loss(joint=False), check=check_p3o))
register_objective(PPOObjective("p3o_joint", _p3o_loss(joint=True), check=check_p3o))

__all__ = ["P3O_OBJECTIVES", "check_p3o", "check_pairs"]
