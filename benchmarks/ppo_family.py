"""PPO family benchmark: every ``PPOConfig.objective`` on CartPole-v1, Acrobot-v1, Pendulum-v1 and
Breakout-MinAtar (MLP torso; ``--minatar-torso cnn``), ``--seeds`` seeds each (vmapped, through ``purejaxpo.experiment.run``).

For each (env, variant) it records the final return (mean return of the episodes completed in the last
10% of updates, per seed), its mean ± 95% CI over seeds (Student t), aggregate env-steps/s over all seeds
and the compile time. Results go to ``benchmarks/results/ppo_family.{json,md,png}``; the JSON records the
budget it ran at. Only the variants' own defaults are used (no tuning), so this compares the objectives
under one shared PPO setup per env, not each at its best.

    python benchmarks/ppo_family.py --quick                  # tiny budget: a smoke benchmark, minutes on 2 CPU cores
    python benchmarks/ppo_family.py --budget 500000          # 5e5 env steps per run for every env
    python benchmarks/ppo_family.py                          # per-env default budgets (see ENVS)
    python benchmarks/ppo_family.py --envs CartPole-v1 --variants clip spo clip/loo clip/polychromic

A variant is ``objective`` or ``objective/advantage`` (e.g. ``clip/egae``); ``--with-advantages`` adds
``clip/egae``, ``clip/loo`` and ``clip/polychromic`` (the last is skipped on continuous-action envs).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from purejaxpo import experiment, make_env  # noqa: E402
from purejaxpo.algorithms import ppo  # noqa: E402
from benchmarks.stats import mean_ci  # noqa: E402

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
ADVANTAGE_VARIANTS = ("clip/egae", "clip/loo", "clip/polychromic")


@dataclass(frozen=True)
class EnvSetup:
    """Per-env PPO settings (shared by every variant) and the default budget of a full run."""

    config: dict[str, Any]
    hparams: dict[str, Any] = field(default_factory=dict)
    budget: int = 500_000
    continuous: bool = False
    quick_budget: int = 8192  # --quick: env steps per run
    quick_config: dict[str, Any] = field(default_factory=dict)  # --quick: overrides of ``config``


ENVS: dict[str, EnvSetup] = {
    # PureJaxRL's discrete settings (4 envs x 128 steps, 4 epochs x 4 minibatches, lr 2.5e-4 annealed)
    "CartPole-v1": EnvSetup(dict(num_envs=4, num_steps=128, update_epochs=4, num_minibatches=4)),
    "Acrobot-v1": EnvSetup(dict(num_envs=4, num_steps=128, update_epochs=4, num_minibatches=4)),
    # continuous: normalized observations and rewards, no entropy bonus, constant lr 3e-4
    "Pendulum-v1": EnvSetup(
        dict(num_envs=16, num_steps=128, update_epochs=4, num_minibatches=8, anneal_lr=False, normalize_obs=True,
             normalize_rewards=True),
        dict(lr=3e-4, ent_coef=0.0),
        budget=1_000_000,
        continuous=True,
    ),
    # MinAtar with an MLP on the flattened 10x10x4 grid, as PureJaxRL runs it (``torso="cnn"`` is the MinAtar
    # CNN; on the 2-core dev CPU it trained at ~600 env-steps/s vs ~30k for this MLP: see --minatar-torso)
    "Breakout-MinAtar": EnvSetup(
        dict(num_envs=16, num_steps=128, update_epochs=4, num_minibatches=8, activation="relu"),
        dict(lr=5e-4),
        budget=500_000,
        quick_budget=512,
        quick_config=dict(num_envs=8, num_steps=32, update_epochs=2, num_minibatches=2),
    ),
}


def parse_variant(name: str) -> tuple[str, str]:
    objective, _, advantage = name.partition("/")
    return objective, advantage or "gae"


def run_one(
    env_name: str, variant: str, budget: int, num_seeds: int, seed: int, quick: bool, overrides: dict[str, Any]
) -> tuple[dict[str, Any], Any]:
    setup = ENVS[env_name]
    objective, advantage = parse_variant(variant)
    env, env_params = make_env(env_name)
    settings = {**setup.config, **overrides, **(setup.quick_config if quick else {})}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # inexact budgets are reported below
        config = ppo.PPOConfig(**settings, total_timesteps=budget, objective=objective, advantage=advantage)
    trainer = ppo.make_train(config, env, env_params)
    hparams = ppo.PPOHParams(**setup.hparams)
    results = experiment.run(
        trainer, env_name, num_seeds=num_seeds, hparams=hparams, seed=seed, chunk_updates=config.num_updates,
        progress=False,
    )
    final = results.final_returns(fraction=0.1)[0]
    summary = mean_ci(final)
    nan_if_none = lambda x: float("nan") if x is None else x
    mean, ci, finite = nan_if_none(summary["mean"]), nan_if_none(summary["ci95_half_width"]), summary["n"]
    row = {
        "env": env_name,
        "variant": variant,
        "objective": objective,
        "advantage": advantage,
        "num_seeds": num_seeds,
        "seeds_with_episodes": finite,
        "total_timesteps": int(results.env_steps[-1]),
        "num_updates": results.num_updates,
        "final_return_mean": mean,
        "final_return_ci95": ci,
        "final_return_per_seed": [float(v) for v in final],
        "env_steps_per_s": round(results.env_steps_per_s, 1),
        "compile_s": round(results.compile_s, 2),
        "run_s": round(results.run_s, 2),
        "config": experiment.config_dict(config),
        "hparams": experiment.hparams_dict(hparams),
    }
    return row, results


def write_markdown(path: str, meta: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    lines = [
        "# PPO family benchmark",
        "",
        f"Budget: {meta['budget_description']}; {meta['num_seeds']} seeds per cell; device: {meta['device']}; "
        f"jax {meta['jax_version']}; {meta['date']}.",
        "",
        "Final return = mean return of the episodes completed in the last 10% of updates, per seed; "
        "mean ± 95% CI (Student t) over seeds. env-steps/s aggregates all seeds of a cell (vmapped) and excludes "
        "compilation. Every variant uses its default hyperparameters on one shared PPO setup per env (no tuning).",
        "",
    ]
    if meta.get("note"):
        lines += [meta["note"], ""]
    lines += ["| env | variant | steps/run | final return (mean ± 95% CI) | env-steps/s | compile s |",
              "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        ci = "n/a" if not np.isfinite(r["final_return_ci95"]) else f"{r['final_return_ci95']:.1f}"
        lines.append(
            f"| {r['env']} | {r['variant']} | {r['total_timesteps']:,} | {r['final_return_mean']:.1f} ± {ci} | "
            f"{r['env_steps_per_s']:,.0f} | {r['compile_s']:.1f} |"
        )
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def plot(path: str, curves: dict[str, list[tuple[str, Any]]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from purejaxpo.plotting import plot_curves

    envs = list(curves)
    cols = min(2, len(envs))
    rows = math.ceil(len(envs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 4.2 * rows), squeeze=False)
    for ax, env_name in zip(axes.flat, envs):
        labels = [label for label, _ in curves[env_name]]
        values = np.concatenate([res.metrics["episode_return"] for _, res in curves[env_name]], axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # updates where no seed finished an episode
            plot_curves(curves[env_name][0][1].env_steps, values, labels, title=env_name, ax=ax)
    for ax in list(axes.flat)[len(envs):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save(args: argparse.Namespace, rows: list[dict[str, Any]], curves: dict[str, list[tuple[str, Any]]], start: float) -> None:
    """Write the JSON, Markdown table and plot of the rows finished so far."""
    budget = args.budget
    per_env_budget = {r["env"]: r["total_timesteps"] for r in rows}
    budget_description = ("quick run, " if args.quick else "") + (
        f"{budget:,} env steps per run (every env)" if budget is not None
        else "env steps per run: " + ", ".join(f"{e} {n:,}" for e, n in per_env_budget.items())
    )
    meta = {
        "benchmark": "ppo_family",
        "budget": budget,
        "env_steps_per_run": per_env_budget,
        "budget_description": budget_description,
        "quick": bool(args.quick),
        "num_seeds": args.seeds,
        "seed": args.seed,
        "device": f"{jax.devices()[0].platform} ({os.cpu_count()} cores, {platform.processor() or platform.machine()})",
        "jax_version": jax.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "wall_s": round(time.perf_counter() - start, 1),
        "note": (
            "Quick smoke budget: far too few env steps for any variant to learn; the returns show the variants run, "
            "not how well they learn. The machine's 2 CPU cores were shared with other jobs, so throughput is noisy."
            if args.quick else ""
        ),
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump({**meta, "results": rows}, f, indent=1)
    write_markdown(args.out + ".md", meta, rows)
    plot(args.out + ".png", curves, f"PPO family, {budget_description}, {args.seeds} seeds (mean, 95% CI)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=list(ENVS), choices=list(ENVS))
    parser.add_argument("--variants", nargs="+", default=list(ppo.OBJECTIVES),
                        help="objective or objective/advantage, e.g. clip spo clip/loo")
    parser.add_argument("--with-advantages", action="store_true", help=f"also run {', '.join(ADVANTAGE_VARIANTS)}")
    parser.add_argument("--budget", type=int, default=None, help="total env steps per run (default: per-env budgets)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: per-env quick budgets (8192 steps; 512 and a smaller rollout on MinAtar)")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(RESULTS_DIR, "ppo_family"), help="output path without suffix")
    parser.add_argument("--minatar-torso", choices=("mlp", "cnn"), default="mlp")
    args = parser.parse_args(argv)
    if args.seeds < 8:
        print(f"note: {args.seeds} seeds (the benchmark's standard is >= 8)")
    budget = args.budget
    variants = list(args.variants) + (list(ADVANTAGE_VARIANTS) if args.with_advantages else [])
    for variant in variants:
        objective, advantage = parse_variant(variant)
        if objective not in ppo.OBJECTIVES or advantage not in ppo.ADVANTAGES:
            parser.error(f"unknown variant {variant!r}; objectives {ppo.OBJECTIVES}, advantages {ppo.ADVANTAGES}")

    rows: list[dict[str, Any]] = []
    curves: dict[str, list[tuple[str, Any]]] = {}
    start = time.perf_counter()
    for env_name in args.envs:
        env_budget = budget if budget is not None else (ENVS[env_name].quick_budget if args.quick else ENVS[env_name].budget)
        for variant in variants:
            if ENVS[env_name].continuous and parse_variant(variant)[1] == "polychromic":
                continue
            overrides = {"torso": args.minatar_torso} if "MinAtar" in env_name else {}
            row, results = run_one(env_name, variant, env_budget, args.seeds, args.seed, args.quick, overrides)
            rows.append(row)
            curves.setdefault(env_name, []).append((variant, results))
            print(
                f"{env_name:18s} {variant:18s} return {row['final_return_mean']:8.1f} ± {row['final_return_ci95']:6.1f}"
                f"  {row['env_steps_per_s']:>10,.0f} steps/s  compile {row['compile_s']:5.1f}s  run {row['run_s']:6.1f}s",
                flush=True,
            )
        save(args, rows, curves, start)  # after every env, so a long run keeps what it finished
    print(f"wrote {args.out}.json, .md, .png in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
