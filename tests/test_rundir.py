"""Run directories, atomic writes, strict JSON, provenance, memory estimates, settings and summaries:
the pieces of the runner's reliability that need no compilation (each test takes milliseconds)."""

import errno
import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from purejaxpo import atomic, checkpointing, memory, provenance, rundir
from purejaxpo.algorithms.registry import get_algorithm
from purejaxpo.cli import format_summary
from purejaxpo.results import Results
from purejaxpo.settings import UsageError, build_settings

REPO = Path(__file__).resolve().parents[1]


def strict_loads(text: str):
    """``json.loads`` that rejects NaN/Infinity, which Python's json accepts by default."""
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"non-strict JSON constant {name}"))


# -- atomic writes ------------------------------------------------------------------------------------------------


def test_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "metrics.csv"
    atomic.write_text(target, "complete,old\n")

    def half_then_full_disk(tmp):
        tmp.write_text("trunc")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic.write_with(target, half_then_full_disk)
    assert target.read_text() == "complete,old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]
    with pytest.raises(OSError):
        atomic.write_with(tmp_path / "new.csv", half_then_full_disk)
    assert not (tmp_path / "new.csv").exists()  # none, rather than a truncated one


def test_json_is_strict_with_null_for_missing_values(tmp_path):
    atomic.write_json(tmp_path / "s.json", {"a": float("nan"), "b": [np.float32(np.inf), np.float64(1.5)], "c": np.int64(3)})
    assert strict_loads((tmp_path / "s.json").read_text()) == {"a": None, "b": [None, 1.5], "c": 3}


# -- output directories -------------------------------------------------------------------------------------------


def test_non_empty_out_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "run"
    rundir.check_new(out)  # missing: fine
    out.mkdir()
    rundir.check_new(out)  # empty: fine
    (out / "metrics.csv").write_text("precious")
    with pytest.raises(rundir.RunDirError) as err:
        rundir.check_new(out, terms=rundir.CLI_TERMS)
    assert f"--resume {out}" in str(err.value) and "--overwrite" in str(err.value) and "metrics.csv" in str(err.value)
    assert [p.name for p in out.iterdir()] == ["metrics.csv"] and (out / "metrics.csv").read_text() == "precious"
    with pytest.raises(rundir.RunDirError, match="resume=True.*overwrite=True"):
        rundir.check_new(out)
    rundir.check_new(out, overwrite=True)


def test_overwrite_moves_the_old_run_aside(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "summary.json").write_text("old")
    moved = rundir.RunDir(out).create(overwrite=True)
    assert moved.name.startswith("run.old-") and (moved / "summary.json").read_text() == "old"
    assert out.is_dir() and not any(out.iterdir())


def test_out_that_is_a_file_or_not_writable(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(rundir.RunDirError, match="is a file"):
        rundir.check_new(tmp_path / "file", terms=rundir.CLI_TERMS)
    with pytest.raises(rundir.RunDirError, match="is a file"):
        rundir.check_new(tmp_path / "file" / "run")
    if Path("/sys").is_dir():  # sysfs refuses new files even to root
        with pytest.raises(rundir.RunDirError, match="not writable"):
            rundir.check_new("/sys/purejaxpo-run")
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(rundir.RunDirError, match="not writable"):
                rundir.check_new(locked / "run")
        finally:
            locked.chmod(0o700)


def test_damaged_config_json_is_named(tmp_path):
    (tmp_path / "config.json").write_text('{"algo": "ppo", "env": ')
    with pytest.raises(rundir.RunDirError, match=r"config\.json is damaged \(not readable JSON"):
        rundir.read_description(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"algo": "ppo", "env": "CartPole-v1", "config": {}, "hparams": [{}]}))
    with pytest.raises(rundir.RunDirError, match=r"config\.json is damaged: 'num_seeds'"):
        rundir.read_description(tmp_path)
    with pytest.raises(rundir.RunDirError, match="config.json does not exist"):
        rundir.read_description(tmp_path / "..")


