"""Ready-made parts that several algorithm declarations share: the actor-critic policy step, its critic, and
the standard single phase (clip-by-global-norm → Adam with PPO's linear learning-rate annealing)."""

from __future__ import annotations

from typing import Any, Callable

import jax

from purejaxpo.engine.collect import PolicyStep
from purejaxpo.engine.optim import adam_with_clipping, linear_annealing
from purejaxpo.engine.update import LossFn, Phase

Array = jax.Array


def actor_critic_step(to_env: Callable[[Array], Array]) -> PolicyStep:
    """``policy_step`` of a model whose ``__call__(obs)`` returns ``(distribution, value)``: sample, log-prob,
    value, and ``to_env(raw_action)`` for the env."""

    def step(model: Any, obs: Array, key: Array) -> tuple[Array, Array, Array, Array]:
        dist, value = model(obs)
        raw_action, log_prob = dist.sample_and_log_prob(seed=key)
        return raw_action, to_env(raw_action), log_prob, value

    return step


def critic_value(model: Any, obs: Array) -> Array:
    """``model.value(obs)``: the bootstrap critic of an actor-critic."""
    return model.value(obs)


def adam_phase(loss: LossFn, config: Any, *, lr: str = "lr", eps: float = 1e-5, **phase_fields: Any) -> Phase:
    """One phase of ``config.update_epochs × config.num_minibatches`` steps of ``loss`` with
    ``clip_by_global_norm(hp.max_grad_norm) → Adam(hp.<lr>)``, the rate annealed linearly to 0 over the run
    when ``config.anneal_lr``. ``phase_fields`` override :class:`Phase` fields (epochs, hooks, …)."""

    def hyperparams(hp: Any, update_index: Array) -> dict[str, Array]:
        rate = linear_annealing(getattr(hp, lr), update_index, config.num_updates, getattr(config, "anneal_lr", False))
        return {"learning_rate": rate, "max_grad_norm": hp.max_grad_norm}

    fields = {"epochs": config.update_epochs, "minibatches": config.num_minibatches, **phase_fields}
    return Phase(loss=loss, optimizer=adam_with_clipping(eps), hyperparams=hyperparams, **fields)
