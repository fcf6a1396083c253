"""MultiGoal: a 2-D double integrator with 6 goals on a circle (PolicyFlow's multimodality probe).

Source: PolicyFlow's released ``scripts/multigoal/multigoal.py`` + ``multigoal_env_cfg.yaml`` ([C]). Not the 4-goal velocity-controlled MultiGoal of Haarnoja et al. (2017).

- State/observation ``[p_x, p_y, v_x, v_y]`` float32. Action: acceleration ``u ∈ R²``, clipped to
  ``[−5, 5]`` before integration, ``dt = 0.1``. Position moves with the *old* velocity::

      p' = p + v·dt,   v' = v + clip(u, −5, 5)·dt

- Reward (scales multiplied by dt; ``d²`` = squared distance from ``p'`` to the nearest goal; the action cost
  uses the **unclipped** ``u``)::

      r = dt · [ exp(−0.3 d²) + exp(−0.1 d²) − 0.01 ‖u‖² ]

- Goals: 6 points at radius 5 around the origin, angles ``2πk/6``.
- ``terminated`` when ``p'`` leaves ``[−8, 8]²`` (strictly); ``truncated`` (time-out, bootstrapped) when the
  step count exceeds 50, i.e. after 51 steps (the code's ``episode_length > max_episode_length``), hence
  ``max_steps_in_episode = 51``.
- Reset: ``p ~ U([−7, 7]²)``, ``v = 0``. On the *first* ``reset`` (not on auto-resets) the step counter is drawn
  from ``U{0, …, 49}`` to de-synchronise vectorised envs, as the code's ``random_init_episode_length``
  (``randomize_initial_time=False`` turns this off).

:func:`render` draws trajectories (e.g. 1000 from the origin, see :func:`rollout`) to a PNG.
"""

from __future__ import annotations

import os
from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass(kw_only=True)
class MultiGoalState(environment.EnvState):
    position: jax.Array  # [2] float32
    velocity: jax.Array  # [2] float32
    time: jax.Array  # [] int32


@struct.dataclass(kw_only=True)
class MultiGoalParams(environment.EnvParams):
    dt: float = 0.1
    action_clip: float = 5.0
    num_goals: int = struct.field(pytree_node=False, default=6)
    goal_radius: float = 5.0
    box: float = 8.0  # terminate when |p_x| or |p_y| > box
    reset_box: float = 7.0  # p ~ U([−reset_box, reset_box]²) at reset
    distance_scale: float = 1.0
    action_cost_scale: float = 0.01
    randomize_initial_time: bool = True
    max_steps_in_episode: int = 51


def goal_positions(params: MultiGoalParams) -> jax.Array:
    """``[num_goals, 2]`` goals on the circle of radius ``goal_radius``, angles ``2πk/num_goals``."""
    angles = 2.0 * jnp.pi * jnp.arange(params.num_goals) / params.num_goals
    return params.goal_radius * jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=1)


class MultiGoal(environment.Environment[MultiGoalState, MultiGoalParams]):
    """Double-integrator point mass rewarded near any of 6 goals (see module doc)."""

    @property
    def default_params(self) -> MultiGoalParams:
        return MultiGoalParams()

    @property
    def name(self) -> str:
        return "MultiGoal-v0"

    def _obs(self, state: MultiGoalState) -> jax.Array:
        return jnp.concatenate([state.position, state.velocity]).astype(jnp.float32)

    def step_env(
        self, key: jax.Array, state: MultiGoalState, action: jax.Array, params: MultiGoalParams
    ) -> tuple[jax.Array, MultiGoalState, jax.Array, jax.Array, dict[str, jax.Array]]:
        u = jnp.asarray(action, jnp.float32).reshape(2)
        position = state.position + state.velocity * params.dt
        velocity = state.velocity + jnp.clip(u, -params.action_clip, params.action_clip) * params.dt
        d2 = jnp.min(jnp.sum((position[None, :] - goal_positions(params)) ** 2, axis=1))
        distance_reward = params.distance_scale * (jnp.exp(-0.3 * d2) + jnp.exp(-0.1 * d2))
        action_cost = params.action_cost_scale * jnp.sum(u**2)
        reward = params.dt * (distance_reward - action_cost)
        new_state = MultiGoalState(position=position, velocity=velocity, time=state.time + 1)
        info = {"goal_distance": jnp.sqrt(d2), "action_cost": params.dt * action_cost}
        return self._obs(new_state), new_state, reward, self.is_terminated(new_state, params), info

    def reset_env(self, key: jax.Array, params: MultiGoalParams) -> tuple[jax.Array, MultiGoalState]:
        position = jax.random.uniform(key, (2,), jnp.float32, -params.reset_box, params.reset_box)
        state = MultiGoalState(position=position, velocity=jnp.zeros(2, jnp.float32), time=jnp.zeros((), jnp.int32))
        return self._obs(state), state

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key: jax.Array, params: MultiGoalParams | None = None) -> tuple[jax.Array, MultiGoalState]:
        """First reset: as ``reset_env``, plus a random initial step counter when ``randomize_initial_time``."""
        params = self.default_params if params is None else params
        key_reset, key_time = jax.random.split(key)
        obs, state = self.reset_env(key_reset, params)
        offset = jax.random.randint(key_time, (), 0, jnp.maximum(params.max_steps_in_episode - 1, 1))
        time = jnp.where(params.randomize_initial_time, offset, 0).astype(jnp.int32)
        return obs, state.replace(time=time)

    def state_at(self, position: jax.Array, velocity: jax.Array | None = None) -> tuple[jax.Array, MultiGoalState]:
        """``(obs, state)`` at a given position (``[2]``), velocity (default 0) and time 0, e.g. the origin."""
        position = jnp.asarray(position, jnp.float32).reshape(2)
        velocity = jnp.zeros(2, jnp.float32) if velocity is None else jnp.asarray(velocity, jnp.float32).reshape(2)
        state = MultiGoalState(position=position, velocity=velocity, time=jnp.zeros((), jnp.int32))
        return self._obs(state), state

    def is_terminated(self, state: MultiGoalState, params: MultiGoalParams) -> jax.Array:
        return jnp.any(jnp.abs(state.position) > params.box)

    def observation_space(self, params: MultiGoalParams) -> spaces.Box:
        """Finite bounds that hold for every reachable observation (including final observations)."""
        v_max = params.action_clip * params.dt * params.max_steps_in_episode
        p_max = params.box + v_max * params.dt
        high = jnp.array([p_max, p_max, v_max, v_max], jnp.float32)
        return spaces.Box(-high, high, (4,), jnp.float32)

    def action_space(self, params: MultiGoalParams | None = None) -> spaces.Box:
        clip = (params or self.default_params).action_clip
        return spaces.Box(-clip, clip, (2,), jnp.float32)


