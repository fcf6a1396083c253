"""How close training gets to its limits: env-only and acting-only throughput in the same scan layout.

    python -m benchmarks.limits      # → results/limits.json

- env-only: the vmapped CartPole-v1 envs stepped by a fixed cheap policy (alternating actions) inside
  the same ``lax.scan`` as a rollout;
- acting-only: the same scan with the untrained PPO policy sampling actions (forward pass, no learning);
- training: full PPO (rollout + GAE + 4 epochs × 4 minibatches).
All with 4 envs × 128 steps per iteration, per seed, for 1 and ``--seeds`` vmapped seeds.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
from flax import nnx

from benchmarks.common import machine, time_ppo, write_json
from purejaxpo import make_env
from purejaxpo.algorithms import common, ppo
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
    spec = common.policy_spec(env, env_params)
    graphdef, _ = nnx.split(common.build_actor_critic(config, spec, jax.random.key(0)))

    def one_seed(key):
        _, params = nnx.split(common.build_actor_critic(config, spec, key))
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
        rows.append(row)
        print(f"{num_seeds} seeds: env-only {row['env_only']['env_steps_per_s']:,.0f}, acting {row['acting_only']['env_steps_per_s']:,.0f}, "
              f"training {row['training']['env_steps_per_s']:,.0f} env-steps/s", flush=True)
    print(f"wrote {write_json(args.out, {'benchmark': 'limits', 'env': 'CartPole-v1', 'machine': machine(), 'rows': rows})}")


if __name__ == "__main__":
    main()
