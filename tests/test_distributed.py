"""Runs over several processes (jax.distributed) and job-array slices, run the way README "More than one
machine" says: each command of that section is taken from the README and run here with a tiny config —
two processes on 127.0.0.1 with two CPU devices each (SLURM's variables set by hand for the `srun` lines),
short timeouts, one shared XLA compilation cache.

Checked: the two-process run matches the one-process run seed by seed and only process 0 prints and
writes; Ctrl-C on one process stops both with a checkpoint; ``kill -9`` of one process ends the other at
once naming the last good checkpoint; a frozen process ends the other within the heartbeat timeout; the
run resumed in one process is byte-identical to the uninterrupted two-process run; ``--shard`` slices
merged equal the single run; ``import purejaxpo`` leaves the XLA backend alone so ``--distributed`` can
start first."""

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

from purejaxpo import cli, distributed, experiment, shards
from purejaxpo.algorithms import ppo
from purejaxpo.rundir import read_status

REPO = Path(__file__).resolve().parents[1]
UPDATES = 300
TINY = ["--set", "num_envs=4", "--set", "num_steps=16", "--set", "num_minibatches=2", "--set", "hidden_sizes=16,16",
        "--total-timesteps", str(4 * 16 * UPDATES), "--eval-episodes", "2"]
CONFIG = ppo.PPOConfig(num_envs=4, num_steps=16, num_minibatches=2, hidden_sizes=(16, 16), total_timesteps=4 * 16 * UPDATES)
HEARTBEAT_S = 10
TIMEOUTS = ["--init-timeout", "120", "--heartbeat-timeout", str(HEARTBEAT_S)]
WAIT_S = 600  # generous bounds for "it finishes" on a loaded 2-core machine; "it does not hang" is what they check


def readme_commands() -> list[str]:
    """The shell commands of README's "More than one machine" section (comments stripped)."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## More than one machine"):]
    section = section[: section.index("\n## ", 3)]
    lines = [line.split("   #")[0].strip() for line in section.splitlines()]
    return [line for line in lines if line.startswith(("purejaxpo ", "srun purejaxpo "))]


def command(*must: str, srun: bool = False) -> str:
    found = [c for c in readme_commands() if c.startswith("srun ") == srun and all(m in c for m in must)]
    assert found, f"README 'More than one machine' has no {'srun ' if srun else ''}command with {must}"
    return found[0]


def argv(line: str, **replace: str) -> list[str]:
    """A README command as an argv for this interpreter (``srun`` dropped, ``$VAR``/hosts replaced)."""
    for old, new in replace.items():
        line = line.replace(old, new)
    words = shlex.split(line.removeprefix("srun "))
    assert words[0] == "purejaxpo"
    return [sys.executable, "-m", "purejaxpo", *words[1:]]


def free_port(low: int = 20000, high: int = 60000) -> int:
    rng = np.random.default_rng()
    while True:
        port = int(rng.integers(low, high))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue


@pytest.fixture(scope="module")
def child_env(tmp_path_factory):
    """Children: two CPU devices each, a shared persistent compilation cache, no cluster variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "OMPI_", "PUREJAXPO_", "JAX_"))}
    env.update({"PYTHONPATH": str(REPO), "JAX_NUM_CPU_DEVICES": "2",
                "JAX_COMPILATION_CACHE_DIR": str(tmp_path_factory.mktemp("jax-cache")),
                "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"})
    return env


class Proc:
    """A child process with its stdout/stderr in files (a progress bar never fills a pipe)."""

    def __init__(self, args: list[str], cwd: Path, env: dict, name: str):
        self.out, self.err = cwd / f"{name}.stdout", cwd / f"{name}.stderr"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.popen = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=err, text=True)
        self.pid = self.popen.pid

    def wait(self, timeout: float = WAIT_S) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            pytest.fail(f"pid {self.pid} still running after {timeout:.0f} s: {self.stderr()[-2000:]}")

    def stdout(self) -> str:
        return self.out.read_text()

    def stderr(self) -> str:
        return self.err.read_text()


