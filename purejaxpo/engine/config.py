"""Checks every algorithm's ``Config`` shares, done once here: positive integers, network fields, choice fields
and the rollout budget (``num_envs × num_steps`` per update, never more env steps than ``total_timesteps``)."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

from purejaxpo.networks.actor_critic import TORSOS
from purejaxpo.networks.torsos import ACTIVATIONS

SIZE_FIELDS = ("hidden_sizes", "critic_hidden_sizes", "channels")
ACTIVATION_FIELDS = ("activation", "actor_activation", "critic_activation")
ACTION_BOUNDS = (None, "clip", "tanh", "none")


def require_positive_ints(config: Any, names: tuple[str, ...]) -> None:
    """``ValueError`` naming the first of ``names`` that is not a positive ``int`` (bools are refused)."""
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{type(config).__name__}.{name} must be a positive integer, got {value!r}")


def require_choice(config: Any, name: str, allowed: Any) -> None:
    """``ValueError`` when ``config.<name>`` is not one of ``allowed`` (a tuple or a registry dict)."""
    value = getattr(config, name)
    if value not in allowed:
        shown = tuple(allowed)
        raise ValueError(f"{type(config).__name__}.{name} must be one of {shown}, got {value!r}")


class RolloutBudget:
    """Mixin for configs with ``num_envs``, ``num_steps`` and ``total_timesteps``.

    ``choices`` maps a field name to its allowed values (a tuple, or a registry whose keys are the names):
    :func:`validate_config` checks them and ``purejaxpo list`` shows them.

    Fields:
        num_envs: parallel environments per seed
        num_steps: steps per env in each rollout (an update collects num_envs × num_steps env steps)
        total_timesteps: env-step budget per seed: total_timesteps // (num_envs × num_steps) updates
        update_epochs: passes over each rollout per update
        num_minibatches: minibatches per epoch (must divide num_envs × num_steps)
        hidden_sizes: widths of the hidden layers (actor and critic)
        activation: hidden-layer activation
        torso: observation encoder: mlp, or cnn for [H, W, C] images (MinAtar)
        anneal_lr: decay the learning rate linearly to 0 over the run
        normalize_advantages: standardize advantages per minibatch
        clip_value: PPO-style clipped value loss
        normalize_obs: running mean/std normalization of observations (per seed)
        normalize_rewards: scale rewards by a running std of the discounted return
        action_bounds: continuous actions: clip the Gaussian sample or squash it with tanh (None = clip)
        init_log_std: continuous actions: initial log std of the Gaussian (None = 0.0)
    """

    choices: ClassVar[dict[str, Any]] = {}

    @property
    def batch_size(self) -> int:
        """Env steps collected per update (``num_envs × num_steps``)."""
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size


def caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning raised by the caller of this function at the first frame
    outside purejaxpo (and outside the ``<string>`` code dataclasses generate for ``__init__``): the user's
    line that built the config, so the warning shows once per such line."""
    import os
    import sys

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    frame, level = sys._getframe(2), 2  # level 1 is the caller of warnings.warn
    while frame is not None and (frame.f_code.co_filename.startswith(package) or frame.f_code.co_filename == "<string>"):
        frame, level = frame.f_back, level + 1
    return level


