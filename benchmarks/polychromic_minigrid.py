"""Polychromic PPO vs PPO on a MiniGrid task (navix), with pass@k coverage over start configurations.

Both agents are the one PPO trainer with the same network, optimizer, batch layout, budget and paired seeds; only
``advantage`` differs (``"gae"`` vs ``"polychromic"``: set advantage × diversity over vines branched from a shared
start state, Hamid et al. 2025, arXiv:2509.25424). After training, every seed's stochastic policy gets ``m``
attempts from each of ``C`` start configurations (fresh reset keys, the same for every seed and agent); an attempt
succeeds when its episode earns a positive return (navix pays only at the goal). We report mean return, and
``pass@k`` for several ``k`` (:func:`purejaxpo.primitives.coverage.pass_at_k`), mean ± 95% CI over seeds and a Welch
t-test per metric.

Caveats, stated in the JSON too: the paper fine-tunes *pretrained* policies (RLFT) on BabyAI/MiniGrid; this trains
from scratch. The paper's budgets, set sizes and exact pass@k protocol could not be confirmed (no code, no paper body
found), so the budget fraction is unknown and the vine settings are ours (group 8, sets of 4, window 5).

    python -m benchmarks.polychromic_minigrid                 # 8 seeds × 1M steps each agent (CPU: tens of minutes)
    python -m benchmarks.polychromic_minigrid --quick         # smoke size
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import machine, write_json
from benchmarks.stats import mean_ci, welch
from purejaxpo import make_env
from purejaxpo.algorithms import ppo
from purejaxpo.primitives.coverage import pass_at_k

KS = (1, 2, 4, 8)


def attempts(trainer: Any, state: Any, config_keys: jax.Array, attempt_keys: jax.Array, max_steps: int) -> jax.Array:
    """``[C, m]`` success of ``m`` stochastic attempts from each of ``C`` start configurations (reset keys)."""
    env, params = trainer.env, trainer.env_params

    def one(config_key: jax.Array, key: jax.Array) -> jax.Array:
        obs, env_state = env.reset(config_key, params)

        def step(carry, k):
            env_state, obs, total, running = carry
            act_key, env_key = jax.random.split(k)
            action = trainer.act(state, obs[None], act_key)[0]
            obs, env_state, reward, terminated, truncated, _ = env.step(env_key, env_state, action, params)
            total = total + running * reward
            running = running * (1.0 - jnp.logical_or(terminated, truncated))
            return (env_state, obs, total, running), None

        (_, _, total, _), _ = jax.lax.scan(step, (env_state, obs, 0.0, 1.0), jax.random.split(key, max_steps))
        return total > 0

    return jax.vmap(lambda c: jax.vmap(lambda k: one(c, k))(attempt_keys))(config_keys)


def run(env_name: str, total: int, num_seeds: int, num_configs: int, num_attempts: int) -> dict[str, Any]:
    env, params = make_env(env_name)
    max_steps = int(params.max_steps_in_episode)
    keys = jax.random.split(jax.random.key(0), num_seeds)
    config_keys = jax.random.split(jax.random.key(12345), num_configs)
    out: dict[str, Any] = {}
    for advantage in ("gae", "polychromic"):
        config = ppo.PPOConfig(num_envs=32, num_steps=64, total_timesteps=total, update_epochs=4, num_minibatches=4,
                               advantage=advantage, group_size=8, poly_set_size=4, poly_window=5)
        trainer = ppo.make_train(config, env, params)
        start = time.perf_counter()
        train = jax.jit(jax.vmap(trainer.train, in_axes=(0, None))).lower(keys, ppo.PPOHParams(lr=1e-3)).compile()
        compile_s = time.perf_counter() - start
        start = time.perf_counter()
        state, metrics = jax.block_until_ready(train(keys, ppo.PPOHParams(lr=1e-3)))
        run_s = time.perf_counter() - start
        evaluate = jax.jit(jax.vmap(lambda s, k: attempts(trainer, s, config_keys, jax.random.split(k, num_attempts), max_steps)))
        success = np.asarray(evaluate(state, jax.random.split(jax.random.key(777), num_seeds)))  # [S, C, m]
        returns = np.asarray(metrics["episode_return"])
        last = max(1, returns.shape[1] // 10)
        per_seed = {
            "final_train_return": np.nanmean(returns[:, -last:], axis=1).tolist(),
            "auc_train_return": np.nanmean(returns, axis=1).tolist(),
            **{f"pass@{k}": np.asarray(pass_at_k(jnp.asarray(success), k)).mean(-1).tolist() for k in KS},
        }
        out[advantage] = {
            "per_seed": per_seed,
            "summary": {name: mean_ci(values) for name, values in per_seed.items()},
            "compile_s": round(compile_s, 2), "run_s": round(run_s, 2),
            "env_steps_per_s": round(config.num_updates * config.batch_size * num_seeds / run_s, 1),
            "config": {"num_envs": 32, "num_steps": 64, "total_timesteps": total, "group_size": 8, "poly_set_size": 4,
                       "poly_window": 5, "lr": 1e-3},
        }
        print(advantage, {k: round(v["mean"], 3) for k, v in out[advantage]["summary"].items()}, flush=True)
    out["welch_polychromic_vs_gae"] = {
        name: welch(out["polychromic"]["per_seed"][name], out["gae"]["per_seed"][name]) for name in out["gae"]["per_seed"]
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="navix/Navix-DoorKey-5x5-v0")
    parser.add_argument("--total-timesteps", type=int, default=1_048_576)
    parser.add_argument("--num-seeds", type=int, default=8)
    parser.add_argument("--configs", type=int, default=256)
    parser.add_argument("--attempts", type=int, default=8)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="polychromic_minigrid.json")
    args = parser.parse_args()
    if args.quick:
        args.total_timesteps, args.num_seeds, args.configs, args.attempts = 32 * 64 * 2, 2, 8, 8
    results = run(args.env, args.total_timesteps, args.num_seeds, args.configs, args.attempts)
    payload = {
        "benchmark": "polychromic_minigrid", "env": args.env, "num_seeds": args.num_seeds,
        "num_configurations": args.configs, "attempts_per_configuration": args.attempts, "ks": list(KS),
        "budget_note": "trained from scratch; the paper fine-tunes pretrained policies and its budgets, vine "
                       "settings and pass@k protocol could not be confirmed, so the fraction of its budget is unknown",
        "machine": machine(), "results": results,
    }
    print("wrote", write_json(args.out, payload))


if __name__ == "__main__":
    main()
