"""purejaxpo: JAX-native, vectorized policy optimization.

Every algorithm is a pure ``make_train(config, env, env_params) -> Trainer(init, update, train, act)``
whose ``train(key, hp)`` is one jittable function; ``jax.vmap`` runs seeds and hyperparameter grids.
"""

from purejaxpo.algorithms import ppo
from purejaxpo.algorithms.registry import ALGORITHMS, get_algorithm
from purejaxpo.environments import list_envs, make_env, register_env
from purejaxpo.saved_run import SavedRun, load_run
from purejaxpo.types import Trainer, Trajectory, stack_hparams

__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS",
    "SavedRun",
    "Trainer",
    "Trajectory",
    "get_algorithm",
    "list_envs",
    "load_run",
    "make_env",
    "ppo",
    "register_env",
    "stack_hparams",
]
