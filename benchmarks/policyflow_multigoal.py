"""PolicyFlow vs Gaussian PPO on MultiGoal (the paper's MultiGoal experiment, arXiv:2602.01156).

For each algorithm, ``--seeds`` seeds are trained vmapped in one jitted call; then, per seed, 1000 trajectories
of 50 steps start at the origin. Reported per seed and as mean ± std over seeds:

- ``coverage``: goals receiving at least ``--min-mass`` (default 2%) of the 1000 first actions, each first action
  assigned to the goal direction with the largest cosine ([P] metric);
- ``goal_entropy``: entropy of that 6-bin histogram divided by log 6 (1 = uniform over goals);
- ``strict_coverage``: the same count using only first actions with ‖a‖ ≥ 3 and cos ≥ cos(π/6) (a stricter
  third-party harness; with 6 goals the cosine condition always holds, so only the norm filters);
- ``on_axis_fraction``: fraction of first actions within 15° of a goal direction (isotropic noise gives 0.5, a
  policy that aims at goals approaches 1). Coverage and entropy alone cannot tell multimodality from noise.
- ``trajectory_coverage``: goals that some trajectory ends within 1.5 of;
- ``final_return``: mean training episode return over the last 10% of updates;
- ``cost per env step``: training wall time (compile excluded) / env steps, PolicyFlow relative to PPO, on this
  machine, same batch layout and network widths.

The default budget is CPU scale and much smaller than the paper's (4096 envs × 32 steps × 40k iterations);
results at this budget say nothing final about the paper's claim. Run:
``PYTHONPATH=. python benchmarks/policyflow_multigoal.py --seeds 8 --updates 60``.
"""

from __future__ import annotations

import argparse
import math
import time

import jax
import numpy as np

from benchmarks.common import RESULTS, machine, write_json
from purejaxpo.envs import multigoal
from purejaxpo import make_env
from purejaxpo.algorithms import policyflow, ppo


def goal_metrics(first_actions: np.ndarray, final_positions: np.ndarray, num_goals: int, min_mass: float) -> dict:
    """Coverage and normalized goal entropy of ``first_actions [N, 2]``; trajectory coverage of ``[N, 2]`` ends."""
    angles = 2 * np.pi * np.arange(num_goals) / num_goals
    dirs = np.stack([np.cos(angles), np.sin(angles)], axis=-1)  # [G, 2]
    norms = np.linalg.norm(first_actions, axis=-1)
    cos = first_actions @ dirs.T / np.maximum(norms[:, None], 1e-8)  # [N, G]
    nearest = cos.argmax(-1)
    hist = np.bincount(nearest, minlength=num_goals) / len(nearest)
    p = hist[hist > 0]
    strict = (norms >= 3.0) & (cos.max(-1) >= math.cos(math.pi / 6))
    strict_hist = np.bincount(nearest[strict], minlength=num_goals)
    goals = 5.0 * dirs
    end_dist = np.linalg.norm(final_positions[:, None, :] - goals[None], axis=-1)  # [N, G]
    return {
        "coverage": int((hist >= min_mass).sum()),
        "goal_entropy": float(-(p * np.log(p)).sum() / np.log(num_goals)),
        "strict_coverage": int((strict_hist >= min_mass * len(nearest)).sum()),
        "on_axis_fraction": float((cos.max(-1) >= math.cos(math.pi / 12)).mean()),
        "trajectory_coverage": int((end_dist.min(0) <= 1.5).sum()),
        "histogram": hist.round(4).tolist(),
    }


def train(trainer, hp, num_seeds: int):
    keys = jax.random.split(jax.random.key(0), num_seeds)
    start = time.perf_counter()
    compiled = jax.jit(jax.vmap(trainer.train, in_axes=(0, None))).lower(keys, hp).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    state, metrics = jax.block_until_ready(compiled(keys, hp))
    return state, metrics, compile_s, time.perf_counter() - start


def evaluate(trainer, env, params, state, num_seeds: int, num_traj: int):
    def one(seed_state, key):
        return multigoal.rollout(env, params, key, lambda k, obs: trainer.act(seed_state, obs, k), num_traj, 50)

    keys = jax.random.split(jax.random.key(1), num_seeds)
    positions, dones, actions = jax.jit(jax.vmap(one))(state, keys)
    return np.asarray(positions), np.asarray(dones), np.asarray(actions)


