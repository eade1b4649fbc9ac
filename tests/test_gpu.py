"""GPU kernels (CuPy): what can be checked on any machine, and what needs a GPU.

Without a GPU (the usual case in CI) these tests check

- the array-namespace code the GPU kernels run (``xp_conv``), with NumPy;
- the CUDA source of ``direct-cupy``, compiled with g++ and a small CUDA shim
  (threads as std::threads, ``__syncthreads`` as a barrier), against SciPy;
  and, where nvcc or NVRTC is installed, that it compiles for sm_90;
- the device layer (CUDA-event clock, L2 flush, memory checks, device facts)
  and the kernels' prepare/call/result/close against a NumPy-backed stand-in
  for CuPy, so the wiring runs end to end;
- that the GPU kernels are listed as unavailable with a reason, that a sweep
  asking for one exits cleanly, and that symbench works without pyFFTW,
  threadpoolctl and platformdirs (the GPU image).

Tests marked ``gpu`` run the real thing and are skipped without a CUDA GPU.
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


def _tol(x: np.ndarray, h: np.ndarray) -> float:
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


def _valid_ok(xs: tuple[int, ...], hs: tuple[int, ...]) -> bool:
    sx, sh = xs[2:], hs[2:]
    return all(a >= b for a, b in zip(sx, sh)) or all(b >= a for a, b in zip(sx, sh))


# == the array-namespace code, with NumPy ========================================================

def _is_smooth(v: int, primes: tuple[int, ...]) -> bool:
    for p in primes:
        while v % p == 0:
            v //= p
    return v == 1


def test_next_smooth_is_the_smallest_7_smooth_length() -> None:
    for n in range(1, 2100):
        got = next_smooth(n)
        assert got >= n and _is_smooth(got, CUFFT_PRIMES)
        assert all(not _is_smooth(v, CUFFT_PRIMES) for v in range(n, got)), n
        even = next_smooth(n, even=True)
        assert even >= n and even % 2 == 0 and _is_smooth(even, CUFFT_PRIMES)
        assert all(not (_is_smooth(v, CUFFT_PRIMES) and v % 2 == 0) for v in range(n, even)), n
    assert next_smooth(1025) == 1029 == 3 * 7 * 7 * 7
    big = next_smooth(2**24 + 1024)  # the largest 1-D transform of configs/gpu.toml
    assert _is_smooth(big, CUFFT_PRIMES) and not any(_is_smooth(v, CUFFT_PRIMES) for v in range(2**24 + 1024, big))
    assert next_smooth(11, primes=(2,)) == 16
    with pytest.raises(ValueError):
        next_smooth(0)


def test_fft_lengths_keep_the_real_last_axis_even() -> None:
    assert fft_lengths((98,), (3,), real=True) == (100,)
    assert fft_lengths((100,), (4,), real=True) == (108,)   # 103 -> 105 is odd -> 108
    assert fft_lengths((100,), (4,), real=False) == (105,)
    assert fft_lengths((9, 9), (3, 3), real=True) == (12, 12)    # 11 -> 12 on both axes
    assert fft_lengths((10, 7), (4, 3), real=True) == (14, 10)   # 13 -> 14; 9 -> 10 (even, last axis)
    assert fft_lengths((10, 7), (4, 3), real=False) == (14, 9)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}*{c[1]}")
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128"])
def test_fft_conv_with_numpy_matches_scipy(case: tuple, dtype: str) -> None:
    xs, hs = case
    x, h = random_inputs(xs, hs, dtype)
    for mode in ("full", "same", "valid"):
        if mode == "valid" and not _valid_ok(xs, hs):
            continue
        plan = FFTConvPlan.make(x.shape, h.shape, mode, real=not dtype.startswith("complex"))
        y = fft_conv(np, x, h, plan)
        ref = conv_reference(x, h, mode)
        assert y.shape == ref.shape
        assert y.dtype == np.dtype(dtype)  # float32 stays float32
        assert rel_err(y, ref) <= _tol(x, h), (mode, rel_err(y, ref))


def test_fft_conv_takes_strided_inputs() -> None:
    big, h = random_inputs((1, 1, 80), (1, 1, 6), "float64")
    x = big[..., ::2]
    plan = FFTConvPlan.make(x.shape, h.shape, "same", real=True)
    assert rel_err(fft_conv(np, x, h, plan), conv_reference(x, h, "same")) < 1e-13


def test_channel_mac_sums_channels_in_frequency() -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3, 4, 5, 6)) + 1j * rng.standard_normal((3, 4, 5, 6))
    H = rng.standard_normal((2, 4, 5, 6)) + 1j * rng.standard_normal((2, 4, 5, 6))
    want = np.einsum("bi...,oi...->bo...", X, H)
    got = channel_mac(np, X, H)
    assert got.shape == (3, 2, 5, 6) and got.flags.c_contiguous
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_array_equal(channel_mac(np, X[:1, :1], H[:1, :1]), X[:1, :1] * H[:1, :1])


def test_spectrum_shape_and_crop() -> None:
    plan = FFTConvPlan.make((2, 3, 10, 7), (4, 3, 4, 3), "valid", real=True)
    assert plan.shape == (14, 10) and plan.spectrum_shape == (14, 6) and plan.axes == (2, 3)
    assert plan.crop[2:] == (slice(3, 10), slice(2, 7))
    assert FFTConvPlan.make((1, 1, 5), (1, 1, 12), "valid", real=False).crop[2:] == (slice(4, 12),)
    with pytest.raises(ValueError):
        FFTConvPlan.make((1, 1, 5), (1, 1, 3, 3), "full", real=True)


def test_fft_conv_bytes_counts_the_temporaries() -> None:
    plain = FFTConvPlan.make((1, 1, 1000), (1, 1, 25), "full", real=True)
    # 1024-point real transform: padded x, h (2 * 1024 * 8), three 513-bin spectra + one work area
    # (4 * 513 * 16), full output (1024 * 8).
    assert fft_conv_bytes((1, 1, 1000), (1, 1, 25), plain, 8) == 2 * 1024 * 8 + 4 * 513 * 16 + 1024 * 8
    chan = FFTConvPlan.make((2, 3, 1000), (4, 3, 25), "full", real=True)
    assert fft_conv_bytes((2, 3, 1000), (4, 3, 25), chan, 4) > 6 * fft_conv_bytes((1, 1, 1000), (1, 1, 25), plain, 4)
    assert direct_conv_bytes((2, 3, 100), (4, 3, 5), "same", 4) == 4 * (600 + 60 + 800)


def test_direct_launch_geometry() -> None:
    tiles = DirectTiles()
    L = direct_launch((2, 3, 5000), (4, 3, 33), "full", tiles)
    assert L.kernel == "conv1d" and L.out_shape == (2, 4, 5032)
    assert L.grid == (math.ceil(5032 / 1024), 4, 2) and L.block == (256, 1, 1)
    assert L.ints == (2, 3, 4, 5000, 33, 5032, 0)
    same = direct_launch((1, 1, 100), (1, 1, 8), "same", tiles)
    assert same.ints[-1] == 3 and same.out_shape[-1] == 100          # (k - 1) // 2, as SciPy
    swap = direct_launch((1, 1, 5), (1, 1, 12), "valid", tiles)
    assert swap.ints[-1] == 4 and swap.out_shape[-1] == 8             # SciPy swaps: 12 - 5 + 1 outputs
    L2 = direct_launch((1, 2, 70, 40), (3, 2, 5, 4), "valid", tiles)
    assert L2.kernel == "conv2d" and L2.out_shape == (1, 3, 66, 37)
    assert L2.grid == (math.ceil(66 / 32) * math.ceil(37 / 32), 3, 1) and L2.block == (16, 16, 1)
    assert L2.ints == (1, 2, 3, 70, 40, 5, 4, 66, 37, 4, 3, math.ceil(37 / 32))
    with pytest.raises(ValueError, match="65535"):
        direct_launch((70000, 1, 10), (1, 1, 3), "full", tiles)
    with pytest.raises(ValueError, match="channels"):
        direct_launch((1, 2, 10), (1, 3, 3), "full", tiles)
    for shape in [(1, 1, 1), (1, 1, 3000)]:
        for k in (1, 7, 300):
            for mode in ("full", "same", "valid"):
                L = direct_launch(shape, (1, 1, k), mode, tiles)
                assert L.out_shape[2:] == conv_out_shape(shape[2:], (k,), mode)
                assert L.grid[0] * tiles.out1 >= L.out_shape[-1] > (L.grid[0] - 1) * tiles.out1


def test_tiles_fit_in_static_shared_memory() -> None:
    tiles = DirectTiles()
    for dim, item in itertools.product((1, 2), (4, 8)):
        assert tiles.shared_bytes(dim, item) <= 48 * 1024  # the static limit without opt-in
    assert tiles.shared_bytes(2, 4) == 9860 and tiles.shared_bytes(1, 8) == 12280  # as ptxas reports
    assert "-DKC2=16" in tiles.defines()


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


@pytest.fixture(scope="session")
def emu_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed: the CUDA source cannot be emulated here")
    return tmp_path_factory.mktemp("cuda-emu")


def emulate_direct(x: np.ndarray, h: np.ndarray, mode: str, tiles: DirectTiles, where: Path) -> np.ndarray:
    dtype = np.result_type(x, h)
    code = f"typedef {cupy_conv._CTYPES[dtype.name]} T;\n" + CU.read_text()
    exe = build_emulator(code, tiles.defines(), where)
    L = direct_launch(x.shape, h.shape, mode, tiles)
    y = run_emulator(exe, L.kernel, L.grid, L.block, L.ints, x, h, math.prod(L.out_shape), dtype, where)
    return y.reshape(L.out_shape)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("tiles", [SMALL, DirectTiles()], ids=["small-tiles", "default-tiles"])
def test_cuda_direct_kernel_emulated_matches_scipy(emu_dir: Path, dtype: str, tiles: DirectTiles) -> None:
    cases = CASES + [((1, 1, 50), (1, 1, 9)), ((2, 2, 11, 13), (2, 2, 7, 5)), ((1, 1, 3, 3), (1, 1, 9, 9))]
    if tiles == SMALL:  # several tiles and several filter chunks per axis
        cases += [((1, 2, 37), (2, 2, 10)), ((1, 1, 17, 19), (1, 1, 7, 8))]
    for xs, hs in cases:
        x, h = random_inputs(xs, hs, dtype)
        for mode in ("full", "same", "valid"):
            if mode == "valid" and not _valid_ok(xs, hs):
                continue
            y = emulate_direct(x, h, mode, tiles, emu_dir)
            ref = conv_reference(x, h, mode)
            assert not np.isnan(y).any(), f"unwritten outputs for {xs}*{hs} {mode}"
            assert rel_err(y, ref) <= _tol(x, h), (xs, hs, mode, rel_err(y, ref))


def _compile_cmd_for(dtype: str, where: Path) -> Path:
    src = where / f"direct_conv_{dtype}.cu"
    src.write_text(f"typedef {cupy_conv._CTYPES[dtype]} T;\n" + CU.read_text())
    return src


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_cuda_source_compiles_with_nvcc_within_shared_memory(tmp_path: Path) -> None:
    tiles = DirectTiles()
    for dtype in ("float32", "float64"):
        src = _compile_cmd_for(dtype, tmp_path)
        done = subprocess.run(["nvcc", "-arch=sm_90", "-cubin", "-o", str(tmp_path / "k.cubin"),
                               "--ptxas-options=-v", *tiles.defines(), str(src)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        log = done.stdout + done.stderr
        assert "spill" not in log or "0 bytes spill stores" in log
        item = np.dtype(dtype).itemsize
        for dim in (1, 2):
            assert f"{tiles.shared_bytes(dim, item)} bytes smem" in log, log


def _nvrtc() -> Any:
    try:
        from cupy.cuda import nvrtc

        nvrtc.getVersion()
        return nvrtc
    except Exception:
        return None


@pytest.mark.skipif(_nvrtc() is None, reason="CuPy's NVRTC is not loadable here")
def test_cuda_source_compiles_with_nvrtc() -> None:
    nvrtc = _nvrtc()
    for dtype in ("float32", "float64"):
        code = f"typedef {cupy_conv._CTYPES[dtype]} T;\n" + CU.read_text()
        prog = nvrtc.createProgram(code, "direct_conv.cu", [], [])
        try:
            nvrtc.compileProgram(prog, ["-arch=compute_90", *DirectTiles().defines()])
        except Exception as exc:  # pragma: no cover - shows the compiler log
            pytest.fail(f"{exc}: {nvrtc.getProgramLog(prog)}")
        assert b"conv1d" in nvrtc.getPTX(prog) and b"conv2d" in nvrtc.getPTX(prog)


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


@pytest.fixture
def fake_cupy(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    where = tmp_path_factory.getbasetemp() / "cuda-emu-fake"
    where.mkdir(exist_ok=True)
    fake = make_fake_cupy(where if shutil.which("g++") else None)
    monkeypatch.setattr(gpu, "cupy", lambda: fake)
    gpu.assume(None)
    monkeypatch.setattr(cupy_conv, "_MODULES", {})  # never hand a fake module to a real run
    return fake


def test_event_clock_times_back_to_back_calls(fake_cupy: SimpleNamespace) -> None:
    dev = fake_cupy._dev
    clock = gpu.CudaEventClock()

    def call() -> None:
        dev.now += 0.25

    assert clock.measure(call, 4) == pytest.approx(1.0)
    assert clock.last_host_s is not None and clock.last_host_s >= 0
    assert clock.resolution_s < 1e-5


def test_event_clock_leaves_the_l2_flush_out_of_the_sample(fake_cupy: SimpleNamespace) -> None:
    dev = fake_cupy._dev
    flusher = gpu.L2Flusher()
    assert flusher.nbytes == 2 * 50 * 2**20  # twice the L2 the device reports
    clock = gpu.CudaEventClock(flusher)

    def call() -> None:
        dev.now += 0.25

    t0 = dev.now
    assert clock.measure(call, 5) == pytest.approx(1.25)   # five calls, no flush time
    assert dev.now - t0 == pytest.approx(5 * 1.25)         # while each flush took 1 s on the device
    assert len(dev.memsets) == 5 and {v for v, _ in dev.memsets} == {0, 1}
    assert clock.last_host_s is None


def test_event_clock_drives_the_shared_autorange(fake_cupy: SimpleNamespace) -> None:
    from symbench.sweep.timing import measure

    dev = fake_cupy._dev

    def call() -> None:
        dev.now += 2.0**-13  # about 122 us, exact in binary

    result = measure(call, gpu.CudaEventClock(), min_time=1e-3, repeat=3)
    assert result.measurement.loops == 10  # 5 calls are 0.61 ms, 10 are 1.22 ms
    assert result.measurement.samples == pytest.approx((2.0**-13,) * 3)
    assert len(result.measurement.host_samples) == 3


def test_device_facts_for_run_json(fake_cupy: SimpleNamespace) -> None:
    facts = gpu.device_facts()["gpu"]
    assert facts["model"] == "Fake H200" and facts["compute_capability"] == "9.0"
    assert facts["memory_total"] == 141 * 2**30 and facts["l2_cache_bytes"] == 50 * 2**20
    assert facts["cuda_driver"] == "13.0" and facts["cuda_runtime"] == "12.9"
    assert facts["cufft"] == "11.4.5" and facts["nvrtc"] == "12.9" and facts["cupy"] == "14.0.fake"
    from symbench.machine.environment import collect

    assert collect(devices=True)["gpu"]["model"] == "Fake H200"


def test_device_facts_without_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu.assume("no CUDA device: cudaErrorNoDevice")
    assert gpu.device_facts() == {"gpu": {"available": False, "reason": "no CUDA device: cudaErrorNoDevice"}}


def test_device_memory_check(fake_cupy: SimpleNamespace) -> None:
    fake_cupy._dev.free = 4 * 2**30  # + 1 GiB cached in the pool
    assert gpu.memory_check(2 * 2**30) is None
    reason = gpu.memory_check(5 * 2**30)
    assert reason and "5.00 GiB" in reason and "5.00 GiB free" in reason
    big = Problem(dim=1, n=2**29, k=3, dtype="float64")  # 8 GiB of x and y
    assert cupy_conv.DirectCupy().device_memory_check(big) is not None
    assert cupy_conv.DirectCupy().device_memory_check(Problem(dim=1, n=1024, k=3)) is None


def test_prepare_failure_frees_the_pool(fake_cupy: SimpleNamespace) -> None:
    dev, cache = fake_cupy._dev, fake_cupy._cache
    with pytest.raises(MemoryError):
        with gpu.freeing_on_error():
            raise MemoryError("out of memory allocating 1 bytes")
    assert dev.released >= 1 and cache.cleared == 1


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}*{c[1]}")
def test_fft_cupy_kernel_wiring_with_numpy_standin(fake_cupy: SimpleNamespace, case: tuple) -> None:
    kernel = cupy_conv.FFTCupy()
    assert kernel.available
    xs, hs = case
    for dtype, mode in itertools.product(("float32", "complex128"), ("full", "same", "valid")):
        if mode == "valid" and not _valid_ok(xs, hs):
            continue
        x, h = random_inputs(xs, hs, dtype)
        problem = Problem(dim=len(xs) - 2, n=max(xs[2:]), k=max(hs[2:]), batch=xs[0], c_in=xs[1],
                          c_out=hs[0], dtype=dtype, mode=mode)
        prepared = kernel.prepare(problem, x, h)
        assert isinstance(prepared.clock, gpu.CudaEventClock)
        assert fake_cupy._cache.get_curr_size() >= 1  # the warm-up made the plans in set-up
        prepared.call()
        y = prepared.result()
        prepared.close()
        assert fake_cupy._cache.get_curr_size() == 0  # close drops the cached plans
        assert y.dtype == np.dtype(dtype)
        assert rel_err(y, conv_reference(x, h, mode)) <= _tol(x, h)


def test_flush_l2_option_reaches_the_clock(fake_cupy: SimpleNamespace) -> None:
    from symbench.kernels.base import KernelOptions

    x, h = random_inputs((1, 1, 64), (1, 1, 5), "float64")
    for flush in (False, True):
        prepared = cupy_conv.FFTCupy().prepare(Problem(n=64, k=5), x, h, KernelOptions(flush_l2=flush))
        assert prepared.notes["flush_l2"] is flush
        assert (prepared.clock._flush is not None) is flush
        prepared.close()


def test_fft_cupy_reenables_a_disabled_plan_cache(fake_cupy: SimpleNamespace) -> None:
    fake_cupy._cache.size = 0
    x, h = random_inputs((1, 1, 64), (1, 1, 5), "float64")
    cupy_conv.FFTCupy().prepare(Problem(n=64, k=5), x, h).close()
    assert fake_cupy._cache.size == 16


def test_direct_cupy_runs_its_cuda_source_through_the_standin(fake_cupy: SimpleNamespace) -> None:
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    kernel = cupy_conv.DirectCupy()
    for xs, hs, mode, dtype in [((2, 3, 40), (2, 3, 7), "same", "float32"),
                                ((1, 1, 5), (1, 1, 12), "valid", "float64"),
                                ((1, 2, 20, 18), (3, 2, 5, 4), "full", "float64")]:
        x, h = random_inputs(xs, hs, dtype)
        problem = Problem(dim=len(xs) - 2, n=max(xs[2:]), k=max(hs[2:]), batch=xs[0], c_in=xs[1],
                          c_out=hs[0], dtype=dtype, mode=mode)
        y = kernel.run(problem, x, h)
        assert y.dtype == np.dtype(dtype)
        assert rel_err(y, conv_reference(x, h, mode)) <= _tol(x, h)
    assert kernel.supports(Problem(dtype="complex128")) is not None
    assert "65535" in kernel.supports(Problem(batch=70000))


def test_verify_passes_for_both_kernels_through_the_standin(fake_cupy: SimpleNamespace) -> None:
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    from symbench.verify import verify

    checks = verify([cupy_conv.FFTCupy(), cupy_conv.DirectCupy()])
    failed = [c for c in checks if c.failed]
    assert not failed, failed[:3]
    ran = {c.kernel for c in checks if c.status == "ok"}
    assert ran == {"fft-cupy", "direct-cupy"}
    assert not any(c.kernel == "direct-cupy" and "complex" in c.case for c in checks)


def test_sweep_with_gpu_kernels_through_the_standin(kernel_registry: dict, fake_cupy: SimpleNamespace, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    import pandas as pd

    from symbench.config import config_from_mapping
    from symbench.sweep.runner import run_sweep
    from symbench.sweep.timing import FakeClock

    for kernel in (cupy_conv.FFTCupy(), cupy_conv.DirectCupy()):
        registry.register(kernel)
    cfg = config_from_mapping({"repeat": 2, "grid": [
        {"kernel": ["fft-cupy", "direct-cupy"], "dim": 1, "n": "64", "k": "3,9", "dtype": "float32,complex64"},
        {"kernel": ["fft-cupy", "direct-cupy"], "dim": 2, "n": "12", "k": "3", "batch": 2, "c_in": 2,
         "c_out": 3, "mode": "same"},
    ]}, "test")
    result = run_sweep(cfg, tmp_path / "run", clock=FakeClock(1e-3), command=["test"])
    df = pd.read_csv(result.run_dir / "measurements.csv")
    ok = df[df.status == "ok"]
    assert set(ok.kernel) == {"fft-cupy", "direct-cupy"} and len(ok) == 8
    skipped = df[df.status == "skipped"]
    assert list(skipped.kernel) == ["direct-cupy", "direct-cupy"] and skipped.message.str.contains("complex64").all()
    assert ok.device.eq("gpu").all() and (ok.rel_err <= 1e-4).all()
    import json

    meta = json.loads((result.run_dir / "run.json").read_text())
    assert meta["environment"]["gpu"]["model"] == "Fake H200"


def test_runner_skips_what_does_not_fit_on_the_device(fake_cupy: SimpleNamespace, tmp_path: Path) -> None:
    from symbench.config import config_from_mapping
    from symbench.sweep.runner import Measurer

    fake_cupy._dev.free, fake_cupy._dev.pool_free = 2**20, 0
    m = Measurer(config_from_mapping({"grid": [{"n": "1024", "k": "3"}]}, "test"), "r")
    status, message = m.precheck(cupy_conv.FFTCupy(), Problem(dim=1, n=2**20, k=3))
    assert status == "skipped" and "device memory" in message


def test_runner_turns_a_device_oom_into_an_error_row_and_frees_the_pool(fake_cupy: SimpleNamespace,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from symbench.config import config_from_mapping
    from symbench.sweep.runner import Measurer, problem_inputs

    class OutOfMemoryError(Exception):
        pass

    def oom(*a: Any, **k: Any) -> Any:
        raise OutOfMemoryError("Out of memory allocating 1,024 bytes (allocated so far: 0 bytes).")

    monkeypatch.setattr(fake_cupy, "asarray", oom)
    problem = Problem(dim=1, n=256, k=5)
    m = Measurer(config_from_mapping({"grid": [{"n": "256", "k": "5"}]}, "test"), "r")
    released = fake_cupy._dev.released
    row, samples = m.measure(cupy_conv.FFTCupy(), problem, *problem_inputs(problem, 0))
    assert row["status"] == "error" and row["message"].startswith("OutOfMemoryError: Out of memory")
    assert samples == [] and fake_cupy._dev.released > released


def test_host_memory_of_gpu_kernels_counts_only_host_copies() -> None:
    p = Problem(dim=1, n=2**20, k=65, dtype="float32")
    k = cupy_conv.FFTCupy()
    assert k.host_memory_bytes(p) == p.memory_bytes() + 4 * math.prod(p.out_shape)
    assert k.memory_bytes(p) > k.host_memory_bytes(p) / 4  # the device estimate includes the spectra


# == without a GPU: listed unavailable, and sweeps say so cleanly =================================

@pytest.mark.skipif(HAVE_GPU, reason="a GPU is present")
def test_gpu_kernels_are_listed_unavailable_with_a_reason(cli) -> None:
    import json

    r = cli("kernels", "--json")
    assert r.code == 0
    rows = {row["name"]: row for row in json.loads(r.out)}
    for name in GPU_KERNELS:
        row = rows[name]
        assert row["device"] == "gpu" and row["available"] is False
        assert row["reason"] and "\n" not in row["reason"]


def test_no_cupy_gives_an_import_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ImportError
    gpu.assume(False)
    for kernel in (cupy_conv.FFTCupy(), cupy_conv.DirectCupy()):
        assert kernel.unavailable_reason().startswith("cannot import cupy: ModuleNotFoundError")
    assert gpu.device_facts()["gpu"]["available"] is False


def test_availability_is_probed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    gpu.assume(False)
    monkeypatch.setattr(gpu, "probe", lambda: calls.append(1) or "no CUDA device: test")
    for _ in range(3):
        assert gpu.unavailable_reason() == "no CUDA device: test"
    assert calls == [1]


def test_sweep_asking_only_for_a_gpu_kernel_exits_cleanly(cli, tmp_path: Path) -> None:
    r = cli("sweep", "--kernel", "fft-cupy", "--dim", "1", "--n", "1024", "--k", "3", "--quiet",
            "--repeat", "1", "--min-time", "0.0001", "--out", tmp_path / "g")
    assert r.code in (0, 2)
    assert "Traceback" not in r.out + r.err
    if not HAVE_GPU:
        assert r.code == 2
        assert r.err.count("\n") == 1 and "fft-cupy" in r.err and "no requested kernel can run" in r.err


@pytest.mark.skipif(HAVE_GPU, reason="a GPU is present")
def test_gpu_check_refuses_without_a_gpu(tmp_path: Path) -> None:
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu-check.sh"), str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "PYTHON": sys.executable})
    assert done.returncode != 0
    assert "no usable GPU" in done.stderr and "Traceback" not in done.stderr


def test_make_gpu_check_target_exists() -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    done = subprocess.run(["make", "-n", "gpu-check", "GPU_OUT=/tmp/x"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and "gpu-check.sh" in done.stdout


def test_symbench_runs_without_pyfftw_threadpoolctl_platformdirs() -> None:
    """The GPU image installs symbench with --no-deps: these three may be missing there."""
    code = r"""
