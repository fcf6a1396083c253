"""PPO-family policy objectives and the small update rules of their carried state.

Every loss is *to be minimized* and returned per element; reduce with ``masked_mean``. Notation: log-ratio
``ℓ = log π_θ(a|s) − log π_old(a|s)``, ratio ``r = exp(ℓ)``, advantage ``Â``. Shapes: any ``[...]`` (time
on axis 0 by convention), all arguments broadcast against each other.

The clipped surrogate (with dual-clip) and the KL-penalized surrogate live in
:mod:`purejaxpo.primitives.losses` (``clipped_surrogate``, ``kl_penalty_surrogate``); this module adds

- :func:`spo_surrogate` — Simple Policy Optimization (Xie et al., ICML 2025, arXiv:2401.16025);
- :func:`dpo_drift` / :func:`dpo_surrogate` — Discovered Policy Optimisation (Lu et al. 2022, arXiv:2210.05639);
- :func:`r2vpo_surrogate` — ratio-variance penalty with a dual variable (Luo et al., arXiv:2601.03320 /
  arXiv:2605.26784; **our reconstruction**, the paper bodies were not available);
- :func:`ewma_decoupled_surrogate` — PPO-EWMA's decoupled clipped loss (Hilton et al. 2021, arXiv:2110.00641);

and the state updates :func:`adaptive_kl_beta`, :func:`dual_ascent`, :func:`ewma_update`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

Array = jax.Array
Scalar = float | Array


def spo_surrogate(log_ratio: Array, advantages: Array, clip_eps: Scalar) -> Array:
    """SPO loss per element (Xie et al. 2025, arXiv:2401.16025, eq. for ``L^SPO``)::

        L = −( r Â − |Â| (r − 1)² / (2ε) )

    The bracket is a concave parabola in ``r`` with its maximum at ``r = 1 + ε·sign(Â)``: the trust-region
    boundary of PPO-clip, but with a non-zero gradient pulling ``r`` back everywhere else.
    At ``Â = 0`` the loss is 0. Shapes ``[...]`` → ``[...]``.
    """
    ratio = jnp.exp(log_ratio)
    return -(ratio * advantages - jnp.abs(advantages) * jnp.square(ratio - 1.0) / (2.0 * clip_eps))


def dpo_drift(log_ratio: Array, advantages: Array, alpha: Scalar = 2.0, beta: Scalar = 0.6) -> Array:
    """DPO's closed-form drift ``D(r, Â) ≥ 0`` (Lu et al. 2022, arXiv:2210.05639, §6)::

        D = ReLU( (r−1)Â − α tanh((r−1)Â / α) )       if Â ≥ 0
        D = ReLU( ℓ Â     − β tanh(ℓ Â / β) )         if Â < 0          (ℓ = log r)

    ``D = 0`` at ``r = 1`` and grows like ``|x| − α`` for large ``x = (r−1)Â`` (resp. ``ℓÂ``), so large
    ratio moves *in the direction the advantage favours* are penalized. Shapes ``[...]`` → ``[...]``.
    """
    ratio = jnp.exp(log_ratio)
    x_pos = (ratio - 1.0) * advantages
    x_neg = log_ratio * advantages
    drift_pos = jax.nn.relu(x_pos - alpha * jnp.tanh(x_pos / alpha))
    drift_neg = jax.nn.relu(x_neg - beta * jnp.tanh(x_neg / beta))
    return jnp.where(advantages >= 0, drift_pos, drift_neg)


def dpo_surrogate(log_ratio: Array, advantages: Array, alpha: Scalar = 2.0, beta: Scalar = 0.6) -> Array:
    """Mirror-learning loss with the DPO drift: ``L = −( r Â − D(r, Â) )`` (see :func:`dpo_drift`).
    Shapes ``[...]`` → ``[...]``."""
    return -(jnp.exp(log_ratio) * advantages - dpo_drift(log_ratio, advantages, alpha, beta))


def r2vpo_surrogate(log_ratio: Array, advantages: Array, lam: Scalar, delta: Scalar) -> Array:
    """R²VPO Lagrangian per element — **our reconstruction** (Luo et al., arXiv:2601.03320, 2605.26784)::

        L = −r Â + λ ( (r − 1)² − δ )

    Its mean is ``−mean(r Â) + λ (V̂ar[r] − δ)`` with the on-policy estimator ``V̂ar[r] = mean((r − 1)²)``
    (``E_old[r] = 1``), which keeps the loss per element. The constraint ``V̂ar[r] ≤ δ`` is enforced by
    dual ascent on ``λ`` (:func:`dual_ascent`). With ``λ = 0`` this is the vanilla (unclipped)
    importance-sampled policy gradient ``−r Â``. Shapes ``[...]`` → ``[...]``.
    """
    ratio = jnp.exp(log_ratio)
    return -ratio * advantages + lam * (jnp.square(ratio - 1.0) - delta)


def ratio_second_moment(log_ratio: Array) -> Array:
    """``(r − 1)²`` per element; its mean estimates ``Var[r]`` under on-policy data (``E[r] = 1``)."""
    return jnp.square(jnp.expm1(log_ratio))


def dual_ascent(lam: Array, constraint_value: Array, dual_lr: Scalar) -> Array:
    """Projected dual ascent on a Lagrange multiplier: ``λ ← max(0, λ + η_λ · g)``, where ``g`` is the
    constraint violation (e.g. ``V̂ar[r] − δ``). Shapes: ``[...]`` → ``[...]``."""
    return jnp.maximum(0.0, lam + dual_lr * constraint_value)


def adaptive_kl_beta(beta: Array, kl: Array, kl_target: Scalar) -> Array:
    """The adaptive KL coefficient rule of Schulman et al. 2017 (§4), applied once per update::

        β ← β / 2   if d < d_targ / 1.5
        β ← 2 β     if d > 1.5 · d_targ
        β unchanged otherwise                (d = mean KL(π_old ‖ π_new) measured after the update)
    """
    beta = jnp.where(kl < kl_target / 1.5, beta * 0.5, beta)
    return jnp.where(kl > 1.5 * kl_target, beta * 2.0, beta)


def ewma_decoupled_surrogate(
    log_prob: Array,
    behavior_log_prob: Array,
    proximal_log_prob: Array,
    advantages: Array,
    clip_eps: Scalar,
    imp_samp_max: Scalar = 100.0,
) -> Array:
    """Decoupled PPO-clip loss per element (Hilton et al. 2021, arXiv:2110.00641, eq. 2), in log space::

        L = max( −Â π_θ/π_b ,  −Â (π_prox/π_b) clip(π_θ/π_prox, 1−ε, 1+ε) )

    ``π_b`` collected the data, ``π_prox`` is the proximal policy the trust region is centred on (an EWMA of
    past parameters in PPO-EWMA). For numerical stability with stale data, ``log π_b`` is raised to at
    least ``stop_gradient(log π_θ) − log(imp_samp_max)``, capping ``π_θ/π_b`` at ``imp_samp_max`` (as in
    the authors' code). With ``π_prox = π_b`` this is exactly PPO-clip. Shapes ``[...]`` → ``[...]``.
    """
    behavior = jnp.maximum(behavior_log_prob, jax.lax.stop_gradient(log_prob) - jnp.log(imp_samp_max))
    unclipped = -advantages * jnp.exp(log_prob - behavior)
    prox_log_ratio = jnp.clip(log_prob - proximal_log_prob, jnp.log1p(-clip_eps), jnp.log1p(clip_eps))
    clipped = -advantages * jnp.exp(prox_log_ratio + proximal_log_prob - behavior)
    return jnp.maximum(unclipped, clipped)


def ewma_update(proximal: Any, params: Any, weight: Array, decay: Scalar) -> tuple[Any, Array]:
    """Bias-corrected EWMA of parameters (PPO-EWMA), applied after every policy step::

        W' = β W + 1,    θ_prox ← ((W' − 1)/W') θ_prox + θ / W',    W ← W'

    ``W`` starts at 1 with ``θ_prox = θ_0``. With ``β = 0`` the proximal parameters become the current ones.
    The EWMA's centre of mass is ``β / (1 − β)`` steps in the past. Returns ``(θ_prox', W')``.
    """
    new_weight = decay * weight + 1.0
    keep = (new_weight - 1.0) / new_weight
    proximal = jax.tree.map(lambda p, q: keep * p + q / new_weight, proximal, params)
    return proximal, new_weight


__all__ = [
    "adaptive_kl_beta",
    "dpo_drift",
    "dpo_surrogate",
    "dual_ascent",
    "ewma_decoupled_surrogate",
    "ewma_update",
    "r2vpo_surrogate",
    "ratio_second_moment",
    "spo_surrogate",
]
