"""Hyperbolic actor-critic pieces (Hyper++, Klein et al. 2025, arXiv:2512.14202; Hyper+S-RYM, Cetin et al.
2023, arXiv:2210.01542): encoders (Impala-style CNN, MinAtar CNN, hyper-rl's gridworld CNN, MLP) with
optional spectral norm (a carried power-iteration vector per layer), the
feature regularizers, Poincaré and Lorentz MLR heads, and the actor-critic that selects among them.

Layout::

    h = Encoder(obs)                          shared by actor and critic
    u = W h + b                                [..., d], d = embedding_dim
    v = FeatureRegularizer(u)                  tangent vector at the origin
    x = expmap0(v)                             euclidean: x = v; poincare: [..., d] on B_c; hyperboloid: [..., d+1]
    logits = policy_head(x)   value_out = value_head(x)     (Euclidean Linear, Poincaré MLR or Lorentz MLR)

All parameters are Euclidean (the Poincaré offsets are parametrized by a tangent vector, see
:class:`PoincareMLR`), so plain Adam trains everything.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from purejaxpo.networks import distributions
from purejaxpo.networks.torsos import activation_fn, dense
from purejaxpo.primitives import hyperbolic as hyp
from purejaxpo.primitives.distributional import categorical_mean

Array = jax.Array

GEOMETRIES = ("euclidean", "poincare", "hyperboloid")
FEATURE_REGS = ("none", "srym", "hyperpp")
ENCODERS = ("impala", "cnn", "gridworld", "mlp")

# PyTorch's default Conv/Linear init U(±1/√fan_in) (hyper-rl keeps it for the Impala CNN); no QR, so vmap-safe
torch_default_init = nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def rms_norm(u: Array, eps: float = 1e-6) -> Array:
    """RMSNorm without gain: ``u / sqrt(mean(u²) + eps)`` over the last axis, so ``‖u‖₂ ≈ √d``."""
    return u * jax.lax.rsqrt(jnp.mean(jnp.square(u), axis=-1, keepdims=True) + eps)


def spectral_normalize(kernel: Array, num_iterations: int = 5) -> Array:
    """``W / σ_max(W)`` with ``σ_max`` from ``num_iterations`` of power iteration from a fixed start vector
    (Miyato et al. 2018, arXiv:1802.05957), singular vectors held constant in the gradient: the *stateless*
    reference computation (tests; the layers carry their vector, :class:`SpectralVector`). Conv kernels
    ``[kh, kw, in, out]`` are flattened to ``[kh·kw·in, out]`` as in ``torch.nn.utils.spectral_norm``."""
    w = kernel.reshape(-1, kernel.shape[-1])
    u = power_iteration(w, jnp.ones((w.shape[1],), w.dtype) / math.sqrt(w.shape[1]), num_iterations)
    return kernel / spectral_sigma(w, u)


class SpectralVector(nnx.Variable):
    """The carried power-iteration vector ``u [out]`` of a spectrally normalized layer: not trained (its
    gradient is zero and :func:`with_power_iteration` overwrites its optimizer update), part of the params
    state, so checkpoints and resumes carry it (as PyTorch's ``weight_u`` buffer)."""


def power_iteration(w: Array, u: Array, num_iterations: int) -> Array:
    """``num_iterations`` power-method steps ``u ← normalize(Wᵀ normalize(W u))`` for ``w [a, out]``, ``u [out]``
    (no gradient): ``u`` tends to the top right singular vector."""
    w = jax.lax.stop_gradient(w)

    def body(_: int, u: Array) -> Array:
        v = w @ u
        v = v / jnp.maximum(jnp.linalg.norm(v), 1e-12)
        u = w.T @ v
        return u / jnp.maximum(jnp.linalg.norm(u), 1e-12)

    return jax.lax.fori_loop(0, num_iterations, body, jax.lax.stop_gradient(u))


def spectral_sigma(w: Array, u: Array) -> Array:
    """``σ = ‖W u‖`` for ``w [a, out]`` and a unit ``u`` held constant (``= vᵀWu`` with ``v = Wu/‖Wu‖``, PyTorch's
    estimate); the gradient flows through ``W``."""
    return jnp.maximum(jnp.linalg.norm(w @ jax.lax.stop_gradient(u)), 1e-12)


def with_power_iteration(inner: Any, num_iterations: int = 1) -> Any:
    """An optax transformation: ``inner`` for every leaf, then, for every :class:`SpectralVector` leaf (named
    ``sn_u`` next to its layer's ``kernel``), the update that replaces ``u`` by ``num_iterations`` power steps on
    the kernel before this gradient step. So each gradient step advances every ``u`` by one iteration (PyTorch's
    default ``n_power_iterations=1`` per training forward) while rollout forwards read ``u`` without advancing it
    (as PyTorch's eval mode) [P]."""
    import optax

    def is_vector(path: tuple) -> bool:
        return any(getattr(k, "key", None) == "sn_u" for k in path)

    def kernel_path(path: tuple) -> tuple:
        return tuple(jax.tree_util.DictKey("kernel") if getattr(k, "key", None) == "sn_u" else k for k in path)

    def update(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        updates, state = inner.update(updates, state, params)
        flat = dict(jax.tree_util.tree_flatten_with_path(params)[0])

        def replace(path: tuple, upd: Array) -> Array:
            if not is_vector(path):
                return upd
            w = flat[kernel_path(path)]
            u = flat[path]
            return power_iteration(w.reshape(-1, w.shape[-1]), u, num_iterations) - u

        return jax.tree_util.tree_map_with_path(replace, updates), state

    return optax.GradientTransformation(inner.init, update)


def _init_vector(kernel: Array, key: Array) -> SpectralVector:
    """``u₀``: a random unit vector refined by 15 power steps on the initial kernel (PyTorch at registration)."""
    w = kernel.reshape(-1, kernel.shape[-1])
    u = jax.random.normal(key, (w.shape[1],), w.dtype)
    return SpectralVector(power_iteration(w, u / jnp.linalg.norm(u), 15))


class Linear(nnx.Module):
    """``x @ W + b`` with optional spectral normalization ``W / ‖W u‖`` by the carried vector ``u``
    (PyTorch default init)."""

    def __init__(self, in_features: int, out_features: int, *, spectral: bool = False, rngs: nnx.Rngs):
        self.kernel = nnx.Param(torch_default_init(rngs.params(), (in_features, out_features), jnp.float32))
        self.bias = nnx.Param(jax.random.uniform(rngs.params(), (out_features,), jnp.float32, -1, 1) / math.sqrt(in_features))
        self.spectral = spectral
        if spectral:
            self.sn_u = _init_vector(self.kernel[...], rngs.params())

    def __call__(self, x: Array) -> Array:
        w = self.kernel[...]
        if self.spectral:
            w = w / spectral_sigma(w, self.sn_u[...])
        return x @ w + self.bias[...]


class Conv(nnx.Module):
    """``k×k`` convolution (3×3 SAME by default) over ``[N, H, W, C]`` with optional spectral normalization by
    the carried vector (the kernel flattened to ``[k²·in, out]``; PyTorch default init)."""

    def __init__(self, in_channels: int, out_channels: int, *, spectral: bool = False, kernel_size: int = 3,
                 padding: str = "SAME", rngs: nnx.Rngs):
        shape = (kernel_size, kernel_size, in_channels, out_channels)
        self.kernel = nnx.Param(torch_default_init(rngs.params(), shape, jnp.float32))
        fan_in = kernel_size * kernel_size * in_channels
        self.bias = nnx.Param(jax.random.uniform(rngs.params(), (out_channels,), jnp.float32, -1, 1) / math.sqrt(fan_in))
        self.spectral, self.padding = spectral, padding
        if spectral:
            self.sn_u = _init_vector(self.kernel[...], rngs.params())

    def __call__(self, x: Array) -> Array:
        w = self.kernel[...]
        if self.spectral:
            w = w / spectral_sigma(w.reshape(-1, w.shape[-1]), self.sn_u[...])
        y = jax.lax.conv_general_dilated(x, w, (1, 1), self.padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + self.bias[...]


class ImpalaEncoder(nnx.Module):
    """Impala CNN (Espeholt et al. 2018): per stage ``conv3×3 → maxpool 3 s2 → 2 × ResBlock(relu-conv-relu-conv
    + skip)``, channels ``(16, 32, 32)``; then flatten and ReLU. ``[..., H, W, C] -> [..., flat]``
    (MinAtar 10×10: 10 → 5 → 3 → 2, flat = 2·2·32 = 128)."""

    def __init__(self, obs_shape: Sequence[int], channels: Sequence[int], *, spectral: bool, rngs: nnx.Rngs):
        height, width, in_ch = obs_shape
        kw = dict(spectral=spectral, rngs=rngs)
        stages = []
        for out_ch in channels:
            stages.append(nnx.List([Conv(in_ch, out_ch, **kw)] + [Conv(out_ch, out_ch, **kw) for _ in range(4)]))
            in_ch = out_ch
            height, width = -(-height // 2), -(-width // 2)
        self.stages = nnx.List(stages)
        self.out_features = height * width * in_ch

    def __call__(self, x: Array) -> Array:
        batch_shape = x.shape[:-3]
        x = x.reshape((-1,) + x.shape[-3:])
        for conv, *res in self.stages:
            x = conv(x)
            x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME")
            for a, b in (res[:2], res[2:]):
                x = x + b(jax.nn.relu(a(jax.nn.relu(x))))
        return jax.nn.relu(x.reshape(batch_shape + (-1,)))


class SmallEncoder(nnx.Module):
    """``"cnn"``: the MinAtar torso (one 3×3 conv, 16 channels, ReLU, flatten) followed by the MLP;
    ``"mlp"``: the flattened observation through the MLP. ``[..., *obs_shape] -> [..., hidden_sizes[-1]]``."""

    def __init__(self, kind: str, obs_shape: Sequence[int], hidden_sizes: Sequence[int], activation: str, *,
                 spectral: bool, rngs: nnx.Rngs):
        kw = dict(spectral=spectral, rngs=rngs)
        self.kind, self.obs_ndim, self.activation = kind, len(obs_shape), activation
        self.conv = Conv(obs_shape[-1], 16, **kw) if kind == "cnn" else None
        width = math.prod(obs_shape[:-1]) * 16 if kind == "cnn" else math.prod(obs_shape)
        sizes = [width, *hidden_sizes]
        self.layers = nnx.List([Linear(a, b, **kw) for a, b in zip(sizes[:-1], sizes[1:])])
        self.out_features = sizes[-1]

    def __call__(self, x: Array) -> Array:
        batch_shape = x.shape[: x.ndim - self.obs_ndim]
        if self.conv is not None:
            x = jax.nn.relu(self.conv(x.reshape((-1,) + x.shape[-3:])))
        x = x.reshape(batch_shape + (-1,))
        act = activation_fn(self.activation)
        for layer in self.layers:
            x = act(layer(x))
        return x


class GridworldEncoder(nnx.Module):
    """hyper-rl's small-observation encoder (``GridworldCNN``, ``src/rl/agents/networks.py``, its MiniGrid
    setup [C]): ``x/obs_max − 0.5`` then three 2×2 VALID convolutions with 16, 32, 64 channels and ReLU, flattened
    (10×10 MinAtar frames: 7·7·64 = 3136 features; the penultimate Linear follows in :class:`HyperActorCritic`).
    ``obs_max`` is 1 (MinAtar frames are 0/1). ``[..., H, W, C] -> [..., flat]``."""

    def __init__(self, obs_shape: Sequence[int], *, spectral: bool, rngs: nnx.Rngs):
        height, width, in_ch = obs_shape
        chans = (16, 32, 64)
        self.convs = nnx.List([Conv(a, b, spectral=spectral, kernel_size=2, padding="VALID", rngs=rngs)
                               for a, b in zip((in_ch,) + chans[:-1], chans)])
        self.out_features = (height - 3) * (width - 3) * chans[-1]

    def __call__(self, x: Array) -> Array:
        batch_shape = x.shape[:-3]
        x = x.reshape((-1,) + x.shape[-3:]) - 0.5
        for conv in self.convs:
            x = jax.nn.relu(conv(x))
        return x.reshape(batch_shape + (-1,))


class FeatureRegularizer(nnx.Module):
    """The penultimate features ``u = W h + b`` ``[..., d]`` → tangent vector ``v [..., d]``.

    - ``"hyperpp"`` (Hyper++ ``FeatureScaling``)::

          u ← act(RMSNorm(u)) / √d            (act = tanh or relu, both 1-Lipschitz, shrink to 0 ⇒ ‖u‖ ≤ 1)
          s = sigmoid(w_s·u + b_s)            one learned gate per sample
          v = s · R_max · u,   R_max = artanh(α)/√c

      so ``‖v‖ ≤ R_max`` for any input: Poincaré radius ``≤ α/√c``, hyperboloid distance ``≤ artanh(α)/√c``.
    - ``"srym"`` (S-RYM, Cetin et al. 2023; with spectral norm in the encoder): ``v = relu(u) / √d``.
    - ``"none"``: ``v = relu(u)`` (the Euclidean PPO baseline; unbounded for hyperbolic heads).
    """

    def __init__(self, kind: str, dim: int, *, last_activation: str, alpha: float, curvature: float, rngs: nnx.Rngs):
        self.kind, self.dim, self.last_activation = kind, dim, last_activation
        self.r_max = math.atanh(alpha) / math.sqrt(curvature)
        self.gate = Linear(dim, 1, rngs=rngs) if kind == "hyperpp" else None

    def __call__(self, u: Array) -> Array:
        if self.kind == "none":
            return jax.nn.relu(u)
        if self.kind == "srym":
            return jax.nn.relu(u) / math.sqrt(self.dim)
        u = activation_fn(self.last_activation)(rms_norm(u)) / math.sqrt(self.dim)
        return jax.nn.sigmoid(self.gate(u)) * self.r_max * u


class PoincareMLR(nnx.Module):
    """Poincaré hyperplane MLR (Ganea et al. 2018; :func:`~purejaxpo.primitives.hyperbolic.poincare_mlr`):
    ``x [..., d]`` on the ball ``-> [..., K]``. Normals ``a ~ N(0, 1/d)``; offsets ``p_k = exp_0(p̃_k)`` with a
    Euclidean tangent parameter ``p̃ [K, d]`` initialised at 0 — our reading [P]: plain Adam on
    ``p̃`` replaces the baseline's Riemannian Adam on ``p``; the model class is the same, the optimizer path not."""

    def __init__(self, in_features: int, out_features: int, curvature: float, *, rngs: nnx.Rngs):
        self.normal = nnx.Param(jax.random.normal(rngs.params(), (out_features, in_features)) / math.sqrt(in_features))
        self.offset_tangent = nnx.Param(jnp.zeros((out_features, in_features)))
        self.curvature = curvature

    def __call__(self, x: Array) -> Array:
        p = hyp.poincare_expmap0(self.offset_tangent[...], self.curvature)
        return hyp.poincare_mlr(x, self.normal[...], p, self.curvature)


class LorentzMLR(nnx.Module):
    """Lorentz MLR (Bdeir et al. 2023; :func:`~purejaxpo.primitives.hyperbolic.lorentz_mlr`): ``x [..., d+1]``
    on the hyperboloid ``-> [..., K]``. ``z ~ N(0, 1/d)``, ``r = 0`` (Hyper++ init). float32 with the float32
    clamp ``κ ≈ 16.6`` instead of the reference's float64 head (``κ ≈ 36.7``) [P]."""

    def __init__(self, in_features: int, out_features: int, curvature: float, *, rngs: nnx.Rngs):
        self.z = nnx.Param(jax.random.normal(rngs.params(), (out_features, in_features)) / math.sqrt(in_features))
        self.r = nnx.Param(jnp.zeros((out_features,)))
        self.curvature = curvature

    def __call__(self, x: Array) -> Array:
        return hyp.lorentz_mlr(x, self.z[...], self.r[...], self.curvature)


def make_head(geometry: str, in_features: int, out_features: int, curvature: float, scale: float, rngs: nnx.Rngs) -> nnx.Module:
    if geometry == "euclidean":
        return dense(in_features, out_features, scale, rngs)
    if geometry == "poincare":
        return PoincareMLR(in_features, out_features, curvature, rngs=rngs)
    if geometry == "hyperboloid":
        return LorentzMLR(in_features, out_features, curvature, rngs=rngs)
    raise ValueError(f"unknown geometry {geometry!r}; expected one of {GEOMETRIES}")


class HyperActorCritic(nnx.Module):
    """Shared encoder + feature regularizer + (hyperbolic) actor and critic heads, discrete actions.

    ``__call__(obs [*batch, *obs_shape]) -> (Categorical [*batch], value [*batch])``; :meth:`forward` returns
    ``(action logits [*batch, A], value output [*batch, m], tangent embedding v [*batch, d])`` in one pass,
    where ``m = len(value_centers)`` (categorical critic, value = categorical mean) or 1 (scalar critic).
    """

    def __init__(
        self,
        obs_shape: Sequence[int],
        num_actions: int,
        *,
        encoder: str = "impala",
        channels: Sequence[int] = (16, 32, 32),
        hidden_sizes: Sequence[int] = (64, 64),
        activation: str = "relu",
        embedding_dim: int = 32,
        geometry: str = "hyperboloid",
        feature_reg: str = "hyperpp",
        last_activation: str = "tanh",
        curvature: float = 1.0,
        alpha: float = 0.95,
        value_centers: Any = None,
        spectral_norm: bool = False,
        rngs: nnx.Rngs,
    ):
        if geometry not in GEOMETRIES:
            raise ValueError(f"unknown geometry {geometry!r}; expected one of {GEOMETRIES}")
        if feature_reg not in FEATURE_REGS:
            raise ValueError(f"unknown feature_reg {feature_reg!r}; expected one of {FEATURE_REGS}")
        sn = dict(spectral=spectral_norm)
        if encoder == "impala":
            if len(obs_shape) != 3:
                raise ValueError(f"encoder='impala' needs [H, W, C] observations, got {tuple(obs_shape)}")
            self.encoder = ImpalaEncoder(obs_shape, channels, **sn, rngs=rngs)
        elif encoder == "gridworld":
            if len(obs_shape) != 3 or min(obs_shape[:2]) < 4:
                raise ValueError(f"encoder='gridworld' needs [H, W, C] observations with H, W >= 4, got {tuple(obs_shape)}")
            self.encoder = GridworldEncoder(obs_shape, **sn, rngs=rngs)
        elif encoder in ("cnn", "mlp"):
            if encoder == "cnn" and len(obs_shape) != 3:
                raise ValueError(f"encoder='cnn' needs [H, W, C] observations, got {tuple(obs_shape)}")
            self.encoder = SmallEncoder(encoder, obs_shape, hidden_sizes, activation, **sn, rngs=rngs)
        else:
            raise ValueError(f"unknown encoder {encoder!r}; expected one of {ENCODERS}")
        self.fc = Linear(self.encoder.out_features, embedding_dim, **sn, rngs=rngs)
        self.regularizer = FeatureRegularizer(
            feature_reg, embedding_dim, last_activation=last_activation, alpha=alpha, curvature=curvature, rngs=rngs
        )
        self.geometry, self.curvature, self.obs_ndim = geometry, curvature, len(obs_shape)
        # static (part of the graphdef, never trained)
        self.value_centers = None if value_centers is None else tuple(float(c) for c in value_centers)
        value_out = 1 if value_centers is None else len(value_centers)
        self.policy_head = make_head(geometry, embedding_dim, num_actions, curvature, 0.01, rngs)
        self.value_head = make_head(geometry, embedding_dim, value_out, curvature, 1.0, rngs)

    def embed(self, obs: Array) -> Array:
        """The tangent vector ``v [*batch, d]`` (before the exponential map)."""
        return self.regularizer(self.fc(self.encoder(obs.astype(jnp.float32))))

    def to_manifold(self, v: Array) -> Array:
        if self.geometry == "poincare":
            return hyp.poincare_expmap0(v, self.curvature)
        if self.geometry == "hyperboloid":
            return hyp.lorentz_expmap0(v, self.curvature)
        return v

    def value_from_output(self, out: Array) -> Array:
        if self.value_centers is None:
            return out[..., 0]
        return categorical_mean(out, jnp.asarray(self.value_centers, jnp.float32))

    def forward(self, obs: Array) -> tuple[Array, Array, Array]:
        v = self.embed(obs)
        x = self.to_manifold(v)
        return self.policy_head(x), self.value_head(x), v

    def value(self, obs: Array) -> Array:
        return self.value_from_output(self.value_head(self.to_manifold(self.embed(obs))))

    def distribution(self, obs: Array) -> Any:
        return distributions.categorical(self.policy_head(self.to_manifold(self.embed(obs))))

    def __call__(self, obs: Array) -> tuple[Any, Array]:
        logits, out, _ = self.forward(obs)
        return distributions.categorical(logits), self.value_from_output(out)
