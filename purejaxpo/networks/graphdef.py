"""The structure of a network without building its weights."""

from __future__ import annotations

from typing import Any, Callable

import jax
from flax import nnx


def graphdef_of(build: Callable[[jax.Array], Any]) -> Any:
    """``nnx.GraphDef`` of ``build(key)`` (a module, or a dict of modules), traced abstractly with
    ``nnx.eval_shape``: no initializer runs and nothing compiles (building CartPole's actor-critic eagerly took
    ≈ 1 s per call, each initializer a small XLA compile). Equal to the graphdef of an eagerly built module."""
    return nnx.split(nnx.eval_shape(lambda: build(jax.random.key(0))))[0]


def merger_of(build: Callable[[jax.Array], Any]) -> Callable[[Any], Any]:
    """``merge(params) -> module``: the module ``build`` makes, with ``params`` (``nnx.merge`` over
    :func:`graphdef_of`)."""
    graphdef = graphdef_of(build)
    return lambda params: nnx.merge(graphdef, params)
