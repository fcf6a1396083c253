"""Hyper++: PPO with hyperbolic actor and critic heads (Klein et al., "Understanding and Improving Hyperbolic
Deep Reinforcement Learning", arXiv:2512.14202), with the Hyper+S-RYM (Cetin et al. 2023, arXiv:2210.01542) and
Euclidean PPO baselines as configurations of the same trainer.

``HyperPPConfig`` picks the agent:

- ``geometry`` ∈ {``euclidean``, ``poincare``, ``hyperboloid``}: the space the heads act in
  (:mod:`purejaxpo.networks.hyperbolic`);
- ``feature_reg`` ∈ {``none``, ``srym``, ``hyperpp``}: ``srym`` is spectral norm on every encoder layer plus
  ``relu(u)/√d``; ``hyperpp`` is RMSNorm → tanh → ``/√d`` → learned gate × ``artanh(α)/√c`` (norm-bounded);
- ``value_loss`` ∈ {``mse``, ``hl_gauss``, ``two_hot``}: scalar critic (½ MSE) or a categorical critic over
  ``num_bins`` bins on ``[v_min, v_max]`` trained by cross-entropy (value = categorical mean).

Hyper++ = hyperboloid + hyperpp + hl_gauss (:class:`HyperPPConfig` defaults, ``"hyperpp"`` in the registry);
Hyper+S-RYM = poincare + srym + mse, 3 epochs (:class:`HyperSRYMConfig`, ``"hyper_srym"``); Euclidean
PPO = euclidean + none + mse, 3 epochs (:class:`EuclideanPPOConfig`, ``"ppo_impala"``).

Loss (CleanRL style): ``L = −mean min(ρÂ, clip(ρ, 1±ε)Â) − c_H mean H + c_V L_V`` with Â normalized per
minibatch, no value clipping by default, global grad-norm clip, Adam (eps 1e-5), constant learning rate.
Rewards are scaled by the running return std and clipped to ±10 (``normalize_rewards``), which keeps
returns inside the HL-Gauss support.

Extra metrics: ``embedding_norm`` / ``embedding_norm_max`` (‖v‖ of the tangent embedding before ``exp_0``,
mean and max over the minibatch, averaged over gradient steps), ``approx_kl``, ``clip_fraction``,
``kl_violation_fraction`` (fraction of gradient steps whose minibatch approx-KL exceeded ``hp.kl_limit``),
``post_update_kl`` (k3 estimate of KL(π_old ‖ π_new) on the whole batch after the update) and
``trust_region_violation`` (1 if ``post_update_kl > hp.kl_limit``; its mean over updates is the fraction of
updates that left the trust region). The KL threshold is our reading [P]: the papers report KL and clip
fractions but we found no explicit violation threshold.

Differences from the reference [P]: advantages are computed once per rollout (hyper-rl recomputes the bootstrap
value each epoch); the manifold math runs in float32 with the float32 MLR clamp; spectral norm uses a carried
power-iteration vector (``sn_iterations`` steps per gradient step, PyTorch's default 1 per training forward; rollout
forwards read it without advancing it, as PyTorch's eval mode); the Poincaré offsets are trained through a tangent
parametrization with Adam instead of Riemannian Adam.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx, struct

from purejaxpo import engine
from purejaxpo.engine import RolloutBudget, require_positive_ints, validate_config
from purejaxpo.networks import distributions
from purejaxpo.networks.hyperbolic import ENCODERS, FEATURE_REGS, GEOMETRIES, HyperActorCritic, with_power_iteration
from purejaxpo.primitives import distributional as dist_loss
from purejaxpo.primitives.advantages import explained_variance, masked_mean, normalize
from purejaxpo.primitives.losses import clip_fraction, clipped_surrogate, sample_kl, value_loss
from purejaxpo.spaces import PolicySpec, policy_spec
from purejaxpo.types import CheckedHParams, Trainer, above

Array = jax.Array
VALUE_LOSSES = ("mse", "hl_gauss", "two_hot")
LAST_ACTIVATIONS = ("tanh", "relu")


@dataclasses.dataclass(frozen=True)
class HyperPPConfig(RolloutBudget):
    """Static settings (shapes, loop counts, architecture). Defaults: Hyper++ at a MinAtar-size budget.

    Paper settings for ProcGen: 64 envs × 256 steps, 8 minibatches, 2 epochs (Hyper++) / 3
    (baselines), ``embedding_dim=32``, 25M steps. ``curvature``, ``alpha`` and the bin support are
    architecture constants here (static), not traced hyperparameters: they fix the network's norm bound and
    its value readout.

    Fields:
        encoder: observation encoder: impala (ResNet, the paper's), cnn (MinAtar conv net) or mlp (flat observations)
        channels: conv channels per stage (impala, cnn)
        hidden_sizes: MLP widths (encoder mlp / cnn only)
        activation: hidden activation (encoder mlp / cnn only)
        embedding_dim: width of the embedding the heads read
        geometry: space the actor and critic heads act in
        feature_reg: regularization of the embedding: none, srym (spectral norm, relu/√d) or hyperpp (RMSNorm gate)
        value_loss: critic loss: mse, or cross-entropy to an HL-Gauss / two-hot target over num_bins bins
        last_activation: activation of the encoder's last layer
        curvature: curvature c of the manifold (curvature −c)
        alpha: fraction of the ball radius the hyperpp gate may reach
        num_bins: bins of the categorical critic
        v_min: lower end of the categorical critic's support
        v_max: upper end of the categorical critic's support
        sigma_ratio: HL-Gauss σ in bin widths
        sn_iterations: power iterations of the spectral norm (srym)
    """

    algorithm_name: ClassVar[str] = "hyperpp"
    choices: ClassVar[dict[str, Any]] = {
        "encoder": ENCODERS, "geometry": GEOMETRIES, "feature_reg": FEATURE_REGS, "value_loss": VALUE_LOSSES,
        "last_activation": LAST_ACTIVATIONS,
    }

    num_envs: int = 32
    num_steps: int = 128
    total_timesteps: int = 1_000_000
    update_epochs: int = 2
    num_minibatches: int = 8
    encoder: str = "impala"
    channels: tuple[int, ...] = (16, 32, 32)
    hidden_sizes: tuple[int, ...] = (64, 64)  # encoder="mlp"/"cnn" only
    activation: str = "relu"  # encoder="mlp"/"cnn" only
    embedding_dim: int = 32
    geometry: str = "hyperboloid"
    feature_reg: str = "hyperpp"
    value_loss: str = "hl_gauss"
    last_activation: str = "tanh"
    curvature: float = 1.0
    alpha: float = 0.95
    num_bins: int = 51
    v_min: float = -10.0
    v_max: float = 10.0
    sigma_ratio: float = 0.75
    sn_iterations: int = 1
    anneal_lr: bool = False
    normalize_advantages: bool = True
    clip_value: bool = False
    normalize_obs: bool = False
    normalize_rewards: bool = True

    def __post_init__(self) -> None:
        name = type(self).__name__
        validate_config(self)
        require_positive_ints(self, ("embedding_dim", "sn_iterations"))
        if not self.curvature > 0:
            raise ValueError(f"{name}.curvature must be > 0 (the manifold has curvature −c), got {self.curvature!r}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"{name}.alpha must lie in (0, 1) (fraction of the ball radius), got {self.alpha!r}")
        if not isinstance(self.num_bins, int) or self.num_bins < 2:
            raise ValueError(f"{name}.num_bins must be an integer >= 2, got {self.num_bins!r}")
        if not self.v_max > self.v_min:
            raise ValueError(f"{name}.v_max must exceed v_min, got v_min={self.v_min}, v_max={self.v_max}")
        if not self.sigma_ratio > 0:
            raise ValueError(f"{name}.sigma_ratio must be > 0, got {self.sigma_ratio!r}")
        if self.clip_value and self.value_loss != "mse":
            raise ValueError(f"{name}.clip_value applies to value_loss='mse' only, got {self.value_loss!r}")

    @property
    def categorical_critic(self) -> bool:
        return self.value_loss != "mse"


@dataclasses.dataclass(frozen=True)
class HyperSRYMConfig(HyperPPConfig):
    """Hyper+S-RYM (hyper-rl ``hyper_paper.yaml``): Poincaré MLR heads, spectral norm + ``relu(u)/√d``,
    MSE critic, 3 epochs."""

    algorithm_name: ClassVar[str] = "hyper_srym"

    update_epochs: int = 3
    geometry: str = "poincare"
    feature_reg: str = "srym"
    value_loss: str = "mse"
    last_activation: str = "relu"


@dataclasses.dataclass(frozen=True)
class EuclideanPPOConfig(HyperPPConfig):
    """Euclidean PPO with the same encoder (hyper-rl ``euclidean_baseline.yaml``): linear heads, MSE, 3 epochs."""

    algorithm_name: ClassVar[str] = "ppo_impala"

    update_epochs: int = 3
    geometry: str = "euclidean"
    feature_reg: str = "none"
    value_loss: str = "mse"
    last_activation: str = "relu"


@struct.dataclass
class HyperPPHParams(CheckedHParams):
    """Traced hyperparameters (the paper's: lr 5e-4, clip 0.2, ent 0.01, vf 0.5, grad-norm 0.5, λ 0.95; γ 0.99 for
    MinAtar instead of ProcGen's 0.999). ``kl_limit`` is the KL threshold of the trust-region-violation metric
    only [P]; it does not change training.

    Fields:
        kl_limit: KL threshold of the trust-region-violation metric (a metric only: training does not read it)
    """

    lr: float = 5e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    kl_limit: float = 0.02


HyperPPHParams.rules = {
    "kl_limit": above(0),
}


@struct.dataclass
class Batch:
    """Training samples ``[T, B, ...]`` (flattened to ``[N, ...]`` by the engine)."""

    obs: Array
    action: Array
    log_prob: Array
    value: Array
    advantages: Array
    targets: Array


def value_support(config: HyperPPConfig) -> tuple[Array, Array, float]:
    """``(edges [m+1], centers [m], σ)`` of the categorical critic; σ = ``sigma_ratio`` bin widths."""
    edges = dist_loss.bin_edges(config.v_min, config.v_max, config.num_bins)
    width = (config.v_max - config.v_min) / config.num_bins
    return edges, dist_loss.bin_centers(edges), config.sigma_ratio * width


def build_model(config: HyperPPConfig, spec: PolicySpec, key: Array) -> HyperActorCritic:
    centers = value_support(config)[1] if config.categorical_critic else None
    return HyperActorCritic(
        spec.obs_shape, spec.action_dim, encoder=config.encoder, channels=config.channels,
        hidden_sizes=config.hidden_sizes, activation=config.activation, embedding_dim=config.embedding_dim,
        geometry=config.geometry, feature_reg=config.feature_reg, last_activation=config.last_activation,
        curvature=config.curvature, alpha=config.alpha, value_centers=centers,
        spectral_norm=config.feature_reg == "srym", rngs=nnx.Rngs(params=key),
    )


def critic_loss(config: HyperPPConfig, model: HyperActorCritic, value_out: Array, batch: Batch, hp: HyperPPHParams) -> Array:
    """Per-sample critic loss ``[N]``: ½(V − R)² (optionally clipped) or the CE to the HL-Gauss / two-hot target."""
    edges, centers, sigma = value_support(config)
    if config.value_loss == "hl_gauss":
        return dist_loss.hl_gauss_loss(value_out, batch.targets, edges, sigma)
    if config.value_loss == "two_hot":
        return dist_loss.two_hot_loss(value_out, batch.targets, centers)
    old = batch.value if config.clip_value else None
    return value_loss(model.value_from_output(value_out), batch.targets, old, hp.clip_eps)


def hyperpp_loss(model: HyperActorCritic, batch: Batch, hp: HyperPPHParams, config: HyperPPConfig) -> tuple[Array, dict[str, Array]]:
    """PPO-clip + ``c_V`` critic loss − ``c_H`` entropy on one minibatch, with embedding-norm and KL metrics."""
    logits, value_out, embedding = model.forward(batch.obs)
    dist = distributions.categorical(logits)
    advantages = normalize(batch.advantages) if config.normalize_advantages else batch.advantages
    log_ratio = dist.log_prob(batch.action) - batch.log_prob
    policy_loss = masked_mean(clipped_surrogate(log_ratio, advantages, hp.clip_eps))
    v_loss = masked_mean(critic_loss(config, model, value_out, batch, hp))
    entropy = masked_mean(dist.entropy())
    loss = policy_loss + hp.vf_coef * v_loss - hp.ent_coef * entropy
    approx_kl = masked_mean(sample_kl(log_ratio, "k3"))
    norms = jnp.linalg.norm(embedding, axis=-1)
    aux = {
        "policy_loss": policy_loss,
        "value_loss": v_loss,
        "entropy": entropy,
        "approx_kl": approx_kl,
        "clip_fraction": masked_mean(clip_fraction(log_ratio, hp.clip_eps)),
        "kl_violation_fraction": (approx_kl > hp.kl_limit).astype(jnp.float32),
        "embedding_norm": jnp.mean(norms),
        "embedding_norm_max": jnp.max(norms),
    }
    return loss, aux


def make_train(config: HyperPPConfig, env: Any, env_params: Any) -> Trainer:
    """Build the Hyper++ / S-RYM / Euclidean PPO :class:`~purejaxpo.types.Trainer` (discrete actions)."""
    spec = policy_spec(env, env_params)
    if spec.kind != "discrete":
        raise ValueError(f"{type(config).__name__} needs a discrete action space; this env's is {spec.kind}")
    if config.encoder in ("impala", "cnn", "gridworld") and len(spec.obs_shape) != 3:
        raise ValueError(f"encoder={config.encoder!r} needs [H, W, C] observations; this env's are {spec.obs_shape}")

    def prepare(exp: engine.Experience, ctx: engine.UpdateContext) -> engine.Prepared:
        advantages, targets = engine.gae_of(exp, ctx.hp.gamma, ctx.hp.gae_lambda)
        traj = exp.trajectory
        batch = Batch(ctx.observe(traj.obs), traj.action, traj.log_prob, traj.value, advantages, targets)
        return engine.Prepared(batch, None, {"explained_variance": explained_variance(traj.value, targets)})

    def per_update(ctx: engine.UpdateContext, new_model: Any, batch: Batch, carried: Any) -> tuple[Any, dict[str, Array]]:
        """KL(π_old ‖ π_new) on the whole batch after the update (k3) and whether it left the trust region."""
        new_log_prob = new_model.distribution(batch.obs).log_prob(batch.action)
        post_kl = masked_mean(sample_kl(new_log_prob - batch.log_prob, "k3"))
        return carried, {"post_update_kl": post_kl, "trust_region_violation": (post_kl > ctx.hp.kl_limit).astype(jnp.float32)}

    def hyperparams(hp: HyperPPHParams, update_index: Array) -> dict[str, Array]:
        lr = engine.linear_annealing(hp.lr, update_index, config.num_updates, config.anneal_lr)
        return {"learning_rate": lr, "max_grad_norm": hp.max_grad_norm}

    phase = engine.Phase(
        loss=lambda m, mb, ctx: hyperpp_loss(m, mb, ctx.hp, config), optimizer=engine.adam_with_clipping(
            wrap=lambda t: with_power_iteration(t, config.sn_iterations)),
        epochs=config.update_epochs, minibatches=config.num_minibatches, hyperparams=hyperparams,
    )
    parts = engine.OnPolicyParts(
        network=lambda key: build_model(config, spec, key),
        policy_step=engine.actor_critic_step(lambda raw: raw),
        value=engine.critic_value,
        prepare=prepare,
        phases=(phase,),
        per_update=per_update,
    )
    return engine.build(parts, config, env, env_params)
