"""Evaluation helpers for the submodular worlds: episodes of a policy, and a greedy planner that knows the map
(the oracle the SubPO benchmark compares with, :mod:`benchmarks.subpo_coverage`)."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def episode_rollout(
    env: Any, env_params: Any, policy: Callable[[Array, Array], Array], key: Array, num_episodes: int, num_steps: int
) -> tuple[Array, Array]:
    """Run ``num_episodes`` episodes of ``num_steps`` steps with ``step_env`` (no auto-reset).

    ``policy(obs [B, ...], key) -> actions [B]``. Returns ``(objective [B], cells [num_steps + 1, B])``:
    ``F(τ)`` from the final state's ``value`` and the visited cells ``s_0..s_T`` (``state.pos`` of the grid
    worlds, or the :class:`SubRLWrapper`'s ``info["cell"]``).
    """
    reset_key, key = jax.random.split(key)
    obs, state = jax.vmap(env.reset_env, in_axes=(0, None))(jax.random.split(reset_key, num_episodes), env_params)

    def cell_of(state: Any) -> Array:
        pos = getattr(state, "pos", None)
        if pos is not None:
            return pos
        return jnp.argmax(state.visited, axis=-1).astype(jnp.int32)  # at reset the only visited cell is s_0

    def step(carry: tuple[Array, Any], step_key: Array) -> tuple[tuple[Array, Any], Array]:
        obs, state = carry
        act_key, env_key = jax.random.split(step_key)
        action = policy(obs, act_key)
        obs, state, _, _, info = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))(
            jax.random.split(env_key, num_episodes), state, action, env_params
        )
        cell = info["cell"] if "cell" in info else cell_of(state)
        return (obs, state), cell

    start = cell_of(state)
    (_, state), cells = jax.lax.scan(step, (obs, state), jax.random.split(key, num_steps))
    return state.value, jnp.concatenate([start[None], cells], axis=0)


def greedy_oracle(env: Any, env_params: Any, lookahead: int = 1, discount: float = 0.999) -> tuple[Array, Array]:
    """A greedy planner that knows the map of a (deterministic) :mod:`purejaxpo.envs.submodular_worlds` grid world.

    At each of the ``H − 1`` steps it enumerates all ``5^lookahead`` action sequences from the current state
    with the env's own ``step_env`` (stochasticity ignored), and takes the first action of the one with the
    largest ``Σ_j discount^j Δ_j`` (the discount only breaks ties toward earlier gains). When no sequence gains
    anything, it walks one step along a shortest path (breadth-first over ``params.next_cell``) to the nearest
    cell whose marginal gain is positive. Returns ``(F(τ) [], cells [H])``. Host-side helper (jit inside).
    """
    if not isinstance(lookahead, int) or lookahead < 1:
        raise ValueError(f"lookahead must be a positive integer, got {lookahead!r}")
    params = env_params.replace(stochasticity=0.0)
    next_cell = jnp.asarray(params.next_cell)
    num_cells, num_actions = next_cell.shape
    sequences = jnp.asarray(np.stack(np.unravel_index(np.arange(num_actions**lookahead), (num_actions,) * lookahead),
                                     axis=1), jnp.int32)  # [S, L]
    weights = discount ** jnp.arange(lookahead, dtype=jnp.float32)
    key = jax.random.key(0)

    def plan_value(state: Any, seq: Array) -> Array:
        def body(s: Any, a: Array) -> tuple[Any, Array]:
            _, s, reward, _, _ = env.step_env(key, s, a, params)
            return s, reward

        _, rewards = jax.lax.scan(body, state, seq)
        return jnp.sum(weights * rewards)

    def nearest_gain_action(state: Any) -> Array:
        cells = jnp.arange(num_cells)
        gains = jax.vmap(lambda c: env.objective.gain(state.summary, c, ~state.visited[c], params.data)[0])(cells)
        inf = jnp.float32(num_cells + 1)
        dist0 = jnp.where(gains > 1e-6, 0.0, inf)

        def relax(carry: tuple[Array, Array]) -> tuple[Array, Array]:
            dist, _ = carry
            new = jnp.minimum(dist, 1.0 + jnp.min(dist[next_cell], axis=1))
            return new, jnp.any(new < dist)

        dist, _ = jax.lax.while_loop(lambda c: c[1], relax, (dist0, jnp.array(True)))
        return jnp.argmin(dist[next_cell[state.pos]]).astype(jnp.int32)

    def step(state: Any, _: None) -> tuple[Any, Array]:
        values = jax.vmap(plan_value, in_axes=(None, 0))(state, sequences)
        best = jnp.argmax(values)
        action = jax.lax.cond(values[best] > 1e-6, lambda: sequences[best, 0], lambda: nearest_gain_action(state))
        _, state, _, _, _ = env.step_env(key, state, action, params)
        return state, state.pos

    @jax.jit
    def run() -> tuple[Array, Array]:
        _, state = env.reset_env(key, params)
        final, cells = jax.lax.scan(step, state, None, length=params.horizon - 1)
        return final.value, jnp.concatenate([state.pos[None], cells])

    return run()


def random_policy(num_actions: int) -> Callable[[Array, Array], Array]:
    """Uniform random actions for :func:`episode_rollout`."""
    return lambda obs, key: jax.random.randint(key, obs.shape[:1], 0, num_actions)


def trained_policy(trainer: Any, state: Any, deterministic: bool = False) -> Callable[[Array, Array], Array]:
    """``trainer.act`` with a fixed training state, for :func:`episode_rollout`."""
    return lambda obs, key: trainer.act(state, obs, key, deterministic)
