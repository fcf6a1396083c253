"""Our library's PPO against a minimal single-file jitted PPO (``benchmarks/minimal_ppo.py``, same algorithm and
settings), back to back in one invocation: the library's overhead, measured.

For each seed count, the two implementations alternate for ``--repeats`` rounds (each round compiles fresh and
runs the full budget); the JSON records every repeat, the median env-steps/s of each, their ratio
(library / minimal; > 1 means the library is faster), compile seconds of each, final returns, and the machine's
load average before and after. Both vmap seeds in one ``jit``: the library as
``jax.jit(jax.vmap(trainer.train, in_axes=(0, None)))``, the minimal PPO with its seeds' init under ``lax.map``.

    python -m benchmarks.same_run                         # 1, 8, 64 seeds, 3 alternated repeats -> same_run.json
    python -m benchmarks.same_run --seeds 1 --repeats 1 --total-timesteps 20480 --out same_run_quick.json
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


def _time(build: Callable[[], tuple[Callable, Any, int]]) -> dict[str, Any]:
    fn, args, steps = build()
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    returns = np.asarray(jax.block_until_ready(compiled(*args)))
    run_s = time.perf_counter() - start
    last = max(1, returns.shape[-1] // 20)
    return {"compile_s": round(compile_s, 3), "run_s": round(run_s, 3), "env_steps_per_s": round(steps / run_s, 1),
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
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--total-timesteps", type=int, default=500_000)
    parser.add_argument("--out", default="same_run.json")
    args = parser.parse_args()
    rows = []
    load_before = round(os.getloadavg()[0], 2)
    for num_seeds in (int(s) for s in args.seeds.split(",")):
        runs: dict[str, list] = {"library": [], "minimal": []}
        for _ in range(args.repeats):
            for name, build in (("minimal", minimal(num_seeds, args.total_timesteps)), ("library", library(num_seeds, args.total_timesteps))):
                runs[name].append(_time(build))
                print(num_seeds, name, runs[name][-1], flush=True)
        median = {name: statistics.median(r["env_steps_per_s"] for r in rs) for name, rs in runs.items()}
        compile_median = {name: statistics.median(r["compile_s"] for r in rs) for name, rs in runs.items()}
        rows.append({
            "num_seeds": num_seeds, "total_timesteps_per_seed": args.total_timesteps, "repeats": runs,
            "median_env_steps_per_s": median, "median_compile_s": compile_median,
            "ratio_library_over_minimal": round(median["library"] / median["minimal"], 3),
        })
    payload = {"benchmark": "same_run", "env": "CartPole-v1", "machine": machine(), "load_average_before": load_before,
               "rows": rows}
    print("wrote", write_json(args.out, payload))


if __name__ == "__main__":
    main()
