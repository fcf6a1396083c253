"""Ctrl-C and SIGTERM become a request the runner honours between chunks of updates (after saving a
checkpoint), instead of an exception that could land in the middle of a checkpoint write.

A second Ctrl-C while a request is pending raises ``KeyboardInterrupt`` at once (the escape hatch when a
chunk takes too long). Handlers are installed only in the main thread (Python allows no other) and the
previous ones are restored on exit.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any


class RunInterrupted(KeyboardInterrupt):
    """The run stopped on Ctrl-C or SIGTERM at ``update`` (``saved`` says whether a checkpoint holds it)."""

    def __init__(self, message: str, *, update: int, saved: bool, signum: int, results: Any = None):
        super().__init__(message)
        self.update, self.saved, self.signum, self.results = update, saved, signum, results

    @property
    def exit_code(self) -> int:
        """The shell convention: 128 + signal number (130 for Ctrl-C, 143 for SIGTERM)."""
        return 128 + self.signum


class DeferredInterrupts:
    """Context manager: while active, SIGINT/SIGTERM set :attr:`signum` instead of raising."""

    def __init__(self, notice: str = "") -> None:
        self.signum: int | None = None
        self.notice = notice
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: stop now
        self.signum = signum
        if self.notice:
            print(f"\n{signal.Signals(signum).name}: {self.notice} (Ctrl-C again to stop at once)", file=sys.stderr, flush=True)

    def __enter__(self) -> "DeferredInterrupts":
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                try:
                    self._previous[signum] = signal.signal(signum, self._handle)
                except (ValueError, OSError):  # e.g. embedded interpreters
                    pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            # None: the previous handler was not installed from Python (e.g. a C++ library's); the default then
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self._previous.clear()
