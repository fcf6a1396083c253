"""How close training gets to its limits: env-only and acting-only throughput in the same scan layout.

    python -m benchmarks.limits      # → results/limits.json

- env-only: the vmapped CartPole-v1 envs stepped by a fixed cheap policy (alternating actions) inside
  the same ``lax.scan`` as a rollout;
- acting-only: the same scan with the untrained PPO policy sampling actions (forward pass, no learning);
- training: full PPO (rollout + GAE + 4 epochs × 4 minibatches).
All with 4 envs × 128 steps per iteration, per seed, for 1 and ``--seeds`` vmapped seeds.

- update ceiling: a ``lax.scan`` chain of ``[128, 64] @ [64, 64]`` products with tanh — the update's
  dominant operation at its minibatch shape — in GFLOP/s, and the 1-seed training throughput it would
  allow if the update ran at that rate with zero overhead (4 epochs × forward + backward ≈ 12 forward
  passes of the 8.9k-multiply-add actor-critic per env step) on top of the measured rollout time.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
from flax import nnx

from benchmarks.common import machine, time_ppo, write_json
from purejaxpo import make_env
from purejaxpo.algorithms import ppo
from purejaxpo.networks.actor_critic import actor_critic_for
from purejaxpo.spaces import policy_spec
from purejaxpo.rollout import init_env_carry, rollout


def timed(fn, *args) -> tuple[float, float]:
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    return compile_s, time.perf_counter() - start


def scan_rollouts(num_seeds: int, iterations: int, acting: bool) -> dict:
    env, env_params = make_env("CartPole-v1")
    config = ppo.PPOConfig()
    spec = policy_spec(env, env_params)
    graphdef, _ = nnx.split(actor_critic_for(config, spec, jax.random.key(0)))

    def one_seed(key):
        _, params = nnx.split(actor_critic_for(config, spec, key))
        model = nnx.merge(graphdef, params)

        def policy_step(obs, k):
            if acting:
                dist, value = model(obs)
                action, log_prob = dist.sample_and_log_prob(seed=k)
                return action, action, log_prob, value
            action = (jnp.arange(obs.shape[0]) + jax.random.bits(k, dtype=jnp.uint32)) % 2
            zeros = jnp.zeros(obs.shape[0])
            return action.astype(jnp.int32), action.astype(jnp.int32), zeros, zeros

        carry = init_env_carry(env, env_params, key, config.num_envs)

        def iteration(carry, k):
            carry, traj, stats = rollout(env, env_params, carry, k, policy_step, lambda o: o, config.num_steps)
            return carry, stats.count
        _, counts = jax.lax.scan(iteration, carry, jax.random.split(key, iterations))
        return counts.sum()

    keys = jax.random.split(jax.random.key(0), num_seeds)
    compile_s, run_s = timed(jax.vmap(one_seed), keys)
    steps = num_seeds * iterations * config.batch_size
    return {"num_seeds": num_seeds, "compile_s": round(compile_s, 3), "run_s": round(run_s, 3), "env_steps_per_s": round(steps / run_s, 1)}


ACTOR_CRITIC_MACS = (4 * 64 + 64 * 64 + 64 * 2) + (4 * 64 + 64 * 64 + 64 * 1)  # CartPole, 64-64, two torsos


def matmul_gflops(rows: int = 128, width: int = 64, length: int = 2000) -> float:
    """GFLOP/s of a scan of ``length`` dependent ``[rows, width] @ [width, width]`` products + tanh."""
    x, w = jnp.ones((rows, width)), jnp.full((width, width), 0.01)
    chain = jax.jit(lambda x: jax.lax.scan(lambda c, _: (jnp.tanh(c @ w), None), x, None, length=length)[0])
    jax.block_until_ready(chain(x))
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        jax.block_until_ready(chain(x))
        best = min(best, time.perf_counter() - start)
    return 2 * rows * width * width * length / best / 1e9


def update_ceiling(training: dict, acting: dict, update_epochs: int = 4) -> dict:
    """The 1-seed training rate if the update ran at the measured matmul rate with no overhead."""
    gflops = matmul_gflops()
    update_flop_per_step = update_epochs * 3 * 2 * ACTOR_CRITIC_MACS  # forward + backward ≈ 3 forwards
    rollout_s_per_step = 1.0 / acting["env_steps_per_s"]
    ideal = 1.0 / (rollout_s_per_step + update_flop_per_step / (gflops * 1e9))
    measured_update_s = 1.0 / training["env_steps_per_s"] - rollout_s_per_step
    return {
        "matmul_gflops_128x64x64": round(gflops, 1),
        "update_flop_per_env_step": update_flop_per_step,
        "achieved_update_gflops": round(update_flop_per_step / measured_update_s / 1e9, 1),
        "update_share_of_training_time": round(measured_update_s * training["env_steps_per_s"], 3),
        "ideal_training_env_steps_per_s": round(ideal, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=976)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--out", default="limits.json")
    args = parser.parse_args()
    rows = []
    for num_seeds in (1, args.seeds):
        row = {
            "num_seeds": num_seeds,
            "env_only": scan_rollouts(num_seeds, args.iterations, acting=False),
            "acting_only": scan_rollouts(num_seeds, args.iterations, acting=True),
            "training": time_ppo(num_seeds, args.iterations * 512),
        }
        if num_seeds == 1:
            row["update_ceiling"] = update_ceiling(row["training"], row["acting_only"])
            print(f"update ceiling: {row['update_ceiling']}", flush=True)
        rows.append(row)
        print(f"{num_seeds} seeds: env-only {row['env_only']['env_steps_per_s']:,.0f}, acting {row['acting_only']['env_steps_per_s']:,.0f}, "
              f"training {row['training']['env_steps_per_s']:,.0f} env-steps/s", flush=True)
    print(f"wrote {write_json(args.out, {'benchmark': 'limits', 'env': 'CartPole-v1', 'machine': machine(), 'rows': rows})}")


if __name__ == "__main__":
    main()
