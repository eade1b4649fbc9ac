"""p4/p4m group convolutions on an NVIDIA GPU through CuPy: ``gconv-direct-cupy`` and ``gconv-fft-cupy``.

The numerics are those of the CPU kernels (:mod:`symbench.kernels.gconv`):
the very same functions of :mod:`symbench.kernels.impl.gconv_core`, called with
``xp = cupy``. Only the device-specific parts live here, as in
:mod:`symbench.kernels.cupy_conv`:

- ``prepare`` builds the :class:`~symbench.kernels.impl.gconv_core.Plan` on the
  host, moves its index arrays to the device (:meth:`Plan.to`) and uploads the
  inputs; all of it is set-up (``setup_s``). A warm-up call then compiles
  CuPy's element-wise kernels (NVRTC) and creates the cuFFT plans, which the
  timed calls reuse from CuPy's plan cache.
- Calls are timed with CUDA events (:class:`symbench.machine.gpu.CudaEventClock`),
  optionally with the L2 flushed before each call.
- ``close`` drops the device arrays (inputs, plan, output), the cached cuFFT
  plans and CuPy's cached memory blocks.

Each timed call is one layer evaluation from the canonical inputs on the
device to the canonical output on the device, filters transformed every call
(as for a layer whose weights change):

- ``gconv-direct-cupy``: :func:`~symbench.kernels.impl.gconv_core.gconv_direct`:
  one gather transforms the filter bank, then im2col patches times the
  stacked ``C_out * |G|`` filters in one cuBLAS GEMM (split by filter rows
  above 64 MiB of patches). This is the im2col formulation GPU deep-learning
  libraries use for direct convolution.
- ``gconv-fft-cupy``: :func:`~symbench.kernels.impl.gconv_core.gconv_fft`: real
  cuFFT transforms of the input and of the filter bank once per call, shared
  by all ``|G|`` elements through precomputed frequency permutations; the
  channel sums are one batched cuBLAS GEMM over frequencies. The FFT side is
  the smallest 2,3,5,7-smooth even length that holds the padded input
  (cuFFT's fast radices, as for ``fft-cupy``).

The transforms go through ``cupy.fft`` (``rfft``/``fft``/``irfft2``, NumPy's
signatures): the same cuFFT plans and plan cache as ``cupyx.scipy.fft``,
whose extra arguments the core does not use.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from symbench.machine import gpu
from symbench.groups import same_padding
from symbench.kernels.impl import gconv_core as core
from symbench.kernels.base import Kernel, KernelOptions, Prepared
from symbench.kernels.cupy_conv import CupyKernel, problem_io_bytes
from symbench.kernels.impl.xp_conv import next_smooth
from symbench.problem import GROUP_MODES, Problem

#: cuFFT plans one FFT call needs at most: rfft of the input and of the filters, the column
#: fft of each, and the inverse irfft2. A smaller (or disabled) cache would re-plan every call,
#: so it is then enlarged to CuPy's default of 16.
MIN_PLAN_CACHE = 5
_INDEX_ITEM = np.dtype(np.intp).itemsize


def padded_side(n: int, k: int, mode: str) -> int:
    """The spatial side of the input after ``same``'s zero padding (``n`` in ``valid``)."""
    before, after = same_padding(k) if mode == "same" else (0, 0)
    return n + before + after


def fft_side(n: int, k: int, mode: str) -> int:
    """The FFT side of ``gconv-fft-cupy``: a 2,3,5,7-smooth even length holding the padded input."""
    return next_smooth(padded_side(n, k, mode), even=True)


class _CupyGroupKernel(CupyKernel):
    """What both GPU group kernels share: the plan, the uploads, the memory estimate."""

    ops = ("lift", "gconv")
    groups = ("p4", "p4m")
    dims = (2,)
    dtypes = ("float32", "float64")
    modes = GROUP_MODES
    # cupy.take, conj and the copies are element-wise kernels CuPy compiles with NVRTC;
    # the GEMMs are cuBLAS.
    cuda_libraries: tuple[str, ...] = ("nvrtc", "cublas")
    uses_fft: ClassVar[bool] = False

    def plan(self, problem: Problem, x_shape: tuple[int, ...], h_shape: tuple[int, ...],
             itemsize: int) -> core.Plan:
        """The host plan (the FFT part only for the FFT kernel), at cuFFT-friendly sizes."""
        size = fft_side(max(x_shape[-2:]), h_shape[-1], problem.mode) if self.uses_fft else None
        return core.make_plan(problem.group, problem.op, x_shape, h_shape, problem.mode,
                              fft=self.uses_fft, itemsize=itemsize, fft_size=size)

    def compute(self, xp: Any, x: Any, w: Any, plan: core.Plan) -> Any:
        raise NotImplementedError

    def workspace_bytes(self, problem: Problem) -> int:
        """Device bytes of the temporaries and the plan's index arrays."""
        raise NotImplementedError

    def device_bytes(self, problem: Problem) -> int:
        return problem_io_bytes(problem) + self.workspace_bytes(problem)

    def notes(self, plan: core.Plan) -> dict[str, Any]:
        return {}

    def prepare(self, problem: Problem, x: np.ndarray, h: np.ndarray,
                options: KernelOptions = KernelOptions()) -> Prepared:
        cp = gpu.cupy()
        dtype = np.result_type(x, h)
        if dtype.name not in self.dtypes:
            raise TypeError(f"{self.name} supports {', '.join(self.dtypes)}, not {dtype.name}")
        with gpu.freeing_on_error():
            if self.uses_fft:
                cache = gpu.plan_cache()
                size = cache.get_size()
                if 0 <= size < MIN_PLAN_CACHE:
                    cache.set_size(16)
            host_plan = self.plan(problem, x.shape, h.shape, dtype.itemsize)
            # Everything the call reads lives in `holder`, so that close() really drops it.
            holder: dict[str, Any] = {
                "plan": host_plan.to(cp),
                "x": cp.asarray(np.ascontiguousarray(x, dtype=dtype)),
                "w": cp.asarray(np.ascontiguousarray(h, dtype=dtype)),
            }
            compute = self.compute

            def call() -> None:
                holder["y"] = compute(cp, holder["x"], holder["w"], holder["plan"])

            def result() -> np.ndarray:
                return cp.asnumpy(holder["y"])

            prepared = self.finish(call, result, holder, options, self.notes(host_plan))
            if self.uses_fft:
                prepared.notes["cufft_plans_cached"] = gpu.plan_cache().get_curr_size()
            return prepared


