"""PDPPO's networks (Felizardo et al. 2025, arXiv:2504.05150): a categorical actor (one categorical per machine for
multi-discrete actions), a pre-decision critic ``V_φ(s)`` and a post-decision critic ``V_ψ(s^x)``, three separate
MLPs (the reference code's layout). Either critic may be left out (``critics``).

Initializations (``init``):

- ``"library"`` (default) [P]: the library's (orthogonal √2 torsos, 0.01 policy head, 1.0 value heads, zero biases);
- ``"reference"`` — the reference ``PDPPO.py`` @bf3f368 [C]: the actor's hidden layers keep PyTorch's default
  ``nn.Linear`` init (weights and biases ``U(±1/√fan_in)``), its output layer is Kaiming-uniform for ReLU
  (``U(±√(6/fan_in))``) with zero bias; every critic layer is Xavier-uniform (``U(±√(6/(fan_in + fan_out)))``)
  with zero bias;
- ``"reference_ppo"`` — the reference ``PPO.py`` @ff58990 [C]: the same, but the actor's output layer is
  Kaiming-uniform for tanh (gain 5/3: ``U(±(5/3)√(3/fan_in))``).

The reference never trains the actor's hidden layers (its actor optimizer holds only the output layer), so with
``PDPPOConfig(actor_trainable="head")`` their init is what the policy's features stay.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from purejaxpo.networks import distributions
from purejaxpo.networks.torsos import MLP, activation_fn, dense

Array = jax.Array
INITS = ("library", "reference", "reference_ppo")
Init = Callable[..., Array]


def _flatten_obs(obs: Array, obs_ndim: int) -> Array:
    x = obs.astype(jnp.float32)
    return x.reshape(x.shape[: x.ndim - obs_ndim] + (-1,))


def _uniform(bound: float) -> Init:
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def torch_default_linear(in_features: int, out_features: int, rngs: nnx.Rngs) -> nnx.Linear:
    """PyTorch's default ``nn.Linear`` init: ``kaiming_uniform_(a=√5)`` weights and bias, both ``U(±1/√fan_in)``."""
    bound = 1.0 / math.sqrt(in_features)
    return nnx.Linear(in_features, out_features, kernel_init=_uniform(bound), bias_init=_uniform(bound), rngs=rngs)


def kaiming_uniform_linear(in_features: int, out_features: int, gain: float, rngs: nnx.Rngs) -> nnx.Linear:
    """``kaiming_uniform_(nonlinearity)`` weights ``U(±gain·√(3/fan_in))`` and zero bias (gain √2 ReLU, 5/3 tanh)."""
    bound = gain * math.sqrt(3.0 / in_features)
    return nnx.Linear(in_features, out_features, kernel_init=_uniform(bound), bias_init=nnx.initializers.zeros_init(), rngs=rngs)


def xavier_uniform_linear(in_features: int, out_features: int, rngs: nnx.Rngs) -> nnx.Linear:
    """``xavier_uniform_`` weights ``U(±√(6/(fan_in + fan_out)))`` and zero bias."""
    bound = math.sqrt(6.0 / (in_features + out_features))
    return nnx.Linear(in_features, out_features, kernel_init=_uniform(bound), bias_init=nnx.initializers.zeros_init(), rngs=rngs)


