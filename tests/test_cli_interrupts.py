"""The CLI as a process that gets interrupted: SIGTERM and Ctrl-C save a checkpoint and exit 143/130,
``kill -9`` loses at most the updates since the last checkpoint, and the resumed run reproduces an
uninterrupted one byte for byte; a write that runs out of space leaves no truncated output."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from purejaxpo.rundir import read_status

REPO = Path(__file__).resolve().parents[1]
UPDATES = 600  # long enough to stop half-way (50 chunks), short enough to finish in a second
CHUNK = str(UPDATES // 50)  # the runner's default chunk: --checkpoint-every CHUNK reuses the compiled chunk
FLAGS = ["--set", "num_envs=4", "--set", "num_steps=16", "--set", "num_minibatches=2", "--set", "hidden_sizes=16,16",
         "--total-timesteps", str(4 * 16 * UPDATES), "--num-seeds", "2", "--eval-episodes", "2", "--no-progress"]


@pytest.fixture(scope="module", autouse=True)
def compilation_cache(tmp_path_factory):
    """The child processes share a persistent XLA compilation cache (this module's own directory): the
    same tiny programs compile once, not once per child."""
    CHILD_ENV.update({"JAX_COMPILATION_CACHE_DIR": str(tmp_path_factory.mktemp("jax-cache")),
                      "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"})


CHILD_ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def start(*args: str) -> subprocess.Popen:
    env = CHILD_ENV
    return subprocess.Popen([sys.executable, "-m", "purejaxpo", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def wait_for_progress(proc: subprocess.Popen, out: Path, beyond: int, timeout: float = 600) -> int:
    """Poll ``status.json`` until the run reports an update past ``beyond``; returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"exited ({proc.returncode}) before making progress: {proc.stderr.read()[-2000:]}")
        status = read_status(out)
        if status and status["status"] == "running" and status.get("update", 0) > beyond:
            return status["update"]
        time.sleep(0.005)
    pytest.fail("no progress")


def stop_with(proc: subprocess.Popen, signum: int) -> tuple[int, str]:
    """Freeze the process, queue ``signum``, let it go: the signal lands mid-run, not after the end."""
    os.kill(proc.pid, signal.SIGSTOP)
    os.kill(proc.pid, signum)
    os.kill(proc.pid, signal.SIGCONT)
    _, err = proc.communicate(timeout=600)
    return proc.returncode, err


def saved_steps(out: Path) -> list[int]:
    return sorted(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit())


def test_interrupts_save_and_resume_reproduces_the_uninterrupted_run(tmp_path):
    reference = tmp_path / "reference"
    proc = start("train", "ppo", "--env", "CartPole-v1", *FLAGS, "--out", str(reference))
    assert proc.wait(timeout=600) == 0, proc.stderr.read()[-3000:]
    out = tmp_path / "run"

    # SIGTERM, no --checkpoint-every: the state reached is still saved, exit 143
    proc = start("train", "ppo", "--env", "CartPole-v1", *FLAGS, "--out", str(out))
    wait_for_progress(proc, out, 0)
    code, err = stop_with(proc, signal.SIGTERM)
    assert code == 143, err[-2000:]
    status = read_status(out)
    first = status["update"]
    assert status["status"] == "interrupted" and status["saved"] and 0 < first < UPDATES
    assert f"interrupted: saved checkpoint at update {first}" in err and f"--resume {out}" in err
    assert saved_steps(out) == [first]

    # Ctrl-C with --checkpoint-every (the interrupt lands on a checkpoint boundary): exit 130, not "already exists"
    proc = start("train", "ppo", "--resume", str(out), "--checkpoint-every", CHUNK, "--no-progress")
    wait_for_progress(proc, out, first)
    code, err = stop_with(proc, signal.SIGINT)
    assert code == 130, err[-2000:]
    second = read_status(out)["update"]
    assert f"interrupted: saved checkpoint at update {second}" in err and "already exists" not in err
    assert first < second < UPDATES and saved_steps(out)[-1] == second

    # kill -9 mid-run: status.json still says running; the next resume takes the newest finished checkpoint
    proc = start("train", "ppo", "--resume", str(out), "--checkpoint-every", CHUNK, "--no-progress")
    wait_for_progress(proc, out, second + int(CHUNK))
    proc.kill()
    proc.communicate(timeout=600)
    assert read_status(out)["status"] == "running"

    proc = start("train", "ppo", "--resume", str(out), "--no-progress")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert (out / "metrics.csv").read_bytes() == (reference / "metrics.csv").read_bytes()
    summary, expected = (json.loads((d / "summary.json").read_text()) for d in (out, reference))
    assert summary["eval_return"] == expected["eval_return"] and summary["final_return"] == expected["final_return"]
    assert summary["resumed_from_update"] > second and summary["env_steps_run"] < expected["env_steps_run"]
    assert read_status(out)["status"] == "done"


# The CLI in a process whose files may not grow past 110 kB: a write past it fails with EFBIG (SIGXFSZ ignored),
# like a disk that fills up. Set in the child itself (no preexec_fn: forking a multithreaded jax parent is unsafe).
LIMITED = """
import resource, runpy, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (110_000, 110_000))
sys.argv = ["purejaxpo", *sys.argv[1:]]
runpy.run_module("purejaxpo", run_name="__main__")
"""


def test_running_out_of_space_leaves_no_truncated_output(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", LIMITED, "train", "ppo", "--env", "CartPole-v1", *FLAGS, "--out", str(out)],
                          capture_output=True, text=True, env=CHILD_ENV, timeout=600)
    # config.json, status.json and the checkpoint files fit under 110 kB; metrics.csv (~150 kB) does not
    assert proc.returncode == 1, proc.stderr[-3000:]
    err = proc.stderr.strip().splitlines()
    assert err[-1].startswith(f"purejaxpo: error: [Errno 27] File too large: '{out / 'metrics.csv'}'"), err[-1]
    assert "Traceback" not in proc.stderr
    assert not (out / "metrics.csv").exists() and not (out / "summary.json").exists()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left
    status = read_status(out)
    assert status["status"] == "failed" and "writing outputs" in status["reason"] and "File too large" in status["reason"]
    assert saved_steps(out) == [UPDATES]  # the trained state is kept: resume rewrites the outputs
