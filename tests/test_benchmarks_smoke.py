"""The benchmark scripts run end to end at a tiny size (no timing is asserted: numbers live in results/)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
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


def test_mean_ci_and_welch_against_scipy():
    """95% CI of the mean with Student t (n − 1 dof), Welch's test as scipy's, a NaN seed kept and counted as
    missing (never dropped silently)."""
    import numpy as np
    from scipy import stats

    from benchmarks.stats import mean_ci, welch

    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0, 10.0]
    summary = mean_ci(a)
    half = stats.t.ppf(0.975, 3) * np.std(a, ddof=1) / 2.0
    assert summary["mean"] == 2.5 and summary["n"] == 4 and summary["per_seed"] == a
    np.testing.assert_allclose(summary["ci95"], [2.5 - half, 2.5 + half])
    test = welch(a, b)
    reference = stats.ttest_ind(a, b, equal_var=False)
    np.testing.assert_allclose([test["t"], test["p"]], [reference.statistic, reference.pvalue])
    assert test["diff"] == -3.5 and test["diff_ci95"][0] < -3.5 < test["diff_ci95"][1]
    with_nan = mean_ci([1.0, float("nan"), 3.0])
    assert with_nan["n"] == 2 and with_nan["missing"] == 1 and with_nan["mean"] == 2.0 and with_nan["per_seed"] == [1.0, None, 3.0]
    assert welch([1.0, float("nan"), 3.0], b)["n_a"] == 2
    nothing = mean_ci([float("nan")] * 3)
    assert nothing["n"] == 0 and nothing["missing"] == 3 and nothing["mean"] is None and nothing["ci95"] is None


def test_reproduction_scripts_run_at_a_tiny_size(tmp_path):
    """PDPPO (reference option set) on lot sizing, P3O vs GAE-PPO, MDPO vs PPO: each writes its comparison."""
    proc = run_module("benchmarks.pdppo_lot_sizing", "--options", "reference", "--settings", "15items_5machines_t100_i100",
                      "--total-timesteps", "800", "--num-seeds", "2", "--log-every", "400", "--results-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    cell = json.loads((tmp_path / "pdppo_lot_sizing.json").read_text())["runs"]["15items_5machines_t100_i100"]["reference"]
    assert set(cell["methods"]) == {"pdppo", "ppo"} and len(cell["methods"]["pdppo"]["metrics"]["final"]["per_seed"]) == 2
    assert {"final", "auc", "max"} == set(cell["pdppo_minus_ppo"])
    proc = run_module("benchmarks.p3o_pairwise", "--envs", "CartPole-v1", "--methods", "ppo_gae", "p3o", "--total-timesteps",
                      "2048", "--num-seeds", "2", "--results-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    p3o = json.loads((tmp_path / "p3o_pairwise.json").read_text())
    assert set(p3o["runs"]["CartPole-v1"]) == {"ppo_gae", "p3o"} and "ppo_gae" in p3o["vs_p3o"]["CartPole-v1"]
    proc = run_module("benchmarks.mdpo_continuous", "--on-tasks", "Pendulum-v1", "--on-steps", "4096", "--on-methods", "mdpo",
                      "ppo", "--seeds", "2", "--results-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    mdpo = json.loads((tmp_path / "mdpo_continuous.json").read_text())
    run = mdpo["runs"]["on"]["Pendulum-v1"]["mdpo"]
    assert len(run["eval"]["per_seed"]) == 2 and "mdpo - ppo" in mdpo["compare"]["on/Pendulum-v1"]


def test_subpo_coverage_merge_unites_agents_and_recomputes_the_tests(tmp_path):
    """Two partial runs (M alone; NM and SRL) merge into one file whose Welch tests span both."""
    from benchmarks import subpo_coverage

    def payload(agents):
        rows = {label: {"eval_F_mean_per_run": values, "curves_per_run": {"episode_objective": [values, values]}}
                for label, values in agents.items()}
        world = {"runs": "3 seeds", "agents": rows, "random": {"mean": {"mean": 1.0}}, "greedy_oracle_F": {"mean": 9.0}}
        return {"settings": {}, "total_wall_s": 1.0, "worlds": {"steiner": world}}

    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(payload({"M": [1.0, 2.0, 3.0]})))
    second.write_text(json.dumps(payload({"NM": [4.0, 5.0, 6.5], "SRL": [1.0, 1.5, 2.0]})))
    merged = subpo_coverage.merge([str(first), str(second)], str(tmp_path / "merged.json"))
    world = merged["worlds"]["steiner"]
    assert sorted(world["agents"]) == ["M", "NM", "SRL"]
    assert {"M vs SRL", "NM vs SRL", "NM vs M"} <= set(world["welch_final_eval_mean_F"])
    assert world["welch_final_eval_mean_F"]["NM vs M"]["diff"] == pytest.approx(5.1667 - 2.0, abs=1e-3)
    assert merged["status"].startswith("partial") and "M (actor-critic)" in merged["status"]
    assert json.loads((tmp_path / "merged.json").read_text())["worlds"]["steiner"]["agents"]["NM"]
    assert (tmp_path / "merged_curves.png").stat().st_size > 0


def test_subpo_coverage_runs_at_a_tiny_size_and_draws(tmp_path):
    """Two agents on one world, 2 runs × 2 updates: the JSON holds both agents and their comparison; both figures."""
    from benchmarks import subpo_coverage

    out = tmp_path / "tiny"
    subpo_coverage.main(["--worlds", "steiner", "--agents", "NM,SRL", "--runs", "2", "--runs-per-batch", "2",
                         "--num-envs", "8", "--updates", "2", "--eval-episodes", "8", "--out", str(out)])
    world = json.loads((tmp_path / "tiny.json").read_text())["worlds"]["steiner"]
    assert sorted(world["agents"]) == ["NM", "SRL"] and "NM vs SRL" in world["welch_final_eval_mean_F"]
    assert len(world["agents"]["NM"]["eval_F_mean_per_run"]) == 2
    assert (tmp_path / "tiny_curves.png").stat().st_size > 0 and (tmp_path / "tiny_maps.png").stat().st_size > 0


def test_policyflow_multigoal_restat_recomputes_the_comparisons_and_draws_every_seed(tmp_path):
    """``--restat`` on a saved result: Welch tests of every compared metric from the per-seed values, per-seed
    curves drawn (a diverged seed included), nothing trained."""
    from benchmarks.policyflow_multigoal import COMPARED
    from benchmarks.stats import mean_ci, welch

    rng = np.random.default_rng(0)

    def row(reach, goals):
        per_seed = [{"reach_rate": r, "goals_reached": g, "angle_entropy": 0.5 + 0.1 * g, "aim_fraction": 0.5}
                    for r, g in zip(reach, goals)]
        curves = rng.normal(3.0, 1.0, (len(reach), 6))
        curves[0, 3:] = -1e4  # a diverged seed
        return {"per_seed": per_seed, "final_train_return": mean_ci(curves[:, -1]), "return_curve_per_seed": curves.tolist(),
                "env_steps": 6 * 256 * len(reach)}

    rows = {"policyflow": row([0.9, 0.8, 0.95], [5, 3, 4]), "gaussian_ppo": row([0.3, 0.9, 0.0], [1, 1, 0])}
    path = tmp_path / "pf.json"
    path.write_text(json.dumps({"algorithms": rows}))
    proc = run_module("benchmarks.policyflow_multigoal", "--restat", str(path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(path.read_text())["welch_vs_gaussian_ppo"]
    assert set(out) == {"policyflow"} and set(out["policyflow"]) == {*COMPARED, "final_train_return"}
    expected = welch([5, 3, 4], [1, 1, 0])
    assert out["policyflow"]["goals_reached"]["t"] == pytest.approx(expected["t"]) and expected["p"] < 0.05
    assert out["policyflow"]["goals_reached"]["p"] == pytest.approx(expected["p"])
    assert (tmp_path / "pf_curves.png").stat().st_size > 0


def test_hyperpp_minatar_merge_unites_agents_run_apart(tmp_path):
    """Agents of one game run in two invocations: one JSON with both, Welch recomputed, the missing agent named."""
    from benchmarks.stats import mean_ci, welch

    def row(agent, finals):
        curve = np.linspace(0.0, 1.0, 4)
        return {"agent": agent, "env": "Breakout-MinAtar", "final_return": mean_ci(finals), "env_steps_per_seed": 4096,
                "curves_mean": {k: curve.tolist() for k in ("episode_return", "embedding_norm", "approx_kl", "clip_fraction")},
                "curves_per_seed": {k: [curve.tolist()] * len(finals) for k in ("episode_return", "embedding_norm")}}

    def payload(rows):
        return {"settings": {}, "random_return": {"Breakout-MinAtar": 0.4}, "note": "test", "total_wall_s": 1.0, "results": rows}

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(payload([row("hyperpp", [12.0, 10.0, 14.0])])))
    b.write_text(json.dumps(payload([row("euclidean", [8.0, 9.0, 7.5])])))
    proc = run_module("benchmarks.hyperpp_minatar", "--merge", str(a), str(b), "--out", str(tmp_path / "merged"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert sorted(r["agent"] for r in merged["results"]) == ["euclidean", "hyperpp"]
    test = merged["welch_final_return"]["Breakout-MinAtar"]
    assert list(test) == ["hyperpp vs euclidean"]
    assert test["hyperpp vs euclidean"]["p"] == pytest.approx(welch([12.0, 10.0, 14.0], [8.0, 9.0, 7.5])["p"])
    assert merged["status"] == "partial: not run Breakout-MinAtar: hyper_srym"
    assert (tmp_path / "merged.png").stat().st_size > 0
