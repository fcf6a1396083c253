"""PolicyFlow (Yang, Liu & Chen, arXiv:2602.01156, ICLR 2026): a continuous-normalizing-flow policy trained
PPO-style with a velocity-variation ratio and a Brownian regularizer.

One update ([C] = the released code):

1. Rollout with θ_old (the parameters at the start of the update): ``x0 ~ N(0, I)`` (0 when
   ``degenerate_to_gaussian``), ``x1 = φ_θold(x0; s)`` by K midpoint steps, ``δ ~ N(0, σ_old²)``, ``a = x1 + δ``,
   stored with ``log N(δ; 0, σ_old²)`` and ``V(s)``. ``Trajectory.action`` holds ``concat[x0, x1, δ]`` ``[T, B, 3D]``;
   the env receives ``clip(x1 + δ)`` (``action_bounds="clip"``), or the raw ``x1 + δ`` (``"none"``: the
   reference's MultiGoal env gets the unclipped action, clips it for the dynamics and charges its cost on the
   raw one [C]).
2. GAE (truncation bootstrapped with ``V(final_obs)``); advantages normalized over the whole rollout.
3. ``update_epochs`` × ``num_minibatches`` AdamW steps on
   ``L = L_π − c_ent H[N(Δv, σ_θ²)] + c_BR L_BR + c_V L_V`` where, per sample, ``t`` is drawn from the
   ``2K+1`` solver times, ``x_t`` interpolates ``x0 → x1``, ``Δv = v_θ(x_t, t) − v_θold(x_t, t)``,
   ``ρ = N(δ; Δv, σ_θ²) / N(δ; 0, σ_old²)``, ``L_π`` is PPO-clip on ρ, ``L_BR`` the Brownian regularizer and
   ``L_V = mean((R − V_old − clip(V − V_old, ±ε_V))²)`` (direct value clipping: no PPO max). The Gaussian
   ablation (``degenerate_to_gaussian``) has no Brownian term (the reference skips it there [C]).
4. After every epoch the learning rate (a traced scalar in the optimizer state, :mod:`purejaxpo.engine.optim`:
   no recompiles) follows the KL-adaptive rule on the **running mean** of the residual KL over this update's
   epochs so far (:mod:`purejaxpo.primitives.kl_adaptive`, as the reference [C]; carried in ``state.algo``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx, struct

from purejaxpo import engine
from purejaxpo.engine import RolloutBudget, require_positive_ints, set_hyperparams, validate_config
from purejaxpo.networks.distributions import env_action
from purejaxpo.networks.flow_policy import FlowPolicy
from purejaxpo.primitives import flows
from purejaxpo.primitives.kl_adaptive import adapt_lr_on_running_kl, running_kl_init
from purejaxpo.primitives.advantages import explained_variance, masked_mean, normalize
from purejaxpo.primitives.losses import clip_fraction, clipped_surrogate, sample_kl
from purejaxpo.spaces import PolicySpec, policy_spec
from purejaxpo.types import KL_ADAPTIVE_LR_RULES, CheckedHParams, Trainer, at_least

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class PolicyFlowConfig(RolloutBudget):
    """Static settings. Network and loop defaults follow the released MultiGoal config except the
    CPU-scale batch (``num_envs=64`` instead of 4096).

    - ``num_flow_steps``: K midpoint steps (10 in the code, 12 in the paper).
    - ``output_scale``: init scale of the velocity net's last kernel (0.01 code, 0.0 = the paper's zero init).
    - ``interpolant``: ``"rectified_flow"`` (all paper runs), ``"stochastic_interpolant"``, ``"trigflow"``.
    - ``brownian_reduction``: ``"mean"`` over action dims (code) or ``"l2"`` sum (paper).
    - ``degenerate_to_gaussian``: x0 = 0, i.e. a Gaussian policy with mean ``φ_θ(0; s)`` (ablation).
    - ``kl_adaptive_lr``: adapt the learning rate per epoch from the running-mean residual KL (off = constant
      ``hp.lr``).
    - ``action_bounds``: ``"clip"`` / ``"tanh"`` into the env's box, or ``"none"`` (the env gets the raw action).

    Fields:
        hidden_sizes: widths of the velocity network
        critic_hidden_sizes: widths of the critic
        emb_dim: width of the flow-time embedding (a multiple of 8)
        num_flow_steps: K midpoint steps of the flow
        output_scale: init scale of the velocity net's last kernel (0 = zero init)
        init_log_std: initial log std of the Gaussian residual
        interpolant: the flow-matching interpolant
        brownian_reduction: Brownian regularizer over action dims: mean or l2 sum
        degenerate_to_gaussian: x0 = 0, a Gaussian policy with mean φ_θ(0; s) (ablation)
        kl_adaptive_lr: adapt the learning rate per epoch from the residual KL
        action_bounds: clip or tanh the flow's action into the action space, or none (the env gets the raw action)
    """

    algorithm_name: ClassVar[str] = "policyflow"
    choices: ClassVar[dict[str, Any]] = {"interpolant": flows.INTERPOLANTS, "brownian_reduction": flows.BROWNIAN_REDUCTIONS}

    num_envs: int = 64
    num_steps: int = 32
    total_timesteps: int = 1_048_576
    update_epochs: int = 5
    num_minibatches: int = 4
    hidden_sizes: tuple[int, ...] = (256, 128, 64)
    critic_hidden_sizes: tuple[int, ...] = (256, 128, 64)
    emb_dim: int = 64
    num_flow_steps: int = 10
    output_scale: float = 0.01
    init_log_std: float = 0.0
    interpolant: str = "rectified_flow"
    brownian_reduction: str = "mean"
    degenerate_to_gaussian: bool = False
    kl_adaptive_lr: bool = True
    normalize_advantages: bool = True
    normalize_obs: bool = False
    normalize_rewards: bool = False
    action_bounds: str = "clip"

    def __post_init__(self) -> None:
        validate_config(self)
        require_positive_ints(self, ("num_flow_steps", "emb_dim"))
        if self.emb_dim % 8:
            raise ValueError(f"PolicyFlowConfig.emb_dim must be a multiple of 8, got {self.emb_dim}")
        if self.action_bounds is None:
            raise ValueError("PolicyFlowConfig.action_bounds must be 'clip', 'tanh' or 'none', got None")
        if self.output_scale < 0:
            raise ValueError(f"PolicyFlowConfig.output_scale must be >= 0, got {self.output_scale}")


@struct.dataclass
class PolicyFlowHParams(CheckedHParams):
    """Traced hyperparameters (MultiGoal defaults of the released code).

    ``lr`` is the *initial* learning rate when ``kl_adaptive_lr``; ``desired_kl``, ``lr_factor``, ``min_lr`` and
    ``max_lr`` are the SKRL ``KLAdaptiveLR`` defaults (assumed [P]).

    Fields:
        lr: learning rate (the initial one with kl_adaptive_lr)
        value_clip_eps: clip range of the clipped value loss
        brownian_coef: weight of the Brownian regularizer
        brownian_beta: β of the Brownian regularizer's target
        weight_decay: AdamW weight decay
        desired_kl: KL target of the adaptive learning rate
        lr_factor: factor the adaptive rule multiplies or divides the learning rate by
        min_lr: lower bound of the adaptive learning rate
        max_lr: upper bound of the adaptive learning rate
    """

    lr: float = 2e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    value_clip_eps: float = 0.2
    vf_coef: float = 1.0
    ent_coef: float = 1e-3
    brownian_coef: float = 0.25
    brownian_beta: float = 1.0
    max_grad_norm: float = 1.0
    weight_decay: float = 1e-5
    desired_kl: float = 0.01
    lr_factor: float = 1.5
    min_lr: float = 1e-6
    max_lr: float = 1e-2


PolicyFlowHParams.rules = {**KL_ADAPTIVE_LR_RULES, "brownian_coef": at_least(0), "brownian_beta": at_least(0)}


@struct.dataclass
class FlowBatch:
    """Training samples ``[T, B, ...]``: latent, old endpoint and residual of every action."""

    obs: Array
    x0: Array
    x1: Array
    delta: Array
    log_prob: Array
    value: Array
    advantages: Array
    targets: Array


def build_policy(config: PolicyFlowConfig, spec: PolicySpec, key: Array) -> FlowPolicy:
    return FlowPolicy(
        spec.obs_shape[0],
        spec.action_dim,
        hidden_sizes=config.hidden_sizes,
        critic_hidden_sizes=config.critic_hidden_sizes,
        emb_dim=config.emb_dim,
        output_scale=config.output_scale,
        init_log_std=config.init_log_std,
        num_flow_steps=config.num_flow_steps,
        interpolant=config.interpolant,
        degenerate_to_gaussian=config.degenerate_to_gaussian,
        rngs=nnx.Rngs(params=key),
    )


def policyflow_loss(
    model: FlowPolicy,
    old_model: FlowPolicy,
    batch: FlowBatch,
    key: Array,
    hp: PolicyFlowHParams,
    config: PolicyFlowConfig,
) -> tuple[Array, dict[str, Array]]:
    """The PolicyFlow loss on one minibatch (module docstring, step 3); ``old_model`` is θ_old."""
    time_key, noise_key = jax.random.split(key)
    num = batch.obs.shape[0]
    times = flows.solver_times(config.num_flow_steps, flows.time_horizon(config.interpolant))
    t = times[jax.random.randint(time_key, (num,), 0, times.shape[0])]
    noise = jax.random.normal(noise_key, batch.x0.shape) if config.interpolant == "stochastic_interpolant" else None
    x_t = flows.interpolate(batch.x0, batch.x1, t, config.interpolant, noise)
    v_new = model.velocity(batch.obs, x_t, t)
    v_old = jax.lax.stop_gradient(old_model.velocity(batch.obs, x_t, t))
    delta_v = v_new - v_old
    log_std = jnp.broadcast_to(model.log_std(), delta_v.shape)
    log_ratio = flows.policyflow_log_ratio(delta_v, batch.delta, log_std, batch.log_prob)
    policy_loss = masked_mean(clipped_surrogate(log_ratio, batch.advantages, hp.clip_eps))
    entropy = masked_mean(flows.residual_gaussian(jnp.zeros_like(log_std), log_std).entropy())
    if config.degenerate_to_gaussian:  # no Brownian term in the Gaussian ablation [C]
        brownian = jnp.zeros(())
    else:
        brownian = masked_mean(flows.brownian_regularizer(v_new, v_old, x_t, t, config.interpolant, hp.brownian_beta,
                                                          config.brownian_reduction))
    values = model.value(batch.obs)
    clipped_values = batch.value + jnp.clip(values - batch.value, -hp.value_clip_eps, hp.value_clip_eps)
    v_loss = masked_mean(jnp.square(batch.targets - clipped_values))
    loss = policy_loss - hp.ent_coef * entropy + hp.brownian_coef * brownian + hp.vf_coef * v_loss
    kl = flows.policyflow_kl(jax.lax.stop_gradient(delta_v), jax.lax.stop_gradient(log_std), old_model.log_std())
    aux = {
        "policy_loss": policy_loss,
        "value_loss": v_loss,
        "entropy": entropy,
        "brownian_loss": brownian,
        "kl": masked_mean(kl),
        "approx_kl": masked_mean(sample_kl(log_ratio, "k3")),
        "clip_fraction": masked_mean(clip_fraction(log_ratio, hp.clip_eps)),
    }
    return loss, aux


def make_train(config: PolicyFlowConfig, env: Any, env_params: Any) -> Trainer:
    """Build the PolicyFlow :class:`~purejaxpo.types.Trainer`; ``ValueError`` for non-continuous actions or
    non-flat observations (raised here, before anything compiles)."""
    spec = policy_spec(env, env_params)
    if spec.kind != "continuous":
        raise ValueError(f"policyflow needs continuous (Box) actions; this env's action space is {spec.kind}")
    if len(spec.obs_shape) != 1:
        raise ValueError(f"policyflow needs flat (vector) observations; this env's are {spec.obs_shape}")
    dim = spec.action_dim
    to_env = lambda action: env_action(spec, action, config.action_bounds)

    def policy_step(model: FlowPolicy, obs: Array, key: Array) -> tuple[Array, Array, Array, Array]:
        latent_key, noise_key = jax.random.split(key)
        dist = model.distribution(obs, latent_key)
        action, log_prob = dist.sample_and_log_prob(seed=noise_key)
        return jnp.concatenate([dist.x0, dist.x1, action - dist.x1], axis=-1), to_env(action), log_prob, model.value(obs)

    def prepare(exp: engine.Experience, ctx: engine.UpdateContext) -> engine.Prepared:
        advantages, targets = engine.gae_of(exp, ctx.hp.gamma, ctx.hp.gae_lambda)
        if config.normalize_advantages:
            advantages = normalize(advantages)  # over the whole rollout [C]
        traj = exp.trajectory
        x0, x1, delta = traj.action[..., :dim], traj.action[..., dim : 2 * dim], traj.action[..., 2 * dim :]
        batch = FlowBatch(ctx.observe(traj.obs), x0, x1, delta, traj.log_prob, traj.value, advantages, targets)
        metrics = {"explained_variance": explained_variance(traj.value, targets),
                   "residual_std": jnp.mean(jnp.exp(ctx.model.log_std()))}
        return engine.Prepared(batch, running_kl_init(), metrics)  # the running KL restarts every update

    def adapt_lr(carried: Any, opt_state: Any, epoch: dict[str, Array], hp: PolicyFlowHParams) -> tuple[Any, Any]:
        carried, lr = adapt_lr_on_running_kl(carried, opt_state.hyperparams["learning_rate"], epoch["kl"], hp)
        return carried, set_hyperparams(opt_state, learning_rate=lr)

    def act(model: FlowPolicy, obs: Array, key: Array, deterministic: bool) -> Array:
        """Stochastic: fresh x0, flow, plus the Gaussian residual (the rollout sampler). Deterministic: the flow
        endpoint from x0 = 0 without the residual (our choice [P]; the code evaluates stochastically)."""
        if deterministic:
            return to_env(model.flow(obs, jnp.zeros(obs.shape[:-1] + (dim,), jnp.float32)))
        latent_key, noise_key = jax.random.split(key)
        return to_env(model.distribution(obs, latent_key).sample(seed=noise_key))

    phase = engine.Phase(
        loss=lambda m, mb, ctx: policyflow_loss(m, ctx.old_model, mb, ctx.key, ctx.hp, config),
        optimizer=engine.adamw_with_clipping(),  # one optimizer over actor and critic [C]
        epochs=config.update_epochs,
        minibatches=config.num_minibatches,
        hyperparams=lambda hp, i: {"learning_rate": hp.lr, "max_grad_norm": hp.max_grad_norm, "weight_decay": hp.weight_decay},
        adaptive=("learning_rate",) if config.kl_adaptive_lr else (),
        per_epoch=adapt_lr if config.kl_adaptive_lr else None,
        step_keys=True,
    )
    parts = engine.OnPolicyParts(
        network=lambda key: build_policy(config, spec, key),
        policy_step=policy_step,
        value=engine.critic_value,
        prepare=prepare,
        phases=(phase,),
        act=act,
        init_carried=lambda params, hp: running_kl_init(),
    )
    return engine.build(parts, config, env, env_params)
