"""The cost models, in one place: what a kernel is expected to cost before anything is measured.

Two uses:

- **fitting** (:mod:`symbench.analysis.models`): the size variables
  :func:`direct_work` (``W = |out| * |kernel|`` multiply-adds) and
  :func:`fft_work` (``N log2 N``), whose coefficients the report fits per kernel;
- **choosing without a table** (:mod:`symbench.dispatch.selector` for
  ``symbench.convolve``, :mod:`symbench.dispatch.api` for ``symbench.gconv``):
  the same textbook forms with rough constants for one modern x86 core,
  :func:`conv_times` and :func:`gconv_times`, and :func:`model_times` for
  either op.

A tuned table (``symbench tune``) replaces these guesses with measurements;
they are the fallback, not the answer.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from symbench.numerics import fast_len
from symbench.problem import GROUP_ORDER, Problem


def direct_work(op: str, group: str, dim: int, mode: str, n: Any, k: Any,
                batch: int = 1, c_in: int = 1, c_out: int = 1) -> np.ndarray:
    """``|out| * |kernel|`` multiply-adds of the direct method (vectorised over n and k)."""
    n = np.asarray(n, dtype=float)
    k = np.asarray(k, dtype=float)
    if op == "conv" and mode == "valid":
        small = np.minimum(n, k)  # SciPy swaps the operands when the kernel is longer
    else:
        small = k
    if mode == "full":
        out = n + k - 1
    elif mode == "same":
        out = n
    else:
        out = np.abs(n - k) + 1 if op == "conv" else np.maximum(n - k + 1, 1)
    g = GROUP_ORDER.get(str(group), 1)
    factor = {"conv": 1, "lift": g, "gconv": g * g}.get(op, 1)
    return batch * c_in * c_out * factor * out ** dim * small ** dim


def fft_work(dim: int, n: Any, k: Any) -> np.ndarray:
    """``N log2 N`` with ``N = (n + k - 1) ** dim`` (vectorised)."""
    size = (np.asarray(n, dtype=float) + np.asarray(k, dtype=float) - 1) ** dim
    return size * np.log2(np.maximum(size, 2.0))


# -- conv: symbench.convolve(kernel=None) without a table ---------------------------------------

#: Seconds per multiply-add of a direct kernel (about 4 GFLOP/s on one core).
CONV_DIRECT_S_PER_MAC = 0.5e-9
#: Seconds per N log2 N of one real FFT.
CONV_FFT_S_PER_NLOGN = 0.6e-9
#: Fixed costs per call.
CONV_DIRECT_OVERHEAD_S = 2e-6
CONV_FFT_OVERHEAD_S = 15e-6


def conv_times(problem: Problem) -> tuple[float, float]:
    """Modelled seconds of (direct, fft) for a conv ``problem``."""
    macs = problem.flops() / (8.0 if problem.is_complex else 2.0)
    t_direct = CONV_DIRECT_OVERHEAD_S + CONV_DIRECT_S_PER_MAC * macs
    n_fft = math.prod(problem.fft_shape())
    transforms = problem.batch * problem.c_in + problem.c_out * problem.c_in + problem.batch * problem.c_out
    t_fft = CONV_FFT_OVERHEAD_S + CONV_FFT_S_PER_NLOGN * transforms * n_fft * math.log2(max(2, n_fft))
    return t_direct, t_fft


# -- lift/gconv: symbench.gconv(kernel=None) -------------------------------------------------------

#: Seconds per multiply-add of the im2col GEMM (float32 BLAS on one AVX-512 core; float64 twice that),
#: fitted roughly to a run of configs/gconv.toml.
GCONV_DIRECT_S_PER_MAC = 0.05e-9
#: Seconds per ``N^2 log2 N^2`` of one real 2-D transform, and per complex product of the spectral sum.
GCONV_FFT_S_PER_NLOGN = 0.4e-9
GCONV_FFT_S_PER_CMAC = 0.5e-9
#: Fixed costs per call (Python and library overheads).
GCONV_DIRECT_OVERHEAD_S = 2e-5
GCONV_FFT_OVERHEAD_S = 1e-4


def gconv_times(problem: Problem) -> tuple[float, float]:
    """Modelled seconds of (gconv-direct, gconv-fft) for a lift/gconv problem."""
    wide = 2.0 if problem.dtype == "float64" else 1.0
    macs = problem.flops() / 2.0
    G = problem.group_order
    gin = G if problem.op == "gconv" else 1
    pad = problem.k - 1 if problem.mode == "same" else 0
    N = fast_len(problem.n + pad)
    n2 = N * N
    transforms = problem.batch * problem.c_in * gin + problem.c_out * problem.c_in * gin
    transforms += problem.batch * problem.c_out * G
    spectral = n2 / 2 * G * gin * problem.c_in * problem.c_out * problem.batch
    t_fft = GCONV_FFT_OVERHEAD_S + wide * (GCONV_FFT_S_PER_NLOGN * transforms * n2 * math.log2(n2) + GCONV_FFT_S_PER_CMAC * spectral)
    return GCONV_DIRECT_OVERHEAD_S + wide * GCONV_DIRECT_S_PER_MAC * macs, t_fft


def choose_gconv(problem: Problem) -> str:
    """``gconv-direct`` or ``gconv-fft``, whichever :func:`gconv_times` predicts faster (``symbench.gconv(kernel=None)``)."""
    t_direct, t_fft = gconv_times(problem)
    return "gconv-direct" if t_direct <= t_fft else "gconv-fft"


def model_times(problem: Problem) -> tuple[float, float]:
    """Modelled seconds of (direct, fft) for ``problem``, of any op."""
    return conv_times(problem) if problem.op == "conv" else gconv_times(problem)
