"""Wall-clock against a PyTorch PPO written for a fair fight (benchmarks/torch_ppo.py).

    pip install -e ".[bench]" && python -m benchmarks.vs_pytorch    # → results/vs_pytorch.json

Same algorithm, hyperparameters, network and budget on CartPole-v1 (4 envs × 128 steps, 4 epochs × 4
minibatches, 64-64 tanh, lr 2.5e-4 annealed, 5e5 steps). Each side runs ``--repeats`` times in this one
invocation; we report the median and min–max of run seconds, compile seconds apart, env-steps/s and the
final return (mean return of episodes completed in the last 5% of updates). The PyTorch side runs three ways:
the tuned eager baseline (``style="fast"``), the tuned baseline under ``torch.compile`` (``style="compiled"``,
``--compiled-repeats`` times; its compile time is reported apart) and CleanRL as written (``style="cleanrl"``,
``--cleanrl-repeats`` times). The headline ratio (``ratio_single_seed_vs_fastest``) is against the fastest of them.

Aggregate throughput at N seeds: ours vmaps N seeds in one call (seed counts above
``--full-budget-max-seeds`` train ``--updates-large`` updates per seed, which measures the same
per-update cost); PyTorch seeds would run one after another, so its N-seed time is *extrapolated* as N ×
the measured single-seed time (the JSON says so).
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from benchmarks.common import machine, time_ppo, write_json


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run_ours(num_seeds: int, total_timesteps: int, repeats: int) -> dict[str, Any]:
    rows = [time_ppo(num_seeds, total_timesteps) for _ in range(repeats)]
    return {
        "num_seeds": num_seeds,
        "env_steps": rows[0]["env_steps"],
        "compile_s": spread([r["compile_s"] for r in rows]),
        "run_s": spread([r["run_s"] for r in rows]),
        "env_steps_per_s": spread([r["env_steps_per_s"] for r in rows]),
        "final_return_mean": spread([r["final_return_mean"] for r in rows]),
    }


def run_torch(total_timesteps: int, repeats: int, style: str = "fast") -> dict[str, Any]:
    from benchmarks.torch_ppo import run_torch_ppo

    rows = [run_torch_ppo(seed=seed, total_timesteps=total_timesteps, style=style) for seed in range(repeats)]
    return {
        "num_seeds": 1,
        "env_steps": rows[0]["env_steps"],
        "compile_s": spread([r.get("compile_s", 0.0) for r in rows]),
        "run_s": spread([r["run_s"] for r in rows]),
        "env_steps_per_s": spread([r["env_steps_per_s"] for r in rows]),
        "final_return": [r["final_return"] for r in rows],
        "torch_threads": rows[0].get("torch_threads"),
        "torch_version": rows[0].get("torch_version"),
        "style": style,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-timesteps", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", default="8,64,256,1024")
    parser.add_argument("--full-budget-max-seeds", type=int, default=8)
    parser.add_argument("--updates-large", type=int, default=20)
    parser.add_argument("--cleanrl-repeats", type=int, default=1,
                        help="repeats of the CleanRL-as-written PyTorch baseline (0 skips it)")
    parser.add_argument("--compiled-repeats", type=int, default=1,
                        help="repeats of the torch.compile PyTorch baseline (0 skips it)")
    parser.add_argument("--out", default="vs_pytorch.json", help="file name under benchmarks/results/")
    args = parser.parse_args()

    torch_result = run_torch(args.total_timesteps, args.repeats)
    torch_sps = torch_result["env_steps_per_s"]["median"]
    print(f"PyTorch 1 seed: {torch_sps:,.0f} env-steps/s, final returns {torch_result['final_return']}", flush=True)
    cleanrl = run_torch(args.total_timesteps, args.cleanrl_repeats, style="cleanrl") if args.cleanrl_repeats else None
    if cleanrl:
        print(f"PyTorch 1 seed, CleanRL as written: {cleanrl['env_steps_per_s']['median']:,.0f} env-steps/s, "
              f"final returns {cleanrl['final_return']}", flush=True)
    compiled = run_torch(args.total_timesteps, args.compiled_repeats, style="compiled") if args.compiled_repeats else None
    if compiled:
        print(f"PyTorch 1 seed, torch.compile: {compiled['env_steps_per_s']['median']:,.0f} env-steps/s (compile "
              f"{compiled['compile_s']['median']:.1f} s), final returns {compiled['final_return']}", flush=True)
    fastest = max((r for r in (torch_result, compiled, cleanrl) if r), key=lambda r: r["env_steps_per_s"]["median"])
    single = run_ours(1, args.total_timesteps, args.repeats)
    ours_sps = single["env_steps_per_s"]["median"]
    print(f"ours    1 seed: {ours_sps:,.0f} env-steps/s (compile {single['compile_s']['median']:.1f} s), "
          f"ratio {ours_sps / torch_sps:.1f}x", flush=True)
    aggregate = []
    for num_seeds in (int(s) for s in args.seeds.split(",")):
        budget = args.total_timesteps if num_seeds <= args.full_budget_max_seeds else args.updates_large * 512
        row = run_ours(num_seeds, budget, 1 if num_seeds > args.full_budget_max_seeds else args.repeats)
        row["ratio_vs_pytorch_sequential"] = row["env_steps_per_s"]["median"] / torch_sps
        if cleanrl:
            row["ratio_vs_cleanrl_style_sequential"] = row["env_steps_per_s"]["median"] / cleanrl["env_steps_per_s"]["median"]
        row["ratio_vs_fastest_pytorch_sequential"] = row["env_steps_per_s"]["median"] / fastest["env_steps_per_s"]["median"]
        aggregate.append(row)
        print(f"ours {num_seeds:5d} seeds: {row['env_steps_per_s']['median']:,.0f} env-steps/s aggregate, "
              f"ratio {row['ratio_vs_pytorch_sequential']:.1f}x", flush=True)
    payload = {
        "benchmark": "vs_pytorch",
        "env": "CartPole-v1",
        "machine": machine(),
        "pytorch_multi_seed": "extrapolated: N seeds run one after another = N × measured single-seed time",
        "pytorch": torch_result,
        "ours_single_seed": single,
        "ratio_single_seed": ours_sps / torch_sps,
        "pytorch_cleanrl_style": cleanrl,
        "ratio_single_seed_vs_cleanrl_style": ours_sps / cleanrl["env_steps_per_s"]["median"] if cleanrl else None,
        "pytorch_compiled": compiled,
        "ratio_single_seed_vs_compiled": ours_sps / compiled["env_steps_per_s"]["median"] if compiled else None,
        "fastest_pytorch_style": fastest["style"],
        "ratio_single_seed_vs_fastest": ours_sps / fastest["env_steps_per_s"]["median"],
        "ours_aggregate": aggregate,
    }
    print(f"wrote {write_json(args.out, payload)}")


if __name__ == "__main__":
    main()
