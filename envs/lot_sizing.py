"""Stochastic multi-item, multi-machine discrete lot sizing ("SimplePlant"), the PDPPO benchmark.

Paper: Felizardo et al., "Post-Decision Proximal Policy Optimization with Dual Critic Networks",
arXiv:2504.05150; dynamics from the reference code ``code/Lot-sizing/envs/simplePlant.py`` (all [C] unless marked [P]).

``I`` items, ``M`` machines. State: integer inventory ``x [I]``, machine setups ``σ [M]`` (0 = idle, ``i`` = item
``i``, 1-based), time. Action ``a [M]`` (``MultiDiscrete([I+1]*M)``): ``a_m = 0`` idles machine ``m``,
``a_m = i ≥ 1`` makes item ``i``. One step:

1. post-decision, deterministic (:meth:`LotSizing.post_decision`): for each machine with ``a_m ≠ 0``, if
   ``σ_m ≠ a_m`` pay ``setup_costs[m, a_m−1]`` and lose ``setup_loss[m, a_m−1]`` units; then
   ``x[a_m−1] += machine_production[m, a_m−1] − loss``; ``σ ← a`` (idling resets the setup). Capacity is not
   checked (a machine may "make" an item at rate 0, and the setup loss may drive ``x^x`` below 0), as in the
   code. ``r^x = −Σ setup costs``.
2. stochastic: demand ``D_i ~ Binomial(n, p)`` i.i.d. (default ``n=20, p=0.4``); ``x_i ← x^x_i − D_i``;
   shortfalls are lost at ``lost_sales_costs[i]`` per unit; the rest is capped at ``max_inventory[i]`` (excess
   discarded) and pays ``holding_costs[i]`` per unit.

Reward ``r = r^x + r^stoch`` with ``r^stoch = −(lost sales + holding)``; ``info["post_reward"] = r^x``,
``info["stochastic_reward"] = r^stoch``, ``info["post_obs"]`` the post-decision observation. The episode ends
(``terminated``) after ``horizon = 100`` steps: the problem has a fixed horizon and the reference code resets its
Monte-Carlo returns there without bootstrapping; ``truncated`` is also set at that step because
``max_steps_in_episode = horizon``. Reset: ``x_i ~ U{0, …, max_i − 1}``, each ``σ_m`` a uniformly random item
machine ``m`` can make.

Observation (float32): ``x [I]`` (the paper's default, ``observe_setups=False``), or ``[x, σ] [I+M]`` with
``observe_setups=True`` [P: our proposal; the reference code has the setup part commented out].

[P] choices (our reading): demand is drawn per step instead of a whole ``[I, T+1]`` scenario per episode (same
law, draws are i.i.d.); machines are applied with a one-hot sum instead of a sequential loop (the inventory
update is additive with no clipping in between, so the order does not matter); ``Binomial(n, p)`` is sampled as
one uniform through the inverse CDF.
"""

from __future__ import annotations

import importlib.resources
import json
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.scipy.special import gammaln, xlog1py, xlogy
from gymnax.environments import environment, spaces

from purejaxpo.spaces import MultiDiscrete

DEFAULT_SETTING = "15items_5machines_t100_i100"


@struct.dataclass(kw_only=True)
class LotSizingState(environment.EnvState):
    inventory: jax.Array  # [I] int32
    setup: jax.Array  # [M] int32, 0 = idle, i = item i (1-based)
    time: jax.Array  # [] int32


@struct.dataclass(kw_only=True)
class LotSizingParams(environment.EnvParams):
    machine_production: jax.Array  # [M, I] int32, units per period (0 = cannot make)
    setup_costs: jax.Array  # [M, I] float32
    setup_loss: jax.Array  # [M, I] int32, units lost on a changeover
    max_inventory: jax.Array  # [I] int32
    holding_costs: jax.Array  # [I] float32, per unit per period
    lost_sales_costs: jax.Array  # [I] float32, per unit short
    demand_p: jax.Array | float = 0.4  # Binomial success probability
    demand_n: int = struct.field(pytree_node=False, default=20)  # Binomial trials (static: a shape)
    horizon: int = 100
    max_steps_in_episode: int = 100


# ----------------------------------------------------------------------------------------------------------------
# Instance settings
# ----------------------------------------------------------------------------------------------------------------


def _data_dir() -> Any:
    """The shipped ``envs/data/lot_sizing`` folder as an ``importlib.resources`` Traversable."""
    return importlib.resources.files("purejaxpo.envs").joinpath("data").joinpath("lot_sizing")


