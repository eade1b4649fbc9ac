"""The GPU group kernels ``gconv-direct-cupy`` and ``gconv-fft-cupy``.

Without a GPU these tests run the kernels' own code path -- prepare (host
plan, ``Plan.to(cupy)``, uploads), the warm-up, the CUDA-event clock, result,
close -- against the NumPy-backed stand-in for CuPy of ``gpu_common.py``, so the
wiring and the numerics (``gconv_core`` with ``xp`` = the stand-in) are
checked here: against the float64 reference, through ``symbench verify``'s
equivariance suite, through a sweep, and for the memory estimate. Tests
marked ``gpu`` run them on a real GPU.
"""

from __future__ import annotations

import itertools
import json
import math
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from conftest import gpu_available
from symbench.machine import gpu
from symbench.groups import reference
from symbench.kernels import cupy_conv, cupy_gconv, registry
from symbench.kernels.impl import gconv_core
from symbench.kernels.base import KernelOptions
from symbench.kernels.impl.xp_conv import CUFFT_PRIMES
from symbench.problem import Problem, make_inputs
from symbench.reference import rel_err
from gpu_common import make_fake_cupy

HAVE_GPU = gpu_available()
NAMES = ("gconv-direct-cupy", "gconv-fft-cupy")


def _kernels() -> list[Any]:
    return [cupy_gconv.GconvDirectCupy(), cupy_gconv.GconvFFTCupy()]


