"""Compile the numba kernels ahead of time, so that the first real call is not the slow one.

The ``direct`` kernel is compiled by numba on first use, per dtype, dimension
and threading path, and the machine code is cached on disk (numba's
``cache=True``). :func:`warmup` makes those first calls on tiny inputs; later
processes load the cached code in a fraction of a second.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

DTYPES = ("float32", "float64", "complex64", "complex128")


def warmup(kernel: str = "direct", dtypes: Sequence[str] = DTYPES, dims: Sequence[int] = (1, 2),
           threads: Sequence[int] = (1,)) -> list[dict[str, Any]]:
    """Call ``kernel`` once per dtype, dimension and thread count on tiny inputs, timing each call.

    Parameters
    ----------
    kernel : str
        A kernel name; the numba-compiled one is ``direct``.
    dtypes, dims, threads : sequences
        What to compile for (every combination).

    Returns
    -------
    list of dict
        ``kernel``, ``dtype``, ``dim``, ``threads`` and ``seconds`` of the first call
        (compile time included; near zero once numba's on-disk cache is warm).

    Raises
    ------
    SymbenchError
        An unknown kernel, dtype or dimension.
    """
    import numpy as np

    from symbench.dispatch.api import convolve
    from symbench.errors import ConfigError

    bad = [d for d in dtypes if d not in DTYPES] + [str(d) for d in dims if d not in (1, 2)]
    if bad:
        raise ConfigError(f"cannot warm up {', '.join(map(repr, bad))}; dtypes: {', '.join(DTYPES)}; dims: 1, 2")
    done = []
    for dtype in dtypes:
        for dim in dims:
            for t in threads:
                x = np.ones((48,) * dim, dtype=dtype)
                h = np.ones((5,) * dim, dtype=dtype)
                start = time.perf_counter()
                convolve(x, h, mode="full", kernel=kernel, threads=t)
                done.append({"kernel": kernel, "dtype": dtype, "dim": dim, "threads": t,
                             "seconds": time.perf_counter() - start})
    return done
