"""The PDPPO reference code's two methods as named configurations of :mod:`purejaxpo.algorithms.pdppo`.

Felizardo et al. 2025 (arXiv:2504.05150); the lot-sizing code ``code/Lot-sizing/agents/PDPPO.py`` @bf3f368 and
``agents/PPO.py`` @ff58990 of the authors' repository [C]:

=========================  =====================================  =====================================
item                       ``"pdppo"``                            ``"ppo"``
=========================  =====================================  =====================================
critics                    ``V_φ(s)`` on ``r − r^x``, ``V_ψ(s^x)``  one ``V_φ(s)`` on the total reward
                           on ``r^x``; ``A = max(A^pre, A^x)``    (``critic_mode="ppo"``), ``A = G − V``
buffer                     last 6 rollouts (growing 1..6)         same
actor optimizer            output layer only                      same
init                       ``"reference"`` (Kaiming ReLU head)    ``"reference_ppo"`` (Kaiming tanh head)
critic loss weight         1 per critic, own Adam                 ``0.7·MSE`` = ``vf_coef = 1.4`` here
=========================  =====================================  =====================================

Shared by both (and by :class:`~purejaxpo.algorithms.pdppo.PDPPOConfig`'s defaults): 4 × 100 env steps per
update, 40 full-batch epochs, per-machine ratio, entropy 0.001 × mean over machines, Monte-Carlo targets
without normalization, γ 0.9, ε 0.2, Adam lr 5.5e-4 (actor) / 1e-3 (critics), no gradient clipping, 128-128
networks (ReLU actor, tanh critics), raw inventory observations.

Our single-critic baseline with *our* defaults is ``PDPPOConfig(critic_mode="ppo")``: everything else the same
as ``PDPPOConfig()``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from purejaxpo.algorithms.pdppo import PDPPOConfig, PDPPOHParams

REFERENCE_METHODS = ("pdppo", "ppo")
_FAITHFUL = dict(buffer_rollouts=6, actor_trainable="head")


def reference_settings(method: str = "pdppo", **config_overrides: Any) -> tuple[PDPPOConfig, PDPPOHParams]:
    """``(config, hparams)`` of the reference's ``method`` (``"pdppo"`` or ``"ppo"``, table above);
    ``config_overrides`` replace config fields (e.g. ``total_timesteps``). ``ValueError`` for an unknown method."""
    if method == "pdppo":
        config, hparams = PDPPOConfig(**_FAITHFUL, init="reference"), PDPPOHParams()
    elif method == "ppo":
        config, hparams = PDPPOConfig(**_FAITHFUL, init="reference_ppo", critic_mode="ppo"), PDPPOHParams(vf_coef=1.4)
    else:
        raise ValueError(f"unknown reference method {method!r}; expected one of {REFERENCE_METHODS}")
    return dataclasses.replace(config, **config_overrides), hparams


def default_settings(method: str = "pdppo", **config_overrides: Any) -> tuple[PDPPOConfig, PDPPOHParams]:
    """Our defaults: ``PDPPOConfig()`` for ``"pdppo"``, the same with ``critic_mode="ppo"`` for ``"ppo"``."""
    if method not in REFERENCE_METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {REFERENCE_METHODS}")
    config = PDPPOConfig(critic_mode="ppo") if method == "ppo" else PDPPOConfig()
    return dataclasses.replace(config, **config_overrides), PDPPOHParams()


__all__ = ["REFERENCE_METHODS", "default_settings", "reference_settings"]
