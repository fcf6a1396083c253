"""Actor-critic for discrete, multi-discrete and continuous (diagonal Gaussian) actions."""

from __future__ import annotations

import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from purejaxpo.networks import distributions
from purejaxpo.networks.torsos import MLP, MinAtarCNN, dense
from purejaxpo.spaces import ActionKind

TORSOS = ("mlp", "cnn")


def make_torso(torso: str, obs_shape: Sequence[int], hidden_sizes: Sequence[int], activation: str, rngs: nnx.Rngs):
    if torso == "mlp":
        return MLP(math.prod(obs_shape), hidden_sizes, activation, rngs=rngs)
    if torso == "cnn":
        if len(obs_shape) != 3:
            raise ValueError(f"the 'cnn' torso needs [H, W, C] observations, got shape {tuple(obs_shape)}")
        return MinAtarCNN(obs_shape, hidden_sizes, activation, rngs=rngs)
    raise ValueError(f"unknown torso {torso!r}; expected one of {TORSOS}")


class ActorCritic(nnx.Module):
    """Separate actor and critic torsos (PureJaxRL/CleanRL layout) with a policy head and a value head.

    ``__call__(obs [*batch, *obs_shape]) -> (distribution with batch shape [*batch], value [*batch])``.

    - ``discrete``: ``action_dim`` logits → Categorical.
    - ``multi_discrete``: ``action_dim × num_categories`` logits → independent Categoricals, actions ``[*batch, action_dim]``.
    - ``continuous``: mean head and a state-independent ``log_std`` parameter → diagonal Gaussian over
      unbounded actions (see :func:`purejaxpo.networks.distributions.to_env_action`).
    """

    def __init__(
        self,
        obs_shape: Sequence[int],
        action_kind: ActionKind,
        action_dim: int,
        *,
        num_categories: int = 0,
        hidden_sizes: Sequence[int] = (64, 64),
        activation: str = "tanh",
        torso: str = "mlp",
        init_log_std: float = 0.0,
        rngs: nnx.Rngs,
    ):
        self.obs_shape = tuple(obs_shape)
        self.action_kind = action_kind
        self.action_dim = action_dim
        self.num_categories = num_categories
        self.actor_torso = make_torso(torso, obs_shape, hidden_sizes, activation, rngs)
        self.critic_torso = make_torso(torso, obs_shape, hidden_sizes, activation, rngs)
        width = self.actor_torso.out_features
        head_out = action_dim * num_categories if action_kind == "multi_discrete" else action_dim
        self.policy_head = dense(width, head_out, 0.01, rngs)
        self.value_head = dense(width, 1, 1.0, rngs)
        if action_kind == "continuous":
            self.log_std = nnx.Param(jnp.full((action_dim,), init_log_std, jnp.float32))

    def _features(self, torso: nnx.Module, obs: jax.Array) -> jax.Array:
        obs = obs.astype(jnp.float32)
        if isinstance(torso, MLP):
            obs = obs.reshape(obs.shape[: obs.ndim - len(self.obs_shape)] + (-1,))
        return torso(obs)

    def value(self, obs: jax.Array) -> jax.Array:
        return self.value_head(self._features(self.critic_torso, obs))[..., 0]

    def distribution(self, obs: jax.Array) -> Any:
        out = self.policy_head(self._features(self.actor_torso, obs))
        if self.action_kind == "discrete":
            return distributions.categorical(out)
        if self.action_kind == "multi_discrete":
            return distributions.multi_categorical(out.reshape(out.shape[:-1] + (self.action_dim, self.num_categories)))
        return distributions.diag_gaussian(out, self.log_std[...])

    def __call__(self, obs: jax.Array) -> tuple[Any, jax.Array]:
        return self.distribution(obs), self.value(obs)


def make_actor_critic(key: jax.Array, **kwargs: Any) -> tuple[nnx.GraphDef, nnx.State]:
    """Build an :class:`ActorCritic` and split it into ``(graphdef, params)``; kwargs as the constructor."""
    model = ActorCritic(rngs=nnx.Rngs(params=key), **kwargs)
    return nnx.split(model)


def actor_critic_for(config: Any, spec: Any, key: jax.Array) -> ActorCritic:
    """The :class:`ActorCritic` a config asks for (its ``hidden_sizes``, ``activation``, ``torso`` and, for
    continuous actions, ``init_log_std``) on the spaces of a :class:`~purejaxpo.spaces.PolicySpec`."""
    init_log_std = getattr(config, "init_log_std", None)
    return ActorCritic(
        spec.obs_shape,
        spec.kind,
        spec.action_dim,
        num_categories=spec.num_categories,
        hidden_sizes=config.hidden_sizes,
        activation=config.activation,
        torso=getattr(config, "torso", "mlp"),
        init_log_std=0.0 if init_log_std is None else init_log_std,
        rngs=nnx.Rngs(params=key),
    )
