"""After a run (#23): render, plot, export and list through the command line (subprocess) on tiny runs, the
logging sinks, presets, and the pieces they stand on (chunks that compile once, timestamps, NaN-free
statistics, field descriptions, random-policy baselines, frames of our envs)."""

import json
import os
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxpo import timeline
from purejaxpo.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = ["--set", "num_envs=4", "--set", "num_steps=16", "--set", "num_minibatches=2", "--set", "hidden_sizes=16,16",
        "--total-timesteps", str(4 * 16 * 13), "--num-seeds", "2", "--eval-episodes", "2", "--no-progress"]


def cli(*args: str, cache: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    if cache is not None:  # a persistent XLA cache shared by this test's children
        env.update({"JAX_COMPILATION_CACHE_DIR": str(cache), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"})
    return subprocess.run([sys.executable, "-m", "purejaxpo", *args], capture_output=True, text=True, env=env, timeout=600)


def event_tags(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """Scalars of the TensorBoard event files under ``logdir`` (the TFRecord framing read by hand)."""
    from tensorboardX.proto import event_pb2

    tags: dict[str, list[tuple[int, float]]] = {}
    for path in logdir.rglob("events.out.tfevents.*"):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12:offset + 12 + length])
            offset += 12 + length + 4
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    tags.setdefault(value.tag, []).append((event.step, value.simple_value))
    return tags


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two tiny PPO runs on CartPole (13 updates in chunks of 5: the last chunk is shorter), one logging to
    TensorBoard and one to wandb (offline)."""
    pytest.importorskip("tensorboardX")
    base = tmp_path_factory.mktemp("after")
    runs = {"a": base / "run-a", "b": base / "run-b"}
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    assert main(["train", "ppo", "--env", "CartPole-v1", *TINY, "--out", str(runs["a"]), "--log", "tensorboard"]) == 0
    logs_b = ["--log", "wandb"] if _has("wandb") else []
    assert main(["train", "ppo", "--env", "CartPole-v1", *TINY, "--set", "lr=1e-3", "--out", str(runs["b"]), *logs_b]) == 0
    return runs


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_render_plot_export_and_list_through_the_cli(two_runs, tmp_path):
    from PIL import Image

    cache = tmp_path / "jax-cache"
    # render: a GIF of one deterministic episode, frames that differ (the pole moves)
    gif = tmp_path / "policy.gif"
    proc = cli("render", str(two_runs["a"]), "--out", str(gif), cache=cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == "" and proc.stdout.startswith(f"wrote {gif}")  # no third-party noise on either stream
    with Image.open(gif) as image:
        frames = image.n_frames
        image.seek(0)
        first = np.asarray(image.convert("RGB"), np.int16)
        image.seek(frames - 1)
        last = np.asarray(image.convert("RGB"), np.int16)
    steps = int(proc.stdout.split("(")[1].split(" steps")[0])
    assert frames == steps > 5 and first.shape[0] > 100 and first.std() > 10 and np.abs(first - last).sum() > 0

    # plot: two runs, two labelled lines (+ the random policy's line), against env steps and wall clock
    png = tmp_path / "compare.png"
    proc = cli("plot", str(two_runs["a"]), str(two_runs["b"]), "--labels", "lr 2.5e-4,lr 1e-3", "--out", str(png))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 line(s) from 2 run(s)" in proc.stdout and "random policy CartPole-v1" in proc.stdout
    assert png.stat().st_size > 20_000 and Image.open(png).size[0] >= 800
    proc = cli("plot", str(two_runs["a"]), "--x", "wall_clock", "--metric", "entropy", "--out", str(tmp_path / "wall.png"))
    assert proc.returncode == 0 and (tmp_path / "wall.png").stat().st_size > 10_000, proc.stderr[-3000:]
    proc = cli("plot", str(two_runs["a"]), "--metric", "nope", "--out", str(tmp_path / "x.png"))
    assert proc.returncode == 2 and "has no metric 'nope'" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1

    # export: ONNX of the deterministic policy, checked by onnxruntime against act inside the command
    if _has("jax2onnx") and _has("onnxruntime"):
        onnx = tmp_path / "policy.onnx"
        proc = cli("export", str(two_runs["a"]), "--onnx", str(onnx), "--check", cache=cache)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "onnxruntime matches act" in proc.stdout and "Traceback" not in proc.stderr and onnx.stat().st_size > 1000

    # list: the overview with envs by source and action kind; one algorithm's table with types, choices, descriptions
    proc = cli("list")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert any(line.split() == ["CartPole-v1", "discrete"] for line in lines)
    assert any(line.split() == ["brax/hopper", "continuous"] for line in lines)
    assert any(line.split()[:2] == ["Pendulum-v1", "continuous"] for line in lines) and "  gymnax" in lines
    proc = cli("list", "ppo")
    assert proc.returncode == 0
    row = next(line for line in proc.stdout.splitlines() if line.startswith("objective "))
    assert row.split()[:3] == ["objective", "str", "clip"]
    assert "[clip | kl_penalty | spo | ewma | dpo | r2vpo | p3o | p3o_joint]" in " ".join(proc.stdout.split())  # wrapped to the width
    assert any(line.split()[:3] == ["clip_eps", "float", "0.2"] for line in proc.stdout.splitlines())
    assert "pendulum" in proc.stdout and max(len(line) for line in proc.stdout.splitlines()) <= 130


def test_logging_sinks_and_timestamps(two_runs):
    tags = event_tags(two_runs["a"] / "tensorboard")
    assert {"episode_return/mean", "episode_return/seed_0", "episode_return/seed_1", "entropy/mean"} <= set(tags)
    steps = [step for step, _ in tags["entropy/mean"]]
    assert steps == [64 * u for u in range(1, 14)]  # every update of every chunk, at its env steps per seed
    metrics = np.genfromtxt(two_runs["a"] / "metrics.csv", delimiter=",", names=True)
    seed0 = metrics[(metrics["seed"] == 0)]["episode_return"]
    logged = dict(tags["episode_return/seed_0"])
    for u, value in enumerate(seed0):
        if np.isfinite(value):
            assert logged[64 * (u + 1)] == pytest.approx(value, rel=1e-6)
    if _has("wandb"):
        runs = list((two_runs["b"] / "wandb").glob("offline-run-*/run-*.wandb"))
        assert len(runs) == 1 and runs[0].stat().st_size > 1000
    rows = timeline.read(two_runs["a"] / timeline.TIMESTAMPS)
    assert [u for u, _ in rows] == list(range(14)) and all(t1 >= t0 for (_, t0), (_, t1) in zip(rows, rows[1:]))
    curves = two_runs["a"] / "curves.png"
    assert curves.stat().st_size > 40_000  # the return plus three diagnostics panels


def test_presets_and_bad_input_before_compiling(capsys, monkeypatch):
    from purejaxpo import experiment, presets
    from purejaxpo.algorithms.registry import ALGORITHMS, get_algorithm
    from purejaxpo.environments import make_env
    from purejaxpo.settings import build_settings

    for algo, named in presets.PRESETS.items():
        algorithm = get_algorithm(algo)
        assert algo in ALGORITHMS
        for preset in named.values():
            with warnings.catch_warnings():
                warnings.simplefilter("error", UserWarning)  # every preset is an exact budget
                config, _, _ = build_settings(algorithm, presets.merged_sets(preset, [], None), [], None)
            env, params = make_env(preset.env)
            assert config.num_updates >= 10, (algo, preset.name)
    sets = presets.merged_sets(presets.get_preset("mdpo", "cpu-small"), ["lr=0.5"], 4096)
    assert "lr=0.5" in sets and "lr=0.001" not in sets and not any(s.startswith("total_timesteps=") for s in sets)
    monkeypatch.setattr(experiment, "_train", lambda *a, **k: pytest.fail("reached compilation"))
    for args, message in [
        (["train", "ppo", "--preset", "nope"], "ppo has no preset 'nope'; its presets: pendulum"),
        (["train", "ppo", "--env", "CartPole-v1", "--log", "tensorboard", "--resume", "/nonexistent"], "not a run directory"),
        (["render", "/nonexistent"], "not a run directory"),
        (["export", "/nonexistent", "--onnx", "x.txt"], "must end in .onnx"),
        (["plot", "/nonexistent"], "not a run directory"),
    ]:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_chunks_compile_once_and_match_a_scan():
    from purejaxpo.algorithms import ppo
    from purejaxpo.chunks import updates_upto
    from purejaxpo.environments import make_env

    trainer = ppo.make_train(ppo.PPOConfig(num_envs=2, num_steps=8, num_minibatches=2, hidden_sizes=(8,), total_timesteps=160),
                             *make_env("CartPole-v1"))
    hp = ppo.PPOHParams()
    state = trainer.init(jax.random.key(0), hp)
    compiled = jax.jit(updates_upto(trainer.update, 5)).lower(state, hp, np.int32(5)).compile()
    after3, metrics3 = compiled(state, hp, np.int32(3))  # a shorter chunk runs on the same executable
    scanned, scan_metrics = jax.lax.scan(lambda s, _: trainer.update(s, hp), state, None, length=3)
    for a, b in zip(jax.tree.leaves(after3.params), jax.tree.leaves(scanned.params)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(metrics3["loss"][:3], scan_metrics["loss"], rtol=1e-5)
    assert np.all(np.asarray(metrics3["loss"][3:]) == 0) and int(after3.update_index) == 3


def test_timeline_merge_and_interpolation():
    previous = [(0, 0.0), (4, 2.0), (8, 3.0)]
    assert timeline.merge(previous, [(4, 0.0), (6, 1.0), (10, 2.0)], 4) == [(0, 0.0), (4, 2.0), (6, 3.0), (10, 4.0)]
    assert timeline.merge([], [(4, 0.0), (6, 1.0)], 4) == [(4, 0.0), (6, 1.0)]
    seconds = timeline.seconds_at_updates([(0, 0.0), (4, 4.0), (8, 6.0)], 10)
    np.testing.assert_allclose(seconds[:8], [1, 2, 3, 4, 4.5, 5, 5.5, 6])
    assert np.isnan(seconds[8:]).all()


def test_statistics_and_panels_are_nan_free(tmp_path):
    from purejaxpo.plotting import diagnostic_panels, mean_and_ci95, plot_curves

    values = np.array([[np.nan, 1.0, 2.0, np.nan], [np.nan, np.nan, 4.0, 6.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no "Mean of empty slice"
        mean, half = mean_and_ci95(values)
        plot_curves(np.arange(4), values[None], ["x"], path=tmp_path / "c.png")
    np.testing.assert_allclose(mean, [np.nan, 1.0, 3.0, 6.0])
    np.testing.assert_allclose(half, [np.nan, 0.0, 1.96 * 1.0 / np.sqrt(2), 0.0])
    metrics = {"episode_return": values, "entropy": values, "kl": values, "explained_variance": np.full((2, 4), np.nan)}
    assert diagnostic_panels(metrics) == ["episode_return", "entropy", "kl"]


def test_plot_runs_labels_every_line(two_runs, tmp_path):
    from purejaxpo.compare import load_curves, plot_runs

    curves = [load_curves(two_runs["a"], "episode_return", label="first"), load_curves(two_runs["b"], "episode_return")]
    fig = plot_runs(curves, "episode_return", "env_steps", tmp_path / "p.png", references={"CartPole-v1": 22.0})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["first", "run-b", "random policy (CartPole-v1)"]
    assert curves[0].values.shape == (1, 2, 13) and curves[0].x[-1] == 13 * 64


def test_every_field_is_described_and_enums_list_their_values():
    import dataclasses

    from purejaxpo.algorithms.registry import ALGORITHMS
    from purejaxpo.listing import allowed_values, field_help

    for algorithm in ALGORITHMS.values():
        for cls in (algorithm.config_cls, algorithm.hparams_cls):
            missing = [name for name, text in field_help(cls).items() if not text]
            assert not missing, (cls.__name__, missing)
            for name, allowed in getattr(cls, "choices", {}).items():
                assert tuple(allowed) == allowed_values(cls, name)
                default = next(f.default for f in dataclasses.fields(cls) if f.name == name)
                assert default in allowed
    from purejaxpo.algorithms import hyperpp

    assert field_help(hyperpp.HyperPPConfig)["hidden_sizes"].startswith("MLP widths (encoder mlp")  # own line wins


def test_budget_warning_points_at_the_callers_line():
    from purejaxpo.algorithms import ppo

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ppo.PPOConfig()  # the default budget is whole rollouts: no warning
        ppo.PPOConfig(total_timesteps=500_000)
    notes = [w for w in caught if "not a multiple of the rollout size" in str(w.message)]
    assert len(notes) == 1 and notes[0].filename == __file__


def test_loggers_scalars_and_a_failing_sink_is_dropped(capsys):
    from purejaxpo.loggers import LoggerGroup, scalars

    run = {"labels": ["lr=1", "lr=2"], "seed_ids": [3, 5], "steps_per_update": 10}
    metrics = {"episode_return": np.array([[[1.0, np.nan], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]]), "loss": np.zeros((2, 2, 2))}
    logged = list(scalars(run, 4, metrics))
    assert [step for step, _ in logged] == [50, 60]
    assert logged[0][1]["lr=1/episode_return/mean"] == 2.0 and logged[1][1]["lr=1/episode_return/mean"] == 4.0
    assert "lr=1/episode_return/seed_3" not in logged[1][1] and logged[1][1]["lr=2/episode_return/seed_5"] == 8.0

    class Broken:
        def start(self, run):
            raise OSError("disk full")

    class Kept:
        calls = 0

        def start(self, run):
            Kept.calls += 1

        def close(self):
            Kept.calls += 1

    group = LoggerGroup([Broken(), Kept()])
    group.start(run)
    group.close()
    assert Kept.calls == 2 and len(group.loggers) == 1 and "logger Broken failed in start (OSError: disk full)" in capsys.readouterr().err


def test_random_baseline_and_our_envs_frames(tmp_path):
    from purejaxpo.baselines import is_cheap, random_return
    from purejaxpo.environments import make_env
    from purejaxpo.render import Episode, RenderError, grid_world_frames, multigoal_frames, renderer_kind, write_gif

    cartpole = random_return("CartPole-v1", episodes=256)
    assert 15 < cartpole["mean"] < 30 and cartpole["ci95"] < 3  # a random CartPole policy lasts ~22 steps
    assert is_cheap("Coverage-v0") and not is_cheap("brax/hopper") and not is_cheap("navix/Navix-Empty-5x5-v0")

    env, params = make_env("MultiGoal-v0")
    t = np.linspace(0, 1, 6, dtype=np.float32)
    states = type("S", (), {"position": np.stack([4 * t, 3 * t], axis=1)})()
    frames = multigoal_frames(env, params, Episode(states, np.ones(6, np.float32), 6), "test")
    assert len(frames) == 6 and frames[0].shape[2] == 3 and np.abs(frames[0].astype(int) - frames[-1]).sum() > 0
    write_gif(frames, tmp_path / "mg.gif", fps=10)
    from PIL import Image

    with Image.open(tmp_path / "mg.gif") as image:
        assert image.n_frames == 6

    env, params = make_env("Coverage-v0")
    cells = type("S", (), {"pos": np.array([34, 35, 36, 66])})()
    frames = grid_world_frames(env, params, Episode(cells, np.ones(4, np.float32), 3), "test")
    assert len(frames) == 3 and np.abs(frames[0].astype(int) - frames[-1]).sum() > 0
    lot, _ = make_env("LotSizing-v0")
    with pytest.raises(RenderError, match="no renderer for LotSizing-v0"):
        renderer_kind("LotSizing-v0", lot)


def test_recipe_table_comes_from_the_benchmark_json():
    """Every row of the README's recipe table is a real run recorded in benchmarks/results/recipes.json (by
    benchmarks/recipes.py), and the table in the README is the one the script wrote."""
    from benchmarks.recipes import RECIPES, markdown

    payload = json.loads((REPO / "benchmarks" / "results" / "recipes.json").read_text())
    rows = {row["name"]: row for row in payload["rows"]}
    assert set(rows) == {name for name, *_ in RECIPES}
    readme = (REPO / "README.md").read_text()
    assert markdown(payload["rows"]) in readme
    for name, algo, env, extra in RECIPES:
        row = rows[name]
        assert row["returncode"] == 0 and row["algo"] == algo and row["env"] == env, row
        assert row["command"] == " ".join(["purejaxpo", "train", algo, *extra])
        assert len(row["eval_return"]["per_seed"]) == row["num_seeds"] and row["load_average_1min"]