def available_settings() -> list[str]:
    """Names of the settings shipped as package data (``envs/data/lot_sizing/setting_<name>.json``)."""
    names = [p.name for p in _data_dir().iterdir() if p.name.startswith("setting_") and p.name.endswith(".json")]
    return sorted(n[len("setting_"):-len(".json")] for n in names)


def load_setting(name: str = DEFAULT_SETTING) -> dict[str, Any]:
    """Load a shipped setting by name (e.g. ``"15items_5machines_t100_i100"``) through ``importlib.resources``.

    Raises ``ValueError`` listing the shipped names for an unknown one.
    """
    resource = _data_dir().joinpath(f"setting_{name}.json")
    if not resource.is_file():
        raise ValueError(f"unknown lot-sizing setting {name!r}; shipped settings: {available_settings()}")
    return json.loads(resource.read_text())


def _draw(rng: np.random.Generator, low: float, high: float, p_low: float, shape: tuple[int, ...],
          integer: bool) -> np.ndarray:
    """``generate_setting.py``'s recipe: ``low`` with probability ``p_low``, otherwise uniform over the rest."""
    rest = rng.integers(low + 1, high + 1, size=shape) if integer else rng.uniform(low, high, size=shape)
    return np.where(rng.uniform(size=shape) < p_low, low, rest)


def generate_instance(
    key_or_seed: int | jax.Array,
    num_items: int,
    num_machines: int,
    *,
    horizon: int = 100,
    max_inventory: int = 100,
    holding_cost: float = 0.01,
    demand_n: int = 20,
    demand_p: float = 0.4,
) -> dict[str, Any]:
    """A new random setting (same schema as the JSON files), following the reference ``generate_setting.py``.

    A value in ``[lo, hi]`` equals ``lo`` with probability ``p`` and is otherwise uniform over the rest:
    production ``[0, 40]`` p=0.4, setup cost ``[15, 30]`` p=0.2, setup loss ``[1, 3]`` p=0.7, initial inventory
    ``[0, 50]`` p=0.05, lost-sales cost ``[0.1, 0.3]`` p=0.5 (continuous). [P]: every item is made makeable by
    at least one machine (a zero production column is redrawn as one machine at rate ``U{1..40}``) and every
    machine can make at least one item, so the random reset of setups is always defined. Host-side NumPy.

    Args: ``key_or_seed``: an int seed or a JAX PRNG key. Returns a ``dict``.
    """
    if num_items < 1 or num_machines < 1:
        raise ValueError(f"need num_items >= 1 and num_machines >= 1, got {num_items}, {num_machines}")
    if isinstance(key_or_seed, (int, np.integer)):
        seed = int(key_or_seed)
    else:
        seed = int(jax.random.randint(key_or_seed, (), 0, np.iinfo(np.int32).max))
    rng = np.random.default_rng(seed)
    shape = (num_machines, num_items)
    production = _draw(rng, 0, 40, 0.4, shape, True).astype(np.int64)
    for i in np.flatnonzero(production.sum(axis=0) == 0):
        production[rng.integers(num_machines), i] = rng.integers(1, 41)
    for m in np.flatnonzero(production.sum(axis=1) == 0):
        production[m, rng.integers(num_items)] = rng.integers(1, 41)
    return {
        "time_horizon": int(horizon),
        "n_items": int(num_items),
        "n_machines": int(num_machines),
        "initial_setup": [0] * num_machines,
        "machine_production": production.tolist(),
        "max_inventory_level": [int(max_inventory)] * num_items,
        "initial_inventory": _draw(rng, 0, 50, 0.05, (num_items,), True).astype(int).tolist(),
        "holding_costs": [float(holding_cost)] * num_items,
        "lost_sales_costs": np.round(_draw(rng, 0.1, 0.3, 0.5, (num_items,), False), 4).tolist(),
        "demand_distribution": {"name": "binomial", "n": int(demand_n), "p": float(demand_p)},
        "setup_costs": _draw(rng, 15, 30, 0.2, shape, True).astype(int).tolist(),
        "setup_loss": _draw(rng, 1, 3, 0.7, shape, True).astype(int).tolist(),
    }


