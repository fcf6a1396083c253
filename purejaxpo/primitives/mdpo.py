"""Mirror Descent Policy Optimization losses (Tomar, Shani, Efroni, Ghavamzadeh, "Mirror Descent Policy
Optimization", ICLR 2022, arXiv:2005.09814).

All losses are *to be minimized* and returned per element (reduce with ``masked_mean``); inputs broadcast
over any leading ``[T, B]`` / ``[N]`` axes.

- :func:`mdpo_on_loss`: on-policy MDPO, ``−ρ Â + (1/t_k) KL(π_θ ‖ π_θk)``.
- :func:`mdpo_off_actor_loss`: off-policy MDPO actor, SAC-style with a KL to a lagged policy.
- :func:`sac_actor_loss`: the SAC (v1) actor loss the off-policy form reduces to.
- :func:`mdpo_step_size`: the annealed MD step size ``t_k = 1 − k/K``.

The closed-form KLs are distrax's (``dist.kl_divergence``, first argument = the *current* policy) and the
tanh-squashed Gaussian's log-density is :func:`purejaxpo.networks.squashed_gaussian.squashed_log_prob`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def mdpo_step_size(k: Array | int, num_iterations: Array | int, t0: Array | float = 1.0) -> Array:
    """MD step size ``t_k = t0 · max(1 − k/K, 1/K)`` for the 0-based iteration index ``k``.

    The released code computes ``1 − (k' − 1)/K`` with the 1-based ``k'``: ``t = 1`` at the first iteration and
    ``1/K`` at the last (``k = K − 1``), so the KL weight ``1/t_k`` grows from 1 to ``K``. Beyond the horizon
    (``k ≥ K``, when ``anneal_horizon`` is shorter than the run) we hold ``t = t0/K`` instead of reaching 0
    [P: our reading]. Shapes: scalars or any broadcastable arrays.
    """
    k = jnp.asarray(k, jnp.float32)
    horizon = jnp.asarray(num_iterations, jnp.float32)
    return t0 * jnp.maximum(1.0 - k / horizon, 1.0 / horizon)


def mdpo_on_loss(log_prob: Array, old_log_prob: Array, advantages: Array, kl: Array, step_size: Array | float) -> Array:
    """On-policy MDPO loss per element (the paper's eq. for the MD subproblem)::

        L(θ) = −ρ_θ Â + (1/t_k) · KL(π_θ(·|s) ‖ π_θk(·|s)),    ρ_θ = π_θ(a|s) / π_θk(a|s)

    No clipping: the trust region is the soft KL term alone. ``kl`` is the closed-form per-state KL with the
    *current* policy first. At ``θ = θ_k``, ``ρ = 1`` and ``KL = 0``, so ``L = −Â`` and ``∇L = −Â ∇log π``
    (the plain policy gradient).

    Shapes: ``log_prob``, ``old_log_prob``, ``advantages``, ``kl``: ``[...]``; ``step_size`` scalar → ``[...]``.
    """
    ratio = jnp.exp(log_prob - old_log_prob)
    return -ratio * advantages + kl / step_size


def mdpo_off_actor_loss(
    log_prob: Array, old_log_prob_at_action: Array, q_value: Array, kl_coef: Array | float, ent_coef: Array | float
) -> Array:
    """Off-policy MDPO actor loss per element (``mdpo_off/mdpo.py``)::

        L_π = c_KL · (log π_θ(ã|s) − log π_θk(ã|s)) + λ · log π_θk(ã|s) − Q(s, ã),   ã = tanh(μ_θ + σ_θ ε)

    ``c_KL = 1/t_k``; both log-densities are at the *same* reparameterized action ``ã`` of the current policy
    (the sampled-KL estimate of ``KL(π_θ ‖ π_θk)``), so gradients flow through ``ã`` into all three terms.
    With ``π_θk = π_θ`` (stop-gradient) this is :func:`sac_actor_loss` up to the placement of the entropy term.
    Shapes ``[...]`` → ``[...]``.
    """
    return kl_coef * (log_prob - old_log_prob_at_action) + ent_coef * old_log_prob_at_action - q_value


def sac_actor_loss(log_prob: Array, q_value: Array, ent_coef: Array | float) -> Array:
    """SAC actor loss per element (Haarnoja et al. 2018, arXiv:1801.01290, eq. 12): ``λ log π_θ(ã|s) − Q(s, ã)``."""
    return ent_coef * log_prob - q_value


__all__ = [
    "mdpo_off_actor_loss", "mdpo_on_loss", "mdpo_step_size", "sac_actor_loss",
]
