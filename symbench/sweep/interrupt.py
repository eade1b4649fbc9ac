"""Ctrl-C as a feature: a SIGINT handler that never tears a row in half.

A process started in the background by a non-interactive shell (as CI does)
inherits SIGINT *ignored*, and Python then installs no handler of its own. The
CLI therefore installs :func:`handler` explicitly. While code runs inside
:func:`critical` (appending a row, replacing ``run.json``) the interrupt is
held back and raised as :class:`KeyboardInterrupt` when the block ends.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from types import FrameType
from typing import Iterator

_depth = 0
_pending = False


def handler(signum: int, frame: FrameType | None) -> None:
    """Raise KeyboardInterrupt now, or when the current critical section ends."""
    global _pending
    if _depth:
        _pending = True
        return
    raise KeyboardInterrupt


@contextmanager
def critical() -> Iterator[None]:
    """Defer Ctrl-C until the block is done (file writes stay whole)."""
    global _depth, _pending
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending:
            _pending = False
            raise KeyboardInterrupt


def install() -> None:
    """Install :func:`handler` for SIGINT, whatever the inherited disposition was."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
