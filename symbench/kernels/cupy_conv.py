"""Convolution on an NVIDIA GPU through CuPy: ``fft-cupy`` (cuFFT) and ``direct-cupy`` (a raw CUDA kernel).

Both kernels get their inputs copied to the device in ``prepare`` (set-up,
reported in ``setup_s``) and are timed with CUDA events
(:class:`symbench.machine.gpu.CudaEventClock`) on the current stream; ``result``
copies the output back to the host. ``close`` drops the device arrays, the
cached cuFFT plans and CuPy's cached memory blocks, so each problem starts
from an empty pool.

- ``fft-cupy`` runs :func:`symbench.kernels.impl.xp_conv.fft_conv` with
  ``xp = cupy``: real transforms (R2C/C2R; complex ones for complex data) at
  2,3,5,7-smooth lengths (even on the last axis), both operands transformed on
  every call, channels multiply-accumulated in frequency with one batched
  GEMM. The cuFFT plans are created by the warm-up call in ``prepare`` and
  reused from CuPy's plan cache by every timed call.
- ``direct-cupy`` launches ``direct_conv.cu`` (compiled with NVRTC through
  :class:`cupy.RawModule`, once per dtype and process, in ``prepare``): a
  shared-memory tiled direct convolution in 1-D and 2-D for float32 and float64,
  which computes only the outputs of the mode, with batch and channels in one
  launch. Complex dtypes are not implemented and give ``skipped`` rows.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import numpy as np

from symbench.machine import gpu
from symbench.kernels.base import Kernel, KernelOptions, Prepared
from symbench.kernels.impl.xp_conv import (MAX_GRID_YZ, DirectTiles, FFTConvPlan, direct_conv_bytes,
                                      direct_launch, fft_conv, fft_conv_bytes, is_plain_shape)
from symbench.problem import Problem

CUDA_SOURCE = Path(__file__).parent / "impl" / "direct_conv.cu"
TILES = DirectTiles()
_CTYPES = {"float32": "float", "float64": "double"}


class CupyKernel(Kernel):
    """What every CuPy kernel shares: availability, device memory, the clock and the clean-up."""

    requires = ("cupy",)  # recorded in run.json; availability is the GPU probe below

    device = "gpu"
    library = "CuPy"
    #: CUDA libraries (beyond the runtime) the kernel needs: "cufft", "nvrtc".
    cuda_libraries: tuple[str, ...] = ()

    def _check_available(self) -> str | None:
        reason = gpu.unavailable_reason()
        if reason is None:
            for lib in self.cuda_libraries:
                reason = gpu.library_reason(lib)
                if reason:
                    break
        return reason

    def device_bytes(self, problem: Problem) -> int:
        """Estimated peak device bytes of one call (inputs, output, temporaries)."""
        raise NotImplementedError

    def memory_bytes(self, problem: Problem) -> int:
        return self.device_bytes(problem)

    def host_memory_bytes(self, problem: Problem) -> int:
        # On the host: the inputs, the float64 reference and the copied-back result.
        return problem.memory_bytes() + np.dtype(problem.dtype).itemsize * math.prod(problem.out_shape)

    def device_memory_check(self, problem: Problem) -> str | None:
        return gpu.memory_check(self.device_bytes(problem))

    def finish(self, call: Any, result: Any, holder: dict[str, Any], options: KernelOptions,
               notes: dict[str, Any]) -> Prepared:
        """Warm up (first-call costs go to set-up), then wrap the call with its clock and clean-up."""
        call()
        gpu.synchronize()
        clock = gpu.CudaEventClock(gpu.L2Flusher() if options.flush_l2 else None)
        notes = {**notes, "flush_l2": bool(options.flush_l2)}

        def close() -> None:
            clock.close()
            holder.clear()  # drop the device arrays before returning the pool's blocks
            gpu.clear_fft_plans()
            gpu.release_memory()

        return Prepared(call, result, clock=clock, close=close, notes=notes)


def _upload(cp: Any, a: np.ndarray) -> Any:
    """A C-contiguous device copy (inputs may be strided views)."""
    return cp.asarray(np.ascontiguousarray(a))


class FFTCupy(CupyKernel):
    name = "fft-cupy"
    method = "fft"
    library = "CuPy cuFFT"
    # CuPy compiles its element-wise kernels (the spectrum product, padding) with NVRTC.
    cuda_libraries = ("cufft", "nvrtc")
    description = ("cuFFT through cupy.fft: real transforms (complex for complex data) at 2,3,5,7-smooth "
                   "lengths, plans made in set-up and reused from CuPy's plan cache, both operands "
                   "transformed every call, channels multiply-accumulated in frequency (batched GEMM).")

    def supports(self, problem: Problem) -> str | None:
        reason = super().supports(problem)
        if reason is None and not is_plain_shape(problem.x_shape, problem.h_shape):
            lib = gpu.library_reason("cublas")  # the channel sum is a batched GEMM
            if lib:
                reason = f"{self.name} needs cuBLAS for batch and channels: {lib}"
        return reason

    def device_bytes(self, problem: Problem) -> int:
        plan = FFTConvPlan.make(problem.x_shape, problem.h_shape, problem.mode, real=not problem.is_complex)
        item = np.dtype(problem.dtype).itemsize
        return problem_io_bytes(problem) + fft_conv_bytes(problem.x_shape, problem.h_shape, plan, item)

    def prepare(self, problem: Problem, x: np.ndarray, h: np.ndarray,
                options: KernelOptions = KernelOptions()) -> Prepared:
        cp = gpu.cupy()
        with gpu.freeing_on_error():
            cache = gpu.plan_cache()
            size = cache.get_size()
            if 0 <= size < 4:  # a disabled (or tiny) cache would re-plan on every call
                cache.set_size(16)
            real = not (np.iscomplexobj(x) or np.iscomplexobj(h))
            plan = FFTConvPlan.make(x.shape, h.shape, problem.mode, real=real)
            holder: dict[str, Any] = {"x": _upload(cp, x), "h": _upload(cp, h)}

            def call() -> None:
                holder["y"] = fft_conv(cp, holder["x"], holder["h"], plan)

            def result() -> np.ndarray:
                return cp.asnumpy(holder["y"])

            prepared = self.finish(call, result, holder, options, {"fft_shape": plan.shape, "real": real})
            prepared.notes["cufft_plans_cached"] = cache.get_curr_size()
            return prepared


def problem_io_bytes(problem: Problem) -> int:
    """Device bytes of the inputs and the output in the problem's dtype."""
    item = np.dtype(problem.dtype).itemsize
    return item * (math.prod(problem.x_shape) + math.prod(problem.h_shape) + math.prod(problem.out_shape))


