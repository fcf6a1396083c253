"""SubPO: policy gradient for submodular rewards (Prajapat, Mutný, Zeilinger, Krause, "Submodular
Reinforcement Learning", ICLR 2024, arXiv:2307.13372), as a pure, jittable trainer.

A trajectory ``τ = (s_0, …, s_{H−1})`` is scored by a monotone submodular ``F`` of its **set** of states; the
env pays the marginal gain ``Δ_h = F(τ_{0:h} ∪ {s_{h+1}}) − F(τ_{0:h})`` as reward, so ``Σ_h Δ_h = F(τ) − F({s_0})``
(:mod:`envs.submodular_worlds`, or any gymnax env through :class:`SubRLWrapper`). Spec: ``subpo.md``.

Agent types (``SubPOConfig.agent``; the three of the paper's code, ``params/*/subrl_{M,NM,SRL}.yaml`` [C]):

- ``"M"``: SubPO with a Markovian, time-indexed policy ``π(a | s_h, h)``: the env's observation as it is
  (the grid worlds' ``"position"`` mode is ``[row, col, h]``, normalized).
- ``"NM"``: SubPO with a non-Markovian policy that sees the visited-set history. The paper feeds the padded list of
  visited cell indices [C]; we feed the visited *mask* ``[N]`` next to ``[row, col, h]``, a sufficient
  statistic of the history for ``F`` and the dynamics [P, ours]. An env whose ``obs_mode`` is not already
  ``"visited"`` is wrapped in :class:`VisitedObservation` (its state must have ``visited [N]``).
- ``"SRL"``: the modular RL baseline: the same Markovian policy trained on the additive reward
  ``info["modular_reward"]`` (per-state values summed *with multiplicity*: no diminishing returns) [C].

Gradient estimators (``SubPOConfig.estimator``)::

    greedy_prefix  [the paper's grid-world code, main.py, C]:
        L(θ) = −mean_{b,h} [ log π_θ(a_h | x_h) · c · F(τ_{0:h+1}) ] − β_t mean H[π_θ]
        (c = objective_scale, the code's 1/MAX_Ret; β_t = ent_coef/(t+1) with decay_entropy, as the code;
        no baseline. Its mean is Σ_h E[∇ log π_h · Δ_h]: it ascends each step's immediate marginal gain.)
    actor_critic   [the paper's MuJoCo-Ant script, gym_env/*.py, C; our defaults γ = λ = 1, P]:
        Â = GAE_{γ,λ}(Δ, V),   L(θ) = −mean[ r_θ Â ] + c_V ½(V − R̂)² − β mean H[π_θ]
        (r_θ = π_θ/π_old, which is exactly −log π · Â in gradient on the first step; with γ = λ = 1 the weight
        is the reward-to-go of marginal gains minus a baseline, an unbiased ∇ E[F(τ)] (spec §2.2) [P]. γ = 0
        gives the greedy estimator's mean, Σ_h ∇ log π_h (Δ_h − V), with a baseline instead of F(τ_{0:h}).)

For ``SRL`` both estimators use the modular quantities (``F`` ↦ ``info["modular_objective"]``, ``Δ`` ↦
``info["modular_reward"]``), as the paper's code does [C]. The natural-gradient variant of the abstract is not in
the released code and is not implemented [P].

``episode_return`` is always the env's (submodular) return ``Σ Δ = F(τ) − F({s_0})``, also for ``SRL``, so runs
compare on the same scale; ``episode_objective`` is ``F(τ)`` of the episodes completed in the update.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct
from gymnax.environments import environment, spaces

from purejaxpo.algorithms import common
from purejaxpo.algorithms.onpolicy import adam_with_clipping, flatten_time_and_batch, linear_annealing, update_epochs
from purejaxpo.networks.actor_critic import TORSOS
from purejaxpo.networks.torsos import ACTIVATIONS
from purejaxpo.primitives.advantages import explained_variance, masked_mean, normalize
from purejaxpo.primitives.losses import sample_kl, value_loss
from purejaxpo.primitives.subpo import score_function_surrogate
from purejaxpo.types import CheckedHParams, Trainer, above, scan_train

Array = jax.Array
AGENTS = ("M", "NM", "SRL")
ESTIMATORS = ("actor_critic", "greedy_prefix")
OBS_MODES = ("base", "time", "visited")


# ----------------------------------------------------------------------------------------------------------------
# Environments: any gymnax env + a set function -> SubRL env; the history observation of the NM agent
# ----------------------------------------------------------------------------------------------------------------


class SetFunction:
    """A plain set function ``F(visited [N]) -> []`` in the incremental objective protocol that
    :class:`SubRLWrapper` and :mod:`envs.submodular_worlds` share (``init``, ``gain``, ``modular``; ``data`` is
    unused). The running summary is the visited mask; each step costs two evaluations of ``F``. The modular
    (SRL) value of a state is ``F({s})``, as in the paper's baselines [C for coverage/entropy]."""

    name = "set_function"

    def __init__(self, value_fn: Callable[[Array], Array], num_cells: int):
        self.value_fn, self.num_cells = value_fn, num_cells

    def _single(self, cell: Array) -> Array:
        return jnp.zeros(self.num_cells, bool).at[cell].set(True)

    def init(self, cell: Array, data: Any, capacity: int) -> tuple[Array, Array]:
        visited = self._single(cell)
        return visited, jnp.asarray(self.value_fn(visited), jnp.float32)

    def gain(self, summary: Array, cell: Array, is_new: Array, data: Any) -> tuple[Array, Array]:
        new = summary.at[cell].set(True)
        return jnp.asarray(self.value_fn(new) - self.value_fn(summary), jnp.float32), new

    def modular(self, cell: Array, data: Any) -> Array:
        return jnp.asarray(self.value_fn(self._single(cell)), jnp.float32)


