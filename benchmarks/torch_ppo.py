"""PyTorch PPO baseline on CartPole-v1, for benchmarking against purejaxpo's JAX PPO.

This file is deliberately standalone: the core package never imports it, and it
needs the optional ``bench`` extra (torch + gymnasium). It is written the way a
competent PyTorch user would write a fast single-file PPO (preallocated rollout
buffers, one ``torch.no_grad()`` block around the whole rollout, no
``torch.distributions`` overhead per step), and it runs the same algorithm with
the same hyperparameters, network and step budget as our JAX PPO:

* CartPole-v1, ``gymnasium.vector.SyncVectorEnv`` with 4 envs x 128 steps;
* separate actor and critic MLPs (64-64, tanh), orthogonal init with gain
  sqrt(2) for hidden layers, 0.01 for the actor head and 1.0 for the critic
  head, zero biases;
* Adam (lr 2.5e-4, eps 1e-5), lr linearly annealed to 0 over the updates
  (constant within an update, as in PureJaxRL), global-norm grad clip 0.5
  over the actor and critic parameters together (fused Adam);
* gamma 0.99, GAE lambda 0.95, 4 epochs x 4 minibatches over a fresh
  permutation of the 512-transition batch each epoch, per-minibatch advantage
  normalisation (population std + 1e-8), PPO clip 0.2, value loss clipped
  with the same 0.2 (PureJaxRL's ``0.5 * max(sq, sq_clipped)``), entropy
  coef 0.01, value coef 0.5;
* ``num_updates = total_timesteps // (num_envs * num_steps)``.

Autoreset / truncation: the vector env runs in gymnasium's SAME_STEP autoreset
mode (gymnasium >= 1.1), which matches gymnax's semantics: every ``step`` is a
real transition; when a sub-env finishes, the returned observation is already
the reset observation and the true last observation is in
``infos["final_obs"]``. Terminations and truncations are kept apart: a
terminated step gets no bootstrap, while for a truncated (time-limit) step we
add ``gamma * V(final_obs)`` to its reward. The GAE recursion is then cut at
every episode boundary (terminated or truncated), which makes the truncated
step's TD error exactly ``r + gamma * V(final_obs) - V(s)``.

``style="cleanrl"`` runs the same algorithm the way CleanRL's ``ppo.py`` writes it — torch's default
thread count, ``torch.distributions.Categorical`` for sampling, log-probabilities and entropy, and the
default (non-fused) Adam — which is the kind of baseline the ≈ 5k env-steps/s reference figure for a
2-core machine describes. ``style="fast"`` (the default) is the tuned version above. ``style="compiled"`` is the
tuned version with ``torch.compile`` on the acting step and on the minibatch update (loss, backward, clipping,
Adam), as LeanRL does for CleanRL; the first update, which compiles, is timed apart (``compile_s``) and excluded
from ``run_s``. CUDA graphs need a GPU and are not used here.

Run: ``python benchmarks/torch_ppo.py --seed 0 --total-timesteps 500000 [--style cleanrl]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import time

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical


def _layer(n_in: int, n_out: int, gain: float) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def _mlp(n_in: int, n_out: int, hidden: int, head_gain: float) -> nn.Sequential:
    g = math.sqrt(2.0)
    return nn.Sequential(
        _layer(n_in, hidden, g),
        nn.Tanh(),
        _layer(hidden, hidden, g),
        nn.Tanh(),
        _layer(hidden, n_out, head_gain),
    )


def _make_envs(env_id: str, num_envs: int) -> gym.vector.SyncVectorEnv:
    return gym.vector.SyncVectorEnv(
        [lambda: gym.make(env_id) for _ in range(num_envs)],
        # Observations are copied into our own buffer before the next step, so
        # the vector env need not deepcopy them on every step.
        copy=False,
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )


@contextlib.contextmanager
def _num_threads(n: int | None):
    prev = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def run_torch_ppo(
    seed: int = 0,
    total_timesteps: int = 500_000,
    num_envs: int = 4,
    num_steps: int = 128,
    *,
    env_id: str = "CartPole-v1",
    lr: float = 2.5e-4,
    adam_eps: float = 1e-5,
    anneal_lr: bool = True,
    gamma: float = 0.99,
    gae_lambda: float = 0.95,
    update_epochs: int = 4,
    num_minibatches: int = 4,
    clip_eps: float = 0.2,
    ent_coef: float = 0.01,
    vf_coef: float = 0.5,
    max_grad_norm: float = 0.5,
    hidden: int = 64,
    final_frac: float = 0.05,
    torch_threads: int | None = 1,
    style: str = "fast",
) -> dict:
    """Train PPO with PyTorch and return timing and return statistics.

    ``returns_per_update[u]`` is the mean return of the episodes that finished
    during update ``u`` (NaN if none did). ``final_return`` is the mean return
    of all episodes that finished in the last ``ceil(final_frac * num_updates)``
    updates. ``run_s`` is the wall time of the training loop alone (env and
    network construction and the first reset are excluded).

    ``torch_threads`` (default 1) sets torch's intra-op thread count for the
    run and restores the caller's setting afterwards; ``None`` or ``0`` leaves
    torch's default (one thread per core). One thread was measured to be as
    fast as two on an idle 2-core machine (these ops are far below torch's
    parallelisation grain) and several times faster when the cores are shared
    with other processes, where OpenMP workers stall on oversubscription.
    """
    if style not in ("fast", "cleanrl", "compiled"):
        raise ValueError(f"style must be 'fast', 'cleanrl' or 'compiled', got {style!r}")
    cleanrl = style == "cleanrl"
    compiled = style == "compiled"
    with _num_threads(None if cleanrl else torch_threads):
        batch_size = num_envs * num_steps
        if batch_size % num_minibatches:
            raise ValueError(
                "num_envs * num_steps must be divisible by num_minibatches"
            )
        minibatch_size = batch_size // num_minibatches
        num_updates = total_timesteps // batch_size
        if num_updates < 1:
            raise ValueError("total_timesteps is smaller than one rollout")

        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)

        envs = _make_envs(env_id, num_envs)
        obs_dim = int(np.prod(envs.single_observation_space.shape))
        n_actions = int(envs.single_action_space.n)

        actor = _mlp(obs_dim, n_actions, hidden, 0.01)
        critic = _mlp(obs_dim, 1, hidden, 1.0)
        params = [*actor.parameters(), *critic.parameters()]
        # fused=True: same Adam update, one kernel for all params (~30% faster per
        # gradient step than the default per-tensor loop on CPU).
        # compiled: the learning rate is a tensor updated in place, so annealing it does not recompile the step
        optimizer = torch.optim.Adam(params, lr=torch.tensor(lr) if compiled else lr, eps=adam_eps, fused=not cleanrl)

        # Rollout storage. The numpy arrays and the torch tensors share memory.
        obs_np = np.zeros((num_steps, num_envs, obs_dim), dtype=np.float32)
        rew_np = np.zeros((num_steps, num_envs), dtype=np.float32)
        done_np = np.zeros((num_steps, num_envs), dtype=np.float32)
        adv_np = np.zeros((num_steps, num_envs), dtype=np.float32)
        obs_buf = torch.from_numpy(obs_np)
        act_buf = torch.zeros((num_steps, num_envs), dtype=torch.long)
        logp_buf = torch.zeros((num_steps, num_envs))
        val_buf = torch.zeros((num_steps, num_envs))
        b_obs = obs_buf.view(batch_size, obs_dim)
        b_act = act_buf.view(batch_size)
        b_logp = logp_buf.view(batch_size)
        b_val = val_buf.view(batch_size)
        b_adv = torch.from_numpy(adv_np).view(batch_size)

        ep_ret = np.zeros(num_envs, dtype=np.float64)
        returns_per_update: list[float] = []
        final_window = max(1, math.ceil(final_frac * num_updates))
        final_episodes: list[float] = []

        def act(x: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            logp_all = torch.log_softmax(actor(x), dim=-1)
            # Gumbel-max sampling: exact, and cheaper than torch.multinomial.
            action = (logp_all - noise).argmax(-1, keepdim=True)
            return action.squeeze(1), logp_all.gather(1, action).squeeze(1), critic(x).squeeze(1)

        def minibatch_update(mb_obs, mb_act, mb_logp, mb_val, mb_ret, mb_adv) -> None:
            logp_all = torch.log_softmax(actor(mb_obs), dim=-1)
            logp = logp_all.gather(1, mb_act.unsqueeze(1)).squeeze(1)
            entropy = -(logp_all.exp() * logp_all).sum(-1).mean()
            value = critic(mb_obs).squeeze(1)
            v_clipped = mb_val + (value - mb_val).clamp(-clip_eps, clip_eps)
            v_loss = 0.5 * torch.maximum((value - mb_ret).square(), (v_clipped - mb_ret).square()).mean()
            adv = (mb_adv - mb_adv.mean()) / (mb_adv.std(correction=0) + 1e-8)
            ratio = (logp - mb_logp).exp()
            pg_loss = -torch.minimum(ratio * adv, ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps) * adv).mean()
            loss = pg_loss + vf_coef * v_loss - ent_coef * entropy
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, max_grad_norm)
            optimizer.step()

        if compiled:
            act, minibatch_update = torch.compile(act), torch.compile(minibatch_update)

        next_obs, _ = envs.reset(seed=seed)

        compile_s = 0.0
        t0 = time.perf_counter()
        for update in range(num_updates):
            if compiled and update == 1:  # the first update compiled both functions: time it apart
                compile_s = time.perf_counter() - t0
                t0 = time.perf_counter()
            if anneal_lr and compiled:
                optimizer.param_groups[0]["lr"].fill_(lr * (1.0 - update / num_updates))
            elif anneal_lr:
                optimizer.param_groups[0]["lr"] = lr * (1.0 - update / num_updates)

            finished: list[float] = []
            with torch.no_grad():
                for t in range(num_steps):
                    obs_np[t] = next_obs
                    x = obs_buf[t]
                    if cleanrl:
                        dist = Categorical(logits=actor(x))
                        action = dist.sample()
                        logp_buf[t] = dist.log_prob(action)
                        act_buf[t] = action
                        val_buf[t] = critic(x).squeeze(1)
                    else:
                        noise = torch.empty((num_envs, n_actions)).exponential_().log_()
                        act_buf[t], logp_buf[t], val_buf[t] = act(x, noise)

                    next_obs, reward, term, trunc, info = envs.step(act_buf[t].numpy())
                    rew_np[t] = reward
                    done = term | trunc
                    done_np[t] = done
                    ep_ret += reward

                    if done.any():
                        finished.extend(ep_ret[done].tolist())
                        ep_ret[done] = 0.0
                        boot = trunc & ~term
                        if boot.any():
                            # Time-limit truncation: bootstrap from the true last obs.
                            idx = np.flatnonzero(boot)
                            final = np.stack(info["final_obs"][idx]).astype(np.float32)
                            v = critic(torch.from_numpy(final)).squeeze(1).numpy()
                            rew_np[t, idx] += gamma * v

                last_val = critic(torch.from_numpy(next_obs)).squeeze(1).numpy()

            # GAE over the rollout (numpy: 128 tiny steps are cheaper than in torch).
            val_np = val_buf.numpy()
            not_done = 1.0 - done_np
            gae = np.zeros(num_envs, dtype=np.float32)
            next_val = last_val
            for t in reversed(range(num_steps)):
                delta = rew_np[t] + gamma * next_val * not_done[t] - val_np[t]
                gae = delta + gamma * gae_lambda * not_done[t] * gae
                adv_np[t] = gae
                next_val = val_np[t]
            b_ret = b_adv + b_val

            for _ in range(update_epochs):
                perm = torch.randperm(batch_size, generator=gen)
                for start in range(0, batch_size, minibatch_size):
                    mb = perm[start : start + minibatch_size]
                    mb_obs = b_obs[mb]
                    if not cleanrl:
                        minibatch_update(mb_obs, b_act[mb], b_logp[mb], b_val[mb], b_ret[mb], b_adv[mb])
                        continue
                    dist = Categorical(logits=actor(mb_obs))
                    logp = dist.log_prob(b_act[mb])
                    entropy = dist.entropy().mean()
                    value = critic(mb_obs).squeeze(1)

                    mb_val = b_val[mb]
                    mb_ret = b_ret[mb]
                    v_clipped = mb_val + (value - mb_val).clamp(-clip_eps, clip_eps)
                    v_loss = (
                        0.5
                        * torch.maximum(
                            (value - mb_ret).square(), (v_clipped - mb_ret).square()
                        ).mean()
                    )

                    adv = b_adv[mb]
                    adv = (adv - adv.mean()) / (adv.std(correction=0) + 1e-8)
                    ratio = (logp - b_logp[mb]).exp()
                    pg_loss = -torch.minimum(
                        ratio * adv, ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps) * adv
                    ).mean()

                    loss = pg_loss + vf_coef * v_loss - ent_coef * entropy
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    nn.utils.clip_grad_norm_(params, max_grad_norm)
                    optimizer.step()

            returns_per_update.append(
                float(np.mean(finished)) if finished else float("nan")
            )
            if update >= num_updates - final_window:
                final_episodes.extend(finished)
        run_s = time.perf_counter() - t0
        envs.close()

        env_steps = (num_updates - (1 if compiled and num_updates > 1 else 0)) * batch_size
        return {
            "seed": seed,
            "total_timesteps": total_timesteps,
            "env_steps": env_steps,
            "run_s": run_s,
            "compile_s": compile_s,
            "env_steps_per_s": env_steps / run_s,
            "final_return": float(np.mean(final_episodes))
            if final_episodes
            else float("nan"),
            "returns_per_update": returns_per_update,
            "torch_threads": torch.get_num_threads(),
            "torch_version": torch.__version__,
            "style": style,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--total-timesteps", type=int, default=500_000)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1; 0 leaves torch's default)",
    )
    parser.add_argument("--style", choices=("fast", "cleanrl", "compiled"), default="fast")
    args = parser.parse_args()
    out = run_torch_ppo(
        seed=args.seed,
        total_timesteps=args.total_timesteps,
        torch_threads=args.torch_threads,
        style=args.style,
    )
    out.pop("returns_per_update")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
