"""LotSizing-v0 (PDPPO): data loading, generator, hand-worked steps, NumPy oracle, post-decision split, API."""

from __future__ import annotations

import importlib.resources
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxpo.envs.lot_sizing import (
    LotSizing,
    LotSizingState,
    available_settings,
    generate_instance,
    load_setting,
    make_lot_sizing,
    params_from_setting,
)
from purejaxpo.envs.testing import check_contract, check_episode_end, random_rollout
from purejaxpo.environments import make_env
from purejaxpo.spaces import MultiDiscrete

SETTING = "15items_5machines_t100_i100"

# A 2-item, 2-machine instance small enough to step by hand.
SMALL = {
    "time_horizon": 100, "n_items": 2, "n_machines": 2, "initial_setup": [0, 0],
    "machine_production": [[10, 0], [4, 6]],
    "max_inventory_level": [20, 20], "initial_inventory": [0, 0],
    "holding_costs": [0.01, 0.02], "lost_sales_costs": [0.5, 1.5],
    "demand_distribution": {"name": "binomial", "n": 5, "p": 1.0},  # p = 1: demand is exactly 5 per item
    "setup_costs": [[15, 20], [25, 30]], "setup_loss": [[1, 2], [2, 3]],
}


def state_of(inventory, setup, time=0) -> LotSizingState:
    return LotSizingState(inventory=jnp.asarray(inventory, jnp.int32), setup=jnp.asarray(setup, jnp.int32),
                          time=jnp.asarray(time, jnp.int32))


