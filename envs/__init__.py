"""purejaxpo's own JAX environments (gymnax 1.x step API), installed as ``purejaxpo.envs`` (the repo keeps them in
its top-level ``envs/`` folder) and reached through :func:`purejaxpo.make_env`, which reads :data:`ENV_FACTORIES`
on first use. This package never imports :mod:`purejaxpo.environments` (no import circle).

Every factory returns ``(env, env_params)``; keyword arguments pick instances and variants.

| name | module | paper |
|---|---|---|
| ``LotSizing-v0`` | :mod:`purejaxpo.envs.lot_sizing` | PDPPO (stochastic lot sizing, post-decision states) |
| ``FrozenLakeStochastic-v0`` | :mod:`purejaxpo.envs.frozen_lake_stochastic` | PDPPO (slippery lake, post-decision states) |
| ``MultiGoal-v0`` | :mod:`purejaxpo.envs.multigoal` | PolicyFlow (6-goal double integrator) |
| ``Coverage-v0``, ``InformativePath-v0``, ``SteinerCovering-v0``, ``FacilityLocation-v0`` |
  :mod:`purejaxpo.envs.submodular_worlds` | SubPO (submodular grid worlds) |
"""

from __future__ import annotations

from purejaxpo.envs.frozen_lake_stochastic import FrozenLakeStochastic, make_frozen_lake
from purejaxpo.envs.lot_sizing import LotSizing, generate_instance, load_setting, make_lot_sizing
from purejaxpo.envs.memory_probe import MemoryProbe, make_memory_probe
from purejaxpo.envs.multigoal import MultiGoal, make_multigoal
from purejaxpo.envs.submodular_worlds import (
    SubmodularGridWorld,
    make_coverage,
    make_facility_location,
    make_informative_path,
    make_steiner_covering,
)

ENV_FACTORIES = {
    "LotSizing-v0": (make_lot_sizing, "PDPPO stochastic multi-item multi-machine lot sizing (15 items x 5 machines)"),
    "FrozenLakeStochastic-v0": (make_frozen_lake, "PDPPO slippery FrozenLake with post-decision states (8x8)"),
    "MultiGoal-v0": (make_multigoal, "PolicyFlow 2-D double integrator with 6 goals on a circle"),
    "Coverage-v0": (make_coverage, "SubPO grid world, reward = marginal gain of weighted disc coverage"),
    "InformativePath-v0": (make_informative_path, "SubPO grid world, reward = marginal GP log-det information"),
    "SteinerCovering-v0": (make_steiner_covering, "SubPO grid world, reward = marginal truncated item coverage"),
    "FacilityLocation-v0": (make_facility_location, "grid world, reward = marginal facility-location value"),
    "MemoryProbe-v0": (make_memory_probe, "recall the first observation's cue at the last step (needs memory)"),
}

__all__ = [
    "ENV_FACTORIES",
    "FrozenLakeStochastic",
    "LotSizing",
    "MemoryProbe",
    "MultiGoal",
    "SubmodularGridWorld",
    "generate_instance",
    "load_setting",
    "make_coverage",
    "make_facility_location",
    "make_frozen_lake",
    "make_informative_path",
    "make_lot_sizing",
    "make_memory_probe",
    "make_multigoal",
    "make_steiner_covering",
]
