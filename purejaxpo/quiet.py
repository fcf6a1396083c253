"""Third-party noise off the terminal: import chatter goes to the ``purejaxpo.thirdparty`` log, not stdout.

brax's import pulls in ``mujoco.mjx.warp``, which prints "Failed to import warp: ..." to stdout when NVIDIA
warp is not installed (it is optional, and never used here); pygame prints a greeting on import and SDL
opens the sound card (ALSA errors on machines without one) when gymnasium's renderer initializes it.
:func:`quiet_import` imports a module with stdout captured and logs what was printed at DEBUG level;
:func:`quiet_pygame` sets pygame's and SDL's environment switches before pygame is imported.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
from types import ModuleType

LOG = logging.getLogger("purejaxpo.thirdparty")


def quiet_import(name: str) -> ModuleType:
    """``importlib.import_module(name)`` with anything it prints on stdout sent to :data:`LOG` instead."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        module = importlib.import_module(name)
    for line in buffer.getvalue().splitlines():
        if line.strip():
            LOG.debug("%s (import of %s)", line, name)
    return module


def quiet_pygame() -> None:
    """No greeting from pygame's import, no sound or display device for SDL (the renderers draw offscreen)."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
