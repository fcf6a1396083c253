"""The runner under faults, in process: damaged and unfinished checkpoints (files truncated, deleted,
garbled), a non-finite loss, reruns into a used output directory, a saved run read back with load_run,
seed i rerun alone, and bad arguments refused before anything compiles."""

import glob
import json
import os
import shutil

import jax
import numpy as np
import pytest

import purejaxpo
from purejaxpo import checkpointing, experiment, memory, rundir
from purejaxpo.algorithms import hyperpp, mdpo_off, ppo
from purejaxpo.checkpointing import CheckpointError

CONFIG = ppo.PPOConfig(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 12, update_epochs=2, num_minibatches=2, hidden_sizes=(16, 16))
RUN = dict(num_seeds=3, config=CONFIG, progress=False, eval_episodes=2)


class NotCompiled(AssertionError):
    pass


@pytest.fixture
def no_training(monkeypatch):
    """Fail loudly if a run gets as far as compiling: the check under test must come first."""

    def refuse(*args, **kwargs):
        raise NotCompiled("reached compilation")

    monkeypatch.setattr(experiment, "_train", refuse)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted 3-seed run with checkpoints at updates 4, 8 and 12."""
    ckpt = tmp_path_factory.mktemp("reference") / "ckpt"
    results = experiment.run("ppo", "CartPole-v1", checkpoint_dir=ckpt, checkpoint_every=4, **RUN)
    assert sorted(os.listdir(ckpt)) == ["12", "4", "8"]
    return results, ckpt


def assert_same_run(a, b):
    for name in a.metrics:
        np.testing.assert_array_equal(a.metrics[name], b.metrics[name], err_msg=name)
    for x, y in zip(jax.tree.leaves(a.state.params), jax.tree.leaves(b.state.params)):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.eval_returns, b.eval_returns)


def copy_of(ckpt, tmp_path):
    target = tmp_path / "ckpt"
    shutil.copytree(ckpt, target)
    return target


def test_resume_falls_back_past_truncated_data_and_a_missing_state(reference, tmp_path, capsys):
    full, ckpt = reference
    ckpt = copy_of(ckpt, tmp_path)
    for data in glob.glob(f"{ckpt}/12/state/**/d/*", recursive=True):  # truncate the array data of step 12
        os.truncate(data, os.path.getsize(data) // 2)
    shutil.rmtree(ckpt / "8" / "state")  # step 8 lost its state item
    resumed = experiment.run("ppo", "CartPole-v1", checkpoint_dir=ckpt, checkpoint_every=4, resume=True, **RUN)
    out = capsys.readouterr().out
    assert "skipped damaged checkpoint 12 (" in out and "skipped damaged checkpoint 8 (" in out
    assert "TensorStore details" not in out and len(max(out.splitlines(), key=len)) < 400
    assert sorted(os.listdir(tmp_path / "ckpt-damaged")) == ["12", "8"]  # kept, not deleted
    assert_same_run(full, resumed)  # continued from update 4, bit-identical
    assert sorted(os.listdir(ckpt)) == ["12", "4", "8"]


def test_a_garbage_manifest_is_skipped_without_compiling(reference, tmp_path):
    full, ckpt = reference
    ckpt = copy_of(ckpt, tmp_path)
    for manifest in glob.glob(f"{ckpt}/12/**/manifest.ocdbt", recursive=True):
        with open(manifest, "wb") as handle:
            handle.write(b"\x00garbage")
    trainer = ppo.make_train(CONFIG, *purejaxpo.make_env("CartPole-v1"))
    hp = purejaxpo.stack_hparams([ppo.PPOHParams()])
    keys = jax.numpy.broadcast_to(jax.random.split(jax.random.key(0), 3), (1, 3))
    state_like = jax.eval_shape(jax.vmap(jax.vmap(trainer.init, in_axes=(0, None))), keys, hp)  # shapes only
    metrics_like = {k: np.zeros_like(v) for k, v in full.metrics.items()}
    meta = experiment.run_description("ppo", "CartPole-v1", CONFIG, [ppo.PPOHParams()], 3, 0, None)
    read_only = checkpointing.restore_latest(ckpt, state_like, metrics_like, meta, repair=False)
    assert read_only.step == 8 and [s for s, _ in read_only.skipped] == [12] and (ckpt / "12").is_dir()
    restored = checkpointing.restore_latest(ckpt, state_like, metrics_like, meta)
    assert restored.step == 8 and "DATA_LOSS" in restored.skipped[0][1] and not (ckpt / "12").exists()
    for name, values in full.metrics.items():
        np.testing.assert_array_equal(restored.metrics[name][..., :8], values[..., :8], err_msg=name)


def test_a_crash_during_the_first_save_resumes_from_scratch(reference, tmp_path, capsys, monkeypatch):
    full, ckpt = reference
    ckpt = copy_of(ckpt, tmp_path)
    shutil.rmtree(ckpt / "8")
    shutil.rmtree(ckpt / "12")
    os.rename(ckpt / "4", ckpt / "4.orbax-checkpoint-tmp-1764000000")  # what kill -9 during the first save leaves
    with monkeypatch.context() as patch:  # a fresh run into it is not refused as "already holds checkpoints"
        patch.setattr(experiment, "_train", lambda *a, **k: (_ for _ in ()).throw(NotCompiled()))
        with pytest.raises(NotCompiled):
            experiment.run("ppo", "CartPole-v1", checkpoint_dir=ckpt, **RUN)
    resumed = experiment.run("ppo", "CartPole-v1", checkpoint_dir=ckpt, checkpoint_every=4, resume=True, **RUN)
    out = capsys.readouterr().out
    assert "removed unfinished checkpoint save 4.orbax-checkpoint-tmp-1764000000" in out and "starting from update 0" in out
    assert resumed.start_update == 0
    assert_same_run(full, resumed)


def test_resuming_a_different_run_names_the_keys_before_compiling(reference, no_training):
    _, ckpt = reference
    with pytest.raises(CheckpointError, match=r"different run: hparams\[0\]\.lr: checkpoint has 0.00025, this run has 1.0$"):
        experiment.run("ppo", "CartPole-v1", checkpoint_dir=ckpt, resume=True, hparams=ppo.PPOHParams(lr=1.0), **RUN)


def test_seed_i_alone_matches_seed_i_of_the_full_run(reference):
    full, _ = reference
    alone = experiment.run("ppo", "CartPole-v1", seed_indices=[2], **RUN)
    assert alone.num_seeds == 1 and alone.seed_indices == [2]
    for name in full.metrics:
        np.testing.assert_allclose(alone.metrics[name][:, 0], full.metrics[name][:, 2], rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(alone.eval_returns[:, 0], full.eval_returns[:, 2], rtol=1e-5)
    assert list(alone.dataframe()["seed"].unique()) == [2]


class NaNRewards:
    """CartPole whose rewards are NaN: the first update's loss is non-finite."""

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name):
        return getattr(self._env, name)

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        return obs, state, reward * np.float32("nan"), terminated, truncated, info


