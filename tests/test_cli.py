"""The command line end to end (subprocess) and its error messages."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from purejaxpo.algorithms import ppo
from purejaxpo.cli import UsageError, build_settings, main, parse_field_value
from purejaxpo.algorithms.registry import get_algorithm

REPO = Path(__file__).resolve().parents[1]
TINY = ["--set", "num_envs=4", "--set", "num_steps=16", "--set", "num_minibatches=2", "--set", "hidden_sizes=16,16",
        "--total-timesteps", str(4 * 16 * 8), "--num-seeds", "2", "--eval-episodes", "2", "--no-progress"]


def cli(*args: str, cache: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if cache is not None:  # a persistent XLA cache shared by this test's children: compile once
        env.update({"JAX_COMPILATION_CACHE_DIR": str(cache), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"})
    return subprocess.run([sys.executable, "-m", "purejaxpo", *args], capture_output=True, text=True, env=env, timeout=600)


def test_train_writes_every_output_resumes_and_evaluates(tmp_path, capsys):
    out = tmp_path / "run"
    proc = cli("train", "ppo", "--env", "CartPole-v1", *TINY, "--sweep", "lr=1e-3,3e-4", "--out", str(out), "--checkpoint-every", "4",
               "--seeds-per-batch", "3", cache=tmp_path / "jax-cache")  # 2 settings x 2 seeds: batches of 3 and 1
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {"config.json", "status.json", "metrics.csv", "curves.png", "summary.json", "checkpoints"} <= {p.name for p in out.iterdir()}
    text = (out / "summary.json").read_text()
    summary = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))
    for key in ("algo", "env", "num_seeds", "total_timesteps", "compile_s", "run_s", "env_steps_per_s", "final_return", "eval_return",
                "sweep", "provenance"):
        assert key in summary, key
    assert set(summary["final_return"]) == {"mean", "median", "min", "max", "per_seed"}
    assert summary["total_timesteps"] == 512 and len(summary["sweep"]) == 2
    assert summary["provenance"]["command"].startswith("python -m purejaxpo train ppo")
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["hidden_sizes"] == [16, 16] and config["device_kind"]
    assert {"jax", "jaxlib", "flax", "optax", "chex", "gymnax", "brax", "distrax", "orbax-checkpoint", "numpy"} <= set(config["provenance"]["versions"])
    assert json.loads((out / "status.json").read_text())["status"] == "done"
    assert "[lr=0.001]" in proc.stdout and "[lr=0.0003]" in proc.stdout  # every setting of the sweep is printed

    # a rerun into the same --out is refused before anything is written, in CLI terms
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(["train", "ppo", "--env", "CartPole-v1", *TINY, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--resume {out}" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    # --resume with flags that would change the run is refused, naming them
    assert main(["train", "ppo", "--resume", str(out), "--set", "lr=0.1", "--num-seeds", "3", "--total-timesteps", "1024"]) == 2
    assert "--set, --num-seeds, --total-timesteps would change it" in capsys.readouterr().err

    # eval of the saved run reproduces the in-training evaluation (same keys)
    assert main(["eval", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [entry["per_seed"] for entry in report["eval_return"]] == [entry["eval_return"]["per_seed"] for entry in summary["sweep"]]
    assert report["done"] and report["episodes"] == 2

    resumed = cli("train", "ppo", "--env", "CartPole-v1", "--resume", str(out), "--no-progress", cache=tmp_path / "jax-cache")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    again = json.loads((out / "summary.json").read_text())
    assert again["final_return"]["per_seed"] == summary["final_return"]["per_seed"]
    assert again["eval_return"]["per_seed"] == summary["eval_return"]["per_seed"] and again["env_steps_run"] == 0


def test_list_shows_algorithms_fields_and_envs():
    proc = cli("list")
    assert proc.returncode == 0
    assert "ppo" in proc.stdout and "CartPole-v1" in proc.stdout and "brax/hopper" in proc.stdout
    proc = cli("list", "ppo")  # fields with types, defaults and descriptions (tests/test_after_training.py checks more)
    assert proc.returncode == 0 and any(line.split()[:3] == ["clip_eps", "float", "0.2"] for line in proc.stdout.splitlines())


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "pop", "--env", "CartPole-v1"], "Did you mean: ppo"),
        (["train", "ppo", "--env", "CartPoll-v1"], "unknown environment"),
        (["train", "ppo", "--env", "CartPole-v1", "--set", "learning_rate=0.1"], "unknown key 'learning_rate'"),
        (["train", "ppo", "--env", "CartPole-v1", "--set", "lr=fast"], "lr takes a float"),
        (["train", "ppo", "--env", "CartPole-v1", "--set", "lr=-0.1"], "lr must be >= 0"),
        (["train", "ppo", "--env", "CartPole-v1", "--set", "num_envs=2.5"], "num_envs takes a int"),
        (["train", "ppo", "--env", "CartPole-v1", "--sweep", "num_envs=4,8"], "cannot be swept"),
        (["train", "ppo", "--env", "CartPole-v1", "--set", "num_minibatches=3"], "does not divide"),
        (["train", "ppo", "--env", "CartPole-v1", "--resume", "/nonexistent/run"], "not a run directory"),
        (["train", "ppo", "--env", "CartPole-v1", "--sweep", "lr=1e-3", "--sweep", "lr=3e-4"], "--sweep names lr more than once"),
        (["train", "ppo", "--env", "CartPole-v1", "--seed", str(2**64)], "seed must be an integer in [0, 4294967294]"),
        (["train", "ppo", "--env", "CartPole-v1", "--num-seeds", "10000000"], "needs at least"),
        (["train", "ppo", "--env", "CartPole-v1", "--total-timesteps", "1e13"], "update counter is int32"),
        (["train", "ppo", "--env", "CartPole-v1", "--seed-indices", "8"], "seed_indices must be"),
        (["train", "ppo", "--env", "CartPole-v1", "--out", "/sys/purejaxpo-run"], "is not writable"),
        (["train", "ppo", "--env", "CartPole-v1", "--out", __file__], "is a file, not a directory"),
        (["train", "sac", "--env", "Pendulum-v1", "--set", "learning_starts=20000", "--total-timesteps", "10000"],
         "leaves no update after the warm-up: learning_starts=20000"),
        (["train", "ppo", "--env", "Pendulum-v1", "--set", "torso=cnn"], "H, W, C"),
        (["train", "pdppo", "--env", "Pendulum-v1"], "supports discrete, multi_discrete actions, but this env's action space is continuous"),
    ],
)
def test_bad_input_is_a_clear_error(args, message, capsys, monkeypatch):
    from purejaxpo import experiment

    monkeypatch.setattr(experiment, "_train", lambda *a, **k: pytest.fail("reached compilation"))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    "flag, value", [("--seeds-per-batch", "0"), ("--seeds-per-batch", "-2"), ("--seeds-per-batch", "fast"),
                    ("--total-timesteps", "-5"), ("--total-timesteps", "2.5"), ("--num-seeds", "0")],
)
def test_bad_flag_values_are_usage_errors(flag, value, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "ppo", "--env", "CartPole-v1", flag, value])
    assert exc.value.code == 2 and flag in capsys.readouterr().err


def test_resume_from_a_damaged_directory_names_the_file(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text('{"algo": "ppo", "env": "CartPole-v1", "config": {"num_envs"')
    assert main(["train", "ppo", "--resume", str(out), "--no-progress"]) == 2
    assert f"{out / 'config.json'} is damaged" in capsys.readouterr().err
    (out / "config.json").write_text(json.dumps({"algo": "ppo", "env": "CartPole-v1", "config": {"num_envz": 4}, "hparams": [{}],
                                                 "num_seeds": 1, "seed": 0}))
    assert main(["train", "ppo", "--resume", str(out), "--no-progress"]) == 2
    assert "config.json is damaged: unknown PPOConfig field(s) num_envz" in capsys.readouterr().err


def test_unexpected_errors_are_one_line_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    from purejaxpo import experiment

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(experiment, "_train", broken)
    args = ["train", "ppo", "--env", "CartPole-v1", *TINY, "--out", str(tmp_path / "a")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.strip() == "purejaxpo: error: disk on fire; second line (RuntimeError; rerun with --debug for the traceback)"
    status = json.loads((tmp_path / "a" / "status.json").read_text())
    assert status["status"] == "failed" and status["reason"].startswith("RuntimeError: disk on fire")
    with pytest.raises(RuntimeError, match="disk on fire"):
        main(["train", "ppo", "--env", "CartPole-v1", *TINY, "--out", str(tmp_path / "b"), "--debug"])


def test_labels_come_from_the_registry_entry(tmp_path, monkeypatch):
    from purejaxpo import experiment

    monkeypatch.setattr(experiment, "_train", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("stop")))
    small = ["--set", "encoder=mlp", "--set", "hidden_sizes=16", "--set", "num_envs=4", "--set", "num_steps=16",
             "--set", "num_minibatches=2", "--total-timesteps", "128", "--no-progress"]
    for name in ("hyper_srym", "ppo_impala"):
        assert main(["train", name, "--env", "CartPole-v1", *small, "--out", str(tmp_path / name)]) == 1
        assert json.loads((tmp_path / name / "config.json").read_text())["algo"] == name


def test_field_parsing():
    algorithm = get_algorithm("ppo")
    assert parse_field_value(ppo.PPOConfig, "hidden_sizes", "32, 32") == (32, 32)
    assert parse_field_value(ppo.PPOConfig, "normalize_obs", "true") is True
    assert parse_field_value(ppo.PPOConfig, "action_bounds", "none") is None
    assert parse_field_value(ppo.PPOConfig, "init_log_std", "-0.5") == -0.5
    with pytest.raises(UsageError, match="bool"):
        parse_field_value(ppo.PPOConfig, "anneal_lr", "maybe")
    config, settings, labels = build_settings(algorithm, ["gamma=0.9"], ["lr=1e-3,1e-4", "ent_coef=0,0.01"], None)
    assert len(settings) == 4 and all(s.gamma == 0.9 for s in settings) and labels[0] == "lr=0.001, ent_coef=0"
