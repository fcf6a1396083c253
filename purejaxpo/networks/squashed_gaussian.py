"""The networks of SAC-style off-policy agents (Haarnoja et al. 2018, arXiv:1801.01290; off-policy MDPO, Tomar et
al. 2022, arXiv:2005.09814): a tanh-squashed Gaussian actor and MLP critics ``Q(s, a)`` / ``V(s)``.

The squashed Gaussian is distrax's ``Transformed(MultivariateNormalDiag, Block(Tanh(), 1))``; its log-density of a
sample is evaluated at the pre-tanh point (:func:`squashed_log_prob`), never through ``atanh`` of a squashed action,
which is unstable near the bounds.
"""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp
from flax import nnx

from purejaxpo.networks.torsos import MLP, dense

Array = jax.Array
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
_TANH = distrax.Block(distrax.Tanh(), ndims=1)


class SquashedGaussianActor(nnx.Module):
    """``obs [..., O] -> (mean [..., D], log_std [..., D])`` of the pre-tanh Gaussian; ``log σ ∈ [−20, 2]``."""

    def __init__(self, obs_dim: int, action_dim: int, hidden_sizes: tuple[int, ...], activation: str, *, rngs: nnx.Rngs):
        self.torso = MLP(obs_dim, hidden_sizes, activation, rngs=rngs)
        self.mean_head = dense(self.torso.out_features, action_dim, 0.01, rngs)
        self.log_std_head = dense(self.torso.out_features, action_dim, 0.01, rngs)

    def __call__(self, obs: Array) -> tuple[Array, Array]:
        features = self.torso(obs)
        return self.mean_head(features), jnp.clip(self.log_std_head(features), LOG_STD_MIN, LOG_STD_MAX)


class Critic(nnx.Module):
    """``Q(s, a)`` (``in_features = O + D``, call with ``concat(obs, action)``) or ``V(s)``; ``[..., in] -> [...]``."""

    def __init__(self, in_features: int, hidden_sizes: tuple[int, ...], activation: str, *, rngs: nnx.Rngs):
        self.torso = MLP(in_features, hidden_sizes, activation, rngs=rngs)
        self.head = dense(self.torso.out_features, 1, 1.0, rngs)

    def __call__(self, x: Array) -> Array:
        return self.head(self.torso(x))[..., 0]


def squashed_gaussian(mean: Array, log_std: Array) -> distrax.Transformed:
    """``tanh(u)``, ``u ~ N(mean, exp(log_std)²)`` diagonal, as a distrax distribution over ``[..., D]``."""
    return distrax.Transformed(distrax.MultivariateNormalDiag(mean, jnp.exp(log_std)), _TANH)


def squashed_log_prob(pre_tanh: Array, mean: Array, log_std: Array) -> Array:
    """``log π(tanh(u))`` of the squashed Gaussian at the pre-tanh point ``u`` ``[..., D] -> [...]``::

        log π(a) = log N(u; μ, σ²) − Σ_d log(1 − tanh(u_d)²),   a = tanh(u)
    """
    base = distrax.MultivariateNormalDiag(mean, jnp.exp(log_std))
    return base.log_prob(pre_tanh) - _TANH.forward_log_det_jacobian(pre_tanh)


def sample_squashed(mean: Array, log_std: Array, key: Array) -> tuple[Array, Array, Array]:
    """Reparameterized ``u = μ + σ ε``, ``a = tanh(u)``, ``log π(a)``: ``([..., D], [..., D], [...])``."""
    pre_tanh = distrax.MultivariateNormalDiag(mean, jnp.exp(log_std)).sample(seed=key)
    return jnp.tanh(pre_tanh), pre_tanh, squashed_log_prob(pre_tanh, mean, log_std)
