"""``purejaxpo render DIR --out policy.gif``: an animation of one episode of a saved policy.

The episode runs inside ``jit`` (:func:`record_episode`: the env states before every step, rewards, the
episode's length); the frames are drawn on the host by the env's own visualizer:

- gymnax classic control (``CartPole-v1``, ``Pendulum-v1``, ``Acrobot-v1``, ``MountainCar*``; gymnasium's
  renderer through pygame) and MinAtar (``*-MinAtar``) through :class:`gymnax.visualize.Visualizer`;
- ours: ``MultiGoal-v0`` through :func:`purejaxpo.envs.multigoal.render` (the path so far, one frame per
  step) and the submodular grid worlds through their ``render`` (visited cells and the path so far);
- brax (``brax/<name>``) through brax's MuJoCo image renderer (needs an OpenGL context: ``MUJOCO_GL=egl`` or
  ``osmesa``) into a GIF, or brax's HTML viewer when ``--out`` ends in ``.html``.

Anything else is a one-line error naming what can be rendered. The GIF is written atomically.
"""

from __future__ import annotations

import argparse
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

GYMNAX_VISUALIZED = (
    "Acrobot-v1", "CartPole-v1", "Pendulum-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Catch-bsuite",
    "Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "Seaquest-MinAtar", "SpaceInvaders-MinAtar",
    "Pong-misc", "PointRobot-misc", "MetaMaze-misc", "FourRooms-misc",
)
OURS = ("MultiGoal-v0", "Coverage-v0", "InformativePath-v0", "FacilityLocation-v0", "SteinerCovering-v0")


class RenderError(ValueError):
    """This env (or this machine) cannot render; the message says what can."""


@dataclass
class Episode:
    """One recorded episode: ``states`` (a pytree with leading axis ``[T]``, the env state before each step),
    ``rewards [T]`` and ``length`` (the steps until the first ``terminated or truncated``, at most ``T``)."""

    states: Any
    rewards: np.ndarray
    length: int

    def state(self, t: int) -> Any:
        return jax.tree.map(lambda x: x[t], self.states)

    @property
    def returns(self) -> np.ndarray:
        """``[length]`` cumulative return after each step."""
        return np.cumsum(self.rewards[: self.length])


def record_episode(env: Any, env_params: Any, act: Callable[[Any, Any], Any], key: jax.Array, max_steps: int) -> Episode:
    """Run ``act(obs, key) -> action`` (one unbatched observation) for ``max_steps`` steps in ``jit`` and keep
    the first episode."""

    def run(key: jax.Array) -> tuple[Any, jax.Array, jax.Array]:
        reset_key, key = jax.random.split(key)
        obs, env_state = env.reset(reset_key, env_params)

        def step(carry: tuple[Any, jax.Array], k: jax.Array) -> tuple[tuple[Any, jax.Array], tuple[Any, jax.Array, jax.Array]]:
            env_state, obs = carry
            act_key, env_key = jax.random.split(k)
            action = act(obs, act_key)
            obs, new_state, reward, terminated, truncated, _ = env.step(env_key, env_state, action, env_params)
            return (new_state, obs), (env_state, jnp.asarray(reward, jnp.float32), jnp.logical_or(terminated, truncated))

        _, (states, rewards, dones) = jax.lax.scan(step, (env_state, obs), jax.random.split(key, max_steps))
        return states, rewards, dones

    states, rewards, dones = jax.device_get(jax.jit(run)(key))
    dones = np.asarray(dones)
    length = int(np.argmax(dones)) + 1 if dones.any() else max_steps
    return Episode(states, np.asarray(rewards), length)


# ---------------------------------------------------------------------------------------------------------------
# frames
# ---------------------------------------------------------------------------------------------------------------


def _png_frame(draw: Callable[[str], Any]) -> np.ndarray:
    """``draw(path)`` writes a PNG; returns it as an ``[H, W, 3]`` uint8 array."""
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "frame.png")
        draw(path)
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))