def pair(line: str, cwd: Path, env: dict, name: str, *extra: str, slurm: bool = False, cwd1: Path | None = None) -> list[Proc]:
    """Processes 0 and 1 of the README command ``line`` (explicit --coordinator, or SLURM's variables),
    both in ``cwd`` (process 1 in ``cwd1`` if given)."""
    procs = []
    port = free_port(61440, 65535) if slurm else free_port()
    for rank in (0, 1):
        child = dict(env)
        if slurm:  # what srun sets; jax derives the coordinator port from the job id
            child.update({"SLURM_JOB_ID": str(port - 61440), "SLURM_STEP_NODELIST": "127.0.0.1", "SLURM_NTASKS": "2",
                          "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank)})
            args = argv(line)
        else:
            args = argv(line, **{"node0:1234": f"127.0.0.1:{port}", "--process-id 0": f"--process-id {rank}"})
        procs.append(Proc([*args, *extra, *TIMEOUTS], cwd1 if rank and cwd1 else cwd, child, f"{name}{rank}"))
    return procs


def wait_for_checkpoint(run: Path, procs: list[Proc], beyond: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.popen.poll() is not None:
                pytest.fail(f"pid {proc.pid} exited ({proc.popen.returncode}) early: {proc.stderr()[-3000:]}")
        status = read_status(run)
        if status and status["status"] == "running" and (status.get("checkpoint") or 0) > beyond:
            return
        time.sleep(0.01)
    pytest.fail("no checkpoint")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The one-process run (this process, one device) the README commands reproduce."""
    out = tmp_path_factory.mktemp("reference") / "run"
    results = experiment.run("ppo", "CartPole-v1", config=CONFIG, num_seeds=8, eval_episodes=2, out=out, progress=False)
    return results, out


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, child_env):
    """The README's `srun` training command, two processes, run to the end (with its progress bar)."""
    cwd = tmp_path_factory.mktemp("two")
    procs = pair(command("train", "--env", srun=True), cwd, child_env, "run", *TINY, slurm=True)
    codes = [p.wait() for p in procs]
    return cwd, procs, codes


def test_two_processes_match_one_process(two_processes, reference):
    cwd, (p0, p1), codes = two_processes
    assert codes == [0, 0], (p0.stderr()[-3000:], p1.stderr()[-3000:])
    run, (results, ref_dir) = cwd / "runs" / "cartpole", reference
    # only process 0 prints the summary, shows the progress bar and writes the run directory
    assert "ppo on CartPole-v1: 8 seeds" in p0.stdout() and "ppo on CartPole-v1" not in p1.stdout()
    assert f"{UPDATES}/{UPDATES}" in p0.stderr() and "%|" in p0.stderr()  # tqdm's bar
    assert "%|" not in p1.stderr()
    status, description = read_status(run), json.loads((run / "config.json").read_text())
    assert status["status"] == "done" and status["pid"] == p0.pid
    assert description["num_processes"] == 2 and description["num_devices"] == 4
    # seed by seed, the same run as one process on one device (float summation order aside)
    ours, theirs = pd.read_csv(run / "metrics.csv"), pd.read_csv(ref_dir / "metrics.csv")
    assert list(ours.columns) == list(theirs.columns) and len(ours) == len(theirs) == 8 * UPDATES
    for name in ours.columns:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-4, atol=1e-5, err_msg=name)
    summary = json.loads((run / "summary.json").read_text())
    np.testing.assert_allclose(summary["eval_return"]["per_seed"], results.eval_returns[0], rtol=1e-5)
    np.testing.assert_allclose(summary["final_return"]["per_seed"], results.final_returns()[0], rtol=1e-5)


def test_interrupt_kill_and_resume_across_topologies(two_processes, child_env, tmp_path):
    uninterrupted = two_processes[0] / "runs" / "cartpole"
    run = tmp_path / "runs" / "cartpole"

    # Ctrl-C on process 1 only: both stop after the same chunk, with a checkpoint both saved
    procs = pair(command("--process-id 0"), tmp_path, child_env, "interrupted", *TINY, "--no-progress")
    wait_for_checkpoint(run, procs, 0)
    os.kill(procs[1].pid, signal.SIGSTOP)  # the signal lands mid-run, not after the end
    os.kill(procs[1].pid, signal.SIGINT)
    os.kill(procs[1].pid, signal.SIGCONT)
    sent = time.monotonic()
    codes = [p.wait() for p in procs]
    assert time.monotonic() - sent < 120
    assert codes == [130, 130], [p.stderr()[-2000:] for p in procs]
    stopped = read_status(run)
    assert stopped["status"] == "interrupted" and stopped["saved"] and 0 < stopped["update"] < UPDATES
    for proc in procs:
        assert f"interrupted by SIGINT on process 1: saved checkpoint at update {stopped['update']}" in proc.stderr()

    # resumed by two processes (srun), then process 1 is killed: process 0 ends at once, naming the last checkpoint
    procs = pair(command("--resume", srun=True), tmp_path, child_env, "killed", "--no-progress", slurm=True)
    wait_for_checkpoint(run, procs, stopped["update"])
    procs[1].popen.kill()
    killed = time.monotonic()
    assert procs[0].wait() == distributed.EXIT_PEER_LOST, procs[0].stderr()[-3000:]
    procs[1].wait()
    assert time.monotonic() - killed < HEARTBEAT_S + 20
    failed = read_status(run)
    message = re.search(r"purejaxpo: error: another process of the run is gone.*", procs[0].stderr())
    assert message and failed["status"] == "failed", procs[0].stderr()[-3000:]
    message = message.group(0)
    last_good = int(re.search(r"the last good checkpoint is update (\d+) in ", message).group(1))
    assert last_good > stopped["update"] and f"--resume {Path('runs/cartpole')}" in message

    # resumed by one process with four devices: the uninterrupted two-process run, byte for byte
    single = Proc([*argv(command("--resume")), "--no-progress"], tmp_path, {**child_env, "JAX_NUM_CPU_DEVICES": "4"}, "single")
    assert single.wait() == 0, single.stderr()[-3000:]
    assert (run / "metrics.csv").read_bytes() == (uninterrupted / "metrics.csv").read_bytes()
    summary, expected = (json.loads((d / "summary.json").read_text()) for d in (run, uninterrupted))
    assert summary["eval_return"] == expected["eval_return"] and summary["final_return"] == expected["final_return"]
    assert summary["resumed_from_update"] == last_good


def test_a_directory_the_processes_do_not_share_is_refused(child_env, tmp_path):
    """Each process in its own working directory: the relative --out is not one shared directory."""
    own = [tmp_path / "host0", tmp_path / "host1"]
    for path in own:
        path.mkdir()
    procs = pair(command("--process-id 0"), own[0], child_env, "unshared", *TINY, "--no-progress", cwd1=own[1])
    assert [p.wait() for p in procs] == [cli.EXIT_USAGE] * 2, [p.stderr()[-2000:] for p in procs]
    refusal = "process 1 cannot see {}, which process 0 just wrote: every process must reach the checkpoint directory"
    probe = Path("runs/cartpole/checkpoints") / experiment.SHARED_PROBE
    assert f"purejaxpo: error: {refusal.format(probe)}" in procs[1].stderr()
    assert "purejaxpo: error: process 1 of 2 stopped at 'sharing the checkpoint directory'" in procs[0].stderr()
    assert read_status(own[0] / "runs" / "cartpole")["status"] == "failed"
    assert not (own[1] / "runs").exists()  # process 1 wrote nothing


FROZEN = r"""
import os, signal, sys, time
from purejaxpo import distributed
distributed.initialize(sys.argv[1], 2, int(sys.argv[2]), init_timeout=120, heartbeat_timeout=int(sys.argv[3]))
import numpy as np
from jax.experimental import multihost_utils
with distributed.PeerWatch(lambda lost: f"process {lost} is gone; the last good checkpoint is update 7"):
    for step in range(100_000):
        multihost_utils.process_allgather(np.int32(step))
        if step == 20 and distributed.current().process_id == 1:
            print("freezing", flush=True)
            os.kill(os.getpid(), signal.SIGSTOP)
"""


def test_a_frozen_process_ends_the_other_within_the_heartbeat_timeout(child_env, tmp_path):
    heartbeat, address = 5, f"127.0.0.1:{free_port()}"
    procs = [Proc([sys.executable, "-c", FROZEN, address, str(rank), str(heartbeat)], tmp_path, child_env, f"frozen{rank}")
             for rank in (0, 1)]
    deadline = time.monotonic() + WAIT_S
    while "freezing" not in procs[1].stdout():
        assert time.monotonic() < deadline and procs[1].popen.poll() is None, procs[1].stderr()[-2000:]
        time.sleep(0.01)
    frozen = time.monotonic()
    code = procs[0].wait()
    waited = time.monotonic() - frozen
    procs[1].popen.kill()
    procs[1].wait()
    assert code == distributed.EXIT_PEER_LOST, procs[0].stderr()[-2000:]
    assert "purejaxpo: error: process [1] is gone; the last good checkpoint is update 7" in procs[0].stderr()
    assert waited < heartbeat + 10, waited


def test_shards_and_merge_equal_the_single_run(reference, child_env, tmp_path, capsys, monkeypatch):
    results, ref_dir = reference
    line = command("--shard")
    procs = [Proc([*argv(line, **{"$SLURM_ARRAY_TASK_ID": str(i)}), *TINY, "--no-progress"], tmp_path,
                  {**child_env, "JAX_NUM_CPU_DEVICES": "1"}, f"shard{i}") for i in (0, 1)]
    assert [p.wait() for p in procs] == [0, 0], [p.stderr()[-2000:] for p in procs]
    slices = json.loads((tmp_path / "runs" / "cartpole-0" / "config.json").read_text())["shard"]
    assert slices["seed_indices"] == [0, 1, 2, 3] and slices["settings"] == [0]

    merge_args = shlex.split(command("merge"))[1:]
    monkeypatch.chdir(tmp_path)
    assert cli.main([merge_args[0], merge_args[1], "--out", "runs/incomplete"]) == cli.EXIT_USAGE
    assert "missing shard(s) 1/2: pass every slice's directory" in capsys.readouterr().err
    assert cli.main(merge_args) == 0
    merged = tmp_path / "runs" / "cartpole-merged"
    ours, theirs = pd.read_csv(merged / "metrics.csv"), pd.read_csv(ref_dir / "metrics.csv")
    assert list(ours.columns) == list(theirs.columns) and len(ours) == len(theirs)
    for name in ("hparam", "seed", "update", "env_steps", "episode_count"):
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
    for name in ours.columns:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-4, atol=1e-5, err_msg=name)
    summary, expected = (json.loads((d / "summary.json").read_text()) for d in (merged, ref_dir))
    assert set(summary) == set(expected) and summary["num_seeds"] == 8 and "seed_indices" not in summary
    for key in ("final_return", "eval_return"):
        np.testing.assert_allclose(summary[key]["per_seed"], expected[key]["per_seed"], rtol=1e-5, err_msg=key)
    assert (merged / "curves.png").stat().st_size > 0 and read_status(merged)["status"] == "done"


IMPORTS = """
import purejaxpo, purejaxpo.cli, purejaxpo.distributed
from purejaxpo.distributed import backend_started
purejaxpo.cli.make_parser().parse_args(["train", "ppo", "--env", "CartPole-v1", "--distributed"])
assert not backend_started(), "importing purejaxpo initialised the XLA backend"
purejaxpo.make_env("CartPole-v1")  # the public names still load on first use
assert backend_started()
print("ok")
"""


def test_import_purejaxpo_leaves_the_backend_alone(child_env):
    proc = subprocess.run([sys.executable, "-c", IMPORTS], env=child_env, capture_output=True, text=True, timeout=WAIT_S)
    assert proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_initialize_refuses_a_started_backend_and_a_partial_topology(monkeypatch, capsys):
    for name in [k for k in os.environ if k.startswith(("SLURM_", "OMPI_", "PUREJAXPO_"))]:
        monkeypatch.delenv(name)
    jax.devices()  # this process's backend is up: jax.distributed can no longer start
    with pytest.raises(distributed.DistributedError, match="XLA backend is already initialised.*initialize\\(\\) first"):
        distributed.initialize("127.0.0.1:1234", 2, 0)
    with pytest.raises(distributed.DistributedError, match="no cluster detected and no process_id given"):
        distributed.resolve("127.0.0.1:1234", 2)
    monkeypatch.setenv(distributed.ENV_PROCESS_ID, "1")
    assert distributed.resolve("127.0.0.1:1234", 2) == ("127.0.0.1:1234", 2, 1, "environment")
    for args, message in [(("127.0.0.1", 2, 0), "HOST:PORT"), (("h:1", 2, 2), r"in \[0, 2\)"), (("h:1", 0, 0), "at least 1")]:
        with pytest.raises(distributed.DistributedError, match=message):
            distributed.resolve(*args)
    # the CLI: topology flags without --distributed are refused in one line, before anything is built
    assert cli.main(["train", "ppo", "--env", "CartPole-v1", "--coordinator", "h:1"]) == cli.EXIT_USAGE
    assert capsys.readouterr().err.strip() == "purejaxpo: error: --coordinator needs --distributed"


@pytest.mark.parametrize("settings, seeds, count", [(1, 8, 2), (1, 7, 3), (3, 2, 6), (4, 4, 8), (2, 5, 1)])
def test_job_slices_cover_every_run_exactly_once(settings, seeds, count):
    covered = np.zeros((settings, seeds), int)
    for index in range(count):
        setting_ids, seed_ids = shards.job_slice(settings, seeds, shards.parse_shard(f"{index}/{count}"))
        assert setting_ids and seed_ids and seed_ids == sorted(seed_ids)
        covered[np.ix_(setting_ids, seed_ids)] += 1
    assert (covered == 1).all()


def test_bad_shards_are_refused():
    for text in ("2/2", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(ValueError, match="shard"):
            shards.parse_shard(text)
    with pytest.raises(ValueError, match="cannot be split into 5 slices"):
        shards.job_slice(2, 2, shards.Shard(0, 5))
