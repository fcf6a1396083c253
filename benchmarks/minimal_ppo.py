"""A minimal single-file jitted PPO, written PureJaxRL-style (plain jax, no library abstractions), to measure our
library's overhead in the same run (``benchmarks/same_run.py``).

It is the same algorithm as ``purejaxpo.algorithms.ppo`` at PureJaxRL's CartPole settings: 4 envs × 128 steps,
GAE(γ = 0.99, λ = 0.95) with termination and truncation apart (a truncated step bootstraps from the value of its
final observation), 4 epochs × 4 shuffled minibatches, clipped surrogate (ε = 0.2), clipped value loss
(c_V = 0.5), entropy bonus (c_H = 0.01), per-minibatch advantage normalization, global-norm clipping (0.5) then
Adam (eps 1e-5) with the learning rate annealed linearly from 2.5e-4, and separate 64-64 tanh actor and critic
MLPs with orthogonal initialization (√2 torsos, 0.01 policy head, 1.0 value head). Seeds are vmapped; the
initializer runs under ``lax.map`` over seeds (a batched QR can deadlock 2-core CPUs).
"""

from __future__ import annotations

from typing import Any

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax

NUM_ENVS, NUM_STEPS, EPOCHS, MINIBATCHES = 4, 128, 4, 4
GAMMA, LAMBDA, CLIP, VF_COEF, ENT_COEF, MAX_GRAD_NORM, LR = 0.99, 0.95, 0.2, 0.5, 0.01, 0.5, 2.5e-4


def _dense(key: jax.Array, n_in: int, n_out: int, scale: float) -> dict:
    return {"w": jax.nn.initializers.orthogonal(scale)(key, (n_in, n_out)), "b": jnp.zeros(n_out)}


def init_params(key: jax.Array, obs_dim: int, num_actions: int) -> dict:
    k = jax.random.split(key, 6)
    s2 = float(np.sqrt(2.0))
    return {
        "actor": [_dense(k[0], obs_dim, 64, s2), _dense(k[1], 64, 64, s2), _dense(k[2], 64, num_actions, 0.01)],
        "critic": [_dense(k[3], obs_dim, 64, s2), _dense(k[4], 64, 64, s2), _dense(k[5], 64, 1, 1.0)],
    }


