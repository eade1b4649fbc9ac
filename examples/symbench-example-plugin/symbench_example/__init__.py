"""A third-party symbench kernel: direct convolution as a loop over the filter's taps.

Everything a plug-in needs is public and stable:

- :class:`symbench.kernels.Kernel`: the class attributes say what the kernel
  is and supports (``supports`` checks them), ``prepare`` does the set-up;
- :class:`symbench.kernels.Prepared`: ``call`` is what is timed, ``result``
  fetches the last result (untimed);
- :class:`symbench.problem.Problem`: the frozen description of one problem
  (``dim``, ``n``, ``k``, ``mode``, ``dtype``, batch and channels);
- :func:`symbench.problem.crop_slices`: SciPy's ``same``/``valid`` crops of a
  full convolution.
"""

from __future__ import annotations

import itertools

import numpy as np

from symbench.kernels import Kernel, KernelOptions, Prepared
from symbench.problem import Problem, crop_slices


class DirectTapLoop(Kernel):
    """``y[b, o] = sum_i conv(x[b, i], h[o, i])``, one shifted multiply-add per filter tap."""

    name = "direct-example-loop"
    method = "direct"
    library = "numpy (symbench-example-plugin)"
    dims = (1, 2)
    dtypes = ("float32", "float64", "complex128")
    requires = ("numpy",)
    description = ("Example plug-in: a direct convolution as a Python loop over the filter's taps, "
                   "each adding a shifted, scaled copy of the signals (NumPy along the signal).")

    def prepare(self, problem: Problem, x: np.ndarray, h: np.ndarray,
                options: KernelOptions = KernelOptions()) -> Prepared:
        # Set-up, not timed: the full-size accumulator and the crop of the mode.
        sx, sh = x.shape[2:], h.shape[2:]
        full = tuple(a + b - 1 for a, b in zip(sx, sh))
        dtype = np.result_type(x, h)
        acc = np.zeros((x.shape[0], h.shape[0], *full), dtype=dtype)
        keep = (slice(None), slice(None), *crop_slices(sx, sh, problem.mode))
        taps = list(itertools.product(*(range(k) for k in sh)))

        def call() -> None:
            acc[...] = 0
            for tap in taps:
                # out[b, o, p + tap] += sum_i x[b, i, p] * h[o, i, tap]
                window = (slice(None), slice(None), *(slice(t, t + n) for t, n in zip(tap, sx)))
                acc[window] += np.einsum("bi...,oi->bo...", x, h[(slice(None), slice(None), *tap)])

        return Prepared(call=call, result=lambda: acc[keep].copy())


KERNELS = [DirectTapLoop()]
