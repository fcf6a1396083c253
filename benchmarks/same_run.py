"""Our library's PPO against a minimal single-file jitted PPO (``benchmarks/minimal_ppo.py``, same algorithm and
settings), back to back in one invocation: the library's overhead, measured.

For each seed count, both implementations compile fresh ``--repeats`` times; after each compile they run the full
budget ``--runs-per-compile`` times, alternating (and alternating which goes first), so every library run has a
minimal run beside it. The JSON records every compile and run, the median env-steps/s of each, their ratio
(library / minimal; > 1 means the library is faster), the median of the paired per-round ratios (robust to the
machine's drift), compile seconds of each, final returns, and the machine's load average before and after. Both vmap seeds in one ``jit``: the library as
``jax.jit(jax.vmap(trainer.train, in_axes=(0, None)))``, the minimal PPO with its seeds' init under ``lax.map``.

    python -m benchmarks.same_run                         # 1, 8, 64 seeds, 3 alternated repeats -> same_run.json
    python -m benchmarks.same_run --seeds 1 --repeats 1 --runs-per-compile 1 --total-timesteps 20480 --out same_run_quick.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any, Callable

import jax
import numpy as np

from benchmarks import minimal_ppo
from benchmarks.common import machine, write_json
from purejaxpo.compile_cache import compile_ahead


def _compile(build: Callable[[], tuple[Callable, Any, int]]) -> tuple[Callable, tuple, int, float]:
    """Both implementations compile the way the library's runner does (``compile_cache.compile_ahead``: Python's
    garbage collector paused while tracing)."""
    fn, args, steps = build()
    start = time.perf_counter()
    compiled = compile_ahead(jax.jit(fn), *args)
    return compiled, args, steps, time.perf_counter() - start


def _run(compiled: Callable, args: tuple, steps: int) -> dict[str, Any]:
    start = time.perf_counter()
    returns = np.asarray(jax.block_until_ready(compiled(*args)))
    run_s = time.perf_counter() - start
    last = max(1, returns.shape[-1] // 20)
    return {"run_s": round(run_s, 3), "env_steps_per_s": round(steps / run_s, 1),
            "final_return": float(np.nanmean(returns[..., -last:]))}


def library(num_seeds: int, total: int) -> Callable[[], tuple]:
    def build() -> tuple:
        from purejaxpo import make_env
        from purejaxpo.algorithms import ppo

        env, env_params = make_env("CartPole-v1")
        config = ppo.PPOConfig(total_timesteps=total)
        trainer = ppo.make_train(config, env, env_params)
        fn = lambda keys, hp: jax.vmap(trainer.train, in_axes=(0, None))(keys, hp)[1]["episode_return"]
        keys = jax.random.split(jax.random.key(0), num_seeds)
        return fn, (keys, ppo.PPOHParams()), config.num_updates * config.batch_size * num_seeds

    return build


def minimal(num_seeds: int, total: int) -> Callable[[], tuple]:
    def build() -> tuple:
        fn, steps = minimal_ppo.make_vmapped(total, num_seeds)
        return fn, (jax.random.split(jax.random.key(0), num_seeds),), steps * num_seeds

    return build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,8,64")
    parser.add_argument("--repeats", type=int, default=3, help="fresh compiles of each implementation")
    parser.add_argument("--runs-per-compile", type=int, default=3, help="alternated runs after each compile")
    parser.add_argument("--total-timesteps", type=int, default=500_000)
    parser.add_argument("--out", default="same_run.json")
    args = parser.parse_args()
    rows = []
    load_before = round(os.getloadavg()[0], 2)
    for num_seeds in (int(s) for s in args.seeds.split(",")):
        runs: dict[str, list] = {"library": [], "minimal": []}
        compiles: dict[str, list] = {"library": [], "minimal": []}
        pair_ratios = []
        for _ in range(args.repeats):
            builds = (("minimal", minimal(num_seeds, args.total_timesteps)), ("library", library(num_seeds, args.total_timesteps)))
            compiled = {}
            for name, build in builds:
                *compiled[name], compile_s = _compile(build)
                compiles[name].append(round(compile_s, 3))
            for round_index in range(args.runs_per_compile):
                pair = {}
                for name, _ in builds[:: 1 if round_index % 2 == 0 else -1]:  # alternate which runs first
                    pair[name] = _run(*compiled[name])
                    runs[name].append(pair[name])
                    print(num_seeds, name, pair[name], flush=True)
                pair_ratios.append(pair["library"]["env_steps_per_s"] / pair["minimal"]["env_steps_per_s"])
        median = {name: statistics.median(r["env_steps_per_s"] for r in rs) for name, rs in runs.items()}
        compile_median = {name: statistics.median(c) for name, c in compiles.items()}
        rows.append({
            "num_seeds": num_seeds, "total_timesteps_per_seed": args.total_timesteps, "runs": runs, "compile_s": compiles,
            "median_env_steps_per_s": median, "median_compile_s": compile_median,
            "ratio_library_over_minimal": round(median["library"] / median["minimal"], 3),
            "median_paired_ratio": round(statistics.median(pair_ratios), 3),
            "paired_ratios": [round(r, 3) for r in pair_ratios],
        })
    payload = {"benchmark": "same_run", "env": "CartPole-v1", "machine": machine(), "load_average_before": load_before,
               "load_average_after": round(os.getloadavg()[0], 2), "rows": rows}
    print("wrote", write_json(args.out, payload))


if __name__ == "__main__":
    main()
