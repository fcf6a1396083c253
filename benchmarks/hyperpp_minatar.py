"""Hyper++ vs Hyper+S-RYM vs Euclidean PPO on MinAtar (gymnax), seeds vmapped, one jitted run per agent × env.

ProcGen (the paper's benchmark) has no JAX implementation here; MinAtar (Breakout, SpaceInvaders, …) through
gymnax stands in for it, so these are *not* the paper's numbers. Per agent and env we report the final return
(mean over the last 10% of updates, episodes weighted by count), the tangent-embedding norm (mean and max),
approx KL, the fraction of gradient steps and of updates whose KL exceeded ``kl_limit`` (0.02), non-finite
steps, compile time and wall-clock per env step. Usage::

    python -m benchmarks.hyperpp_minatar --steps 12288 --seeds 5 --encoder cnn --envs Breakout-MinAtar SpaceInvaders-MinAtar

Writes ``benchmarks/results/hyperpp_minatar.json`` (and ``hyperpp_minatar.png`` with return / norm / KL curves).
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from benchmarks.common import RESULTS, machine, write_json
from purejaxpo import make_env
from purejaxpo.algorithms import hyperpp

AGENTS = {
    "hyperpp": hyperpp.HyperPPConfig,
    "hyper_srym": hyperpp.HyperSRYMConfig,
    "euclidean": hyperpp.EuclideanPPOConfig,
}


def final_mean(values: np.ndarray, counts: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    last = max(1, int(np.ceil(fraction * values.shape[-1])))
    v, c = np.nan_to_num(values[:, -last:]), counts[:, -last:]
    return (v * c).sum(-1) / np.maximum(c.sum(-1), 1)


def run_one(agent: str, env_name: str, args: argparse.Namespace) -> dict:
    env, env_params = make_env(env_name)
    config = AGENTS[agent](
        encoder=args.encoder, num_envs=args.num_envs, num_steps=args.num_steps,
        num_minibatches=args.num_minibatches, total_timesteps=args.steps,
    )
    trainer = hyperpp.make_train(config, env, env_params)
    hp = hyperpp.HyperPPHParams()
    keys = jax.random.split(jax.random.key(args.seed), args.seeds)
    start = time.perf_counter()
    compiled = jax.jit(jax.vmap(trainer.train, in_axes=(0, None))).lower(keys, hp).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    _, metrics = compiled(keys, hp)
    metrics = jax.tree.map(np.asarray, jax.block_until_ready(metrics))
    run_s = time.perf_counter() - start
    steps = config.num_updates * config.batch_size * args.seeds
    final = final_mean(metrics["episode_return"], metrics["episode_count"])
    return {
        "agent": agent, "env": env_name, "update_epochs": config.update_epochs,
        "final_return_mean": float(final.mean()), "final_return_std": float(final.std()),
        "final_return_per_seed": np.round(final, 3).tolist(),
        "embedding_norm_mean": float(metrics["embedding_norm"].mean()),
        "embedding_norm_final": float(metrics["embedding_norm"][:, -1].mean()),
        "embedding_norm_max": float(metrics["embedding_norm_max"].max()),
        "approx_kl_mean": float(metrics["approx_kl"].mean()),
        "approx_kl_max": float(metrics["approx_kl"].max()),
        "kl_violation_fraction_steps": float(metrics["kl_violation_fraction"].mean()),
        "trust_region_violation_fraction_updates": float(metrics["trust_region_violation"].mean()),
        "nonfinite_steps": int(metrics["nonfinite_steps"].sum()),
        "compile_s": round(compile_s, 2), "run_s": round(run_s, 2),
        "us_per_env_step": round(1e6 * run_s / steps, 2), "env_steps_per_s": round(steps / run_s, 1),
        "curves": {k: metrics[k].mean(0).round(4).tolist() for k in ("episode_return", "embedding_norm", "approx_kl")},
    }


def plot(results: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = sorted({r["env"] for r in results})
    fig, axes = plt.subplots(len(envs), 3, figsize=(12, 3 * len(envs)), squeeze=False)
    for i, env in enumerate(envs):
        for r in (r for r in results if r["env"] == env):
            for j, key in enumerate(("episode_return", "embedding_norm", "approx_kl")):
                axes[i, j].plot(r["curves"][key], label=r["agent"])
                axes[i, j].set_title(f"{env}: {key}")
    axes[0, 0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=["Breakout-MinAtar", "SpaceInvaders-MinAtar"])
    parser.add_argument("--agents", nargs="+", default=list(AGENTS), choices=list(AGENTS))
    parser.add_argument("--steps", type=int, default=12_288, help="env steps per seed")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--encoder", default="cnn", choices=["impala", "cnn", "mlp"])
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--num-steps", type=int, default=64)
    parser.add_argument("--num-minibatches", type=int, default=4)
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args()
    results = []
    for env_name in args.envs:
        for agent in args.agents:
            r = run_one(agent, env_name, args)
            results.append(r)
            print(
                f"{env_name:24s} {agent:11s} return {r['final_return_mean']:7.3f} ± {r['final_return_std']:.3f}  "
                f"‖v‖ {r['embedding_norm_final']:.3f} (max {r['embedding_norm_max']:.2f})  KL {r['approx_kl_mean']:.4f}  "
                f"viol(upd) {r['trust_region_violation_fraction_updates']:.2f}  {r['us_per_env_step']:.1f} µs/step  "
                f"compile {r['compile_s']:.0f}s", flush=True,
            )
    payload = {"machine": machine(), "settings": vars(args), "results": results,
               "note": "MinAtar via gymnax stands in for ProcGen; budgets are CPU-feasible, not the paper's 25M steps"}
    print("wrote", write_json("hyperpp_minatar.json", payload))
    if not args.no_plot:
        plot(results, RESULTS / "hyperpp_minatar.png")


if __name__ == "__main__":
    main()