class LayerMLP(nnx.Module):
    """:class:`~purejaxpo.networks.torsos.MLP` with the layers built by ``layer(in, out, rngs)`` (same parameter
    paths: ``layers/i/kernel``, ``layers/i/bias``)."""

    def __init__(self, in_features: int, hidden_sizes: Sequence[int], activation: str,
                 layer: Callable[[int, int, nnx.Rngs], nnx.Linear], *, rngs: nnx.Rngs):
        sizes = [in_features, *hidden_sizes]
        self.layers = nnx.List([layer(a, b, rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.activation = activation
        self.out_features = sizes[-1]

    def __call__(self, x: Array) -> Array:
        act = activation_fn(self.activation)
        for layer in self.layers:
            x = act(layer(x))
        return x


def _check_init(init: str) -> None:
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; expected one of {INITS}")


class ValueMLP(nnx.Module):
    """``[..., *obs_shape] -> [...]``: MLP torso and a linear value head."""

    def __init__(self, obs_shape: tuple[int, ...], hidden_sizes: tuple[int, ...], activation: str, rngs: nnx.Rngs,
                 init: str = "library"):
        _check_init(init)
        self.obs_ndim = len(obs_shape)
        if init == "library":
            self.torso = MLP(math.prod(obs_shape), hidden_sizes, activation, rngs=rngs)
            self.head = dense(self.torso.out_features, 1, 1.0, rngs)
        else:
            self.torso = LayerMLP(math.prod(obs_shape), hidden_sizes, activation, xavier_uniform_linear, rngs=rngs)
            self.head = xavier_uniform_linear(self.torso.out_features, 1, rngs)

    def __call__(self, obs: Array) -> Array:
        return self.head(self.torso(_flatten_obs(obs, self.obs_ndim)))[..., 0]


class CategoricalActor(nnx.Module):
    """``[..., *obs_shape] ->`` a categorical (``discrete``) or one categorical per sub-action (``multi_discrete``)."""

    def __init__(self, spec: Any, hidden_sizes: tuple[int, ...], activation: str, rngs: nnx.Rngs, init: str = "library"):
        _check_init(init)
        self.obs_ndim = len(spec.obs_shape)
        self.kind = spec.kind
        self.action_dim = spec.action_dim
        self.num_categories = spec.num_categories
        outputs = spec.action_dim * spec.num_categories if spec.kind == "multi_discrete" else spec.action_dim
        if init == "library":
            self.torso = MLP(math.prod(spec.obs_shape), hidden_sizes, activation, rngs=rngs)
            self.head = dense(self.torso.out_features, outputs, 0.01, rngs)
        else:
            self.torso = LayerMLP(math.prod(spec.obs_shape), hidden_sizes, activation, torch_default_linear, rngs=rngs)
            gain = math.sqrt(2.0) if init == "reference" else 5.0 / 3.0
            self.head = kaiming_uniform_linear(self.torso.out_features, outputs, gain, rngs)

    def __call__(self, obs: Array) -> Any:
        logits = self.head(self.torso(_flatten_obs(obs, self.obs_ndim)))
        if self.kind == "multi_discrete":
            return distributions.multi_categorical(logits.reshape(logits.shape[:-1] + (self.action_dim, self.num_categories)))
        return distributions.categorical(logits)


class DualCriticActorCritic(nnx.Module):
    """Actor ``π_θ(a|s)``, pre-decision critic ``V_φ(s)`` and post-decision critic ``V_ψ(s^x)``: ``hidden_sizes``
    MLPs, ``actor_activation`` for the actor (ReLU in the reference) and ``critic_activation`` for the critics
    (tanh). ``critics`` names the critics built (``"pre"``, ``"post"``); a missing one is ``None``. Built in the
    order actor, pre, post from one ``rngs`` stream. ``init``: see the module docstring."""

    def __init__(self, spec: Any, hidden_sizes: tuple[int, ...], actor_activation: str, critic_activation: str, *,
                 critics: tuple[str, ...] = ("pre", "post"), init: str = "library", rngs: nnx.Rngs):
        unknown = set(critics) - {"pre", "post"}
        if unknown or not critics:
            raise ValueError(f"critics must be a non-empty subset of ('pre', 'post'), got {critics}")
        self.actor = CategoricalActor(spec, hidden_sizes, actor_activation, rngs, init)
        self.pre_critic = ValueMLP(spec.obs_shape, hidden_sizes, critic_activation, rngs, init) if "pre" in critics else None
        self.post_critic = ValueMLP(spec.obs_shape, hidden_sizes, critic_activation, rngs, init) if "post" in critics else None

    def distribution(self, obs: Array) -> Any:
        return self.actor(obs)

    def pre_value(self, obs: Array) -> Array:
        return self.pre_critic(obs)

    def post_value(self, post_obs: Array) -> Array:
        return self.post_critic(post_obs)


def dual_critic_optimizer(critics: Sequence[str], actor_trainable: str, eps: float) -> Any:
    """The optimizer of :class:`DualCriticActorCritic` params (PDPPO): one Adam per network (separate optimizers
    [C]; ``critics`` names the ``<name>_critic`` subtrees), each with its own optional global-norm clip; learning rates
    and the clip norm are traced state (``lr_actor``, ``lr_critic``, ``max_grad_norm``; inf = no clip).
    ``actor_trainable="head"`` gives the actor's hidden layers no optimizer (``set_to_zero``): they keep their init.

    Because the actor loss does not depend on the critics' parameters and vice versa, one gradient of
    ``L_π + L_V + L_Vx`` routed to three independent Adams equals three separate backward passes and steps (the
    reference PPO's single Adam with an actor and a critic parameter group is the same thing: Adam is per-parameter).
    """
    import optax

    frozen = actor_trainable == "head"
    label = lambda path: "frozen" if frozen and path[0].key == "actor" and path[1].key == "torso" else path[0].key
    labels = lambda params: jax.tree_util.tree_map_with_path(lambda path, _: label(path), params)

    def factory(lr_actor: jax.Array, lr_critic: jax.Array, max_grad_norm: jax.Array) -> Any:
        adam = lambda lr: optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(lr, eps=eps))
        transforms = {"actor": adam(lr_actor)}
        transforms.update({f"{name}_critic": adam(lr_critic) for name in critics})
        if frozen:
            transforms["frozen"] = optax.set_to_zero()
        return optax.multi_transform(transforms, labels)

    return optax.inject_hyperparams(factory)(lr_actor=0.0, lr_critic=0.0, max_grad_norm=1.0)
