"""The Python entry points: ``symbench.convolve`` (and, with the group ops, ``symbench.gconv``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from symbench.errors import SymbenchError
from symbench.kernels.base import thread_limits
from symbench.kernels.registry import get
from symbench.problem import MODES, Problem

_SUPPORTED = (np.float32, np.float64, np.complex64, np.complex128)


def convolve(x: Any, h: Any, mode: str = "full", kernel: str | None = None, *, threads: int = 1) -> np.ndarray:
    """Convolve two 1-D or 2-D arrays, exactly as ``scipy.signal.convolve`` does.

    Parameters
    ----------
    x, h : array_like
        Signal and filter, both 1-D or both 2-D.
    mode : {"full", "same", "valid"}
        Output size, as in SciPy (``valid`` swaps the inputs when ``h`` is larger).
    kernel : str, optional
        A kernel name (see ``symbench kernels``). ``None`` picks one with the
        cost model of :mod:`symbench.dispatch`.
    threads : int
        Threads the kernel may use.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as SciPy's result.

    Raises
    ------
    SymbenchError
        Unknown mode or kernel, mismatched dimensions, or a kernel that cannot
        compute this problem.
    """
    if mode not in MODES:
        raise SymbenchError(f"mode {mode!r} is not supported; allowed: {', '.join(MODES)}")
    x = np.asarray(x)
    h = np.asarray(h)
    if x.ndim != h.ndim or x.ndim not in (1, 2):
        raise SymbenchError(f"x and h must both be 1-D or both 2-D; got {x.ndim}-D and {h.ndim}-D")
    if x.size == 0 or h.size == 0:
        raise SymbenchError("x and h must not be empty")
    dtype = np.result_type(x, h)
    if dtype.type not in _SUPPORTED:
        # Integers, booleans, objects: SciPy's own semantics (and dtype) are the contract.
        import scipy.signal

        return scipy.signal.convolve(x, h, mode=mode)
    x = x.astype(dtype, copy=False)
    h = h.astype(dtype, copy=False)
    problem = Problem(op="conv", dim=x.ndim, n=max(x.shape), k=max(h.shape), dtype=dtype.name,
                      mode=mode, threads=threads)
    if kernel is None:
        from symbench.dispatch import choose

        kernel = choose(problem)
    kern = get(kernel)
    reason = kern.unavailable_reason() or kern.supports(problem)
    if reason:
        raise SymbenchError(f"kernel {kernel} cannot compute this: {reason}")
    with thread_limits(threads):
        y = kern.run(problem, x[None, None], h[None, None])
    return y[0, 0]