def numpy_step(inventory, setup, action, demand, s: dict) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Plain-loop port of the reference step (spec §5.1): returns (inventory, setup, reward, post_reward)."""
    x, sigma = [int(v) for v in inventory], [int(v) for v in setup]
    setup_cost = 0.0
    for m, a in enumerate(int(v) for v in action):
        if a != 0:
            loss = 0
            if sigma[m] != a:
                setup_cost += s["setup_costs"][m][a - 1]
                loss = s["setup_loss"][m][a - 1]
            sigma[m] = a
            x[a - 1] += s["machine_production"][m][a - 1] - loss
        else:
            sigma[m] = 0
    lost, holding = 0.0, 0.0
    for i in range(len(x)):
        x[i] -= int(demand[i])
        if x[i] < 0:
            lost += -x[i] * s["lost_sales_costs"][i]
            x[i] = 0
        elif x[i] > s["max_inventory_level"][i]:
            x[i] = s["max_inventory_level"][i]
        holding += x[i] * s["holding_costs"][i]
    return np.array(x), np.array(sigma), -(setup_cost + lost + holding), -setup_cost


# ------------------------------------------------------------------------------------------------ data


def test_setting_ships_as_package_data():
    resource = importlib.resources.files("purejaxpo.envs").joinpath("data").joinpath("lot_sizing").joinpath(
        f"setting_{SETTING}.json")
    assert resource.is_file()
    setting = load_setting(SETTING)
    assert setting == json.loads(resource.read_text())
    assert SETTING in available_settings()
    assert (setting["n_items"], setting["n_machines"], setting["time_horizon"]) == (15, 5, 100)
    assert np.asarray(setting["machine_production"]).shape == (5, 15)
    with pytest.raises(ValueError, match="unknown lot-sizing setting"):
        load_setting("3items_1machine")


def _readme_hashes() -> dict[str, str]:
    """``file -> git blob sha1`` from the provenance table of ``envs/data/lot_sizing/README.md``."""
    text = importlib.resources.files("purejaxpo.envs").joinpath("data").joinpath("lot_sizing").joinpath("README.md")
    rows = [line.split("|") for line in text.read_text().splitlines() if line.startswith("| setting_")]
    return {cells[1].strip(): cells[4].strip() for cells in rows}


@pytest.mark.parametrize("name, shape", [("15items_5machines_t100_i100", (5, 15)), ("20items_10machines_t100_i100", (10, 20)),
                                         ("25items_10machines_t100_i100", (10, 25)), ("25items_15machines_t100_i100", (15, 25))])
def test_shipped_instances_match_their_recorded_hashes_and_shapes(name, shape):
    """Each shipped file's git blob sha1 equals the one in the README's provenance table (so an edit of a
    transcribed instance is caught), its arrays have the declared shapes and the env builds from it."""
    import hashlib

    resource = importlib.resources.files("purejaxpo.envs").joinpath("data").joinpath("lot_sizing").joinpath(f"setting_{name}.json")
    data = resource.read_bytes()
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    assert _readme_hashes()[f"setting_{name}.json"] == blob
    setting = load_setting(name)
    machines, items = shape
    assert (setting["n_machines"], setting["n_items"], setting["time_horizon"]) == (machines, items, 100)
    for field in ("machine_production", "setup_costs", "setup_loss"):
        assert np.asarray(setting[field]).shape == shape, field
    for field in ("max_inventory_level", "initial_inventory", "holding_costs", "lost_sales_costs"):
        assert np.asarray(setting[field]).shape == (items,), field
    assert np.all(np.asarray(setting["machine_production"]).sum(axis=0) > 0)  # every item makeable
    env, params = make_lot_sizing(name)
    assert env.observation_space(params).shape == (items,) and env.action_space(params).shape == (machines,)
    assert name in available_settings()


def test_default_env_matches_the_json():
    env, params = make_env("LotSizing-v0")
    setting = load_setting(SETTING)
    np.testing.assert_array_equal(params.machine_production, setting["machine_production"])
    np.testing.assert_allclose(params.setup_costs, setting["setup_costs"])
    np.testing.assert_array_equal(params.setup_loss, setting["setup_loss"])
    np.testing.assert_allclose(params.lost_sales_costs, setting["lost_sales_costs"])
    assert (params.demand_n, params.demand_p, params.horizon, params.max_steps_in_episode) == (20, 0.4, 100, 100)
    assert env.observation_space(params).shape == (15,)
    space = env.action_space(params)
    assert isinstance(space, MultiDiscrete) and space.shape == (5,) and space.num_categories == 16


def test_generate_instance():
    a = generate_instance(7, 6, 3)
    assert a == generate_instance(7, 6, 3)
    assert a != generate_instance(8, 6, 3)
    assert generate_instance(jax.random.PRNGKey(1), 6, 3)["n_items"] == 6
    prod = np.asarray(a["machine_production"])
    assert prod.shape == (3, 6) and prod.min() >= 0 and prod.max() <= 40
    assert (prod.sum(axis=0) > 0).all() and (prod.sum(axis=1) > 0).all()
    assert 15 <= np.min(a["setup_costs"]) and np.max(a["setup_costs"]) <= 30
    assert 1 <= np.min(a["setup_loss"]) and np.max(a["setup_loss"]) <= 3
    assert 0.1 <= np.min(a["lost_sales_costs"]) and np.max(a["lost_sales_costs"]) <= 0.3
    params = params_from_setting(a)
    assert params.machine_production.shape == (3, 6)
    env, params = make_env("LotSizing-v0", num_items=6, num_machines=3, seed=7)
    assert env.num_items == 6 and env.action_space(params).shape == (3,)
    with pytest.raises(ValueError):
        make_lot_sizing(num_items=4)
    with pytest.raises(ValueError):
        generate_instance(0, 0, 2)


# ------------------------------------------------------------------------------------------------ dynamics


def test_hand_worked_steps():
    env = LotSizing(SMALL)
    params = env.default_params
    key = jax.random.PRNGKey(0)
    step = jax.jit(env.step_env)

    # 1) x = [3, 8], σ = [1, 1], a = [1, 2]. Machine 0 keeps item 1: no setup, +10 -> x1 = 13.
    #    Machine 1 switches to item 2: setup cost 30, loss 3, +6 - 3 = +3 -> x2 = 11. r^x = -30.
    #    Demand 5 each: x = [8, 6]; holding 8*0.01 + 6*0.02 = 0.20; r = -30.20.
    obs, state, reward, terminated, info = step(key, state_of([3, 8], [1, 1]), jnp.array([1, 2]), params)
    np.testing.assert_allclose(info["post_obs"], [13.0, 11.0])
    np.testing.assert_allclose(info["post_reward"], -30.0)
    np.testing.assert_allclose(obs, [8.0, 6.0])
    np.testing.assert_array_equal(state.setup, [1, 2])
    np.testing.assert_allclose(info["holding_cost"], 0.20, rtol=1e-6)
    np.testing.assert_allclose(reward, -30.20, rtol=1e-6)
    assert int(state.time) == 1 and not bool(terminated)

    # 2) idle both: σ -> [0, 0], no cost; x = [8-5, 6-5] = [3, 1]; holding 0.03 + 0.02 = 0.05.
    obs, state, reward, _, info = step(key, state, jnp.array([0, 0]), params)
    np.testing.assert_allclose(obs, [3.0, 1.0])
    np.testing.assert_array_equal(state.setup, [0, 0])
    np.testing.assert_allclose(reward, -0.05, rtol=1e-6)

    # 3) a = [0, 2]: machine 1 restarts after idling, so it pays setup 30 and loses 3: x2 = 1 + 3 = 4.
    #    Demand: x = [3-5, 4-5] = [-2, -1] -> lost sales 2*0.5 + 1*1.5 = 2.5, inventory [0, 0], holding 0.
    obs, state, reward, _, info = step(key, state, jnp.array([0, 2]), params)
    np.testing.assert_allclose(obs, [0.0, 0.0])
    np.testing.assert_allclose(info["lost_sales_cost"], 2.5)
    np.testing.assert_allclose(info["post_reward"], -30.0)
    np.testing.assert_allclose(info["stochastic_reward"], -2.5)
    np.testing.assert_allclose(reward, -32.5)

    # 4) over the cap: x = [18, 0], σ = [1, 0], a = [1, 0]: x1 = 28 - 5 = 23 -> capped at 20 (no cost for the
    #    excess); item 2: 0 - 5 -> 5 lost at 1.5 = 7.5. Holding 20*0.01 = 0.2. r = -7.7.
    obs, state, reward, _, info = step(key, state_of([18, 0], [1, 0]), jnp.array([1, 0]), params)
    np.testing.assert_allclose(obs, [20.0, 0.0])
    np.testing.assert_allclose(reward, -7.7, rtol=1e-6)

    # 5) a machine with rate 0 and a setup loss "produces" a negative amount (no capacity check, as the code):
    #    x = [1, 0], σ = [0, 0], a = [2, 0]: machine 0 on item 2 pays 20, loses 2: x2 = 0 + 0 - 2 = -2.
    post_obs, post_reward = env.post_decision(state_of([1, 0], [0, 0]), jnp.array([2, 0]), params)
    np.testing.assert_allclose(post_obs, [1.0, -2.0])
    np.testing.assert_allclose(post_reward, -20.0)


def test_transition_matches_numpy_reference_on_the_shipped_setting():
    env = LotSizing(SETTING)
    params = env.default_params
    setting = load_setting(SETTING)
    rng = np.random.default_rng(0)
    transition = jax.jit(env.transition)
    for _ in range(30):
        inventory = rng.integers(0, 100, 15)
        setup = rng.integers(0, 16, 5)
        action = rng.integers(0, 16, 5)
        demand = rng.binomial(20, 0.4, 15)
        obs, state, reward, _, info = transition(state_of(inventory, setup), jnp.asarray(action),
                                                 jnp.asarray(demand, jnp.int32), params)
        x, sigma, r, r_post = numpy_step(inventory, setup, action, demand, setting)
        np.testing.assert_array_equal(state.inventory, x)
        np.testing.assert_array_equal(state.setup, sigma)
        np.testing.assert_allclose(obs, x.astype(np.float32))
        np.testing.assert_allclose(reward, r, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(info["post_reward"], r_post, rtol=1e-6)


def test_post_decision_is_deterministic_and_splits_the_reward():
    env = LotSizing(SETTING)
    params = env.default_params
    _, state = env.reset(jax.random.PRNGKey(3), params)
    action = jnp.array([1, 2, 0, 4, 15])
    post = jax.jit(env.post_decision)
    first, second = post(state, action, params), post(state, action, params)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    for seed in range(5):
        _, _, reward, _, _, info = env.step(jax.random.PRNGKey(seed), state, action, params)
        np.testing.assert_array_equal(info["post_obs"], first[0])
        np.testing.assert_array_equal(info["post_reward"], first[1])
        # r = r^x + r^stoch with r^stoch = -(lost sales + holding), spec §2
        np.testing.assert_allclose(reward, info["post_reward"] + info["stochastic_reward"], rtol=1e-6)
        np.testing.assert_allclose(info["stochastic_reward"], -(info["lost_sales_cost"] + info["holding_cost"]),
                                   rtol=1e-6)
        np.testing.assert_allclose(info["post_reward"], -info["setup_cost"])


def test_reset_and_demand_distribution():
    env = LotSizing(SETTING)
    params = env.default_params
    _, states = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(0), 512), params)
    inv, setup = np.asarray(states.inventory), np.asarray(states.setup)
    assert inv.min() >= 0 and inv.max() <= 99
    assert np.all(states.time == 0)
    prod = np.asarray(params.machine_production)
    for m in range(5):  # each machine starts set up for an item it can make
        assert np.all(prod[m, setup[:, m] - 1] > 0) and setup[:, m].min() >= 1
    demand = np.asarray(jax.vmap(env.sample_demand, in_axes=(0, None))(
        jax.random.split(jax.random.PRNGKey(1), 4000), params))
    assert demand.min() >= 0 and demand.max() <= 20
    np.testing.assert_allclose(demand.mean(), 8.0, atol=0.1)  # Binomial(20, 0.4): mean 8, var 4.8
    np.testing.assert_allclose(demand.var(), 4.8, atol=0.2)


def test_observe_setups():
    env, params = make_env("LotSizing-v0", observe_setups=True)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert obs.shape == (20,) and env.observation_space(params).shape == (20,)
    np.testing.assert_array_equal(obs[15:], state.setup)
    post_obs, _ = env.post_decision(state, jnp.array([0, 1, 2, 3, 4]), params)
    np.testing.assert_array_equal(post_obs[15:], [0, 1, 2, 3, 4])


# ------------------------------------------------------------------------------------------------ API


@pytest.mark.timeout(120)
def test_jit_vmap_1024_and_contract():
    env, params = make_env("LotSizing-v0")
    roll = random_rollout(env, params, jax.random.PRNGKey(0), 1024, 8)
    check_contract(env, params, roll)
    np.testing.assert_allclose(roll.rewards, roll.info["post_reward"] + roll.info["stochastic_reward"],
                               rtol=1e-5, atol=1e-4)
    assert roll.info["post_obs"].shape == (8, 1024, 15) and roll.info["post_obs"].dtype == jnp.float32
    assert not np.asarray(roll.terminated).any()


@pytest.mark.timeout(120)
def test_auto_reset_at_the_horizon():
    env, params = make_env("LotSizing-v0")
    short = params.replace(horizon=3, max_steps_in_episode=3)
    roll = random_rollout(env, short, jax.random.PRNGKey(1), 1024, 7)
    check_contract(env, short, roll)
    done_steps = np.flatnonzero(np.asarray(roll.terminated[:, 0]))
    np.testing.assert_array_equal(done_steps, [2, 5])  # episodes of 3 steps
    assert np.asarray(roll.terminated)[[2, 5]].all() and np.asarray(roll.truncated)[[2, 5]].all()
    np.testing.assert_array_equal(roll.states.time[2], 0)
    np.testing.assert_array_equal(roll.obs[2], roll.states.inventory[2])  # the obs is the reset obs
    # single env, by the contract: final_observation from step_env, obs/state from reset_env
    state = state_of(np.arange(15), np.ones(5), time=99)
    info = check_episode_end(env, params, jax.random.PRNGKey(5), state, jnp.array([1, 0, 0, 0, 0]))
    assert info["final_observation"].shape == (15,)
