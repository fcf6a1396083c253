"""Algorithms by name, for the runner and the CLI: each entry names its Config, HParams and make_train."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable

from purejaxpo.algorithms import fpo
from purejaxpo.algorithms import gaussian_ppo
from purejaxpo.algorithms import hyperpp
from purejaxpo.algorithms import mdpo
from purejaxpo.algorithms import mdpo_off
from purejaxpo.algorithms import pdppo
from purejaxpo.algorithms import policyflow
from purejaxpo.algorithms import ppo
from purejaxpo.algorithms import subpo


@dataclass(frozen=True)
class Algorithm:
    name: str
    config_cls: type
    hparams_cls: type
    make_train: Callable[..., Any]
    action_kinds: tuple[str, ...] = ("discrete", "multi_discrete", "continuous")
    description: str = ""


ALGORITHMS: dict[str, Algorithm] = {
    "hyperpp": Algorithm("hyperpp", hyperpp.HyperPPConfig, hyperpp.HyperPPHParams, hyperpp.make_train, action_kinds=("discrete",), description="Hyper++: hyperboloid PPO with RMSNorm + learned scaling + HL-Gauss critic (Klein et al. 2025)"),
    "hyper_srym": Algorithm("hyper_srym", hyperpp.HyperSRYMConfig, hyperpp.HyperPPHParams, hyperpp.make_train, action_kinds=("discrete",), description="Hyper+S-RYM: Poincare PPO with spectral norm and 1/sqrt(d) scaling (Cetin et al. 2023)"),
    "ppo_impala": Algorithm("ppo_impala", hyperpp.EuclideanPPOConfig, hyperpp.HyperPPHParams, hyperpp.make_train, action_kinds=("discrete",), description="Euclidean PPO with the Hyper++ Impala encoder (baseline of Klein et al. 2025)"),
    "ppo": Algorithm("ppo", ppo.PPOConfig, ppo.PPOHParams, ppo.make_train, description="PPO-clip (Schulman et al. 2017)"),
    "pdppo": Algorithm("pdppo", pdppo.PDPPOConfig, pdppo.PDPPOHParams, pdppo.make_train, action_kinds=("discrete", "multi_discrete"), description="PDPPO: PPO with pre-/post-decision dual critics (Felizardo et al. 2025); needs an env with post_decision"),
    "mdpo": Algorithm("mdpo", mdpo.MDPOConfig, mdpo.MDPOHParams, mdpo.make_train, description="On-policy MDPO: mirror-descent policy optimization (Tomar et al. 2022)"),
    "mdpo_off": Algorithm("mdpo_off", mdpo_off.MDPOOffConfig, mdpo_off.OffPolicyHParams, mdpo_off.make_train, action_kinds=("continuous",), description="Off-policy MDPO: SAC-style with a KL to a lagged policy (Tomar et al. 2022)"),
    "sac": Algorithm("sac", mdpo_off.SACConfig, mdpo_off.OffPolicyHParams, mdpo_off.make_train, action_kinds=("continuous",), description="SAC v1, fixed temperature (Haarnoja et al. 2018); the MDPO-off baseline"),
    "policyflow": Algorithm("policyflow", policyflow.PolicyFlowConfig, policyflow.PolicyFlowHParams, policyflow.make_train, action_kinds=("continuous",), description="PolicyFlow: CNF policy with velocity-variation ratio + Brownian regularizer (Yang et al. 2026)"),
    "fpo": Algorithm("fpo", fpo.FPOConfig, fpo.FPOHParams, fpo.make_train, action_kinds=("continuous",), description="FPO: flow policy optimization, PPO on a CFM-loss ratio (McAllister et al. 2025); PolicyFlow's flow baseline"),
    "gaussian_ppo": Algorithm("gaussian_ppo", gaussian_ppo.GaussianPPOConfig, gaussian_ppo.GaussianPPOHParams, gaussian_ppo.make_train, action_kinds=("continuous",), description="Gaussian PPO as PolicyFlow's repository sets up its baseline: Mish 256-128-64, AdamW, KL-adaptive lr"),
    "subpo": Algorithm("subpo", subpo.SubPOConfig, subpo.SubPOHParams, subpo.make_train, description="SubPO: policy gradient for submodular rewards (Prajapat et al. 2024)"),
}


def check_action_kind(algorithm: Algorithm, env: Any, env_params: Any) -> None:
    """``ValueError`` (before anything compiles) when ``algorithm`` cannot act in ``env``'s action space."""
    from purejaxpo.spaces import action_kind

    kind = action_kind(env.action_space(env_params))
    if kind not in algorithm.action_kinds:
        raise ValueError(
            f"{algorithm.name} supports {', '.join(algorithm.action_kinds)} actions, but this env's action space "
            f"is {kind}"
        )


def get_algorithm(name: str) -> Algorithm:
    """The registered algorithm ``name``; ``ValueError`` listing close matches otherwise."""
    key = name.lower()
    if key not in ALGORITHMS:
        close = difflib.get_close_matches(key, list(ALGORITHMS), n=3, cutoff=0.3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown algorithm {name!r}.{hint} Known: {', '.join(sorted(ALGORITHMS))}")
    return ALGORITHMS[key]