def multigoal_frames(env: Any, env_params: Any, episode: Episode, title: str) -> list[np.ndarray]:
    """MultiGoal: the path so far (positions ``[t+1, 1, 2]``) drawn by :func:`purejaxpo.envs.multigoal.render`."""
    from purejaxpo.envs.multigoal import render

    xy = np.asarray(episode.states.position)[: episode.length, None, :]
    returns = episode.returns
    return [_png_frame(lambda p, t=t: render(xy[: t + 1], p, params=env_params, title=f"{title}: step {t + 1}, return {returns[t]:.2f}"))
            for t in range(episode.length)]


def grid_world_frames(env: Any, env_params: Any, episode: Episode, title: str) -> list[np.ndarray]:
    """Submodular grid worlds: the cells visited so far (``state.pos``) drawn by the env's ``render``."""
    base = getattr(env, "_env", env)  # VisitedObservation (SubPO agent NM) keeps the world as _env
    cells = np.asarray(episode.states.pos)[: episode.length]
    returns = episode.returns
    return [_png_frame(lambda p, t=t: base.render(env_params, cells[: t + 1], p, title=f"{title}: step {t + 1}, F = {returns[t]:.1f}"))
            for t in range(episode.length)]


def gymnax_gif(env: Any, env_params: Any, episode: Episode, path: Path) -> None:
    """gymnax's own :class:`~gymnax.visualize.Visualizer` (pyplot + PillowWriter) into ``path``."""
    import matplotlib

    from purejaxpo.quiet import quiet_pygame

    matplotlib.use("Agg")
    quiet_pygame()
    try:
        from gymnax.visualize import Visualizer
    except ImportError as err:  # e.g. seaborn (MinAtar) or gymnasium/pygame (classic control) missing
        raise RenderError(f"gymnax's visualizer does not import here ({err})") from None
    states = [episode.state(t) for t in range(episode.length)]
    try:
        Visualizer(env, env_params, states, episode.returns).animate(str(path))
    except ImportError as err:
        raise RenderError(f"gymnax's visualizer for {env.name} needs a package that is missing ({err})") from None


def brax_frames(env: Any, episode: Episode) -> list[np.ndarray]:
    """brax's MuJoCo renderer (:func:`brax.io.image.render_array`) over the episode's pipeline states."""
    from brax.io import image

    import warnings

    pipeline = [episode.state(t).inner.pipeline_state for t in range(episode.length)]
    try:
        with warnings.catch_warnings():  # GLFW warns about the missing display before the error says it all
            warnings.simplefilter("ignore")
            return list(image.render_array(env.brax_env.sys, pipeline, height=240, width=320))
    except Exception as err:  # no OpenGL context on a headless machine, most often
        raise RenderError(
            f"brax's image renderer needs an OpenGL context (set MUJOCO_GL=egl or osmesa): {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}; write --out NAME.html for brax's HTML viewer instead"
        ) from None


def brax_html(env: Any, episode: Episode) -> str:
    from brax.io import html

    pipeline = [episode.state(t).inner.pipeline_state for t in range(episode.length)]
    return html.render(env.brax_env.sys, pipeline)


