"""The runner: sweep shapes, resume bit-identical, sharded == unsharded, bad input, bounded memory."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from purejaxpo import experiment
from purejaxpo.algorithms import ppo
from purejaxpo.checkpointing import CheckpointError

CONFIG = ppo.PPOConfig(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 12, update_epochs=2, num_minibatches=2, hidden_sizes=(16, 16))
REPO = Path(__file__).resolve().parents[1]


def test_sweep_shapes_dataframe_summary_and_plot(tmp_path):
    settings = [ppo.PPOHParams(lr=lr) for lr in (1e-4, 1e-3, 3e-3)]
    results = experiment.run("ppo", "CartPole-v1", num_seeds=2, config=CONFIG, hparams=settings, progress=False, eval_episodes=2)
    assert results.metrics["episode_return"].shape == (3, 2, 12)
    df = results.dataframe()
    assert len(df) == 3 * 2 * 12 and {"hparam", "seed", "update", "env_steps", "policy_loss"} <= set(df.columns)
    assert df["env_steps"].max() == 12 * 64
    summary = results.summary()
    assert summary["total_timesteps"] == 768 and len(summary["sweep"]) == 3
    assert len(summary["final_return"]["per_seed"]) == 2 and results.eval_returns.shape == (3, 2)
    assert summary["sweep"][0]["label"] == "lr=0.0001"
    results.plot(path=tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_final_return_weights_episodes_in_last_5_percent():
    results = experiment.run("ppo", "CartPole-v1", num_seeds=2, config=CONFIG, progress=False)
    results.metrics["episode_return"][:] = np.nan
    results.metrics["episode_count"][:] = 0
    results.metrics["episode_return"][0, 0, -1], results.metrics["episode_count"][0, 0, -1] = 10.0, 3
    results.metrics["episode_return"][0, 1, -1], results.metrics["episode_count"][0, 1, -1] = 20.0, 1
    np.testing.assert_allclose(results.final_returns()[0], [10.0, 20.0])


def test_resume_is_bit_identical(tmp_path):
    full = experiment.run("ppo", "CartPole-v1", num_seeds=2, config=CONFIG, progress=False)
    ckpt = tmp_path / "ckpt"
    experiment.run("ppo", "CartPole-v1", num_seeds=2, config=CONFIG, checkpoint_dir=ckpt, checkpoint_every=4, progress=False)
    for step in ("8", "12"):  # pretend the run died after update 4
        shutil.rmtree(ckpt / step)
    resumed = experiment.run(
        "ppo", "CartPole-v1", num_seeds=2, config=CONFIG, checkpoint_dir=ckpt, checkpoint_every=4, resume=True, progress=False
    )
    for name in full.metrics:
        np.testing.assert_array_equal(full.metrics[name], resumed.metrics[name], err_msg=name)
    for a, b in zip(experiment.jax.tree.leaves(full.state.params), experiment.jax.tree.leaves(resumed.state.params)):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint directory"):
        experiment.run("ppo", "CartPole-v1", config=CONFIG, checkpoint_dir=tmp_path / "missing", resume=True, progress=False)
    ckpt = tmp_path / "ckpt"
    experiment.run("ppo", "CartPole-v1", config=CONFIG, checkpoint_dir=ckpt, checkpoint_every=6, progress=False)
    with pytest.raises(CheckpointError, match="already holds checkpoints"):
        experiment.run("ppo", "CartPole-v1", config=CONFIG, checkpoint_dir=ckpt, checkpoint_every=6, progress=False)
    with pytest.raises(CheckpointError, match="different run(.|\n)*lr"):
        experiment.run("ppo", "CartPole-v1", config=CONFIG, hparams=ppo.PPOHParams(lr=1.0), checkpoint_dir=ckpt, resume=True, progress=False)
    for path in ckpt.rglob("*"):  # corrupt every stored file
        if path.is_file():
            path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError):
        experiment.run("ppo", "CartPole-v1", config=CONFIG, checkpoint_dir=ckpt, resume=True, progress=False)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(algo="pppo"), ValueError, r"Did you mean: (\w+, )*ppo\b"),
        (dict(env="CartPole-v9"), ValueError, "unknown environment"),
        (dict(num_seeds=0), ValueError, "num_seeds"),
        (dict(checkpoint_every=5), ValueError, "need a checkpoint_dir"),
        (dict(hparams=[]), ValueError, "empty"),
        (dict(hparams="lr=1"), TypeError, "PPOHParams"),
    ],
)
def test_run_bad_input(kwargs, error, message):
    args = {"algo": "ppo", "env": "CartPole-v1", "config": CONFIG, "progress": False, **kwargs}
    with pytest.raises(error, match=message):
        experiment.run(args.pop("algo"), args.pop("env"), **args)


def run_python(code: str, env_extra: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env_extra or {})}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=timeout)


def test_sharded_over_4_devices_equals_single_device():
    code = """
        import json, jax, numpy as np, warnings
        warnings.simplefilter("ignore")
        from purejaxpo import experiment
        from purejaxpo.algorithms import ppo
        config = ppo.PPOConfig(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 6, update_epochs=2, num_minibatches=2, hidden_sizes=(16, 16))
        assert jax.device_count() == 4, jax.devices()
        sharded = experiment.run("ppo", "CartPole-v1", num_seeds=4, config=config, progress=False)
        single = experiment.run("ppo", "CartPole-v1", num_seeds=4, config=config, progress=False, devices=jax.devices()[:1])
        shard_spec = str(jax.tree.leaves(sharded.state.params)[0].sharding)
        diff = max(float(np.nanmax(np.abs(sharded.metrics[k] - single.metrics[k]))) for k in sharded.metrics)
        print(json.dumps({"diff": diff, "sharding": shard_spec}))
    """
    proc = run_python(code, {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "seeds" in out["sharding"]
    assert out["diff"] < 1e-4


@pytest.mark.timeout(900)
def test_memory_stays_bounded_for_1024_seeds():
    code = """
        import json, resource, warnings
        warnings.simplefilter("ignore")
        from purejaxpo import experiment
        from purejaxpo.algorithms import ppo
        config = ppo.PPOConfig(num_envs=1, num_steps=8, total_timesteps=8 * 300, update_epochs=1, num_minibatches=1, hidden_sizes=(16, 16))
        results = experiment.run("ppo", "CartPole-v1", num_seeds=1024, config=config, progress=False, chunk_updates=100)
        rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(json.dumps({"rss_gib": rss_gib, "shape": list(results.metrics["loss"].shape)}))
    """
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["shape"] == [1, 1024, 300]
    assert out["rss_gib"] < 6.0, out  # metrics are per-update scalars: ~20 MB here, never steps × envs × seeds
