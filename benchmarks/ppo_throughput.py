"""PPO throughput on CartPole-v1 with PureJaxRL's default configuration, for 1…1024 vmapped seeds.

    python -m benchmarks.ppo_throughput            # writes benchmarks/results/ppo_throughput.json

4 envs × 128 steps, 4 epochs × 4 minibatches, 64-64 tanh. Seed counts up to ``--full-budget-max-seeds``
train the full 5e5 steps per seed; larger counts train ``--updates-large`` updates per seed (the per-update
cost is what throughput measures; the JSON says which budget each row used). Compile seconds are
reported apart from run seconds.
"""

from __future__ import annotations

import argparse

from benchmarks.common import machine, time_ppo, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,8,64,256,1024")
    parser.add_argument("--total-timesteps", type=int, default=500_000)
    parser.add_argument("--full-budget-max-seeds", type=int, default=8)
    parser.add_argument("--updates-large", type=int, default=20)
    parser.add_argument("--out", default="ppo_throughput.json")
    args = parser.parse_args()
    rows = []
    for num_seeds in (int(s) for s in args.seeds.split(",")):
        budget = args.total_timesteps if num_seeds <= args.full_budget_max_seeds else args.updates_large * 512
        row = time_ppo(num_seeds, budget)
        rows.append(row)
        print(f"{num_seeds:5d} seeds: compile {row['compile_s']:6.2f} s  run {row['run_s']:7.2f} s  "
              f"{row['env_steps_per_s']:>12,.0f} env-steps/s  ({row['num_updates']} updates/seed)", flush=True)
    path = write_json(args.out, {"benchmark": "ppo_throughput", "env": "CartPole-v1", "machine": machine(), "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
