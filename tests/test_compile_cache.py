"""The persistent compilation cache: a second process finds what the first one compiled."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROGRAM = """
import json, sys, time
from purejaxpo import compile_cache
compile_cache.enable(sys.argv[1])
import jax, jax.numpy as jnp
stats = compile_cache.CacheStats()
f = jax.jit(lambda x: jnp.tanh(x @ x.T).sum())
start = time.perf_counter()
f.lower(jnp.ones((64, 64))).compile()
print(json.dumps({**stats.snapshot(), "compile_s": time.perf_counter() - start}))
"""


def _run(cache_dir: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", PROGRAM, str(cache_dir)], capture_output=True, text=True, env=env,
                         timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_process_hits_the_cache(tmp_path):
    first = _run(tmp_path / "xla")
    assert first["misses"] >= 1 and first["hits"] == 0
    assert any((tmp_path / "xla").iterdir())
    second = _run(tmp_path / "xla")
    assert second["hits"] >= 1 and second["misses"] == 0


def test_default_dir_follows_the_environment(monkeypatch, tmp_path):
    from purejaxpo import compile_cache

    monkeypatch.setenv("PUREJAXPO_CACHE_DIR", str(tmp_path / "mine"))
    assert compile_cache.default_dir() == tmp_path / "mine"
    monkeypatch.delenv("PUREJAXPO_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache.default_dir() == tmp_path / "xdg" / "purejaxpo" / "xla"


def _train(out: Path, *flags: str) -> dict:
    cmd = [sys.executable, "-m", "purejaxpo", "train", "ppo", "--env", "CartPole-v1", "--total-timesteps", "2048",
           "--num-seeds", "1", "--eval-episodes", "1", "--no-progress", "--out", str(out), *flags]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {"summary": json.loads((out / "summary.json").read_text()), "stdout": proc.stdout}


def test_the_cli_caches_by_default_and_a_second_run_loads_instead_of_compiling(tmp_path):
    cache = tmp_path / "xla"
    first = _train(tmp_path / "a", "--compile-cache", str(cache))
    second = _train(tmp_path / "b", "--compile-cache", str(cache))
    assert first["summary"]["compile_cache"]["misses"] >= 1 and not first["summary"]["compile_cache"]["hit"]
    assert second["summary"]["compile_cache"] == {"dir": str(cache), "hits": second["summary"]["compile_cache"]["hits"],
                                                  "misses": 0, "hit": True}
    assert "compile cache: hit" in second["stdout"]
    off = _train(tmp_path / "c", "--no-compile-cache")
    assert off["summary"]["compile_cache"] is None and "compile cache" not in off["stdout"]


def test_compile_ahead_pauses_the_garbage_collector_and_restores_it():
    import gc

    import jax
    import jax.numpy as jnp

    from purejaxpo.compile_cache import compile_ahead

    seen = []
    f = jax.jit(lambda x: (seen.append(gc.isenabled()), jnp.tanh(x).sum())[1])
    assert gc.isenabled()
    compiled = compile_ahead(f, jnp.ones(3))
    assert seen == [False] and gc.isenabled()
    assert float(compiled(jnp.zeros(3))) == 0.0
    gc.disable()
    try:
        compile_ahead(jax.jit(lambda x: x + 1), jnp.ones(2))
        assert not gc.isenabled()  # left as it was
    finally:
        gc.enable()
