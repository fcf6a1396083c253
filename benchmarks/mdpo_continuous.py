"""MDPO on continuous control: on-policy MDPO vs PPO and off-policy MDPO vs SAC, several seeds, a CPU budget.

The paper's claim (Tomar et al., ICLR 2022): MDPO is on par with or better than PPO/TRPO on-policy and SAC
off-policy. Here every pair shares network sizes, data layout and optimizer settings; each algorithm runs its
seeds vmapped in one jitted ``train`` (compile timed apart). Reported per (task, algorithm): the final return
(mean over the last 10% of updates of each seed's completed-episode returns; mean ± std over seeds) and
aggregate env-steps/s (seeds × steps / run time).

    python -m benchmarks.mdpo_continuous                 # default budget (a few minutes on 2 CPU cores)
    python -m benchmarks.mdpo_continuous --scale 4       # 4× the env steps of every run

Writes ``results/mdpo_continuous.json`` and ``results/mdpo_continuous.png``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from typing import Any

import jax
import numpy as np

from benchmarks.common import RESULTS, machine

warnings.filterwarnings("ignore", message="total_timesteps=.*is not a multiple")

# Env steps per seed at --scale 1 (chosen so the whole benchmark fits ~5 CPU minutes on 2 shared cores).
TASKS = {
    "Pendulum-v1": {"on": 100_000, "off": 8_000, "gamma_on": 0.95},
    "inverted_pendulum": {"on": 40_000, "off": 4_000, "gamma_on": 0.99},
}


def make_pair(kind: str, task: str, steps: int) -> dict[str, tuple[Any, Any, Any]]:
    """``{name: (make_train module, config, hparams)}`` for the two algorithms compared on ``task``."""
    from purejaxpo.algorithms import mdpo, mdpo_off, ppo

    if kind == "on":
        gamma = TASKS[task]["gamma_on"]
        layout = dict(num_envs=16, num_steps=128, total_timesteps=steps, normalize_obs=True, normalize_rewards=True)
        return {
            "ppo": (ppo, ppo.PPOConfig(**layout, update_epochs=10, num_minibatches=16, anneal_lr=False),
                    ppo.PPOHParams(lr=1e-3, gamma=gamma, ent_coef=0.0)),
            "mdpo": (mdpo, mdpo.MDPOConfig(**layout, sgd_steps=10, num_minibatches=16, vf_epochs=5, vf_minibatches=16),
                     mdpo.MDPOHParams(lr=1e-3, vf_lr=1e-3, gamma=gamma)),
        }
    common = dict(total_timesteps=steps, steps_per_update=500, learning_starts=1000, hidden_sizes=(64, 64), sgd_steps=1000)
    hp = mdpo_off.OffPolicyHParams()
    return {
        "sac": (mdpo_off, mdpo_off.SACConfig(**common), hp),
        "mdpo_off": (mdpo_off, mdpo_off.MDPOOffConfig(**common), hp),
    }


def run_one(module: Any, config: Any, hp: Any, env: Any, env_params: Any, num_seeds: int) -> dict[str, Any]:
    trainer = module.make_train(config, env, env_params)
    keys = jax.random.split(jax.random.key(0), num_seeds)
    start = time.perf_counter()
    compiled = jax.jit(jax.vmap(trainer.train, in_axes=(0, None))).lower(keys, hp).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    _, metrics = compiled(keys, hp)
    returns = np.asarray(jax.block_until_ready(metrics["episode_return"]))
    run_s = time.perf_counter() - start
    env_steps = np.asarray(metrics["env_steps"])[0]
    tail = max(1, returns.shape[1] // 10)
    final = np.array([np.nanmean(r[-tail:]) if np.isfinite(r[-tail:]).any() else np.nan for r in returns])
    return {
        "final_return_mean": float(np.nanmean(final)),
        "final_return_std": float(np.nanstd(final)),
        "final_return_per_seed": final.tolist(),
        "env_steps": int(env_steps[-1]),
        "env_steps_per_s": float(num_seeds * env_steps[-1] / run_s),
        "compile_s": compile_s,
        "run_s": run_s,
        "curve_steps": env_steps.tolist(),
        "curve_mean": np.nanmean(returns, axis=0).tolist(),
        "curve_std": np.nanstd(returns, axis=0).tolist(),
    }


def plot(results: dict[str, Any], path: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(results["runs"])
    fig, axes = plt.subplots(len(tasks), 2, figsize=(10, 3.2 * len(tasks)), squeeze=False)
    for row, task in enumerate(tasks):
        for col, kind in enumerate(("on", "off")):
            ax = axes[row, col]
            for name, run in results["runs"][task][kind].items():
                x, m, s = (np.asarray(run[k], float) for k in ("curve_steps", "curve_mean", "curve_std"))
                ok = np.isfinite(m)  # updates in which no episode ended have no return
                x, m, s = x[ok], m[ok], s[ok]
                ax.plot(x, m, label=f"{name}: {run['final_return_mean']:.0f} ± {run['final_return_std']:.0f}")
                ax.fill_between(x, m - s, m + s, alpha=0.2)
            ax.set_title(f"{task} ({'on' if kind == 'on' else 'off'}-policy, {results['num_seeds']} seeds)")
            ax.set_xlabel("env steps")
            ax.set_ylabel("episode return")
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every run's env steps")
    parser.add_argument("--tasks", nargs="*", default=list(TASKS))
    parser.add_argument("--out", default=str(RESULTS / "mdpo_continuous.json"))
    args = parser.parse_args(argv)
    from purejaxpo import make_env

    results: dict[str, Any] = {"machine": machine(), "num_seeds": args.seeds, "scale": args.scale, "runs": {}}
    for task in args.tasks:
        env, env_params = make_env(task)
        results["runs"][task] = {}
        for kind in ("on", "off"):
            steps = int(TASKS[task][kind] * args.scale)
            results["runs"][task][kind] = {}
            for name, (module, config, hp) in make_pair(kind, task, steps).items():
                run = run_one(module, config, hp, env, env_params, args.seeds)
                results["runs"][task][kind][name] = run
                print(f"{task:18s} {name:9s} {run['env_steps']:>8d} steps  final {run['final_return_mean']:9.1f} ± "
                      f"{run['final_return_std']:6.1f}   {run['env_steps_per_s']:9.0f} steps/s   "
                      f"(compile {run['compile_s']:.0f}s, run {run['run_s']:.0f}s)", flush=True)
    out = args.out
    with open(out, "w") as f:
        json.dump(results, f, indent=1)
    plot(results, str(out).replace(".json", ".png"))
    return results


if __name__ == "__main__":
    main()
