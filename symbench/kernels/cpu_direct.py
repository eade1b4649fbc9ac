"""Direct (sliding-window) convolution on the CPU: symbench's own, NumPy's and SciPy's."""

from __future__ import annotations

import itertools
import math
from typing import Callable

import numpy as np

from symbench.kernels.base import Kernel, KernelOptions, Prepared, PlainPlan, is_plain, pairwise, result_of
from symbench.problem import Problem, conv_out_shape, crop_slices


def shift_add_conv(x: np.ndarray, h: np.ndarray, mode: str) -> np.ndarray:
    """Direct convolution by shift-and-add over the filter taps (canonical layout).

    For each tap ``t`` the output window that tap reaches gets
    ``h[..., t] * x[window - t]``; with channels, that update is a small GEMM
    over input channels. Only the outputs of ``mode`` are computed.
    """
    sx, sh = x.shape[2:], h.shape[2:]
    out_sl = crop_slices(sx, sh, mode)  # the kept window, in full-output coordinates
    B, co = x.shape[0], h.shape[0]
    dtype = np.result_type(x, h)
    out = np.zeros((B, co, *conv_out_shape(sx, sh, mode)), dtype=dtype)
    plain = is_plain(x, h)
    for tap in itertools.product(*(range(s) for s in sh)):
        dst, src = [], []
        for t, n, window in zip(tap, sx, out_sl):
            # full[m] += h[t] * x[m - t] for the m inside the window with 0 <= m - t < n
            lo, hi = max(window.start, t), min(window.stop, t + n)
            if lo >= hi:
                break
            dst.append(slice(lo - window.start, hi - window.start))
            src.append(slice(lo - t, hi - t))
        else:
            if plain:
                out[(0, 0, *dst)] += h[(0, 0, *tap)] * x[(0, 0, *src)]
            else:
                xs = x[(slice(None), slice(None), *src)]
                out[(slice(None), slice(None), *dst)] += np.einsum("bi...,oi->bo...", xs, h[(slice(None), slice(None), *tap)])
    return out


class Direct(Kernel):
    name = "direct"
    method = "direct"
    library = "symbench (numba)"
    requires = ("numba",)
    description = ("symbench's own direct convolution, compiled with numba: register-blocked SIMD tiles "
                   "(2 rows x 4 vectors in 2-D, 8 vectors in 1-D) for one signal and filter, a GEMM-shaped "
                   "tile with channels (6 output channels x 4 vectors with AVX-512, 6 output channels x "
                   "2 rows with AVX2, over weights packed in the call; 4 x 4 for the rest); complex as a real problem with "
                   "twice the channels; computes only the outputs of the mode; threads via prange.")

    def memory_bytes(self, problem: Problem) -> int:
        item = np.dtype(problem.dtype).itemsize
        # Contiguous copies of the inputs (read-only inputs are copied once in prepare), and
        # with channels the padded input and the padded-width output.
        extra = item * (math.prod(problem.x_shape) + math.prod(problem.h_shape))
        if problem.c_in * problem.c_out > 1 or problem.is_complex:
            rows = problem.out_spatial[0] + problem.k - 1 if problem.dim == 2 else 1
            width = problem.out_spatial[-1] + problem.k - 1
            planes = problem.batch * 2 * (problem.c_in + problem.c_out)
            extra += item * planes * (rows + 1) * (width + 64)
        return problem.memory_bytes() + extra

    def prepare(self, problem: Problem, x: np.ndarray, h: np.ndarray,
                options: KernelOptions = KernelOptions()) -> Prepared:
        from symbench.kernels.impl import direct_plan

        return direct_plan.prepare(problem, x, h)

    def planned(self, problem: Problem, x_shape: tuple[int, ...], h_shape: tuple[int, ...], dtype: object,
                options: KernelOptions = KernelOptions()) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """One real signal and filter: the compiled plane kernel on the caller's arrays; else prepared per call."""
        kind = np.dtype(dtype).kind  # type: ignore[call-overload]
        if x_shape[:2] != (1, 1) or h_shape[:2] != (1, 1) or kind != "f":
            return super().planned(problem, x_shape, h_shape, dtype, options)
        from symbench.kernels.impl import direct_plan

        return PlainPlan(direct_plan.plain(problem, x_shape[2:], h_shape[2:], np.dtype(dtype)))  # type: ignore[call-overload]


class PairKernel(Kernel):
    """A library that convolves one signal with one filter; channels loop in Python."""

    def pair_fn(self, problem: Problem) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        raise NotImplementedError

    def prepare(self, problem: Problem, x: np.ndarray, h: np.ndarray,
                options: KernelOptions = KernelOptions()) -> Prepared:
        x, h = np.ascontiguousarray(x), np.ascontiguousarray(h)
        fn = self.pair_fn(problem)
        state: dict[str, np.ndarray] = {}
        if is_plain(x, h):
            x0, h0 = x[0, 0], h[0, 0]

            def call() -> None:
                state["y"] = fn(x0, h0)[None, None]
        else:
            out = np.empty(problem_out_shape(x, h, problem.mode), dtype=np.result_type(x, h))
            state["y"] = out

            def call() -> None:
                pairwise(fn, x, h, out)

        return Prepared(call, result_of(state))

    def planned(self, problem: Problem, x_shape: tuple[int, ...], h_shape: tuple[int, ...], dtype: object,
                options: KernelOptions = KernelOptions()) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """One signal and one filter: the library call itself, nothing to set up or copy."""
        if x_shape[:2] != (1, 1) or h_shape[:2] != (1, 1):
            return super().planned(problem, x_shape, h_shape, dtype, options)
        return PlainPlan(self.pair_fn(problem))


def problem_out_shape(x: np.ndarray, h: np.ndarray, mode: str) -> tuple[int, ...]:
    return (x.shape[0], h.shape[0], *conv_out_shape(x.shape[2:], h.shape[2:], mode))


class DirectNumpy(PairKernel):
    requires = ("numpy",)
    name = "direct-numpy"
    method = "direct"
    library = "numpy.convolve"
    dims = (1,)
    description = "numpy.convolve (1-D direct); a Python loop over channels."

    def pair_fn(self, problem: Problem) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        mode = problem.mode

        def fn(a: np.ndarray, v: np.ndarray) -> np.ndarray:
            if mode == "same" and v.shape[0] > a.shape[0]:
                # numpy's "same" keeps the longer input's length; SciPy keeps x's.
                return np.convolve(a, v, "full")[crop_slices(a.shape, v.shape, "same")]
            return np.convolve(a, v, mode)

        return fn


class DirectScipy(PairKernel):
    requires = ("scipy",)
    name = "direct-scipy"
    method = "direct"
    library = "scipy.signal"
    description = 'scipy.signal.convolve(method="direct"); a Python loop over channels.'

    def pair_fn(self, problem: Problem) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        import scipy.signal

        mode = problem.mode
        return lambda a, v: scipy.signal.convolve(a, v, mode=mode, method="direct")


KERNELS: list[Kernel] = [Direct(), DirectNumpy(), DirectScipy()]
