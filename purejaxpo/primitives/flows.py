"""Flow-policy primitives for PolicyFlow (Yang, Liu & Chen, "PolicyFlow: Policy Optimization with Continuous
Normalizing Flow in Reinforcement Learning", arXiv:2602.01156, ICLR 2026).

The policy is ``a = φ_θ(x0; s) + δ`` with ``x0 ~ N(0, I)``, ``φ_θ`` the endpoint of the ODE
``dx/dt = v_θ(x, t; s)`` and ``δ ~ N(0, diag σ²)``. All functions are pure array code; velocity fields are
passed as callables ``v(x [..., D], t [...]) -> [..., D]``. Action vectors live on the last axis ``D``;
every leading axis is a batch axis. Formulas follow the released code ([C]); choices marked [P] in docstrings are our reading.
The FPO primitives below (the flow baseline PolicyFlow compares with) follow FPO's official code.
"""

from __future__ import annotations

import math
from typing import Callable

import distrax
import jax
import jax.numpy as jnp

from purejaxpo.primitives.kl_adaptive import kl_adaptive_lr  # noqa: F401  (re-exported: PolicyFlow's schedule)

Array = jax.Array
VelocityFn = Callable[[Array, Array], Array]

INTERPOLANTS = ("rectified_flow", "stochastic_interpolant", "trigflow")
BROWNIAN_REDUCTIONS = ("mean", "l2")


def time_horizon(kind: str) -> float:
    """End time of the interpolant's path: ``π/2`` for trig-flow, else 1."""
    _check_kind(kind)
    return math.pi / 2 if kind == "trigflow" else 1.0


def _check_kind(kind: str) -> None:
    if kind not in INTERPOLANTS:
        raise ValueError(f"unknown interpolant {kind!r}; expected one of {INTERPOLANTS}")


def interpolate(x0: Array, x1: Array, t: Array, kind: str = "rectified_flow", noise: Array | None = None) -> Array:
    """A point ``x_t`` on the path from ``x0`` (t = 0) to ``x1`` (t = horizon); ``x0, x1 [..., D]``, ``t [...]``.

    - ``rectified_flow``:        ``x_t = (1 − t) x0 + t x1`` (Liu et al. 2022; PolicyFlow's default);
    - ``stochastic_interpolant``: ``x_t = (1 − t) x0 + t x1 + sqrt(2 t (1 − t)) ξ`` (``noise`` = ξ, ``[..., D]``;
      Albergo & Vanden-Eijnden 2023);
    - ``trigflow``:              ``x_t = cos t · x0 + sin t · x1`` with ``t ∈ [0, π/2]`` (Lu & Song 2024).
    """
    _check_kind(kind)
    t = jnp.asarray(t)[..., None]
    if kind == "trigflow":
        return jnp.cos(t) * x0 + jnp.sin(t) * x1
    x_t = (1.0 - t) * x0 + t * x1
    if kind == "stochastic_interpolant":
        if noise is None:
            raise ValueError("interpolate(kind='stochastic_interpolant') needs noise ξ of x0's shape")
        x_t = x_t + jnp.sqrt(jnp.maximum(2.0 * t * (1.0 - t), 0.0)) * noise
    return x_t


def solver_times(num_steps: int, horizon: float = 1.0) -> Array:
    """The ``2K + 1`` times at which the midpoint solver evaluates ``v``: ``t_0, t_0 + Δ/2, t_1, …, t_K``
    with ``t_k = k·horizon/K`` (``[2K + 1]``). PolicyFlow draws the ratio's time from this set [C]."""
    return jnp.linspace(0.0, horizon, 2 * num_steps + 1)


def midpoint_sample(velocity: VelocityFn, x0: Array, num_steps: int, horizon: float = 1.0) -> Array:
    """Integrate ``dx/dt = v(x, t)`` from ``t = 0`` to ``horizon`` with ``K = num_steps`` explicit midpoint
    (RK2) steps on a uniform grid, as one ``lax.scan``::

        v1 = v(x, t_k);   x_mid = x + (Δ/2) v1;   v2 = v(x_mid, t_k + Δ/2);   x ← x + Δ v2

    ``x0 [..., D] -> x1 [..., D]``; ``velocity`` receives ``t`` broadcast to ``x.shape[:-1]``. Costs ``2K``
    velocity evaluations ([C]). Local error O(Δ³), global O(Δ²).
    """
    if not isinstance(num_steps, int) or num_steps <= 0:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    dt = horizon / num_steps
    batch_shape = x0.shape[:-1]

    def step(x: Array, t: Array) -> tuple[Array, None]:
        t_b = jnp.broadcast_to(t, batch_shape).astype(x.dtype)
        v1 = velocity(x, t_b)
        x_mid = x + 0.5 * dt * v1
        v2 = velocity(x_mid, t_b + 0.5 * dt)
        return x + dt * v2, None

    times = jnp.arange(num_steps, dtype=x0.dtype) * dt
    x1, _ = jax.lax.scan(step, x0, times)
    return x1


