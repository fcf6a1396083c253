"""Every registered algorithm's cost on its home env: env-steps/s and compile seconds at 1 and 64 vmapped seeds,
and its per-step cost relative to PPO on the same env in the same invocation.

Each algorithm runs with its own network and loss but, where its config has them, PPO's batch layout (4 envs ×
128 steps, 4 epochs × 4 minibatches) and 64-64 networks, so the ratio is the cost of the idea, not of a bigger
batch schedule (the JSON records every override). Off-policy agents (``mdpo_off``, ``sac``) do one gradient step
of batch 256 per env step, as in their papers: their ratio is per env step, with that schedule. Rows named
``ppo:<variant>`` are PPO with that objective or advantage estimator (``ppo:dual_clip``: dual-clip) on CartPole. Every row trains
``--updates`` updates per seed; PPO on the same env uses its defaults at the same number of env steps.

    python -m benchmarks.algorithm_costs                  # -> algorithm_costs.json
    python -m benchmarks.algorithm_costs --quick --out algorithm_costs_quick.json
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import jax
import numpy as np

from benchmarks.common import machine, write_json
from purejaxpo import make_env
from purejaxpo.algorithms.registry import ALGORITHMS
from purejaxpo.batching import map_over_runs, resolve_seeds_per_batch

LAYOUT = dict(num_envs=4, num_steps=128, update_epochs=4, num_minibatches=4)
# algorithm -> (home env, env kwargs, config overrides beyond the shared layout)
HOMES: dict[str, tuple[str, dict, dict]] = {
    "ppo": ("CartPole-v1", {}, {}),
    "pdppo": ("LotSizing-v0", {}, dict(hidden_sizes=(64, 64), target_mode="gae")),
    "policyflow": ("Pendulum-v1", {}, dict(hidden_sizes=(64, 64), critic_hidden_sizes=(64, 64))),
    "hyperpp": ("Breakout-MinAtar", {}, dict(encoder="mlp", hidden_sizes=(64, 64))),
    "hyper_srym": ("Breakout-MinAtar", {}, dict(encoder="mlp", hidden_sizes=(64, 64))),
    "ppo_impala": ("Breakout-MinAtar", {}, dict(encoder="mlp", hidden_sizes=(64, 64))),
    "mdpo": ("Pendulum-v1", {}, dict(sgd_steps=4, vf_epochs=4, vf_minibatches=4)),
    "subpo": ("Coverage-v0", {}, dict(num_steps=79, hidden_sizes=(64, 64))),
    "fpo": ("Pendulum-v1", {}, dict(hidden_sizes=(64, 64), critic_hidden_sizes=(64, 64))),
    "gaussian_ppo": ("Pendulum-v1", {}, dict(hidden_sizes=(64, 64))),
    # PPO variants: "ppo:<choice>" is PPO with that objective / advantage estimator on PPO's home env
    **{f"ppo:{objective}": ("CartPole-v1", {}, dict(objective=objective)) for objective in ("kl_penalty", "spo", "ewma", "dpo", "r2vpo")},
    **{f"ppo:{advantage}": ("CartPole-v1", {}, dict(advantage=advantage)) for advantage in ("egae", "loo", "polychromic")},
    "ppo:dual_clip": ("CartPole-v1", {}, dict(dual_clip=True)),
    "mdpo_off": ("Pendulum-v1", {}, dict(num_envs=4, steps_per_update=128, learning_starts=512, hidden_sizes=(64, 64))),
    "sac": ("Pendulum-v1", {}, dict(num_envs=4, steps_per_update=128, learning_starts=512, hidden_sizes=(64, 64))),
}


def _algorithm(name: str) -> Any:
    """The registry entry of a row: ``"ppo:spo"`` is PPO (its variant is in the row's overrides)."""
    return ALGORITHMS[name.split(":")[0]]


def _config(name: str, updates: int) -> tuple[Any, dict]:
    algorithm = _algorithm(name)
    env_name, _, overrides = HOMES[name]
    fields = set(algorithm.config_cls.__dataclass_fields__)
    kwargs = {k: v for k, v in LAYOUT.items() if k in fields}
    kwargs.update(overrides)
    if name == "mdpo":
        kwargs.pop("update_epochs", None)
    probe = algorithm.config_cls(**{**kwargs, "total_timesteps": 10**9})
    warmup = getattr(probe, "warmup_env_steps", 0)
    kwargs["total_timesteps"] = warmup + updates * probe.batch_size
    return algorithm.config_cls(**kwargs), kwargs


def measure(name: str, num_seeds: int, updates: int, env_name: str | None = None) -> dict[str, Any]:
    algorithm = _algorithm(name)
    home, env_kwargs, _ = HOMES[name]
    env, env_params = make_env(env_name or home, **env_kwargs)
    config, kwargs = _config(name, updates)
    trainer = algorithm.make_train(config, env, env_params)
    hp = jax.tree.map(lambda x: np.asarray(x)[None], algorithm.hparams_cls())
    keys = jax.random.split(jax.random.key(0), num_seeds)[None]
    fn = jax.jit(map_over_runs(lambda k, h: trainer.train(k, h)[1]["episode_return"], resolve_seeds_per_batch("auto", num_seeds)))
    start = time.perf_counter()
    compiled = fn.lower(keys, hp).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(compiled(keys, hp))
    run_s = time.perf_counter() - start
    steps = config.num_updates * config.batch_size * num_seeds
    return {"algorithm": name, "env": env_name or home, "num_seeds": num_seeds, "updates": config.num_updates,
            "env_steps": steps, "compile_s": round(compile_s, 2), "run_s": round(run_s, 3),
            "env_steps_per_s": round(steps / run_s, 1), "config": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}}


