"""SubPO: policy gradient for submodular rewards (Prajapat, Mutný, Zeilinger, Krause, "Submodular
Reinforcement Learning", ICLR 2024, arXiv:2307.13372), as a pure, jittable trainer.

A trajectory ``τ = (s_0, …, s_{H−1})`` is scored by a monotone submodular ``F`` of its **set** of states; the
env pays the marginal gain ``Δ_h = F(τ_{0:h} ∪ {s_{h+1}}) − F(τ_{0:h})`` as reward, so ``Σ_h Δ_h = F(τ) − F({s_0})``
(:mod:`purejaxpo.envs.submodular_worlds`, or any gymnax env through :class:`purejaxpo.envs.subrl.SubRLWrapper`).

Agent types (``SubPOConfig.agent``; the three of the paper's code, ``params/*/subrl_{M,NM,SRL}.yaml`` [C]):

- ``"M"``: SubPO with a Markovian, time-indexed policy ``π(a | s_h, h)``: the env's observation as it is
  (the grid worlds' ``"position"`` mode is ``[row, col, h]``, normalized).
- ``"NM"``: SubPO with a non-Markovian policy that sees the visited-set history. The paper feeds the padded list of
  visited cell indices [C]; we feed the visited *mask* ``[N]`` next to ``[row, col, h]``, a sufficient
  statistic of the history for ``F`` and the dynamics [P, ours]; a grid world built with ``obs_mode="history"``
  feeds the ordered visited cells instead, as the paper's code does. An env whose ``obs_mode`` is neither
  ``"visited"`` nor ``"history"`` is wrapped in :class:`~purejaxpo.envs.subrl.VisitedObservation` (its state must
  have ``visited [N]``).
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
        is the reward-to-go of marginal gains minus a baseline, an unbiased ∇ E[F(τ)] [P]. γ = 0
        gives the greedy estimator's mean, Σ_h ∇ log π_h (Δ_h − V), with a baseline instead of F(τ_{0:h}).)

For ``SRL`` both estimators use the modular quantities (``F`` ↦ ``info["modular_objective"]``, ``Δ`` ↦
``info["modular_reward"]``), as the paper's code does [C]. The natural-gradient variant of the abstract is not in
the released code and is not implemented [P].

``episode_return`` is always the env's (submodular) return ``Σ Δ = F(τ) − F({s_0})``, also for ``SRL``, so runs
compare on the same scale; ``episode_objective`` (``_max``, ``_min``) is the mean (max, min) ``F(τ)`` of the episodes
completed in the update, the reference's logged metric; ``episode_modular_objective`` the mean modular (SRL) value.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from purejaxpo import engine
from purejaxpo.engine import RolloutBudget, validate_config
from purejaxpo.envs.subrl import VisitedObservation
from purejaxpo.networks.actor_critic import actor_critic_for
from purejaxpo.primitives.advantages import explained_variance, masked_mean, normalize
from purejaxpo.primitives.losses import sample_kl, value_loss
from purejaxpo.primitives.subpo import score_function_surrogate
from purejaxpo.spaces import policy_spec
from purejaxpo.types import CheckedHParams, Trainer, above

Array = jax.Array
AGENTS = ("M", "NM", "SRL")
ESTIMATORS = ("actor_critic", "greedy_prefix")


@dataclasses.dataclass(frozen=True)
class SubPOConfig(RolloutBudget):
    """Static settings (shapes, loop counts, flags).

    ``num_envs`` trajectories are collected in parallel, ``num_steps`` steps each per update (the paper: 500
    trajectories of one ``H``-state episode, i.e. ``num_steps = H − 1``, and one Adam step on all of them per
    epoch [C]). Rollouts need not align with episodes: ``greedy_prefix`` reads ``F(τ_{0:h+1})`` from each
    step's info, and GAE bootstraps across the rollout's end.
    ``normalize_advantages``: ``None`` = ``True`` for ``actor_critic``, ``False`` for ``greedy_prefix`` (the
    paper's code has neither baseline nor normalization).

    Fields:
        agent: M (Markovian π(a | s_h, h)), NM (also sees the visited set) or SRL (modular-reward baseline)
        estimator: actor_critic (GAE of the marginal gains) or greedy_prefix (weights F(τ_{0:h+1}))
        num_steps: steps per env in each rollout (the paper: the horizon H − 1)
        normalize_advantages: standardize the weights (None = on for actor_critic, off for greedy_prefix)
        decay_entropy: entropy coefficient β/(t+1) at update t
    """

    algorithm_name: ClassVar[str] = "subpo"
    choices: ClassVar[dict[str, Any]] = {"agent": AGENTS, "estimator": ESTIMATORS}

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
        validate_config(self)

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

    Fields:
        gamma: discount (1: the undiscounted objective F(τ))
        objective_scale: multiplier of the greedy-prefix weights
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
    """Training samples ``[T, B, ...]``: ``weights`` are ``c·F(τ_{0:h+1})`` or GAE advantages."""

    obs: Array
    action: Array
    log_prob: Array
    weights: Array
    targets: Array


def subpo_loss(
    model: Any, batch: SubPOBatch, hp: SubPOHParams, config: SubPOConfig, ent_coef: Array
) -> tuple[Array, dict[str, Array]]:
    """``L = −mean[r_θ · w] (+ c_V L_V for actor_critic) − β H`` on one minibatch (module doc for ``w``);
    ``ent_coef`` is β_t (decayed as ``β/(t+1)`` with ``decay_entropy``)."""
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


def episode_objective_stats(objective: Array, done: Array) -> dict[str, Array]:
    """Mean, max and min of ``F(τ)`` over the episodes that ended in this rollout (``objective, done [T, B]``:
    the running ``F`` read where ``done``); NaN when none ended. The reference logs these of its 500 sampled
    trajectories every epoch (``main.py``: mean / max / median / min of ``weighted_traj_return``) [C]."""
    done = done.astype(bool)
    count = jnp.sum(done)
    mean = jnp.where(count > 0, jnp.sum(jnp.where(done, objective, 0.0)) / jnp.maximum(count, 1), jnp.nan)
    high = jnp.where(count > 0, jnp.max(jnp.where(done, objective, -jnp.inf)), jnp.nan)
    low = jnp.where(count > 0, jnp.min(jnp.where(done, objective, jnp.inf)), jnp.nan)
    return {"episode_objective": mean, "episode_objective_max": high, "episode_objective_min": low}


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
    has_history = getattr(env, "obs_mode", None) in ("visited", "history")
    if config.agent == "NM":
        return env if has_history else VisitedObservation(env, env_params)
    if has_history:
        raise ValueError(
            f"agent {config.agent!r} is Markovian (π(a | s_h, h)) but this env's obs_mode={env.obs_mode!r} shows it the "
            f"visited set: use agent='NM', or build the env with obs_mode='position' (grid worlds) / 'time'"
        )
    return env


def make_train(config: SubPOConfig, env: Any, env_params: Any) -> Trainer:
    """Build the SubPO :class:`~purejaxpo.types.Trainer`; raises ``ValueError`` on bad settings.

    ``Trainer.env`` is the env the policy acts in (for ``NM`` the
    :class:`~purejaxpo.envs.subrl.VisitedObservation` wrapper), so ``act`` takes that env's observations.
    """
    if env_params is None:
        env_params = env.default_params
    env = prepare_env(config, env, env_params)
    spec = policy_spec(env, env_params)
    engine.check_action_settings(config, spec)
    keys = _info_keys(env, env_params)
    srl = config.agent == "SRL"
    needed = {"objective"} | ({"modular_reward"} if srl else set())
    needed |= {"modular_objective"} if srl and config.estimator == "greedy_prefix" else set()
    missing = sorted(needed - keys)
    if missing:
        raise ValueError(
            f"SubPO (agent {config.agent!r}, estimator {config.estimator!r}) needs info{missing} from the env's step; "
            f"{getattr(env, 'name', type(env).__name__)} does not report them. Use purejaxpo.envs.submodular_worlds "
            f"or wrap the env in purejaxpo.envs.subrl.SubRLWrapper."
        )
    extra_keys = tuple(k for k in ("objective", "modular_reward", "modular_objective") if k in keys)
    weight_key = "modular_objective" if srl else "objective"
    actor_critic = config.estimator == "actor_critic"

    def prepare(exp: engine.Experience, ctx: engine.UpdateContext) -> engine.Prepared:
        traj = exp.trajectory
        advantages, targets = engine.gae_of(exp, ctx.hp.gamma, ctx.hp.gae_lambda)
        weights = advantages if actor_critic else ctx.hp.objective_scale * traj.extras[weight_key]  # F(τ_{0:h+1})
        batch = SubPOBatch(ctx.observe(traj.obs), traj.action, traj.log_prob, weights, targets)
        metrics = episode_objective_stats(traj.extras["objective"], exp.done)
        if "modular_objective" in traj.extras:
            metrics["episode_modular_objective"] = episode_objective_stats(traj.extras["modular_objective"],
                                                                           exp.done)["episode_objective"]
        if actor_critic:
            metrics["explained_variance"] = explained_variance(traj.value, targets)
        return engine.Prepared(batch, None, metrics)

    def loss(model: Any, batch: SubPOBatch, ctx: engine.LossContext) -> tuple[Array, dict[str, Array]]:
        hp = ctx.hp
        ent_coef = hp.ent_coef / (ctx.update_index + 1.0) if config.decay_entropy else hp.ent_coef
        return subpo_loss(model, batch, hp, config, ent_coef)

    parts = engine.OnPolicyParts(
        network=lambda key: actor_critic_for(config, spec, key),
        policy_step=engine.actor_critic_step(lambda raw: raw),
        value=engine.critic_value,
        prepare=prepare,
        phases=(engine.adam_phase(loss, config),),
        info_extras=lambda info: {k: jnp.asarray(info[k], jnp.float32) for k in extra_keys},
        train_rewards=(lambda trajectory: trajectory.extras["modular_reward"]) if srl else None,
    )
    return engine.build(parts, config, env, env_params)


__all__ = ["AGENTS", "ESTIMATORS", "SubPOBatch", "SubPOConfig", "SubPOHParams", "episode_objective_stats", "make_train",
           "prepare_env", "subpo_loss"]