def residual_gaussian(mean: Array, log_std: Array) -> distrax.MultivariateNormalDiag:
    """The diagonal Gaussian ``N(mean, diag exp(log_std)²)`` over the last axis (``log_std`` broadcast to
    ``mean``), as a distrax distribution: its ``log_prob``, ``entropy`` and ``kl_divergence`` are distrax's."""
    return distrax.MultivariateNormalDiag(mean, jnp.exp(jnp.broadcast_to(log_std, jnp.shape(mean))))


def velocity_variation(velocity_new: VelocityFn, velocity_old: VelocityFn, x_t: Array, t: Array) -> Array:
    """``Δv = v_θ(x_t, t) − stopgrad(v_θold(x_t, t))`` ([C]); ``[..., D]``.

    For a straight flow ``φ(x0) = x0 + ∫ v dt ≈ x0 + v(x_t, t)`` at any ``t`` on the path, so
    ``φ_θ(x0) − φ_θold(x0) ≈ Δv``: the endpoint's shift caused by the parameter update.
    """
    return velocity_new(x_t, t) - jax.lax.stop_gradient(velocity_old(x_t, t))


def policyflow_log_ratio(delta_v: Array, delta: Array, log_std_new: Array, log_prob_old: Array) -> Array:
    """The approximate log-ratio ``log π̃_θ(a|s) − log π_old(a|s)`` of PolicyFlow ([C])::

        log π̃_θ = log N(δ; Δv, σ_θ²)        log π_old = log N(δ; 0, σ_old²)  (stored at rollout)

    ``delta_v, delta [..., D]`` (``δ = a − x1``), ``log_std_new`` broadcastable to ``[..., D]``,
    ``log_prob_old [...]`` → ``[...]``. Equals 0 when θ = θ_old (Δv = 0, σ_θ = σ_old).
    """
    return residual_gaussian(delta_v, log_std_new).log_prob(delta) - log_prob_old


def policyflow_kl(delta_v: Array, log_std_new: Array, log_std_old: Array, eps: float = 1e-5) -> Array:
    """KL of the residual Gaussians used by the KL-adaptive learning rate ([C], the released
    code's formula with its ``+1e-5`` inside the log)::

        KL = Σ_d [ log(σ_new/σ_old + ε) + (σ_old² + Δv²) / (2 σ_new²) − ½ ]

    i.e. ``KL(N(0, σ_old²) ‖ N(Δv, σ_new²))`` up to ε. ``[..., D] -> [...]``.
    """
    log_std_new = jnp.broadcast_to(log_std_new, delta_v.shape)
    log_std_old = jnp.broadcast_to(log_std_old, delta_v.shape)
    var_new = jnp.exp(2.0 * log_std_new)
    var_old = jnp.exp(2.0 * log_std_old)
    per_dim = jnp.log(jnp.exp(log_std_new - log_std_old) + eps) + (var_old + jnp.square(delta_v)) / (2.0 * var_new) - 0.5
    return jnp.sum(per_dim, axis=-1)


def brownian_regularizer(
    v_new: Array,
    v_old: Array,
    x_t: Array,
    t: Array,
    kind: str = "rectified_flow",
    beta: float | Array = 1.0,
    reduction: str = "mean",
) -> Array:
    """PolicyFlow's Brownian regularizer per sample ([C]; ``v_old`` is treated as a constant)::

        rectified_flow:          ‖ (1 − t) v_θ  −  β (x_t − t v_old) ‖²
        stochastic_interpolant:  ‖ (2(t − ½)² + ½) v_θ  −  β (x_t − t v_old) ‖²
        trigflow:                ‖ cos t · v_θ  −  β (cos t · x_t − sin t · v_old) ‖²

    ``v_new, v_old, x_t [..., D]``, ``t [...]`` → ``[...]``. ``reduction="mean"`` averages over the D action
    dims (the released code's element-wise MSE); ``"l2"`` sums them (the paper's squared norm): a factor D.
    Placing β on the whole target for the non-rectified interpolants is our reading [P].

    For rectified flow at the fixed point ``v_old = v_θ`` and β = 1, ``(1 − t) v = x − t v`` gives
    ``v(x, t) = x``: a linearly expanding field (divergence D), the probability-flow velocity of a spreading,
    Brownian-like density, so the term raises the flow's entropy ([P] interpretation).
    """
    _check_kind(kind)
    if reduction not in BROWNIAN_REDUCTIONS:
        raise ValueError(f"unknown brownian reduction {reduction!r}; expected one of {BROWNIAN_REDUCTIONS}")
    v_old = jax.lax.stop_gradient(v_old)
    t = jnp.asarray(t)[..., None]
    if kind == "rectified_flow":
        lhs, rhs = (1.0 - t) * v_new, x_t - t * v_old
    elif kind == "stochastic_interpolant":
        lhs, rhs = (2.0 * jnp.square(t - 0.5) + 0.5) * v_new, x_t - t * v_old
    else:
        lhs, rhs = jnp.cos(t) * v_new, jnp.cos(t) * x_t - jnp.sin(t) * v_old
    sq = jnp.square(lhs - beta * rhs)
    return jnp.mean(sq, axis=-1) if reduction == "mean" else jnp.sum(sq, axis=-1)


