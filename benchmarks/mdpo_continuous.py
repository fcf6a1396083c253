"""MDPO on continuous control (Tomar et al., ICLR 2022, arXiv:2005.09814): on-policy MDPO vs PPO and off-policy
MDPO vs SAC, paired seeds, at the budget given on the command line.

On-policy, the paper's update schedule: 2048 env steps per iteration (here 8 envs × 256 steps, vectorized for
the CPU; the released code steps 1 env × 2048), ``m = 10`` **full-batch** Adam steps on the policy, then 5 value
epochs × 16 minibatches, observation and reward normalization, 64-64 tanh (:class:`MDPOConfig` defaults).
``mdpo`` anneals the step size over the run (``K`` = number of updates), ``mdpo_ref_horizon`` over the released
code's fixed ``K = 4882`` (its hard-coded 10M-step horizon, :data:`~purejaxpo.algorithms.mdpo.REFERENCE_ANNEAL_HORIZON`).
``ppo`` is PPO with the standard MuJoCo tuning of Schulman et al. 2017 (the paper's PPO-M baseline): the same
2048-step batch, 10 epochs × 32 minibatches, lr 3e-4 annealed, ε 0.2, no entropy bonus, GAE(0.99, 0.95),
gradient clip 0.5, the same normalization and networks.

Off-policy: SAC (v1, fixed temperature 0.2) and MDPO-off from one trainer (:mod:`purejaxpo.algorithms.mdpo_off`),
identical networks (``--off-hidden``), replay, warm-up (``learning_starts``) and one gradient step per env step;
MDPO-off re-syncs its old policy every ``sgd_steps = 1000`` steps and acts with ``tanh(μ)`` after warm-up as the
released code does (``mdpo_off``); ``mdpo_off_sampled`` acts with samples like SAC.

Per seed, **every seed counts**: **eval** = mean return of 16 evaluation episodes of the final policy (its mean
action), which every seed has; **final** = the mean training-episode return over the last 10% of updates and
**AUC** = over all updates, NaN (``null``) for a seed that finished no episode there (listed, never dropped).
Mean ± 95% CI over seeds, Welch's t-test of MDPO against its baseline. The JSON is written after every run, and a
rerun with the same arguments resumes::

    python -m benchmarks.mdpo_continuous --on-tasks inverted_pendulum hopper --on-steps 1000000 --seeds 5
    python -m benchmarks.mdpo_continuous --off-tasks Pendulum-v1 inverted_pendulum --off-steps 100000 --seeds 5
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

warnings.filterwarnings("ignore", message="total_timesteps=.*is not a multiple")
ON_LAYOUT = dict(num_envs=8, num_steps=256)
PAIRS = {"on": (("mdpo", "ppo"), ("mdpo_ref_horizon", "ppo")), "off": (("mdpo_off", "sac"), ("mdpo_off_sampled", "sac"))}


def make_method(kind: str, method: str, steps: int, off_hidden: tuple[int, ...]) -> tuple[Any, Any, Any]:
    """``(module, config, hparams)`` of one method (module docstring)."""
    from purejaxpo.algorithms import mdpo, mdpo_off, ppo

    if kind == "on":
        if method == "ppo":
            config = ppo.PPOConfig(**ON_LAYOUT, total_timesteps=steps, update_epochs=10, num_minibatches=32, anneal_lr=True,
                                   normalize_obs=True, normalize_rewards=True)
            return ppo, config, ppo.PPOHParams(lr=3e-4, ent_coef=0.0, max_grad_norm=0.5)
        horizon = mdpo.REFERENCE_ANNEAL_HORIZON if method == "mdpo_ref_horizon" else None
        return mdpo, mdpo.MDPOConfig(**ON_LAYOUT, total_timesteps=steps, anneal_horizon=horizon), mdpo.MDPOHParams()
    common = dict(total_timesteps=steps, steps_per_update=1000, learning_starts=10_000, hidden_sizes=off_hidden, sgd_steps=1000)
    if method == "sac":
        return mdpo_off, mdpo_off.SACConfig(**common), mdpo_off.OffPolicyHParams()
    deterministic = method == "mdpo_off"
    return mdpo_off, mdpo_off.MDPOOffConfig(**common, deterministic_collection=deterministic), mdpo_off.OffPolicyHParams()


def run_one(module: Any, config: Any, hp: Any, env: Any, env_params: Any, num_seeds: int) -> dict[str, Any]:
    from purejaxpo.rollout import evaluate

    trainer = module.make_train(config, env, env_params)
    keys = jax.random.split(jax.random.key(0), num_seeds)
    start = time.perf_counter()
    compiled = jax.jit(jax.vmap(trainer.train, in_axes=(0, None))).lower(keys, hp).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    state, metrics = compiled(keys, hp)
    returns = np.asarray(jax.block_until_ready(metrics["episode_return"]), np.float64)  # [S, U], NaN: no episode ended
    run_s = time.perf_counter() - start
    horizon = int(getattr(env_params, "max_steps_in_episode", 1000))
    act = lambda s, obs, k: trainer.act(s, obs, k, True)
    evaluate_seed = lambda s, k: evaluate(env, env_params, act, s, k, 16, horizon).mean()
    eval_returns = np.asarray(jax.jit(jax.vmap(evaluate_seed))(state, jax.random.split(jax.random.key(1), num_seeds)))
    env_steps = np.asarray(metrics["env_steps"])[0]
    tail = max(1, returns.shape[1] // 10)
    per_seed_mean = lambda r: np.array([np.mean(row[np.isfinite(row)]) if np.isfinite(row).any() else np.nan for row in r])
    return {
        "eval": mean_ci(eval_returns),
        "final": mean_ci(per_seed_mean(returns[:, -tail:])),
        "auc": mean_ci(per_seed_mean(returns)),
        "seeds_without_episode_in_tail": int(np.sum(~np.isfinite(returns[:, -tail:]).any(axis=1))),
        "env_steps": int(env_steps[-1]), "env_steps_per_s": float(num_seeds * env_steps[-1] / run_s),
        "compile_s": round(compile_s, 2), "run_s": round(run_s, 2), "machine": machine(),
        "curve_steps": env_steps.tolist(),
        "curve_mean": [None if not np.isfinite(c).any() else float(np.mean(c[np.isfinite(c)])) for c in returns.T],
        "curve_seeds_with_episode": np.isfinite(returns).sum(axis=0).tolist(),
    }


def plot(results: dict[str, Any], path: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [(kind, task) for kind in ("on", "off") for task in results["runs"].get(kind, {})]
    if not cells:
        return
    fig, axes = plt.subplots(1, len(cells), figsize=(5.5 * len(cells), 3.8), squeeze=False)
    for ax, (kind, task) in zip(axes[0], cells):
        for name, run in results["runs"][kind][task].items():
            x = np.asarray(run["curve_steps"], float)
            m = np.asarray([np.nan if v is None else v for v in run["curve_mean"]], float)
            ok = np.isfinite(m)
            ax.plot(x[ok], m[ok], label=f"{name}: eval {run['eval']['mean']:.0f} ± {run['eval']['ci95_half_width']:.0f}")
        ax.set_title(f"{task} ({kind}-policy, {results['num_seeds']} seeds)", fontsize=9)
        ax.set_xlabel("env steps")
        ax.set_ylabel("training episode return (mean over seeds)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--on-tasks", nargs="*", default=[])
    parser.add_argument("--off-tasks", nargs="*", default=[])
    parser.add_argument("--on-steps", type=int, default=1_000_000)
    parser.add_argument("--off-steps", type=int, default=100_000)
    parser.add_argument("--on-methods", nargs="*", default=["mdpo", "mdpo_ref_horizon", "ppo"])
    parser.add_argument("--off-methods", nargs="*", default=["mdpo_off", "sac"])
    parser.add_argument("--off-hidden", type=int, nargs="+", default=[256, 256], help="off-policy hidden sizes (paper 256 256)")
    parser.add_argument("--out", default="mdpo_continuous")
    parser.add_argument("--results-dir", default=str(RESULTS), help="where the JSON/PNG go")
    args = parser.parse_args(argv)
    results_dir = Path(args.results_dir)
    from purejaxpo import make_env

    path = results_dir / f"{args.out}.json"
    results: dict[str, Any] = {"num_seeds": args.seeds, "runs": {"on": {}, "off": {}}, "compare": {}}
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("num_seeds") == args.seeds:
            results = old
    results["budgets"] = {"on_steps": args.on_steps, "off_steps": args.off_steps, "paper_on_steps": 1_000_000,
                          "reference_code_on_steps": 10_000_000, "paper_off_steps": 1_000_000, "off_hidden": args.off_hidden}
    for kind, tasks, methods, steps in (("on", args.on_tasks, args.on_methods, args.on_steps),
                                        ("off", args.off_tasks, args.off_methods, args.off_steps)):
        for task in tasks:
            env, env_params = make_env(task)
            cell = results["runs"][kind].setdefault(task, {})
            for method in methods:
                if method in cell and cell[method]["env_steps"] >= steps - 2048:
                    continue
                module, config, hp = make_method(kind, method, steps, tuple(args.off_hidden))
                cell[method] = run_one(module, config, hp, env, env_params, args.seeds)
                run = cell[method]
                print(f"{kind} {task:18s} {method:17s} {run['env_steps']:>8d} steps  eval {run['eval']['mean']:8.1f} ± "
                      f"{run['eval']['ci95_half_width']:6.1f}  final {run['final']['mean']:8.1f}  "
                      f"{run['env_steps_per_s']:8.0f} steps/s (compile {run['compile_s']:.0f}s, run {run['run_s']:.0f}s, "
                      f"load {run['machine']['load_average_1min']})", flush=True)
                results["compare"][f"{kind}/{task}"] = {
                    f"{a} - {b}": {m: welch(cell[a][m]["per_seed"], cell[b][m]["per_seed"]) for m in ("eval", "final", "auc")}
                    for a, b in PAIRS[kind] if a in cell and b in cell
                }
                write_json(f"{args.out}.json", results, results_dir)
                plot(results, results_dir / f"{args.out}.png")
    return results


if __name__ == "__main__":
    main()
