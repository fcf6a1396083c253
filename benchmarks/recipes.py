"""The README's recipe table: every algorithm on its home env with its defaults or its ``cpu-small`` preset.

Each row runs the exact command shown in the README (``purejaxpo train ...`` in a subprocess), times it
(wall clock, Python start-up and compile included, with the 1-minute load average before and after: the
machine is shared) and reads the run's ``summary.json``: the evaluation return (after training,
``--eval-episodes`` stochastic episodes per seed) per seed, its mean and 95% interval (Student t over
seeds), next to a uniformly random policy's return on the same env (:mod:`purejaxpo.baselines`, 256
episodes). Rows are appended to ``benchmarks/results/recipes.json`` as they finish (a killed job keeps
what it finished); ``--only ppo,sac`` reruns some rows and keeps the others.

    python -m benchmarks.recipes            # every row, ~20-30 minutes on 2 shared CPU cores
    python -m benchmarks.recipes --only mdpo,sac
    python -m benchmarks.recipes --table-only   # recipes.md from recipes.json (the README pastes it)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, machine
from benchmarks.stats import mean_ci

OUT = RESULTS / "recipes.json"
# (row name, algorithm, env, extra arguments): the command is `purejaxpo train ALGO [--env ENV] EXTRA --out DIR`
RECIPES: list[tuple[str, str, str, list[str]]] = [
    ("ppo", "ppo", "CartPole-v1", ["--env", "CartPole-v1", "--num-seeds", "8"]),
    ("ppo (pendulum)", "ppo", "Pendulum-v1", ["--preset", "pendulum", "--num-seeds", "4"]),
    ("pdppo", "pdppo", "LotSizing-v0", ["--preset", "cpu-small", "--num-seeds", "4"]),
    ("policyflow", "policyflow", "MultiGoal-v0", ["--preset", "cpu-small", "--num-seeds", "4"]),
    ("hyperpp", "hyperpp", "Breakout-MinAtar", ["--preset", "cpu-small", "--num-seeds", "4"]),
    ("hyper_srym", "hyper_srym", "Breakout-MinAtar", ["--preset", "cpu-small", "--num-seeds", "4"]),
    ("ppo_impala", "ppo_impala", "Breakout-MinAtar", ["--preset", "cpu-small", "--num-seeds", "4"]),
    ("mdpo", "mdpo", "Pendulum-v1", ["--preset", "cpu-small", "--num-seeds", "4"]),
    ("mdpo_off", "mdpo_off", "Pendulum-v1", ["--preset", "cpu-small", "--num-seeds", "4"]),
    ("sac", "sac", "Pendulum-v1", ["--preset", "cpu-small", "--num-seeds", "4"]),
    ("subpo", "subpo", "Coverage-v0", ["--preset", "cpu-small", "--num-seeds", "4"]),
]
def command(algo: str, extra: list[str]) -> list[str]:
    """The command as the README shows it (``--out`` added by the caller)."""
    return ["purejaxpo", "train", algo, *extra]


def run_row(name: str, algo: str, env: str, extra: list[str], workdir: Path) -> dict[str, Any]:
    out = workdir / name.replace(" ", "_").replace("(", "").replace(")", "")
    cmd = command(algo, extra)
    load_before = round(os.getloadavg()[0], 2)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "purejaxpo", *cmd[1:], "--out", str(out), "--no-progress"],
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    row: dict[str, Any] = {"name": name, "algo": algo, "env": env, "command": shlex.join(cmd), "wall_s": round(wall, 1),
                           "load_average_1min": [load_before, round(os.getloadavg()[0], 2)], "returncode": proc.returncode}
    if proc.returncode != 0:
        row["error"] = proc.stderr.strip().splitlines()[-1:] if proc.stderr.strip() else ["(no stderr)"]
        return row
    summary = json.loads((out / "summary.json").read_text())
    # every seed counts: one without a value (None) stays in per_seed and in "missing"
    evals = [float("nan") if v is None else v for v in summary["eval_return"]["per_seed"]]
    finals = [float("nan") if v is None else v for v in summary["final_return"]["per_seed"]]
    row.update({
        "num_seeds": summary["num_seeds"], "total_timesteps": summary["total_timesteps"],
        "compile_s": summary["compile_s"], "run_s": summary["run_s"], "env_steps_per_s": summary["env_steps_per_s"],
        "eval_return": mean_ci(evals), "final_return": mean_ci(finals),
    })
    return row


def number(x: float) -> str:
    """A return for the table: whole numbers from 100 up, 1 decimal from 10, 2 below (no exponents)."""
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"


def markdown(rows: list[dict[str, Any]]) -> str:
    """The README table: one line per row."""
    lines = ["| algorithm | home env | command | wall time (load) | eval return, mean ± 95% CI (seeds) | random policy |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("returncode") != 0:
            lines.append(f"| `{r['name']}` | {r['env']} | `{r['command']}` | failed | {r.get('error')} | |")
            continue
        ev, rnd = r["eval_return"], r["random_return"]
        load = "–".join(f"{x:g}" for x in r["load_average_1min"])
        lines.append(f"| `{r['name']}` | {r['env']} | `{r['command']}` | {r['wall_s']:.0f} s ({load}) | "
                     f"{number(ev['mean'])} ± {number(ev['ci95_half_width'])} ({r['num_seeds']}) | {number(rnd['mean'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="comma-separated row names to (re)run; the others are kept")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--table-only", action="store_true", help="rewrite the .md table from the JSON, run nothing")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.table_only:
        out.with_suffix(".md").write_text(markdown(json.loads(out.read_text())["rows"]) + "\n")
        return
    only = set(args.only.split(",")) if args.only else None
    payload = json.loads(out.read_text()) if out.exists() else {"rows": []}
    kept = {r["name"]: r for r in payload.get("rows", [])}
    from purejaxpo.atomic import write_json, write_text
    from purejaxpo.baselines import random_return

    randoms: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="recipes-") as tmp:
        for name, algo, env, extra in RECIPES:
            if only is not None and name not in only:
                continue
            print(f"[{time.strftime('%H:%M:%S')}] {name}: {shlex.join(command(algo, extra))}", flush=True)
            row = run_row(name, algo, env, extra, Path(tmp))
            if env not in randoms:
                randoms[env] = random_return(env)
            row["random_return"] = randoms[env]
            kept[name] = row
            order = [n for n, *_ in RECIPES]
            payload = {"machine": machine(), "rows": sorted(kept.values(), key=lambda r: order.index(r["name"]))}
            write_json(out, payload)  # after every row: a killed job keeps what it finished
            write_text(out.with_suffix(".md"), markdown(payload["rows"]) + "\n")
            print(f"  -> {json.dumps({k: row.get(k) for k in ('wall_s', 'eval_return', 'returncode', 'error')})}", flush=True)


if __name__ == "__main__":
    main()
