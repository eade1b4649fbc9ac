"""GPU tier 2: the device layer and the GPU kernels against a NumPy stand-in for CuPy; life without a GPU."""

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


