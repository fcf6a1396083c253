"""Adapters that put other JAX environment suites behind our gymnax 1.x step API.

``make_env("<suite>/<id>")`` lands here for the suites below; each is an optional extra
(``pip install "purejaxpo[navix]"``) and is imported only when one of its envs is asked for. Every
adapter keeps ``terminated`` and ``truncated`` apart and the terminal observation in
``info["final_observation"]``; see its module for what it reads from the suite and what it returns:

- ``navix/<id>`` (:mod:`purejaxpo.adapters.navix_env`): MiniGrid in JAX;
- ``jumanji/<id>`` (:mod:`purejaxpo.adapters.jumanji_env`): InstaDeep's suite, with action masks;
- ``craftax/<id>`` (:mod:`purejaxpo.adapters.craftax_env`): Craftax and Craftax-Classic.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

from purejaxpo.adapters.craftax_env import CRAFTAX_ENV_NAMES
from purejaxpo.adapters.jumanji_env import JUMANJI_ENV_NAMES
from purejaxpo.adapters.navix_env import NAVIX_ENV_NAMES


@dataclass(frozen=True)
class Suite:
    package: str  # the import name, also the id prefix and the pyproject extra
    module: str
    factory: str
    known_ids: tuple[str, ...]  # a few ids for `list_envs` (static: listing never imports the suite)


SUITES: dict[str, Suite] = {
    "navix": Suite("navix", "purejaxpo.adapters.navix_env", "make_navix_env", NAVIX_ENV_NAMES),
    "jumanji": Suite("jumanji", "purejaxpo.adapters.jumanji_env", "make_jumanji_env", JUMANJI_ENV_NAMES),
    "craftax": Suite("craftax", "purejaxpo.adapters.craftax_env", "make_craftax_env", CRAFTAX_ENV_NAMES),
}


def suite_of(name: str) -> Suite | None:
    """The suite whose prefix ``name`` carries (``"navix/Navix-Empty-5x5-v0"`` -> navix), else ``None``."""
    prefix, sep, _ = name.partition("/")
    return SUITES.get(prefix) if sep else None


def is_installed(suite: Suite) -> bool:
    return importlib.util.find_spec(suite.package) is not None


def listed_ids() -> dict[str, list[str]]:
    """``{suite: ["suite/<id>", ...]}`` for a few known ids per suite, without importing any suite."""
    return {key: [f"{key}/{i}" for i in suite.known_ids] for key, suite in SUITES.items()}


def make_suite_env(name: str, **kwargs: Any) -> tuple[Any, Any]:
    """Build ``"<suite>/<id>"`` with its adapter; a one-line ``ImportError`` names the missing extra."""
    suite = suite_of(name)
    if suite is None:
        raise ValueError(f"{name!r} names no adapter suite; prefixes are {sorted(SUITES)}")
    if not is_installed(suite):
        raise ImportError(f'{name!r} needs the {suite.package} package: pip install "purejaxpo[{suite.package}]"')
    factory = getattr(importlib.import_module(suite.module), suite.factory)
    return factory(name.partition("/")[2], **kwargs)
