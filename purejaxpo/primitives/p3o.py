"""Pairwise Proximal Policy Optimization (P3O; Wu, Zhu, Zhang, Wen, Ramchandran, Jiao 2023, arXiv:2310.00212).

[P] Reconstruction: neither the paper's body nor reference code could be read for this project, only its
abstract and summaries. What is confirmed: a trajectory-wise policy gradient on *pairs* of trajectories from the
same start ("two responses to one prompt"), driven by the reward *difference* (so it is invariant to adding any
function of the start state to the reward), no value function, PPO-style importance ratios w.r.t. the policy
that collected the pair with clipping of the ratio, in two variants: V1 *separate* clipping (each trajectory's
ratio) and V2 *joint* clipping (one ratio per pair). The formulas below are the simplest ones consistent with
that; the paper may differ (e.g. in normalizing ``Δ`` or in the KL-to-reference term of RLHF, absent here).

For a pair ``k ∈ {1, 2}`` of trajectories from one start state, returns ``R_k`` and trajectory log-ratios
``ℓ_k = Σ_t log π_θ(a_t|s_t) − log π_old(a_t|s_t)`` (``ρ_k = exp ℓ_k``)::

    Δ      = (R_1 − R_2) / 2                      (sibling 1 gets +Δ, sibling 2 gets −Δ)
    L_sep  = −[ min(ρ_1 Δ, clip(ρ_1, 1±ε) Δ) + min(−ρ_2 Δ, clip(ρ_2, 1±ε)(−Δ)) ]          (V1)
    L_joint = −min(q Δ, clip(q, 1±ε) Δ),   q = ρ_1 / ρ_2 = exp(ℓ_1 − ℓ_2)                 (V2)

At ``θ = θ_old`` both give the pairwise policy gradient ``−Δ (∇log π(τ_1) − ∇log π(τ_2))``.

Reduction to LOOP (Chen et al. 2025, :func:`~purejaxpo.primitives.group_advantages.loo_advantage`): with
``K = 2`` the leave-one-out advantages are ``±2Δ``, and PPO-clip is positively homogeneous in the advantage, so
``L_sep = mean_k clipped_surrogate(ℓ_k, Â^LOO_k)``: V1 is PPO-clip with LOO(K = 2) advantages and
trajectory-level ratios (tested).

Shapes: pairs on a leading ``[G]`` axis, the two siblings on a last axis of size 2.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from purejaxpo.primitives.losses import clipped_surrogate

Array = jax.Array
SIGNS = jnp.array([1.0, -1.0])


def pairwise_advantage(returns: Array) -> Array:
    """``Δ = (R_1 − R_2) / 2`` of each pair: ``returns [..., 2] -> [...]`` (sibling 1 gets ``+Δ``, 2 gets ``−Δ``)."""
    if returns.shape[-1] != 2:
        raise ValueError(f"P3O compares pairs: the last axis must hold 2 siblings, got {returns.shape[-1]}")
    return 0.5 * (returns[..., 0] - returns[..., 1])


def trajectory_log_ratio(log_ratio: Array, mask: Array, trajectory: Array, num_trajectories: int) -> Array:
    """``ℓ_j = Σ_{n: trajectory_n = j} mask_n · log_ratio_n``: per-sample log-ratios ``[N]`` (any order, e.g. a
    shuffled full batch), a 0/1 ``mask`` ``[N]`` of the steps that belong to a trajectory and integer trajectory
    ids ``[N]`` in ``[0, num_trajectories)`` → ``[num_trajectories]``."""
    return jax.ops.segment_sum(mask * log_ratio, trajectory, num_segments=num_trajectories)


def p3o_separate_loss(traj_log_ratio: Array, delta: Array, clip_eps: float | Array) -> Array:
    """V1 (separate clipping), per pair: ``traj_log_ratio [G, 2]``, ``delta [G]`` → ``L_sep [G]``."""
    return jnp.sum(clipped_surrogate(traj_log_ratio, SIGNS * delta[..., None], clip_eps), axis=-1)


def p3o_joint_loss(traj_log_ratio: Array, delta: Array, clip_eps: float | Array) -> Array:
    """V2 (joint clipping), per pair: the ratio of ratios ``q = exp(ℓ_1 − ℓ_2)``; ``[G, 2]``, ``[G]`` → ``[G]``."""
    return clipped_surrogate(traj_log_ratio[..., 0] - traj_log_ratio[..., 1], delta, clip_eps)


__all__ = ["SIGNS", "p3o_joint_loss", "p3o_separate_loss", "pairwise_advantage", "trajectory_log_ratio"]