def test_a_non_finite_loss_keeps_the_state_metrics_and_a_failure_marker(tmp_path):
    env, params = purejaxpo.make_env("CartPole-v1")
    out = tmp_path / "run"
    with pytest.raises(experiment.NonFiniteError, match="non-finite loss.*saved in"):
        experiment.run("ppo", NaNRewards(env), env_params=params, num_seeds=2, config=CONFIG, progress=False, out=out, chunk_updates=3)
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "failed" and "non-finite" in status["reason"] and status["update"] == 3
    assert os.listdir(out / "checkpoints") == ["3"]
    rows = (out / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 3  # header + 2 seeds × the 3 updates that ran
    assert not (out / "summary.json").exists()


def test_a_run_directory_is_never_overwritten_and_load_run_gives_back_the_run(tmp_path, monkeypatch):
    out = tmp_path / "run"
    results = experiment.run("ppo", "CartPole-v1", out=out, seed=5, **RUN)
    files = {p.name for p in out.iterdir()}
    assert {"config.json", "status.json", "checkpoints", "metrics.csv", "curves.png", "summary.json"} <= files
    assert json.loads((out / "status.json").read_text())["status"] == "done"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provenance"]["versions"]["orbax-checkpoint"] and summary["seed"] == 5
    assert json.loads((out / "config.json").read_text())["provenance"]["command"]
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    monkeypatch.setattr(experiment, "_train", lambda *a, **k: (_ for _ in ()).throw(NotCompiled()))
    with pytest.raises(rundir.RunDirError, match="already holds a run.*resume=True.*overwrite=True"):
        experiment.run("ppo", "CartPole-v1", out=out, **RUN)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before  # nothing touched

    saved = purejaxpo.load_run(out)
    assert saved.done and saved.update == CONFIG.num_updates and saved.config == CONFIG and saved.seed == 5
    assert saved.hparams == results.hparams
    for name in results.metrics:
        np.testing.assert_array_equal(saved.metrics[name], results.metrics[name], err_msg=name)
    np.testing.assert_array_equal(saved.evaluate(), results.eval_returns)  # same keys, same returns
    env, params = purejaxpo.make_env("CartPole-v1")
    obs, _ = env.reset(jax.random.key(0), params)
    action = jax.jit(saved.policy(seed=1, deterministic=True))(obs, jax.random.key(1))
    assert action.shape == () and 0 <= int(action) < 2

    with pytest.raises(NotCompiled):  # overwrite moves the old run aside, then starts
        experiment.run("ppo", "CartPole-v1", out=out, overwrite=True, **RUN)
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]
    assert len(aside) == 1 and {p.name for p in aside[0].iterdir()} == files
    assert json.loads((out / "status.json").read_text())["status"] == "failed"


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(config=mdpo_off.SACConfig()), TypeError, "config for ppo must be a PPOConfig, got SACConfig"),
        (dict(devices=[]), ValueError, "devices is empty"),
        (dict(chunk_updates=-1), ValueError, "chunk_updates must be a positive integer"),
        (dict(eval_episodes=2.5), ValueError, "eval_episodes must be an integer"),
        (dict(seed=2**64), ValueError, r"seed must be an integer in \[0, 4294967294\]"),
        (dict(seed=-1), ValueError, "seed must be"),
        (dict(num_seeds=True), ValueError, "num_seeds"),
        (dict(seed_indices=[3]), ValueError, r"seed_indices must be .* in \[0, 3\)"),
        (dict(hparams=[ppo.PPOHParams(), ppo.PPOHParams(lr=1e-4)], sweep_labels=["a", "a"]), ValueError, "unique"),
        (dict(config=ppo.PPOConfig(total_timesteps=10**13)), ValueError, "update counter is int32"),
        (dict(num_seeds=10_000_000), memory.InsufficientMemoryError, "needs at least .* fewer seeds"),
        (dict(resume=True, out="/nonexistent/run"), rundir.RunDirError, "not a run directory"),
    ],
)
def test_bad_arguments_fail_before_compiling(kwargs, error, message, no_training):
    args = {"num_seeds": 3, "config": CONFIG, "progress": False, **kwargs}
    with pytest.raises(error, match=message):
        experiment.run("ppo", "CartPole-v1", **args)