# -- checkpoint bookkeeping ---------------------------------------------------------------------------------------


def test_mismatch_names_the_differing_keys():
    found = {"algo": "ppo", "config": {"num_envs": 4, "hidden_sizes": [16, 16]}, "hparams": [{"lr": 1e-3}], "seed": 0}
    expected = {"algo": "ppo", "config": {"num_envs": 8, "hidden_sizes": [16, 16]}, "hparams": [{"lr": 3e-4}], "seed": 0}
    with pytest.raises(checkpointing.CheckpointError) as err:
        checkpointing.check_meta(found, expected)
    message = str(err.value)
    assert "config.num_envs: checkpoint has 4, this run has 8" in message and "hparams[0].lr" in message
    assert "hidden_sizes" not in message and "\n" not in message


def test_unfinished_saves_are_recognised_and_removed(tmp_path):
    (tmp_path / "4.orbax-checkpoint-tmp-1700000000").mkdir()
    assert checkpointing.finished_steps(tmp_path) == [] and not checkpointing.holds_checkpoints(tmp_path)
    (tmp_path / "8").mkdir()
    assert checkpointing.finished_steps(tmp_path) == [8] and checkpointing.holds_checkpoints(tmp_path)
    assert checkpointing.clean_partial(tmp_path) == ["4.orbax-checkpoint-tmp-1700000000"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["8"]


# -- provenance ---------------------------------------------------------------------------------------------------


def test_provenance_names_command_date_commit_and_every_package():
    record = provenance.provenance(["purejaxpo", "train", "ppo", "--env", "CartPole-v1"])
    assert record["command"] == "purejaxpo train ppo --env CartPole-v1"
    assert record["date"].endswith("+00:00")
    for package in ("jax", "jaxlib", "flax", "optax", "chex", "gymnax", "brax", "distrax", "orbax-checkpoint", "numpy"):
        assert record["versions"][package] not in ("", "not installed"), package
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    if head.returncode == 0:  # run from a checkout
        assert record["git"]["commit"] == head.stdout.strip()
    assert provenance.git_commit("/") is None


# -- memory estimate ----------------------------------------------------------------------------------------------


def fake_estimate(**kw):
    base = dict(runs=10**7, runs_at_once=10**7, state_per_run=60_000, rollout_per_run=1_000, metrics_host=10**6, metrics_device=10**4)
    return memory.MemoryEstimate(**{**base, **kw})


def test_memory_check_refuses_and_says_what_to_reduce(monkeypatch):
    monkeypatch.setattr(memory, "host_available", lambda: 8 * memory.GiB)
    cpu = [type("Dev", (), {"platform": "cpu"})()]
    with pytest.raises(memory.InsufficientMemoryError) as err:
        memory.check(fake_estimate(), cpu, batched=False)
    assert "558.8 GiB (10,000,000 runs × 58.6 KiB)" in str(err.value) and "fewer seeds" in str(err.value)
    with pytest.raises(memory.InsufficientMemoryError, match="--seeds-per-batch"):  # rollout buffers dominate
        memory.check(fake_estimate(runs=10**5, runs_at_once=10**5, state_per_run=1_000, rollout_per_run=10**6), cpu, batched=False)
    memory.check(fake_estimate(runs=64, runs_at_once=64), cpu, batched=False)  # fits: no error


def test_tree_bytes_counts_keys_as_their_data():
    import jax

    tree = {"w": jax.ShapeDtypeStruct((3, 4), np.float32), "key": jax.eval_shape(lambda: jax.random.split(jax.random.key(0), 5))}
    assert memory.tree_bytes(tree) == 3 * 4 * 4 + 5 * 8


# -- settings -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sets, sweeps, message",
    [
        ([], ["lr=1e-3", "lr=3e-4"], "--sweep names lr more than once"),
        (["lr=1e-3"], ["lr=3e-4,1e-4"], "lr is given by both --set and --sweep"),
        ([], ["lr=1e-3,0.001"], "repeats a value"),
        (["gamma=0.9", "gamma=0.8"], [], "--set names gamma more than once"),
    ],
)
def test_every_key_is_given_once(sets, sweeps, message):
    with pytest.raises(UsageError, match=message):
        build_settings(get_algorithm("ppo"), sets, sweeps, None)


