"""SubPO (M and NM) vs the modular SRL baseline on the coverage and GP-entropy grid worlds (SubRL, ICLR 2024).

    python -m benchmarks.subpo_coverage               # writes benchmarks/results/subpo_coverage{.json,_maps.png,_curves.png}

For each world, every agent trains ``--seeds`` seeds in one vmapped, jitted call; afterwards each seed's policy
is evaluated on ``--eval-episodes`` sampled trajectories and on its mode (most likely action). ``F(τ)`` is
reported raw and normalized by the best ``F`` a greedy planner that knows the map finds
(:func:`purejaxpo.algorithms.planning.greedy_oracle`, best over lookaheads 1..3), next to a uniform random policy.

Worlds (defaults; the paper's are 30×30 with 500 trajectories × 140–150 epochs, cut here to fit a few CPU
minutes): ``coverage`` = ``Coverage-v0`` with GP weights (the paper's "GP" config: H = 40, 2×2 discs) and
``entropy`` = ``InformativePath-v0`` (GP log-det information, H = 40), both ``--size``×``--size`` from cell 34.
The paper's claim: SubPO beats modular RL and approaches the greedy constant-factor guarantee.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import RESULTS, machine, write_json
from purejaxpo.envs.submodular_worlds import make_coverage, make_informative_path
from purejaxpo.algorithms import subpo
from purejaxpo.envs import submodular_planning as planning

AGENTS = {  # label -> (agent, estimator)
    "SubPO-M": ("M", "actor_critic"),
    "SubPO-NM": ("NM", "actor_critic"),
    "SRL": ("SRL", "actor_critic"),
    "SubPO-M (grid-code estimator)": ("M", "greedy_prefix"),
    "SubPO-NM (grid-code estimator)": ("NM", "greedy_prefix"),
    "SRL (grid-code estimator)": ("SRL", "greedy_prefix"),
}


def make_world(name: str, size: int, horizon: int) -> tuple[Any, Any]:
    if name == "coverage":
        return make_coverage(nrows=size, ncols=size, horizon=horizon, weights="gp", start_cell=34)
    if name == "entropy":
        return make_informative_path(nrows=size, ncols=size, horizon=horizon, start_cell=34)
    raise ValueError(f"unknown world {name!r}")


def run_agent(label: str, env: Any, params: Any, args: argparse.Namespace, oracle: float,
              random_f: float) -> tuple[dict, Any]:
    """Train, evaluate and time one agent over all seeds; ``gap_closed = (F − F_random)/(F_oracle − F_random)``."""
    agent, estimator = AGENTS[label]
    steps = params.horizon - 1
    config = subpo.SubPOConfig(agent=agent, estimator=estimator, num_envs=args.num_envs, num_steps=steps,
                               total_timesteps=args.num_envs * steps * args.updates)
    trainer = subpo.make_train(config, env, params)
    hp = subpo.SubPOHParams(lr=args.lr)
    keys = jax.random.split(jax.random.key(args.seed), args.seeds)
    start = time.perf_counter()
    compiled = jax.jit(jax.vmap(trainer.train, in_axes=(0, None))).lower(keys, hp).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    states, metrics = compiled(keys, hp)
    objective = np.asarray(jax.block_until_ready(metrics["episode_objective"]))  # [S, U]
    run_s = time.perf_counter() - start

    def evaluate(state: Any, key: jax.Array, deterministic: bool) -> tuple[jax.Array, jax.Array]:
        policy = planning.trained_policy(trainer, state, deterministic)
        num = 1 if deterministic else args.eval_episodes
        return planning.episode_rollout(trainer.env, params, policy, key, num, steps)

    eval_keys = jax.random.split(jax.random.key(args.seed + 1), args.seeds)
    sampled, cells = jax.jit(jax.vmap(lambda s, k: evaluate(s, k, False)))(states, eval_keys)  # [S, E], [S, H, E]
    mode, _ = jax.jit(jax.vmap(lambda s, k: evaluate(s, k, True)))(states, eval_keys)  # [S, 1]
    sampled, mode = np.asarray(sampled).mean(-1), np.asarray(mode)[:, 0]
    env_steps = config.num_updates * config.batch_size * args.seeds
    row = {
        "agent": agent, "estimator": estimator,
        "F_sampled_mean": float(sampled.mean()), "F_sampled_std": float(sampled.std()),
        "F_mode_mean": float(mode.mean()), "F_mode_std": float(mode.std()),
        "normalized_sampled_mean": float(sampled.mean() / oracle), "normalized_sampled_std": float(sampled.std() / oracle),
        "normalized_mode_mean": float(mode.mean() / oracle),
        "gap_closed_sampled_mean": float((sampled.mean() - random_f) / (oracle - random_f)),
        "F_sampled_per_seed": np.round(sampled, 3).tolist(), "F_mode_per_seed": np.round(mode, 3).tolist(),
        "curve_normalized_mean": np.round(np.nanmean(objective, 0) / oracle, 4).tolist(),
        "curve_normalized_std": np.round(np.nanstd(objective, 0) / oracle, 4).tolist(),
        "nonfinite_steps": float(np.asarray(metrics["nonfinite_steps"]).sum()),
        "env_steps": env_steps, "compile_s": round(compile_s, 2), "run_s": round(run_s, 2),
        "env_steps_per_s": round(env_steps / run_s, 1),
    }
    print(f"  {label:32s} F sampled {row['F_sampled_mean']:8.2f} ± {row['F_sampled_std']:6.2f}  mode "
          f"{row['F_mode_mean']:8.2f}  normalized {row['normalized_sampled_mean']:.3f}  "
          f"gap closed {row['gap_closed_sampled_mean']:.3f}  "
          f"({row['env_steps_per_s']:,.0f} env-steps/s, compile {compile_s:.1f} s)", flush=True)
    return row, np.asarray(cells[0]).T  # seed 0's sampled paths [E, H]


def draw_maps(worlds: dict[str, dict], path: str) -> None:
    """One row per world: the oracle's path, then a few sampled paths of each agent's seed 0, on the value map."""
    from purejaxpo.envs.rendering import new_figure, save_figure

    labels = ["greedy oracle"] + list(next(iter(worlds.values()))["paths"])
    ncols, nrows = len(labels), len(worlds)
    fig, _ = new_figure(3.0 * ncols, 3.1 * nrows)
    fig.clear()
    for r, (name, world) in enumerate(worlds.items()):
        value_map = world["value_map"]
        size = value_map.shape[1]
        for c, label in enumerate(labels):
            ax = fig.add_subplot(nrows, ncols, r * ncols + c + 1)
            ax.imshow(value_map, cmap="viridis", origin="upper")
            paths = world["oracle_cells"][None] if c == 0 else world["paths"][label][:4]
            for b, cells in enumerate(paths):
                rows, cols = np.divmod(np.asarray(cells), size)
                ax.plot(cols, rows, "-", color=f"C{(b + 1) % 10}", linewidth=1.2)
                ax.plot(cols[:1], rows[:1], "o", color="red", markersize=4)
            score = world["oracle"] if c == 0 else world["rows"][label]["F_sampled_mean"]
            ax.set_title(f"{name}: {label}\nF = {score:.1f}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    save_figure(fig, path, dpi=80)


def draw_curves(worlds: dict[str, dict], updates_steps: np.ndarray, path: str) -> None:
    from purejaxpo.envs.rendering import new_figure, save_figure

    fig, _ = new_figure(5.0 * len(worlds), 3.6)
    fig.clear()
    for i, (name, world) in enumerate(worlds.items()):
        ax = fig.add_subplot(1, len(worlds), i + 1)
        for label, row in world["rows"].items():
            mean, std = np.asarray(row["curve_normalized_mean"]), np.asarray(row["curve_normalized_std"])
            ax.plot(updates_steps, mean, label=label)
            ax.fill_between(updates_steps, mean - std, mean + std, alpha=0.2)
        ax.axhline(world["random"] / world["oracle"], color="grey", linestyle=":", label="uniform random")
        ax.axhline(1.0, color="black", linestyle="--", linewidth=0.8, label="greedy oracle")
        ax.set_xlabel("env steps per seed")
        ax.set_ylabel("F(τ) / F(greedy oracle)")
        ax.set_title(name)
        ax.legend(fontsize=7)
    save_figure(fig, path, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", default="coverage,entropy")
    parser.add_argument("--agents", default="SubPO-M,SubPO-NM,SRL", help=f"comma list of {list(AGENTS)}")
    parser.add_argument("--size", type=int, default=20)
    parser.add_argument("--horizon", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--lr", type=float, default=subpo.SubPOHParams().lr)
    parser.add_argument("--eval-episodes", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="subpo_coverage")
    args = parser.parse_args()
    labels = [a.strip() for a in args.agents.split(",") if a.strip()]
    unknown = [a for a in labels if a not in AGENTS]
    if unknown:
        parser.error(f"unknown agents {unknown}; choose from {list(AGENTS)}")
    total_start = time.perf_counter()
    worlds: dict[str, dict] = {}
    for name in (w.strip() for w in args.worlds.split(",") if w.strip()):
        env, params = make_world(name, args.size, args.horizon)
        oracles = {L: float(planning.greedy_oracle(env, params, L)[0]) for L in (1, 2, 3)}
        best = max(oracles, key=oracles.get)
        oracle_cells = np.asarray(planning.greedy_oracle(env, params, best)[1])
        random_f, _ = planning.episode_rollout(env, params, planning.random_policy(5), jax.random.key(0), 1024,
                                            params.horizon - 1)
        world = {"oracle": oracles[best], "oracle_by_lookahead": oracles, "random": float(jnp.mean(random_f)),
                 "value_map": env.objective.value_map(params.data).reshape(args.size, args.size),
                 "oracle_cells": oracle_cells, "rows": {}, "paths": {}}
        print(f"{name}: greedy oracle F = {world['oracle']:.2f} (by lookahead {oracles}), uniform random "
              f"F = {world['random']:.2f} ({world['random'] / world['oracle']:.3f})", flush=True)
        for label in labels:
            world["rows"][label], world["paths"][label] = run_agent(label, env, params, args, world["oracle"],
                                                                   world["random"])
        worlds[name] = world
    RESULTS.mkdir(parents=True, exist_ok=True)
    steps = (np.arange(args.updates) + 1) * args.num_envs * (args.horizon - 1)
    draw_maps(worlds, str(RESULTS / f"{args.out}_maps.png"))
    draw_curves(worlds, steps, str(RESULTS / f"{args.out}_curves.png"))
    hp = subpo.SubPOHParams()
    payload = {
        "benchmark": "subpo_coverage",
        "settings": {k: v for k, v in vars(args).items()},
        "hparams": {**{f.name: float(getattr(hp, f.name)) for f in dataclasses.fields(hp)}, "lr": args.lr},
        "machine": machine(),
        "total_wall_s": round(time.perf_counter() - total_start, 1),
        "worlds": {
            name: {"greedy_oracle_F": w["oracle"], "greedy_oracle_F_by_lookahead": w["oracle_by_lookahead"],
                   "random_F": w["random"], "random_normalized": w["random"] / w["oracle"], "agents": w["rows"]}
            for name, w in worlds.items()
        },
    }
    path = write_json(f"{args.out}.json", payload)
    print(f"wrote {path} ({payload['total_wall_s']} s)")


if __name__ == "__main__":
    main()
