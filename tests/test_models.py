"""Cost-model fits, model k* and auto-kernel regret on synthetic tables with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from symbench.analysis.crossover import find_crossovers
from symbench.analysis.models import (MODEL_COLUMNS, add_model_k_star, default_prediction_ns, direct_work,
                                      fft_work, fit_models, model_k_star, predict_crossovers, predict_time)
from symbench.analysis.regret import auto_regret, regret_rows
from synth import Table

A, B = 2e-9, 1e-6  # direct: seconds per multiply-add, overhead
C, D = 5e-9, 2e-5  # fft: seconds per N log2 N, overhead
NS = (1024, 4096, 16384)
KS = (3, 9, 33, 129, 513)


def exact_table(noise: float = 0.0, seed: int = 0) -> Table:
    rng = np.random.default_rng(seed)
    t = Table()
    for n in NS:
        for k in KS:
            td = (A * direct_work("conv", "none", 1, "full", n, k) + B) * (1 + noise * rng.standard_normal())
            tf = (C * fft_work(1, n, k) + D) * (1 + noise * rng.standard_normal())
            t.add("direct-numpy", k, float(td), n=n)
            t.add("fft-scipy", k, float(tf), n=n)
    return t


def test_work_sizes_follow_scipy_modes():
    assert direct_work("conv", "none", 1, "full", 10, 3) == 12 * 3
    assert direct_work("conv", "none", 1, "same", 10, 3) == 10 * 3
    assert direct_work("conv", "none", 1, "valid", 10, 3) == 8 * 3
    assert direct_work("conv", "none", 1, "valid", 3, 10) == 8 * 3  # SciPy swaps the operands
    assert direct_work("conv", "none", 2, "full", 10, 3) == (12 * 3) ** 2
    assert direct_work("conv", "none", 1, "same", 10, 3, batch=2, c_in=3, c_out=4) == 24 * 30
    assert direct_work("gconv", "p4", 2, "valid", 10, 3) == 16 * (8 * 3) ** 2
    assert direct_work("lift", "p4m", 2, "same", 10, 3) == 8 * (10 * 3) ** 2
    assert fft_work(1, 10, 7) == pytest.approx(16 * 4)
    assert fft_work(2, 3, 2) == pytest.approx(16 * 4)


def test_fits_recover_exact_models():
    m = fit_models(exact_table().df())
    assert list(m.columns) == list(MODEL_COLUMNS)
    d = m[m.kernel == "direct-numpy"].iloc[0]
    f = m[m.kernel == "fft-scipy"].iloc[0]
    assert d.slope == pytest.approx(A, rel=1e-6) and d.intercept == pytest.approx(B, rel=1e-4)
    assert f.slope == pytest.approx(C, rel=1e-6) and f.intercept == pytest.approx(D, rel=1e-4)
    assert d.rel_rmse < 1e-6 and f.max_rel_err < 1e-6 and d.r2_log == pytest.approx(1.0)
    assert d.points == 15 and d.n_values == "1024,4096,16384" and (d.k_min, d.k_max) == (3, 513)
    assert d.model == "a*out*h + b" and f.model == "c*N*log2(N) + d"


def test_fit_quality_reports_noise():
    m = fit_models(exact_table(noise=0.1).df())
    for r in m.itertuples():
        assert 0.02 < r.rel_rmse < 0.3
        assert r.max_rel_err >= r.rel_rmse


def test_one_size_gets_no_fit_and_auto_kernels_none():
    t = Table()
    t.add("direct-numpy", 3, 1e-6)
    t.add("auto-scipy", 3, 1e-6)
    t.add("auto-scipy", 5, 2e-6)
    assert len(fit_models(t.df())) == 0


def brute_k_star(d, f, n):
    ks = np.arange(1, n + 1)
    faster = predict_time(d, n, ks) > predict_time(f, n, ks)
    for i in range(len(ks)):
        if faster[i:].all():
            return int(ks[i])
    return None


def test_model_k_star_matches_brute_force_and_predicts_unmeasured_n():
    m = fit_models(exact_table().df())
    d = m[m.kernel == "direct-numpy"].iloc[0].to_dict()
    f = m[m.kernel == "fft-scipy"].iloc[0].to_dict()
    for n in (1024, 8192, 65536):  # 8192 and 65536 were not measured
        ks = model_k_star(d, f, n)
        hi = brute_k_star(d, f, n)
        assert hi - 1 <= ks <= hi
    # the k* of the true models, to the grid: both models are exact here
    true_d = {**d, "slope": A, "intercept": B}
    true_f = {**f, "slope": C, "intercept": D}
    assert model_k_star(d, f, 65536) == pytest.approx(model_k_star(true_d, true_f, 65536), rel=1e-3)


def test_model_k_star_always_and_never():
    d = {"method": "direct", "op": "conv", "group": "none", "dim": 1, "mode": "full", "batch": 1, "c_in": 1,
         "c_out": 1, "slope": 1e-9, "intercept": 1.0}
    f = {**d, "method": "fft", "slope": 1e-12, "intercept": 0.0}
    assert model_k_star(d, f, 1024) == 1.0  # the direct overhead alone loses
    assert model_k_star({**d, "intercept": 0.0}, {**f, "intercept": 1.0}, 1024) == math.inf


def test_add_model_k_star_and_predictions():
    t = exact_table()
    cross = find_crossovers(t.df(), t.samples_df(), n_boot=0)
    models = fit_models(t.df())
    out = add_model_k_star(cross, models)
    cols = list(out.columns)
    assert cols[cols.index("log2_n") + 1] == "model_k_star"
    # With exact models, model k* lies in the measured bracket.
    for r in out.itertuples():
        if r.verdict == "crossover":
            assert r.k_lo - 1 <= r.model_k_star <= r.k_hi
    p = predict_crossovers(cross, models)
    assert set(p.n) == {1024, 2048, 4096, 8192, 16384, 32768, 65536}
    assert set(p[p.measured].n) == set(NS)
    assert p.model_k_star.notna().all()
    assert default_prediction_ns([1000]) == [1000, 1024, 2048, 4096]


def test_regret_of_auto_kernels():
    t = Table()
    t.add("direct-numpy", 3, 1e-6)
    t.add("fft-scipy", 3, 5e-6)
    t.add("auto-scipy", 3, 2e-6)   # 2x the fastest
    t.add("direct-numpy", 65, 8e-6)
    t.add("fft-scipy", 65, 4e-6)
    t.add("auto-scipy", 65, 4e-6)  # the fastest (tie with fft-scipy)
    t.add("direct-numpy", 129, 9e-6)
    t.add("fft-scipy", 129, 3e-6)
    t.add("auto-scipy", 129, 4.5e-6)  # 1.5x
    t.add("auto-scipy", 513, 1e-6, status="error")  # not ok: not counted
    rows = regret_rows(t.df())
    assert sorted(rows.regret.round(6)) == [1.0, 1.5, 2.0]
    s = auto_regret(t.df()).iloc[0]
    assert s.kernel == "auto-scipy" and s.problems == 3
    assert s.median_regret == pytest.approx(1.5) and s.worst_regret == pytest.approx(2.0)
    assert "k=3" in s.worst_problem and "n=1024" in s.worst_problem and s.best_at_worst == "direct-numpy"
    assert s.fastest == 1  # a tie with the fastest counts


def test_regret_empty_without_auto_kernels():
    t = Table()
    t.add("direct-numpy", 3, 1e-6)
    assert len(auto_regret(t.df())) == 0