class GconvDirectCupy(_CupyGroupKernel):
    name = "gconv-direct-cupy"
    method = "direct"
    library = "CuPy (im2col + cuBLAS GEMM)"
    description = ("p4/p4m lift and group conv on the GPU, the numerics of gconv-direct with xp=cupy: filters "
                   "transformed by one precomputed gather, then one im2col cuBLAS GEMM over the stacked "
                   "C_out*|G| filters (split by filter rows above 64 MiB of patches); float32/float64.")

    def workspace_bytes(self, problem: Problem) -> int:
        item = np.dtype(problem.dtype).itemsize
        plan = core.make_plan(problem.group, problem.op, problem.x_shape, problem.h_shape, problem.mode,
                              fft=False, itemsize=item)
        extra = core.direct_workspace_bytes(plan, problem.batch, problem.c_out, item)
        # The patches of a chunk are made from a strided view by one copy, and the filter
        # rows of a chunk by another: count a second patch-sized and bank-sized buffer.
        K = plan.c_in * plan.gin
        rows = max(b - a for a, b in plan.tap_rows)
        extra += item * (problem.batch * K * rows * plan.k * math.prod(plan.out_hw)
                         + problem.c_out * plan.G * K * plan.k ** 2)
        return int(extra + _INDEX_ITEM * plan.filter_index.size)

    def notes(self, plan: core.Plan) -> dict[str, Any]:
        return {"gemms": len(plan.tap_rows)}

    def compute(self, xp: Any, x: Any, w: Any, plan: core.Plan) -> Any:
        return core.gconv_direct(xp, x, w, plan)


class GconvFFTCupy(_CupyGroupKernel):
    name = "gconv-fft-cupy"
    method = "fft"
    library = "CuPy cuFFT"
    uses_fft = True
    cuda_libraries = ("cufft", "nvrtc", "cublas")
    description = ("p4/p4m lift and group conv on the GPU, the numerics of gconv-fft with xp=cupy: real cuFFT "
                   "transforms (2,3,5,7-smooth even side, plans made in set-up and reused from CuPy's plan "
                   "cache) of the input and the filters once per call, shared by all |G| elements through "
                   "precomputed frequency permutations; channels summed by one batched cuBLAS GEMM.")

    def workspace_bytes(self, problem: Problem) -> int:
        item = np.dtype(problem.dtype).itemsize
        G = problem.group_order
        gin = G if problem.op == "gconv" else 1
        N = fft_side(problem.n, problem.k, problem.mode)
        F = N * (N // 2 + 1)
        out_el = math.prod(problem.out_shape)
        B, ci, co = problem.batch, problem.c_in, problem.c_out
        extra = core.fft_workspace_bytes(G, gin, B, ci, co, N, out_el, item, shared=True)
        # cuFFT's work area: at most one more spectrum of the largest batch transformed.
        extra += 2 * item * F * max(B * ci * gin, co * ci * gin, B * co * G)
        # The plan's index arrays: frequency permutations, output gathers, filter gather.
        out_hw = math.prod(problem.out_shape[-2:])
        indices = F * G * gin + (G + 1) * out_hw + G * ci * gin * problem.k ** 2
        return int(extra + _INDEX_ITEM * indices)

    def notes(self, plan: core.Plan) -> dict[str, Any]:
        return {"fft_shape": [plan.N, plan.N], "strategy": plan.strategy}

    def compute(self, xp: Any, x: Any, w: Any, plan: core.Plan) -> Any:
        return core.gconv_fft(xp, x, w, plan, xp.fft)


KERNELS: list[Kernel] = [GconvDirectCupy(), GconvFFTCupy()]

from symbench.groups import equivariance as _equivariance  # noqa: E402  the verify suite of lift/gconv kernels

_equivariance.register()