def ppo_on(env_name: str, num_seeds: int, steps_per_seed: int) -> dict[str, Any]:
    from purejaxpo.algorithms import ppo

    env, env_params = make_env(env_name)
    config = ppo.PPOConfig(total_timesteps=max(512, steps_per_seed // 512 * 512))
    trainer = ppo.make_train(config, env, env_params)
    hp = jax.tree.map(lambda x: np.asarray(x)[None], ppo.PPOHParams())
    keys = jax.random.split(jax.random.key(0), num_seeds)[None]
    fn = jax.jit(map_over_runs(lambda k, h: trainer.train(k, h)[1]["episode_return"], resolve_seeds_per_batch("auto", num_seeds)))
    compiled = fn.lower(keys, hp).compile()
    start = time.perf_counter()
    jax.block_until_ready(compiled(keys, hp))
    run_s = time.perf_counter() - start
    return {"env_steps_per_s": round(config.num_updates * config.batch_size * num_seeds / run_s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,64")
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--algorithms", default=",".join(HOMES))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="algorithm_costs.json")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.updates = "1", 2
    rows = []
    for name in args.algorithms.split(","):
        for num_seeds in (int(s) for s in args.seeds.split(",")):
            row = measure(name, num_seeds, args.updates)
            baseline = ppo_on(row["env"], num_seeds, row["env_steps"] // num_seeds) if name != "ppo" else {"env_steps_per_s": row["env_steps_per_s"]}
            row["ppo_env_steps_per_s_same_env"] = baseline["env_steps_per_s"]
            row["cost_relative_to_ppo"] = round(baseline["env_steps_per_s"] / row["env_steps_per_s"], 2)
            rows.append(row)
            print(f"{name:15s} {row['env']:18s} {num_seeds:3d} seeds: {row['env_steps_per_s']:>11,.0f} env-steps/s, "
                  f"compile {row['compile_s']:5.1f} s, ×{row['cost_relative_to_ppo']} PPO's per-step cost", flush=True)
            write_json(args.out, {"benchmark": "algorithm_costs", "machine": machine(), "rows": rows})
    print("wrote", args.out)


if __name__ == "__main__":
    main()
