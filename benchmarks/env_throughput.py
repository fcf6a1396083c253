"""Random-policy throughput of our environments: env-steps per second, ``B`` vmapped envs in one ``lax.scan``.

Each environment runs ``num_envs`` copies for ``num_steps`` steps with uniformly random actions (sampled inside the
scan, auto-reset included) in one jitted function. Compile time (lower + compile) is reported apart from run time
(the best of ``repeats`` executions of the compiled function). Results go to
``benchmarks/results/env_throughput.json``.

The default list ends with the suite adapters (``navix/``, ``jumanji/``, ``craftax/``, purejaxpo/adapters/);
an env whose suite is not installed is recorded as skipped, with the extra that would install it.

    python benchmarks/env_throughput.py                      # all envs, 1024 envs x 500 steps
    python benchmarks/env_throughput.py --envs MultiGoal-v0 --num-steps 1000
    python benchmarks/env_throughput.py --quick              # 8 envs x 16 steps: a smoke run, not a measurement
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import Any

import jax
import jax.numpy as jnp

from purejaxpo import adapters
from purejaxpo.environments import make_env

DEFAULT_ENVS = (
    "LotSizing-v0",
    "FrozenLakeStochastic-v0",
    "MultiGoal-v0",
    "Coverage-v0",
    "InformativePath-v0",
    "SteinerCovering-v0",
    "FacilityLocation-v0",
    # suite adapters (optional extras): each suite's easiest task and a harder one
    "navix/Navix-Empty-5x5-v0",
    "navix/Navix-DoorKey-8x8-v0",
    "jumanji/Maze-v0",
    "jumanji/Snake-v1",
    "craftax/Craftax-Classic-Symbolic-v1",
)
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
RESULTS = os.path.join(RESULTS_DIR, "env_throughput.json")
QUICK_RESULTS = os.path.join(RESULTS_DIR, "env_throughput_quick.json")  # never the quoted results
QUICK = dict(num_envs=8, num_steps=16, repeats=1)


def missing_suite(name: str) -> str | None:
    """Why ``name`` cannot run here (its adapter suite is not installed), else ``None``."""
    suite = adapters.suite_of(name)
    if suite is None or adapters.is_installed(suite):
        return None
    return f'{suite.package} not installed (pip install "purejaxpo[{suite.package}]")'


def make_run(env: Any, params: Any, num_envs: int, num_steps: int):
    """``run(key) -> (sum of rewards, episodes ended)``: reset, then ``num_steps`` random steps, vmapped."""
    space = env.action_space(params)
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def run(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        key_reset, key_scan = jax.random.split(key)
        _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key_reset, num_envs), params)

        def body(carry, key_t):
            state, total, episodes = carry
            key_act, key_step = jax.random.split(key_t)
            actions = jax.vmap(space.sample)(jax.random.split(key_act, num_envs))
            _, state, reward, terminated, truncated, _ = step(jax.random.split(key_step, num_envs), state, actions,
                                                              params)
            return (state, total + reward.sum(), episodes + jnp.sum(terminated | truncated)), None

        init = (state, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32))
        (_, total, episodes), _ = jax.lax.scan(body, init, jax.random.split(key_scan, num_steps))
        return total, episodes

    return run


def measure(name: str, num_envs: int, num_steps: int, repeats: int) -> dict[str, Any]:
    env, params = make_env(name)
    fn = jax.jit(make_run(env, params, num_envs, num_steps))
    key = jax.random.PRNGKey(0)
    start = time.perf_counter()
    compiled = fn.lower(key).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(key))  # warm-up
    times = []
    for r in range(repeats):
        start = time.perf_counter()
        total, episodes = jax.block_until_ready(compiled(jax.random.PRNGKey(r + 1)))
        times.append(time.perf_counter() - start)
    run_s = min(times)
    return {
        "env": name,
        "num_envs": num_envs,
        "num_steps": num_steps,
        "compile_s": round(compile_s, 3),
        "run_s": round(run_s, 4),
        "run_s_all": [round(t, 4) for t in times],
        "env_steps_per_s": round(num_envs * num_steps / run_s),
        "episodes_ended": int(episodes),
        "mean_reward": float(total) / (num_envs * num_steps),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS))
    parser.add_argument("--num-envs", type=int, default=1024)
    parser.add_argument("--num-steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK['num_envs']} envs x {QUICK['num_steps']} steps, 1 repeat, to {QUICK_RESULTS}")
    parser.add_argument("--out", default=None, help=f"output JSON (default {RESULTS}, or {QUICK_RESULTS} with --quick)")
    args = parser.parse_args(argv)
    if args.quick:
        args.num_envs, args.num_steps, args.repeats = QUICK["num_envs"], QUICK["num_steps"], QUICK["repeats"]
    out = args.out or (QUICK_RESULTS if args.quick else RESULTS)

    rows = []
    for name in args.envs:
        reason = missing_suite(name)
        if reason is not None:
            print(f"{name:36s} skipped: {reason}")
            rows.append({"env": name, "skipped": reason})
            continue
        row = measure(name, args.num_envs, args.num_steps, args.repeats)
        print(f"{name:36s} compile {row['compile_s']:6.2f} s   run {row['run_s']:7.4f} s   "
              f"{row['env_steps_per_s']:>12,d} env-steps/s")
        rows.append(row)
    result = {
        "benchmark": "random-policy env throughput (vmapped envs inside one jitted lax.scan, auto-reset included)",
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "quick": bool(args.quick),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "results": rows,
    }
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = f"{out}.tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2)
    os.replace(tmp, out)  # atomic: a crash never leaves half a JSON
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