def grid_discretizer(
    low: Any, high: Any, bins: tuple[int, ...], dims: tuple[int, ...] | None = None
) -> tuple[Callable[[Array, Any], Array], int]:
    """Uniform grid over observation dimensions ``dims``: ``(discretize(obs, state) -> cell [] int32, N)``.

    Each selected coordinate ``x_i`` falls in bin ``⌊(x_i − low_i)/(high_i − low_i) · bins_i⌋`` (clipped to the
    grid); cells are numbered row-major (``numpy.ravel_multi_index``). ``N = Π bins``.
    """
    bins = tuple(int(b) for b in bins)
    if not bins or any(b <= 0 for b in bins):
        raise ValueError(f"bins must be positive integers, got {bins}")
    low = np.broadcast_to(np.asarray(low, np.float32), (len(bins),))
    high = np.broadcast_to(np.asarray(high, np.float32), (len(bins),))
    if np.any(high <= low):
        raise ValueError(f"high must exceed low in every dimension, got low={low.tolist()}, high={high.tolist()}")
    index = np.asarray(dims if dims is not None else range(len(bins)), np.int32)
    if index.shape != (len(bins),):
        raise ValueError(f"dims {dims} must name one observation dimension per bin ({len(bins)})")
    strides = np.cumprod((1,) + bins[::-1])[:-1][::-1].astype(np.int32)  # row-major

    def discretize(obs: Array, state: Any = None) -> Array:
        x = jnp.asarray(obs, jnp.float32).reshape(-1)[index]
        idx = jnp.floor((x - low) / (high - low) * np.asarray(bins, np.float32)).astype(jnp.int32)
        idx = jnp.clip(idx, 0, np.asarray(bins, np.int32) - 1)
        return jnp.sum(idx * strides).astype(jnp.int32)

    return discretize, int(np.prod(bins))


@struct.dataclass
class SubRLState:
    inner: Any  # the wrapped env's state
    visited: Array  # [N] bool, the set τ of visited cells
    value: Array  # [] float32, F(τ)
    modular_value: Array  # [] float32, Σ_j m(s_j) with multiplicity
    summary: Any  # the objective's running summary of τ
    time: Array  # [] int32, steps taken in this episode


@struct.dataclass
class SubRLParams:
    inner: Any  # the wrapped env's params
    data: Any = None  # objective data (None for SetFunction)
    horizon: int = struct.field(pytree_node=False, default=40)  # states per episode (static: buffer sizes)

    @property
    def max_steps_in_episode(self) -> int:
        return self.horizon - 1


