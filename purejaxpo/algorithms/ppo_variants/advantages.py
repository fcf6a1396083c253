"""PPO advantage estimators as registry records: ``PPOConfig(advantage=name)`` picks one when the trainer is built.

Each record computes ``(advantages, value targets, value mask or None)`` ``[T, B]`` once per update from the
rollout's :class:`~purejaxpo.engine.Experience` (whose rewards are already the scaled training rewards).
Built in:

- ``gae`` — GAE(λ) (Schulman et al. 2016), truncation bootstrapped from ``V(final_obs)``;
- ``egae`` — T-PPO's extended GAE (Fan et al. 2025, our reading): the same advantages, the critic trained only on
  steps of episodes that end inside the window;
- ``loo`` — LOOP's leave-one-out baseline over ``group_size`` sibling envs branched from a shared start state
  (Chen et al. 2025): per step, the return-to-go in the window minus the siblings' mean at the same step;
- ``polychromic`` — Polychromic PPO's set advantage × diversity over vines (Hamid et al. 2025) for the first
  ``poly_window`` steps of each vine's first episode, GAE elsewhere.

``grouped`` estimators branch each group of ``group_size`` consecutive envs from its leader before every rollout
(:func:`branch_from_group_leaders`). Register your own with :func:`register_advantage`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from purejaxpo.engine import Experience, UpdateContext, gae_of, require_positive_ints
from purejaxpo.engine.config import register_record
from purejaxpo.primitives import group_advantages as groups
from purejaxpo.primitives.advantages import discounted_returns, egae

Array = jax.Array
ALL_KINDS = ("discrete", "multi_discrete", "continuous")


class Advantages(NamedTuple):
    """``[T, B]`` advantages and value targets, the critic's sample mask (``None`` = all) and ``extras``: named
    ``[T, B]`` arrays an objective reads from ``batch.extras`` (e.g. P3O's pair ids), or ``None``."""

    advantages: Array
    targets: Array
    value_mask: Array | None = None
    extras: dict[str, Array] | None = None


@dataclass(frozen=True)
class AdvantageEstimator:
    """``compute(exp, ctx, config) -> Advantages``; ``grouped``: branch sibling envs before each rollout;
    ``action_kinds``: the action spaces it supports; ``check(config)`` validates the config's group fields."""

    name: str
    compute: Callable[[Experience, UpdateContext, Any], Advantages]
    grouped: bool = False
    action_kinds: tuple[str, ...] = ALL_KINDS
    check: Callable[[Any], None] | None = None


ADVANTAGES: dict[str, AdvantageEstimator] = {}


def register_advantage(estimator: AdvantageEstimator, *, overwrite: bool = False) -> AdvantageEstimator:
    """Add ``estimator`` under ``estimator.name`` (``ValueError`` if taken, unless ``overwrite``)."""
    return register_record(ADVANTAGES, estimator, "PPO advantage estimator", overwrite=overwrite)


def branch_from_group_leaders(tree: Any, group_size: int) -> Any:
    """Copy env ``g·K`` of every group of ``K = group_size`` consecutive envs into the group's other envs
    (every leaf ``[B, ...]``): the siblings restart from their leader's state."""

    def clone(x: Array) -> Array:
        grouped = x.reshape((x.shape[0] // group_size, group_size) + x.shape[1:])
        return jnp.broadcast_to(grouped[:, :1], grouped.shape).reshape(x.shape)

    return jax.tree.map(clone, tree)


def check_groups(config: Any) -> None:
    """``group_size ≥ 2`` siblings that divide ``num_envs``."""
    require_positive_ints(config, ("group_size",))
    if config.group_size < 2:
        raise ValueError(f"advantage={config.advantage!r} needs group_size >= 2 sibling envs, got {config.group_size}")
    if config.num_envs % config.group_size:
        raise ValueError(
            f"advantage={config.advantage!r} groups envs by group_size={config.group_size}, which must divide "
            f"num_envs={config.num_envs}"
        )


def check_polychromic(config: Any) -> None:
    check_groups(config)
    require_positive_ints(config, ("poly_set_size", "poly_window"))
    sets, rest = divmod(config.group_size, config.poly_set_size)
    if rest or sets < 2:
        raise ValueError(
            f"advantage='polychromic' splits each group of group_size={config.group_size} vines into at least "
            f"2 sets of poly_set_size={config.poly_set_size}; group_size must be a multiple >= 2x poly_set_size"
        )
    if config.poly_window > config.num_steps:
        raise ValueError(f"PPOConfig.poly_window={config.poly_window} exceeds num_steps={config.num_steps}")


def _gae(exp: Experience, ctx: UpdateContext, config: Any) -> Advantages:
    return Advantages(*gae_of(exp, ctx.hp.gamma, ctx.hp.gae_lambda))


def _egae(exp: Experience, ctx: UpdateContext, config: Any) -> Advantages:
    t = exp.trajectory
    return Advantages(*egae(exp.rewards, t.value, t.final_value, exp.last_value, t.terminated, t.truncated,
                            ctx.hp.gamma, ctx.hp.gae_lambda))


def _grouped_returns(exp: Experience, ctx: UpdateContext, config: Any) -> Array:
    """Window returns-to-go ``G_t = r_t + γ(1 − done_t) G_{t+1}``, ``G_T = 0`` (no critic), ``[T, G, K]``."""
    returns = discounted_returns(exp.rewards, exp.done, ctx.hp.gamma)
    return returns.reshape(returns.shape[0], -1, config.group_size)


def _loo(exp: Experience, ctx: UpdateContext, config: Any) -> Advantages:
    """At ``t = 0`` the siblings share the start state, so this is LOOP's ``Â_k = R_k − mean_{j≠k} R_j``; later
    steps use the reward-to-go (causality) form. The critic still trains on the GAE targets."""
    _, targets = gae_of(exp, ctx.hp.gamma, ctx.hp.gae_lambda)
    advantages = groups.loo_advantage(_grouped_returns(exp, ctx, config))
    return Advantages(advantages.reshape(targets.shape), targets)


def _polychromic(exp: Experience, ctx: UpdateContext, config: Any) -> Advantages:
    """``R(τ) = G_0`` (first-episode return in the window) and the diversity of the vines' *raw* final
    observations (episode end, or the window end), set advantage ``f_poly(set) − mean_sets f_poly``."""
    advantages, targets = gae_of(exp, ctx.hp.gamma, ctx.hp.gae_lambda)
    returns = _grouped_returns(exp, ctx, config)  # [T, G, K]
    num_groups, set_size = returns.shape[1], config.poly_set_size
    num_sets = config.group_size // set_size
    final_obs = groups.first_episode_end(exp.trajectory.final_obs, exp.env.obs, exp.done)  # [B, *obs], raw
    final_obs = final_obs.reshape((num_groups, num_sets, set_size) + final_obs.shape[1:])
    diversity_fn = config.diversity_fn or (lambda obs: groups.distinct_fraction(obs.reshape(obs.shape[0], -1)))
    diversity = jax.vmap(jax.vmap(diversity_fn))(final_obs)  # [G, M]
    set_adv = groups.polychromic_set_advantage(returns[0].reshape(num_groups, num_sets, set_size), diversity)
    per_vine = jnp.repeat(set_adv.reshape(-1), set_size)  # [B]
    first = groups.first_episode_mask(exp.done)
    return Advantages(groups.apply_set_advantage(advantages, per_vine, first, config.poly_window), targets)


register_advantage(AdvantageEstimator("gae", _gae))
register_advantage(AdvantageEstimator("egae", _egae))
register_advantage(AdvantageEstimator("loo", _loo, grouped=True, check=check_groups))
register_advantage(AdvantageEstimator(
    "polychromic", _polychromic, grouped=True, action_kinds=("discrete", "multi_discrete"), check=check_polychromic
))
