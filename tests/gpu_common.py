"""Shared pieces of the GPU tests: cases, tolerances, the CUDA emulator and a NumPy stand-in for CuPy.

The GPU tests come in three tiers, one file each:

- ``test_gpu_numerics.py``: the array-namespace code the GPU kernels run
  (``xp_conv``), with NumPy, and the CUDA source of ``direct-cupy`` compiled
  with g++ and a small CUDA shim (threads as std::threads, ``__syncthreads``
  as a barrier) against SciPy; where nvcc or NVRTC is installed, that it
  compiles for sm_90;
- ``test_gpu_standin.py``: the device layer (CUDA-event clock, L2 flush,
  memory checks, device facts) and the kernels' prepare/call/result/close
  against the NumPy-backed stand-in for CuPy below, so the wiring runs end to
  end; and, without a GPU, that the GPU kernels are listed unavailable with a
  reason and that a sweep asking for one exits cleanly;
- ``test_gpu_device.py``: tests marked ``gpu``, the real thing, skipped
  without a CUDA GPU.
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from conftest import ROOT, gpu_available
from synth import random_inputs
from symbench.machine import gpu
from symbench.kernels import cupy_conv, registry
from symbench.kernels.impl.xp_conv import (CUFFT_PRIMES, DirectTiles, FFTConvPlan, channel_mac, direct_conv_bytes,
                                      direct_launch, fft_conv, fft_conv_bytes, fft_lengths, next_smooth)
from symbench.problem import Problem, conv_out_shape, make_inputs, tolerance_for
from symbench.reference import conv_reference, rel_err

HAVE_GPU = gpu_available()
GPU_KERNELS = ("direct-cupy", "fft-cupy", "gconv-direct-cupy", "gconv-fft-cupy")
CONV_GPU_KERNELS = ("direct-cupy", "fft-cupy")


def tol(x: np.ndarray, h: np.ndarray) -> float:
    sx, sh = x.shape[2:], h.shape[2:]
    return tolerance_for(str(x.dtype), x.shape[1] * math.prod(sh), math.prod(a + b - 1 for a, b in zip(sx, sh)))


#: (x_shape, h_shape) cases: n or k of 1, even k, k > n (SciPy's swap in valid),
#: non-square 2-D, batch with channels.
CASES = [
    ((1, 1, 1), (1, 1, 1)),
    ((1, 1, 1), (1, 1, 4)),
    ((1, 1, 16), (1, 1, 4)),
    ((1, 1, 33), (1, 1, 7)),
    ((1, 1, 5), (1, 1, 12)),
    ((2, 3, 20), (2, 3, 5)),
    ((1, 1, 9, 9), (1, 1, 3, 3)),
    ((1, 1, 7, 12), (1, 1, 3, 4)),
    ((1, 1, 4, 4), (1, 1, 7, 7)),
    ((2, 2, 8, 8), (3, 2, 3, 3)),
]


def valid_ok(xs: tuple[int, ...], hs: tuple[int, ...]) -> bool:
    sx, sh = xs[2:], hs[2:]
    return all(a >= b for a, b in zip(sx, sh)) or all(b >= a for a, b in zip(sx, sh))



# == the CUDA source on the CPU (g++ + shim) ======================================================

CU = ROOT / "symbench" / "kernels" / "impl" / "direct_conv.cu"
SMALL = DirectTiles(tile1=8, rpt1=2, kc1=4, tx2=4, ty2=2, rx2=2, ry2=3, kc2=3)
_BUILD_LOCK = threading.Lock()


def build_emulator(code: str, defines: tuple[str, ...], where: Path) -> Path:
    """Compile ``code`` (``typedef ... T;`` + kernel source) into the CPU emulator; cached by content."""
    import hashlib

    shim = (ROOT / "tests" / "cuda_emu.cpp").read_text()
    src = shim.replace("// @@KERNEL@@", code)
    key = hashlib.sha1((src + " ".join(defines)).encode()).hexdigest()[:16]
    exe = where / f"emu-{key}"
    with _BUILD_LOCK:
        if not exe.exists():
            cpp = where / f"emu-{key}.cpp"
            cpp.write_text(src)
            cmd = ["g++", "-std=c++20", "-O1", "-pthread", "-Wno-unknown-pragmas", *defines, str(cpp), "-o", str(exe)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr[-3000:]
    return exe


def run_emulator(exe: Path, kernel: str, grid: tuple, block: tuple, ints: tuple, x: np.ndarray, h: np.ndarray,
                 y_size: int, dtype: np.dtype, where: Path) -> np.ndarray:
    tag = f"{os.getpid()}-{threading.get_ident()}"
    xf, hf, yf = (where / f"{n}-{tag}.bin" for n in "xhy")
    np.ascontiguousarray(x, dtype=dtype).tofile(xf)
    np.ascontiguousarray(h, dtype=dtype).tofile(hf)
    args = [str(exe), kernel, *map(str, grid), *map(str, block), str(len(ints)), *map(str, ints),
            str(xf), str(hf), str(yf), str(y_size)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return np.fromfile(yf, dtype=dtype)



def emulate_direct(x: np.ndarray, h: np.ndarray, mode: str, tiles: DirectTiles, where: Path) -> np.ndarray:
    dtype = np.result_type(x, h)
    code = f"typedef {cupy_conv._CTYPES[dtype.name]} T;\n" + CU.read_text()
    exe = build_emulator(code, tiles.defines(), where)
    L = direct_launch(x.shape, h.shape, mode, tiles)
    y = run_emulator(exe, L.kernel, L.grid, L.block, L.ints, x, h, math.prod(L.out_shape), dtype, where)
    return y.reshape(L.out_shape)


# == the device layer and the kernels against a NumPy stand-in for CuPy ===========================

class FakeDevice:
    """A virtual GPU timeline: work advances ``now``; events read it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.memsets: list[tuple[int, int]] = []
        self.free = 80 * 2**30
        self.pool_free = 2**30
        self.released = 0


