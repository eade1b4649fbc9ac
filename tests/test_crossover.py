"""Crossovers, verdicts, interpolation and bootstrap confidence on synthetic tables with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from symbench.analysis.crossover import (CROSSOVER_COLUMNS, REPORT_COLUMNS, bracket, crossover_position,
                                         find_crossovers, why_no_pairs)
from synth import MACHINE, Table, crossover_table

KS = [3, 5, 9, 17, 33, 65]


def one(df, direct="direct-numpy", fft="fft-scipy", **where):
    r = df[(df.direct_kernel == direct) & (df.fft_kernel == fft)]
    for c, v in where.items():
        r = r[r[c] == v]
    assert len(r) == 1, r
    return r.iloc[0]


def test_spec_columns_come_first_in_order():
    assert CROSSOVER_COLUMNS[: len(REPORT_COLUMNS)] == REPORT_COLUMNS
    assert REPORT_COLUMNS == tuple("op,group,dim,dtype,mode,batch,c_in,c_out,threads,n,direct_kernel,fft_kernel,"
                                 "verdict,k_star,k_lo,k_hi,speedup_at_kmax,log2_n".split(","))


def test_monotonic_crossover_bracket_and_interpolation():
    # t_direct / t_fft = 0.25, 0.5, 0.8, 2, 4, 8: fft faster from k=17 on.
    td = [1.0, 2.0, 3.2, 8.0, 16.0, 32.0]
    b = bracket(KS, td, [4.0] * 6)
    assert (b.verdict, b.k_lo, b.k_hi, b.position) == ("crossover", 9.0, 17.0, 3)
    # log ratio goes from log 0.8 at k=9 to log 2 at k=17, linearly in log k.
    frac = -math.log(0.8) / (math.log(2.0) - math.log(0.8))
    assert b.k_star == pytest.approx(math.exp(math.log(9) + frac * (math.log(17) - math.log(9))))
    assert 9 < b.k_star < 17


def test_non_monotonic_timings_use_the_from_here_on_definition():
    # fft is faster at k=5 (a lucky dip) but not at 9: k* is 17, not 5.
    ratio = [0.5, 1.3, 0.9, 1.5, 3.0, 6.0]
    b = bracket(KS, ratio, [1.0] * 6)
    assert (b.verdict, b.k_lo, b.k_hi) == ("crossover", 9.0, 17.0)


def test_fft_always_and_direct_always():
    b = bracket(KS, [2.0] * 6, [1.0] * 6)
    assert b.verdict == "fft_always" and math.isnan(b.k_lo) and b.k_hi == 3 and math.isnan(b.k_star)
    b = bracket(KS, [1.0] * 6, [2.0] * 6)
    assert b.verdict == "direct_always" and b.k_lo == 65 and math.isnan(b.k_hi)
    # fft faster everywhere but at the largest k: that is not a crossover
    b = bracket(KS, [2, 2, 2, 2, 2, 1], [1.0] * 6)
    assert b.verdict == "direct_always"
    # an exact tie is not "faster"
    b = bracket([3], [1.0], [1.0])
    assert b.verdict == "direct_always"


def test_crossover_position_is_vectorised_over_replicates():
    f = np.array([[False, True, False, True, True], [True, True, True, True, True], [True, True, True, True, False]])
    assert list(crossover_position(f)) == [3, 0, 5]
    assert crossover_position([False, True]) == 1


def test_find_crossovers_separated_samples():
    td = [1.0, 2.0, 3.2, 8.0, 16.0, 32.0]
    t = crossover_table(KS, [x * 1e-5 for x in td], [4e-5] * 6)
    df = find_crossovers(t.df(), t.samples_df())
    assert list(df.columns) == list(CROSSOVER_COLUMNS)
    r = one(df)
    assert r.verdict == "crossover" and (r.k_lo, r.k_hi) == (9, 17)
    assert r.confidence == 1.0 and r.decided_by == "bootstrap"
    assert r.speedup_at_kmax == pytest.approx(8.0)
    assert r.log2_n == 10.0 and r.n == 1024 and r.k_values == "3,5,9,17,33,65"
    assert r.machine_id == MACHINE["machine_id"]
    assert "P(fft faster)=1.00 at k=17" in r.note and "P(fft faster)=0.00 at k=9" in r.note


def test_tie_within_noise_at_the_bracket_is_inconclusive():
    # At k=17 the medians say fft is 2% faster, but the samples spread by 20%: a tie.
    t = Table()
    for k, td, tf in zip(KS, [1, 2, 3, 4.08, 16, 32], [4, 4, 4, 4, 4, 4]):
        spread = 0.2 if k == 17 else 0.02
        t.add("direct-numpy", k, td * 1e-5, spread=spread)
        t.add("fft-scipy", k, tf * 1e-5, spread=spread)
    r = one(find_crossovers(t.df(), t.samples_df()))
    assert r.verdict == "inconclusive"
    assert (r.k_lo, r.k_hi) == (9, 17)  # the medians' bracket is kept
    assert "tie within noise at k=17" in r.note and "crossover by medians" in r.note
    assert r.confidence < 0.95


def test_tie_on_the_direct_side_is_inconclusive_too():
    t = Table()
    for k, td, tf in zip(KS, [1, 2, 3.99, 8, 16, 32], [4, 4, 4, 4, 4, 4]):
        spread = 0.2 if k == 9 else 0.02
        t.add("direct-numpy", k, td * 1e-5, spread=spread)
        t.add("fft-scipy", k, tf * 1e-5, spread=spread)
    r = one(find_crossovers(t.df(), t.samples_df()))
    assert r.verdict == "inconclusive" and "tie within noise at k=9" in r.note


def test_always_and_never_with_samples():
    t = crossover_table(KS, [x * 1e-5 for x in [10, 20, 30, 40, 50, 60]], [1e-5] * 6)
    r = one(find_crossovers(t.df(), t.samples_df()))
    assert r.verdict == "fft_always" and r.k_hi == 3 and math.isnan(r.k_lo) and math.isnan(r.k_star)
    t = crossover_table(KS, [1e-6] * 6, [1e-5] * 6)
    r = one(find_crossovers(t.df(), t.samples_df()))
    assert r.verdict == "direct_always" and r.k_lo == 65 and math.isnan(r.k_hi)
    assert r.speedup_at_kmax == pytest.approx(0.1)


def test_without_samples_quartiles_decide_and_confidence_is_empty():
    td = [1.0, 2.0, 3.2, 8.0, 16.0, 32.0]
    t = crossover_table(KS, [x * 1e-5 for x in td], [4e-5] * 6)
    r = one(find_crossovers(t.df(), None))
    assert r.verdict == "crossover" and r.decided_by == "quartiles" and math.isnan(r.confidence)
    assert "no raw samples" in r.note


def test_pairs_every_direct_with_every_fft_of_the_same_op_and_device():
    t = Table()
    for k in KS:
        t.add("direct-numpy", k, 1e-6 * k)
        t.add("direct-scipy", k, 2e-6 * k)
        t.add("fft-scipy", k, 2e-5)
        t.add("fft-numpy", k, 3e-5)
        t.add("auto-scipy", k, 1e-5)  # auto kernels are not paired
        t.add("fft-cupy", k, 1e-7, device="gpu")  # another device: not paired with CPU kernels
    df = find_crossovers(t.df(), t.samples_df())
    pairs = set(zip(df.direct_kernel, df.fft_kernel))
    assert pairs == {("direct-numpy", "fft-scipy"), ("direct-numpy", "fft-numpy"),
                     ("direct-scipy", "fft-scipy"), ("direct-scipy", "fft-numpy")}


def test_groups_by_problem_and_keeps_machines_apart():
    t = Table()
    for n in (1024, 4096):
        for dtype in ("float32", "float64"):
            for k in KS:
                t.add("direct-numpy", k, 1e-6 * k * n / 1024, n=n, dtype=dtype)
                t.add("fft-scipy", k, 2e-5 * n / 1024, n=n, dtype=dtype)
    a = t.df()
    b = t.df({"machine_id": "other", "machine_label": "other box"})
    b["time_s"] *= 0.5
    import pandas as pd

    df = find_crossovers(pd.concat([a, b], ignore_index=True), t.samples_df())
    assert len(df) == 8
    assert set(df.machine_id) == {MACHINE["machine_id"], "other"}
    assert sorted(df.groupby(["n", "dtype"]).size()) == [2, 2, 2, 2]


def test_only_ok_rows_enter():
    t = crossover_table(KS, [1e-6 * k for k in KS], [2e-5] * 6)
    t.rows[-1]["status"] = "mismatch"  # fft-scipy at k=65: a wrong result never counts
    df = find_crossovers(t.df(), t.samples_df())
    assert one(df).k_values == "3,5,9,17,33"


def test_log2_n_only_for_1d_rows():
    t = crossover_table([3, 5], [1e-5, 2e-5], [1e-6, 1e-6], dim=2, n=256, dtype="float32")
    r = one(find_crossovers(t.df(), t.samples_df()))
    assert r.verdict == "fft_always" and math.isnan(r.log2_n)


def test_bootstrap_is_reproducible_and_independent_of_row_order():
    t = Table()
    for k, td in zip(KS, [1, 2, 3.9, 4.2, 16, 32]):
        t.add("direct-numpy", k, td * 1e-5, spread=0.1)
        t.add("fft-scipy", k, 4e-5, spread=0.1)
    df, s = t.df(), t.samples_df()
    a = find_crossovers(df, s, seed=3)
    b = find_crossovers(df.iloc[::-1], s.iloc[::-1], seed=3)
    assert a.confidence.iloc[0] == b.confidence.iloc[0]
    assert 0 < a.confidence.iloc[0] < 1


def test_why_no_pairs_says_it_plainly():
    t = Table()
    t.series("direct-numpy", {3: 1e-6, 5: 2e-6})
    assert "only one kernel (direct-numpy)" in why_no_pairs(t.df())
    t.series("direct-scipy", {3: 1e-6, 5: 2e-6})
    assert "only direct kernels" in why_no_pairs(t.df())
    t.series("fft-scipy", {9: 1e-6})  # no k in common
    assert "same problems" in why_no_pairs(t.df())
    t.series("fft-scipy", {3: 1e-6})
    assert why_no_pairs(t.df()) is None


def test_bad_alpha_is_refused():
    t = crossover_table([3], [1e-5], [1e-6])
    with pytest.raises(ValueError):
        find_crossovers(t.df(), alpha=0.7)


# -- the k* interval ------------------------------------------------------------------------------

def test_replicate_k_stars_interpolate_like_the_point_k_star_and_clamp_to_the_measured_ks():
    from symbench.analysis.crossover import k_star_interval, replicate_k_stars

    lr = np.log(np.array([[0.25, 0.5, 0.8, 2.0, 4.0, 8.0],   # the point table: k* in (9, 17]
                          [2.0, 2.0, 2.0, 2.0, 2.0, 2.0],    # fft always faster: at the smallest k
                          [0.5, 0.5, 0.5, 0.5, 0.5, 0.5],    # never: at the largest k
                          [0.5, 0.5, 0.5, 0.5, 0.5, 2.0]]))  # in (33, 65]
    stars = replicate_k_stars(KS, lr)
    b = bracket(KS, [0.25, 0.5, 0.8, 2.0, 4.0, 8.0], [1.0] * 6)
    assert stars[0] == pytest.approx(b.k_star)
    assert stars[1] == 3 and stars[2] == 65
    assert stars[3] == pytest.approx(math.sqrt(33 * 65))  # -log .5 / (log 2 - log .5) = 1/2: the geometric mean
    # identical replicates: a zero-width interval at the point k*
    lo, hi = k_star_interval(KS, np.repeat(lr[:1], 50, axis=0))
    assert lo == pytest.approx(b.k_star) and hi == pytest.approx(b.k_star)
    # percentiles of the replicates' k*: 90 replicates at the point k*, 10 at sqrt(33*65)
    many = np.concatenate([np.repeat(lr[:1], 90, axis=0), np.repeat(lr[3:4], 10, axis=0)])
    lo, hi = k_star_interval(KS, many)
    assert lo == pytest.approx(b.k_star) and hi == pytest.approx(math.sqrt(33 * 65))


def test_find_crossovers_k_star_interval_brackets_the_point_k_star():
    td = [1.0, 2.0, 3.2, 8.0, 16.0, 32.0]
    t = crossover_table(KS, [x * 1e-5 for x in td], [4e-5] * 6)
    r = one(find_crossovers(t.df(), t.samples_df()))
    assert r.verdict == "crossover"
    assert r.k_lo <= r.k_star_lo <= r.k_star <= r.k_star_hi <= r.k_hi
    # samples 2% apart around medians whose ratio moves 2.5x between k=9 and 17: a narrow interval
    assert r.k_star_hi / r.k_star_lo < 1.2
    # noisier samples: a wider interval, still around k*
    t = crossover_table(KS, [x * 1e-5 for x in td], [4e-5] * 6, spread=0.3, count=15)
    w = one(find_crossovers(t.df(), t.samples_df()))
    if w.verdict == "crossover":
        assert w.k_star_hi - w.k_star_lo >= r.k_star_hi - r.k_star_lo


def test_k_star_interval_is_nan_without_a_crossover_verdict_or_without_samples():
    t = crossover_table(KS, [2e-5] * 6, [1e-5] * 6)  # fft always
    r = one(find_crossovers(t.df(), t.samples_df()))
    assert r.verdict == "fft_always" and math.isnan(r.k_star_lo) and math.isnan(r.k_star_hi)
    td = [1.0, 2.0, 3.2, 8.0, 16.0, 32.0]
    t = crossover_table(KS, [x * 1e-5 for x in td], [4e-5] * 6)
    r = one(find_crossovers(t.df()))  # no samples: decided on quartiles
    assert r.verdict == "crossover" and math.isnan(r.k_star_lo) and math.isnan(r.k_star_hi)
    assert list(find_crossovers(t.df()).columns)[-2:] == ["k_star_lo", "k_star_hi"]