def test_sweep_labels_stay_unique_past_six_digits():
    _, settings, labels = build_settings(get_algorithm("ppo"), [], ["lr=0.0010000001,0.0010000002"], None)
    assert len(set(labels)) == 2 and [s.lr for s in settings] == [0.0010000001, 0.0010000002]


# -- summaries ----------------------------------------------------------------------------------------------------


def hand_results(updates=10, grid=1, seeds=2, start_update=0, run_s=2.0, finished=True):
    shape = (grid, seeds, updates)
    ret = np.full(shape, 20.0 if finished else np.nan, np.float32)
    metrics = {"episode_return": ret, "episode_count": np.full(shape, 1.0 if finished else 0.0, np.float32),
               "env_steps": np.broadcast_to((np.arange(updates) + 1.0) * 64, shape).astype(np.float32)}
    algorithm = get_algorithm("ppo")
    hps = [algorithm.hparams_cls(lr=lr) for lr in (1e-3, 3e-4, 1e-4)[:grid]]
    return Results("ppo", "CartPole-v1", algorithm.config_cls(), hps, seeds, metrics, None, 1.0, run_s,
                   sweep_labels=[f"lr={h.lr:g}" for h in hps] if grid > 1 else [], start_update=start_update, steps_per_update=64)


def test_summary_is_strict_json_when_no_episode_finished():
    summary = hand_results(finished=False).summary()
    assert math.isnan(summary["final_return"]["mean"])  # the Python value stays a float
    text = atomic.dumps(summary)
    assert strict_loads(text)["final_return"] == {"mean": None, "median": None, "min": None, "max": None, "per_seed": [None, None]}
    assert "n/a" in format_summary(summary, Path("out"))


def test_throughput_after_a_resume_counts_only_the_steps_run():
    fresh, resumed = hand_results(), hand_results(start_update=6)
    assert fresh.summary()["env_steps_per_s"] == 10 * 64 * 2 / 2.0
    assert resumed.summary()["env_steps_run"] == 4 * 64 * 2 and resumed.summary()["env_steps_per_s"] == 4 * 64 * 2 / 2.0
    assert resumed.summary()["total_timesteps"] == 640 and resumed.summary()["resumed_from_update"] == 6
    assert math.isnan(hand_results(start_update=10, run_s=0.0).env_steps_per_s)


def test_sweep_headline_prints_every_setting():
    results = hand_results(grid=3)
    results.metrics["episode_return"][2] = 77.0
    summary = results.summary()
    assert summary["headline_setting"] == {"index": 0, "label": "lr=0.001"}
    text = format_summary(summary, Path("out"))
    for label in ("lr=0.001", "lr=0.0003", "lr=0.0001"):
        assert f"[{label}]" in text
    assert "[lr=0.0001] 77.0" in text and "3 settings × 2 seeds" in text


def test_readme_reliability_section_cites_tests_that_exist():
    import re

    readme = (REPO / "README.md").read_text()
    section = readme.split("## Reliability", 1)[1].split("\n## ", 1)[0]
    cited = re.findall(r"`(test_\w+\.py)::(test_\w+)(…?)`", section)
    assert len(cited) >= 12
    for file, name, prefix in cited:
        source = (REPO / "tests" / file).read_text()
        pattern = rf"^def {name}\w*\(" if prefix else rf"^def {name}\("
        assert re.search(pattern, source, re.M), f"README cites {file}::{name}{prefix}, which does not exist"
    for guarantee in ("No run is overwritten", "Atomic outputs", "Checkpoint fallback", "Interrupts"):
        assert f"**{guarantee}" in section
