"""PDPPO vs PPO on stochastic lot sizing (Felizardo et al. 2025, arXiv:2504.05150), paired seeds, vmapped.

Both algorithms get the same env-step budget, the same seeds, the same 128-128 networks and the same batch
layout (4 envs × 100 steps = 4 episodes per update, 40 full-batch epochs, γ = 0.9, no gradient clipping, no
advantage normalization, Monte-Carlo advantages). PDPPO runs its paper defaults (:class:`PDPPOConfig`); PPO is
the library's PPO trainer set to match wherever it has the knob (``gae_lambda = 1``: Monte-Carlo returns, since
every episode ends inside the rollout; ``clip_value = False``; one Adam for actor and critic at 5.5e-4, its
only learning rate; ReLU torsos: its actor matches PDPPO's ReLU actor, and its critic is ReLU where PDPPO's
critics are tanh). The per-sub-action ratio and the separate critic optimizer stay PDPPO-only.

Why ReLU for PPO: the observation is raw inventory (0-100), which saturates a tanh torso at the library's
orthogonal init; a first run with a tanh PPO barely left the random policy in 40k steps (-11.8k vs random
-12.8k) while a ReLU PPO reached about -3.3k (2 seeds), so a tanh PPO would measure the activation, not PDPPO.

Metrics follow the reference ``generate_tables.py``: the curve logged every 4,000 env steps is the
mean return of the episodes completed in that block (40 episodes at 4 envs × 100 steps); per run, *max
reward* is the curve's maximum and *cumulative reward* its sum (AUC); both are reported as mean ± std over
runs with a Welch t-test PDPPO vs PPO. Also env-steps/s (compile timed apart), the uniform random policy's
return, a JSON and a learning-curve plot::

    python benchmarks/pdppo_lot_sizing.py --total-timesteps 1000000 --num-seeds 8

Measured (``results/pdppo_lot_sizing_1m_gpu.json``, one H100, 1M steps × 20 paired seeds, 74 s per
algorithm with compilation): max reward PDPPO −2289 ± 451 vs PPO −3415 ± 815 (Welch p = 7.8e-6), AUC
−797k ± 115k vs −984k ± 170k (p = 2.7e-4); mean curves plateau at −2.7k…−2.9k vs −3.8k, against the
reference log's −2.7k vs −3.6k. On the 2-core CPU the same run goes at ≈ 1.8k env-steps/s (8 seeds), so
``results/pdppo_lot_sizing.json`` holds only a 40k-step run, where PPO still leads (PDPPO starts slower).
The 25 × 10 instance is not shipped (only 15 × 5 is in the shared data), so it was not run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS, machine, write_json  # noqa: E402
from purejaxpo.envs.lot_sizing import make_lot_sizing  # noqa: E402
from purejaxpo.algorithms import pdppo, ppo  # noqa: E402
from purejaxpo.rollout import evaluate  # noqa: E402

REFERENCE_LOG_1M = {"pdppo": -2700.0, "ppo": -3600.0}  # the reference repo's log (leokan92/pdppo), 15×5, run 1, at 1M steps


def configs(total_timesteps: int) -> dict[str, tuple[Any, Any, Any]]:
    """``name -> (config, hparams, make_train)`` with the matched settings of the module docstring."""
    shared = dict(num_envs=4, num_steps=100, total_timesteps=total_timesteps, update_epochs=40, num_minibatches=1,
                  hidden_sizes=(128, 128))
    ppo_config = ppo.PPOConfig(**shared, activation="relu", anneal_lr=False, normalize_advantages=False, clip_value=False)
    ppo_hp = ppo.PPOHParams(lr=5.5e-4, gamma=0.9, gae_lambda=1.0, ent_coef=0.001, vf_coef=0.5, max_grad_norm=1e9)
    return {
        "pdppo": (pdppo.PDPPOConfig(**shared), pdppo.PDPPOHParams(), pdppo.make_train),
        "ppo": (ppo_config, ppo_hp, ppo.make_train),
    }


def logged_curve(returns: np.ndarray, counts: np.ndarray, updates_per_log: int) -> np.ndarray:
    """``[S, U]`` per-update mean returns and episode counts -> ``[S, U // k]`` episode-weighted block means."""
    seeds, updates = returns.shape
    blocks = updates // updates_per_log
    r = np.nan_to_num(returns[:, : blocks * updates_per_log]).reshape(seeds, blocks, updates_per_log)
    c = counts[:, : blocks * updates_per_log].reshape(seeds, blocks, updates_per_log)
    return (r * c).sum(-1) / np.maximum(c.sum(-1), 1)


def run_one(name: str, config: Any, hp: Any, make_train: Any, env: Any, env_params: Any, keys: jax.Array) -> dict[str, Any]:
    trainer = make_train(config, env, env_params)
    train = jax.jit(jax.vmap(trainer.train, in_axes=(0, None)))
    start = time.perf_counter()
    compiled = train.lower(keys, hp).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    _, metrics = compiled(keys, hp)
    returns = np.asarray(jax.block_until_ready(metrics["episode_return"]))
    run_s = time.perf_counter() - start
    steps = config.num_updates * config.batch_size * keys.shape[0]
    print(f"{name}: compile {compile_s:.1f}s, run {run_s:.1f}s, {steps / run_s:,.0f} env-steps/s", flush=True)
    return {"returns": returns, "counts": np.asarray(metrics["episode_count"]), "compile_s": compile_s, "run_s": run_s,
            "env_steps_per_s": steps / run_s, "num_updates": config.num_updates}


def summarize(values: np.ndarray) -> dict[str, Any]:
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if values.size > 1 else 0.0,
            "per_seed": [round(float(v), 2) for v in values]}


