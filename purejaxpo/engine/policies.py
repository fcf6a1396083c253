"""Actor-critic policies for the engine: feed-forward or recurrent (GRU / LSTM), with or without action masks.

:func:`actor_critic_policy` returns the parts an algorithm declaration needs for the policy it is configured with
(``config.policy``: ``"mlp"``, ``"gru"`` or ``"lstm"``): the network, the rollout's policy step, the bootstrap
value, ``forward(model, batch) -> (distribution, values)`` for the loss, ``act``, the fresh memory and the
minibatch layout. Recurrent policies train on whole env sequences (``"sequences"`` layout): ``forward`` replays
each minibatch sequence from the memory of its first step, resetting at every episode start inside it.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from purejaxpo.networks.actor_critic import actor_critic_for
from purejaxpo.networks.distributions import masked
from purejaxpo.networks.recurrent import CELLS, RecurrentActorCritic

Array = jax.Array
POLICIES = ("mlp",) + CELLS


class ActorCriticPolicy(NamedTuple):
    network: Callable[[Array], Any]
    step: Callable[..., tuple]
    value: Callable[..., Array]
    forward: Callable[[Any, Any], tuple[Any, Array]]
    act: Callable[..., Any] | None
    init_memory: Callable[[Any, int], Any] | None
    layout: str
    stateful: bool  # the rollout calls the 5-argument step (memory and/or action mask)


def sequence_fields(exp: Any) -> dict[str, Any]:
    """The per-step fields a recurrent or masked loss needs from an experience, all ``[T, B, ...]``: the memory each
    step used, ``starts`` (the step's observation begins an episode inside the window; the first step's memory
    already accounts for it) and the action mask (``None`` where absent)."""
    extras = exp.trajectory.extras
    done = exp.done
    starts = jnp.concatenate([jnp.zeros_like(done[:1]), done[:-1]], axis=0)
    return {"memory": extras.get("memory"), "starts": starts, "action_mask": extras.get("action_mask")}


def actor_critic_policy(config: Any, spec: Any, to_env: Callable[[Array], Array], action_masks: bool) -> ActorCriticPolicy:
    """The policy parts of ``config.policy`` for an env with the spaces of ``spec`` (``action_masks``: the env
    reports legal actions, which are then masked in sampling, log-probabilities, entropy and KL)."""
    kind = getattr(config, "policy", "mlp")
    if action_masks and spec.kind == "continuous":
        raise ValueError("action masks apply to discrete actions; this env's actions are continuous")
    if kind == "mlp":
        def network(key: Array) -> Any:
            return actor_critic_for(config, spec, key)

        def step(model: Any, obs: Array, key: Array, memory: Any = None, mask: Any = None) -> tuple:
            dist, value = model(obs)
            raw, log_prob = masked(dist, mask).sample_and_log_prob(seed=key)
            return raw, to_env(raw), log_prob, value, memory

        def forward(model: Any, batch: Any) -> tuple[Any, Array]:
            dist, values = model(batch.obs)
            return masked(dist, batch.action_mask), values

        def act(model: Any, obs: Array, key: Array, deterministic: bool, memory: Any = None, action_mask: Any = None) -> Array:
            dist = masked(model.distribution(obs), action_mask)
            return to_env(dist.mode() if deterministic else dist.sample(seed=key))

        return ActorCriticPolicy(network, step if action_masks else (lambda m, o, k: step(m, o, k)[:4]),
                                 lambda m, o: m.value(o), forward, act, None, "steps", action_masks)

    def network(key: Array) -> Any:
        from flax import nnx

        init_log_std = getattr(config, "init_log_std", None)
        return RecurrentActorCritic(
            spec.obs_shape, spec.kind, spec.action_dim, num_categories=spec.num_categories,
            hidden_sizes=config.hidden_sizes, activation=config.activation, cell=kind, memory_size=config.memory_size,
            init_log_std=0.0 if init_log_std is None else init_log_std, rngs=nnx.Rngs(params=key),
        )

    def step(model: Any, obs: Array, key: Array, memory: Any, mask: Any) -> tuple:
        memory, dist, value = model.step(memory, obs)
        raw, log_prob = masked(dist, mask).sample_and_log_prob(seed=key)
        return raw, to_env(raw), log_prob, value, memory

    def forward(model: Any, batch: Any) -> tuple[Any, Array]:
        first = jax.tree.map(lambda m: m[0], batch.memory)
        dist, values = model.unroll(first, batch.obs, batch.starts)
        return masked(dist, batch.action_mask), values

    def act(model: Any, obs: Array, key: Array, deterministic: bool, memory: Any = None, action_mask: Any = None) -> tuple:
        if memory is None:
            raise ValueError("a recurrent policy acts with memory=...: start from trainer.memory(state, num_envs)")
        memory, dist, _ = model.step(memory, obs)
        dist = masked(dist, action_mask)
        return to_env(dist.mode() if deterministic else dist.sample(seed=key)), memory

    return ActorCriticPolicy(network, step, lambda m, o, memory: m.step(memory, o)[2], forward, act,
                             lambda model, n: model.initial_memory((n,)), "sequences", True)