class SubRLWrapper(environment.Environment[SubRLState, SubRLParams]):
    """Any gymnax-style env plus a set function over a discretization of its states → a SubRL env.

    ``cell_t = discretize(obs_t, inner_state_t)`` maps each state to one of ``num_cells`` cells; the wrapper keeps
    the visited set and pays ``Δ_t = F(τ ∪ {cell_{t+1}}) − F(τ)`` as reward (the inner reward goes to
    ``info["base_reward"]``), with ``info["objective"]``, ``info["modular_reward"]`` and
    ``info["modular_objective"]`` as the grid worlds. An episode is ``horizon`` states (``horizon − 1`` steps,
    then ``terminated``: a fixed-horizon objective), or ends earlier when the inner env terminates / truncates.

    ``objective`` follows the protocol of the grid worlds' objectives (``init(cell, data, capacity)``,
    ``gain(summary, cell, is_new, data)``, ``modular(cell, data)``): :class:`SetFunction` for any plain ``F``, or
    e.g. ``envs.submodular_worlds.Coverage`` with its ``data``. Observations (``obs_mode``): ``"base"`` the inner
    observation; ``"time"`` (default) that plus ``h/(H−1)`` (a time-indexed policy, agent ``M``); ``"visited"``
    that plus the visited mask ``[N]`` (agent ``NM``). Inner observations must be flat vectors.
    """

    def __init__(
        self,
        env: Any,
        objective: Any,
        discretize: Callable[[Array, Any], Array],
        num_cells: int,
        *,
        env_params: Any = None,
        data: Any = None,
        horizon: int = 40,
        obs_mode: str = "time",
    ):
        super().__init__()
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {OBS_MODES}, got {obs_mode!r}")
        if not isinstance(horizon, int) or horizon < 2:
            raise ValueError(f"horizon (states per episode) must be an integer >= 2, got {horizon!r}")
        if not isinstance(num_cells, int) or num_cells <= 0:
            raise ValueError(f"num_cells must be a positive integer, got {num_cells!r}")
        self._env, self.objective, self.discretize = env, objective, discretize
        self.num_cells, self.obs_mode = num_cells, obs_mode
        inner_params = env.default_params if env_params is None else env_params
        self._default_params = SubRLParams(inner=inner_params, data=data, horizon=horizon)
        inner_shape = env.observation_space(inner_params).shape
        if len(inner_shape) != 1:
            raise ValueError(f"SubRLWrapper needs flat vector observations, got shape {tuple(inner_shape)}")

    @property
    def default_params(self) -> SubRLParams:
        return self._default_params

    @property
    def name(self) -> str:
        return f"SubRL-{self._env.name}"

    @property
    def num_actions(self) -> int:
        return self._env.num_actions

    def _obs(self, obs: Array, state: SubRLState, params: SubRLParams) -> Array:
        obs = jnp.asarray(obs, jnp.float32).reshape(-1)
        if self.obs_mode == "base":
            return obs
        t = state.time.astype(jnp.float32)[None] / (params.horizon - 1)
        if self.obs_mode == "time":
            return jnp.concatenate([obs, t])
        return jnp.concatenate([obs, t, state.visited.astype(jnp.float32)])

    def _cell(self, obs: Array, inner_state: Any) -> Array:
        return jnp.clip(jnp.asarray(self.discretize(obs, inner_state), jnp.int32), 0, self.num_cells - 1)

    def reset_env(self, key: Array, params: SubRLParams) -> tuple[Array, SubRLState]:
        obs, inner = self._env.reset_env(key, params.inner)
        cell = self._cell(obs, inner)
        summary, value = self.objective.init(cell, params.data, params.horizon)
        state = SubRLState(
            inner=inner, visited=jnp.zeros(self.num_cells, bool).at[cell].set(True),
            value=jnp.asarray(value, jnp.float32),
            modular_value=jnp.asarray(self.objective.modular(cell, params.data), jnp.float32),
            summary=summary, time=jnp.zeros((), jnp.int32),
        )
        return self._obs(obs, state, params), state

    def step_env(
        self, key: Array, state: SubRLState, action: Array, params: SubRLParams
    ) -> tuple[Array, SubRLState, Array, Array, dict[str, Array]]:
        obs, inner, base_reward, terminated, info = self._env.step_env(key, state.inner, action, params.inner)
        cell = self._cell(obs, inner)
        gain, summary = self.objective.gain(state.summary, cell, ~state.visited[cell], params.data)
        modular = jnp.asarray(self.objective.modular(cell, params.data), jnp.float32)
        gain = jnp.asarray(gain, jnp.float32)
        new_state = SubRLState(
            inner=inner, visited=state.visited.at[cell].set(True), value=state.value + gain,
            modular_value=state.modular_value + modular, summary=summary, time=state.time + 1,
        )
        terminated = jnp.logical_or(terminated, new_state.time >= params.horizon - 1)
        info = {
            **info, "base_reward": jnp.asarray(base_reward, jnp.float32), "cell": cell, "modular_reward": modular,
            "objective": new_state.value, "modular_objective": new_state.modular_value,
        }
        return self._obs(obs, new_state, params), new_state, gain, terminated, info

    def is_terminated(self, state: SubRLState, params: SubRLParams) -> Array:
        return state.time >= params.horizon - 1

    def is_truncated(self, state: SubRLState, params: SubRLParams) -> Array:
        return jnp.logical_or(self._env.is_truncated(state.inner, params.inner), state.time >= params.horizon - 1)

    def observation_space(self, params: SubRLParams) -> spaces.Box:
        inner = self._env.observation_space(params.inner)
        (dim,) = inner.shape
        low = jnp.broadcast_to(jnp.asarray(inner.low, jnp.float32), (dim,))
        high = jnp.broadcast_to(jnp.asarray(inner.high, jnp.float32), (dim,))
        extra = {"base": 0, "time": 1, "visited": 1 + self.num_cells}[self.obs_mode]
        low = jnp.concatenate([low, jnp.zeros(extra, jnp.float32)])
        high = jnp.concatenate([high, jnp.ones(extra, jnp.float32)])
        return spaces.Box(low, high, (dim + extra,), jnp.float32)

    def action_space(self, params: SubRLParams | None = None) -> Any:
        return self._env.action_space(None if params is None else params.inner)


