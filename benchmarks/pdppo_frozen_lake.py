"""PDPPO vs its single-critic baseline on FrozenLakeStochastic (PDPPO's second benchmark, Felizardo et al. 2025,
arXiv:2504.05150), paired seeds, a CPU budget.

Both methods run PDPPO's trainer with our defaults (:func:`~purejaxpo.algorithms.pdppo_reference.default_settings`:
4 envs × 100 steps per update, 40 full-batch epochs, Monte-Carlo targets, γ 0.9, 128-128 networks) except a tanh
actor (the reference's Lake actor is tanh and fully trained); the baseline has ``critic_mode="ppo"``. One random
``--size`` × ``--size`` map (``--map-seed``; the reference draws a new 10×10 map per run, 200k env steps, 5
envs' worth of steps per update, 50 epochs and its 6-rollout buffer). Metrics as :mod:`benchmarks.pdppo_lot_sizing`
(the shaped return: proximity reward per step, hole penalty, 1 at the goal), logged every ``--log-every`` steps::

    python -m benchmarks.pdppo_frozen_lake --total-timesteps 50000 --num-seeds 8
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import RESULTS, machine, write_json
from benchmarks.pdppo_lot_sizing import compare, curve_metrics, logged_curve, train_seeds
from purejaxpo.algorithms.pdppo_reference import REFERENCE_METHODS, default_settings
from purejaxpo.envs.frozen_lake_stochastic import make_frozen_lake, map_of
from purejaxpo.rollout import evaluate


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--total-timesteps", type=int, default=50_000, help="env steps per seed (reference: 200k)")
    parser.add_argument("--num-seeds", type=int, default=8)
    parser.add_argument("--size", type=int, default=10)
    parser.add_argument("--map-seed", type=int, default=0)
    parser.add_argument("--log-every", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="pdppo_frozen_lake")
    parser.add_argument("--results-dir", default=str(RESULTS), help="where the JSON/PNG go")
    args = parser.parse_args(argv)
    results_dir = Path(args.results_dir)
    env, env_params = make_frozen_lake(size=args.size, map_seed=args.map_seed)
    header = {"benchmark": "pdppo_frozen_lake", "total_timesteps": args.total_timesteps, "reference_total_timesteps": 200_000,
              "num_seeds": args.num_seeds, "size": args.size, "map_seed": args.map_seed, "seed": args.seed,
              "log_every_env_steps": args.log_every}
    path = results_dir / f"{args.out}.json"
    payload: dict[str, Any] = {**header, "map": map_of(env_params), "methods": {}}
    if path.exists():
        old = json.loads(path.read_text())
        if all(old.get(k) == v for k, v in header.items()):
            payload = old
    uniform = lambda s, obs, k: jax.random.randint(k, (obs.shape[0],), 0, 4)
    random_returns = evaluate(env, env_params, uniform, None, jax.random.key(args.seed + 1), 512, 100)
    payload["random_policy_return"] = {"mean": float(jnp.mean(random_returns)), "std": float(jnp.std(random_returns))}
    keys = jax.random.split(jax.random.key(args.seed), args.num_seeds)
    for method in REFERENCE_METHODS:
        if method in payload["methods"]:
            continue
        config, hp = default_settings(method, total_timesteps=args.total_timesteps, actor_activation="tanh")
        run = train_seeds(config, hp, env, env_params, keys)
        per_log = max(1, args.log_every // config.batch_size)
        curve = logged_curve(run.pop("returns"), run.pop("counts"), per_log)
        payload["methods"][method] = {**run, "metrics": curve_metrics(curve), "curve": np.round(curve, 3).tolist(),
                                      "curve_env_steps": ((np.arange(curve.shape[1]) + 1) * per_log * config.batch_size).tolist(),
                                      "config": dict(vars(config))}
        m = payload["methods"][method]["metrics"]
        print(f"lake {method:5s} final {m['final']['mean']:.3f} ± {m['final']['ci95_half_width']:.3f}  AUC {m['auc']['mean']:.3f}  "
              f"{run['env_steps_per_s']:.0f} steps/s (load {run['machine']['load_average_1min']})", flush=True)
        if len(payload["methods"]) == len(REFERENCE_METHODS):
            payload["pdppo_minus_ppo"] = compare(payload["methods"]["pdppo"]["metrics"], payload["methods"]["ppo"]["metrics"])
        payload["machine"] = machine()
        write_json(f"{args.out}.json", payload, results_dir)
    return payload


if __name__ == "__main__":
    main()
