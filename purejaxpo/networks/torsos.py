"""Feature extractors: an MLP for flat observations and a MinAtar-size CNN."""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from purejaxpo.networks.initializers import orthogonal

def mish(x: jax.Array) -> jax.Array:
    """Mish (Misra 2019, arXiv:1908.08681): ``x · tanh(softplus(x))``."""
    return x * jnp.tanh(jax.nn.softplus(x))


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "gelu": jax.nn.gelu,
    "silu": jax.nn.silu,
    "mish": mish,
}


def activation_fn(name: str) -> Callable[[jax.Array], jax.Array]:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def dense(in_features: int, out_features: int, scale: float, rngs: nnx.Rngs) -> nnx.Linear:
    """A linear layer with vmap-safe orthogonal(scale) weights and zero bias (the PPO standard)."""
    return nnx.Linear(
        in_features, out_features, kernel_init=orthogonal(scale), bias_init=nnx.initializers.zeros_init(), rngs=rngs
    )


class MLP(nnx.Module):
    """``[..., in_features] -> [..., hidden_sizes[-1]]`` with the activation after every layer."""

    def __init__(self, in_features: int, hidden_sizes: Sequence[int], activation: str, *, rngs: nnx.Rngs):
        sizes = [in_features, *hidden_sizes]
        self.layers = nnx.List([dense(a, b, jnp.sqrt(2.0), rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.activation = activation
        self.out_features = sizes[-1]

    def __call__(self, x: jax.Array) -> jax.Array:
        act = activation_fn(self.activation)
        for layer in self.layers:
            x = act(layer(x))
        return x


class MinAtarCNN(nnx.Module):
    """MinAtar torso (Young & Tian 2019): one 3×3 conv, 16 channels, ReLU, flatten, then an MLP.

    ``[..., H, W, C] -> [..., hidden_sizes[-1]]``.
    """

    def __init__(self, obs_shape: Sequence[int], hidden_sizes: Sequence[int], activation: str, *, rngs: nnx.Rngs):
        height, width, channels = obs_shape
        self.conv = nnx.Conv(
            channels, 16, kernel_size=(3, 3), padding="SAME", kernel_init=orthogonal(jnp.sqrt(2.0)), rngs=rngs
        )
        self.mlp = MLP(height * width * 16, hidden_sizes, activation, rngs=rngs)
        self.out_features = self.mlp.out_features

    def __call__(self, x: jax.Array) -> jax.Array:
        batch_shape = x.shape[:-3]
        x = x.reshape((-1,) + x.shape[-3:])
        x = jax.nn.relu(self.conv(x))
        x = x.reshape(batch_shape + (-1,))
        return self.mlp(x)
