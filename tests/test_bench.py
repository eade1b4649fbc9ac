"""``bench/report.py`` and ``bench/stability.py`` on synthetic tables with known answers."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load(name: str):
    # By path, under a private name: bench/ is scripts, not a package on sys.path.
    spec = importlib.util.spec_from_file_location(f"symbench_bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


report = _load("report")
stability = _load("stability")


def _row(kernel, dim, n, k, t, *, dtype=None, mode=None, batch=1, ci=1, co=1, threads=1, status="ok"):
    dtype = dtype or ("float64" if dim == 1 else "float32")
    mode = mode or ("full" if dim == 1 else "same")
    flops = 2.0 * n**dim * k**dim * batch * ci * co
    return dict(kernel=kernel, dim=dim, n=n, k=k, time_s=t, time_min_s=0.5 * t if threads == 2 else t,
                gflops=flops / t / 1e9, dtype=dtype, mode=mode,
                batch=batch, c_in=ci, c_out=co, threads=threads, status=status)


def synthetic() -> pd.DataFrame:
    rows = []
    for n in (1024, 16384, 262144):
        for k in (3, 7):
            rows += [_row("direct", 1, n, k, 1.0), _row("direct-numpy", 1, n, k, 4.0 if k == 3 else 2.0),
                     _row("fft-pyfftw", 1, n, k, 1.0), _row("fft-scipy", 1, n, k, 5.0)]
    for n in (256, 1024):
        for k in (3, 7, 11):
            rows += [_row("direct", 2, n, k, 2e-3), _row("auto-opencv", 2, n, k, 4e-3 if k < 11 else 1e-3),
                     _row("fft-pyfftw", 2, n, k, 1.0), _row("fft-scipy", 2, n, k, 1.25)]
    # Rows outside the goal grids must not enter the goal figures.
    rows += [_row("direct", 2, 2048, 7, 1.0), _row("direct", 2, 2048, 7, 0.6, threads=2),
             _row("direct", 1, 256, 3, 100.0), _row("direct-numpy", 1, 256, 3, 1.0),
             _row("direct", 2, 256, 5, 1e-9, status="error")]
    for k, td, tf in ((3, 0.02, 0.1), (5, 0.06, 0.1), (7, 0.12, 0.1)):
        rows += [_row("direct", 2, 56, k, td, batch=8, ci=64, co=64), _row("fft-pyfftw", 2, 56, k, tf, batch=8, ci=64, co=64)]
    return pd.DataFrame(rows)


def test_goal_figures_use_the_goal_grids_only():
    s = report.summary_rows(synthetic(), gemm32=100.0)
    # 1-D: direct/numpy is 0.25 at k=3 and 0.5 at k=7 -> median 0.375, max 0.5
    assert s["direct_numpy_median"] == pytest.approx(0.375)
    assert s["direct_numpy_max"] == pytest.approx(0.5)
    # 2-D: 0.5 at k=3, 7 and 2.0 at k=11 (4 + 2 cells) -> median 0.5, max 2
    assert s["direct_opencv_median"] == pytest.approx(0.5)
    assert s["direct_opencv_max"] == pytest.approx(2.0)
    # FFTW: 0.2 on 6 1-D cells, 0.8 on 6 2-D cells
    assert s["fftw_scipy_median_1d"] == pytest.approx(0.2)
    assert s["fftw_scipy_median_2d"] == pytest.approx(0.8)
    assert s["fftw_scipy_median"] == pytest.approx(0.5)
    # % of GEMM: k >= 7 at n = 256, 1024 only (not the n = 2048 thread rows)
    g = [2.0 * n**2 * k**2 / 2e-3 / 1e9 / 100.0 for n in (256, 1024) for k in (7, 11)]
    assert s["direct_gemm_share"] == pytest.approx(float(np.median(g)))


def test_threads_table_pairs_one_and_two_threads():
    lines, speedups = report.thread_rows(synthetic())
    assert speedups == [pytest.approx(1.0 / 0.6)]
    # medians 1.0 / 0.6; best samples 1.0 / 0.3
    assert any("| direct | 2-D n=2048 k=7" in line and "| 1.67 | 3.33 |" in line for line in lines)


def test_render_has_every_section():
    facts = {"machine": "test cpu", "cpu_count": 2, "gemm_float32": [100.0, 90.0], "gemm_float64": [50.0],
             "timer": {"clock": "perf_counter_ns", "overhead_per_call_s": 3e-8, "resolution_s": 1e-9,
                       "measured_resolution_s": 8e-8}, "load": "0.1, 0.2", "versions": "numpy 2", "run_dir": "x"}
    text = report.render(synthetic(), facts)
    for needle in ("direct / numpy.convolve", "direct / OpenCV", "% of single-thread float32 GEMM",
                   "Multi-channel layer", "Threads: 1 vs 2", "overhead 30 ns", "resolution 80 ns", "**misses**"):
        assert needle in text
    assert "| 3 | 20.0 | 100.0 | 0.20 |" in text  # the layer table, k = 3


def test_share_of_gemm_uses_the_faster_gemm():
    facts = {"gemm_float32": [50.0, 100.0], "gemm_float64": [50.0]}
    slow_first = report.render(synthetic(), facts)
    facts["gemm_float32"] = [100.0, 50.0]
    assert report.render(synthetic(), facts) == slow_first.replace("50 / 100", "100 / 50")
    assert "(float32 GEMM: 100)" in slow_first


def test_grid_table_layout():
    s = pd.Series([1.0, 2.0, 3.0], index=pd.MultiIndex.from_tuples([(8, 3), (8, 5), (16, 3)], names=["n", "k"]))
    assert report.grid_table(s, 1) == ["| n \\ k | 3 | 5 |", "|---|---|---|", "| 8 | 1.0 | 2.0 |", "| 16 | 3.0 | – |"]


def _cross(rows):
    base = dict(op="conv", group="none", dim=1, dtype="float64", mode="full", batch=1, c_in=1, c_out=1, threads=1)
    return pd.DataFrame([{**base, "n": n, "direct_kernel": d, "fft_kernel": f, "verdict": v, "k_lo": lo, "k_hi": hi}
                         for n, d, f, v, lo, hi in rows])


def test_stability_counts_cells_whose_bracket_moved():
    nan = math.nan
    a = _cross([(1024, "direct", "fft-scipy", "crossover", 17, 33), (2048, "direct", "fft-scipy", "fft_always", nan, 3),
                (4096, "direct", "fft-scipy", "crossover", 33, 65), (8192, "direct", "fft-scipy", "direct_always", 513, nan)])
    b = _cross([(1024, "direct", "fft-scipy", "inconclusive", 17, 33), (2048, "direct", "fft-scipy", "fft_always", nan, 3),
                (4096, "direct", "fft-scipy", "crossover", 65, 129), (8192, "direct", "fft-scipy", "direct_always", 513, nan)])
    share, moved, sure = stability.agreement([a, a, b])
    assert share == pytest.approx(0.75)  # an inconclusive row with the same bracket counts as agreeing
    assert list(moved["n"]) == [4096]
    assert moved.iloc[0]["brackets"] == "(33, 65] / (33, 65] / (65, 129]"
    assert sure == pytest.approx(2 / 3)  # n=1024 is inconclusive in run 3: not among the sure cells


def test_next_run_and_reliability_count_what_the_next_run_kept():
    nan = math.nan
    a = _cross([(1024, "direct", "fft-scipy", "crossover", 17, 33), (2048, "direct", "fft-scipy", "fft_always", nan, 3),
                (4096, "direct", "fft-scipy", "inconclusive", 33, 65), (8192, "direct", "fft-scipy", "direct_always", 513, nan)])
    a["confidence"] = [0.999, 0.85, 0.5, 0.92]
    b = _cross([(1024, "direct", "fft-scipy", "crossover", 17, 33), (2048, "direct", "fft-scipy", "crossover", 3, 5),
                (4096, "direct", "fft-scipy", "crossover", 33, 65), (8192, "direct", "fft-scipy", "inconclusive", 513, nan)])
    b["confidence"] = [1.0, 0.97, 0.96, 0.6]
    nxt = stability.next_run([a, b])
    # a decides 3 cells; b keeps n=1024 only (2048 moved, 8192 became inconclusive)
    assert (nxt["decided"], nxt["kept"], nxt["cells"], nxt["inconclusive"]) == (3, 1, 4, 1)
    rel = stability.reliability([a, b])
    assert list(rel["confidence"]) == ["[0.8, 0.9)", "[0.9, 0.95)", "[0.99, 1]"]
    assert list(rel["cells"]) == [1, 1, 1] and list(rel["reproduced"]) == [0.0, 0.0, 1.0]
    assert stability.reliability([a]).empty