def _mlp(layers: list, x: jax.Array) -> jax.Array:
    for layer in layers[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ layers[-1]["w"] + layers[-1]["b"]


def policy_logits(params: dict, obs: jax.Array) -> jax.Array:
    return _mlp(params["actor"], obs)


def value(params: dict, obs: jax.Array) -> jax.Array:
    return _mlp(params["critic"], obs)[..., 0]


def make_train(total_timesteps: int = 500_000, env_name: str = "CartPole-v1") -> Any:
    """``train(key) -> metrics`` (``episode_return`` per update) for one seed; vmap it over keys."""
    env, env_params = gymnax.make(env_name)
    obs_dim = env.observation_space(env_params).shape[0]
    num_actions = env.action_space(env_params).n
    num_updates = total_timesteps // (NUM_ENVS * NUM_STEPS)
    batch = NUM_ENVS * NUM_STEPS
    schedule = lambda count: LR * (1.0 - (count // (EPOCHS * MINIBATCHES)) / num_updates)
    tx = optax.chain(optax.clip_by_global_norm(MAX_GRAD_NORM), optax.adam(schedule, eps=1e-5))
    step_env = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def loss_fn(params, mb):
        obs, action, old_logp, old_v, adv, target = mb
        logits = policy_logits(params, obs)
        logp_all = jax.nn.log_softmax(logits)
        logp = jnp.take_along_axis(logp_all, action[:, None], axis=-1)[:, 0]
        ratio = jnp.exp(logp - old_logp)
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - CLIP, 1 + CLIP) * adv).mean()
        v = value(params, obs)
        v_clipped = old_v + jnp.clip(v - old_v, -CLIP, CLIP)
        v_loss = 0.5 * jnp.maximum((v - target) ** 2, (v_clipped - target) ** 2).mean()
        entropy = -(jnp.exp(logp_all) * logp_all).sum(-1).mean()
        return pg + VF_COEF * v_loss - ENT_COEF * entropy

    def update(carry, _):
        params, opt_state, env_state, obs, ep_ret, key = carry

        def step(c, k):
            env_state, obs, ep_ret = c
            k_act, k_env = jax.random.split(k)
            logits = policy_logits(params, obs)
            action = jax.random.categorical(k_act, logits)
            logp = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], axis=-1)[:, 0]
            v = value(params, obs)
            next_obs, env_state, reward, term, trunc, info = step_env(jax.random.split(k_env, NUM_ENVS), env_state, action, env_params)
            done = jnp.logical_or(term, trunc)
            ep_ret = ep_ret + reward
            finished = (jnp.sum(done * ep_ret), jnp.sum(done))
            transition = (obs, action, logp, v, reward, term, trunc, info["final_observation"])
            return (env_state, next_obs, jnp.where(done, 0.0, ep_ret)), (transition, finished)

        key, k_roll, k_epochs = jax.random.split(key, 3)
        (env_state, obs, ep_ret), (traj, finished) = jax.lax.scan(step, (env_state, obs, ep_ret), jax.random.split(k_roll, NUM_STEPS))
        t_obs, t_act, t_logp, t_v, t_rew, t_term, t_trunc, t_final = traj
        final_v = value(params, t_final)
        last_v = value(params, obs)
        done = jnp.logical_or(t_term, t_trunc)
        next_v = jnp.concatenate([t_v[1:], last_v[None]])
        next_v = jnp.where(done, final_v, next_v)
        delta = t_rew + GAMMA * (1.0 - t_term) * next_v - t_v

        def gae_step(a, x):
            d, dn = x
            a = d + GAMMA * LAMBDA * (1.0 - dn) * a
            return a, a

        _, adv = jax.lax.scan(gae_step, jnp.zeros(NUM_ENVS), (delta, done), reverse=True)
        flat = jax.tree.map(lambda x: x.reshape((batch,) + x.shape[2:]), (t_obs, t_act, t_logp, t_v, adv, adv + t_v))

        def epoch(c, k):
            params, opt_state = c
            perm = jax.random.permutation(k, batch)
            mbs = jax.tree.map(lambda x: x[perm].reshape((MINIBATCHES, -1) + x.shape[1:]), flat)

            def mb_step(c, mb):
                params, opt_state = c
                grads = jax.grad(loss_fn)(params, mb)
                updates, opt_state = tx.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), None

            return jax.lax.scan(mb_step, (params, opt_state), mbs)[0], None

        (params, opt_state), _ = jax.lax.scan(epoch, (params, opt_state), jax.random.split(k_epochs, EPOCHS))
        returns, counts = finished
        mean_return = jnp.where(counts.sum() > 0, returns.sum() / jnp.maximum(counts.sum(), 1), jnp.nan)
        return (params, opt_state, env_state, obs, ep_ret, key), mean_return

    def init(key: jax.Array) -> tuple:
        k_net, k_env, key = jax.random.split(key, 3)
        params = init_params(k_net, obs_dim, num_actions)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_env, NUM_ENVS), env_params)
        return params, tx.init(params), env_state, obs, jnp.zeros(NUM_ENVS), key

    def train(key: jax.Array) -> jax.Array:
        _, returns = jax.lax.scan(update, init(key), None, length=num_updates)
        return returns

    return init, update, train, num_updates


def make_vmapped(total_timesteps: int, num_seeds: int, env_name: str = "CartPole-v1") -> Any:
    """``fn(keys [S]) -> returns [S, num_updates]`` with init under ``lax.map`` (no batched QR) and the updates vmapped."""
    init, update, _, num_updates = make_train(total_timesteps, env_name)

    def run(keys: jax.Array) -> jax.Array:
        carry = jax.lax.map(init, keys)
        _, returns = jax.lax.scan(lambda c, x: jax.vmap(update, in_axes=(0, None))(c, x), carry, None, length=num_updates)
        return returns.T

    return run, num_updates * NUM_ENVS * NUM_STEPS