import sys, json, io, contextlib
for name in ("pyfftw", "threadpoolctl", "platformdirs"):
    sys.modules[name] = None  # any import of them fails
from symbench.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    assert main(["kernels", "--json"]) == 0
rows = {r["name"]: r for r in json.loads(out.getvalue())}
assert rows["fft-pyfftw"]["available"] is False and "pyfftw" in rows["fft-pyfftw"]["reason"]
with contextlib.redirect_stdout(io.StringIO()):
    assert main(["info", "--json"]) == 0
    assert main(["verify", "--kernel", "fft-numpy"]) == 0
from symbench.paths import cache_dir
print(cache_dir())
"""
    env = {k: v for k, v in os.environ.items() if k != "SYMBENCH_CACHE_DIR"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("symbench")


# == on a GPU =====================================================================================

@pytest.mark.gpu
@pytest.mark.parametrize("name", CONV_GPU_KERNELS)
def test_gpu_kernel_matches_reference(name: str) -> None:
    kernel = registry.get(name)
    for xs, hs in CASES + [((4, 8, 64, 64), (8, 8, 5, 5)), ((1, 1, 2**16), (1, 1, 257))]:
        for dtype, mode in itertools.product(("float32", "float64"), ("full", "same", "valid")):
            if mode == "valid" and not _valid_ok(xs, hs):
                continue
            x, h = random_inputs(xs, hs, dtype)
            problem = Problem(dim=len(xs) - 2, n=max(xs[2:]), k=max(hs[2:]), batch=xs[0], c_in=xs[1],
                              c_out=hs[0], dtype=dtype, mode=mode)
            y = kernel.run(problem, x, h)
            assert rel_err(y, conv_reference(x, h, mode)) <= _tol(x, h), (name, xs, hs, dtype, mode)


@pytest.mark.gpu
def test_gpu_event_clock_and_flush_are_sane() -> None:
    import cupy as cp

    a = cp.ones(2**24, dtype=cp.float32)

    def call() -> None:
        a.__imul__(1.0000001)

    clock = gpu.CudaEventClock()
    t = clock.measure(call, 20)
    assert 0 < t < 1 and clock.last_host_s is not None and clock.last_host_s >= 0.5 * t
    flushed = gpu.CudaEventClock(gpu.L2Flusher())
    tf = flushed.measure(call, 20)
    assert 0 < tf < 1 and flushed.last_host_s is None
    flushed.close()


@pytest.mark.gpu
def test_gpu_device_facts() -> None:
    facts = gpu.device_facts()["gpu"]
    assert facts["available"] and facts["model"] and facts["memory_total"] > 0
    assert facts["cuda_runtime"][0].isdigit() and facts["cupy"]


@pytest.mark.gpu
def test_gpu_oom_is_an_error_row_and_the_pool_is_freed() -> None:
    import cupy as cp

    from symbench.config import config_from_mapping
    from symbench.sweep.runner import Measurer

    problem = Problem(dim=1, n=2**22, k=3, dtype="float64")  # 32 MiB per operand
    x = np.ones((1, 1, 2**22))
    h = np.ones((1, 1, 3))
    m = Measurer(config_from_mapping({"grid": [{"n": "64", "k": "3"}]}, "test"), "r")
    pool = cp.get_default_memory_pool()
    pool.set_limit(size=2**20)  # CuPy raises OutOfMemoryError past 1 MiB
    try:
        for kernel in (cupy_conv.DirectCupy(), cupy_conv.FFTCupy()):
            row, _ = m.measure(kernel, problem, x, h, np.zeros((1, 1, 2**22 + 2)))
            assert row["status"] == "error" and "OutOfMemoryError" in row["message"], row
            assert pool.used_bytes() == 0
    finally:
        pool.set_limit(size=0)


@pytest.mark.gpu
def test_gpu_sweep_quick(tmp_path: Path) -> None:
    import pandas as pd

    from symbench.config import config_from_mapping
    from symbench.sweep.runner import run_sweep

    cfg = config_from_mapping({"repeat": 3, "min_time": 0.001, "grid": [
        {"kernel": list(CONV_GPU_KERNELS), "dim": 1, "n": "4096", "k": "3,33", "dtype": "float32"},
        {"kernel": list(CONV_GPU_KERNELS), "dim": 2, "n": "128", "k": "3,9", "dtype": "float32",
         "mode": "same", "batch": 2, "c_in": 4, "c_out": 4},
    ]}, "test")
    result = run_sweep(cfg, tmp_path / "run", command=["test"])
    df = pd.read_csv(result.run_dir / "measurements.csv")
    assert (df.status == "ok").all(), df[["kernel", "status", "message"]]
    assert df.host_time_s.notna().all() and (df.time_s > 0).all()
