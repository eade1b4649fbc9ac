"""The exact answers kernels are checked against, in float64 (or complex128).

``conv`` follows ``scipy.signal.convolve``; the group ops (``lift``,
``gconv``) come from :mod:`symbench.groups`. :func:`rel_err` is the error
measure every check uses; the tolerance it is compared with is the problem's
(:meth:`symbench.problem.Problem.tolerance`, :func:`symbench.problem.tolerance_for`).

This module is what ends the old ``groups`` <-> ``problem`` import cycle: the
problem knows nothing of references, and the group math borrows the channel
sum from :mod:`symbench.numerics`, below both.
"""

from __future__ import annotations

import math

import numpy as np

from symbench import groups
from symbench.numerics import channel_fft_conv
from symbench.problem import Problem, conv_out_shape


def reference(problem: Problem, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """The exact answer in float64 (or complex128), canonical output layout.

    ``conv`` follows ``scipy.signal.convolve``; the group ops come from
    :mod:`symbench.groups`.
    """
    if problem.op != "conv":
        return groups.reference(problem, x, h)  # the group ops own their reference
    return conv_reference(x, h, problem.mode)


def conv_reference(x: np.ndarray, h: np.ndarray, mode: str) -> np.ndarray:
    """``y[b, o] = sum_i scipy.signal.convolve(x[b, i], h[o, i], mode)`` in double precision."""
    import scipy.signal

    wide = np.complex128 if (np.iscomplexobj(x) or np.iscomplexobj(h)) else np.float64
    x = np.asarray(x, dtype=wide)
    h = np.asarray(h, dtype=wide)
    B, ci = x.shape[:2]
    co = h.shape[0]
    sx, sh = x.shape[2:], h.shape[2:]
    if ci * co == 1:
        out = np.zeros((B, co, *conv_out_shape(sx, sh, mode)), dtype=wide)
        for b in range(B):
            out[b, 0] = scipy.signal.convolve(x[b, 0], h[0, 0], mode=mode)
        return out
    return channel_fft_conv(x, h, mode)


def rel_err(y: np.ndarray, y_ref: np.ndarray) -> float:
    """``max|y - y_ref| / max|y_ref|`` (inf for a wrong shape or a non-finite value)."""
    y = np.asarray(y)
    if y.shape != y_ref.shape:
        return math.inf
    scale = float(np.max(np.abs(y_ref))) if y_ref.size else 0.0
    diff = float(np.max(np.abs(y.astype(y_ref.dtype, copy=False) - y_ref))) if y.size else 0.0
    if not math.isfinite(diff):
        return math.inf
    return diff / scale if scale > 0 else diff