@pytest.fixture
def fake_cupy(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    fake = make_fake_cupy(None)  # no RawModule needed: the group kernels are CuPy array code
    monkeypatch.setattr(gpu, "cupy", lambda: fake)
    gpu.assume(None)
    monkeypatch.setattr(cupy_conv, "_MODULES", {})
    return fake


def _problem(op: str, group: str, n: int, k: int, *, batch: int = 2, c_in: int = 2, c_out: int = 3,
             dtype: str = "float32", mode: str = "valid") -> Problem:
    return Problem(op=op, group=group, dim=2, n=n, k=k, batch=batch, c_in=c_in, c_out=c_out,
                   dtype=dtype, mode=mode)


def _is_smooth(v: int) -> bool:
    for p in CUFFT_PRIMES:
        while v % p == 0:
            v //= p
    return v == 1


# == description and availability =================================================================

def test_kernels_describe_themselves() -> None:
    direct, fft = _kernels()
    assert direct.name == "gconv-direct-cupy" and direct.method == "direct"
    assert fft.name == "gconv-fft-cupy" and fft.method == "fft"
    for k in (direct, fft):
        assert k.device == "gpu" and k.ops == ("lift", "gconv") and k.dims == (2,)
        assert k.dtypes == ("float32", "float64") and set(k.modes) == {"valid", "same"}
        assert k.supports(_problem("gconv", "p4m", 8, 3)) is None
        assert "conv" in k.supports(Problem(dim=2, n=8, k=3))               # op conv
    assert "cufft" in fft.cuda_libraries and "cublas" in direct.cuda_libraries
    names = [k.name for k in registry.all_kernels().values()]
    assert set(NAMES) <= set(names)
    assert "symbench.kernels.cupy_gconv" in registry.family_modules()


@pytest.mark.skipif(HAVE_GPU, reason="a GPU is present")
def test_listed_unavailable_with_the_probe_reason(cli) -> None:
    r = cli("kernels", "--json")
    rows = {row["name"]: row for row in json.loads(r.out)}
    reason = gpu.unavailable_reason()
    assert reason
    for name in NAMES:
        assert rows[name]["device"] == "gpu" and rows[name]["available"] is False
        assert rows[name]["reason"] == reason and "\n" not in reason


def test_a_missing_cuda_library_makes_them_unavailable(fake_cupy: SimpleNamespace,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise OSError("libcufft.so.11: cannot open shared object file")

    fake_cupy.cuda.cufft = SimpleNamespace(getVersion=broken)
    direct, fft = _kernels()
    assert direct.unavailable_reason() is None
    assert fft.unavailable_reason().startswith("CuPy cannot load cufft: OSError: libcufft.so.11")


@pytest.mark.skipif(HAVE_GPU, reason="a GPU is present")
def test_sweep_asking_only_for_a_gpu_group_kernel_exits_cleanly(cli, tmp_path: Path) -> None:
    r = cli("sweep", "--kernel", "gconv-*-cupy", "--op", "lift", "--group", "p4", "--dim", "2", "--n", "16",
            "--k", "3", "--quiet", "--out", tmp_path / "g")
    assert r.code == 2 and "Traceback" not in r.out + r.err
    assert r.err.count("\n") == 1 and "gconv-fft-cupy" in r.err and "no requested kernel can run" in r.err


# == the kernels' code path against the NumPy stand-in ============================================

CASES = [
    # op, group, n, k, batch, c_in, c_out, mode
    ("lift", "p4", 9, 3, 2, 3, 2, "valid"),
    ("lift", "p4m", 12, 4, 1, 2, 3, "same"),
    ("lift", "p4", 10, 5, 3, 1, 4, "same"),
    ("gconv", "p4", 10, 4, 2, 2, 2, "valid"),
    ("gconv", "p4m", 8, 3, 1, 3, 2, "same"),
    ("gconv", "p4m", 7, 7, 2, 1, 1, "valid"),
    ("gconv", "p4", 11, 6, 1, 2, 3, "same"),
]


def test_the_standin_offers_only_what_cupy_has() -> None:
    """A stand-in richer than CuPy would let NumPy-only calls in the core pass here and fail on a GPU."""
    cupy = pytest.importorskip("cupy")  # importable without a GPU (the wheel has no device code to run)
    fake = make_fake_cupy(None)
    paths = [name for name in vars(fake) if not name.startswith("_")]
    paths += [f"fft.{name}" for name in vars(fake.fft)] + ["lib.stride_tricks.as_strided"]
    for path in paths:
        obj = cupy
        for part in path.split("."):
            assert hasattr(obj, part), f"the stand-in has {path}, CuPy does not"
            obj = getattr(obj, part)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_kernels_match_the_reference_through_the_standin(fake_cupy: SimpleNamespace, case: tuple) -> None:
    op, group, n, k, b, ci, co, mode = case
    for kernel, dtype in itertools.product(_kernels(), ("float32", "float64")):
        problem = _problem(op, group, n, k, batch=b, c_in=ci, c_out=co, dtype=dtype, mode=mode)
        x, w = make_inputs(problem, 1)
        prepared = kernel.prepare(problem, x, w)
        assert isinstance(prepared.clock, gpu.CudaEventClock)
        prepared.call()
        y = prepared.result()
        prepared.close()
        assert y.shape == problem.out_shape and y.dtype == np.dtype(dtype)
        err = rel_err(y, reference(problem, x, w))
        assert err <= problem.tolerance(), (kernel.name, dtype, err)


def test_the_timed_call_runs_on_the_standin_arrays(fake_cupy: SimpleNamespace,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Every array operation of a call goes through ``cupy``'s namespace (here: the stand-in)."""
    calls: dict[str, int] = {}

    def counted(name: str, fn: Any) -> Any:
        def wrapped(*a: Any, **k: Any) -> Any:
            calls[name] = calls.get(name, 0) + 1
            return fn(*a, **k)
        return wrapped

    for name in ("take", "matmul", "asarray"):
        monkeypatch.setattr(fake_cupy, name, counted(name, getattr(fake_cupy, name)))
    problem = _problem("gconv", "p4", 10, 3)
    x, w = make_inputs(problem, 0)
    direct, fft = _kernels()
    p = direct.prepare(problem, x, w)
    # Plan.to(cupy) moved the filter index (and the FFT kernel's three index arrays); x and w uploaded.
    assert calls["asarray"] >= 3 and calls["take"] == 1 and calls["matmul"] == 1  # the warm-up call
    p.call()
    assert calls["take"] == 2 and calls["matmul"] == 2
    p.close()
    calls.clear()
    p = fft.prepare(problem, x, w)
    assert calls["asarray"] >= 2 + 4 and calls["take"] == 2 and calls["matmul"] == 1
    p.close()


def test_fft_plans_are_made_in_setup_and_dropped_by_close(fake_cupy: SimpleNamespace) -> None:
    cache, dev = fake_cupy._cache, fake_cupy._dev
    problem = _problem("lift", "p4m", 12, 5, mode="same")
    x, w = make_inputs(problem, 0)
    released = dev.released
    prepared = cupy_gconv.GconvFFTCupy().prepare(problem, x, w)
    assert cache.get_curr_size() >= 1 and prepared.notes["cufft_plans_cached"] >= 1  # the warm-up planned
    N = prepared.notes["fft_shape"][0]
    assert prepared.notes["fft_shape"] == [N, N] and N >= 12 + 4 and N % 2 == 0 and _is_smooth(N)
    assert prepared.notes["strategy"] in gconv_core.STRATEGIES
    prepared.close()
    assert cache.get_curr_size() == 0 and cache.cleared >= 1 and dev.released > released


def test_fft_kernel_reenables_a_disabled_plan_cache(fake_cupy: SimpleNamespace) -> None:
    fake_cupy._cache.size = 0
    problem = _problem("lift", "p4", 8, 3)
    cupy_gconv.GconvFFTCupy().prepare(problem, *make_inputs(problem, 0)).close()
    assert fake_cupy._cache.size == 16


def test_direct_kernel_notes_and_close(fake_cupy: SimpleNamespace) -> None:
    problem = _problem("gconv", "p4", 9, 3)
    x, w = make_inputs(problem, 0)
    released = fake_cupy._dev.released
    prepared = cupy_gconv.GconvDirectCupy().prepare(problem, x, w)
    assert prepared.notes == {"gemms": 1, "flush_l2": False}
    prepared.close()
    assert fake_cupy._dev.released > released


@pytest.mark.parametrize("flush", [False, True])
def test_flush_l2_option_reaches_the_clock(fake_cupy: SimpleNamespace, flush: bool) -> None:
    problem = _problem("lift", "p4", 8, 3)
    for kernel in _kernels():
        prepared = kernel.prepare(problem, *make_inputs(problem, 0), KernelOptions(flush_l2=flush))
        assert prepared.notes["flush_l2"] is flush and (prepared.clock._flush is not None) is flush
        prepared.close()


def test_fft_side_is_a_cufft_friendly_even_length() -> None:
    assert cupy_gconv.padded_side(64, 15, "same") == 78 and cupy_gconv.padded_side(64, 15, "valid") == 64
    assert cupy_gconv.fft_side(64, 15, "same") == 80
    assert cupy_gconv.fft_side(11, 4, "same") == 14  # 7-smooth: pocketfft's 5-smooth length would be 16
    for n, k, mode in itertools.product((5, 13, 32, 61, 100), (1, 2, 7, 20), ("valid", "same")):
        if mode == "valid" and k > n:
            continue
        N = cupy_gconv.fft_side(n, k, mode)
        p = cupy_gconv.padded_side(n, k, mode)
        assert N >= p and N % 2 == 0 and _is_smooth(N)
        assert not any(_is_smooth(v) and v % 2 == 0 for v in range(p, N))


# == memory ========================================================================================

MEMORY_CASES = [
    ("lift", "p4", 32, 5, 4, 3, 8, "same"),
    ("gconv", "p4m", 24, 7, 2, 4, 4, "same"),
    ("gconv", "p4", 40, 3, 1, 8, 8, "valid"),
    ("gconv", "p4m", 20, 9, 8, 2, 2, "valid"),
    ("lift", "p4m", 48, 15, 4, 3, 8, "same"),
]


@pytest.mark.parametrize("case", MEMORY_CASES, ids=lambda c: "-".join(map(str, c)))
def test_workspace_estimate_bounds_the_temporaries_of_the_numpy_path(case: tuple) -> None:
    """What ``device_memory_check`` counts covers what the same code allocates with NumPy (traced)."""
    op, group, n, k, b, ci, co, mode = case
    problem = _problem(op, group, n, k, batch=b, c_in=ci, c_out=co, dtype="float32", mode=mode)
    x, w = make_inputs(problem, 0)
    for kernel in _kernels():
        plan = kernel.plan(problem, x.shape, w.shape, 4)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            kernel.compute(np, x, w, plan)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert 0 < peak <= kernel.workspace_bytes(problem), (kernel.name, peak, kernel.workspace_bytes(problem))
        io = 4 * (x.size + w.size + math.prod(problem.out_shape))
        assert kernel.device_bytes(problem) == io + kernel.workspace_bytes(problem)
        assert kernel.memory_bytes(problem) == kernel.device_bytes(problem)
        assert kernel.host_memory_bytes(problem) == problem.memory_bytes() + 4 * math.prod(problem.out_shape)


def test_a_layer_that_does_not_fit_is_skipped(fake_cupy: SimpleNamespace, tmp_path: Path) -> None:
    from symbench.config import config_from_mapping
    from symbench.sweep.runner import Measurer

    fake_cupy._dev.free, fake_cupy._dev.pool_free = 64 * 2**20, 0
    m = Measurer(config_from_mapping({"grid": [{"n": "64", "k": "3"}]}, "test"), "r")
    big = _problem("gconv", "p4m", 256, 9, batch=16, c_in=16, c_out=16)
    small = _problem("lift", "p4", 16, 3)
    for kernel in _kernels():
        status, message = m.precheck(kernel, big)
        assert status == "skipped" and "device memory" in message and "0.06 GiB free" in message
        assert m.precheck(kernel, small) is None


def test_a_device_oom_in_setup_is_an_error_row_and_frees_the_pool(fake_cupy: SimpleNamespace,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from symbench.config import config_from_mapping
    from symbench.sweep.runner import Measurer, problem_inputs

    class OutOfMemoryError(Exception):
        pass

    def oom(*a: Any, **k: Any) -> Any:
        raise OutOfMemoryError("Out of memory allocating 4,096 bytes (allocated so far: 0 bytes).")

    problem = _problem("gconv", "p4", 10, 3)
    inputs = problem_inputs(problem, 0)
    m = Measurer(config_from_mapping({"grid": [{"n": "64", "k": "3"}]}, "test"), "r")
    for kernel, where in itertools.product(_kernels(), ("asarray", "matmul")):
        with monkeypatch.context() as mp:
            mp.setattr(fake_cupy, where, oom)  # an upload, or the warm-up call
            released = fake_cupy._dev.released
            row, samples = m.measure(kernel, problem, *inputs)
        assert row["status"] == "error" and row["message"].startswith("OutOfMemoryError: Out of memory"), row
        assert samples == [] and fake_cupy._dev.released > released


# == verify and sweep through the stand-in ===========================================================

def test_verify_equivariance_suite_passes_through_the_standin(fake_cupy: SimpleNamespace) -> None:
    from symbench.verify import verify

    checks = verify(_kernels())
    failed = [c for c in checks if c.status != "ok"]
    assert not failed, failed[:3]
    for name in NAMES:
        mine = [c.case for c in checks if c.kernel == name]
        assert any("equivariance under mirror*rot270" in c for c in mine)  # p4m, every element
        assert any("agrees with gconv-direct" in c for c in mine)
        assert any("vs float64 reference" in c and "float64" in c for c in mine)


def test_sweep_with_the_gpu_group_kernels_through_the_standin(kernel_registry: dict, fake_cupy: SimpleNamespace, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    from symbench.config import config_from_mapping
    from symbench.sweep.runner import run_sweep
    from symbench.sweep.timing import FakeClock

    for kernel in _kernels():
        registry.register(kernel)
    cfg = config_from_mapping({"repeat": 2, "grid": [
        {"kernel": list(NAMES), "op": "lift", "group": "p4,p4m", "n": "12", "k": "3,5", "batch": 2,
         "c_in": 3, "c_out": 4, "mode": "same"},
        {"kernel": list(NAMES), "op": "gconv", "group": "p4", "n": "10", "k": "4", "dtype": "float64"},
    ]}, "test")
    result = run_sweep(cfg, tmp_path / "run", clock=FakeClock(1e-3), command=["test"])
    df = pd.read_csv(result.run_dir / "measurements.csv")
    assert (df.status == "ok").all(), df[["kernel", "status", "message"]]
    assert len(df) == 10 and set(df.kernel) == set(NAMES) and df.device.eq("gpu").all()
    assert set(df.op) == {"lift", "gconv"} and (df.rel_err <= 1e-4).all()
    notes = [json.loads(s) for s in df[df.kernel == "gconv-fft-cupy"].setup_notes]
    assert all("fft_shape" in n and "strategy" in n for n in notes)
    meta = json.loads((result.run_dir / "run.json").read_text())
    assert meta["environment"]["gpu"]["model"] == "Fake H200"


def _summary_module() -> Any:
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / "gpu_verify_summary.py"
    spec = importlib.util.spec_from_file_location("gpu_verify_summary", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_gpu_check_verify_summary_needs_every_gpu_kernel_checked(kernel_registry: dict, fake_cupy: SimpleNamespace, cli,
                                                                 tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``scripts/gpu-check.sh`` concludes from ``symbench verify --kernel '*-cupy' --json``."""
    summary = _summary_module()
    for kernel in _kernels():
        registry.register(kernel)  # fresh instances: available through the stand-in
    r = cli("verify", "--kernel", "gconv-*-cupy", "--json")
    assert r.code == 0, r.err
    group_checks = json.loads(r.out)
    conv_ok = [{"kernel": k, "case": "n=9 k=3 full float64", "status": "ok", "message": ""}
               for k in ("direct-cupy", "fft-cupy")]
    lines, ok = summary.summarise(conv_ok + group_checks)
    assert ok and lines[-1].endswith("0 failed")
    assert any(ln.startswith("gconv-fft-cupy: ") and " ok" in ln for ln in lines)

    lines, ok = summary.summarise(group_checks)  # the conv kernels were not checked
    assert not ok and "MISSING direct-cupy: no passing check" in lines
    skipped = [{"kernel": k, "case": "availability", "status": "skipped", "message": "no CUDA device"}
               for k in summary.GPU_KERNELS]
    assert not summary.summarise(skipped)[1]
    no_equivariance = [c for c in group_checks if "equivariance" not in c["case"]]
    lines, ok = summary.summarise(conv_ok + no_equivariance)
    assert not ok and "MISSING gconv-fft-cupy: no equivariance check passed" in lines
    broken = conv_ok + group_checks + [{"kernel": "gconv-fft-cupy", "case": "lift/p4 x", "status": "fail",
                                        "message": "not equivariant"}]
    lines, ok = summary.summarise(broken)
    assert not ok and "FAIL gconv-fft-cupy lift/p4 x: not equivariant" in lines

    out_json, out_txt = tmp_path / "v.json", tmp_path / "v.txt"
    out_json.write_text(json.dumps(broken))
    assert summary.main([str(out_json), str(out_txt)]) == 1
    assert "FAIL gconv-fft-cupy" in out_txt.read_text()
    out_json.write_text(json.dumps(conv_ok + group_checks))
    assert summary.main([str(out_json), str(out_txt)]) == 0
    out_json.write_text("not json")
    assert summary.main([str(out_json), str(out_txt)]) == 1


def test_gpu_check_script_uses_the_summary() -> None:
    script = (Path(__file__).resolve().parent.parent / "scripts" / "gpu-check.sh").read_text()
    assert "VERIFY_KERNELS='*-cupy'" in script and "VERIFY_KERNELS='*-cupy,*-torch-cuda'" in script
    assert 'verify --kernel "$VERIFY_KERNELS" --json' in script and "gpu_verify_summary.py" in script


# == the GPU check's config ===========================================================================

def test_gpu_config_sweeps_the_group_kernels() -> None:
    from symbench.config import load_config

    cfg = load_config(Path(__file__).resolve().parent.parent / "configs" / "gpu.toml")
    group = [(p, pats) for p, pats in cfg.jobs() if p.op in ("lift", "gconv")]
    assert {p.op for p, _ in group} == {"lift", "gconv"} and {p.group for p, _ in group} == {"p4", "p4m"}
    assert all(set(pats) == set(NAMES) for _, pats in group)
    assert all(p.batch > 1 and p.c_out >= 8 for p, _ in group)  # a CNN-like layer, not one plane
    # The float64 reference of these layers is computed on the host (scipy, per channel pair): keep
    # the total work of the group part bounded (about a minute of references on a 2-core machine).
    pair_planes = sum(p.batch * p.c_in * p.c_out * p.group_order * (p.group_order if p.op == "gconv" else 1)
                      * (p.n + p.k) ** 2 for p, _ in group)
    assert pair_planes < 3e9


# == on a GPU =========================================================================================

@pytest.mark.gpu
@pytest.mark.parametrize("name", NAMES)
def test_gpu_group_kernel_matches_reference(name: str) -> None:
    kernel = registry.get(name)
    for case in CASES + [("gconv", "p4m", 32, 5, 4, 8, 8, "same"), ("lift", "p4", 64, 11, 8, 3, 16, "same")]:
        op, group, n, k, b, ci, co, mode = case
        for dtype in ("float32", "float64"):
            problem = _problem(op, group, n, k, batch=b, c_in=ci, c_out=co, dtype=dtype, mode=mode)
            x, w = make_inputs(problem, 2)
            y = kernel.run(problem, x, w)
            assert y.dtype == np.dtype(dtype)
            assert rel_err(y, reference(problem, x, w)) <= problem.tolerance(), (name, case, dtype)


@pytest.mark.gpu
def test_gpu_fft_group_kernel_reuses_its_cufft_plans() -> None:
    problem = _problem("gconv", "p4m", 24, 5, batch=2, c_in=4, c_out=4, mode="same")
    x, w = make_inputs(problem, 0)
    cache = gpu.plan_cache()
    prepared = registry.get("gconv-fft-cupy").prepare(problem, x, w)
    try:
        planned = cache.get_curr_size()
        assert planned >= 3  # row transforms, column transforms, the inverse
        for _ in range(3):
            prepared.call()
        gpu.synchronize()
        assert cache.get_curr_size() == planned  # the timed calls made no new plan
    finally:
        prepared.close()
    assert cache.get_curr_size() == 0


@pytest.mark.gpu
def test_gpu_group_kernels_oom_is_an_error_row_and_the_pool_is_freed() -> None:
    import cupy as cp

    from symbench.config import config_from_mapping
    from symbench.sweep.runner import Measurer, problem_inputs

    problem = _problem("gconv", "p4m", 64, 5, batch=4, c_in=8, c_out=8)  # 2 MiB of float32 input
    inputs = problem_inputs(problem, 0)
    m = Measurer(config_from_mapping({"grid": [{"n": "64", "k": "3"}]}, "test"), "r")
    pool = cp.get_default_memory_pool()
    pool.set_limit(size=2**20)
    try:
        for kernel in _kernels():
            row, _ = m.measure(kernel, problem, *inputs)
            assert row["status"] == "error" and "OutOfMemoryError" in row["message"], row
            assert pool.used_bytes() == 0
    finally:
        pool.set_limit(size=0)


@pytest.mark.gpu
def test_gpu_group_sweep_quick(tmp_path: Path) -> None:
    import pandas as pd

    from symbench.config import config_from_mapping
    from symbench.sweep.runner import run_sweep

    cfg = config_from_mapping({"repeat": 3, "min_time": 0.001, "grid": [
        {"kernel": list(NAMES), "op": "lift", "group": "p4,p4m", "n": "32", "k": "3,9", "batch": 4,
         "c_in": 3, "c_out": 8, "mode": "same"},
        {"kernel": list(NAMES), "op": "gconv", "group": "p4", "n": "32", "k": "5", "batch": 2,
         "c_in": 4, "c_out": 4, "dtype": "float64"},
    ]}, "test")
    result = run_sweep(cfg, tmp_path / "run", command=["test"])
    df = pd.read_csv(result.run_dir / "measurements.csv")
    assert (df.status == "ok").all(), df[["kernel", "status", "message"]]
    assert df.host_time_s.notna().all() and (df.time_s > 0).all() and (df.setup_s > 0).all()