# ----------------------------------------------------------------------------------------------------------------
# FPO: flow policy optimization (McAllister et al. 2025, "Flow Matching Policy Gradients", arXiv:2507.21053;
# official code github.com/akanazawa/fpo, playground/src/flow_policy/fpo.py [C]). Convention there: t = 1 is
# noise, t = 0 the action, x_t = t·ε + (1 − t)·a, and the network's velocity points from the action to the noise.
# ----------------------------------------------------------------------------------------------------------------

CFM_MODES = ("u_but_supervise_as_eps", "u")


def fpo_schedule(num_steps: int) -> tuple[Array, Array]:
    """``(t_current [K], t_next [K])`` of ``linspace(1, 0, K + 1)``: the Euler steps from noise to action."""
    path = jnp.linspace(1.0, 0.0, num_steps + 1)
    return path[:-1], path[1:]


def timestep_embedding(t: Array, dim: int = 8) -> Array:
    """``t [...] -> [..., dim]``: ``[cos(2^k t), sin(2^k t)]`` for ``k < dim/2`` (FPO's embedding [C])."""
    if dim % 2:
        raise ValueError(f"the timestep embedding needs an even dim, got {dim}")
    scaled = jnp.asarray(t)[..., None] * (2.0 ** jnp.arange(dim // 2, dtype=jnp.float32))
    return jnp.concatenate([jnp.cos(scaled), jnp.sin(scaled)], axis=-1)


def euler_sample(velocity: VelocityFn, noise: Array, num_steps: int) -> Array:
    """Integrate ``dx/dt = v(x, t)`` from ``t = 1`` (``x = noise [..., D]``) to ``t = 0`` with ``K`` Euler steps,
    ``x ← x + (t_next − t)·v(x, t)`` (FPO's sampler with ``sde_sigma = 0`` [C]); ``velocity`` gets ``t``
    broadcast to ``x.shape[:-1]``. Returns the action ``[..., D]``."""
    t_current, t_next = fpo_schedule(num_steps)

    def step(x: Array, times: tuple[Array, Array]) -> tuple[Array, None]:
        t, t_after = times
        return x + (t_after - t) * velocity(x, jnp.broadcast_to(t, x.shape[:-1])), None

    action, _ = jax.lax.scan(step, noise, (t_current, t_next))
    return action


def cfm_interpolate(action: Array, eps: Array, t: Array) -> Array:
    """``x_t = t·ε + (1 − t)·a``: ``action [..., D]``, ``eps [..., N, D]``, ``t [..., N]`` → ``[..., N, D]``."""
    return t[..., None] * eps + (1.0 - t[..., None]) * action[..., None, :]


def cfm_loss(velocity_pred: Array, x_t: Array, eps: Array, action: Array, t: Array,
             mode: str = "u_but_supervise_as_eps") -> Array:
    """FPO's conditional flow-matching loss per (ε, t) pair, ``[..., N]`` ([C])::

        "u":                       mean_d (v̂ − (ε − a))²
        "u_but_supervise_as_eps":  mean_d (ε − x̂_1)²,  x̂_1 = x_t − t·v̂ + v̂   (= (1 − t)² · the "u" loss)

    ``velocity_pred, x_t, eps [..., N, D]``, ``action [..., D]``, ``t [..., N]``.
    """
    if mode not in CFM_MODES:
        raise ValueError(f"unknown CFM mode {mode!r}; expected one of {CFM_MODES}")
    if mode == "u":
        return jnp.mean(jnp.square(velocity_pred - (eps - action[..., None, :])), axis=-1)
    x1_pred = x_t - t[..., None] * velocity_pred + velocity_pred
    return jnp.mean(jnp.square(eps - x1_pred), axis=-1)


def fpo_log_ratio(loss_old: Array, loss_new: Array, average_before_exp: bool = True, clip: float = 3.0) -> Array:
    """FPO's log-ratio surrogate from CFM losses ``[..., N]`` ([C])::

        average_before_exp:  log ρ = mean_i ℓ_old,i − mean_i ℓ_θ,i         → [...]
        otherwise:           log ρ_i = clip(ℓ_old,i − ℓ_θ,i, −clip, clip)   → [..., N] (one ratio per pair)

    A lower CFM loss on (s, a) than before the update means the new flow makes ``a`` more likely.
    """
    if average_before_exp:
        return jnp.mean(loss_old, axis=-1) - jnp.mean(loss_new, axis=-1)
    return jnp.clip(loss_old - loss_new, -clip, clip)