def params_from_setting(setting: dict[str, Any], horizon: int | None = None) -> LotSizingParams:
    """Build :class:`LotSizingParams` from a setting ``dict`` (JSON schema of the reference code)."""
    demand = setting.get("demand_distribution", {"name": "binomial", "n": 20, "p": 0.4})
    if demand.get("name", "binomial") != "binomial":
        raise ValueError(f"only binomial demand is supported, got {demand!r}")
    num_items, num_machines = int(setting["n_items"]), int(setting["n_machines"])
    production = np.asarray(setting["machine_production"], np.int32)
    if production.shape != (num_machines, num_items):
        raise ValueError(f"machine_production has shape {production.shape}, expected {(num_machines, num_items)}")
    horizon = int(setting.get("time_horizon", 100) if horizon is None else horizon)
    return LotSizingParams(
        machine_production=jnp.asarray(production),
        setup_costs=jnp.asarray(setting["setup_costs"], jnp.float32),
        setup_loss=jnp.asarray(setting["setup_loss"], jnp.int32),
        max_inventory=jnp.asarray(setting["max_inventory_level"], jnp.int32),
        holding_costs=jnp.asarray(setting["holding_costs"], jnp.float32),
        lost_sales_costs=jnp.asarray(setting["lost_sales_costs"], jnp.float32),
        demand_p=float(demand.get("p", 0.4)),
        demand_n=int(demand.get("n", 20)),
        horizon=horizon,
        max_steps_in_episode=horizon,
    )


# ----------------------------------------------------------------------------------------------------------------
# Environment
# ----------------------------------------------------------------------------------------------------------------