def write_gif(frames: list[np.ndarray], path: Path, fps: int) -> None:
    """``frames`` (``[H, W, 3]`` uint8) as a looping GIF at ``fps`` frames per second."""
    from PIL import Image

    if not frames:
        raise RenderError("the episode has no frames")
    images = [Image.fromarray(np.asarray(f, np.uint8)) for f in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=max(1, 1000 // fps), loop=0)
    path.write_bytes(buffer.getvalue())


def renderer_kind(env_name: str, env: Any) -> str:
    """``"gymnax"``, ``"multigoal"``, ``"grid"`` or ``"brax"``; :class:`RenderError` when none applies."""
    from purejaxpo.brax_wrapper import BraxGymnaxWrapper

    if isinstance(env, BraxGymnaxWrapper):
        return "brax"
    if env_name == "MultiGoal-v0":
        return "multigoal"
    if env_name in OURS:
        return "grid"
    if env_name in GYMNAX_VISUALIZED and getattr(env, "name", None) == env_name:
        return "gymnax"
    raise RenderError(
        f"no renderer for {env_name}: render supports gymnax classic control and MinAtar "
        f"({', '.join(n for n in GYMNAX_VISUALIZED if 'MinAtar' in n or '-v' in n)}), {', '.join(OURS)} and brax/<name>"
    )


def render_run(run: Any, out: Path, *, setting: int = 0, seed: int = 0, deterministic: bool = True,
               episode_seed: int = 0, max_steps: int | None = None, fps: int = 20) -> Episode:
    """Record one episode of ``run`` (a :class:`purejaxpo.SavedRun`) and write it to ``out`` (GIF, or HTML for
    brax). Returns the episode."""
    from purejaxpo import atomic
    from purejaxpo.evaluation import default_max_steps

    trainer = run.trainer
    env_name = run.description["env"]
    kind = renderer_kind(env_name, trainer.env)  # refuse before anything compiles
    html = out.suffix.lower() == ".html"
    if html and kind != "brax":
        raise RenderError(f"--out {out}: HTML output is brax's viewer; {env_name} renders to a .gif")
    if not html and out.suffix.lower() != ".gif":
        raise RenderError(f"--out {out}: write a .gif (or .html for brax)")
    policy = run.policy(setting, seed, deterministic=deterministic)
    act = lambda obs, key: jax.tree.map(lambda a: a[0], policy(obs[None], key))
    steps = max_steps or min(default_max_steps(trainer.env_params), 1000)
    episode = record_episode(trainer.env, trainer.env_params, act, jax.random.key(episode_seed), steps)
    title = f"{run.algorithm.name} on {env_name}"
    if kind == "brax":
        if html:
            atomic.write_text(out, brax_html(trainer.env, episode))
            return episode
        frames = brax_frames(trainer.env, episode)
    elif kind == "gymnax":
        atomic.write_with(out, lambda tmp: gymnax_gif(trainer.env, trainer.env_params, episode, tmp))
        return episode
    elif kind == "multigoal":
        frames = multigoal_frames(trainer.env, trainer.env_params, episode, title)
    else:
        frames = grid_world_frames(trainer.env, trainer.env_params, episode, title)
    atomic.write_with(out, lambda tmp: write_gif(frames, tmp, fps))
    return episode


# ---------------------------------------------------------------------------------------------------------------
# the subcommand
# ---------------------------------------------------------------------------------------------------------------


def cmd_render(args: argparse.Namespace) -> int:
    from purejaxpo.saved_run import load_run

    for name in ("max_steps", "fps"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise RenderError(f"--{name.replace('_', '-')} must be positive, got {value}")
    out = Path(args.out) if args.out else Path(args.dir) / "policy.gif"
    run = load_run(args.dir)
    renderer_kind(run.description["env"], run.trainer.env)
    episode = render_run(run, out, setting=args.setting, seed=args.seed, deterministic=not args.stochastic,
                         episode_seed=args.episode_seed, max_steps=args.max_steps, fps=args.fps or 20)
    print(f"wrote {out} ({episode.length} steps, return {episode.returns[-1]:.2f}, "
          f"{'stochastic' if args.stochastic else 'deterministic'} policy of setting {args.setting}, seed {args.seed})")
    return 0


def add_parser(sub: Any, parent: argparse.ArgumentParser) -> None:
    render = sub.add_parser("render", parents=[parent], help="animate one episode of a saved policy (GIF; brax: GIF or HTML)")
    render.add_argument("dir", help="a run directory written by `purejaxpo train`")
    render.add_argument("--out", default=None, help="output file, .gif (brax: also .html); default DIR/policy.gif")
    render.add_argument("--setting", type=int, default=0, help="hyperparameter setting of a sweep (default 0)")
    render.add_argument("--seed", type=int, default=0, help="which of the run's seeds (index among the seeds run, default 0)")
    render.add_argument("--episode-seed", type=int, default=0, help="key of the rendered episode (default 0)")
    render.add_argument("--stochastic", action="store_true", help="sample actions (default: the deterministic action)")
    render.add_argument("--max-steps", type=int, default=None, help="at most this many steps (default: the env's limit, <= 1000)")
    render.add_argument("--fps", type=int, default=None, help="frames per second of the GIF (default 20)")
    render.set_defaults(func=cmd_render)