def welch(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    result = stats.ttest_ind(a, b, equal_var=False)
    return {"t": float(result.statistic), "p": float(result.pvalue)}


def plot(path: Path, steps: np.ndarray, curves: dict[str, np.ndarray], random_return: float, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, curve in curves.items():
        mean, std = curve.mean(0), curve.std(0, ddof=1) if curve.shape[0] > 1 else np.zeros(curve.shape[1])
        ax.plot(steps, mean, label=f"{name.upper()} (mean ± std, {curve.shape[0]} seeds)")
        ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    ax.axhline(random_return, color="gray", ls=":", label="uniform random policy")
    ax.set_xlabel("env steps")
    ax.set_ylabel("mean episode return (last 40 episodes)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--total-timesteps", type=int, default=1_000_000, help="env steps per run (paper: 1M)")
    parser.add_argument("--num-seeds", type=int, default=8, help="paired seeds per algorithm (paper: 20)")
    parser.add_argument("--setting", default="15items_5machines_t100_i100", help="a shipped lot-sizing setting")
    parser.add_argument("--log-every", type=int, default=4000, help="env steps per logged point (paper: 4000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="pdppo_lot_sizing", help="file stem under benchmarks/results/")
    args = parser.parse_args()

    env, env_params = make_lot_sizing(args.setting)
    keys = jax.random.split(jax.random.key(args.seed), args.num_seeds)
    num_items, num_machines = env.num_items, env.num_machines
    horizon = int(env_params.max_steps_in_episode)
    random_policy = lambda s, obs, k: jax.random.randint(k, (obs.shape[0], num_machines), 0, num_items + 1)
    random_returns = evaluate(env, env_params, random_policy, None, jax.random.key(args.seed + 1), 1024, horizon)
    random_return = float(jnp.mean(random_returns))

    settings = configs(args.total_timesteps)
    runs, curves, table = {}, {}, {}
    for name, (config, hp, make_train) in settings.items():
        runs[name] = run_one(name, config, hp, make_train, env, env_params, keys)
        updates_per_log = max(1, args.log_every // config.batch_size)
        curve = logged_curve(runs[name]["returns"], runs[name]["counts"], updates_per_log)
        curves[name] = curve
        table[name] = {
            "max_reward": summarize(curve.max(axis=1)),
            "cumulative_reward": summarize(curve.sum(axis=1)),
            "final_logged_return": summarize(curve[:, -1]),
            "first_logged_return": summarize(curve[:, 0]),
            "env_steps_per_s": round(runs[name]["env_steps_per_s"], 1),
            "compile_s": round(runs[name]["compile_s"], 2),
            "run_s": round(runs[name]["run_s"], 2),
        }
    steps = (np.arange(curves["pdppo"].shape[1]) + 1) * max(1, args.log_every // 400) * 400
    pd_curve, ppo_curve = curves["pdppo"], curves["ppo"]
    payload = {
        "benchmark": "pdppo_lot_sizing",
        "setting": args.setting,
        "total_timesteps_run": int(settings["pdppo"][0].num_updates * settings["pdppo"][0].batch_size),
        "total_timesteps_paper": 1_000_000,
        "num_seeds": args.num_seeds,
        "seed": args.seed,
        "log_every_env_steps": int(steps[0]) if steps.size else args.log_every,
        "num_logged_points": int(pd_curve.shape[1]),
        "random_policy_return": {"mean": random_return, "std": float(jnp.std(random_returns)), "episodes": 1024},
        "results": table,
        "welch_t_test_pdppo_vs_ppo": {
            "max_reward": welch(pd_curve.max(1), ppo_curve.max(1)),
            "cumulative_reward": welch(pd_curve.sum(1), ppo_curve.sum(1)),
        },
        "reference_log_at_1M_steps": REFERENCE_LOG_1M,
        "curves_mean": {name: [round(float(v), 1) for v in c.mean(0)] for name, c in curves.items()},
        "curve_env_steps": [int(s) for s in steps],
        "settings": {
            "pdppo": {"config": {k: v for k, v in vars(settings["pdppo"][0]).items()},
                      "hparams": {k: float(v) for k, v in vars(settings["pdppo"][1]).items()}},
            "ppo": {"config": {k: v for k, v in vars(settings["ppo"][0]).items() if k != "diversity_fn"},
                    "hparams": {k: float(v) for k, v in vars(settings["ppo"][1]).items()}},
        },
        "machine": machine(),
    }
    path = write_json(f"{args.out}.json", payload)
    title = (f"PDPPO vs PPO, lot sizing {args.setting}\n{payload['total_timesteps_run']:,} env steps/run, "
             f"{args.num_seeds} paired seeds (paper: 1M steps, 20 seeds)")
    plot(RESULTS / f"{args.out}.png", steps, curves, random_return, title)
    print(f"wrote {path} and {RESULTS / (args.out + '.png')}")
    for name, row in table.items():
        print(f"{name:6s} max {row['max_reward']['mean']:9.1f} ± {row['max_reward']['std']:7.1f}   "
              f"AUC {row['cumulative_reward']['mean']:11.1f} ± {row['cumulative_reward']['std']:9.1f}   "
              f"final {row['final_logged_return']['mean']:9.1f}   {row['env_steps_per_s']:,.0f} steps/s")
    print("Welch:", payload["welch_t_test_pdppo_vs_ppo"], "random:", round(random_return, 1))


if __name__ == "__main__":
    main()