def rollout(
    env: MultiGoal,
    params: MultiGoalParams,
    key: jax.Array,
    policy: Callable[[jax.Array, jax.Array], jax.Array],
    num_trajectories: int = 1000,
    num_steps: int = 50,
    start: tuple[float, float] = (0.0, 0.0),
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Roll ``num_trajectories`` envs from ``start`` (default the origin) for ``num_steps`` steps.

    ``policy(key, obs [B, 4]) -> action [B, 2]``. Returns ``positions [T+1, B, 2]`` (the start, then each step's
    ``final_observation``, so a path keeps its terminal position; after a done the entries belong to the next
    episode), ``dones [T, B]`` (terminated or truncated) and ``actions [T, B, 2]``.
    Jit it with ``env``, ``policy`` and the sizes static.
    """
    obs, state = jax.vmap(lambda _: env.state_at(jnp.asarray(start)))(jnp.arange(num_trajectories))

    def body(carry, key_t):
        obs, state = carry
        key_act, key_step = jax.random.split(key_t)
        action = policy(key_act, obs)
        keys = jax.random.split(key_step, num_trajectories)
        obs2, state2, _, term, trunc, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, state, action, params)
        return (obs2, state2), (info["final_observation"][:, :2], term | trunc, action)

    _, (final, dones, actions) = jax.lax.scan(body, (obs, state), jax.random.split(key, num_steps))
    return jnp.concatenate([obs[None, :, :2], final], axis=0), dones, actions


def render(
    trajectories: jax.Array | np.ndarray,
    path: str | os.PathLike,
    *,
    dones: jax.Array | np.ndarray | None = None,
    params: MultiGoalParams | None = None,
    first_actions: jax.Array | np.ndarray | None = None,
    title: str = "MultiGoal trajectories",
) -> str:
    """Draw trajectories and the goals to a PNG (matplotlib Agg); returns the path.

    Args:
      trajectories: ``[T, B, ≥2]`` positions (or observations; the first two features are x, y), e.g. from
        :func:`rollout`.
      dones: optional ``[T', B]`` episode-end flags; each path is cut after its first done (the step that ends
        the episode is kept, what follows the auto-reset is dropped).
      first_actions: optional ``[B, 2]`` first-step actions, drawn as a second panel.
    """
    from purejaxpo.envs.rendering import new_figure, save_figure

    params = MultiGoalParams() if params is None else params
    xy = np.asarray(trajectories, np.float64)[..., :2]
    num_steps, num_traj = xy.shape[0], xy.shape[1]
    lengths = np.full(num_traj, num_steps)
    if dones is not None:
        d = np.asarray(dones, bool)
        first = np.where(d.any(axis=0), d.argmax(axis=0) + 2, num_steps)  # keep the episode's final position
        lengths = np.minimum(first, num_steps)
    panels = 2 if first_actions is not None else 1
    fig, ax = new_figure(5.0 * panels, 5.0)
    if panels == 2:
        ax.remove()
        ax = fig.add_subplot(1, 2, 1)
    for b in range(num_traj):
        ax.plot(xy[: lengths[b], b, 0], xy[: lengths[b], b, 1], "-", color=f"C{b % 10}", linewidth=0.5, alpha=0.6)
    goals = np.asarray(goal_positions(params))
    ax.scatter(goals[:, 0], goals[:, 1], s=250, color="w", edgecolors="k", zorder=3)
    ax.scatter(goals[:, 0], goals[:, 1], s=150, marker="*", color="darkturquoise", zorder=4, label="goal")
    ax.scatter([xy[0, 0, 0]], [xy[0, 0, 1]], s=120, color="w", edgecolors="k", zorder=4, label="start")
    ax.set_xlim(-params.box, params.box)
    ax.set_ylim(-params.box, params.box)
    ax.set_aspect("equal")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title)
    ax.legend(loc="upper right")
    if first_actions is not None:
        ax2 = fig.add_subplot(1, 2, 2)
        a = np.asarray(first_actions, np.float64)
        ax2.scatter(a[:, 0], a[:, 1], s=1.5, marker="*", color="blue")
        lim = params.box
        ax2.set_xlim(-lim, lim)
        ax2.set_ylim(-lim, lim)
        ax2.set_aspect("equal")
        ax2.set_title("first-step actions")
    return save_figure(fig, path)


def make_multigoal(**overrides) -> tuple[MultiGoal, MultiGoalParams]:
    """Factory for ``MultiGoal-v0``; keyword arguments override :class:`MultiGoalParams` fields."""
    fields = set(MultiGoalParams.__dataclass_fields__)
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown MultiGoal parameter(s) {unknown}; valid: {sorted(fields)}")
    env = MultiGoal()
    return env, MultiGoalParams(**overrides)
