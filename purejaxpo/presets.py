"""Named settings per algorithm: ``purejaxpo train ALGO --preset NAME``.

An algorithm's defaults follow its paper or reference code, which is sometimes sized for a GPU or a long run
(Hyper++'s Impala CNN at ~150 env-steps/s on a 2-core CPU; MDPO's 1 env × 2048 steps; PDPPO's 1M steps at
~2k env-steps/s). A preset is a set of ``--set`` values (a user's own ``--set`` wins) and a home
environment (used when ``--env`` is not given):

- ``cpu-small``: learns on its home env in minutes on a 2-core CPU, taken from the benchmark that measured it
  (``benchmarks/*.py``, named in ``source``); the README's recipe table (``benchmarks/recipes.py``,
  ``benchmarks/results/recipes.json``) runs each one;
- ``paper``: the paper's budget where the defaults are the paper's layout but not its budget (a GPU-sized run).

``purejaxpo list ALGO`` prints an algorithm's presets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence


@dataclass(frozen=True)
class Preset:
    """``values``: field → value as ``--set`` would give it (strings, parsed against the dataclass types)."""

    name: str
    env: str
    values: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    source: str = ""


def _p(name: str, env: str, summary: str, source: str = "", **values: Any) -> Preset:
    text = {k: ",".join(str(x) for x in v) if isinstance(v, tuple) else str(v) for k, v in values.items()}
    return Preset(name, env, text, summary, source)


_HYPER_SMALL = dict(encoder="mlp", hidden_sizes=(64, 64), num_envs=8, num_steps=128, num_minibatches=4,
                    total_timesteps=262_144)

PRESETS: dict[str, dict[str, Preset]] = {
    "ppo": {
        "pendulum": _p("pendulum", "Pendulum-v1", "continuous control: 16 envs × 128 steps, 10 epochs × 16 minibatches, "
                       "obs/reward normalization, 2e5 steps", "tests/test_ppo_learning.py",
                       num_envs=16, num_steps=128, total_timesteps=200_704, update_epochs=10, num_minibatches=16,
                       normalize_obs="true", normalize_rewards="true", lr=1e-3, gamma=0.95, ent_coef=0.0),
    },
    "pdppo": {
        "cpu-small": _p("cpu-small", "LotSizing-v0", "reference layout (4 envs × 100 steps, 40 epochs) at 4% of the "
                        "paper's 1M steps", "benchmarks/pdppo_lot_sizing.py", total_timesteps=40_000),
        "paper": _p("paper", "LotSizing-v0", "the paper's 1M env steps (GPU-sized: ~2k env-steps/s on 2 CPU cores)",
                    "benchmarks/pdppo_lot_sizing.py", total_timesteps=1_000_000),
    },
    "policyflow": {
        "cpu-small": _p("cpu-small", "MultiGoal-v0", "64-64 networks, lr 1e-3, 64 envs × 32 steps, 150 updates",
                        "benchmarks/policyflow_multigoal.py", hidden_sizes=(64, 64), critic_hidden_sizes=(64, 64),
                        total_timesteps=307_200, lr=1e-3),
    },
    "hyperpp": {
        "cpu-small": _p("cpu-small", "Breakout-MinAtar", "MLP encoder (the Impala CNN runs ~150 env-steps/s on a CPU), "
                        "8 envs × 128 steps, 2.6e5 steps", "benchmarks/hyperpp_minatar.py", **_HYPER_SMALL),
    },
    "hyper_srym": {
        "cpu-small": _p("cpu-small", "Breakout-MinAtar", "as hyperpp's cpu-small", "benchmarks/hyperpp_minatar.py", **_HYPER_SMALL),
    },
    "ppo_impala": {
        "cpu-small": _p("cpu-small", "Breakout-MinAtar", "as hyperpp's cpu-small", "benchmarks/hyperpp_minatar.py", **_HYPER_SMALL),
    },
    "mdpo": {
        "cpu-small": _p("cpu-small", "Pendulum-v1", "16 envs × 128 steps, 16 minibatches, lr 1e-3, γ 0.95, 1e5 steps "
                        "(the default 1 env × 2048 steps barely learns in 1e5)", "benchmarks/mdpo_continuous.py",
                        num_envs=16, num_steps=128, total_timesteps=100_352, num_minibatches=16, lr=1e-3, vf_lr=1e-3,
                        gamma=0.95),
    },
    "mdpo_off": {
        "cpu-small": _p("cpu-small", "Pendulum-v1", "64-64 networks, 1000 warm-up steps, 500 steps per update, 2e4 steps",
                        "benchmarks/mdpo_continuous.py", total_timesteps=21_000, steps_per_update=500,
                        learning_starts=1000, hidden_sizes=(64, 64)),
    },
    "sac": {
        "cpu-small": _p("cpu-small", "Pendulum-v1", "64-64 networks, 1000 warm-up steps, 500 steps per update, 1e4 steps",
                        "benchmarks/mdpo_continuous.py", total_timesteps=11_000, steps_per_update=500,
                        learning_starts=1000, hidden_sizes=(64, 64)),
    },
    "subpo": {
        "cpu-small": _p("cpu-small", "Coverage-v0", "one episode per rollout (num_steps = H − 1 = 79 on the 30×30, H = 80 "
                        "world), 64 envs, 150 updates", "benchmarks/subpo_coverage.py",
                        num_steps=79, total_timesteps=64 * 79 * 150),
    },
}


def for_algorithm(algo: str) -> dict[str, Preset]:
    return PRESETS.get(algo.lower(), {})


def get_preset(algo: str, name: str) -> Preset:
    """The preset ``name`` of ``algo``; ``ValueError`` listing the algorithm's presets otherwise."""
    known = for_algorithm(algo)
    if name not in known:
        listed = ", ".join(known) if known else "none (its defaults are its recipe)"
        raise ValueError(f"{algo} has no preset {name!r}; its presets: {listed}")
    return known[name]


def merged_sets(preset: Preset, user_sets: Sequence[str], total_timesteps: int | None) -> list[str]:
    """``--set`` items: the preset's values, overridden by the user's ``--set KEY=VALUE`` (and the preset's
    ``total_timesteps`` dropped when ``--total-timesteps`` is given)."""
    user_keys = {item.split("=", 1)[0].strip() for item in user_sets if "=" in item}
    if total_timesteps is not None:
        user_keys.add("total_timesteps")
    return [f"{k}={v}" for k, v in preset.values.items() if k not in user_keys] + list(user_sets)
