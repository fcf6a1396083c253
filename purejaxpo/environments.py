"""The one door to environments: ``make_env(name, **kwargs) -> (env, env_params)``.

Every environment returned here follows the gymnax 1.x API:

- ``reset(key, params) -> (obs, state)``
- ``step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)``, auto-resetting,
  with ``info["final_observation"]`` holding the observation *before* the reset (needed to bootstrap
  truncated episodes).
- ``observation_space(params)`` and ``action_space(params)``.

Names resolve in this order: environments registered with :func:`register_env`, our own
(:data:`purejaxpo.envs.ENV_FACTORIES`, imported on first use), gymnax's registered ids (``CartPole-v1``,
``Breakout-MinAtar``, ...) and brax's (``brax/hopper`` or plain ``hopper``), wrapped by
:class:`purejaxpo.brax_wrapper.BraxGymnaxWrapper`.
Ids with a suite prefix, ``navix/<id>``, ``jumanji/<id>`` and ``craftax/<id>``, go to the adapters of
:mod:`purejaxpo.adapters` (optional extras, imported only when asked for).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable

import gymnax

from purejaxpo import adapters

EnvFactory = Callable[..., tuple[Any, Any]]


@dataclass(frozen=True)
class EnvSpec:
    name: str
    factory: EnvFactory
    description: str = ""


_REGISTRY: dict[str, EnvSpec] = {}
# Brax names, listed statically so that `list_envs` does not import brax (slow, noisy) just to list them.
BRAX_ENV_NAMES = (
    "ant", "halfcheetah", "hopper", "humanoid", "humanoidstandup", "inverted_double_pendulum",
    "inverted_pendulum", "pusher", "reacher", "swimmer", "walker2d",
)


def register_env(name: str, factory: EnvFactory, *, description: str = "", overwrite: bool = False) -> None:
    """Register ``factory(**kwargs) -> (env, env_params)`` under ``name`` for :func:`make_env`."""
    if not overwrite and name in _REGISTRY and _REGISTRY[name].factory is not factory:
        raise ValueError(f"environment {name!r} is already registered")
    _REGISTRY[name] = EnvSpec(name, factory, description)


def _builtin() -> dict[str, tuple[EnvFactory, str]]:
    """Our own environments, ``name -> (factory, description)`` (imports :mod:`purejaxpo.envs`)."""
    from purejaxpo.envs import ENV_FACTORIES

    return ENV_FACTORIES


def list_envs() -> dict[str, list[str]]:
    """The names :func:`make_env` accepts, grouped by source (for the adapter suites, a few known ids)."""
    return {
        "purejaxpo": sorted(set(_REGISTRY) | set(_builtin())),
        "gymnax": list(gymnax.registered_envs),
        "brax": [f"brax/{n}" for n in BRAX_ENV_NAMES],
        **adapters.listed_ids(),
    }


def _all_names() -> list[str]:
    return [n for names in list_envs().values() for n in names] + list(BRAX_ENV_NAMES)


def make_env(name: str, **kwargs: Any) -> tuple[Any, Any]:
    """Build an environment by name; ``kwargs`` go to the environment's constructor/factory.

    Raises ``ValueError`` naming close matches for an unknown ``name`` (for a suite id, the suite's own
    ids), and ``ImportError`` naming the extra to install for a suite that is not installed.
    """
    if not isinstance(name, str):
        raise TypeError(f"environment name must be a string, got {type(name).__name__}")
    if name in _REGISTRY:
        return _REGISTRY[name].factory(**kwargs)
    if name in _builtin():
        return _builtin()[name][0](**kwargs)
    if name in gymnax.registered_envs:
        env, params = gymnax.make(name, **kwargs)
        return env, params
    brax_name = name.removeprefix("brax/")
    if brax_name in BRAX_ENV_NAMES:
        from purejaxpo.brax_wrapper import make_brax_env

        return make_brax_env(brax_name, **kwargs)
    if adapters.suite_of(name) is not None:
        return adapters.make_suite_env(name, **kwargs)
    close = difflib.get_close_matches(name, _all_names(), n=5, cutoff=0.4)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(f"unknown environment {name!r}.{hint} `purejaxpo list` shows every name.")
