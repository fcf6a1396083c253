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
    """Map an unbounded continuous action ``[..., D]`` into ``[low, high]`` (``"clip"`` or ``"tanh"``), or pass
    it through unchanged (``"none"``: for envs that bound the action themselves and may charge the raw one, as
    PolicyFlow's MultiGoal does)."""
    if bounds == "none":
        return raw_action
    if bounds == "clip":
        return jnp.clip(raw_action, low, high)
    if bounds == "tanh":
        return low + 0.5 * (jnp.tanh(raw_action) + 1.0) * (high - low)
    raise ValueError(f"unknown action bounds mode {bounds!r}; expected 'clip', 'tanh' or 'none'")


def env_action(spec: Any, raw_action: Array, bounds: str | None) -> Array:
    """The action the env receives for a sampled (unbounded) policy action, for a
    :class:`~purejaxpo.spaces.PolicySpec`: discrete actions pass through; continuous ones are bounded with
    :func:`to_env_action` (``bounds`` ``None`` = ``"clip"``) and squeezed for a scalar ``Box``."""
    if spec.kind != "continuous":
        return raw_action
    action = to_env_action(raw_action, spec.low, spec.high, bounds or "clip")
    return action[..., 0] if spec.scalar_action else action


def parameters(dist: distrax.Distribution) -> dict[str, Array]:
    """The arrays that define one of our policy distributions, to store it in a batch (e.g. MDPO's π_θk) and
    rebuild it with :func:`from_parameters`."""
    if isinstance(dist, distrax.Independent):
        return {"logits": dist.distribution.logits}
    if isinstance(dist, distrax.Categorical):
        return {"logits": dist.logits}
    if isinstance(dist, distrax.MultivariateNormalDiag):
        return {"loc": dist.loc, "scale_diag": dist.scale_diag}
    raise TypeError(f"no parameters() for {type(dist).__name__}")


def from_parameters(kind: str, params: dict[str, Array]) -> distrax.Distribution:
    """The distribution :func:`parameters` described, for an action ``kind`` (``discrete``, ``multi_discrete``,
    ``continuous``)."""
    if kind == "continuous":
        return distrax.MultivariateNormalDiag(params["loc"], params["scale_diag"])
    if kind == "multi_discrete":
        return multi_categorical(params["logits"])
    return categorical(params["logits"])


def per_component_log_prob(dist: distrax.Distribution, action: Array, kind: str) -> Array:
    """Log-probabilities ``[..., M]`` per sub-action of a multi-discrete policy (``M = 1`` otherwise)."""
    if kind == "multi_discrete":
        return dist.distribution.log_prob(action)
    return dist.log_prob(action)[..., None]


def per_component_entropy(dist: distrax.Distribution, kind: str) -> Array:
    """Entropy ``[..., M]`` per sub-action of a multi-discrete policy (``M = 1`` otherwise)."""
    if kind == "multi_discrete":
        return dist.distribution.entropy()
    return dist.entropy()[..., None]


def masked(dist: distrax.Distribution, action_mask: Array | None) -> distrax.Distribution:
    """``dist`` with illegal actions removed: logits ``−∞`` where ``action_mask`` is False (True = legal, the
    Jumanji/Pgx convention; shape ``[..., n]`` for a categorical, ``[..., M, n]`` for one per sub-action). A masked
    action is never sampled nor the mode, has log-probability ``−∞``, and adds nothing to the entropy or the KL
    (distrax multiplies by the zero probability without producing NaN). ``None`` returns ``dist`` unchanged."""
    if action_mask is None:
        return dist
    if isinstance(dist, distrax.Independent):
        return multi_categorical(jnp.where(action_mask, dist.distribution.logits, -jnp.inf))
    if isinstance(dist, distrax.Categorical):
        return categorical(jnp.where(action_mask, dist.logits, -jnp.inf))
    raise TypeError(f"action masks apply to categorical policies, not {type(dist).__name__}")
