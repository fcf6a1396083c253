"""SubPO's pure pieces: marginal-gain rewards of a set function, running objective, reward-to-go, the
score-function (REINFORCE) surrogate. Time on axis 0, trailing axes broadcast (no per-sequence ``vmap``).

Paper: Prajapat, Mutný, Zeilinger, Krause, "Submodular Reinforcement Learning", ICLR 2024 (arXiv:2307.13372).
A trajectory ``τ = (s_0, …, s_H)`` is scored by a monotone submodular ``F`` of its *set* of states
(arXiv:2307.13372, §4)::

    Δ_j = F(τ_{0:j} ∪ {s_{j+1}}) − F(τ_{0:j}) ≥ 0,        F(τ) = F({s_0}) + Σ_{j=0}^{H−1} Δ_j

SubPO's two gradient estimators weight ``∇ log π(a_h | x_h)`` by

- ``F(τ_{0:h+1})`` (:func:`running_objective`): the paper's released grid-world code (``main.py``) [C]. Since
  ``F(τ_{0:h})`` is fixed before ``a_h`` is drawn, its mean is ``Σ_h E[∇ log π_h · Δ_h]``: a greedy ascent of
  each step's immediate marginal gain;
- ``Σ_{j≥h} γ^{j−h} Δ_j − b(x_h)`` (:func:`reward_to_go`, or GAE over ``Δ`` with a critic): with ``γ = 1``
  an unbiased estimate of ``∇_θ E[F(τ)]`` for Markov and history-dependent policies alike ([P]).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

Array = jax.Array
# value_fn(visited [N] bool) -> [] : a set function on one visited mask.
SetValueFn = Callable[[Array], Array]


def marginal_gain_rewards(value_fn: SetValueFn, cells: Array, num_cells: int) -> tuple[Array, Array]:
    """Marginal gains of the states of one trajectory per time step (the SubRL reward transform).

    ``Δ_j = F(τ_{0:j} ∪ {s_{j+1}}) − F(τ_{0:j})`` for ``j = 0..H−1``, with ``τ_{0:j}`` the *set* of the first
    ``j+1`` states (a revisit gains 0).

    Args:
      value_fn: ``F(visited [N]) -> []`` (any set function; see :mod:`purejaxpo.envs.set_functions`).
      cells: int ``[H+1, ...]`` state (cell) indices ``s_0..s_H``; trailing axes are independent trajectories.
      num_cells: ``N``, the size of the ground set.

    Returns:
      ``(gains [H, ...], first [...])`` with ``first = F({s_0})``; ``first + gains.sum(0) = F(τ)``.
    """
    cells = jnp.asarray(cells, jnp.int32)
    batch = cells.shape[1:]
    flat = cells.reshape(cells.shape[0], -1)  # [H+1, B]

    def one(seq: Array) -> tuple[Array, Array]:
        visited = jnp.zeros(num_cells, bool).at[seq[0]].set(True)
        first = value_fn(visited)

        def step(carry: tuple[Array, Array], cell: Array) -> tuple[tuple[Array, Array], Array]:
            visited, value = carry
            visited = visited.at[cell].set(True)
            new_value = value_fn(visited)
            return (visited, new_value), new_value - value

        _, gains = jax.lax.scan(step, (visited, first), seq[1:])
        return gains, first

    gains, first = jax.vmap(one, in_axes=1, out_axes=(1, 0))(flat)
    return gains.reshape((cells.shape[0] - 1,) + batch), first.reshape(batch)


def running_objective(first_value: Array, gains: Array, done: Array | None = None) -> Array:
    """``F(τ_{0:t+1}) = F({s_0}) + Σ_{j≤t} Δ_j``: the objective reached after each step, restarted after every
    episode end. The grid-world estimator's weight (``main.py``'s ``R_h`` before ``/MAX_Ret``).

    Args:
      first_value: ``[...]`` ``F({s_0})`` of each episode's start state (the same for every episode here: a
        new episode after ``done`` restarts from ``first_value``).
      gains: ``[T, ...]`` marginal gains ``Δ_t``.
      done: ``[T, ...]`` episode ended at step ``t`` (``None``: one episode).

    Returns ``[T, ...]``.
    """
    gains = jnp.asarray(gains)
    first_value = jnp.broadcast_to(jnp.asarray(first_value, gains.dtype), gains.shape[1:])
    done = jnp.zeros(gains.shape, bool) if done is None else jnp.asarray(done, bool)

    def step(value: Array, inputs: tuple[Array, Array]) -> tuple[Array, Array]:
        gain, ended = inputs
        value = value + gain
        return jnp.where(ended, first_value, value), value

    _, values = jax.lax.scan(step, first_value, (gains, done))
    return values


def reward_to_go(rewards: Array, done: Array | None = None, gamma: float | Array = 1.0) -> Array:
    """Monte-Carlo reward-to-go within each episode, ``G_t = Σ_{j=t}^{end} γ^{j−t} r_j``::

        G_t = r_t + γ (1 − done_t) G_{t+1},     G_T = 0

    With ``r = Δ`` and ``γ = 1`` it is SubPO's unbiased weight; it equals GAE with ``λ = 1`` and
    ``V ≡ 0`` on whole episodes. ``rewards, done``: ``[T, ...]`` (``done=None``: one episode). Returns ``[T, ...]``.
    """
    rewards = jnp.asarray(rewards)
    done = jnp.zeros(rewards.shape, rewards.dtype) if done is None else jnp.asarray(done, rewards.dtype)
    decay = gamma * (1.0 - done)

    def step(carry: Array, inputs: tuple[Array, Array]) -> tuple[Array, Array]:
        reward, discount = inputs
        carry = reward + discount * carry
        return carry, carry

    _, returns = jax.lax.scan(step, jnp.zeros(rewards.shape[1:], rewards.dtype), (rewards, decay), reverse=True)
    return returns


def score_function_surrogate(log_prob: Array, weights: Array, old_log_prob: Array | None = None) -> Array:
    """Per-element REINFORCE surrogate to *minimize*, whose gradient is ``−w ∇ log π``::

        L = −log π(a | x) · w                         (old_log_prob None)
        L = −exp(log π − log π_old) · w               (importance-weighted; same gradient at π = π_old)

    ``weights`` are treated as constants (``stop_gradient``): ``F(τ_{0:h+1})`` for the grid-world estimator,
    reward-to-go / advantages for the actor-critic one. Shapes ``[...]`` → ``[...]``.
    """
    weights = jax.lax.stop_gradient(weights)
    if old_log_prob is None:
        return -log_prob * weights
    return -jnp.exp(log_prob - jax.lax.stop_gradient(old_log_prob)) * weights
