"""Group and set advantages: baselines from sibling rollouts that share a start state, no critic needed.

- :func:`loo_advantage` — leave-one-out baseline of LOOP (Chen et al. 2025, arXiv:2502.01600);
- :func:`polychromic_set_advantage`, :func:`distinct_fraction`, :func:`apply_set_advantage` — the set
  advantage of Polychromic PPO (Hamid et al. 2025, arXiv:2509.25424) with vine sampling;
- :func:`first_episode_mask`, :func:`first_episode_end` — helpers to cut a rollout window at each env's
  first episode end (time on axis 0).

Group axes are explicit: returns ``[..., K]`` hold the K siblings on the last axis.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def loo_baseline(returns: Array) -> Array:
    """Leave-one-out baseline over the last axis (K ≥ 2 siblings from the same start state)::

        b_k = (Σ_j R_j − R_k) / (K − 1)

    Shapes ``[..., K]`` → ``[..., K]``.
    """
    k = returns.shape[-1]
    if k < 2:
        raise ValueError(f"a leave-one-out baseline needs at least 2 rollouts per group, got K={k}")
    return (jnp.sum(returns, axis=-1, keepdims=True) - returns) / (k - 1)


def loo_advantage(returns: Array) -> Array:
    """LOOP's advantage ``Â_k = R_k − b_k = K/(K−1) · (R_k − mean_j R_j)`` (no std normalization; Chen
    et al. 2025). Shapes ``[..., K]`` → ``[..., K]``; sums to 0 over each group."""
    return returns - loo_baseline(returns)


def distinct_fraction(signatures: Array) -> Array:
    """Fraction of distinct signatures in a set: ``|{distinct rows}| / n`` (exact equality).

    The default diversity ``d(s, τ_{1:n})`` of Polychromic PPO [P: "fraction of distinct trajectory
    signatures", e.g. distinct final cells in a gridworld]. ``[..., n, D]`` → ``[...]`` in ``[1/n, 1]``.
    """
    n = signatures.shape[-2]
    equal = jnp.all(signatures[..., :, None, :] == signatures[..., None, :, :], axis=-1)  # [..., n, n]
    earlier = jnp.tril(jnp.ones((n, n), bool), k=-1)  # earlier[i, j] = j < i
    repeated = jnp.any(equal & earlier, axis=-1)  # row i equals some earlier row
    return 1.0 - jnp.mean(repeated.astype(jnp.float32), axis=-1)


def polychromic_set_advantage(set_returns: Array, diversity: Array) -> Array:
    """Set advantage of Polychromic PPO (Hamid et al. 2025, arXiv:2509.25424)::

        f_poly(set_m) = ( (1/n) Σ_i R(τ_{m,i}) ) · d(set_m)          (mean reward × diversity, d ∈ [0, 1])
        Â_m = f_poly(set_m) − (1/M) Σ_m' f_poly(set_m')

    Args:
      set_returns: ``[..., M, n]`` returns of the ``n`` trajectories in each of ``M`` sets drawn from the
        same state.
      diversity: ``[..., M]`` diversity of each set.

    Returns ``[..., M]``; sums to 0 over the sets of a state. With ``d ≡ 1`` it is a plain set-mean baseline.
    """
    f_poly = jnp.mean(set_returns, axis=-1) * diversity
    return f_poly - jnp.mean(f_poly, axis=-1, keepdims=True)


def first_episode_mask(done: Array) -> Array:
    """``[T, ...]`` float mask: 1 for the steps of each env's first episode in the window (up to and
    including its first ``done``), 0 after it."""
    done = jnp.asarray(done, jnp.float32)
    ended_before = jnp.concatenate([jnp.zeros_like(done[:1]), jax.lax.cummax(done, axis=0)[:-1]], axis=0)
    return 1.0 - ended_before


def first_episode_end(per_step: Array, after_last: Array, done: Array) -> Array:
    """The value of ``per_step`` at each env's first ``done`` in the window, or ``after_last`` when its
    episode is still running at the end.

    Args:
      per_step: ``[T, B, ...]`` (e.g. the final observations of the steps).
      after_last: ``[B, ...]`` (e.g. the observation after the last step).
      done: ``[T, B]``.

    Returns ``[B, ...]``.
    """
    done = jnp.asarray(done, bool)
    index = jnp.argmax(done, axis=0)  # first True (0 when there is none)
    at_end = jnp.take_along_axis(per_step, index.reshape((1,) + index.shape + (1,) * (per_step.ndim - 2)), axis=0)[0]
    ended = jnp.any(done, axis=0).reshape(index.shape + (1,) * (per_step.ndim - 2))
    return jnp.where(ended, at_end, after_last)


def apply_set_advantage(advantages: Array, set_advantage: Array, first_episode: Array, window: int) -> Array:
    """Give the first ``window`` steps of each vine (within its first episode) the vine's set advantage;
    all other steps keep ``advantages`` (Polychromic PPO, step 4).

    Shapes: ``advantages``, ``first_episode``: ``[T, B]``; ``set_advantage``: ``[B]`` → ``[T, B]``.
    """
    in_window = (jnp.arange(advantages.shape[0]) < window).reshape((-1,) + (1,) * (advantages.ndim - 1))
    return jnp.where(in_window & (first_episode > 0), set_advantage, advantages)
