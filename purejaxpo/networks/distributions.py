"""Policy distributions: the small protocol every policy satisfies, and the builders we use.

distrax distributions already satisfy the protocol; later policies (e.g. flow policies) implement the
same four methods so the trainers need not know what they sample from.

Continuous actions are sampled *unbounded* (the Gaussian's support) and the log-probability is that of
the unbounded sample; :func:`to_env_action` maps them into the environment's ``Box``, either by clipping
(CleanRL/PureJaxRL style) or by ``tanh`` squashing rescaled to ``[low, high]``. Treating the bound as part
of the environment keeps the likelihood ratio exact and the entropy analytic.
"""

from __future__ import annotations

from typing import Any, Protocol

import distrax
import jax
import jax.numpy as jnp

Array = jax.Array


class PolicyDistribution(Protocol):
    """What a trainer needs from a policy's action distribution (batch shape ``[...]``)."""

    def sample_and_log_prob(self, *, seed: Array) -> tuple[Array, Array]: ...

    def log_prob(self, value: Array) -> Array: ...

    def entropy(self) -> Array: ...

    def kl_divergence(self, other: Any) -> Array: ...

    def mode(self) -> Array: ...


def categorical(logits: Array) -> distrax.Distribution:
    """One categorical over the last axis of ``logits`` ``[..., A]``."""
    return distrax.Categorical(logits=logits)


def multi_categorical(logits: Array) -> distrax.Distribution:
    """Independent categoricals, ``logits`` ``[..., M, K]``: actions ``[..., M]``, log-probs summed over M."""
    return distrax.Independent(distrax.Categorical(logits=logits), reinterpreted_batch_ndims=1)


def diag_gaussian(mean: Array, log_std: Array) -> distrax.Distribution:
    """Diagonal Gaussian over the last axis; ``log_std`` broadcasts to ``mean`` ``[..., D]``."""
    return distrax.MultivariateNormalDiag(mean, jnp.broadcast_to(jnp.exp(log_std), mean.shape))


def to_env_action(raw_action: Array, low: Array, high: Array, bounds: str) -> Array:
    """Map an unbounded continuous action ``[..., D]`` into ``[low, high]`` (``"clip"`` or ``"tanh"``)."""
    if bounds == "clip":
        return jnp.clip(raw_action, low, high)
    if bounds == "tanh":
        return low + 0.5 * (jnp.tanh(raw_action) + 1.0) * (high - low)
    raise ValueError(f"unknown action bounds mode {bounds!r}; expected 'clip' or 'tanh'")
