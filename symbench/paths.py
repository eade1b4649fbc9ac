"""Where symbench keeps per-user state (FFTW wisdom, the last tuned table)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$SYMBENCH_CACHE_DIR``, else the platform's user cache directory for symbench.

    platformdirs is used when installed; without it (a minimal GPU image, say)
    the XDG default ``~/.cache/symbench`` is used.
    """
    env = os.environ.get("SYMBENCH_CACHE_DIR")
    if env:
        return Path(env)
    try:
        from platformdirs import user_cache_dir
    except ImportError:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return Path(base) / "symbench"
    return Path(user_cache_dir("symbench"))
