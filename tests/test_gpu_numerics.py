"""GPU tier 1: the GPU kernels' numerics on the CPU (NumPy for the array code, g++ for the CUDA source)."""

from __future__ import annotations

import itertools
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from conftest import ROOT
from gpu_common import (CASES, CONV_GPU_KERNELS, CU, GPU_KERNELS, HAVE_GPU, SMALL, emulate_direct, make_fake_cupy,
                        tol as _tol, valid_ok as _valid_ok)
from synth import random_inputs
from symbench.machine import gpu
from symbench.kernels import cupy_conv, registry
from symbench.kernels.impl.xp_conv import (CUFFT_PRIMES, DirectTiles, FFTConvPlan, channel_mac, direct_conv_bytes,
                                           direct_launch, fft_conv, fft_conv_bytes, fft_lengths, next_smooth)
from symbench.problem import Problem, conv_out_shape, make_inputs, tolerance_for
from symbench.reference import conv_reference, rel_err


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


@pytest.fixture(scope="session")
def emu_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed: the CUDA source cannot be emulated here")
    return tmp_path_factory.mktemp("cuda-emu")




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


