"""p4/p4m group convolution kernels on the CPU: ``gconv-direct``, ``gconv-fft`` (and its ablation).

The numerics live in :mod:`symbench.kernels.impl.gconv_core` (written against an
array namespace, so the CuPy kernels call the same functions); this module
wraps them as kernels: it builds the plan in ``prepare`` (not timed) and times
one layer evaluation per call, from the canonical inputs to the canonical
output. Every call transforms the filters (the gather of the index arrays, and
for the FFT methods their transforms) as a CNN layer whose weights change
would; only the index arrays are precomputed.

Importing this module also registers the equivariance suite of
``symbench verify`` (:mod:`symbench.groups.equivariance`) for every lift/gconv kernel.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from symbench.kernels.impl import gconv_core as core
from symbench.numerics import fast_len
from symbench.kernels.base import Kernel, KernelOptions, Prepared, result_of
from symbench.problem import GROUP_MODES, Problem


class _GroupKernel(Kernel):
    requires = ("scipy",)
    ops = ("lift", "gconv")
    groups = ("p4", "p4m")
    dims = (2,)
    dtypes = ("float32", "float64")
    modes = GROUP_MODES
    device = "cpu"
    uses_fft: ClassVar[bool] = False

    def plan(self, problem: Problem, x: np.ndarray, h: np.ndarray) -> core.Plan:
        return core.make_plan(problem.group, problem.op, x.shape, h.shape, problem.mode,
                              fft=self.uses_fft, itemsize=np.dtype(problem.dtype).itemsize)

    def compute(self, x: np.ndarray, h: np.ndarray, plan: core.Plan) -> np.ndarray:
        raise NotImplementedError

    def prepare(self, problem: Problem, x: np.ndarray, h: np.ndarray,
                options: KernelOptions = KernelOptions()) -> Prepared:
        dtype = np.result_type(x, h)
        x = np.ascontiguousarray(x, dtype=dtype)
        h = np.ascontiguousarray(h, dtype=dtype)
        plan = self.plan(problem, x, h)
        state: dict[str, np.ndarray] = {}
        compute = self.compute

        def call() -> None:
            state["y"] = compute(x, h, plan)

        notes: dict[str, Any] = ({"fft_shape": [plan.N, plan.N], "strategy": plan.strategy} if self.uses_fft
                                 else {"gemms": len(plan.tap_rows)})
        return Prepared(call, result_of(state), notes=notes)


class GconvDirect(_GroupKernel):
    name = "gconv-direct"
    method = "direct"
    library = "symbench (NumPy im2col + BLAS GEMM)"
    description = ("p4/p4m lift and group conv: filters transformed by one precomputed gather, then one "
                   "im2col GEMM over the stacked C_out*|G| filters (split by filter rows above 64 MiB).")

    def memory_bytes(self, problem: Problem) -> int:
        x_shape, h_shape = problem.x_shape, problem.h_shape
        plan = core.make_plan(problem.group, problem.op, x_shape, h_shape, problem.mode, fft=False,
                              itemsize=np.dtype(problem.dtype).itemsize)
        extra = core.direct_workspace_bytes(plan, problem.batch, problem.c_out, np.dtype(problem.dtype).itemsize)
        return problem.memory_bytes() + extra

    def compute(self, x: np.ndarray, h: np.ndarray, plan: core.Plan) -> np.ndarray:
        return core.gconv_direct(np, x, h, plan)


class GconvFFT(_GroupKernel):
    name = "gconv-fft"
    method = "fft"
    library = "symbench (scipy.fft)"
    uses_fft = True
    shared: ClassVar[bool] = True
    description = ("p4/p4m lift and group conv by real FFTs (scipy.fft): input and filters transformed once per "
                   "call and shared by all |G| elements; rotations are precomputed index permutations in "
                   "frequency (of the filter spectra, or of the input spectrum when cheaper); channels summed "
                   "in frequency by a batched matmul.")

    def memory_bytes(self, problem: Problem) -> int:
        G = problem.group_order
        gin = G if problem.op == "gconv" else 1
        pad = problem.k - 1 if problem.mode == "same" else 0
        N = fast_len(problem.n + pad)
        out_el = math.prod(problem.out_shape)
        extra = core.fft_workspace_bytes(G, gin, problem.batch, problem.c_in, problem.c_out, N, out_el,
                                         np.dtype(problem.dtype).itemsize, self.shared)
        return problem.memory_bytes() + extra

    def compute(self, x: np.ndarray, h: np.ndarray, plan: core.Plan) -> np.ndarray:
        import scipy.fft

        return core.gconv_fft(np, x, h, plan, scipy.fft)


class GconvFFTUnshared(GconvFFT):
    name = "gconv-fft-unshared"
    shared = False
    description = ("Ablation of gconv-fft: |G| independent real-FFT correlations (scipy.fft), each transforming "
                   "the input and its own rotated filter bank; measures what gconv-fft's sharing saves.")

    def compute(self, x: np.ndarray, h: np.ndarray, plan: core.Plan) -> np.ndarray:
        import scipy.fft

        return core.gconv_fft_unshared(np, x, h, plan, scipy.fft)


KERNELS: list[Kernel] = [GconvDirect(), GconvFFT(), GconvFFTUnshared()]

from symbench.groups import equivariance as _equivariance  # noqa: E402  registers the verify suite

_equivariance.register()
