"""Flax NNX modules used functionally: ``graphdef, params = nnx.split(module)`` once, then
``nnx.merge(graphdef, params)(obs)`` inside jitted code."""

from purejaxpo.networks.actor_critic import ActorCritic, make_actor_critic
from purejaxpo.networks.distributions import PolicyDistribution
from purejaxpo.networks.initializers import orthogonal

__all__ = ["ActorCritic", "PolicyDistribution", "make_actor_critic", "orthogonal"]
