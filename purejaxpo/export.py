"""``purejaxpo export DIR --onnx policy.onnx``: the deterministic policy of a saved run as an ONNX model.

The exported function is ``obs [B, *obs_shape] float32 -> action [B, ...]``: the run's
``Trainer.act(state, obs, key, deterministic=True)`` with the state (network parameters and the observation
normalizer's running statistics) baked in as constants, so the model normalizes observations itself and
returns what the env takes (the argmax for discrete actions, the clipped or squashed mean for continuous
ones). The batch axis is symbolic (``B``).

Conversion goes through jax2onnx (the ``export`` extra: ``pip install "purejaxpo[export]"``). jax2onnx
0.13 and later pin ``orbax-checkpoint < 0.11.37`` against our 0.12.8, so the extra pins 0.12.5, the newest
release without that pin; it converts our policies on jax 0.10.2 (tested against onnxruntime in
``tests/test_after_training.py``). Its plugin for ``dm_pix`` does not import on jax 0.10.2 and logs a
traceback at import; that plugin is not used here, and the log is silenced while exporting.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np


class ExportError(ValueError):
    """The policy cannot be exported as asked (missing extra, bad output name)."""


def deterministic_policy(run: Any, setting: int = 0, seed: int = 0) -> Callable[[jax.Array], jax.Array]:
    """``obs [B, *obs_shape] -> env action [B, ...]`` of one run of ``run`` (a :class:`purejaxpo.SavedRun`)."""
    state = run.state_of(setting, seed)
    act = run.trainer.act
    key = jax.random.key(0)  # unused by deterministic actions; act's signature takes one
    return lambda obs: act(state, obs, key, deterministic=True)


def observation_shape(run: Any) -> tuple[int, ...]:
    return tuple(run.trainer.env.observation_space(run.trainer.env_params).shape)


def to_onnx(run: Any, path: str | Path, *, setting: int = 0, seed: int = 0) -> Path:
    """Write the deterministic policy of run ``(setting, seed)`` to ``path`` (atomically); returns the path."""
    from purejaxpo import atomic

    try:
        quiet = logging.getLogger("jax2onnx")
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            import jax2onnx
        finally:
            quiet.setLevel(level)
    except ImportError:
        raise ExportError('ONNX export needs jax2onnx: pip install "purejaxpo[export]"') from None
    policy = deterministic_policy(run, setting, seed)
    spec = [("B", *observation_shape(run))]
    quiet.setLevel(logging.ERROR)
    try:
        model = jax2onnx.to_onnx(policy, inputs=spec, model_name=f"{run.algorithm.name}_policy",
                                 input_names=["observation"], output_names=["action"])
    finally:
        quiet.setLevel(level)
    return atomic.write_bytes(path, model.SerializeToString())


def check_with_onnxruntime(run: Any, path: str | Path, obs: np.ndarray, *, setting: int = 0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(onnx_actions, jax_actions)`` for the batch ``obs``: the exported model under onnxruntime next to
    the run's own ``act``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_actions = session.run(None, {session.get_inputs()[0].name: np.asarray(obs, np.float32)})[0]
    jax_actions = np.asarray(jax.jit(deterministic_policy(run, setting, seed))(obs))
    return onnx_actions, jax_actions


def cmd_export(args: argparse.Namespace) -> int:
    from purejaxpo.saved_run import load_run

    out = Path(args.onnx)
    if out.suffix.lower() != ".onnx":
        raise ExportError(f"--onnx {out}: the file name must end in .onnx")
    run = load_run(args.dir)
    to_onnx(run, out, setting=args.setting, seed=args.seed)
    message = f"wrote {out} (deterministic {run.algorithm.name} policy on {run.description['env']}, setting {args.setting}, seed {args.seed}; input 'observation' [B, {', '.join(map(str, observation_shape(run)))}])"
    if args.check:
        obs = np.random.default_rng(0).normal(size=(16, *observation_shape(run))).astype(np.float32)
        onnx_actions, jax_actions = check_with_onnxruntime(run, out, obs, setting=args.setting, seed=args.seed)
        if not np.allclose(onnx_actions, jax_actions, rtol=1e-4, atol=1e-5):
            raise ExportError(f"{out}: onnxruntime's actions differ from act's on 16 random observations "
                              f"(max |diff| {np.max(np.abs(onnx_actions.astype(np.float64) - jax_actions)):.3g})")
        message += "; onnxruntime matches act on 16 random observations"
    print(message)
    return 0


def add_parser(sub: Any, parent: argparse.ArgumentParser) -> None:
    export = sub.add_parser("export", parents=[parent], help="write the deterministic policy of a saved run as ONNX")
    export.add_argument("dir", help="a run directory written by `purejaxpo train`")
    export.add_argument("--onnx", required=True, metavar="FILE", help="output .onnx file")
    export.add_argument("--setting", type=int, default=0, help="hyperparameter setting of a sweep (default 0)")
    export.add_argument("--seed", type=int, default=0, help="which of the run's seeds (index among the seeds run, default 0)")
    export.add_argument("--check", action="store_true", help="run the model with onnxruntime against act (needs onnxruntime)")
    export.set_defaults(func=cmd_export)
