"""Mapping a per-seed function over many seeds: one wide ``vmap``, or ``vmap`` in fixed-size batches.

Runs (hyperparameter settings × seeds) are independent, so ``vmap`` over all of them is the obvious map. On a CPU, though, a very wide
``vmap`` makes every intermediate (activations of ``S × minibatch`` rows, rollout buffers) outgrow the
caches, and aggregate throughput falls as seeds grow (PPO on CartPole, 2 cores: 189k env-steps/s at 64
seeds, 155k at 1024, 139k at 4096; batched: 222k at 1024, 215k at 4096). Mapping the same function over
batches of ``seeds_per_batch`` runs with ``jax.lax.map(..., batch_size=k)`` — ``vmap`` inside a batch, a loop over batches — keeps the working set
of one batch and gives the same per-run results (up to float summation order). On a GPU the wide ``vmap`` is what fills the device, so
the default batches on CPU only (:func:`resolve_seeds_per_batch`).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

# PPO/CartPole, 1024 seeds on the 2-core dev CPU: batches of 32 and 64 tie (≈ 205k env-steps/s), 128 gives
# ≈ 187k, 256 less, one wide vmap ≈ 155k (benchmarks/results/seed_scaling.json).
CPU_SEEDS_PER_BATCH = 64


def resolve_seeds_per_batch(seeds_per_batch: int | str | None, num_runs: int, backend: str | None = None) -> int | None:
    """``"auto"`` → :data:`CPU_SEEDS_PER_BATCH` on a CPU backend when ``num_runs`` (settings × seeds) exceeds
    it, else ``None`` (one wide ``vmap``); an ``int`` is checked and returned (``None`` when it covers every run)."""
    if seeds_per_batch is None:
        return None
    if isinstance(seeds_per_batch, str):
        if seeds_per_batch != "auto":
            raise ValueError(f"seeds_per_batch must be a positive int, None or 'auto', got {seeds_per_batch!r}")
        backend = backend or jax.default_backend()
        return CPU_SEEDS_PER_BATCH if backend == "cpu" and num_runs > CPU_SEEDS_PER_BATCH else None
    if isinstance(seeds_per_batch, bool) or not isinstance(seeds_per_batch, int) or seeds_per_batch <= 0:
        raise ValueError(f"seeds_per_batch must be a positive int, None or 'auto', got {seeds_per_batch!r}")
    return None if seeds_per_batch >= num_runs else seeds_per_batch


def map_over_runs(fn: Callable[[Any, Any], Any], runs_per_batch: int | None) -> Callable[[Any, Any], Any]:
    """``fn(per_run, hparams) -> out`` ↦ ``f(per_run [G, S, ...], hparams [G, ...]) -> out [G, S, ...]``.

    ``G`` hyperparameter settings × ``S`` seeds. ``runs_per_batch=None`` is a ``vmap`` over settings of a
    ``vmap`` over seeds. An int ``k`` flattens the ``G × S`` runs, vmaps ``k`` runs at a time with each run's
    own hyperparameters and loops over the ``ceil(G·S / k)`` batches (``lax.map`` handles a remainder).
    """
    if runs_per_batch is None:
        over_seeds = jax.vmap(fn, in_axes=(0, None))
        over_settings = jax.vmap(over_seeds, in_axes=(0, 0))

        def wide(per_run: Any, hparams: Any) -> Any:
            if jax.tree.leaves(per_run)[0].shape[0] > 1:
                return over_settings(per_run, hparams)
            # one setting (a plain run): one vmap level instead of two; batching a big jaxpr twice was a third
            # of the time to trace a chunk, which a compile-cache hit still pays (same program per seed)
            first = lambda tree: jax.tree.map(lambda x: x[0], tree)
            return jax.tree.map(lambda x: x[None], over_seeds(first(per_run), first(hparams)))

        return wide

    def batched(per_run: Any, hparams: Any) -> Any:
        settings, seeds = jax.tree.leaves(per_run)[0].shape[:2]
        flat = jax.tree.map(lambda x: x.reshape((settings * seeds,) + x.shape[2:]), per_run)
        hp_flat = jax.tree.map(lambda x: jnp.repeat(x, seeds, axis=0), hparams)
        out = jax.lax.map(lambda run: fn(*run), (flat, hp_flat), batch_size=runs_per_batch)
        return jax.tree.map(lambda x: x.reshape((settings, seeds) + x.shape[1:]), out)

    return batched
