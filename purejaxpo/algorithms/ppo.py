"""Proximal Policy Optimization (Schulman et al. 2017, arXiv:1707.06347) as a pure, jittable trainer.

``make_train(PPOConfig(...), env, env_params)`` returns a :class:`purejaxpo.types.Trainer`;
``trainer.train(key, PPOHParams())`` runs the whole experiment, and ``jax.vmap`` over keys (and over a
stacked ``PPOHParams``) runs seeds and hyperparameter grids in one compiled call::

    env, env_params = purejaxpo.make_env("CartPole-v1")
    trainer = ppo.make_train(ppo.PPOConfig(), env, env_params)
    keys = jax.random.split(jax.random.key(0), 8)
    state, metrics = jax.jit(jax.vmap(trainer.train, in_axes=(0, None)))(keys, ppo.PPOHParams())
    metrics["episode_return"]   # [8, num_updates]

Defaults are PureJaxRL's CartPole settings (4 envs × 128 steps, 4 epochs × 4 minibatches, 64-64 tanh).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx, struct

from purejaxpo.algorithms import common
from purejaxpo.algorithms.onpolicy import adam_with_clipping, flatten_time_and_batch, linear_annealing, update_epochs
from purejaxpo.networks.actor_critic import TORSOS
from purejaxpo.networks.torsos import ACTIVATIONS
from purejaxpo.primitives.advantages import explained_variance, masked_mean, normalize
from purejaxpo.primitives.losses import clip_fraction, clipped_surrogate, entropy_loss, sample_kl, value_loss
from purejaxpo.types import Trainer, check_hparams

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Static settings: anything that changes shapes, loop counts or the traced program.

    ``action_bounds`` (``"clip"``/``"tanh"``) and ``init_log_std`` apply to continuous actions only;
    leave them ``None`` (= ``"clip"`` and ``0.0``) for discrete envs.
    """

    num_envs: int = 4
    num_steps: int = 128
    total_timesteps: int = 500_000
    update_epochs: int = 4
    num_minibatches: int = 4
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    torso: str = "mlp"
    anneal_lr: bool = True
    normalize_advantages: bool = True
    clip_value: bool = True
    dual_clip: bool = False
    normalize_obs: bool = False
    normalize_rewards: bool = False
    action_bounds: str | None = None
    init_log_std: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        if not self.hidden_sizes or any(not isinstance(h, int) or h <= 0 for h in self.hidden_sizes):
            raise ValueError(f"PPOConfig.hidden_sizes must be positive integers, got {self.hidden_sizes!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"PPOConfig.activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.torso not in TORSOS:
            raise ValueError(f"PPOConfig.torso must be one of {TORSOS}, got {self.torso!r}")
        if self.action_bounds not in (None, "clip", "tanh"):
            raise ValueError(f"PPOConfig.action_bounds must be 'clip' or 'tanh', got {self.action_bounds!r}")
        common.check_batch_layout(self)

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size


@struct.dataclass
class PPOHParams:
    """Traced hyperparameters: changing any value never recompiles; stack them to vmap a grid."""

    lr: float = 2.5e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    dual_clip_c: float = 3.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` for out-of-range concrete values (traced values are skipped)."""
        check_hparams(self, _HPARAM_RULES, _HPARAM_MESSAGES)


_HPARAM_RULES = {
    "lr": lambda x: x >= 0,
    "gamma": lambda x: (x >= 0) & (x <= 1),
    "gae_lambda": lambda x: (x >= 0) & (x <= 1),
    "clip_eps": lambda x: x > 0,
    "ent_coef": lambda x: x >= 0,
    "vf_coef": lambda x: x >= 0,
    "max_grad_norm": lambda x: x > 0,
    "dual_clip_c": lambda x: x > 1,
}
_HPARAM_MESSAGES = {
    "lr": "must be >= 0 (a negative learning rate ascends the loss)",
    "gamma": "must lie in [0, 1]",
    "gae_lambda": "must lie in [0, 1]",
    "clip_eps": "must be > 0",
    "ent_coef": "must be >= 0",
    "vf_coef": "must be >= 0",
    "max_grad_norm": "must be > 0",
    "dual_clip_c": "must be > 1",
}


@struct.dataclass
class PPOBatch:
    """Flattened training samples ``[N, ...]``."""

    obs: Array
    action: Array
    log_prob: Array
    value: Array
    advantages: Array
    targets: Array


def ppo_loss(
    model: Any, batch: PPOBatch, hp: PPOHParams, config: PPOConfig
) -> tuple[Array, dict[str, Array]]:
    """``L = L_clip + c_V L_V − c_H H`` on one minibatch (advantages normalized per minibatch)."""
    dist, values = model(batch.obs)
    log_ratio = dist.log_prob(batch.action) - batch.log_prob
    advantages = normalize(batch.advantages) if config.normalize_advantages else batch.advantages
    dual = hp.dual_clip_c if config.dual_clip else None
    policy_loss = masked_mean(clipped_surrogate(log_ratio, advantages, hp.clip_eps, dual))
    old_values = batch.value if config.clip_value else None
    v_loss = masked_mean(value_loss(values, batch.targets, old_values, hp.clip_eps))
    entropy = masked_mean(-entropy_loss(dist.entropy()))
    loss = policy_loss + hp.vf_coef * v_loss - hp.ent_coef * entropy
    aux = {
        "policy_loss": policy_loss,
        "value_loss": v_loss,
        "entropy": entropy,
        "approx_kl": masked_mean(sample_kl(log_ratio, "k3")),
        "clip_fraction": masked_mean(clip_fraction(log_ratio, hp.clip_eps)),
    }
    return loss, aux


def make_train(config: PPOConfig, env: Any, env_params: Any) -> Trainer:
    """Build the PPO :class:`~purejaxpo.types.Trainer` for ``env``; raises ``ValueError`` on bad settings."""
    num_updates = config.num_updates
    spec = common.policy_spec(env, env_params)
    common.check_action_settings(config, spec)
    graphdef, _ = nnx.split(common.build_actor_critic(config, spec, jax.random.key(0)))

    def init(key: Array, hp: PPOHParams) -> common.OnPolicyState:
        net_key, key = jax.random.split(key)
        _, params = nnx.split(common.build_actor_critic(config, spec, net_key))
        opt_state = adam_with_clipping(hp.lr, hp.max_grad_norm).init(params)
        return common.init_state(env, env_params, config, spec, params, opt_state, key)

    def update(state: common.OnPolicyState, hp: PPOHParams) -> tuple[common.OnPolicyState, dict[str, Array]]:
        key, rollout_key, epoch_key = jax.random.split(state.key, 3)
        model = nnx.merge(graphdef, state.params)
        exp = common.collect_experience(env, env_params, config, spec, state, model, rollout_key, hp.gamma, hp.gae_lambda)
        trajectory = exp.trajectory
        observe = common.observe_fn(config, state.obs_norm)
        batch = flatten_time_and_batch(
            PPOBatch(observe(trajectory.obs), trajectory.action, trajectory.log_prob, trajectory.value, exp.advantages, exp.targets)
        )
        lr = linear_annealing(hp.lr, state.update_index, num_updates, config.anneal_lr)
        optimizer = adam_with_clipping(lr, hp.max_grad_norm)
        loss_fn = lambda params, minibatch: ppo_loss(nnx.merge(graphdef, params), minibatch, hp, config)
        params, opt_state, train_metrics = update_epochs(
            epoch_key, state.params, state.opt_state, batch, loss_fn, optimizer, config.update_epochs, config.num_minibatches
        )
        new_state = state.replace(
            params=params, opt_state=opt_state, obs_norm=exp.obs_norm, reward_scaler=exp.reward_scaler,
            env=exp.env, key=key, update_index=state.update_index + 1,
        )
        metrics = {
            **common.episode_metrics(exp.stats),
            **{k: v for k, v in train_metrics.items() if k != "nonfinite"},
            "nonfinite_steps": train_metrics["nonfinite"],
            "explained_variance": explained_variance(trajectory.value, exp.targets),
            "learning_rate": lr,
            "env_steps": (state.update_index + 1).astype(jnp.float32) * config.batch_size,
        }
        return new_state, metrics

    def train(key: Array, hp: PPOHParams) -> tuple[common.OnPolicyState, dict[str, Array]]:
        state = init(key, hp)
        return jax.lax.scan(lambda s, _: update(s, hp), state, None, length=num_updates)

    return Trainer(init, update, train, common.act_fn(config, spec, graphdef), config, env, env_params)
