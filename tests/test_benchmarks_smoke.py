"""The benchmark scripts run end to end at a tiny size (no timing is asserted: numbers live in results/)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=600)


def test_ppo_throughput_script(tmp_path):
    out = tmp_path / "throughput.json"
    proc = run_module("benchmarks.ppo_throughput", "--seeds", "1,2", "--total-timesteps", "1024", "--full-budget-max-seeds", "1", "--updates-large", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert [r["num_seeds"] for r in result["rows"]] == [1, 2]
    assert result["rows"][1]["env_steps"] == 2 * 2 * 512 and result["machine"]["backend"] == "cpu"
    assert all(r["compile_s"] > 0 and r["run_s"] > 0 for r in result["rows"])


def test_limits_script(tmp_path):
    out = tmp_path / "limits.json"
    proc = run_module("benchmarks.limits", "--iterations", "2", "--seeds", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert {"env_only", "acting_only", "training", "update_ceiling"} <= set(rows[0])
    ceiling = rows[0]["update_ceiling"]
    assert ceiling["matmul_gflops_128x64x64"] > 0 and ceiling["ideal_training_env_steps_per_s"] > 0


def test_vs_pytorch_script(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("gymnasium")
    out = tmp_path / "vs.json"
    proc = run_module("benchmarks.vs_pytorch", "--total-timesteps", "1024", "--repeats", "1", "--seeds", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["ratio_single_seed"] > 0 and "extrapolated" in result["pytorch_multi_seed"]


def test_seed_scaling_script_runs_each_mode(tmp_path):
    out = tmp_path / "scaling"
    proc = run_module("benchmarks.seed_scaling", "--seeds", "2", "--updates", "1", "--modes", "none,1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert [(r["mode"], r["seeds_per_batch"]) for r in rows] == [("none", None), ("1", 1)]
    assert rows[0]["final_return_mean"] == pytest.approx(rows[1]["final_return_mean"], rel=1e-4)  # same seeds, same runs
    assert out.with_suffix(".png").stat().st_size > 10_000
