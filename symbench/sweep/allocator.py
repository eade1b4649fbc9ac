"""A steady heap for timing: glibc's malloc with a fixed mmap threshold.

glibc serves allocations above its *mmap threshold* (128 KiB at start) with
fresh ``mmap`` pages, which the kernel zero-fills on first touch, and raises
the threshold on its own (up to 32 MiB) the first time such a block is freed.
A kernel that allocates its output every call (``scipy.signal.fftconvolve``,
``numpy.convolve``) is therefore timed with page faults or without them
depending on what the process happened to free before: on this machine
``fftconvolve`` of 262144 points took 15 ms in a fresh process and 6 ms once a
32 MB array had been freed. The timing rules (docs/methodology.md) keep allocation out of ``time_s``, and a
timing must not depend on the order of a sweep, so a sweep starts by putting
the process in the state glibc reaches by itself: a fixed threshold of 32 MiB
(blocks up to that size are reused from the heap) and a trim threshold high
enough that freed heap memory is not handed back at every call.

Elsewhere (macOS, musl, Windows) nothing is changed and the answer says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Any

#: glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: The largest mmap threshold glibc accepts on 64-bit, and its own dynamic ceiling.
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD  # what glibc itself sets when it raises the threshold

_done: dict[str, Any] | None = None


def steady_heap() -> dict[str, Any]:
    """Fix malloc's mmap and trim thresholds (glibc, once per process); returns what was done."""
    global _done
    if _done is not None:
        return _done
    if not sys.platform.startswith("linux"):
        _done = {"malloc": "unchanged (not Linux)"}
        return _done
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        _done = {"malloc": "unchanged (no glibc mallopt)"}
        return _done
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    _done = ({"malloc": "glibc", "mmap_threshold": MMAP_THRESHOLD, "trim_threshold": TRIM_THRESHOLD}
             if ok else {"malloc": "unchanged (mallopt refused)"})
    return _done
