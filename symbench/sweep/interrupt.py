"""Ctrl-C and SIGTERM as a feature: a handler that never tears a row in half.

A process started in the background by a non-interactive shell (as CI does)
inherits SIGINT *ignored*, and Python then installs no handler of its own; and
Python never handles SIGTERM (the default kills the process without a word,
leaving ``run.json`` saying nothing). The CLI therefore installs :func:`handler`
explicitly for both. Either signal raises :class:`KeyboardInterrupt`, so one code
path stops a sweep between two writes; :data:`received` says which signal it
was (``"SIGINT"`` or ``"SIGTERM"``), for ``run.json`` and the exit status. While
code runs inside :func:`critical` (appending a row, replacing ``run.json``) the
interrupt is held back and raised when the block ends.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from types import FrameType
from typing import Iterator

_depth = 0
_pending = False
#: The name of the last signal handled ("SIGINT", "SIGTERM"), or None.
received: str | None = None
#: Exit status for each signal: 128 + its number, as shells report it.
EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}


def handler(signum: int, frame: FrameType | None) -> None:
    """Raise KeyboardInterrupt now, or when the current critical section ends."""
    global _pending, received
    received = signal.Signals(signum).name
    if _depth:
        _pending = True
        return
    raise KeyboardInterrupt


def exit_code() -> int:
    """130 after SIGINT (or a KeyboardInterrupt of unknown origin), 143 after SIGTERM."""
    return EXIT_CODES.get(received or "SIGINT", 130)


@contextmanager
def critical() -> Iterator[None]:
    """Defer Ctrl-C and SIGTERM until the block is done (file writes stay whole)."""
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
    """Install :func:`handler` for SIGINT and SIGTERM, whatever the inherited disposition was."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
