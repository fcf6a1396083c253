"""Pieces every on-policy trainer here shares: config checks, the actor-critic built for an env, the
per-seed training state, and the rollout-plus-advantages step."""

from __future__ import annotations

import warnings
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import nnx, struct

from purejaxpo.networks import distributions
from purejaxpo.networks.actor_critic import ActorCritic
from purejaxpo.primitives.advantages import gae
from purejaxpo.primitives.stateful import (
    MomentsState,
    ReturnScalerState,
    normalize_with,
    return_scaler,
    running_moments,
    scale_rewards,
)
from purejaxpo.rollout import EnvCarry, EpisodeStats, bootstrap_values, init_env_carry, rollout
from purejaxpo.spaces import action_kind, box_bounds
from purejaxpo.types import Trajectory

Array = jax.Array


def require_positive_ints(config: Any, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{type(config).__name__}.{name} must be a positive integer, got {value!r}")


class RolloutBudget:
    """Mixin for configs with ``num_envs``, ``num_steps`` and ``total_timesteps``: the env steps per update
    and the number of updates the budget allows (never more env steps than ``total_timesteps``)."""

    @property
    def batch_size(self) -> int:
        """Env steps collected per update (``num_envs × num_steps``)."""
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size


def check_batch_layout(config: Any) -> int:
    """Validate ``num_envs × num_steps`` against minibatches and the step budget; return ``num_updates``.
    Called once, from the config's ``__post_init__``.

    ``total_timesteps`` is a budget that is never exceeded: the run makes ``total_timesteps //
    (num_envs·num_steps)`` updates, and a warning says how many env steps that is when it is fewer.
    """
    require_positive_ints(config, ("num_envs", "num_steps", "total_timesteps", "update_epochs", "num_minibatches"))
    batch = config.num_envs * config.num_steps
    if batch % config.num_minibatches:
        raise ValueError(
            f"num_envs × num_steps = {config.num_envs} × {config.num_steps} = {batch} does not divide into "
            f"num_minibatches={config.num_minibatches}"
        )
    if config.total_timesteps < batch:
        raise ValueError(
            f"total_timesteps={config.total_timesteps} is smaller than one rollout "
            f"(num_envs × num_steps = {batch})"
        )
    num_updates = config.total_timesteps // batch
    if num_updates * batch != config.total_timesteps:
        warnings.warn(
            f"total_timesteps={config.total_timesteps} is not a multiple of the rollout size {batch}: "
            f"training runs {num_updates} updates = {num_updates * batch} env steps",
            stacklevel=3,
        )
    return num_updates


@struct.dataclass
class PolicySpec:
    """Static facts about the env's spaces that networks and action conversion need."""

    obs_shape: tuple[int, ...] = struct.field(pytree_node=False)
    kind: str = struct.field(pytree_node=False)
    action_dim: int = struct.field(pytree_node=False)
    num_categories: int = struct.field(pytree_node=False)
    low: Any = None
    high: Any = None
    scalar_action: bool = struct.field(pytree_node=False, default=False)


def policy_spec(env: Any, env_params: Any) -> PolicySpec:
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


def check_action_settings(config: Any, spec: PolicySpec) -> None:
    """Continuous-only settings on a discrete env (and the CNN torso on flat observations) are errors."""
    if spec.kind != "continuous":
        for name in ("action_bounds", "init_log_std"):
            if getattr(config, name, None) is not None:
                raise ValueError(
                    f"{type(config).__name__}.{name} applies to continuous actions only, but the env's "
                    f"action space is {spec.kind}"
                )
    if getattr(config, "torso", "mlp") == "cnn" and len(spec.obs_shape) != 3:
        raise ValueError(f"torso='cnn' needs [H, W, C] observations; this env's are {spec.obs_shape}")


def build_actor_critic(config: Any, spec: PolicySpec, key: Array) -> ActorCritic:
    init_log_std = getattr(config, "init_log_std", None)
    return ActorCritic(
        spec.obs_shape,
        spec.kind,
        spec.action_dim,
        num_categories=spec.num_categories,
        hidden_sizes=config.hidden_sizes,
        activation=config.activation,
        torso=config.torso,
        init_log_std=0.0 if init_log_std is None else init_log_std,
        rngs=nnx.Rngs(params=key),
    )


def env_action(spec: PolicySpec, raw_action: Array, bounds: str | None) -> Array:
    """The action the env receives for a sampled (unbounded) policy action."""
    if spec.kind != "continuous":
        return raw_action
    action = distributions.to_env_action(raw_action, spec.low, spec.high, bounds or "clip")
    return action[..., 0] if spec.scalar_action else action


@struct.dataclass
class OnPolicyState:
    """Everything one seed needs to resume bit-exactly."""

    params: Any
    opt_state: Any
    obs_norm: MomentsState
    reward_scaler: ReturnScalerState
    env: EnvCarry
    key: Array
    update_index: Array
    algo: Any = None  # algorithm-specific carried state (e.g. an adaptive KL coefficient)


def init_state(
    env: Any, env_params: Any, config: Any, spec: PolicySpec, params: Any, opt_state: Any, key: Array, algo: Any = None
) -> OnPolicyState:
    env_key, key = jax.random.split(key)
    return OnPolicyState(
        params=params,
        opt_state=opt_state,
        obs_norm=running_moments.init(spec.obs_shape),
        reward_scaler=return_scaler.init((config.num_envs,)),
        env=init_env_carry(env, env_params, env_key, config.num_envs),
        key=key,
        update_index=jnp.zeros((), jnp.int32),
        algo=algo,
    )


def observe_fn(config: Any, obs_norm: MomentsState) -> Callable[[Array], Array]:
    """The observation transform the networks see (normalization with the rollout-time statistics)."""
    if config.normalize_obs:
        return lambda obs: normalize_with(obs_norm, obs.astype(jnp.float32))
    return lambda obs: obs.astype(jnp.float32)


@struct.dataclass
class Experience:
    """A rollout with its advantages: trajectory ``[T, B, ...]``, advantages and targets ``[T, B]``."""

    trajectory: Trajectory
    advantages: Array
    targets: Array
    stats: EpisodeStats
    reward_scaler: ReturnScalerState
    obs_norm: MomentsState
    env: EnvCarry


def collect_experience(
    env: Any,
    env_params: Any,
    config: Any,
    spec: PolicySpec,
    state: OnPolicyState,
    model: ActorCritic,
    key: Array,
    gamma: Array,
    gae_lambda: Array,
    extras_fn: Callable[[dict[str, Any]], dict[str, Array]] | None = None,
    rewards_fn: Callable[[Trajectory], Array] | None = None,
) -> Experience:
    """Rollout → bootstrap values of final observations → (optional) reward scaling → GAE.

    The trajectory stores raw observations; networks see ``observe(obs)`` with the statistics the
    rollout used. The observation normalizer is updated with this rollout's observations afterwards.
    ``extras_fn(info)`` keeps per-step info arrays in ``trajectory.extras`` (see :func:`rollout`);
    ``rewards_fn(trajectory) -> [T, B]`` picks the rewards GAE trains on (default ``trajectory.reward``;
    e.g. SubPO's modular baseline trains on ``extras["modular_reward"]``). Episode statistics always use
    the env's reward.
    """
    observe = observe_fn(config, state.obs_norm)
    bounds = getattr(config, "action_bounds", None)

    def policy_step(obs: Array, act_key: Array) -> tuple[Array, Array, Array, Array]:
        dist, value = model(observe(obs))
        raw_action, log_prob = dist.sample_and_log_prob(seed=act_key)
        return raw_action, env_action(spec, raw_action, bounds), log_prob, value

    env_carry, trajectory, stats = rollout(
        env, env_params, state.env, key, policy_step, lambda obs: obs, config.num_steps, extras_fn
    )
    trajectory = bootstrap_values(trajectory, lambda obs: model.value(observe(obs)))
    last_value = model.value(observe(env_carry.obs))
    rewards = trajectory.reward if rewards_fn is None else rewards_fn(trajectory)
    reward_scaler = state.reward_scaler
    if config.normalize_rewards:
        dones = jnp.logical_or(trajectory.terminated, trajectory.truncated)
        reward_scaler = return_scaler.update(reward_scaler, rewards, dones, gamma)
        rewards = scale_rewards(reward_scaler, rewards)
    advantages, targets = gae(
        rewards, trajectory.value, trajectory.final_value, last_value,
        trajectory.terminated, trajectory.truncated, gamma, gae_lambda,
    )
    obs_norm = running_moments.update(state.obs_norm, trajectory.obs) if config.normalize_obs else state.obs_norm
    return Experience(trajectory, advantages, targets, stats, reward_scaler, obs_norm, env_carry)


def act_fn(config: Any, spec: PolicySpec, graphdef: nnx.GraphDef) -> Callable[..., Array]:
    """``act(state, obs, key, deterministic=False) -> env action`` for evaluation and deployment."""
    bounds = getattr(config, "action_bounds", None)

    def act(state: OnPolicyState, obs: Array, key: Array, deterministic: bool = False) -> Array:
        model = nnx.merge(graphdef, state.params)
        dist = model.distribution(observe_fn(config, state.obs_norm)(obs))
        raw_action = dist.mode() if deterministic else dist.sample(seed=key)
        return env_action(spec, raw_action, bounds)

    return act


def episode_metrics(stats: EpisodeStats) -> dict[str, Array]:
    return {"episode_return": stats.mean_return, "episode_length": stats.mean_length, "episode_count": stats.count}
