"""Action/observation spaces beyond gymnax's, and the one question trainers ask of a space.

gymnax provides ``Discrete`` and ``Box``; several of our environments (lot sizing: one categorical per
machine) need ``MultiDiscrete``. It follows gymnax's space protocol (``sample``, ``contains``, ``shape``,
``dtype``) so it can stand wherever a gymnax space does.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import spaces as gymnax_spaces

ActionKind = Literal["discrete", "multi_discrete", "continuous"]


class MultiDiscrete:
    """A vector of independent categorical choices; ``nvec[i]`` options for component ``i``.

    All components must have the same number of options (``nvec`` constant) so a policy can emit one
    ``[..., len(nvec), max(nvec)]`` logits tensor; a ragged ``nvec`` is rejected.
    """

    def __init__(self, nvec: Any):
        self.nvec = np.asarray(nvec, dtype=np.int32).reshape(-1)
        if self.nvec.size == 0 or (self.nvec <= 0).any():
            raise ValueError(f"MultiDiscrete needs positive option counts, got nvec={self.nvec.tolist()}")
        if (self.nvec != self.nvec[0]).any():
            raise ValueError(f"MultiDiscrete needs the same number of options per component, got {self.nvec.tolist()}")
        self.shape = (int(self.nvec.size),)
        self.dtype = jnp.int32

    @property
    def num_categories(self) -> int:
        return int(self.nvec[0])

    def sample(self, rng: jax.Array) -> jax.Array:
        return jax.random.randint(rng, self.shape, 0, jnp.asarray(self.nvec), dtype=self.dtype)

    def contains(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        return jnp.logical_and(jnp.all(x >= 0), jnp.all(x < jnp.asarray(self.nvec)))

    def __repr__(self) -> str:
        return f"MultiDiscrete(nvec={self.nvec.tolist()})"


def action_kind(space: Any) -> ActionKind:
    """Classify an action space as ``"discrete"``, ``"multi_discrete"`` or ``"continuous"``.

    Raises ``ValueError`` for spaces no trainer here can act in (``Dict``/``Tuple``).
    """
    if isinstance(space, gymnax_spaces.Discrete):
        return "discrete"
    if isinstance(space, MultiDiscrete):
        return "multi_discrete"
    if isinstance(space, gymnax_spaces.Box):
        return "continuous"
    raise ValueError(f"unsupported action space {space!r}: expected Discrete, MultiDiscrete or Box")


def box_bounds(space: gymnax_spaces.Box, shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """``(low, high)`` of a Box broadcast to ``shape`` as float32 arrays."""
    low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), shape)
    high = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), shape)
    return low, high


@struct.dataclass
class PolicySpec:
    """Static facts about an env's spaces that networks and action conversion need.

    ``kind`` is :func:`action_kind`; ``action_dim`` is the number of actions (discrete), of sub-actions
    (multi-discrete) or of action dimensions (continuous); ``low``/``high`` ``[action_dim]`` bound a continuous
    action; ``scalar_action`` marks a ``Box`` of shape ``()`` (the env takes a scalar, the policy a ``[1]`` vector).
    """

    obs_shape: tuple[int, ...] = struct.field(pytree_node=False)
    kind: str = struct.field(pytree_node=False)
    action_dim: int = struct.field(pytree_node=False)
    num_categories: int = struct.field(pytree_node=False)
    low: Any = None
    high: Any = None
    scalar_action: bool = struct.field(pytree_node=False, default=False)

    @property
    def action_shape(self) -> tuple[int, ...]:
        """The shape of one raw policy action: ``()`` discrete, ``[M]`` multi-discrete, ``[D]`` continuous."""
        return () if self.kind == "discrete" else (self.action_dim,)


def policy_spec(env: Any, env_params: Any) -> PolicySpec:
    """The :class:`PolicySpec` of ``env``; ``ValueError`` for action spaces no policy here can act in."""
    obs_space = env.observation_space(env_params)
    act_space = env.action_space(env_params)
    kind = action_kind(act_space)
    if kind == "discrete":
        return PolicySpec(tuple(obs_space.shape), kind, int(act_space.n), 0)
    if kind == "multi_discrete":
        return PolicySpec(tuple(obs_space.shape), kind, act_space.shape[0], act_space.num_categories)
    shape = tuple(act_space.shape)
    if len(shape) > 1:
        raise ValueError(f"continuous actions must be a vector Box, got action shape {shape}")
    dim = shape[0] if shape else 1
    low, high = box_bounds(act_space, (dim,))
    return PolicySpec(tuple(obs_space.shape), kind, dim, 0, low, high, scalar_action=not shape)