class LotSizing(environment.Environment[LotSizingState, LotSizingParams]):
    """Stochastic discrete lot sizing with setups, setup losses, lost sales and holding costs (see module doc)."""

    def __init__(self, setting: str | dict[str, Any] = DEFAULT_SETTING, observe_setups: bool = False,
                 horizon: int | None = None):
        super().__init__()
        setting = load_setting(setting) if isinstance(setting, str) else setting
        self._default_params = params_from_setting(setting, horizon)
        self.num_items = int(setting["n_items"])
        self.num_machines = int(setting["n_machines"])
        self.observe_setups = bool(observe_setups)

    @property
    def default_params(self) -> LotSizingParams:
        return self._default_params

    @property
    def name(self) -> str:
        return "LotSizing-v0"

    # -- pieces ---------------------------------------------------------------------------------------------------

    def _obs(self, inventory: jax.Array, setup: jax.Array) -> jax.Array:
        obs = inventory.astype(jnp.float32)
        if self.observe_setups:
            obs = jnp.concatenate([obs, setup.astype(jnp.float32)])
        return obs

    def _post_decision_state(
        self, state: LotSizingState, action: jax.Array, params: LotSizingParams
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(post_inventory [I] int32, post_setup [M] int32, setup_cost [] float32)``."""
        action = jnp.asarray(action, jnp.int32).reshape(self.num_machines)
        machines = jnp.arange(self.num_machines)
        item = jnp.maximum(action - 1, 0)  # [M], 0-based item (meaningless where idle)
        active = action > 0
        change = active & (state.setup != action)
        cost = jnp.where(change, params.setup_costs[machines, item], 0.0)
        loss = jnp.where(change, params.setup_loss[machines, item], 0)
        made = jnp.where(active, params.machine_production[machines, item] - loss, 0)  # [M]
        delta = jnp.sum(jax.nn.one_hot(item, self.num_items, dtype=jnp.int32) * made[:, None], axis=0)
        return state.inventory + delta, action, jnp.sum(cost)

    def post_decision(
        self, state: LotSizingState, action: jax.Array, params: LotSizingParams
    ) -> tuple[jax.Array, jax.Array]:
        """Deterministic post-decision step: ``(post_obs [obs_dim] float32, post_reward [] float32)``.

        ``post_reward = −Σ_m setup cost``; ``post_obs`` is the observation of ``(x^x, σ')`` (same layout as
        the observation). Pure: no key, no side effects.
        """
        inventory, setup, setup_cost = self._post_decision_state(state, action, params)
        return self._obs(inventory, setup), -setup_cost

    def sample_demand(self, key: jax.Array, params: LotSizingParams) -> jax.Array:
        """``D [I] int32``, i.i.d. ``Binomial(demand_n, demand_p)`` by inverse CDF (one uniform per item)."""
        n = params.demand_n
        k = jnp.arange(n + 1, dtype=jnp.float32)
        log_pmf = (gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)
                   + xlogy(k, params.demand_p) + xlog1py(n - k, -params.demand_p))
        cdf = jnp.cumsum(jnp.exp(log_pmf))[:n]  # P(D <= k), k = 0..n-1
        u = jax.random.uniform(key, (self.num_items, 1))
        return jnp.sum(u >= cdf, axis=1).astype(jnp.int32)

    def transition(
        self, state: LotSizingState, action: jax.Array, demand: jax.Array, params: LotSizingParams
    ) -> tuple[jax.Array, LotSizingState, jax.Array, jax.Array, dict[str, jax.Array]]:
        """The whole step for a given demand ``[I]``: ``(obs, state, reward, terminated, info)``; deterministic."""
        post_inventory, post_setup, setup_cost = self._post_decision_state(state, action, params)
        net = post_inventory - demand
        lost_sales = jnp.sum(jnp.maximum(-net, 0).astype(jnp.float32) * params.lost_sales_costs)
        inventory = jnp.clip(net, 0, params.max_inventory)
        holding = jnp.sum(inventory.astype(jnp.float32) * params.holding_costs)
        post_reward = -setup_cost
        stochastic_reward = -(lost_sales + holding)
        new_state = LotSizingState(inventory=inventory, setup=post_setup, time=state.time + 1)
        info = {
            "post_obs": self._obs(post_inventory, post_setup),
            "post_reward": post_reward,
            "stochastic_reward": stochastic_reward,
            "setup_cost": setup_cost,
            "lost_sales_cost": lost_sales,
            "holding_cost": holding,
        }
        reward = post_reward + stochastic_reward
        return self._obs(inventory, post_setup), new_state, reward, self.is_terminated(new_state, params), info

    # -- gymnax API -----------------------------------------------------------------------------------------------

    def step_env(
        self, key: jax.Array, state: LotSizingState, action: jax.Array, params: LotSizingParams
    ) -> tuple[jax.Array, LotSizingState, jax.Array, jax.Array, dict[str, jax.Array]]:
        return self.transition(state, action, self.sample_demand(key, params), params)

    def reset_env(self, key: jax.Array, params: LotSizingParams) -> tuple[jax.Array, LotSizingState]:
        """``x_i ~ U{0..max_i − 1}``; ``σ_m`` uniform over the items machine ``m`` can make (0 if none)."""
        key_inv, key_setup = jax.random.split(key)
        u_inv = jax.random.uniform(key_inv, (self.num_items,))
        inventory = jnp.minimum((u_inv * params.max_inventory).astype(jnp.int32), params.max_inventory - 1)
        can_make = (params.machine_production > 0).astype(jnp.int32)  # [M, I]
        count = can_make.sum(axis=1)  # [M]
        u_setup = jax.random.uniform(key_setup, (self.num_machines,))
        j = jnp.minimum((u_setup * count).astype(jnp.int32), count - 1)  # which makeable item, 0-based
        index = jnp.sum(jnp.cumsum(can_make, axis=1) <= j[:, None], axis=1)  # its item index
        setup = jnp.where(count > 0, index + 1, 0).astype(jnp.int32)
        state = LotSizingState(inventory=inventory, setup=setup, time=jnp.zeros((), jnp.int32))
        return self._obs(inventory, setup), state

    def is_terminated(self, state: LotSizingState, params: LotSizingParams) -> jax.Array:
        return state.time >= params.horizon

    def observation_space(self, params: LotSizingParams) -> spaces.Box:
        high = params.max_inventory.astype(jnp.float32)
        low = jnp.zeros_like(high)
        if self.observe_setups:
            high = jnp.concatenate([high, jnp.full((self.num_machines,), float(self.num_items), jnp.float32)])
            low = jnp.zeros_like(high)
        return spaces.Box(low, high, high.shape, jnp.float32)

    def action_space(self, params: LotSizingParams | None = None) -> MultiDiscrete:
        return MultiDiscrete([self.num_items + 1] * self.num_machines)


def make_lot_sizing(
    setting: str | dict[str, Any] = DEFAULT_SETTING,
    *,
    observe_setups: bool = False,
    num_items: int | None = None,
    num_machines: int | None = None,
    seed: int = 0,
    horizon: int | None = None,
) -> tuple[LotSizing, LotSizingParams]:
    """Factory for ``LotSizing-v0``: a shipped setting by name (or a setting dict), or a generated instance when
    ``num_items``/``num_machines`` are given (``generate_instance(seed, num_items, num_machines)``)."""
    if (num_items is None) != (num_machines is None):
        raise ValueError("give both num_items and num_machines to generate an instance, or neither")
    if num_items is not None:
        setting = generate_instance(seed, num_items, num_machines, horizon=horizon or 100)
    env = LotSizing(setting, observe_setups=observe_setups, horizon=horizon)
    return env, env.default_params
