"""A recurrent actor-critic: an MLP encoder, one GRU or LSTM cell (flax NNX), and separate policy and value heads.

One step at time ``t`` (``m_{t−1}`` is the memory the step receives, already reset to zeros at an episode start)::

    m_t = cell(m_{t−1}, encoder(obs_t)),      π(·|m_t),   V(m_t)

:meth:`RecurrentActorCritic.step` runs one step for a batch ``[B]``; :meth:`~RecurrentActorCritic.unroll` replays
a whole rollout window ``[T, B]`` from the memory of its first step, resetting wherever an episode starts inside
the window (truncated backpropagation through time over the window, no burn-in). The cells' recurrent kernels use
our vmap-safe orthogonal initializer (flax's default batches a LAPACK QR under ``vmap``, which can deadlock a
2-core CPU; :mod:`purejaxpo.networks.initializers`).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from purejaxpo.networks import distributions
from purejaxpo.networks.initializers import orthogonal
from purejaxpo.networks.torsos import MLP, dense

Array = jax.Array
CELLS = ("gru", "lstm")


class RecurrentActorCritic(nnx.Module):
    """``step(memory, obs [B, *obs_shape]) -> (memory, distribution [B], value [B])``; ``memory`` is ``[B, H]``
    (GRU) or a ``(c, h)`` pair of ``[B, H]`` (LSTM). Discrete, multi-discrete and continuous heads as
    :class:`~purejaxpo.networks.actor_critic.ActorCritic` (the continuous log-std is state-independent)."""

    def __init__(
        self,
        obs_shape: Sequence[int],
        action_kind: str,
        action_dim: int,
        *,
        num_categories: int = 0,
        hidden_sizes: Sequence[int] = (64,),
        activation: str = "tanh",
        cell: str = "gru",
        memory_size: int = 128,
        init_log_std: float = 0.0,
        rngs: nnx.Rngs,
    ):
        if cell not in CELLS:
            raise ValueError(f"unknown recurrent cell {cell!r}; expected one of {CELLS}")
        self.obs_shape, self.action_kind, self.cell_kind = tuple(obs_shape), action_kind, cell
        self.action_dim, self.num_categories, self.memory_size = action_dim, num_categories, memory_size
        self.encoder = MLP(math.prod(obs_shape), hidden_sizes, activation, rngs=rngs)
        cell_cls = nnx.GRUCell if cell == "gru" else nnx.OptimizedLSTMCell
        self.cell = cell_cls(self.encoder.out_features, memory_size, recurrent_kernel_init=orthogonal(), rngs=rngs)
        head_out = action_dim * num_categories if action_kind == "multi_discrete" else action_dim
        self.policy_head = dense(memory_size, head_out, 0.01, rngs)
        self.value_head = dense(memory_size, 1, 1.0, rngs)
        if action_kind == "continuous":
            self.log_std = nnx.Param(jnp.full((action_dim,), init_log_std, jnp.float32))

    def initial_memory(self, batch_shape: tuple[int, ...]) -> Any:
        """The fresh-episode memory (zeros) for ``batch_shape`` envs."""
        zeros = jnp.zeros(tuple(batch_shape) + (self.memory_size,), jnp.float32)
        return (zeros, zeros) if self.cell_kind == "lstm" else zeros

    def _output(self, memory: Any) -> Array:
        return memory[1] if self.cell_kind == "lstm" else memory

    def _heads(self, features: Array) -> tuple[Any, Array]:
        out = self.policy_head(features)
        if self.action_kind == "discrete":
            dist = distributions.categorical(out)
        elif self.action_kind == "multi_discrete":
            dist = distributions.multi_categorical(out.reshape(out.shape[:-1] + (self.action_dim, self.num_categories)))
        else:
            dist = distributions.diag_gaussian(out, self.log_std[...])
        return dist, self.value_head(features)[..., 0]

    def step(self, memory: Any, obs: Array) -> tuple[Any, Any, Array]:
        """One step for a batch ``[B]``: the next memory, the policy and the value."""
        x = obs.astype(jnp.float32).reshape(obs.shape[: obs.ndim - len(self.obs_shape)] + (-1,))
        memory, _ = self.cell(memory, self.encoder(x))
        dist, value = self._heads(self._output(memory))
        return memory, dist, value

    def unroll(self, memory: Any, obs: Array, starts: Array) -> tuple[Any, Array]:
        """Replay ``obs [T, B, ...]`` from ``memory`` (the first step's, ``[B, ...]``), resetting to zeros where
        ``starts [T, B]`` (an episode's first observation); returns the policy ``[T, B]`` and values ``[T, B]``."""
        fresh = self.initial_memory(starts.shape[1:])

        def body(m: Any, inputs: tuple[Array, Array]) -> tuple[Any, Array]:
            o, start = inputs
            m = jax.tree.map(lambda f, c: jnp.where(start[:, None], f, c), fresh, m)
            x = o.astype(jnp.float32).reshape(o.shape[:1] + (-1,))
            m, _ = self.cell(m, self.encoder(x))
            return m, self._output(m)

        _, features = jax.lax.scan(body, memory, (obs, starts))
        return self._heads(features)
