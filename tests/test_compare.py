"""compare: a known slowdown is flagged, pure noise is not, crossovers that moved are listed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from symbench.analysis.compare import (_env_warnings, classify, compare_runs, compare_tables, min_p_value,
                                       moved_crossovers)
from symbench.analysis.crossover import find_crossovers
from symbench.analysis.data import load_runs
from synth import LIBS, MACHINE, Table

KS = [3, 5, 9, 17, 33, 65, 129]


def noisy_table(rng: np.random.Generator, scale: float = 1.0, sigma: float = 0.05, rows: int = 60,
                count: int = 7) -> Table:
    t = Table()
    for i in range(rows):
        kernel = ("direct-numpy", "fft-scipy", "auto-scipy")[i % 3]
        k = 3 + i
        median = 1e-5 * (1 + i % 7)
        t.add(kernel, k, samples=median * scale * np.exp(sigma * rng.standard_normal(count)))
    return t


def test_known_slowdown_is_a_regression():
    rng = np.random.default_rng(1)
    base = noisy_table(rng)
    new = noisy_table(rng, scale=1.5)
    rows = compare_tables(base.df(), new.df(), base.samples_df(), new.samples_df())
    assert (rows.status == "regression").all(), rows.status.value_counts()
    assert (rows.p_value < 0.01).all() and (rows.ratio > 1.1).all()


def test_pure_noise_is_not_flagged():
    rng = np.random.default_rng(2)
    for _ in range(5):
        base = noisy_table(rng, sigma=0.1)
        new = noisy_table(rng, sigma=0.1)
        rows = compare_tables(base.df(), new.df(), base.samples_df(), new.samples_df())
        counts = rows.status.value_counts()
        assert counts.get("regression", 0) == 0 and counts.get("improvement", 0) == 0, counts


def test_large_shift_in_a_very_noisy_row_is_noise_not_regression():
    base = np.array([1.0, 1.1, 3.0, 1.05, 2.9, 1.0, 3.1])
    new = base[[1, 2, 4, 6, 2, 3, 6]] * 1.0  # median jumps, distributions overlap
    ratio = float(np.median(new) / np.median(base))
    status, p, note = classify(ratio, new, base, 0.10, 0.01)
    assert ratio > 1.1 and status == "noise" and p >= 0.01 and "not significant" in note


def test_improvement_and_unchanged():
    rng = np.random.default_rng(3)
    base = noisy_table(rng, rows=9)
    new = noisy_table(rng, scale=0.5, rows=9)
    rows = compare_tables(base.df(), new.df(), base.samples_df(), new.samples_df())
    assert (rows.status == "improvement").all()
    same = compare_tables(base.df(), base.df(), base.samples_df(), base.samples_df())
    assert (same.status == "unchanged").all() and (same.ratio == 1.0).all()


def test_tiny_but_certain_shift_is_not_flagged():
    base = np.linspace(1.0, 1.01, 20)
    new = base * 1.05  # certain (p tiny) but below the 10% threshold
    assert classify(1.05, new, base, 0.10, 0.01)[0] == "unchanged"


def test_too_few_samples_are_untestable():
    assert min_p_value(3, 3) == pytest.approx(0.05)
    assert min_p_value(7, 7) == pytest.approx(1 / 3432)
    b, n = np.array([1.0, 1.01, 1.02]), np.array([2.0, 2.01, 2.02])
    status, p, note = classify(2.0, n, b, 0.10, 0.01)
    assert status == "untestable" and "3+3 samples cannot reach p < 0.01" in note
    assert classify(2.0, None, None, 0.10, 0.01)[0] == "untestable"


def test_a_row_that_now_fails_is_a_regression_and_unmatched_rows_are_listed():
    base, new = Table(), Table()
    base.add("direct-numpy", 3, 1e-5)
    new.add("direct-numpy", 3, None, samples=[1.0], status="mismatch", message="rel_err 1e-3 > tol")
    base.add("fft-scipy", 3, 1e-5)
    new.add("fft-scipy", 5, 1e-5)
    rows = compare_tables(base.df(), new.df(), base.samples_df(), new.samples_df()).set_index(["kernel", "k"])
    assert rows.loc[("direct-numpy", 3), "status"] == "regression"
    assert "mismatch now" in rows.loc[("direct-numpy", 3), "note"]
    assert rows.loc[("fft-scipy", 3), "status"] == "only_base"
    assert rows.loc[("fft-scipy", 5), "status"] == "only_new"


def crossover_at(k_hi: int, verdict_grid=KS) -> Table:
    t = Table()
    for k in verdict_grid:
        t.add("direct-numpy", k, 1e-5 * (4.0 if k >= k_hi else 0.25))
        t.add("fft-scipy", k, 1e-5)
    return t


def test_crossovers_that_moved_more_than_one_step():
    base = crossover_at(17)
    for k_hi, moved in ((17, False), (33, False), (65, True), (5, True)):
        new = crossover_at(k_hi)
        m = moved_crossovers(find_crossovers(base.df(), base.samples_df()),
                             find_crossovers(new.df(), new.samples_df()))
        assert (len(m) == 1) == moved, (k_hi, m)
        if moved:
            r = m.iloc[0]
            assert r.base_k_hi == 17 and r.new_k_hi == k_hi and r.steps == KS.index(k_hi) - KS.index(17)
    # a change of verdict counts as a move: crossover at 17 -> fft faster everywhere (3 steps)
    m = moved_crossovers(find_crossovers(base.df(), base.samples_df()),
                         find_crossovers(crossover_at(3).df(), crossover_at(3).samples_df()))
    assert len(m) == 1 and m.iloc[0].new_verdict == "fft_always" and m.iloc[0].steps == -3


def test_environment_warnings():
    env = {"machine_id": "a", "machine_label": "box a", "libraries": dict(LIBS), "python": "3.12.0",
           "symbench_version": "0.1.0"}
    assert _env_warnings({"environment": env}, {"environment": env}) == []
    other = {**env, "machine_id": "b", "machine_label": "box b", "libraries": {**LIBS, "scipy": "1.15.0"}}
    w = _env_warnings({"environment": env}, {"environment": other})
    assert any("different machines: box a vs box b" in x for x in w)
    assert any("scipy 1.14.0 -> 1.15.0" in x for x in w)


def test_compare_runs_on_run_directories(tmp_path):
    t = crossover_at(17)
    a = t.write(tmp_path / "a")
    slow = t.write(tmp_path / "slow", scale=1.6, run_id="20260101-000001-slow",
                   machine={**MACHINE}, libraries={**LIBS, "numpy": "2.1.0"})
    raw = compare_runs(load_runs([a]), load_runs([slow]), common_mode_correction=False)
    assert raw.regressions == len(t.rows) and raw.failed
    assert any("flagged between runs of one round each" in w and "--rounds 5" in w for w in raw.warnings)
    # Every row 1.6x slower is a common-mode shift: corrected, but beyond max_shift (default 0.5),
    # so the gate fails on the shift itself.
    cmp = compare_runs(load_runs([a]), load_runs([slow]))
    assert cmp.shift == pytest.approx(1.6) and cmp.regressions == 0
    assert cmp.shift_exceeded and cmp.failed
    assert any("1.60x the baseline" in w and "beyond --max-shift 0.5" in w for w in cmp.warnings)
    assert any("numpy 2.0.0 -> 2.1.0" in w for w in cmp.warnings)
    for loose in (0.7, math.inf, None):
        assert not compare_runs(load_runs([a]), load_runs([slow]), max_shift=loose).failed
    # A shift within the threshold never fails the gate, whatever max_shift.
    assert not compare_runs(load_runs([a]), load_runs([slow]), max_shift=0.1, threshold=0.7).failed
    same = compare_runs(load_runs([a]), load_runs([a]))
    assert same.regressions == 0 and same.counts["unchanged"] == len(t.rows) and same.warnings == []


def test_slowdown_just_beyond_the_threshold_is_flagged_when_certain():
    base = np.linspace(1.0, 1.01, 10)
    status, p, _ = classify(1.15, base * 1.15, base, 0.10, 0.01)
    assert status == "regression" and p < 0.01
