"""Golden-metrics cases: every registered algorithm (and every PPO objective / advantage) on its home env, a
few updates, 2 seeds, fixed keys. ``record.py`` writes ``metrics.json``; ``tests/test_golden.py`` checks that
the current code reproduces it. Re-record only for a deliberate change of numbers, and say which in the commit.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

PPO_TINY = dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 3, update_epochs=2, num_minibatches=2, hidden_sizes=(16, 16))
PDPPO_TINY = dict(num_envs=2, num_steps=10, total_timesteps=60, update_epochs=2, num_minibatches=2, hidden_sizes=(16,))
PF_TINY = dict(num_envs=4, num_steps=8, total_timesteps=96, update_epochs=2, num_minibatches=2, hidden_sizes=(16, 16),
               critic_hidden_sizes=(16,), emb_dim=16, num_flow_steps=3)
HYPER_TINY = dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 3, update_epochs=2, num_minibatches=2, encoder="mlp",
                  hidden_sizes=(16, 16), embedding_dim=8)
MDPO_TINY = dict(num_envs=4, num_steps=32, total_timesteps=4 * 32 * 3, sgd_steps=3, num_minibatches=2, vf_epochs=2, vf_minibatches=2)
OFF_TINY = dict(steps_per_update=50, total_timesteps=150, learning_starts=50, train_batch_size=32, hidden_sizes=(16, 16))
SUBPO_TINY = dict(num_envs=4, num_steps=5, total_timesteps=4 * 5 * 3, hidden_sizes=(16,))
COVERAGE = ("Coverage-v0", dict(nrows=4, ncols=5, horizon=6, start_cell=6, weights="bimodal"))
COVERAGE_NM = ("Coverage-v0", dict(nrows=4, ncols=5, horizon=6, start_cell=6, weights="bimodal"))

# case id -> (algorithm, (env name, env kwargs), config kwargs)
CASES: dict[str, tuple[str, tuple[str, dict[str, Any]], dict[str, Any]]] = {
    "ppo-clip": ("ppo", ("CartPole-v1", {}), PPO_TINY),
    "ppo-dual_clip": ("ppo", ("CartPole-v1", {}), {**PPO_TINY, "dual_clip": True}),
    "ppo-kl_penalty": ("ppo", ("CartPole-v1", {}), {**PPO_TINY, "objective": "kl_penalty"}),
    "ppo-spo": ("ppo", ("CartPole-v1", {}), {**PPO_TINY, "objective": "spo"}),
    "ppo-ewma": ("ppo", ("CartPole-v1", {}), {**PPO_TINY, "objective": "ewma"}),
    "ppo-dpo": ("ppo", ("CartPole-v1", {}), {**PPO_TINY, "objective": "dpo"}),
    "ppo-r2vpo": ("ppo", ("CartPole-v1", {}), {**PPO_TINY, "objective": "r2vpo"}),
    "ppo-egae": ("ppo", ("CartPole-v1", {}), {**PPO_TINY, "advantage": "egae"}),
    "ppo-loo": ("ppo", ("CartPole-v1", {}), {**PPO_TINY, "advantage": "loo"}),
    "ppo-polychromic": ("ppo", ("CartPole-v1", {}), {**PPO_TINY, "advantage": "polychromic"}),
    "ppo-pendulum-normalized": ("ppo", ("Pendulum-v1", {}), {**PPO_TINY, "normalize_obs": True, "normalize_rewards": True,
                                                              "action_bounds": "tanh", "init_log_std": -0.5}),
    "ppo-pendulum-kl_penalty": ("ppo", ("Pendulum-v1", {}), {**PPO_TINY, "objective": "kl_penalty"}),
    "ppo-minatar-cnn": ("ppo", ("Breakout-MinAtar", {}), {**PPO_TINY, "torso": "cnn"}),
    "pdppo-dual": ("pdppo", ("LotSizing-v0", {}), PDPPO_TINY),
    "pdppo-gae-buffer": ("pdppo", ("LotSizing-v0", {}), {**PDPPO_TINY, "target_mode": "gae", "buffer_rollouts": 2,
                                                         "normalize_obs": True}),
    "pdppo-one_critic": ("pdppo", ("LotSizing-v0", {}), {**PDPPO_TINY, "critic_mode": "one_critic", "target_mode": "gae"}),
    "pdppo-min_value": ("pdppo", ("LotSizing-v0", {}), {**PDPPO_TINY, "advantage_combiner": "min_value"}),
    "pdppo-lake": ("pdppo", ("FrozenLakeStochastic-v0", {}), {**PDPPO_TINY, "target_mode": "gae"}),
    "policyflow": ("policyflow", ("Pendulum-v1", {}), PF_TINY),
    "policyflow-gaussian": ("policyflow", ("Pendulum-v1", {}), {**PF_TINY, "degenerate_to_gaussian": True,
                                                                 "normalize_obs": True, "normalize_rewards": True}),
    "fpo": ("fpo", ("Pendulum-v1", {}), dict(num_envs=4, num_steps=8, total_timesteps=96, update_epochs=2, num_minibatches=2,
                                             hidden_sizes=(16, 16), critic_hidden_sizes=(16,), num_flow_steps=3, num_samples=4)),
    "gaussian_ppo": ("gaussian_ppo", ("MultiGoal-v0", {}), {**PPO_TINY, "update_epochs": 3, "action_bounds": "none"}),
    "hyperpp": ("hyperpp", ("CartPole-v1", {}), HYPER_TINY),
    "hyper_srym": ("hyper_srym", ("CartPole-v1", {}), HYPER_TINY),
    "ppo_impala": ("ppo_impala", ("CartPole-v1", {}), HYPER_TINY),
    "mdpo-cartpole": ("mdpo", ("CartPole-v1", {}), MDPO_TINY),
    "mdpo-pendulum": ("mdpo", ("Pendulum-v1", {}), {**MDPO_TINY, "anneal_horizon": 2}),
    "mdpo_off": ("mdpo_off", ("Pendulum-v1", {}), {**OFF_TINY, "sgd_steps": 7}),
    "sac": ("sac", ("Pendulum-v1", {}), OFF_TINY),
    "subpo-M-ac": ("subpo", COVERAGE, {**SUBPO_TINY, "agent": "M"}),
    "subpo-NM-ac": ("subpo", COVERAGE_NM, {**SUBPO_TINY, "agent": "NM"}),
    "subpo-SRL-ac": ("subpo", COVERAGE, {**SUBPO_TINY, "agent": "SRL"}),
    "subpo-M-greedy": ("subpo", COVERAGE, {**SUBPO_TINY, "agent": "M", "estimator": "greedy_prefix", "decay_entropy": True}),
    "subpo-SRL-greedy": ("subpo", COVERAGE, {**SUBPO_TINY, "agent": "SRL", "estimator": "greedy_prefix"}),
}

SEEDS = 2


def run_case(case_id: str) -> dict[str, np.ndarray]:
    """Per-update metrics ``[SEEDS, num_updates]`` of one case (keys ``split(key(0), 2)``, default hparams)."""
    from purejaxpo import make_env
    from purejaxpo.algorithms.registry import get_algorithm

    algo_name, (env_name, env_kwargs), config_kwargs = CASES[case_id]
    algorithm = get_algorithm(algo_name)
    env, env_params = make_env(env_name, **env_kwargs)
    trainer = algorithm.make_train(algorithm.config_cls(**config_kwargs), env, env_params)
    keys = jax.random.split(jax.random.key(0), SEEDS)
    _, metrics = jax.jit(jax.vmap(trainer.train, in_axes=(0, None)))(keys, algorithm.hparams_cls())
    return {name: np.asarray(value, np.float64) for name, value in jax.device_get(metrics).items()}
