"""Shared containers: the trajectory a rollout produces, the Trainer contract, hyperparameter checks."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, NamedTuple

import jax
import numpy as np
from flax import struct

Array = jax.Array
Metrics = dict[str, Array]


@struct.dataclass
class Trajectory:
    """One rollout, time-major: every field is ``[T, B, ...]``.

    ``obs`` and ``final_obs`` are the (normalized) observations the policy saw; ``final_obs[t]`` is
    ``info["final_observation"]`` (the observation an episode ended on, before auto-reset) and
    ``final_value[t] = V(final_obs[t])`` bootstraps truncated steps. ``extras`` holds algorithm-specific
    per-step arrays (e.g. post-decision observations) and may be an empty dict.
    """

    obs: Array
    action: Array
    log_prob: Array
    value: Array
    reward: Array
    terminated: Array
    truncated: Array
    final_obs: Array
    final_value: Array
    extras: dict[str, Array] = struct.field(default_factory=dict)


class Trainer(NamedTuple):
    """What every ``make_train(config, env, env_params)`` returns. All four are pure and un-jitted, so
    they compose with ``jax.jit``, ``jax.vmap`` (seeds, hyperparameter grids) and sharding.

    - ``init(key, hp) -> state``: the full training state (params, optimizer, normalizers, env state,
      key, update index): everything needed to resume bit-exactly.
    - ``update(state, hp) -> (state, metrics)``: one training iteration (rollout → advantages → epochs
      of minibatch updates); ``metrics`` are per-update scalars.
    - ``train(key, hp) -> (state, metrics)``: ``init`` then ``config.num_updates`` updates in one
      ``lax.scan``; metrics are stacked ``[num_updates]``.
    - ``act(state, obs, key, deterministic=False) -> action``: the environment-ready action for ``obs``
      (``[*batch, *obs_shape]``), using the state's network parameters and observation normalizer.

    ``algorithm`` is the registry name of the algorithm that built it (``"hyper_srym"``, not the class of
    its config), so runs, summaries and checkpoints are labelled by what actually trained.

    Recurrent policies set ``memory(state, num_envs) -> fresh-episode memory`` and their ``act`` takes
    ``memory=`` and returns ``(action, next_memory)``; for envs with action masks ``act`` takes
    ``action_mask=`` (``[*batch, ..., n]`` bool, True = legal) and never returns a masked action.
    """

    init: Callable[..., Any]
    update: Callable[..., tuple[Any, Metrics]]
    train: Callable[..., tuple[Any, Metrics]]
    act: Callable[..., Array]
    config: Any
    env: Any
    env_params: Any
    algorithm: str = ""  # the registry name (``type(config).algorithm_name``): outputs never guess it
    memory: Callable[..., Any] | None = None  # recurrent policies: memory(state, num_envs) -> fresh memory


def scan_train(init: Callable[..., Any], update: Callable[..., tuple[Any, Metrics]], num_updates: int) -> Callable[..., tuple[Any, Metrics]]:
    """``train(key, hp)``: ``init`` then ``num_updates`` calls of ``update`` in one ``lax.scan``
    (metrics stacked ``[num_updates]``) — the ``Trainer.train`` of every algorithm."""

    def train(key: Array, hp: Any) -> tuple[Any, Metrics]:
        state = init(key, hp)
        return jax.lax.scan(lambda s, _: update(s, hp), state, None, length=num_updates)

    return train


def _is_concrete_number(value: Any) -> bool:
    """True for user-given numbers/arrays; False for tracers and jax's internal placeholders."""
    if isinstance(value, jax.core.Tracer):
        return False
    return isinstance(value, (int, float, np.ndarray, np.generic, jax.Array))


# A hyperparameter rule: a predicate on the value as a float64 array and the message when it fails.
Rule = tuple[Callable[[np.ndarray], Any], str]


def at_least(bound: float, note: str = "") -> Rule:
    """``x >= bound``."""
    return (lambda x: x >= bound), f"must be >= {bound:g}{note}"


def above(bound: float, note: str = "") -> Rule:
    """``x > bound``."""
    return (lambda x: x > bound), f"must be > {bound:g}{note}"


def in_interval(low: float, high: float, *, closed_high: bool = True) -> Rule:
    """``low <= x <= high`` (``< high`` when ``closed_high`` is False)."""
    if closed_high:
        return (lambda x: (x >= low) & (x <= high)), f"must lie in [{low:g}, {high:g}]"
    return (lambda x: (x >= low) & (x < high)), f"must lie in [{low:g}, {high:g})"


# Rules for the hyperparameters most algorithms share; an algorithm's own rules take precedence.
COMMON_HPARAM_RULES: dict[str, Rule] = {
    "lr": at_least(0, " (a negative learning rate ascends the loss)"),
    "gamma": in_interval(0, 1),
    "gae_lambda": in_interval(0, 1),
    "clip_eps": above(0),
    "ent_coef": at_least(0),
    "vf_coef": at_least(0),
    "max_grad_norm": above(0),
}

# The KL-adaptive learning rate's knobs (purejaxpo.primitives.kl_adaptive), shared by PolicyFlow and its
# Gaussian-PPO baseline, with AdamW's weight decay and the value clip they also share.
KL_ADAPTIVE_LR_RULES: dict[str, Rule] = {
    "value_clip_eps": above(0),
    "weight_decay": at_least(0),
    "desired_kl": above(0),
    "lr_factor": at_least(1),
    "min_lr": at_least(0),
    "max_lr": above(0),
}


def check_hparams(hp: Any, rules: dict[str, Rule] | None = None) -> None:
    """Raise ``ValueError`` if a concrete field of ``hp`` breaks its rule (every element of a stacked grid
    is checked). Fields named in :data:`COMMON_HPARAM_RULES` use those unless ``rules`` has its own.
    Traced fields (inside ``jit``/``vmap``) are skipped: they were checked on the way in."""
    rules = {**COMMON_HPARAM_RULES, **(rules or {})}
    for field in dataclasses.fields(hp):
        if field.name not in rules:
            continue
        value = getattr(hp, field.name)
        if not _is_concrete_number(value):
            continue
        array = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{type(hp).__name__}.{field.name} must be finite, got {array.tolist()}")
        holds, message = rules[field.name]
        if not np.all(holds(array)):
            raise ValueError(f"{type(hp).__name__}.{field.name} {message}, got {array.tolist()}")


class CheckedHParams:
    """Base of every algorithm's HParams: concrete values are validated on construction (and by
    ``validate()``, which the runner calls) against :data:`COMMON_HPARAM_RULES` plus the class's own
    ``rules`` (set by each algorithm module after the class, built with :func:`at_least`,
    :func:`above`, :func:`in_interval`).

    Fields:
        lr: Adam learning rate
        gamma: discount factor γ
        gae_lambda: GAE λ
        clip_eps: clip range ε of the probability ratio
        ent_coef: entropy bonus coefficient
        vf_coef: value-loss coefficient
        max_grad_norm: global gradient-norm clip
    """

    rules: ClassVar[dict[str, Rule]] = {}

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` for out-of-range concrete values (traced values are skipped)."""
        check_hparams(self, type(self).rules)


def stack_hparams(hparams: list[Any]) -> Any:
    """Stack a list of same-type hyperparameter pytrees into one with a leading ``[G]`` grid axis."""
    if not hparams:
        raise ValueError("stack_hparams needs at least one setting")
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x, np.float32) for x in xs]), *hparams)
