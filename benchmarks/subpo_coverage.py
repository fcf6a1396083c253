"""SubPO (M, NM) vs the modular SRL baseline on the SubRL paper's grid worlds, at the paper's scale (ICLR 2024).

    python -m benchmarks.subpo_coverage            # all worlds, 10 runs each: results/subpo_coverage{.json,_curves.png,_maps.png}
    python -m benchmarks.subpo_coverage --agents NM,SRL --out subpo_coverage_rest   # the other agents, then:
    python -m benchmarks.subpo_coverage --merge benchmarks/results/subpo_coverage.json benchmarks/results/subpo_coverage_rest.json --out subpo_coverage

Protocol of the reference code (github.com/manish-pra/non-additive-RL @ ef8ea29, ``main.py`` and
``params/<world>/subrl_{M,NM,SRL}.yaml``): every trajectory starts at cell 34; each update ("epoch") samples 500
trajectories of H states and takes one Adam step on all of them with the grid-code estimator
(``L = −mean[log π(a_h|x_h) · F(τ_{0:h+1}) / MAX_Ret]``, ``MAX_Ret = 2(H+1)``, no baseline, no entropy bonus).

| world | grid | H | weights / objective | updates | Adam lr | runs |
|---|---|---|---|---|---|---|
| coverage | 30×30 | 80 | constant, 2×2 disc | 50 | 0.01 | seeds |
| bimodal | 30×30 | 40 | bimodal, 2×2 disc | 140 | 0.001 | seeds |
| gp | 30×30 | 40 | released GP weights env_k | 140 | 0.001 | instances |
| entropy | 30×30 | 40 | GP log-det, fitted to released env_k | 150 | 0.001 | instances |
| steiner | 7×15 | 40 | released Steiner items env_k | 150 | 0.005 | instances |

Per world, every agent trains ``--runs`` runs (instances 0..R−1 with one seed each, or R seeds on the
deterministic worlds) in one jitted call. Reported per run: the reference's own log (mean / max / min of ``F``
over the 500 trajectories sampled in each update, and SRL's modular objective), then ``F`` of 500 fresh
trajectories of the final policy (mean / max / min) and of its mode, next to a uniform random policy and a greedy
planner that knows the map (best of lookaheads 1–3). Across runs: mean ± 95% CI and Welch t-tests.

Agents: ``M``/``NM``/``SRL`` with the grid-code estimator (the paper's, the headline), and the same three with our
actor-critic estimator (GAE(1, 1) on the marginal gains, normalized advantages) at the same lr and budget.
Deviations from the reference, all ours: the policy sees normalized ``[row, col, h]`` (the reference feeds the raw
``[cell index, h]``), NM sees that plus the ordered visited cells ``/ (N−1)`` padded with −1 (the reference: the
raw indices padded with −1; ``obs_mode="history"``),
orthogonal init (PyTorch default there); no gradient clipping as there (``max_grad_norm = 1e9``).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import machine, write_json
from benchmarks.stats import mean_ci, welch
from purejaxpo.algorithms import subpo
from purejaxpo.envs import submodular_planning as planning
from purejaxpo.envs.submodular_worlds import make_coverage, make_informative_path, make_steiner_covering


@dataclass(frozen=True)
class World:
    factory: Callable[..., Any]
    kwargs: dict[str, Any]
    lr: float
    updates: int
    instances: bool  # runs are the released instances (else seeds of one deterministic world)
    size: tuple[int, int] = (30, 30)
    curve_keys: tuple[str, ...] = field(default=("episode_objective", "episode_objective_max", "episode_objective_min",
                                                 "episode_modular_objective", "entropy"))


WORLDS = {
    "coverage": World(make_coverage, dict(weights="constant", horizon=80), 0.01, 50, False),
    "bimodal": World(make_coverage, dict(weights="bimodal", horizon=40), 1e-3, 140, False),
    "gp": World(make_coverage, dict(weights="gp", horizon=40), 1e-3, 140, True),
    "entropy": World(make_informative_path, dict(horizon=40), 1e-3, 150, True),
    "steiner": World(make_steiner_covering, dict(horizon=40), 5e-3, 150, True, size=(7, 15)),
}
AGENTS = {  # label -> (agent, estimator)
    "M": ("M", "greedy_prefix"),
    "NM": ("NM", "greedy_prefix"),
    "SRL": ("SRL", "greedy_prefix"),
    "M (actor-critic)": ("M", "actor_critic"),
    "NM (actor-critic)": ("NM", "actor_critic"),
    "SRL (actor-critic)": ("SRL", "actor_critic"),
}


def world_runs(world: World, runs: int, obs_mode: str = "position") -> tuple[Any, list[Any]]:
    """The env and one env-params per run (instance k, or the one deterministic world repeated)."""
    made = [world.factory(**world.kwargs, obs_mode=obs_mode, **({"instance": k} if world.instances else {}))
            for k in range(runs)]
    return made[0][0], [p for _, p in made]


def stack(trees: list[Any]) -> Any:
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *trees)


def summarize(values: np.ndarray) -> dict[str, Any]:
    """``values [R, E]`` (runs × trajectories): per-run mean / max / min and their mean ± CI over runs."""
    return {"mean": mean_ci(values.mean(1)), "max": mean_ci(values.max(1)), "min": mean_ci(values.min(1))}


def reference_points(env: Any, params: list[Any], episodes: int, seed: int) -> dict[str, Any]:
    """Uniform random policy (``episodes`` trajectories per run) and the greedy oracle, per run."""
    stacked = stack(params)
    steps = params[0].horizon - 1
    keys = jax.random.split(jax.random.key(seed + 7), len(params))
    random_f = jax.jit(jax.vmap(lambda p, k: planning.episode_rollout(env, p, planning.random_policy(5), k, episodes,
                                                                      steps)[0]))(stacked, keys)
    oracle = {}
    for lookahead in (1, 2, 3):
        values, cells = jax.vmap(lambda p: planning.greedy_oracle(env, p, lookahead))(stacked)
        oracle[lookahead] = (np.asarray(values), np.asarray(cells))
    best = np.max(np.stack([oracle[L][0] for L in oracle]), axis=0)
    pick = np.argmax(np.stack([oracle[L][0] for L in oracle]), axis=0)
    best_cells = np.stack([oracle[pick[r] + 1][1][r] for r in range(len(params))])
    return {"random": np.asarray(random_f), "oracle": best, "oracle_cells": best_cells,
            "oracle_by_lookahead": {L: oracle[L][0].tolist() for L in oracle}}


def train_agent(label: str, world: World, args: argparse.Namespace) -> dict[str, Any]:
    """Train and evaluate one agent on every run of a world (one compiled program, ``lax.map`` over runs)."""
    agent, estimator = AGENTS[label]
    env, params = world_runs(world, args.runs, "history" if agent == "NM" else "position")
    horizon = params[0].horizon
    steps = horizon - 1
    updates = args.updates or world.updates
    config = subpo.SubPOConfig(agent=agent, estimator=estimator, num_envs=args.num_envs, num_steps=steps,
                               total_timesteps=args.num_envs * steps * updates, hidden_sizes=(64, 32))
    hp = subpo.SubPOHParams(lr=world.lr, max_grad_norm=1e9, objective_scale=1.0 / (2 * (horizon + 1)))
    keys = jax.random.split(jax.random.key(args.seed), len(params))

    def one(inputs: tuple[Any, jax.Array]) -> tuple[dict[str, jax.Array], jax.Array, jax.Array, jax.Array]:
        env_params, key = inputs
        trainer = subpo.make_train(config, env, env_params)
        train_key, eval_key = jax.random.split(key)
        state, metrics = trainer.train(train_key, hp)
        sampled = planning.trained_policy(trainer, state, False)
        f_eval, cells = planning.episode_rollout(trainer.env, env_params, sampled, eval_key, args.eval_episodes, steps)
        f_mode, _ = planning.episode_rollout(trainer.env, env_params, planning.trained_policy(trainer, state, True),
                                             eval_key, 1, steps)
        curves = {k: metrics[k] for k in world.curve_keys if k in metrics}
        return curves, f_eval, f_mode[0], cells[:, :4].T

    start = time.perf_counter()
    run = jax.jit(lambda p, k: jax.lax.map(one, (p, k), batch_size=args.runs_per_batch))
    compiled = run.lower(stack(params), keys).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    curves, f_eval, f_mode, cells = jax.block_until_ready(compiled(stack(params), keys))
    run_s = time.perf_counter() - start
    f_eval = np.asarray(f_eval)  # [R, E]
    env_steps = len(params) * config.num_updates * config.batch_size
    row = {
        "agent": agent, "estimator": estimator, "updates": config.num_updates, "trajectories_per_update": config.num_envs,
        "final_eval": summarize(f_eval), "final_mode_F": mean_ci(np.asarray(f_mode)),
        "last_update_batch_F": {"mean": mean_ci(np.asarray(curves["episode_objective"])[:, -1]),
                                "max": mean_ci(np.asarray(curves["episode_objective_max"])[:, -1]),
                                "min": mean_ci(np.asarray(curves["episode_objective_min"])[:, -1])},
        "last_update_modular_objective": mean_ci(np.asarray(curves["episode_modular_objective"])[:, -1]),
        # per run only the headline curve (the plot's); the others as means over runs (keeps the JSON small)
        "curves_per_run": {"episode_objective": np.round(np.asarray(curves["episode_objective"], np.float64), 2).tolist()},
        "curves_mean": {k: np.round(np.asarray(v, np.float64).mean(0), 3).tolist() for k, v in curves.items()},
        "eval_F_mean_per_run": np.round(f_eval.mean(1), 3).tolist(),
        "env_steps": env_steps, "compile_s": round(compile_s, 1), "run_s": round(run_s, 1),
        "env_steps_per_s": round(env_steps / run_s, 1), "load_average_1min_after": machine()["load_average_1min"],
    }
    final = row["final_eval"]
    print(f"  {label:20s} F {final['mean']['mean']:8.2f} ± {final['mean']['ci95_half_width']:6.2f} (max {final['max']['mean']:.1f}, "
          f"min {final['min']['mean']:.1f}); mode {row['final_mode_F']['mean']:.1f}; modular "
          f"{row['last_update_modular_objective']['mean']:.1f}  [{env_steps / run_s:,.0f} env-steps/s, compile "
          f"{compile_s:.0f} s, run {run_s:.0f} s]", flush=True)
    return {"row": row, "paths": np.asarray(cells[0]), "eval_means": f_eval.mean(1)}


def draw_maps(worlds: dict[str, dict], path: str) -> None:
    """One trajectory of each agent (and of the greedy planner) on each world's value map."""
    from purejaxpo.envs.rendering import new_figure, save_figure

    labels = ["greedy oracle"] + [label for label in AGENTS if any(label in w["agents"] for w in worlds.values())]
    fig, _ = new_figure(2.4 * len(labels), 2.5 * len(worlds))
    fig.clear()
    for r, (name, w) in enumerate(worlds.items()):
        nrows, ncols = w["size"]
        for c, label in enumerate(labels):
            ax = fig.add_subplot(len(worlds), len(labels), r * len(labels) + c + 1)
            ax.imshow(w["value_map"].reshape(nrows, ncols), cmap="viridis", origin="upper")
            paths = w["ref"]["oracle_cells"][:1] if c == 0 else w["agents"].get(label, {}).get("paths", np.zeros((0, 1)))
            for b, cells in enumerate(paths):
                rows, cols = np.divmod(np.asarray(cells), ncols)
                ax.plot(cols, rows, "-", color=f"C{(b + 1) % 10}", linewidth=1.0)
                ax.plot(cols[:1], rows[:1], "o", color="red", markersize=3)
            ax.set_title(f"{name}: {label}", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
    save_figure(fig, path, dpi=70)


COMPARISONS = [("M", "SRL"), ("NM", "SRL"), ("NM", "M"), ("M", "M (actor-critic)"), ("NM", "NM (actor-critic)")]


def comparisons(means: dict[str, Any]) -> dict[str, Any]:
    """Welch tests of the final mean F per run between the agents present (``COMPARISONS``)."""
    return {f"{x} vs {y}": welch(means[x], means[y]) for x, y in COMPARISONS if x in means and y in means}


def merge(paths: list[str], out: str) -> dict[str, Any]:
    """One JSON from several runs of this script (e.g. M first, then NM and SRL): each world's agents are united
    (a later file's agent replaces an earlier one's), the Welch tests recomputed from the per-run final F, and
    ``status`` lists which agents ran on which world."""
    import json
    from pathlib import Path

    payloads = [json.loads(Path(path).read_text()) for path in paths]
    merged: dict[str, Any] = {"benchmark": "subpo_coverage", "merged_from": list(paths),
                              "settings": [p["settings"] for p in payloads], "machine": machine(),
                              "total_wall_s": round(sum(p["total_wall_s"] for p in payloads), 1), "worlds": {}}
    for payload in payloads:
        for name, world in payload["worlds"].items():
            target = merged["worlds"].setdefault(name, {**world, "agents": {}})
            target["agents"].update(world["agents"])
    for world in merged["worlds"].values():
        world["welch_final_eval_mean_F"] = comparisons(
            {label: row["eval_F_mean_per_run"] for label, row in world["agents"].items()})
    ran = {name: sorted(w["agents"]) for name, w in merged["worlds"].items()}
    missing = {name: [a for a in AGENTS if a not in agents] for name, agents in ran.items()}
    merged["status"] = ("complete" if not any(missing.values()) else
                        "partial: " + "; ".join(f"{n}: {', '.join(m)} not run" for n, m in missing.items() if m))
    write_json(out, merged, indent=None)  # compact: every agent's curves on every world
    draw_curves(merged, _output(out.removesuffix(".json") + "_curves.png"))
    return merged


def draw_curves(payload: dict[str, Any], path: str) -> None:
    """The learning curves of a payload (this script's JSON, merged or not): mean F per update ± 95% CI over runs,
    random and oracle lines; an agent keeps its colour across worlds, dashed for the actor-critic estimator."""
    from purejaxpo.envs.rendering import new_figure, save_figure

    worlds = payload["worlds"]
    fig, _ = new_figure(4.2 * len(worlds), 3.4)
    fig.clear()
    for i, (name, w) in enumerate(worlds.items()):
        ax = fig.add_subplot(1, len(worlds), i + 1)
        for j, label in enumerate(a for a in AGENTS if a in w["agents"]):
            curve = np.asarray(w["agents"][label]["curves_per_run"]["episode_objective"], np.float64)  # [R, U]
            mean, half = np.nanmean(curve, 0), 1.96 * np.nanstd(curve, 0) / np.sqrt(curve.shape[0])
            x = np.arange(1, curve.shape[1] + 1)
            ax.plot(x, mean, "--" if "actor" in label else "-", color=f"C{j % 3}", label=label)
            ax.fill_between(x, mean - half, mean + half, color=f"C{j % 3}", alpha=0.15)
        ax.axhline(w["random"]["mean"]["mean"], color="grey", linestyle=":", label="uniform random")
        ax.axhline(w["greedy_oracle_F"]["mean"], color="black", linestyle="-.", linewidth=0.8, label="greedy oracle")
        ax.set_xlabel("update (500 trajectories each)")
        ax.set_ylabel("F(τ) of the update's trajectories")
        ax.set_title(f"{name} ({w['runs']})", fontsize=9)
        if i == 0:
            ax.legend(fontsize=6)
    save_figure(fig, path, dpi=80)


def payload_of(args: argparse.Namespace, worlds: dict[str, dict], start: float) -> dict[str, Any]:
    out = {"benchmark": "subpo_coverage", "settings": vars(args), "machine": machine(),
           "total_wall_s": round(time.perf_counter() - start, 1), "worlds": {}}
    for name, w in worlds.items():
        rows = {label: a["row"] for label, a in w["agents"].items()}
        means = {label: a["eval_means"] for label, a in w["agents"].items()}
        tests = comparisons(means)
        out["worlds"][name] = {
            "runs": w["runs_kind"], "lr": w["lr"], "horizon": w["horizon"],
            "random": summarize(w["ref"]["random"]), "greedy_oracle_F": mean_ci(w["ref"]["oracle"]),
            "greedy_oracle_by_lookahead": w["ref"]["oracle_by_lookahead"],
            "agents": rows, "welch_final_eval_mean_F": tests,
        }
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", default=",".join(WORLDS))
    parser.add_argument("--agents", default=",".join(AGENTS), help=f"comma list of {list(AGENTS)}")
    parser.add_argument("--runs", type=int, default=10, help="instances (or seeds) per world")
    parser.add_argument("--runs-per-batch", type=int, default=5, help="runs vmapped together (memory)")
    parser.add_argument("--num-envs", type=int, default=500, help="trajectories per update (the paper: 500)")
    parser.add_argument("--updates", type=int, default=0, help="0 = the reference config's epochs per world")
    parser.add_argument("--eval-episodes", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="subpo_coverage")
    parser.add_argument("--merge", nargs="+", metavar="JSON", help="only merge these result files into --out.json")
    args = parser.parse_args(argv)
    if args.merge:
        print(merge(args.merge, f"{args.out}.json")["status"])
        return
    labels = [a.strip() for a in args.agents.split(",") if a.strip()]
    names = [w.strip() for w in args.worlds.split(",") if w.strip()]
    bad = [a for a in labels if a not in AGENTS] + [w for w in names if w not in WORLDS]
    if bad:
        parser.error(f"unknown agents/worlds {bad}; agents {list(AGENTS)}, worlds {list(WORLDS)}")
    if args.runs < 1 or args.runs > 10 or args.runs % args.runs_per_batch and args.runs > args.runs_per_batch:
        parser.error("--runs must be 1..10 (10 released instances) and a multiple of --runs-per-batch")
    args.runs_per_batch = min(args.runs_per_batch, args.runs)
    start = time.perf_counter()
    worlds: dict[str, dict] = {}
    for name in names:
        world = WORLDS[name]
        env, params = world_runs(world, args.runs)
        ref = reference_points(env, params, args.eval_episodes, args.seed)
        kind = f"{args.runs} released instances" if world.instances else f"{args.runs} seeds"
        print(f"{name} ({kind}): random F {ref['random'].mean():.2f}, greedy oracle F {ref['oracle'].mean():.2f}", flush=True)
        worlds[name] = {"agents": {}, "ref": ref, "runs_kind": kind, "lr": world.lr, "horizon": params[0].horizon,
                        "size": world.size, "value_map": env.objective.value_map(params[0].data)}
    for label in labels:  # agent-major: a stopped run keeps whole agents on every world
        for name in names:
            print(f"{name}:", end="", flush=True)
            worlds[name]["agents"][label] = train_agent(label, WORLDS[name], args)
            payload = payload_of(args, worlds, start)
            write_json(f"{args.out}.json", payload)  # after every finished configuration
        draw_curves(payload, _output(f"{args.out}_curves.png"))
        draw_maps(worlds, _output(f"{args.out}_maps.png"))
    path = write_json(f"{args.out}.json", payload_of(args, worlds, start))
    print(f"wrote {path} ({time.perf_counter() - start:.0f} s)")


def _output(name: str) -> str:
    """``name`` itself when it holds a directory, else its place in ``benchmarks/results/`` (as ``write_json``)."""
    from benchmarks.common import RESULTS

    if "/" in name:
        return name
    RESULTS.mkdir(parents=True, exist_ok=True)
    return str(RESULTS / name)


if __name__ == "__main__":
    main()
