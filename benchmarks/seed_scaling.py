"""Throughput and peak memory as vmapped seeds grow 1 → 4096 (PPO, CartPole-v1, PureJaxRL defaults).

    python -m benchmarks.seed_scaling     # → results/seed_scaling.json and results/seed_scaling.png

Each seed count runs in a fresh subprocess so its peak RSS (and, on GPU, peak device memory) is its own.
Every count trains ``--updates`` updates per seed (throughput is per-update cost; compile time apart).
``--modes auto,none`` runs each count twice: the runner's default seed batching (``auto``: 64 seeds per
vmapped batch on CPU, one wide vmap on GPU) and one wide vmap (``none``); see :mod:`purejaxpo.batching`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.common import RESULTS, machine, write_json

CHILD = """
import json, resource, sys, warnings
warnings.simplefilter("ignore")
import jax
from benchmarks.common import time_ppo
from purejaxpo.cli import parse_seeds_per_batch
mode = sys.argv[3]
row = time_ppo(int(sys.argv[1]), int(sys.argv[2]) * 512, seeds_per_batch=parse_seeds_per_batch(mode))
row["mode"] = mode
row["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
stats = jax.devices()[0].memory_stats() or {}
if "peak_bytes_in_use" in stats:
    row["peak_device_gib"] = stats["peak_bytes_in_use"] / 2**30
print(json.dumps(row))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,4,16,64,256,1024,4096")
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--modes", default="auto", help="comma list of seeds_per_batch values: auto, none or K")
    parser.add_argument("--out", default="seed_scaling", help="file stem under benchmarks/results/ (.json and .png)")
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    rows = []
    for mode, num_seeds in [(m, n) for m in args.modes.split(",") for n in args.seeds.split(",")]:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, num_seeds, str(args.updates), mode], capture_output=True, text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}, cwd=root,
        )
        if proc.returncode:
            print(proc.stderr[-2000:], file=sys.stderr)
            rows.append({"num_seeds": int(num_seeds), "mode": mode, "error": proc.stderr.strip().splitlines()[-1]})
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{mode:>5s} {int(num_seeds):5d} seeds: {row['env_steps_per_s']:>12,.0f} env-steps/s  compile {row['compile_s']:.1f} s  "
              f"peak RSS {row['peak_rss_gib']:.2f} GiB", flush=True)
    write_json(f"{args.out}.json", {"benchmark": "seed_scaling", "env": "CartPole-v1", "updates_per_seed": args.updates, "machine": machine(), "rows": rows})
    ok = [r for r in rows if "error" not in r]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for mode in args.modes.split(","):
        mine = [r for r in ok if r.get("mode", "auto") == mode]
        seeds = [r["num_seeds"] for r in mine]
        label = {"auto": "seeds_per_batch=auto", "none": "one wide vmap"}.get(mode, f"seeds_per_batch={mode}")
        ax1.plot(seeds, [r["env_steps_per_s"] for r in mine], marker="o", label=label)
        ax2.plot(seeds, [r["peak_rss_gib"] for r in mine], marker="o", label=f"peak RSS, {label}")
        if any("peak_device_gib" in r for r in mine):
            ax2.plot(seeds, [r.get("peak_device_gib", float("nan")) for r in mine], marker="s", label=f"peak device memory, {label}")
    ax1.set(xscale="log", xlabel="vmapped seeds", ylabel="aggregate env-steps/s", title="PPO CartPole-v1 throughput")
    ax1.legend()
    ax2.set(xscale="log", xlabel="vmapped seeds", ylabel="GiB", title="peak memory")
    ax2.legend()
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.suptitle(f"{machine()['device_kind']} ({machine()['backend']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{args.out}.png", dpi=110)
    print(f"wrote {RESULTS / args.out}.json and .png")


if __name__ == "__main__":
    main()
