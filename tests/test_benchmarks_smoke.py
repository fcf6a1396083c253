"""The benchmark scripts run end to end at a tiny size (no timing is asserted: numbers live in results/)."""

import importlib.util
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


def test_env_throughput_quick_covers_the_adapters(tmp_path):
    out = tmp_path / "env.json"
    envs = ["LotSizing-v0", "navix/Navix-Empty-5x5-v0", "jumanji/Maze-v0"]
    proc = run_module("benchmarks.env_throughput", "--quick", "--envs", *envs, "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    rows = {r["env"]: r for r in result["results"]}
    assert result["quick"] and list(rows) == envs
    for name, row in rows.items():
        installed = importlib.util.find_spec(name.split("/")[0]) is not None if "/" in name else True
        if installed:
            assert row["num_envs"] == 8 and row["num_steps"] == 16 and row["env_steps_per_s"] > 0
        else:
            assert "pip install" in row["skipped"]


def test_env_throughput_records_a_missing_suite_as_skipped(tmp_path, monkeypatch):
    from benchmarks import env_throughput
    from purejaxpo import adapters

    monkeypatch.setattr(adapters, "is_installed", lambda suite: False)
    out = tmp_path / "env.json"
    env_throughput.main(["--quick", "--envs", "navix/Navix-Empty-5x5-v0", "craftax/Craftax-Symbolic-v1", "--out", str(out)])
    rows = json.loads(out.read_text())["results"]
    assert [r["skipped"] for r in rows] == [
        'navix not installed (pip install "purejaxpo[navix]")', 'craftax not installed (pip install "purejaxpo[craftax]")'
    ]


def test_polychromic_minigrid_quick(tmp_path):
    pytest.importorskip("navix")
    out = tmp_path / "poly.json"
    proc = run_module("benchmarks.polychromic_minigrid", "--quick", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())["results"]
    for agent in ("gae", "polychromic"):
        summary = result[agent]["summary"]
        assert summary["pass@1"]["n"] == 2 and 0.0 <= summary["pass@1"]["mean"] <= summary["pass@8"]["mean"] <= 1.0
    assert set(result["welch_polychromic_vs_gae"]) >= {"pass@1", "pass@8", "final_train_return"}
