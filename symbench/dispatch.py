"""Choosing a kernel for a problem nobody measured: the fallback cost model.

``symbench.convolve(..., kernel=None)`` asks :func:`choose`. The model is the
textbook one that the report fits per kernel: a direct convolution costs
``a * |out| * |h|`` and an FFT convolution ``c * N log2 N`` for a transform of
``N`` points (three transforms: two forward, one inverse), each plus a fixed
overhead. The constants are rough figures for one modern x86 core; measured
crossover tables replace them where available.
"""

from __future__ import annotations

import math

from symbench.kernels.registry import all_kernels
from symbench.problem import Problem

#: Seconds per multiply-add of a direct kernel (about 4 GFLOP/s on one core).
DIRECT_S_PER_MAC = 0.5e-9
#: Seconds per N log2 N of one real FFT.
FFT_S_PER_NLOGN = 0.6e-9
#: Fixed costs per call.
DIRECT_OVERHEAD_S = 2e-6
FFT_OVERHEAD_S = 15e-6

DIRECT_PREFERENCE = ("direct", "direct-numpy", "direct-scipy")
FFT_PREFERENCE = ("fft-pyfftw", "fft-scipy", "fft-numpy")


def model_times(problem: Problem) -> tuple[float, float]:
    """Modelled seconds of (direct, fft) for ``problem``."""
    macs = problem.flops() / (8.0 if problem.is_complex else 2.0)
    t_direct = DIRECT_OVERHEAD_S + DIRECT_S_PER_MAC * macs
    n_fft = math.prod(problem.fft_shape())
    transforms = problem.batch * problem.c_in + problem.c_out * problem.c_in + problem.batch * problem.c_out
    t_fft = FFT_OVERHEAD_S + FFT_S_PER_NLOGN * transforms * n_fft * math.log2(max(2, n_fft))
    return t_direct, t_fft


def _first_usable(names: tuple[str, ...], problem: Problem) -> str | None:
    registry = all_kernels()
    for name in names:
        kernel = registry.get(name)
        if kernel is not None and kernel.available and kernel.supports(problem) is None:
            return name
    return None


def choose(problem: Problem) -> str:
    """The kernel the cost model predicts to be fastest for ``problem``."""
    t_direct, t_fft = model_times(problem)
    order = (DIRECT_PREFERENCE, FFT_PREFERENCE) if t_direct <= t_fft else (FFT_PREFERENCE, DIRECT_PREFERENCE)
    for names in order:
        name = _first_usable(names, problem)
        if name:
            return name
    return "direct-scipy"