def test_a_trainer_records_its_own_env_and_algorithm(tmp_path, no_training):
    env, params = purejaxpo.make_env("CartPole-v1")
    trainer = ppo.make_train(CONFIG, env, params)
    with pytest.raises(ValueError, match="built on CartPole-v1, not 'Pendulum-v1'"):
        experiment.run(trainer, "Pendulum-v1", progress=False)
    with pytest.raises(ValueError, match="config comes from the Trainer"):
        experiment.run(trainer, config=ppo.PPOConfig(), progress=False)
    small = dict(num_envs=4, num_steps=16, total_timesteps=128, num_minibatches=2, encoder="mlp", hidden_sizes=(16,))
    for name, config in (("hyper_srym", hyperpp.HyperSRYMConfig(**small)), ("ppo_impala", hyperpp.EuclideanPPOConfig(**small))):
        out = tmp_path / name
        with pytest.raises(NotCompiled):
            experiment.run(hyperpp.make_train(config, env, params), None, out=out, progress=False)
        assert json.loads((out / "config.json").read_text())["algo"] == name
        with pytest.raises(TypeError, match=f"must be a HyperPPConfig, got {type(config).__name__}"):
            experiment.run("hyperpp", "CartPole-v1", config=config, progress=False)


def test_off_policy_learning_starts_past_the_budget_is_an_error():
    # the budget covers the warm-up (collected in init) and at least one update of 500 env steps
    with pytest.raises(ValueError, match="leaves no update after the warm-up: learning_starts=1000"):
        mdpo_off.SACConfig(total_timesteps=1000, steps_per_update=500, learning_starts=1000)
    with pytest.raises(ValueError, match="leaves no update after the warm-up: learning_starts=501"):
        mdpo_off.SACConfig(total_timesteps=1000, steps_per_update=500, learning_starts=501)
    assert mdpo_off.SACConfig(total_timesteps=1000, steps_per_update=500, learning_starts=500).num_updates == 1
