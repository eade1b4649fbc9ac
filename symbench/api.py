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


def gconv(x: Any, w: Any, group: str = "p4", mode: str = "valid", kernel: str | None = None, *,
          threads: int = 1) -> np.ndarray:
    """A p4/p4m group-convolution layer (Cohen & Welling 2016), cross-correlation convention.

    Parameters
    ----------
    x : array_like
        ``(B, C_in, n1, n2)`` images for a lifting layer (Z2 -> G), or
        ``(B, C_in, G, n1, n2)`` feature maps over the group for a group layer
        (G -> G). ``G`` is 4 for p4 and 8 for p4m.
    w : array_like
        ``(C_out, C_in, k, k)`` for lifting, ``(C_out, C_in, G, k, k)`` for a
        group layer; ``k x k`` must be square (it is rotated).
    group : {"p4", "p4m"}
        Rotations by multiples of 90 degrees, or those and mirrors.
    mode : {"valid", "same"}
        ``valid``: outputs whose window lies in the input, ``n - k + 1``.
        ``same``: ``n x n`` outputs, zero-padding ``(k-1)//2`` before and
        ``k//2`` after each axis (PyTorch/TensorFlow ``padding="same"``; exactly
        equivariant for odd k).
    kernel : str, optional
        ``gconv-direct`` or ``gconv-fft`` (or another lift/gconv kernel);
        ``None`` picks one with a rough cost model.
    threads : int
        Threads the kernel may use.

    Returns
    -------
    numpy.ndarray
        ``(B, C_out, G, n1', n2')`` in float32 when both inputs are float32,
        else float64. ``y[:, :, g]`` is the response to the filters transformed
        by element ``g`` (see :mod:`symbench.groups` for the order).

    Raises
    ------
    SymbenchError
        Unknown group, mode or kernel; wrong number of dimensions; channel or
        G-axis mismatch; a non-square filter; a filter larger than the input
        in ``valid`` mode; complex or empty input.
    """
    from symbench.groups import GROUPS
    from symbench.problem import GROUP_MODES, GROUP_ORDER

    if group not in GROUPS:
        raise SymbenchError(f"unknown group {group!r}; allowed: {', '.join(GROUPS)}")
    if mode not in GROUP_MODES:
        raise SymbenchError(f"mode {mode!r} is not supported for group convolutions; allowed: {', '.join(GROUP_MODES)}")
    x = np.asarray(x)
    w = np.asarray(w)
    G = GROUP_ORDER[group]
    if x.ndim == 4 and w.ndim == 4:
        op = "lift"
    elif x.ndim == 5 and w.ndim == 5:
        op = "gconv"
        if x.shape[2] != G or w.shape[2] != G:
            raise SymbenchError(f"a {group} group layer needs a G axis of {G} (axis 2) in x and w; "
                                f"got x {x.shape} and w {w.shape}")
    else:
        raise SymbenchError(
            f"x and w must be 4-D (lift: x (B, C_in, n, n), w (C_out, C_in, k, k)) or 5-D (gconv: "
            f"x (B, C_in, G, n, n), w (C_out, C_in, G, k, k)); got {x.ndim}-D x and {w.ndim}-D w")
    if x.size == 0 or w.size == 0:
        raise SymbenchError(f"x and w must not be empty; got x {x.shape} and w {w.shape}")
    if x.shape[1] != w.shape[1]:
        raise SymbenchError(f"channel mismatch: x has C_in={x.shape[1]} (axis 1) but w has {w.shape[1]} (axis 1)")
    if w.shape[-1] != w.shape[-2]:
        raise SymbenchError(f"filters must be square to be rotated; got {w.shape[-2]}x{w.shape[-1]}")
    k = w.shape[-1]
    if mode == "valid" and k > min(x.shape[-2:]):
        raise SymbenchError(f"valid mode needs the {k}x{k} filter to fit in the {x.shape[-2]}x{x.shape[-1]} "
                            "input; use mode same")
    for name, a in (("x", x), ("w", w)):
        if a.dtype.kind not in "biuf":
            raise SymbenchError(f"group convolutions take real numbers (float32 or float64); {name} has dtype {a.dtype}")
    dtype = np.float32 if (x.dtype == np.float32 and w.dtype == np.float32) else np.float64
    x = x.astype(dtype, copy=False)
    w = w.astype(dtype, copy=False)
    problem = Problem(op=op, group=group, dim=2, n=max(x.shape[-2:]), k=k, batch=x.shape[0],
                      c_in=x.shape[1], c_out=w.shape[0], dtype=np.dtype(dtype).name, mode=mode,
                      threads=threads)
    if kernel is None:
        from symbench.kernels.gconv import choose

        kernel = choose(problem)
    kern = get(kernel)
    reason = kern.unavailable_reason() or kern.supports(problem)
    if reason:
        raise SymbenchError(f"kernel {kernel} cannot compute this: {reason}")
    with thread_limits(threads):
        return kern.run(problem, x, w)
