"""Runs you can keep: :func:`load_run` reads a run directory (CLI ``--out`` or ``experiment.run(..., out=DIR)``)
back into its config, hyperparameters, metrics and trained state, with a ready policy.

The state is the newest checkpoint that restores (the final state once the run is done; where it stopped
otherwise). Loading only reads: damaged checkpoints are skipped, not moved.

    run = purejaxpo.load_run("runs/quickstart")
    act = run.policy(setting=0, seed=3, deterministic=True)    # act(obs, key) -> env action, jittable
    returns = run.evaluate(episodes=10)                        # [G, S], the in-training evaluation's keys
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from purejaxpo import checkpointing, rundir
from purejaxpo.algorithms.registry import Algorithm, get_algorithm
from purejaxpo.batching import map_over_runs
from purejaxpo.environments import make_env
from purejaxpo.evaluation import eval_keys, evaluate_runs
from purejaxpo.experiment import run_description
from purejaxpo.results import Results
from purejaxpo.settings import config_from_dict, hparams_from_dicts
from purejaxpo.types import Trainer, stack_hparams


@dataclass
class SavedRun:
    """A run read back from its directory. ``state`` leaves are ``[G, S, ...]`` (settings × seeds run);
    ``metrics[name]`` is ``[G, S, U]`` with NaN past ``update`` when the run stopped early."""

    path: Path
    description: dict[str, Any]
    algorithm: Algorithm
    config: Any
    hparams: list[Any]
    sweep_labels: list[str]
    num_seeds: int
    seed: int
    seed_indices: list[int] | None
    trainer: Trainer
    state: Any
    update: int
    metrics: dict[str, np.ndarray]
    status: dict[str, Any] | None
    skipped: list[tuple[int, str]]

    @property
    def done(self) -> bool:
        """True when the state is the final one (every update ran)."""
        return self.update == self.config.num_updates

    @property
    def seeds_run(self) -> int:
        return len(self.seed_indices) if self.seed_indices is not None else self.num_seeds

    def state_of(self, setting: int = 0, seed: int = 0) -> Any:
        """The state of one run: ``setting`` and ``seed`` index the grid and the seeds run."""
        grid = len(self.hparams)
        if not (0 <= setting < grid and 0 <= seed < self.seeds_run):
            raise IndexError(f"run ({setting}, {seed}) is outside {grid} settings × {self.seeds_run} seeds")
        return jax.tree.map(lambda x: x[setting, seed], self.state)

    def policy(self, setting: int = 0, seed: int = 0, deterministic: bool = False) -> Callable[[Any, Any], Any]:
        """``act(obs, key) -> env action`` for one run (pure; wrap in ``jax.jit``). ``obs`` may carry batch axes."""
        state = self.state_of(setting, seed)
        act = self.trainer.act
        return lambda obs, key: act(state, obs, key, deterministic=deterministic)

    def act(self, obs: Any, key: Any, *, setting: int = 0, seed: int = 0, deterministic: bool = False) -> Any:
        """One call of :meth:`policy`."""
        return self.policy(setting, seed, deterministic)(obs, key)

    def evaluate(self, episodes: int | None = None, *, deterministic: bool | None = None, seed: int | None = None,
                 max_steps: int | None = None) -> np.ndarray:
        """``[G, S]`` mean evaluation return. Defaults are the run's own (``eval_episodes``,
        ``eval_deterministic``, seed): they reproduce the evaluation in ``summary.json``."""
        episodes = int(episodes if episodes is not None else self.description.get("eval_episodes") or 10)
        if episodes <= 0:
            raise ValueError(f"episodes must be positive, got {episodes}")
        if deterministic is None:
            deterministic = bool(self.description.get("eval_deterministic", False))
        keys = eval_keys(self.seed if seed is None else seed, self.num_seeds, self.seed_indices)
        return evaluate_runs(self.trainer, self.state, keys, episodes, deterministic=deterministic, max_steps=max_steps)

    def results(self) -> Results:
        """The run as :class:`Results` (metrics up to ``update``; no timings)."""
        full = Results(
            algo=self.algorithm.name, env_name=self.description["env"], config=self.config, hparams=self.hparams,
            num_seeds=self.seeds_run, metrics=self.metrics, state=self.state, compile_s=0.0, run_s=0.0,
            sweep_labels=self.sweep_labels, seed=self.seed, seed_indices=self.seed_indices,
            steps_per_update=self.config.batch_size,
        )
        return full if self.done else full.truncated(self.update)


def load_run(path: str | Path, *, env: Any = None, env_params: Any = None) -> SavedRun:
    """Read the run in ``path``: its description (``config.json``), the newest checkpoint that restores, and
    a Trainer rebuilt from them. ``env``/``env_params`` replace ``make_env(description["env"])`` for runs on
    an env object that has no registered name."""
    path = Path(path)
    description = rundir.read_description(path)
    where = str(path / rundir.CONFIG)
    algorithm = get_algorithm(description["algo"])
    config = config_from_dict(algorithm, description["config"], where)
    hparams = hparams_from_dicts(algorithm, description["hparams"], where)
    if env is None:
        env, default_params = make_env(description["env"])
        env_params = default_params if env_params is None else env_params
    trainer = algorithm.make_train(config, env, env_params)
    num_seeds, seed = description["num_seeds"], description["seed"]
    indices = description.get("seed_indices")
    seeds_run = len(indices) if indices is not None else num_seeds

    hp = stack_hparams(hparams)
    keys = jax.random.split(jax.random.key(seed), num_seeds)
    keys = keys if indices is None else keys[np.asarray(indices)]
    keys = jax.numpy.broadcast_to(keys, (len(hparams), seeds_run))
    state_like = jax.eval_shape(map_over_runs(trainer.init, None), keys, hp)
    one = jax.tree.map(lambda x: x[0], hp)
    names = list(jax.eval_shape(trainer.update, jax.eval_shape(trainer.init, jax.random.key(0), one), one)[1])
    metrics_like = {n: np.zeros((len(hparams), seeds_run, config.num_updates), np.float32) for n in names}
    meta = run_description(algorithm.name, description["env"], config, hparams, num_seeds, seed, indices)
    restored = checkpointing.restore_latest(path / rundir.CHECKPOINTS, state_like, metrics_like, meta, repair=False)
    if restored.step is None:
        skipped = "; ".join(f"{s}: {why}" for s, why in restored.skipped)
        raise checkpointing.CheckpointError(
            f"{path} holds no checkpoint that restores" + (f" ({skipped})" if skipped else " (the run saved none yet)")
        )
    return SavedRun(
        path=path, description=description, algorithm=algorithm, config=config, hparams=hparams,
        sweep_labels=list(description.get("sweep_labels") or []), num_seeds=num_seeds, seed=seed, seed_indices=indices,
        trainer=trainer, state=restored.state, update=restored.step, metrics=restored.metrics,
        status=rundir.read_status(path), skipped=restored.skipped,
    )