class VisitedObservation(environment.Environment):
    """Appends the visited mask ``state.visited [N]`` to a flat observation: the history input of the ``NM``
    agent (a sufficient statistic of ``s_0..s_h`` for the set function [P, ours]). Dynamics, rewards, info and
    spaces otherwise come from the wrapped env; other attributes are forwarded to it."""

    obs_mode = "visited"

    def __init__(self, env: Any, env_params: Any):
        super().__init__()
        self._env = env
        state = jax.eval_shape(lambda k: env.reset_env(k, env_params)[1], jax.random.key(0))
        visited = getattr(state, "visited", None)
        if visited is None or len(visited.shape) != 1:
            raise ValueError(
                f"agent 'NM' needs the visited set in the env state (a [N] mask `state.visited`); "
                f"{getattr(env, 'name', type(env).__name__)} has none: build it with envs.submodular_worlds or "
                f"wrap it in SubRLWrapper"
            )
        self.num_cells = int(visited.shape[0])
        obs_shape = env.observation_space(env_params).shape
        if len(obs_shape) != 1:
            raise ValueError(f"agent 'NM' needs flat vector observations, got shape {tuple(obs_shape)}")

    def __getattr__(self, name: str) -> Any:
        if name == "_env":
            raise AttributeError(name)
        return getattr(self._env, name)

    @property
    def default_params(self) -> Any:
        return self._env.default_params

    @property
    def name(self) -> str:
        return self._env.name

    @property
    def num_actions(self) -> int:
        return self._env.num_actions

    def _obs(self, obs: Array, state: Any) -> Array:
        return jnp.concatenate([jnp.asarray(obs, jnp.float32).reshape(-1), state.visited.astype(jnp.float32)])

    def reset_env(self, key: Array, params: Any) -> tuple[Array, Any]:
        obs, state = self._env.reset_env(key, params)
        return self._obs(obs, state), state

    def step_env(self, key: Array, state: Any, action: Array, params: Any):
        obs, state, reward, terminated, info = self._env.step_env(key, state, action, params)
        return self._obs(obs, state), state, reward, terminated, info

    def is_terminated(self, state: Any, params: Any) -> Array:
        return self._env.is_terminated(state, params)

    def is_truncated(self, state: Any, params: Any) -> Array:
        return self._env.is_truncated(state, params)

    def observation_space(self, params: Any) -> spaces.Box:
        inner = self._env.observation_space(params)
        (dim,) = inner.shape
        low = jnp.broadcast_to(jnp.asarray(inner.low, jnp.float32), (dim,))
        high = jnp.broadcast_to(jnp.asarray(inner.high, jnp.float32), (dim,))
        low = jnp.concatenate([low, jnp.zeros(self.num_cells, jnp.float32)])
        high = jnp.concatenate([high, jnp.ones(self.num_cells, jnp.float32)])
        return spaces.Box(low, high, (dim + self.num_cells,), jnp.float32)

    def action_space(self, params: Any = None) -> Any:
        return self._env.action_space(params)


