"""GPU tier 3: the real thing, on a CUDA GPU (tests marked ``gpu``; skipped without one)."""

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