def check_batch_layout(config: Any, *, stacklevel: int | None = None) -> int:
    """Validate ``num_envs × num_steps`` against minibatches and the step budget; return ``num_updates``.

    ``total_timesteps`` is a budget that is never exceeded: the run makes ``total_timesteps // batch_size``
    updates, and a warning says how many env steps that is when it is fewer (attributed to the user's line
    that built the config, :func:`caller_stacklevel`).
    """
    require_positive_ints(config, ("num_envs", "num_steps", "total_timesteps", "update_epochs", "num_minibatches"))
    batch = config.batch_size
    if batch % config.num_minibatches:
        raise ValueError(
            f"num_envs × num_steps = {config.num_envs} × {config.num_steps} = {batch} does not divide into "
            f"num_minibatches={config.num_minibatches}"
        )
    if config.total_timesteps < batch:
        raise ValueError(
            f"total_timesteps={config.total_timesteps} is smaller than one rollout (num_envs × num_steps = {batch})"
        )
    num_updates = config.total_timesteps // batch
    if num_updates * batch != config.total_timesteps:
        warnings.warn(
            f"total_timesteps={config.total_timesteps} is not a multiple of the rollout size {batch}: "
            f"training runs {num_updates} updates = {num_updates * batch} env steps",
            stacklevel=stacklevel or caller_stacklevel(),
        )
    return num_updates


def validate_config(config: Any, *, batch_layout: bool = True) -> None:
    """The shared checks of an algorithm config, by field name (fields a config lacks are skipped):

    - ``hidden_sizes`` / ``critic_hidden_sizes`` / ``channels``: non-empty tuples of positive ints (lists are
      converted to tuples, so the frozen config stays hashable);
    - ``activation`` / ``actor_activation`` / ``critic_activation`` in :data:`ACTIVATIONS`; ``torso`` in
      :data:`TORSOS`; ``action_bounds`` in :data:`ACTION_BOUNDS` (``"none"``: the env gets the raw action);
    - every field of ``type(config).choices`` in its allowed values;
    - the batch layout (:func:`check_batch_layout`) unless ``batch_layout=False``.
    """
    name = type(config).__name__
    for field in SIZE_FIELDS:
        if not hasattr(config, field):
            continue
        value = getattr(config, field)
        value = tuple(value) if isinstance(value, (list, tuple)) else value
        object.__setattr__(config, field, value)
        if not isinstance(value, tuple) or not value or any(
            not isinstance(h, int) or isinstance(h, bool) or h <= 0 for h in value
        ):
            raise ValueError(f"{name}.{field} must be positive integers, got {value!r}")
    for field in ACTIVATION_FIELDS:
        if hasattr(config, field) and getattr(config, field) not in ACTIVATIONS:
            raise ValueError(f"{name}.{field} must be one of {sorted(ACTIVATIONS)}, got {getattr(config, field)!r}")
    if hasattr(config, "torso"):
        require_choice(config, "torso", TORSOS)
    if hasattr(config, "action_bounds") and getattr(config, "action_bounds") not in ACTION_BOUNDS:
        raise ValueError(f"{name}.action_bounds must be 'clip', 'tanh' or 'none', got {config.action_bounds!r}")
    for field, allowed in getattr(type(config), "choices", {}).items():
        require_choice(config, field, allowed)
    if batch_layout:
        check_batch_layout(config)


def check_action_settings(config: Any, spec: Any) -> None:
    """Continuous-only settings (``action_bounds``, ``init_log_std``) on a discrete env, and a CNN torso on flat
    observations, are errors (raised when the trainer is built, before anything compiles)."""
    if spec.kind != "continuous":
        for name in ("action_bounds", "init_log_std"):
            if getattr(config, name, None) is not None:
                raise ValueError(
                    f"{type(config).__name__}.{name} applies to continuous actions only, but the env's "
                    f"action space is {spec.kind}"
                )
    if getattr(config, "torso", "mlp") == "cnn" and len(spec.obs_shape) != 3:
        raise ValueError(f"torso='cnn' needs [H, W, C] observations; this env's are {spec.obs_shape}")


def register_record(table: dict[str, Any], record: Any, what: str, *, overwrite: bool = False) -> Any:
    """Add ``record`` to a variant registry under ``record.name``; ``ValueError`` naming ``what`` when the name
    is taken by another record, unless ``overwrite``. Returns the record."""
    if record.name in table and not overwrite and table[record.name] is not record:
        raise ValueError(f"a {what} named {record.name!r} is already registered")
    table[record.name] = record
    return record