_MODULES: dict[str, Any] = {}
_MODULES_LOCK = threading.Lock()


def compiled_module(dtype: str, tiles: DirectTiles = TILES) -> Any:
    """``direct_conv.cu`` compiled for ``dtype`` (NVRTC, once per process; CuPy also caches on disk)."""
    key = f"{dtype}:{tiles}"
    with _MODULES_LOCK:
        module = _MODULES.get(key)
        if module is None:
            cp = gpu.cupy()
            source = f"typedef {_CTYPES[dtype]} T;\n" + CUDA_SOURCE.read_text()
            module = cp.RawModule(code=source, options=tiles.defines())
            for name in ("conv1d", "conv2d"):
                module.get_function(name)  # compiles now, in set-up, not at the first timed call
            _MODULES[key] = module
        return module


class DirectCupy(CupyKernel):
    name = "direct-cupy"
    method = "direct"
    library = "CuPy RawKernel"
    dtypes = ("float32", "float64")
    cuda_libraries = ("nvrtc",)
    description = ("A CUDA kernel (cupy.RawModule): shared-memory tiled direct convolution, 1-D and 2-D, "
                   "batch and channels in one launch, only the outputs of the mode computed; float32/float64.")

    def supports(self, problem: Problem) -> str | None:
        reason = super().supports(problem)
        if reason is None and (problem.batch > MAX_GRID_YZ or problem.c_out > MAX_GRID_YZ):
            reason = f"{self.name} supports batch and c_out up to {MAX_GRID_YZ} (the CUDA grid limit)"
        return reason

    def device_bytes(self, problem: Problem) -> int:
        return direct_conv_bytes(problem.x_shape, problem.h_shape, problem.mode,
                                 np.dtype(problem.dtype).itemsize)

    def prepare(self, problem: Problem, x: np.ndarray, h: np.ndarray,
                options: KernelOptions = KernelOptions()) -> Prepared:
        cp = gpu.cupy()
        dtype = np.result_type(x, h)
        if dtype.name not in _CTYPES:
            raise TypeError(f"{self.name} supports float32 and float64, not {dtype.name}")
        with gpu.freeing_on_error():
            launch = direct_launch(x.shape, h.shape, problem.mode, TILES)
            fn = compiled_module(dtype.name).get_function(launch.kernel)
            holder: dict[str, Any] = {"x": _upload(cp, x.astype(dtype, copy=False)),
                                      "h": _upload(cp, h.astype(dtype, copy=False)),
                                      "y": cp.empty(launch.out_shape, dtype=dtype)}
            # Raw kernels take C ints: CuPy would pass Python ints as 64-bit. The
            # arguments live in `holder` so that close() really drops the arrays.
            holder["args"] = (holder["x"], holder["h"], holder["y"], *(np.int32(v) for v in launch.ints))
            grid, block = launch.grid, launch.block

            def call() -> None:
                fn(grid, block, holder["args"])

            def result() -> np.ndarray:
                return cp.asnumpy(holder["y"])

            notes = {"grid": grid, "block": block, "shared_bytes": TILES.shared_bytes(problem.dim, dtype.itemsize)}
            return self.finish(call, result, holder, options, notes)



KERNELS: list[Kernel] = [DirectCupy(), FFTCupy()]
