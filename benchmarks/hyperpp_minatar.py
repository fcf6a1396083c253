"""Hyper++ vs Hyper+S-RYM vs Euclidean PPO on MinAtar, a CPU **substitute for ProcGen** (Klein et al., ICLR 2026,
arXiv:2512.14202, which reports ProcGen-16 and Atari-5; the reference hyper-rl has no MinAtar setup).

    python -m benchmarks.hyperpp_minatar --steps 2015232 --seeds 3     # results/hyperpp_minatar{.json,.png}
    python -m benchmarks.hyperpp_minatar --merge a.json b.json --out hyperpp_minatar   # parts run apart, united

Agents (:mod:`purejaxpo.algorithms.hyperpp`): ``hyperpp`` (hyperboloid heads, RMSNorm + learned scaling, HL-Gauss
critic, 2 epochs), ``hyper_srym`` and ``euclidean`` (3 epochs). **Hyper+S-RYM is the Hyper++ authors'
reimplementation** (hyper-rl ``config/procgen_paper/hyper_paper.yaml``), not Cetin et al.'s code; it trains its
Poincaré offsets with Riemannian Adam there and with plain Adam on tangent parameters here. Its spectral norm
carries one power-iteration vector per layer (one step per gradient step), so wall clock is comparable.

Protocol: the paper's ProcGen PPO layout (64 envs × 256 steps, 8 minibatches, lr 5e-4, clip 0.2, entropy 0.01,
vf 0.5, grad clip 0.5, λ 0.95, embedding 32) with γ 0.99 (MinAtar) and a MinAtar-size encoder
(``--encoder cnn``: MinAtar's own torso, one 3×3 conv with 16 channels, then an MLP ``--hidden``;
``gridworld`` is hyper-rl's small-observation CNN). Seeds are vmapped in one jitted run per agent × game.
Reported per agent and game: final return (mean over the last 10% of updates, episodes weighted by count) per
seed, mean ± 95% CI, Welch t between agents, a uniform-random policy's return, and curves of return, tangent
embedding norm, approx KL and clip fraction; wall clock per env step with the load average.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import RESULTS, machine, write_json
from benchmarks.stats import mean_ci, welch
from purejaxpo import make_env
from purejaxpo.algorithms import hyperpp

AGENTS = {"hyperpp": hyperpp.HyperPPConfig, "hyper_srym": hyperpp.HyperSRYMConfig, "euclidean": hyperpp.EuclideanPPOConfig}
CURVES = ("episode_return", "embedding_norm", "embedding_norm_max", "approx_kl", "clip_fraction", "post_update_kl")


def final_mean(values: np.ndarray, counts: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    """Per-seed mean return over the last ``fraction`` of updates, weighted by episodes (``[S, U]`` → ``[S]``)."""
    last = max(1, int(np.ceil(fraction * values.shape[-1])))
    v, c = np.nan_to_num(values[:, -last:]), counts[:, -last:]
    return (v * c).sum(-1) / np.maximum(c.sum(-1), 1)


def random_return(env_name: str, episodes: int = 256, seed: int = 0) -> float:
    """Mean undiscounted return of a uniform random policy over ``episodes`` complete episodes."""
    from purejaxpo.rollout import init_env_carry, rollout

    env, params = make_env(env_name)
    carry = init_env_carry(env, params, jax.random.key(seed), episodes)
    n = env.action_space(params).n
    policy = lambda obs, k: (jax.random.randint(k, obs.shape[:1], 0, n),) * 2 + (jnp.zeros(obs.shape[:1]),) * 2
    _, _, stats = jax.jit(lambda c, k: rollout(env, params, c, k, policy, lambda o: o, 2000))(carry, jax.random.key(seed + 1))
    return float(stats.mean_return)


def run_one(agent: str, env_name: str, args: argparse.Namespace) -> dict:
    env, env_params = make_env(env_name)
    config = AGENTS[agent](encoder=args.encoder, hidden_sizes=tuple(args.hidden), num_envs=args.num_envs,
                           num_steps=args.num_steps, num_minibatches=args.num_minibatches, total_timesteps=args.steps)
    trainer = hyperpp.make_train(config, env, env_params)
    hp = hyperpp.HyperPPHParams()
    keys = jax.random.split(jax.random.key(args.seed), args.seeds)
    start = time.perf_counter()
    compiled = jax.jit(jax.vmap(trainer.train, in_axes=(0, None))).lower(keys, hp).compile()
    compile_s = time.perf_counter() - start
    load_before = machine()["load_average_1min"]
    start = time.perf_counter()
    _, metrics = compiled(keys, hp)
    metrics = jax.tree.map(np.asarray, jax.block_until_ready(metrics))
    run_s = time.perf_counter() - start
    steps = config.num_updates * config.batch_size * args.seeds
    final = final_mean(metrics["episode_return"], metrics["episode_count"])
    curves = {k: metrics[k].astype(np.float64) for k in CURVES}
    return {
        "agent": agent, "env": env_name, "update_epochs": config.update_epochs, "num_updates": config.num_updates,
        "final_return": mean_ci(final),
        "embedding_norm_final": mean_ci(curves["embedding_norm"][:, -1]),
        "embedding_norm_max": float(curves["embedding_norm_max"].max()),
        "approx_kl_mean": float(curves["approx_kl"].mean()), "clip_fraction_mean": float(curves["clip_fraction"].mean()),
        "trust_region_violation_fraction_updates": float(metrics["trust_region_violation"].mean()),
        "nonfinite_steps": int(metrics["nonfinite_steps"].sum()),
        "curves_mean": {k: np.round(np.nanmean(v, 0), 5).tolist() for k, v in curves.items()},
        "curves_per_seed": {k: np.round(curves[k], 4).tolist() for k in ("episode_return", "embedding_norm")},
        "compile_s": round(compile_s, 1), "run_s": round(run_s, 1), "us_per_env_step": round(1e6 * run_s / steps, 2),
        "env_steps_per_s": round(steps / run_s, 1), "load_average_1min": [load_before, machine()["load_average_1min"]],
    }


def plot(results: list[dict], randoms: dict[str, float], path: Any) -> None:
    from purejaxpo.envs.rendering import new_figure, save_figure

    envs = sorted({r["env"] for r in results})
    panels = ("episode_return", "embedding_norm", "approx_kl", "clip_fraction")
    fig, _ = new_figure(4.0 * len(panels), 3.2 * len(envs))
    fig.clear()
    for i, env in enumerate(envs):
        for j, key in enumerate(panels):
            ax = fig.add_subplot(len(envs), len(panels), i * len(panels) + j + 1)
            for c, r in enumerate(x for x in results if x["env"] == env):
                mean = np.asarray(r["curves_mean"][key], np.float64)
                x = (np.arange(len(mean)) + 1) * (r["env_steps_per_seed"] / len(mean))
                if key in r["curves_per_seed"]:
                    per = np.asarray(r["curves_per_seed"][key], np.float64)
                    half = 1.96 * np.nanstd(per, 0) / np.sqrt(per.shape[0])
                    ax.fill_between(x, mean - half, mean + half, color=f"C{c}", alpha=0.2)
                ax.plot(x, mean, color=f"C{c}", label=r["agent"], linewidth=1.0)
            if key == "episode_return":
                ax.axhline(randoms[env], color="grey", linestyle=":", label="uniform random")
            ax.set_title(f"{env}: {key}", fontsize=8)
            ax.set_xlabel("env steps per seed", fontsize=7)
            if i == 0 and j == 0:
                ax.legend(fontsize=6)
    save_figure(fig, str(path), dpi=70)


PAIRS = (("hyperpp", "euclidean"), ("hyperpp", "hyper_srym"), ("hyper_srym", "euclidean"))


def comparisons(results: list[dict]) -> dict[str, dict]:
    """Welch t of final return per game for each pair of agents in :data:`PAIRS` that both ran."""
    out = {}
    for env_name in sorted({r["env"] for r in results}):
        per = {r["agent"]: r["final_return"]["per_seed"] for r in results if r["env"] == env_name}
        out[env_name] = {f"{a} vs {b}": welch(per[a], per[b]) for a, b in PAIRS if a in per and b in per}
    return out


def figure_path(out: str) -> Any:
    """Where the figure of ``--out`` goes: beside a path, else under ``benchmarks/results/``."""
    return f"{out}.png" if "/" in out else RESULTS / f"{out}.png"


def merge(paths: list[str], out: str) -> dict:
    """One JSON and figure from several runs of this script (agents or games run apart): rows united (a later
    file's agent × game replaces an earlier one's), Welch tests recomputed, ``status`` names what did not run."""
    import json
    from pathlib import Path

    payloads = [json.loads(Path(path).read_text()) for path in paths]
    rows = {(r["env"], r["agent"]): r for p in payloads for r in p["results"]}
    results = [rows[k] for k in sorted(rows)]
    randoms = {env: value for p in payloads for env, value in p["random_return"].items()}
    missing = [f"{env}: {agent}" for env in sorted(randoms) for agent in AGENTS if (env, agent) not in rows]
    merged = {"benchmark": "hyperpp_minatar", "merged_from": list(paths), "settings": [p["settings"] for p in payloads],
              "machine": machine(), "random_return": randoms, "note": payloads[0]["note"], "results": results,
              "welch_final_return": comparisons(results),
              "status": "complete" if not missing else "partial: not run " + "; ".join(missing),
              "total_wall_s": round(sum(p["total_wall_s"] for p in payloads), 1)}
    write_json(f"{out}.json", merged)
    plot(results, randoms, figure_path(out))
    return merged


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=["Breakout-MinAtar", "SpaceInvaders-MinAtar"])
    parser.add_argument("--agents", nargs="+", default=list(AGENTS), choices=list(AGENTS))
    parser.add_argument("--steps", type=int, default=2_015_232,
                        help="env steps per seed (default: 123 updates of 64 × 256, the first multiple at or above 2e6)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--encoder", default="cnn", choices=["impala", "cnn", "gridworld", "mlp"])
    parser.add_argument("--hidden", type=int, nargs="+", default=[128])
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--num-steps", type=int, default=256)
    parser.add_argument("--num-minibatches", type=int, default=8)
    parser.add_argument("--out", default="hyperpp_minatar")
    parser.add_argument("--merge", nargs="+", metavar="JSON", help="unite saved results (agents or games run apart) "
                        "into --out, without training")
    args = parser.parse_args(argv)
    if args.merge:
        merged = merge(args.merge, args.out)
        print(f"wrote {args.out}.json / .png ({merged['status']})")
        return
    start = time.perf_counter()
    results, randoms = [], {env: random_return(env) for env in args.envs}
    payload = {"benchmark": "hyperpp_minatar", "machine": machine(), "settings": vars(args), "random_return": randoms,
               "note": "MinAtar (gymnax) substitutes for ProcGen; Hyper+S-RYM is the Hyper++ authors' reimplementation "
                       "(Riemannian Adam there, plain Adam on tangent parameters here)",
               "results": results}
    for env_name in args.envs:
        for agent in args.agents:
            r = run_one(agent, env_name, args)
            r["env_steps_per_seed"] = r["num_updates"] * args.num_envs * args.num_steps
            results.append(r)
            f = r["final_return"]
            print(f"{env_name:24s} {agent:11s} return {f['mean']:7.2f} ± {f['ci95_half_width']:.2f} (random {randoms[env_name]:.2f})  "
                  f"‖v‖ {r['embedding_norm_final']['mean']:.3f}  KL {r['approx_kl_mean']:.4f}  clip {r['clip_fraction_mean']:.3f}  "
                  f"{r['us_per_env_step']:.1f} µs/step  compile {r['compile_s']:.0f}s", flush=True)
            payload["welch_final_return"] = comparisons(results)
            payload["total_wall_s"] = round(time.perf_counter() - start, 1)
            write_json(f"{args.out}.json", payload)  # after every finished configuration
    plot(results, randoms, figure_path(args.out))
    print(f"wrote {args.out}.json / .png ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