class FakeEvent:
    def __init__(self, dev: FakeDevice) -> None:
        self.dev, self.t = dev, None

    def record(self, stream: Any = None) -> None:
        self.t = self.dev.now

    def synchronize(self) -> None:
        pass


class FakePlanCache:
    def __init__(self) -> None:
        self.size, self.plans, self.cleared = 16, 0, 0

    def get_size(self) -> int:
        return self.size

    def set_size(self, n: int) -> None:
        self.size = n

    def get_curr_size(self) -> int:
        return self.plans

    def clear(self) -> None:
        self.plans, self.cleared = 0, self.cleared + 1


class FakePool:
    def __init__(self, dev: FakeDevice) -> None:
        self.dev = dev

    def free_bytes(self) -> int:
        return self.dev.pool_free

    def free_all_blocks(self) -> None:
        self.dev.released += 1


class PtrArray(np.ndarray):
    """An ndarray with CuPy's ``a.data.ptr``."""

    @property
    def data(self) -> SimpleNamespace:  # type: ignore[override]
        return SimpleNamespace(ptr=self.ctypes.data)


def make_fake_cupy(emu_where: Path | None = None) -> SimpleNamespace:
    """Enough of CuPy's API, backed by NumPy, to run symbench's GPU kernels on a CPU.

    ``RawModule`` compiles the CUDA source it is given with the g++ emulator
    (when ``emu_where`` is set), so ``direct-cupy`` runs its real kernel code.
    """
    dev = FakeDevice()
    cache = FakePlanCache()
    pool = FakePool(dev)

    def counting(fn):  # each transform "plans" once into the cache
        def wrapped(*a, **k):
            cache.plans = max(cache.plans, 1)
            return fn(*a, **k)
        return wrapped

    class RawModule:
        def __init__(self, code: str, options: tuple = ()) -> None:
            assert emu_where is not None
            self.code, self.options = code, options
            self.exe = build_emulator(code, tuple(options), emu_where)
            self.dtype = np.float32 if code.startswith("typedef float T;") else np.float64

        def get_function(self, name: str):
            def launch(grid: tuple, block: tuple, args: tuple) -> None:
                x, h, y, *ints = args
                assert all(isinstance(v, np.int32) for v in ints)
                y[...] = run_emulator(self.exe, name, grid, block, tuple(int(v) for v in ints), x, h,
                                      y.size, self.dtype, emu_where).reshape(y.shape)
            return launch

    runtime = SimpleNamespace(
        getDeviceCount=lambda: 1,
        memGetInfo=lambda: (dev.free, 141 * 2**30),
        memsetAsync=lambda ptr, value, size, stream: (dev.memsets.append((value, size)),
                                                      setattr(dev, "now", dev.now + 1.0)),
        cudaDevAttrL2CacheSize=89,
        deviceGetAttribute=lambda attr, i: 50 * 2**20,
        getDeviceProperties=lambda i: {"name": b"Fake H200", "major": 9, "minor": 0,
                                       "totalGlobalMem": 141 * 2**30, "l2CacheSize": 50 * 2**20,
                                       "multiProcessorCount": 132},
        driverGetVersion=lambda: 13000,
        runtimeGetVersion=lambda: 12090,
    )
    stream = SimpleNamespace(ptr=0, synchronize=lambda: None)
    cuda = SimpleNamespace(
        runtime=runtime, Event=lambda: FakeEvent(dev), get_current_stream=lambda: stream,
        get_elapsed_time=lambda s, e: (e.t - s.t) * 1e3, Device=lambda: SimpleNamespace(id=0),
        cufft=SimpleNamespace(getVersion=lambda: 11405), nvrtc=SimpleNamespace(getVersion=lambda: (12, 9)),
        cublas=SimpleNamespace(),
    )
    fft = SimpleNamespace(rfftn=counting(np.fft.rfftn), irfftn=np.fft.irfftn, fftn=counting(np.fft.fftn),
                          ifftn=np.fft.ifftn, rfft=counting(np.fft.rfft), fft=counting(np.fft.fft),
                          irfft2=counting(np.fft.irfft2), config=SimpleNamespace(get_plan_cache=lambda: cache))
    return SimpleNamespace(
        __version__="14.0.fake", cuda=cuda, fft=fft, RawModule=RawModule,
        asarray=np.asarray, ascontiguousarray=np.ascontiguousarray, asnumpy=lambda a: np.array(a, copy=True),
        empty=lambda shape, dtype=float: np.empty(shape, dtype=dtype).view(PtrArray), uint8=np.uint8, matmul=np.matmul, result_type=np.result_type,
        # what the group kernels' core (gconv_core) uses besides the above
        zeros=np.zeros, take=np.take, stack=np.stack, conj=np.conj,
        lib=SimpleNamespace(stride_tricks=SimpleNamespace(as_strided=np.lib.stride_tricks.as_strided)),
        get_default_memory_pool=lambda: pool, get_default_pinned_memory_pool=lambda: pool,
        _dev=dev, _cache=cache,
    )


