"""P3O (pairwise PPO, our reconstruction [P]; Wu et al. 2023, arXiv:2310.00212) vs LOOP (K = 2) vs GAE-PPO on
classic control, paired seeds, a CPU budget.

All methods share the rollout layout (16 envs × 64 steps per update), the 64-64 tanh actor-critic, PPO's default
hyperparameters (lr 2.5e-4 annealed, ε 0.2, entropy 0.01, γ 0.99) and the number of gradient steps per update
(16): GAE-PPO and LOO take 4 epochs × 4 minibatches, P3O takes 16 full-batch steps (its trajectory ratios need
whole trajectories in one step). LOO and P3O branch each pair of envs from one start state before every
rollout; P3O and LOO train their critic but do not use it. Methods:

- ``ppo_gae``: PPO-clip with GAE(0.95) advantages;
- ``loo_k2``: PPO-clip with LOOP's leave-one-out advantages over 2 siblings (per-step ratios);
- ``p3o``: P3O-V1, separate clipping of each trajectory's ratio; ``p3o_joint``: P3O-V2, joint clipping.

Per seed: **final** = mean episode return over the last 10% of updates, **AUC** = mean over all updates (both over
the updates that finished an episode; a seed without any is reported missing, never dropped); mean ±
95% CI over seeds, Welch's t-test of each method against ``p3o``. Written after every finished (env, method)::

    python -m benchmarks.p3o_pairwise --total-timesteps 200000 --num-seeds 8
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np

from benchmarks.common import RESULTS, machine, write_json
from benchmarks.stats import mean_ci, welch
from purejaxpo import make_env
from purejaxpo.algorithms import ppo

ENVS = ("CartPole-v1", "Acrobot-v1")
LAYOUT = dict(num_envs=16, num_steps=64)
METHODS: dict[str, dict[str, Any]] = {
    "ppo_gae": dict(update_epochs=4, num_minibatches=4),
    "loo_k2": dict(update_epochs=4, num_minibatches=4, advantage="loo", group_size=2),
    "p3o": dict(update_epochs=16, num_minibatches=1, advantage="pairwise", objective="p3o", group_size=2,
                normalize_advantages=False),
    "p3o_joint": dict(update_epochs=16, num_minibatches=1, advantage="pairwise", objective="p3o_joint", group_size=2,
                      normalize_advantages=False),
}


def run(env_name: str, method: str, total_timesteps: int, keys: jax.Array) -> dict[str, Any]:
    env, env_params = make_env(env_name)
    config = ppo.PPOConfig(**LAYOUT, **METHODS[method], total_timesteps=total_timesteps)
    trainer = ppo.make_train(config, env, env_params)
    train = jax.jit(jax.vmap(trainer.train, in_axes=(0, None)))
    start = time.perf_counter()
    compiled = train.lower(keys, ppo.PPOHParams()).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    _, metrics = compiled(keys, ppo.PPOHParams())
    returns = np.asarray(jax.block_until_ready(metrics["episode_return"]), np.float64)  # [S, U]
    run_s = time.perf_counter() - start
    tail = max(1, returns.shape[1] // 10)
    extra = {k: float(np.mean(np.asarray(metrics[k]))) for k in ("trajectory_clip_fraction", "clip_fraction") if k in metrics}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a seed with no episode at all: NaN, counted as missing
        final, auc = np.nanmean(returns[:, -tail:], axis=1), np.nanmean(returns, axis=1)
    return {
        # per seed: the mean over the updates that finished an episode (with 500-step CartPole episodes and 64-step
        # rollouts many updates finish none); a seed with no episode in its tail is NaN and reported as missing
        "final": mean_ci(final),
        "auc": mean_ci(auc),
        "updates_without_episode": int(np.isnan(returns).sum()),
        "curve_mean": np.round(np.nanmean(returns, axis=0), 2).tolist(),
        "curve_env_steps": (np.arange(1, returns.shape[1] + 1) * config.batch_size).tolist(),
        "env_steps": config.num_updates * config.batch_size, "compile_s": round(compile_s, 2), "run_s": round(run_s, 2),
        "env_steps_per_s": round(config.num_updates * config.batch_size * keys.shape[0] / run_s, 1),
        "mean_metrics": extra, "config_overrides": {**LAYOUT, **METHODS[method]}, "machine": machine(),
    }


def plot(path: Any, payload: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(payload["runs"])
    fig, axes = plt.subplots(1, len(envs), figsize=(6 * len(envs), 4), squeeze=False)
    for ax, env_name in zip(axes[0], envs):
        for method, r in payload["runs"][env_name].items():
            final, half = r["final"]["mean"], r["final"]["ci95_half_width"]
            label = f"{method} (final {final:.0f} ± {half:.0f})" if half is not None else f"{method} (final n/a)"
            ax.plot(r["curve_env_steps"], r["curve_mean"], label=label)
        ax.set_title(f"{env_name}, {payload['num_seeds']} seeds (mean curve; final ± 95% CI)", fontsize=9)
        ax.set_xlabel("env steps")
        ax.set_ylabel("episode return")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", nargs="+", default=list(ENVS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--total-timesteps", type=int, default=200_000)
    parser.add_argument("--num-seeds", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="p3o_pairwise")
    parser.add_argument("--results-dir", default=str(RESULTS), help="where the JSON/PNG go")
    args = parser.parse_args(argv)
    results_dir = Path(args.results_dir)
    path = results_dir / f"{args.out}.json"
    header = {"benchmark": "p3o_pairwise", "total_timesteps": args.total_timesteps, "num_seeds": args.num_seeds, "seed": args.seed}
    payload: dict[str, Any] = {**header, "runs": {}, "vs_p3o": {}}
    if path.exists():
        old = json.loads(path.read_text())
        if all(old.get(k) == v for k, v in header.items()):
            payload = old
    keys = jax.random.split(jax.random.key(args.seed), args.num_seeds)
    for env_name in args.envs:
        runs = payload["runs"].setdefault(env_name, {})
        for method in args.methods:
            if method in runs:
                continue
            runs[method] = run(env_name, method, args.total_timesteps, keys)
            r = runs[method]
            number = lambda x: "    n/a" if x is None else f"{x:8.1f}"  # None: too few seeds logged an episode
            print(f"{env_name:12s} {method:9s} final {number(r['final']['mean'])} ± {number(r['final']['ci95_half_width'])} "
                  f"({r['final']['missing']} seeds without an episode)  AUC {number(r['auc']['mean'])}  "
                  f"{r['env_steps_per_s']:9.0f} steps/s (load {r['machine']['load_average_1min']})", flush=True)
            if "p3o" in runs:
                payload["vs_p3o"][env_name] = {
                    m: {k: welch(runs[m][k]["per_seed"], runs["p3o"][k]["per_seed"]) for k in ("final", "auc")}
                    for m in runs if m != "p3o"
                }
            write_json(f"{args.out}.json", payload, results_dir)
            plot(results_dir / f"{args.out}.png", payload)
    return payload


if __name__ == "__main__":
    main()