def final_positions(positions: np.ndarray, dones: np.ndarray) -> np.ndarray:
    """End of each trajectory's first episode: ``positions [T+1, N, 2]``, ``dones [T, N]`` → ``[N, 2]``."""
    steps = np.where(dones.any(0), dones.argmax(0) + 1, positions.shape[0] - 1)
    return positions[steps, np.arange(positions.shape[1])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--updates", type=int, default=60)
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--num-steps", type=int, default=32)
    parser.add_argument("--flow-steps", type=int, default=10)
    parser.add_argument("--trajectories", type=int, default=1000)
    parser.add_argument("--min-mass", type=float, default=0.02)
    args = parser.parse_args()

    env, params = make_env("MultiGoal-v0")
    total = args.num_envs * args.num_steps * args.updates
    hidden = (64, 64)
    flow_cfg = policyflow.PolicyFlowConfig(
        num_envs=args.num_envs, num_steps=args.num_steps, total_timesteps=total, hidden_sizes=hidden,
        critic_hidden_sizes=hidden, emb_dim=32, num_flow_steps=args.flow_steps,
    )
    flow_hp = policyflow.PolicyFlowHParams(lr=1e-3)
    ppo_cfg = ppo.PPOConfig(
        num_envs=args.num_envs, num_steps=args.num_steps, total_timesteps=total, update_epochs=5, num_minibatches=4,
        hidden_sizes=hidden, anneal_lr=False, action_bounds="clip", init_log_std=0.0,
    )
    ppo_hp = ppo.PPOHParams(lr=1e-3, ent_coef=1e-3, vf_coef=1.0, max_grad_norm=1.0)
    results = {"machine": machine(), "budget": {"env_steps_per_seed": total, "num_seeds": args.seeds,
               "num_envs": args.num_envs, "num_steps": args.num_steps, "updates": args.updates,
               "flow_steps": args.flow_steps, "hidden": hidden}, "algorithms": {}}
    for name, trainer, hp in (
        ("policyflow", policyflow.make_train(flow_cfg, env, params), flow_hp),
        ("ppo", ppo.make_train(ppo_cfg, env, params), ppo_hp),
    ):
        state, metrics, compile_s, run_s = train(trainer, hp, args.seeds)
        positions, dones, actions = evaluate(trainer, env, params, state, args.seeds, args.trajectories)
        returns = np.asarray(metrics["episode_return"])
        last = max(1, args.updates // 10)
        per_seed = []
        for s in range(args.seeds):
            m = goal_metrics(actions[s, 0], final_positions(positions[s], dones[s]), 6, args.min_mass)
            m["final_return"] = float(np.nanmean(returns[s, -last:]))
            per_seed.append(m)
        summary = {
            key: [float(np.mean([m[key] for m in per_seed])), float(np.std([m[key] for m in per_seed]))]
            for key in ("coverage", "goal_entropy", "strict_coverage", "on_axis_fraction", "trajectory_coverage", "final_return")
        }
        results["algorithms"][name] = {
            "compile_s": round(compile_s, 2), "run_s": round(run_s, 2),
            "s_per_env_step": run_s / (total * args.seeds), "summary_mean_std": summary, "per_seed": per_seed,
        }
        multigoal.render(
            positions[0][:, :200], RESULTS / f"policyflow_multigoal_{name}.png", dones=dones[0][:, :200],
            params=params, first_actions=actions[0, 0], title=f"{name}, seed 0 (200 of {args.trajectories} paths)",
        )
        print(name, f"compile {compile_s:.1f}s run {run_s:.1f}s", summary, flush=True)
    algos = results["algorithms"]
    results["policyflow_cost_per_step_vs_ppo"] = algos["policyflow"]["s_per_env_step"] / algos["ppo"]["s_per_env_step"]
    print("cost ratio", results["policyflow_cost_per_step_vs_ppo"])
    print(write_json("policyflow_multigoal.json", results))


if __name__ == "__main__":
    main()
