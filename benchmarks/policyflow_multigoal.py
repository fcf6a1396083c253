"""PolicyFlow vs Gaussian PPO vs FPO on MultiGoal (the PolicyFlow paper's multimodality probe, arXiv:2602.01156).

    python -m benchmarks.policyflow_multigoal --seeds 5 --num-envs 256 --updates 200    # results/policyflow_multigoal{.json,.png,_curves.png}
    python -m benchmarks.policyflow_multigoal --restat benchmarks/results/policyflow_multigoal.json   # statistics again, no training

Protocol (the released ``scripts/multigoal`` config, [C] unless marked): MultiGoal-v0 with the reference's reward,
the env gets the **raw** action (``action_bounds="none"``: it clips for the dynamics and charges the action cost
on the raw action); 32 steps per env per update, 5 epochs × 4 minibatches, actor and critic [256, 128, 64] Mish.

- ``policyflow``: the released PolicyFlow hyperparameters (lr 2e-4 KL-adaptive on the running-mean KL, AdamW,
  Brownian 0.25, 10 midpoint steps, clip 0.2, value clip 0.2, vf 1.0, entropy 1e-3).
- ``gaussian_ppo``: PPO as the same repository configures it (:mod:`purejaxpo.algorithms.gaussian_ppo`).
- ``fpo``: FPO's official loss and hyperparameters (ε = 0.05, 8 (ε, t) pairs, 10 Euler steps, output ×0.25, Adam
  3e-4, vf 0.25, no entropy, no grad clip, running obs normalization, its 32×4 SiLU velocity net); ours [P]: the
  protocol's [256, 128, 64] critic (SiLU) instead of its 256×5, and the protocol's 5 × 4 epochs/minibatches
  instead of its 16 × 32.

Evaluation as the paper's ``play.py``: 1000 trajectories of 50 steps from the origin with the stochastic policy.
Metrics (ours, [P]: the released code draws figures only): a goal is *reached* by a trajectory that comes within
``--reach-radius`` (1.0) of it before its first episode end; ``reach_rate`` = fraction of trajectories reaching any
goal; ``goals_reached`` = goals reached by at least 2% of the trajectories; the first-action angle histogram over 6
bins of 60° centred on the goal directions, against chance 1/6 per bin (its normalized entropy; ``aim_fraction``
= first actions within ±15° of a goal direction, chance 0.5). The untrained policy of every algorithm is scored
the same way as the chance level. Reported per seed, mean ± 95% CI, Welch t against Gaussian PPO.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import jax
import numpy as np

from benchmarks.common import RESULTS, machine, write_json
from benchmarks.stats import mean_ci, welch
from purejaxpo import make_env
from purejaxpo.algorithms import fpo, gaussian_ppo, policyflow
from purejaxpo.envs import multigoal

NETWORK = (256, 128, 64)
REFERENCE_STEPS = {"model_300 (play.py)": 300 * 4096 * 32, "model_3000 (play_plot.py)": 3000 * 4096 * 32}


def build(name: str, args: argparse.Namespace, env: Any, params: Any) -> tuple[Any, Any]:
    layout = dict(num_envs=args.num_envs, num_steps=32, total_timesteps=args.num_envs * 32 * args.updates,
                  update_epochs=5, num_minibatches=4, action_bounds="none")
    if name == "policyflow":
        config = policyflow.PolicyFlowConfig(**layout, hidden_sizes=NETWORK, critic_hidden_sizes=NETWORK, emb_dim=64,
                                             num_flow_steps=args.flow_steps)
        return policyflow.make_train(config, env, params), policyflow.PolicyFlowHParams()
    if name == "gaussian_ppo":
        config = gaussian_ppo.GaussianPPOConfig(**layout, hidden_sizes=NETWORK)
        return gaussian_ppo.make_train(config, env, params), gaussian_ppo.GaussianPPOHParams()
    config = fpo.FPOConfig(**layout, critic_hidden_sizes=NETWORK, num_flow_steps=args.flow_steps)  # its own 32×4 SiLU actor
    return fpo.make_train(config, env, params), fpo.FPOHParams()


def evaluate(trainer: Any, env: Any, params: Any, states: Any, num: int, seed: int) -> tuple[np.ndarray, ...]:
    """``positions [S, T+1, N, 2]``, ``dones [S, T, N]``, ``actions [S, T, N, 2]`` of ``num`` trajectories per seed."""

    def one(state: Any, key: jax.Array) -> tuple[jax.Array, ...]:
        return multigoal.rollout(env, params, key, lambda k, obs: trainer.act(state, obs, k), num, 50)

    keys = jax.random.split(jax.random.key(seed), jax.tree.leaves(states)[0].shape[0])
    return tuple(np.asarray(x) for x in jax.jit(jax.vmap(one))(states, keys))


def goal_metrics(positions: np.ndarray, dones: np.ndarray, actions: np.ndarray, radius: float, min_mass: float = 0.02) -> dict:
    """Reach rates and first-action angle histogram of one seed (``positions [T+1, N, 2]``, ``dones [T, N]``)."""
    num_goals = 6
    angles = 2 * np.pi * np.arange(num_goals) / num_goals
    goals = 5.0 * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    steps = positions.shape[0]
    first_end = np.where(dones.any(0), dones.argmax(0) + 1, steps - 1)  # index of the episode's last position
    alive = np.arange(steps)[:, None] <= first_end[None, :]  # [T+1, N]
    dist = np.linalg.norm(positions[:, :, None, :] - goals[None, None], axis=-1)  # [T+1, N, G]
    dist = np.where(alive[..., None], dist, np.inf)
    reached = dist.min(0) < radius  # [N, G]
    per_goal = reached.mean(0)
    first = actions[0]
    theta = np.arctan2(first[:, 1], first[:, 0])
    offset = (theta - angles[:, None] + np.pi) % (2 * np.pi) - np.pi  # [G, N] angle to each goal direction
    nearest = np.abs(offset).argmin(0)
    hist = np.bincount(nearest, minlength=num_goals) / len(nearest)
    p = hist[hist > 0]
    return {
        "reach_rate": float(reached.any(1).mean()),
        "per_goal_reach": per_goal.round(4).tolist(),
        "goals_reached": int((per_goal >= min_mass).sum()),
        "angle_histogram": hist.round(4).tolist(),
        "angle_entropy": float(-(p * np.log(p)).sum() / np.log(num_goals)),
        "aim_fraction": float((np.abs(offset).min(0) <= math.pi / 12).mean()),
        "first_action_norm_mean": float(np.linalg.norm(first, axis=-1).mean()),
    }


def summarize(per_seed: list[dict]) -> dict:
    keys = ("reach_rate", "goals_reached", "angle_entropy", "aim_fraction", "first_action_norm_mean")
    return {k: mean_ci([m[k] for m in per_seed]) for k in keys}


def run(name: str, args: argparse.Namespace, env: Any, params: Any) -> dict:
    trainer, hp = build(name, args, env, params)
    keys = jax.random.split(jax.random.key(args.seed), args.seeds)
    start = time.perf_counter()
    compiled = jax.jit(jax.vmap(trainer.train, in_axes=(0, None))).lower(keys, hp).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    states, metrics = jax.block_until_ready(compiled(keys, hp))
    run_s = time.perf_counter() - start
    init = jax.vmap(trainer.init, in_axes=(0, None))(keys, hp)
    trained = evaluate(trainer, env, params, states, args.trajectories, args.seed + 1)
    untrained = evaluate(trainer, env, params, init, args.trajectories, args.seed + 1)
    per_seed = [goal_metrics(*(x[s] for x in trained), args.reach_radius) for s in range(args.seeds)]
    chance = [goal_metrics(*(x[s] for x in untrained), args.reach_radius) for s in range(args.seeds)]
    returns = np.asarray(metrics["episode_return"], np.float64)
    last = max(1, args.updates // 10)
    env_steps = args.seeds * args.num_envs * 32 * args.updates
    row = {
        "trained": summarize(per_seed), "untrained": summarize(chance), "per_seed": per_seed, "untrained_per_seed": chance,
        "final_train_return": mean_ci(np.nanmean(returns[:, -last:], axis=1)),
        "curves": {k: np.round(np.nanmean(np.asarray(metrics[k], np.float64), 0), 5).tolist()
                   for k in ("episode_return", "learning_rate", "approx_kl", "clip_fraction", "entropy", "policy_std",
                             "residual_std") if k in metrics},
        "return_curve_per_seed": np.round(returns, 4).tolist(),
        "compile_s": round(compile_s, 1), "run_s": round(run_s, 1), "env_steps": env_steps,
        "env_steps_per_s": round(env_steps / run_s, 1), "load_average_1min_after": machine()["load_average_1min"],
    }
    t = row["trained"]
    print(f"{name:13s} reach {t['reach_rate']['mean']:.3f} ± {t['reach_rate']['ci95_half_width']:.3f} (untrained "
          f"{row['untrained']['reach_rate']['mean']:.3f}); goals {t['goals_reached']['mean']:.1f}; aim "
          f"{t['aim_fraction']['mean']:.3f}; angle entropy {t['angle_entropy']['mean']:.3f}; train return "
          f"{row['final_train_return']['mean']:.2f}  [{env_steps / run_s:,.0f} env-steps/s, compile {compile_s:.0f} s]",
          flush=True)
    return {"row": row, "trained": [x[0] for x in trained]}


def draw(results: dict, params: Any, path: str) -> None:
    from purejaxpo.envs.rendering import new_figure, save_figure

    names = list(results)
    fig, _ = new_figure(4.0 * len(names), 11.0)
    fig.clear()
    goals = np.asarray(multigoal.goal_positions(params))
    for i, name in enumerate(names):
        positions, dones, actions = results[name]["trained"]
        ax = fig.add_subplot(3, len(names), i + 1)
        ends = np.where(dones.any(0), dones.argmax(0) + 2, positions.shape[0])
        for b in range(min(200, positions.shape[1])):
            ax.plot(positions[: ends[b], b, 0], positions[: ends[b], b, 1], "-", linewidth=0.4, alpha=0.5, color=f"C{b % 10}")
        ax.scatter(goals[:, 0], goals[:, 1], s=120, marker="*", color="k", zorder=3)
        ax.set_xlim(-8, 8), ax.set_ylim(-8, 8), ax.set_aspect("equal")
        reach = results[name]["row"]["trained"]["reach_rate"]["mean"]
        ax.set_title(f"{name}: 200 of the paths from the origin\nreach rate {reach:.2f} (seed mean)", fontsize=8)
        ax = fig.add_subplot(3, len(names), len(names) + i + 1)
        hists = np.asarray([m["angle_histogram"] for m in results[name]["row"]["per_seed"]])
        ax.bar(np.arange(6) * 60, hists.mean(0), width=40, yerr=hists.std(0), color="C0", alpha=0.7)
        ax.axhline(1 / 6, color="grey", linestyle=":", label="chance 1/6")
        ax.set_xticks(np.arange(6) * 60)
        ax.set_xlabel("first-action direction bin (goal angle, °)")
        ax.set_title(f"{name}: first-action angle histogram", fontsize=8)
        ax.legend(fontsize=7)
    ax = fig.add_subplot(3, 1, 3)
    for j, name in enumerate(names):
        curves = np.asarray(results[name]["row"]["return_curve_per_seed"], np.float64)
        mean = np.nanmean(curves, 0)
        half = 1.96 * np.nanstd(curves, 0) / np.sqrt(curves.shape[0])
        x = (np.arange(curves.shape[1]) + 1) * results[name]["row"]["env_steps"] / (curves.shape[0] * curves.shape[1])
        ax.plot(x, mean, color=f"C{j}", label=name)
        ax.fill_between(x, mean - half, mean + half, color=f"C{j}", alpha=0.2)
    ax.set_xlabel("env steps per seed")
    ax.set_ylabel("training episode return")
    ax.legend(fontsize=8)
    save_figure(fig, path, dpi=70)


COMPARED = ("reach_rate", "goals_reached", "angle_entropy", "aim_fraction")


def comparisons(rows: dict[str, dict]) -> dict[str, dict]:
    """Welch t of every algorithm against Gaussian PPO on each per-seed metric in :data:`COMPARED` and on the
    final training return."""
    def per_seed(name: str, key: str) -> list[float]:
        return [m[key] for m in rows[name]["per_seed"]]

    return {n: {**{k: welch(per_seed(n, k), per_seed("gaussian_ppo", k)) for k in COMPARED},
                "final_train_return": welch(rows[n]["final_train_return"]["per_seed"],
                                            rows["gaussian_ppo"]["final_train_return"]["per_seed"])}
            for n in rows if n != "gaussian_ppo"}


def draw_curves(rows: dict[str, dict], path: str) -> None:
    """Every seed's training return per update, one panel per algorithm, on a symmetric-log axis (a diverged
    seed's −1e4 and a learning seed's +7 both show)."""
    from purejaxpo.envs.rendering import new_figure, save_figure

    fig, _ = new_figure(4.0 * len(rows), 3.2)
    fig.clear()
    every = np.concatenate([np.ravel(np.asarray(r["return_curve_per_seed"], np.float64)) for r in rows.values()])
    low, high = np.nanmin(every), np.nanmax(every)
    for i, (name, row) in enumerate(rows.items()):
        ax = fig.add_subplot(1, len(rows), i + 1)
        curves = np.asarray(row["return_curve_per_seed"], np.float64)
        x = (np.arange(curves.shape[1]) + 1) * row["env_steps"] / (curves.shape[0] * curves.shape[1])
        for s, curve in enumerate(curves):
            ax.plot(x, curve, color=f"C{s}", linewidth=0.8, label=f"seed {s}")
        ax.set_yscale("symlog", linthresh=10.0)
        ax.set_ylim(min(low * 1.5, -1.0), max(high * 1.5, 10.0))  # one scale for every panel
        ax.set_title(f"{name}: training return per seed", fontsize=8)
        ax.set_xlabel("env steps per seed", fontsize=7)
        if i == 0:
            ax.legend(fontsize=6)
    save_figure(fig, path, dpi=70)


def restat(path: str) -> None:
    """Recompute ``welch_vs_gaussian_ppo`` of a saved result from its per-seed values and draw its per-seed
    curves (``<name>_curves.png``); nothing is retrained."""
    import json
    from pathlib import Path

    file = Path(path)
    payload = json.loads(file.read_text())
    payload["welch_vs_gaussian_ppo"] = comparisons(payload["algorithms"])
    write_json(file.name, payload, directory=file.parent)
    draw_curves(payload["algorithms"], str(file.with_name(file.stem + "_curves.png")))
    print(f"rewrote {file} and drew {file.stem}_curves.png")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithms", default="policyflow,gaussian_ppo,fpo")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument("--updates", type=int, default=150)
    parser.add_argument("--flow-steps", type=int, default=10)
    parser.add_argument("--trajectories", type=int, default=1000)
    parser.add_argument("--reach-radius", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="policyflow_multigoal")
    parser.add_argument("--restat", metavar="JSON", help="recompute the comparisons of a saved result and draw its "
                        "per-seed curves, without training")
    args = parser.parse_args(argv)
    if args.restat:
        return restat(args.restat)
    names = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    bad = [a for a in names if a not in ("policyflow", "gaussian_ppo", "fpo")]
    if bad:
        parser.error(f"unknown algorithms {bad}")
    env, params = make_env("MultiGoal-v0")
    start = time.perf_counter()
    per_seed_steps = args.num_envs * 32 * args.updates
    payload = {"benchmark": "policyflow_multigoal", "settings": vars(args), "machine": machine(),
               "budget": {"env_steps_per_seed": per_seed_steps,
                          **{f"fraction_of_{k}": round(per_seed_steps / v, 5) for k, v in REFERENCE_STEPS.items()}},
               "algorithms": {}}
    results = {}
    for name in names:
        results[name] = run(name, args, env, params)
        payload["algorithms"][name] = results[name]["row"]
        if "gaussian_ppo" in payload["algorithms"]:
            payload["welch_vs_gaussian_ppo"] = comparisons(payload["algorithms"])
        payload["total_wall_s"] = round(time.perf_counter() - start, 1)
        write_json(f"{args.out}.json", payload)  # after every finished algorithm
    out_png = f"{args.out}.png" if "/" in args.out else str(RESULTS / f"{args.out}.png")
    draw(results, params, out_png)
    draw_curves(payload["algorithms"], out_png.replace(".png", "_curves.png"))
    print(f"wrote {args.out}.json / .png ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
