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


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "purejaxpo", *args], capture_output=True, text=True, env=env, timeout=600)


def test_train_writes_every_output_and_resumes(tmp_path):
    out = tmp_path / "run"
    proc = cli("train", "ppo", "--env", "CartPole-v1", *TINY, "--sweep", "lr=1e-3,3e-4", "--out", str(out), "--checkpoint-every", "4",
               "--seeds-per-batch", "3")  # 2 settings x 2 seeds: batches of 3 and 1
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {"config.json", "metrics.csv", "curves.png", "summary.json", "checkpoints"} <= {p.name for p in out.iterdir()}
    summary = json.loads((out / "summary.json").read_text())
    for key in ("algo", "env", "num_seeds", "total_timesteps", "compile_s", "run_s", "env_steps_per_s", "final_return", "eval_return", "sweep"):
        assert key in summary, key
    assert set(summary["final_return"]) == {"mean", "median", "min", "max", "per_seed"}
    assert summary["total_timesteps"] == 512 and len(summary["sweep"]) == 2
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["hidden_sizes"] == [16, 16] and "jax" in config["versions"] and config["device_kind"]
    assert "final return" in proc.stdout
    resumed = cli("train", "ppo", "--env", "CartPole-v1", "--resume", str(out), "--no-progress", "--eval-episodes", "2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["final_return"]["per_seed"] == summary["final_return"]["per_seed"]


def test_list_shows_algorithms_fields_and_envs():
    proc = cli("list")
    assert proc.returncode == 0
    assert "ppo" in proc.stdout and "clip_eps=0.2" in proc.stdout and "CartPole-v1" in proc.stdout and "brax/hopper" in proc.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "pop", "--env", "CartPole-v1"], "Did you mean: ppo"),
        (["train", "ppo", "--env", "CartPoll-v1"], "unknown environment"),
        (["train", "ppo", "--env", "CartPole-v1", "--set", "learning_rate=0.1"], "unknown key 'learning_rate'"),
        (["train", "ppo", "--env", "CartPole-v1", "--set", "lr=fast"], "lr takes a float"),
        (["train", "ppo", "--env", "CartPole-v1", "--set", "lr=-0.1"], "lr must be >= 0"),
        (["train", "ppo", "--env", "CartPole-v1", "--set", "num_envs=2.5"], "num_envs takes a int"),
        (["train", "ppo", "--env", "CartPole-v1", "--total-timesteps", "-5"], "must be positive"),
        (["train", "ppo", "--env", "CartPole-v1", "--sweep", "num_envs=4,8"], "cannot be swept"),
        (["train", "ppo", "--env", "CartPole-v1", "--set", "num_minibatches=3"], "does not divide"),
        (["train", "ppo", "--env", "CartPole-v1", "--resume", "/nonexistent/run"], "no config.json"),
        (["train", "ppo", "--env", "Pendulum-v1", "--set", "torso=cnn"], "H, W, C"),
        (["train", "pdppo", "--env", "Pendulum-v1"], "supports discrete, multi_discrete actions, but this env's action space is continuous"),
    ],
)
def test_bad_input_is_a_clear_error(args, message, capsys):
    assert main(args) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-2", "fast"])
def test_bad_seeds_per_batch_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "ppo", "--env", "CartPole-v1", "--seeds-per-batch", value])
    assert exc.value.code == 2 and "--seeds-per-batch" in capsys.readouterr().err


def test_resume_from_corrupt_directory(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"algo": "ppo", "env": "CartPole-v1", "config": {}, "hparams": [{}], "num_seeds": 1, "seed": 0}))
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "7").mkdir()
    assert main(["train", "ppo", "--env", "CartPole-v1", "--resume", str(out), "--no-progress"]) == 2
    assert "checkpoint" in capsys.readouterr().err


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
