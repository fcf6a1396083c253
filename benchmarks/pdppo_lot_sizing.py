"""PDPPO vs its own single-critic baseline on stochastic lot sizing (Felizardo et al. 2025, arXiv:2504.05150).

Both methods run in PDPPO's trainer (:mod:`purejaxpo.algorithms.pdppo`), the baseline with
``critic_mode="ppo"`` (one pre-decision critic on the total return): the same per-machine ratio, mean entropy,
networks, optimizers, batch layout and paired seeds; only the critics differ. Two option sets
(:mod:`purejaxpo.algorithms.pdppo_reference`):

- ``defaults``: ``PDPPOConfig()`` vs ``PDPPOConfig(critic_mode="ppo")`` (clean on-policy, all actor layers train);
- ``reference``: the reference code's PDPPO vs its PPO (6-rollout buffer with stale log-probs/values, actor
  trained on its output layer only, the reference's initializations, the PPO's 0.7·MSE value weight).

Metrics follow the reference ``generate_tables.py`` curve: every ``--log-every`` env steps (4,000 = 40
episodes), the mean return of the episodes finished in that block. Per seed: **final** = the last logged point,
**AUC** = the mean of the logged curve (the reference's "cumulative reward" is its sum; with 250 points the sum is
250 × AUC), **max** = the curve's maximum (the reference's headline, which favours the noisier curve). Reported
as mean ± 95% CI over seeds with Welch's t-test PDPPO − baseline and the paired difference (seeds share keys).
Written after every finished (setting, option set, method): a killed run keeps what it finished, and a rerun with
the same arguments resumes::

    python -m benchmarks.pdppo_lot_sizing --options reference --total-timesteps 100000 --num-seeds 8
    python -m benchmarks.pdppo_lot_sizing --options defaults --total-timesteps 1000000 --num-seeds 8 --out pdppo_lot_sizing_defaults
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import RESULTS, machine, write_json
from benchmarks.stats import mean_ci, welch
from purejaxpo.algorithms import pdppo
from purejaxpo.algorithms.pdppo_reference import REFERENCE_METHODS, default_settings, reference_settings
from purejaxpo.envs.lot_sizing import make_lot_sizing
from purejaxpo.rollout import evaluate

OPTION_SETS: dict[str, Callable[..., tuple[Any, Any]]] = {"defaults": default_settings, "reference": reference_settings}
SETTINGS = ("15items_5machines_t100_i100", "20items_10machines_t100_i100")
# The reference repository's own logs (runs 1..20 per method, logged value at 1M env steps; mean ± sd, ddof 1):
# code/Lot-sizing/logs/<instance>_{PDPPO,PPO}/*_log_{1..20}.csv of leokan92/pdppo (commits bf3f368 / ff58990).
REFERENCE_LOG_FINAL_1M = {
    "15items_5machines_t100_i100": {"pdppo": [-3433, 590], "ppo": [-3363, 705], "welch_p": 0.74},
    "20items_10machines_t100_i100": {"pdppo": [-5055, 858], "ppo": [-6077, 857], "welch_p": 5.6e-4},
    "25items_15machines_t100_i100": {"pdppo": [-7023, 825], "ppo": [-11800, 1996], "welch_p": 3.5e-10},
}


def logged_curve(returns: np.ndarray, counts: np.ndarray, updates_per_log: int) -> np.ndarray:
    """``[S, U]`` per-update mean returns and episode counts -> ``[S, U // k]`` episode-weighted block means
    (NaN for a block in which no episode ended: it is reported, never dropped)."""
    seeds, updates = returns.shape
    blocks = updates // updates_per_log
    r = np.nan_to_num(returns[:, : blocks * updates_per_log]).reshape(seeds, blocks, updates_per_log)
    c = counts[:, : blocks * updates_per_log].reshape(seeds, blocks, updates_per_log)
    total = c.sum(-1)
    return np.where(total > 0, (r * c).sum(-1) / np.maximum(total, 1), np.nan)


def train_seeds(config: Any, hp: Any, env: Any, env_params: Any, keys: jax.Array, metric_names: tuple[str, ...] = ()) -> dict[str, Any]:
    """Compile (timed apart) and run the vmapped seeds once: per-update returns/episode counts ``[S, U]``."""
    trainer = pdppo.make_train(config, env, env_params)
    train = jax.jit(jax.vmap(trainer.train, in_axes=(0, None)))
    start = time.perf_counter()
    compiled = train.lower(keys, hp).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    _, metrics = compiled(keys, hp)
    metrics = jax.device_get(jax.block_until_ready(metrics))
    run_s = time.perf_counter() - start
    steps = config.num_updates * config.batch_size * keys.shape[0]
    extra = {name: np.asarray(metrics[name]).mean(0).round(4).tolist() for name in metric_names if name in metrics}
    return {"returns": np.asarray(metrics["episode_return"]), "counts": np.asarray(metrics["episode_count"]),
            "compile_s": round(compile_s, 2), "run_s": round(run_s, 2), "env_steps_per_s": round(steps / run_s, 1),
            "machine": machine(), "mean_metrics": extra}


def curve_metrics(curve: np.ndarray) -> dict[str, Any]:
    """Per-seed final / AUC / max of ``[S, P]`` logged curves, each as :func:`~benchmarks.common.mean_ci`."""
    return {"final": mean_ci(curve[:, -1]), "auc": mean_ci(curve.mean(axis=1)), "max": mean_ci(curve.max(axis=1)),
            "first": mean_ci(curve[:, 0])}


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Welch's t-test and the paired difference ``a − b`` for each metric."""
    out = {}
    for name in ("final", "auc", "max"):
        x, y = np.asarray(a[name]["per_seed"]), np.asarray(b[name]["per_seed"])
        out[name] = {"welch": welch(x, y), "paired_diff": mean_ci(x - y), "seeds_a_better": int(np.sum(x > y))}
    return out


def random_return(env: Any, env_params: Any, seed: int) -> dict[str, float]:
    items, machines = env.num_items, env.num_machines
    policy = lambda s, obs, k: jax.random.randint(k, (obs.shape[0], machines), 0, items + 1)
    returns = evaluate(env, env_params, policy, None, jax.random.key(seed), 512, int(env_params.max_steps_in_episode))
    return {"mean": float(jnp.mean(returns)), "std": float(jnp.std(returns)), "episodes": 512}


def plot(path: Any, payload: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [(s, o) for s, by in payload["runs"].items() for o in by]
    if not cells:
        return
    fig, axes = plt.subplots(1, len(cells), figsize=(6 * len(cells), 4), squeeze=False)
    for ax, (setting, options) in zip(axes[0], cells):
        cell = payload["runs"][setting][options]
        for method, run in cell["methods"].items():
            curve = np.asarray(run["curve"], float)
            steps = np.asarray(run["curve_env_steps"])
            mean = np.nanmean(curve, 0)
            half = 1.96 * np.nanstd(curve, 0, ddof=1) / np.sqrt(curve.shape[0])
            final = run["metrics"]["final"]
            ax.plot(steps, mean, label=f"{method} (final {final['mean']:.0f} ± {final['ci95_half_width']:.0f})")
            ax.fill_between(steps, mean - half, mean + half, alpha=0.2)
        ax.axhline(cell["random_policy_return"]["mean"], color="gray", ls=":", label="uniform random")
        ax.set_title(f"{setting.split('_t100')[0]}, {options} ({payload['num_seeds']} seeds, 95% CI)", fontsize=9)
        ax.set_xlabel("env steps")
        ax.set_ylabel("mean episode return (per 4k steps)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), help="shipped lot-sizing settings")
    parser.add_argument("--options", nargs="+", default=list(OPTION_SETS), choices=list(OPTION_SETS))
    parser.add_argument("--total-timesteps", type=int, default=1_000_000, help="env steps per seed (paper: 1M)")
    parser.add_argument("--num-seeds", type=int, default=8, help="paired seeds (paper: 20)")
    parser.add_argument("--log-every", type=int, default=4000, help="env steps per logged point (paper: 4000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="pdppo_lot_sizing", help="file stem under benchmarks/results/")
    parser.add_argument("--results-dir", default=str(RESULTS), help="where the JSON/PNG go")
    args = parser.parse_args(argv)
    results_dir = Path(args.results_dir)

    path = results_dir / f"{args.out}.json"
    header = {"benchmark": "pdppo_lot_sizing", "total_timesteps": args.total_timesteps, "total_timesteps_paper": 1_000_000,
              "budget_fraction_of_paper": args.total_timesteps / 1_000_000, "num_seeds": args.num_seeds, "seed": args.seed,
              "log_every_env_steps": args.log_every}
    payload: dict[str, Any] = {**header, "runs": {}}
    if path.exists():  # resume: keep what a previous run with the same arguments finished
        old = json.loads(path.read_text())
        if all(old.get(k) == v for k, v in header.items()):
            payload = old
    payload["reference_log_final_at_1M"] = REFERENCE_LOG_FINAL_1M
    keys = jax.random.split(jax.random.key(args.seed), args.num_seeds)
    for setting in args.settings:
        env, env_params = make_lot_sizing(setting)
        for options in args.options:
            cell = payload["runs"].setdefault(setting, {}).setdefault(options, {"methods": {}})
            cell.setdefault("random_policy_return", random_return(env, env_params, args.seed + 1))
            for method in REFERENCE_METHODS:
                if method in cell["methods"]:
                    continue
                config, hp = OPTION_SETS[options](method, total_timesteps=args.total_timesteps)
                run = train_seeds(config, hp, env, env_params, keys, ("explained_variance_pre", "explained_variance_post"))
                curve = logged_curve(run.pop("returns"), run.pop("counts"), max(1, args.log_every // config.batch_size))
                points = (np.arange(curve.shape[1]) + 1) * max(1, args.log_every // config.batch_size) * config.batch_size
                cell["methods"][method] = {
                    **run, "metrics": curve_metrics(curve), "curve": np.round(curve, 1).tolist(),
                    "curve_env_steps": points.tolist(),
                    "config": {k: v for k, v in vars(config).items()}, "hparams": {k: float(v) for k, v in vars(hp).items()},
                }
                m = cell["methods"][method]["metrics"]
                print(f"{setting} {options:9s} {method:5s} final {m['final']['mean']:8.1f} ± {m['final']['ci95_half_width']:6.1f}  "
                      f"AUC {m['auc']['mean']:8.1f} ± {m['auc']['ci95_half_width']:6.1f}  max {m['max']['mean']:8.1f}  "
                      f"{run['env_steps_per_s']:8.0f} steps/s (run {run['run_s']:.0f}s, load {run['machine']['load_average_1min']})",
                      flush=True)
                if len(cell["methods"]) == len(REFERENCE_METHODS):
                    cell["pdppo_minus_ppo"] = compare(cell["methods"]["pdppo"]["metrics"], cell["methods"]["ppo"]["metrics"])
                    print("  PDPPO − PPO:", {k: (round(v["welch"]["diff"], 1), round(v["welch"]["p"], 4))
                                              for k, v in cell["pdppo_minus_ppo"].items()}, flush=True)
                write_json(f"{args.out}.json", payload, results_dir)
                plot(results_dir / f"{args.out}.png", payload)
    return payload


if __name__ == "__main__":
    main()
