"""PDPPO's networks (Felizardo et al. 2025, arXiv:2504.05150): a categorical actor (one categorical per machine for
multi-discrete actions), a pre-decision critic ``V_φ(s)`` and a post-decision critic ``V_ψ(s^x)``, three separate
MLPs (the reference code's layout).

[P] Initialization is the library's (orthogonal √2 torsos, 0.01 policy head, 1.0 value heads), not the
reference's Kaiming/Xavier/PyTorch-default mix.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from purejaxpo.networks import distributions
from purejaxpo.networks.torsos import MLP, dense

Array = jax.Array


def _flatten_obs(obs: Array, obs_ndim: int) -> Array:
    x = obs.astype(jnp.float32)
    return x.reshape(x.shape[: x.ndim - obs_ndim] + (-1,))


class ValueMLP(nnx.Module):
    """``[..., *obs_shape] -> [...]``: MLP torso and a linear value head."""

    def __init__(self, obs_shape: tuple[int, ...], hidden_sizes: tuple[int, ...], activation: str, rngs: nnx.Rngs):
        self.obs_ndim = len(obs_shape)
        self.torso = MLP(math.prod(obs_shape), hidden_sizes, activation, rngs=rngs)
        self.head = dense(self.torso.out_features, 1, 1.0, rngs)

    def __call__(self, obs: Array) -> Array:
        return self.head(self.torso(_flatten_obs(obs, self.obs_ndim)))[..., 0]


class CategoricalActor(nnx.Module):
    """``[..., *obs_shape] ->`` a categorical (``discrete``) or one categorical per sub-action (``multi_discrete``)."""

    def __init__(self, spec: Any, hidden_sizes: tuple[int, ...], activation: str, rngs: nnx.Rngs):
        self.obs_ndim = len(spec.obs_shape)
        self.kind = spec.kind
        self.action_dim = spec.action_dim
        self.num_categories = spec.num_categories
        self.torso = MLP(math.prod(spec.obs_shape), hidden_sizes, activation, rngs=rngs)
        outputs = spec.action_dim * spec.num_categories if spec.kind == "multi_discrete" else spec.action_dim
        self.head = dense(self.torso.out_features, outputs, 0.01, rngs)

    def __call__(self, obs: Array) -> Any:
        logits = self.head(self.torso(_flatten_obs(obs, self.obs_ndim)))
        if self.kind == "multi_discrete":
            return distributions.multi_categorical(logits.reshape(logits.shape[:-1] + (self.action_dim, self.num_categories)))
        return distributions.categorical(logits)


class DualCriticActorCritic(nnx.Module):
    """Actor ``π_θ(a|s)``, pre-decision critic ``V_φ(s)`` and post-decision critic ``V_ψ(s^x)``: ``hidden_sizes``
    MLPs, ``actor_activation`` for the actor (ReLU in the reference) and ``critic_activation`` for the critics
    (tanh). ``pre_critic`` is ``None`` when ``dual=False`` (one post-decision critic)."""

    def __init__(self, spec: Any, hidden_sizes: tuple[int, ...], actor_activation: str, critic_activation: str, *,
                 dual: bool = True, rngs: nnx.Rngs):
        self.actor = CategoricalActor(spec, hidden_sizes, actor_activation, rngs)
        self.pre_critic = ValueMLP(spec.obs_shape, hidden_sizes, critic_activation, rngs) if dual else None
        self.post_critic = ValueMLP(spec.obs_shape, hidden_sizes, critic_activation, rngs)

    def distribution(self, obs: Array) -> Any:
        return self.actor(obs)

    def pre_value(self, obs: Array) -> Array:
        return self.pre_critic(obs)

    def post_value(self, post_obs: Array) -> Array:
        return self.post_critic(post_obs)
