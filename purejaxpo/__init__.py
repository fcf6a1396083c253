"""purejaxpo: JAX-native, vectorized policy optimization.

Every algorithm is a pure ``make_train(config, env, env_params) -> Trainer(init, update, train, act)``
whose ``train(key, hp)`` is one jittable function; ``jax.vmap`` runs seeds and hyperparameter grids.

The names below (and every submodule, e.g. ``purejaxpo.experiment``) load on first use (PEP 562), so
``import purejaxpo`` does not yet import gymnax, which initialises the XLA backend as it imports: a
multi-process run can call :func:`purejaxpo.distributed.initialize` first (see that module).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "ALGORITHMS": "purejaxpo.algorithms.registry",
    "get_algorithm": "purejaxpo.algorithms.registry",
    "list_envs": "purejaxpo.environments",
    "make_env": "purejaxpo.environments",
    "register_env": "purejaxpo.environments",
    "SavedRun": "purejaxpo.saved_run",
    "load_run": "purejaxpo.saved_run",
    "Trainer": "purejaxpo.types",
    "Trajectory": "purejaxpo.types",
    "stack_hparams": "purejaxpo.types",
    "ppo": "purejaxpo.algorithms.ppo",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # what static tools see; at run time __getattr__ loads these on first use
    from purejaxpo.algorithms import ppo
    from purejaxpo.algorithms.registry import ALGORITHMS, get_algorithm
    from purejaxpo.environments import list_envs, make_env, register_env
    from purejaxpo.saved_run import SavedRun, load_run
    from purejaxpo.types import Trainer, Trajectory, stack_hparams


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(_EXPORTS[name])
        value = module if name == "ppo" else getattr(module, name)
    else:
        try:
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
