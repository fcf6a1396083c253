"""THE on-policy engine: an algorithm declares its parts, :func:`build` returns the pure
:class:`~purejaxpo.types.Trainer`.

One update (the flat call path every on-policy algorithm shares)::

    keys    = parts.keys(state.key)                      # next, rollout, one per phase (+ a step-key chain)
    model   = merge(params)                              # π_old for the whole update
    exp     = collect_experience(policy_step, value)     # rollout → bootstrap → reward scaling
    prep    = parts.prepare(exp, ctx)                    # advantages / targets → batch [T, B, ...]
    for phase in parts.phases:                           # epochs × minibatches of gradient steps
        params, opt_state[i], carried = run_phase(...)
    carried, m = parts.per_update(...)                   # once-per-update state (adaptive β, …)
    metrics = episode stats + prepare + phases + per_update + learning rate + env_steps

Everything an algorithm can vary is one field of :class:`OnPolicyParts`; every field but ``network``,
``policy_step``, ``prepare`` and ``phases`` has a default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from purejaxpo.engine.collect import Experience, PolicyStep, ValueFn, collect_experience
from purejaxpo.engine.optim import init_optimizer, set_hyperparams
from purejaxpo.engine.state import OnPolicyState, init_state, observe_fn
from purejaxpo.engine.update import LossContext, Phase, phase_batch, run_phase
from purejaxpo.networks.graphdef import merger_of
from purejaxpo.rollout import EnvCarry, EpisodeStats, has_action_mask
from purejaxpo.types import Trainer, scan_train

Array = jax.Array
Metrics = dict[str, Array]


class UpdateContext(NamedTuple):
    """What ``prepare`` and ``per_update`` see: hyperparameters, π_old, the observation transform of this
    rollout, the carried state before the update, the update index and the env carry before the rollout."""

    hp: Any
    model: Any
    observe: Callable[[Array], Array]
    carried: Any
    update_index: Array
    env_before: EnvCarry
    key: Array


class Prepared(NamedTuple):
    """``prepare``'s result: the training batch (leaves ``[T, B, ...]``; the engine lays it out for each phase,
    :func:`~purejaxpo.engine.update.phase_batch`), the carried state for the phases, and per-update metrics."""

    batch: Any
    carried: Any = None
    metrics: Metrics = {}


class UpdateKeys(NamedTuple):
    next: Array
    rollout: Array
    prepare: Array | None
    phases: tuple[Array, ...]
    steps: Array | None


def default_keys(num_phases: int, step_keys: bool) -> Callable[[Array], UpdateKeys]:
    """``split(key, 2 + num_phases (+ 1))`` into next, rollout, one key per phase (and a step-key chain)."""

    def keys(key: Array) -> UpdateKeys:
        parts = jax.random.split(key, 2 + num_phases + int(step_keys))
        return UpdateKeys(parts[0], parts[1], None, tuple(parts[2 : 2 + num_phases]), parts[-1] if step_keys else None)

    return keys


@dataclass(frozen=True)
class OnPolicyParts:
    """The declaration of an on-policy algorithm.

    - ``network(key) -> nnx.Module`` builds the model (its ``(graphdef, params)`` split is the state's params);
    - ``policy_step(model, obs, key) -> (raw_action, env_action, log_prob, value)`` is what the rollout calls
      (``obs`` as the network sees it);
    - ``value(model, obs) -> [...]`` bootstraps truncated steps and the rollout end (``None``: no bootstrap);
    - ``prepare(exp, ctx) -> Prepared`` computes advantages and targets once and lays out the batch;
    - ``phases``: the gradient-step schedules (one for most algorithms; MDPO trains policy then critic);
    - ``act(model, obs, key, deterministic) -> env action`` for evaluation (``None``: the default actor);
    - ``init_carried(params, hp)`` / ``per_update(ctx, new_model, batch, carried) -> (carried, metrics)``:
      state carried across gradient steps and updates;
    - ``before_rollout(env_carry) -> env_carry`` (e.g. branch sibling envs from their group's leader);
    - ``info_extras(info)``, ``train_rewards(trajectory)``: see :func:`collect_experience`;
    - ``env``: the env the rollout steps (default: the trainer's env; e.g. PDPPO's post-decision wrapper);
    - ``keys(state.key) -> UpdateKeys``: how one update splits its key;
    - ``init_memory(model, num_envs) -> memory``: set for a recurrent policy. Then ``policy_step`` is
      ``(model, obs, key, memory, action_mask) -> (raw, env_action, log_prob, value, next_memory)``,
      ``value`` is ``(model, obs, memory)``, ``act`` takes and returns the memory, and the memory lives in the
      env carry of the state (resume is bit-exact). The 5-argument step is also used, with ``memory=None``,
      for an env with action masks (:func:`~purejaxpo.rollout.has_action_mask`), which needs
      ``action_masks=True`` (the algorithm applies the mask to its policy).
    """

    network: Callable[[Array], Any]
    policy_step: PolicyStep
    prepare: Callable[[Experience, UpdateContext], Prepared]
    phases: tuple[Phase, ...]
    value: ValueFn | None = None
    act: Callable[[Any, Array, Array, bool], Array] | None = None
    init_carried: Callable[[Any, Any], Any] | None = None
    per_update: Callable[[UpdateContext, Any, Any, Any], tuple[Any, Metrics]] | None = None
    before_rollout: Callable[[EnvCarry], EnvCarry] | None = None
    info_extras: Callable[[dict[str, Any]], dict[str, Array]] | None = None
    train_rewards: Callable[[Any], Array] | None = None
    env: Any = None
    keys: Callable[[Array], UpdateKeys] | None = None
    init_memory: Callable[[Any, int], Any] | None = None
    action_masks: bool = False


def episode_metrics(stats: EpisodeStats) -> Metrics:
    return {"episode_return": stats.mean_return, "episode_length": stats.mean_length, "episode_count": stats.count}


def distribution_act(model: Any, obs: Array, key: Array, deterministic: bool) -> Array:
    """The raw action of a model with ``distribution(obs)``: its mode, or a sample."""
    dist = model.distribution(obs)
    return dist.mode() if deterministic else dist.sample(seed=key)


def _unsupported_act(model: Any, obs: Array, key: Array, deterministic: bool, memory: Any = None, action_mask: Any = None):
    raise ValueError("this algorithm declares no act for recurrent or action-masked policies")


def build(parts: OnPolicyParts, config: Any, env: Any, env_params: Any, to_env: Callable[[Array], Array] | None = None) -> Trainer:
    """The :class:`~purejaxpo.types.Trainer` of ``parts`` (pure, un-jitted).

    ``to_env(raw_action)`` converts the default actor's raw action for the env (identity when ``None``); a
    custom ``parts.act`` returns env actions itself. ``Trainer.algorithm`` is ``type(config).algorithm_name``.
    """
    stepper = parts.env if parts.env is not None else env
    merge = merger_of(parts.network)
    keys_of = parts.keys or default_keys(len(parts.phases), any(p.step_keys for p in parts.phases))
    obs_shape = tuple(env.observation_space(env_params).shape)
    recurrent = parts.init_memory is not None
    if has_action_mask(env) and not parts.action_masks:
        raise ValueError(
            f"{type(config).algorithm_name} does not apply action masks, but {getattr(env, 'name', type(env).__name__)} "
            f"reports them (env.has_action_mask); use ppo, which masks invalid actions"
        )

    def fresh_memory(params: Any, num_envs: int) -> Any:
        return parts.init_memory(merge(params), num_envs) if recurrent else None

    def init(key: Array, hp: Any) -> OnPolicyState:
        net_key, key = jax.random.split(key)
        _, params = nnx.split(parts.network(net_key))
        zero = jnp.zeros((), jnp.int32)
        opt_state = tuple(init_optimizer(p.optimizer, params, **p.hyperparams(hp, zero)) for p in parts.phases)
        carried = parts.init_carried(params, hp) if parts.init_carried is not None else None
        memory = fresh_memory(params, config.num_envs)
        return init_state(env, env_params, config.num_envs, obs_shape, params, opt_state, key, carried, memory)

    def update(state: OnPolicyState, hp: Any) -> tuple[OnPolicyState, Metrics]:
        keys = keys_of(state.key)
        model = merge(state.params)
        if parts.before_rollout is not None:
            state = state.replace(env=parts.before_rollout(state.env))
        exp = collect_experience(
            stepper, env_params, config, state, model, keys.rollout, hp.gamma, parts.policy_step, parts.value,
            parts.info_extras, parts.train_rewards, fresh_memory(state.params, config.num_envs),
        )
        observe = observe_fn(config, state.obs_norm)
        ctx = UpdateContext(hp, model, observe, state.algo, state.update_index, state.env, keys.prepare)
        prepared = parts.prepare(exp, ctx)
        params, carried, opt_states, metrics = state.params, prepared.carried, [], dict(prepared.metrics)
        metrics["nonfinite_steps"] = jnp.zeros(())
        context = lambda c, k: LossContext(hp, model, c, k, state.update_index)
        for phase, opt_state, phase_key in zip(parts.phases, state.opt_state, keys.phases):
            values = {k: v for k, v in phase.hyperparams(hp, state.update_index).items() if k not in phase.adaptive}
            opt_state = set_hyperparams(opt_state, **values)
            params, opt_state, carried, summary = run_phase(
                phase, phase_key, params, opt_state, carried, phase_batch(phase, prepared.batch), merge, context, keys.steps
            )
            metrics["nonfinite_steps"] = metrics["nonfinite_steps"] + summary.pop("nonfinite")
            metrics.update(summary)
            opt_states.append(opt_state)
        if parts.per_update is not None:
            carried, extra = parts.per_update(ctx, merge(params), phase_batch(parts.phases[0], prepared.batch), carried)
            metrics.update(extra)
        for name, metric in parts.phases[0].report.items():
            metrics[metric] = opt_states[0].hyperparams[name]
        new_state = state.replace(
            params=params, opt_state=tuple(opt_states), obs_norm=exp.obs_norm, reward_scaler=exp.reward_scaler,
            env=exp.env, key=keys.next, update_index=state.update_index + 1, algo=carried,
        )
        metrics.update(episode_metrics(exp.stats))
        metrics["env_steps"] = (state.update_index + 1).astype(jnp.float32) * config.batch_size
        return new_state, metrics

    def act(state: OnPolicyState, obs: Array, key: Array, deterministic: bool = False, *, memory: Any = None,
            action_mask: Any = None) -> Any:
        model = merge(state.params)
        seen = observe_fn(config, state.obs_norm)(obs)
        if recurrent or action_mask is not None:
            return (parts.act or _unsupported_act)(model, seen, key, deterministic, memory=memory, action_mask=action_mask)
        if parts.act is not None:
            return parts.act(model, seen, key, deterministic)
        raw = distribution_act(model, seen, key, deterministic)
        return raw if to_env is None else to_env(raw)

    algorithm = type(config).algorithm_name
    memory = (lambda state, num_envs: fresh_memory(state.params, num_envs)) if recurrent else None
    return Trainer(init, update, scan_train(init, update, config.num_updates), act, config, env, env_params, algorithm,
                   memory)
