"""PolicyFlow's networks (arXiv:2602.01156): an observation-conditioned
velocity field with a Fourier time embedding, a learnable state-independent residual log-std, and a critic.

``FlowPolicy.distribution(obs, key)`` draws the latent ``x0`` (zeros when ``degenerate_to_gaussian``),
integrates the ODE with the midpoint solver and returns a :class:`FlowDistribution`: the policy *conditioned
on that x0*, ``N(φ_θ(x0; s), σ²)``. It satisfies :class:`~purejaxpo.networks.distributions.PolicyDistribution`
exactly for that conditional policy; the marginal density over x0 is intractable and is not what it reports.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct

from purejaxpo.networks.torsos import dense, mish
from purejaxpo.primitives import flows

Array = jax.Array
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0  # LearnableVariance clamp [C]


@struct.dataclass
class FlowDistribution:
    """``π(a | s, x0) = N(a; x1, diag σ²)`` with ``x1 = φ_θ(x0; s)``; fields ``[..., D]``.

    ``sample_and_log_prob`` returns the action ``a = x1 + δ`` and ``log N(δ; 0, σ²)`` — exactly what PolicyFlow
    stores at rollout as ``log π_old`` [C]. ``kl_divergence`` compares two such distributions at the same x0.
    """

    x0: Array
    x1: Array
    log_std: Array

    def residual(self) -> Any:
        """``N(x1, σ²)`` as a distrax distribution (log-probs, entropy and KL are distrax's)."""
        return flows.residual_gaussian(self.x1, self.log_std)

    def sample_and_log_prob(self, *, seed: Array) -> tuple[Array, Array]:
        delta = jax.random.normal(seed, self.x1.shape, self.x1.dtype) * jnp.exp(self.log_std)
        return self.x1 + delta, flows.residual_gaussian(jnp.zeros_like(delta), self.log_std).log_prob(delta)

    def sample(self, *, seed: Array) -> Array:
        return self.sample_and_log_prob(seed=seed)[0]

    def log_prob(self, value: Array) -> Array:
        return self.residual().log_prob(value)

    def entropy(self) -> Array:
        return self.residual().entropy()

    def kl_divergence(self, other: "FlowDistribution") -> Array:
        """``KL(self ‖ other)`` of the two conditional Gaussians (same x0 assumed)."""
        return self.residual().kl_divergence(other.residual())

    def mode(self) -> Array:
        return self.x1


class FourierTimeEmbedding(nnx.Module):
    """``t [...] -> [..., emb_dim]``: ``[cos 2πft, sin 2πft]`` with fixed frequencies ``f ~ N(0, 16²)`` of size
    ``emb_dim/8``, then ``Linear(emb/4 → emb) → Mish → Linear(emb → emb)`` (CleanDiffuser-style [C]).

    The frequencies are drawn once from a fixed NumPy seed and kept as static constants (not parameters), so
    they are identical across seeds and never trained or weight-decayed [P].
    """

    def __init__(self, emb_dim: int, *, rngs: nnx.Rngs, scale: float = 16.0):
        if emb_dim % 8:
            raise ValueError(f"emb_dim must be a multiple of 8, got {emb_dim}")
        self.freqs = tuple(float(f) for f in np.random.default_rng(0).normal(0.0, scale, emb_dim // 8))
        self.fc1 = dense(emb_dim // 4, emb_dim, jnp.sqrt(2.0), rngs)
        self.fc2 = dense(emb_dim, emb_dim, 1.0, rngs)

    def __call__(self, t: Array) -> Array:
        angles = 2.0 * jnp.pi * t[..., None] * jnp.asarray(self.freqs, jnp.float32)
        features = jnp.concatenate([jnp.cos(angles), jnp.sin(angles)], axis=-1)
        return self.fc2(mish(self.fc1(features)))


class VelocityNet(nnx.Module):
    """``v_θ(x, t; s)``: ``concat[x, emb(t) + W_c s] → MLP(Mish) → Linear(D)`` (``FlowMlp`` of [C]).

    ``output_scale`` scales the orthogonal init of the last kernel: 0.01 as in the released code, 0 for the
    paper's zero init (then the initial flow is the identity, ``φ(x0) = x0``).
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden_sizes: Sequence[int],
        emb_dim: int,
        output_scale: float,
        *,
        rngs: nnx.Rngs,
    ):
        self.time_embedding = FourierTimeEmbedding(emb_dim, rngs=rngs)
        self.condition = dense(obs_dim, emb_dim, 1.0, rngs)
        sizes = [action_dim + emb_dim, *hidden_sizes]
        self.layers = nnx.List([dense(a, b, jnp.sqrt(2.0), rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        if output_scale == 0.0:
            self.out = nnx.Linear(
                sizes[-1], action_dim, kernel_init=nnx.initializers.zeros_init(),
                bias_init=nnx.initializers.zeros_init(), rngs=rngs,
            )
        else:
            self.out = dense(sizes[-1], action_dim, output_scale, rngs)

    def __call__(self, obs: Array, x: Array, t: Array) -> Array:
        """``obs [..., O]``, ``x [..., D]``, ``t [...]`` → ``[..., D]``."""
        h = jnp.concatenate([x, self.time_embedding(t) + self.condition(obs)], axis=-1)
        for layer in self.layers:
            h = mish(layer(h))
        return self.out(h)


class FlowPolicy(nnx.Module):
    """Velocity-field actor, residual log-std ``[D]`` (init 0, clamped to [−5, 2]) and a Mish MLP critic."""

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        *,
        hidden_sizes: Sequence[int] = (256, 128, 64),
        critic_hidden_sizes: Sequence[int] = (256, 128, 64),
        emb_dim: int = 64,
        output_scale: float = 0.01,
        init_log_std: float = 0.0,
        num_flow_steps: int = 10,
        interpolant: str = "rectified_flow",
        degenerate_to_gaussian: bool = False,
        rngs: nnx.Rngs,
    ):
        self.velocity_net = VelocityNet(obs_dim, action_dim, hidden_sizes, emb_dim, output_scale, rngs=rngs)
        self.log_std_param = nnx.Param(jnp.full((action_dim,), init_log_std, jnp.float32))
        sizes = [obs_dim, *critic_hidden_sizes]
        self.critic_layers = nnx.List([dense(a, b, jnp.sqrt(2.0), rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.critic_out = dense(sizes[-1], 1, 1.0, rngs)
        self.action_dim = action_dim
        self.num_flow_steps = num_flow_steps
        self.interpolant = interpolant
        self.degenerate_to_gaussian = degenerate_to_gaussian

    def velocity(self, obs: Array, x: Array, t: Array) -> Array:
        return self.velocity_net(obs, x, t)

    def log_std(self) -> Array:
        return jnp.clip(self.log_std_param[...], LOG_STD_MIN, LOG_STD_MAX)

    def value(self, obs: Array) -> Array:
        h = obs
        for layer in self.critic_layers:
            h = mish(layer(h))
        return self.critic_out(h)[..., 0]

    def latent(self, key: Array, batch_shape: tuple[int, ...]) -> Array:
        """``x0 ~ N(0, I)`` ``[*batch, D]``, or zeros when ``degenerate_to_gaussian``."""
        shape = tuple(batch_shape) + (self.action_dim,)
        if self.degenerate_to_gaussian:
            return jnp.zeros(shape, jnp.float32)
        return jax.random.normal(key, shape, jnp.float32)

    def flow(self, obs: Array, x0: Array) -> Array:
        """``x1 = φ_θ(x0; s)`` by :func:`~purejaxpo.primitives.flows.midpoint_sample`."""
        horizon = flows.time_horizon(self.interpolant)
        return flows.midpoint_sample(lambda x, t: self.velocity(obs, x, t), x0, self.num_flow_steps, horizon)

    def distribution(self, obs: Array, key: Array, x0: Array | None = None) -> FlowDistribution:
        """The policy at ``obs [*batch, O]`` conditioned on a fresh latent (or the given ``x0``)."""
        if x0 is None:
            x0 = self.latent(key, obs.shape[:-1])
        return FlowDistribution(x0, self.flow(obs, x0), jnp.broadcast_to(self.log_std(), x0.shape))

    def __call__(self, obs: Array, key: Array) -> tuple[FlowDistribution, Array]:
        return self.distribution(obs, key), self.value(obs)


class CFMFlowPolicy(nnx.Module):
    """FPO's policy and critic (McAllister et al. 2025, arXiv:2507.21053; github.com/akanazawa/fpo
    ``playground/src/flow_policy/fpo.py`` [C]).

    ``velocity(obs, x_t, t) = output_scale · MLP(concat[s, x_t, emb(t)])`` with the 8-dim
    ``[cos, sin](2^k t)`` embedding (official: 32×4 SiLU, output ×0.25, LeCun-uniform init; ours: orthogonal
    init as every network here [P]); the velocity points from the action (t = 0) to the noise (t = 1), so
    :meth:`sample` integrates from noise at t = 1 down to the action at t = 0. Critic: an MLP (official 256×5).
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        *,
        hidden_sizes: Sequence[int] = (32, 32, 32, 32),
        critic_hidden_sizes: Sequence[int] = (256, 256, 256, 256, 256),
        activation: str = "silu",
        output_scale: float = 0.25,
        time_embed_dim: int = 8,
        num_flow_steps: int = 10,
        rngs: nnx.Rngs,
    ):
        from purejaxpo.networks.torsos import MLP

        self.actor = MLP(obs_dim + action_dim + time_embed_dim, hidden_sizes, activation, rngs=rngs)
        self.actor_out = dense(self.actor.out_features, action_dim, 1.0, rngs)
        self.critic = MLP(obs_dim, critic_hidden_sizes, activation, rngs=rngs)
        self.critic_out = dense(self.critic.out_features, 1, 1.0, rngs)
        self.action_dim, self.output_scale = action_dim, output_scale
        self.time_embed_dim, self.num_flow_steps = time_embed_dim, num_flow_steps

    def velocity(self, obs: Array, x: Array, t: Array) -> Array:
        """``obs [..., O]`` (broadcast to ``x``'s batch), ``x [..., D]``, ``t [...]`` → ``[..., D]``."""
        obs = jnp.broadcast_to(obs, x.shape[:-1] + obs.shape[-1:])
        h = jnp.concatenate([obs, x, flows.timestep_embedding(t, self.time_embed_dim)], axis=-1)
        return self.output_scale * self.actor_out(self.actor(h))

    def sample(self, obs: Array, noise: Array) -> Array:
        """The action ``[..., D]`` the Euler flow maps ``noise [..., D]`` (at t = 1) to."""
        return flows.euler_sample(lambda x, t: self.velocity(obs, x, t), noise, self.num_flow_steps)

    def value(self, obs: Array) -> Array:
        return self.critic_out(self.critic(obs))[..., 0]
