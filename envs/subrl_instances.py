"""The SubRL paper's grid-world instances, in the reference code's units (Prajapat, Mutný, Zeilinger, Krause,
"Submodular Reinforcement Learning", ICLR 2024, arXiv:2307.13372; code ``main.py`` and ``utils/environment.py``
of github.com/manish-pra/non-additive-RL, provenance in ``envs/data/subpo/README.md``).

Units [C]: every config sets ``step_size: 0.1`` and ``start: 1``, so cell ``n = row·ncols + col`` sits at the
kernel coordinate ``(row, col)·0.1 + 1`` (:func:`kernel_coords`); the GP kernels are gpytorch's
``ScaleKernel(MaternKernel(nu=2.5))`` with lengthscale 1 (= **10 cells**), the untouched outputscale
``softplus(0) = ln 2`` and likelihood noise 1e-3; conditioning points are ``rand(·)·10``, uniform on
``[0, 10]²`` in kernel coordinates (mostly off the 30×30 grid, which spans ``[1, 3.9]²``).

Released instances (``instance = k``, k = 0..9): the reference generated them with unseeded torch and Python
set order, so they cannot be regenerated; we ship the GP coverage weights and Steiner item cells converted
from the released pickles, and for the GP-entropy worlds 5 conditioning points per instance fitted to the
released covariance (max |ΔK| ≤ 1.3e-5; the covariances themselves are 3.2 MB each). ``seed``-generated
instances follow the reference generators in the same units.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np

from purejaxpo.envs import set_functions as sm

STEP_SIZE = 0.1  # kernel units per cell [C]
GRID_START = 1.0  # kernel coordinate of cell (0, 0) [C]
LENGTHSCALE = 1.0  # Matérn-5/2 lengthscale in kernel units = 10 cells [C]
OUTPUTSCALE = math.log(2.0)  # gpytorch ScaleKernel's default outputscale softplus(0) [C]
CONDITIONING_NOISE = 1e-3  # SingleTaskGP likelihood noise (Fx_noise) [C]
POINT_RANGE = 10.0  # conditioning points uniform on [0, POINT_RANGE]² [C]
NUM_INSTANCES = 10  # released instances per world (env_0 … env_9) [C]
STEINER_COUNTS = (18, 14, 13, 16, 18, 14)  # Gmax [C]
STEINER_DEMANDS = (3, 2, 3, 4, 6, 3)  # Dmin [C]
_DATA = Path(__file__).resolve().parent / "data" / "subpo"
_SHAPES = {"gp_weights": (30, 30), "entropy_points": (30, 30), "steiner_items": (7, 15)}


def kernel_coords(nrows: int, ncols: int, step_size: float = STEP_SIZE, start: float = GRID_START) -> np.ndarray:
    """``[N, 2]`` kernel coordinates ``(row, col)·step_size + start`` of cells ``n = row·ncols + col`` [C]."""
    rows, cols = np.divmod(np.arange(nrows * ncols), ncols)
    return np.stack([rows, cols], axis=1).astype(np.float64) * step_size + start


@functools.lru_cache(maxsize=None)
def _load(name: str) -> dict:
    return json.loads((_DATA / f"{name}.json").read_text())


def _check_instance(name: str, instance: int, nrows: int, ncols: int) -> None:
    if not isinstance(instance, int) or not 0 <= instance < NUM_INSTANCES:
        raise ValueError(f"instance must be an integer in 0..{NUM_INSTANCES - 1} (the released env_k), got {instance!r}")
    if (nrows, ncols) != _SHAPES[name]:
        raise ValueError(f"the released {name} instances are {_SHAPES[name][0]}x{_SHAPES[name][1]}, got {nrows}x{ncols}")


def released_gp_weights(instance: int, nrows: int = 30, ncols: int = 30) -> np.ndarray:
    """Coverage weights ``[900]`` of the released GP world ``env_<instance>`` (all positive, 0.33 … 5.19)."""
    _check_instance("gp_weights", instance, nrows, ncols)
    return np.asarray(_load("gp_weights")["weights"][instance], np.float64)


def released_steiner_groups(instance: int, nrows: int = 7, ncols: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """``(groups [6, 105] bool, demands [6])`` of the released Steiner world ``env_<instance>`` (disjoint cells)."""
    _check_instance("steiner_items", instance, nrows, ncols)
    data = _load("steiner_items")
    groups = np.zeros((len(data["names"]), nrows * ncols), bool)
    for k, cells in enumerate(data["items"][instance]):
        groups[k, cells] = True
    return groups, np.asarray(data["demands"], np.float64)


def released_entropy_points(instance: int, nrows: int = 30, ncols: int = 30) -> np.ndarray:
    """The 5 conditioning points ``[5, 2]`` (kernel coordinates) fitted to the released entropy ``env_<instance>``."""
    _check_instance("entropy_points", instance, nrows, ncols)
    return np.asarray(_load("entropy_points")["points"][instance], np.float64)


def random_points(seed: int, num: int) -> np.ndarray:
    """``num`` conditioning points uniform on ``[0, 10]²`` (``rand(2·num)·10`` of the reference) ``[num, 2]``."""
    return np.random.default_rng(seed).uniform(0.0, POINT_RANGE, size=(num, 2))


def posterior_covariance(nrows: int, ncols: int, points: np.ndarray, lengthscale: float = LENGTHSCALE,
                         outputscale: float = OUTPUTSCALE, noise: float = CONDITIONING_NOISE,
                         step_size: float = STEP_SIZE) -> np.ndarray:
    """The GP posterior covariance ``[N, N]`` over the grid given noisy zero observations at ``points [P, 2]``
    (``generate_multi_distribution`` [C]; the latent covariance, without observation noise)."""
    coords = kernel_coords(nrows, ncols, step_size)
    return sm.gp_posterior_covariance(coords, points, lengthscale, noise, outputscale)


def generate_gp_weights(nrows: int, ncols: int, seed: int, lengthscale: float = LENGTHSCALE,
                        outputscale: float = OUTPUTSCALE, step_size: float = STEP_SIZE) -> np.ndarray:
    """A new GP coverage-weight map ``[N]`` as ``__true_density_sampling`` draws one [C]: a posterior sample given
    one noisy zero observation at a point uniform on ``[0, 10]²``, plus 3. When the sample dips to −3 or below the
    reference adds its (negative) minimum, a sign slip that never fired on the released files; we shift to a
    minimum of 0 instead, which keeps the weights non-negative (coverage monotone) [P]."""
    rng = np.random.default_rng(seed)
    point = rng.uniform(0.0, POINT_RANGE, size=(1, 2))
    cov = posterior_covariance(nrows, ncols, point, lengthscale, outputscale, CONDITIONING_NOISE, step_size)
    eigval, eigvec = np.linalg.eigh(cov)
    sample = eigvec @ (np.sqrt(np.clip(eigval, 0.0, None)) * rng.standard_normal(len(cov)))
    return sample + 3.0 if sample.min() > -3.0 else sample - sample.min()


def disjoint_item_groups(num_cells: int, counts: tuple[int, ...], seed: int) -> np.ndarray:
    """``[K, N]`` bool item cells: one random permutation of the cells sliced per item type, so the types are
    disjoint (``generate_Gi_Di`` [C]). Raises ``ValueError`` when the counts exceed the grid."""
    if sum(counts) > num_cells:
        raise ValueError(f"the item counts {counts} need {sum(counts)} distinct cells; the grid has {num_cells}")
    perm = np.random.default_rng(seed).permutation(num_cells)
    groups = np.zeros((len(counts), num_cells), bool)
    start = 0
    for k, count in enumerate(counts):
        groups[k, perm[start : start + count]] = True
        start += count
    return groups


__all__ = [
    "CONDITIONING_NOISE", "GRID_START", "LENGTHSCALE", "NUM_INSTANCES", "OUTPUTSCALE", "POINT_RANGE", "STEINER_COUNTS",
    "STEINER_DEMANDS", "STEP_SIZE", "disjoint_item_groups", "generate_gp_weights", "kernel_coords", "posterior_covariance",
    "random_points", "released_entropy_points", "released_gp_weights", "released_steiner_groups",
]