# ----------------------------------------------------------------------------------------------------------------
# Config, hyperparameters, loss
# ----------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SubPOConfig(common.RolloutBudget):
    """Static settings (shapes, loop counts, flags).

    ``num_envs`` trajectories are collected in parallel, ``num_steps`` steps each per update (the paper: 500
    trajectories of one ``H``-state episode, i.e. ``num_steps = H − 1``, and one Adam step on all of them per
    epoch [C]). Rollouts need not align with episodes: ``greedy_prefix`` reads ``F(τ_{0:h+1})`` from each
    step's info, and GAE bootstraps across the rollout's end.
    ``normalize_advantages``: ``None`` = ``True`` for ``actor_critic``, ``False`` for ``greedy_prefix`` (the
    paper's code has neither baseline nor normalization).
    """

    algorithm_name: ClassVar[str] = "subpo"

    agent: str = "M"
    estimator: str = "actor_critic"
    num_envs: int = 64
    num_steps: int = 39
    total_timesteps: int = 64 * 39 * 100
    update_epochs: int = 1
    num_minibatches: int = 1
    hidden_sizes: tuple[int, ...] = (64, 32)
    activation: str = "tanh"
    torso: str = "mlp"
    anneal_lr: bool = False
    normalize_advantages: bool | None = None
    decay_entropy: bool = False
    normalize_obs: bool = False
    normalize_rewards: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        if self.agent not in AGENTS:
            raise ValueError(f"SubPOConfig.agent must be one of {AGENTS}, got {self.agent!r}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"SubPOConfig.estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        if not self.hidden_sizes or any(not isinstance(h, int) or h <= 0 for h in self.hidden_sizes):
            raise ValueError(f"SubPOConfig.hidden_sizes must be positive integers, got {self.hidden_sizes!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"SubPOConfig.activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.torso not in TORSOS:
            raise ValueError(f"SubPOConfig.torso must be one of {TORSOS}, got {self.torso!r}")
        common.check_batch_layout(self)

    @property
    def normalize_weights(self) -> bool:
        if self.normalize_advantages is None:
            return self.estimator == "actor_critic"
        return self.normalize_advantages


@struct.dataclass
class SubPOHParams(CheckedHParams):
    """Traced hyperparameters: changing any value never recompiles; stack them to vmap a grid.

    Defaults: ``ent_coef`` 0 as the grid configs [C]; Adam ``lr`` 3e-3, between the grid configs' 1e-3 and
    1e-2 [C], which train with 500 trajectories per step where our default batch is 64 [ours]; ``gamma`` 1 (the
    objective is the undiscounted ``F(τ)``; the Ant script uses 0.99); ``gae_lambda`` 1: the Monte-Carlo
    reward-to-go of marginal gains minus the critic as a baseline, unbiased even when the critic's input does
    not determine the future gains (agent ``M``'s critic cannot see the visited set), where the Ant script's
    0.95 [C] bootstraps from it (measured on 10×10 coverage, 6 seeds: λ = 1 beat 0.95 for M and NM) [ours];
    ``objective_scale`` multiplies the greedy-prefix weights (the code's ``1/MAX_Ret``; immaterial under Adam
    without an entropy bonus); ``max_grad_norm`` is ours (the paper does not clip).
    """

    lr: float = 3e-3
    gamma: float = 1.0
    gae_lambda: float = 1.0
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 1.0
    objective_scale: float = 1.0


SubPOHParams.rules = {
    "objective_scale": above(0),
}


@struct.dataclass
class SubPOBatch:
    """Flattened training samples ``[N, ...]``: ``weights`` are ``c·F(τ_{0:h+1})`` or GAE advantages."""

    obs: Array
    action: Array
    log_prob: Array
    weights: Array
    targets: Array


def subpo_loss(
    model: Any, batch: SubPOBatch, hp: SubPOHParams, config: SubPOConfig, ent_coef: Array
) -> tuple[Array, dict[str, Array]]:
    """``L = −mean[r_θ · w] (+ c_V L_V for actor_critic) − β H`` on one minibatch (module doc for ``w``)."""
    dist, values = model(batch.obs)
    log_prob = dist.log_prob(batch.action)
    weights = normalize(batch.weights) if config.normalize_weights else batch.weights
    policy_loss = masked_mean(score_function_surrogate(log_prob, weights, batch.log_prob))
    if config.estimator == "actor_critic":
        v_loss = masked_mean(value_loss(values, batch.targets))
    else:
        v_loss = jnp.zeros(())
    entropy = masked_mean(dist.entropy())
    loss = policy_loss + hp.vf_coef * v_loss - ent_coef * entropy
    aux = {
        "policy_loss": policy_loss,
        "value_loss": v_loss,
        "entropy": entropy,
        "approx_kl": masked_mean(sample_kl(log_prob - batch.log_prob, "k3")),
    }
    return loss, aux


# ----------------------------------------------------------------------------------------------------------------
# Trainer
# ----------------------------------------------------------------------------------------------------------------


def _info_keys(env: Any, env_params: Any) -> set[str]:
    def probe(key: Array) -> dict[str, Any]:
        _, state = env.reset(key, env_params)
        action = env.action_space(env_params).sample(key)
        return env.step(key, state, action, env_params)[5]

    return set(jax.eval_shape(probe, jax.random.key(0)))


def prepare_env(config: SubPOConfig, env: Any, env_params: Any) -> Any:
    """The env the agent trains on: ``env`` itself for ``M``/``SRL``, with the visited mask appended for ``NM``
    (unless ``env.obs_mode == "visited"`` already). Raises ``ValueError`` when the env cannot serve the agent."""
    has_history = getattr(env, "obs_mode", None) == "visited"
    if config.agent == "NM":
        return env if has_history else VisitedObservation(env, env_params)
    if has_history:
        raise ValueError(
            f"agent {config.agent!r} is Markovian (π(a | s_h, h)) but this env's obs_mode='visited' shows it the "
            f"visited set: use agent='NM', or build the env with obs_mode='position' (grid worlds) / 'time'"
        )
    return env


def make_train(config: SubPOConfig, env: Any, env_params: Any) -> Trainer:
    """Build the SubPO :class:`~purejaxpo.types.Trainer`; raises ``ValueError`` on bad settings.

    ``Trainer.env`` is the env the policy acts in (for ``NM`` the :class:`VisitedObservation` wrapper), so
    ``act`` takes that env's observations.
    """
    if env_params is None:
        env_params = env.default_params
    env = prepare_env(config, env, env_params)
    num_updates = config.num_updates
    spec = common.policy_spec(env, env_params)
    common.check_action_settings(config, spec)
    keys = _info_keys(env, env_params)
    srl = config.agent == "SRL"
    needed = {"objective"} | ({"modular_reward"} if srl else set())
    needed |= {"modular_objective"} if srl and config.estimator == "greedy_prefix" else set()
    missing = sorted(needed - keys)
    if missing:
        raise ValueError(
            f"SubPO (agent {config.agent!r}, estimator {config.estimator!r}) needs info{missing} from the env's step; "
            f"{getattr(env, 'name', type(env).__name__)} does not report them. Use envs.submodular_worlds or "
            f"wrap the env in SubRLWrapper."
        )
    extra_keys = tuple(k for k in ("objective", "modular_reward", "modular_objective") if k in keys)
    extras_fn = lambda info: {k: jnp.asarray(info[k], jnp.float32) for k in extra_keys}
    rewards_fn = (lambda trajectory: trajectory.extras["modular_reward"]) if srl else None
    weight_key = "modular_objective" if srl else "objective"
    graphdef, _ = nnx.split(common.build_actor_critic(config, spec, jax.random.key(0)))

    def init(key: Array, hp: SubPOHParams) -> common.OnPolicyState:
        net_key, key = jax.random.split(key)
        _, params = nnx.split(common.build_actor_critic(config, spec, net_key))
        opt_state = adam_with_clipping(hp.lr, hp.max_grad_norm).init(params)
        return common.init_state(env, env_params, config, spec, params, opt_state, key)

    def update(state: common.OnPolicyState, hp: SubPOHParams) -> tuple[common.OnPolicyState, dict[str, Array]]:
        key, rollout_key, epoch_key = jax.random.split(state.key, 3)
        model = nnx.merge(graphdef, state.params)
        exp = common.collect_experience(
            env, env_params, config, spec, state, model, rollout_key, hp.gamma, hp.gae_lambda,
            extras_fn=extras_fn, rewards_fn=rewards_fn,
        )
        trajectory = exp.trajectory
        if config.estimator == "greedy_prefix":
            weights = hp.objective_scale * trajectory.extras[weight_key]  # F(τ_{0:h+1}) [T, B]
        else:
            weights = exp.advantages
        observe = common.observe_fn(config, state.obs_norm)
        batch = flatten_time_and_batch(
            SubPOBatch(observe(trajectory.obs), trajectory.action, trajectory.log_prob, weights, exp.targets)
        )
        lr = linear_annealing(hp.lr, state.update_index, num_updates, config.anneal_lr)
        ent_coef = hp.ent_coef / (state.update_index + 1.0) if config.decay_entropy else hp.ent_coef
        optimizer = adam_with_clipping(lr, hp.max_grad_norm)
        loss_fn = lambda params, minibatch: subpo_loss(nnx.merge(graphdef, params), minibatch, hp, config, ent_coef)
        params, opt_state, train_metrics = update_epochs(
            epoch_key, state.params, state.opt_state, batch, loss_fn, optimizer, config.update_epochs,
            config.num_minibatches,
        )
        new_state = state.replace(
            params=params, opt_state=opt_state, obs_norm=exp.obs_norm, reward_scaler=exp.reward_scaler,
            env=exp.env, key=key, update_index=state.update_index + 1,
        )
        done = jnp.logical_or(trajectory.terminated, trajectory.truncated).astype(jnp.float32)
        count = exp.stats.count

        def per_episode(values: Array) -> Array:
            return jnp.where(count > 0, jnp.sum(values * done) / jnp.maximum(count, 1.0), jnp.nan)

        metrics = {
            **common.episode_metrics(exp.stats),
            "episode_objective": per_episode(trajectory.extras["objective"]),
            **{k: v for k, v in train_metrics.items() if k != "nonfinite"},
            "nonfinite_steps": train_metrics["nonfinite"],
            "learning_rate": lr,
            "env_steps": (state.update_index + 1).astype(jnp.float32) * config.batch_size,
        }
        if "modular_objective" in trajectory.extras:
            metrics["episode_modular_objective"] = per_episode(trajectory.extras["modular_objective"])
        if config.estimator == "actor_critic":
            metrics["explained_variance"] = explained_variance(trajectory.value, exp.targets)
        return new_state, metrics

    return Trainer(init, update, scan_train(init, update, num_updates), common.act_fn(config, spec, graphdef), config, env, env_params, type(config).algorithm_name)


# ----------------------------------------------------------------------------------------------------------------
# Evaluation: sampled / mode trajectories of a trained policy, and a greedy oracle that knows the map
# ----------------------------------------------------------------------------------------------------------------


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
    """A greedy planner that knows the map of a (deterministic) :mod:`envs.submodular_worlds` grid world.

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


def trained_policy(trainer: Trainer, state: Any, deterministic: bool = False) -> Callable[[Array, Array], Array]:
    """``trainer.act`` with a fixed training state, for :func:`episode_rollout`."""
    return lambda obs, key: trainer.act(state, obs, key, deterministic)


__all__ = [
    "AGENTS", "ESTIMATORS", "SetFunction", "SubPOBatch", "SubPOConfig", "SubPOHParams", "SubRLParams", "SubRLState",
    "SubRLWrapper", "VisitedObservation", "episode_rollout", "grid_discretizer", "greedy_oracle", "make_train",
    "prepare_env", "random_policy", "subpo_loss", "trained_policy",
]