"""Sweeps in rounds (schema 2): combining a measurement's rounds, the hierarchical bootstrap,
and how crossovers and compare use it. Synthetic tables with known answers."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pytest

from symbench.analysis.compare import compare_tables, hierarchical_p
from symbench.analysis.crossover import _boot_medians, _row_rng, find_crossovers
from symbench.analysis.data import combine_rounds, dedupe, rounds_of, row_rounds, sample_index, sample_rounds
from symbench.analysis.stats import grouped_summary, hierarchical_boot_medians
from synth import MACHINE, row, sample_rows

STATS = ("time_s", "time_min_s", "time_q1_s", "time_q3_s", "time_mean_s", "time_std_s")


def rounds_table(kernel: str, k: int, rounds: Sequence[Sequence[float] | None], *,
                 statuses: Sequence[str] | None = None, loops: Sequence[int] | None = None,
                 messages: Sequence[str] | None = None, **kw: Any) -> tuple[list[dict], list[dict]]:
    """Rows and samples of one measurement taken in ``len(rounds)`` rounds."""
    rows, samples = [], []
    for i, s in enumerate(rounds):
        st = statuses[i] if statuses else "ok"
        r = row(kernel, k, s if s is not None else None, status=st, time_s=None if s is not None else math.nan,
                message=messages[i] if messages else "", **kw)
        r["round"] = i
        r["loops"] = loops[i] if loops else 1
        r["machine_id"], r["machine"] = MACHINE["machine_id"], MACHINE["machine_label"]
        rows.append(r)
        if s is not None:
            samples += [{**x, "round": i, "steal_share": np.nan, "others_cores": np.nan} for x in sample_rows(r, s)]
    return rows, samples


def frames(*parts: tuple[list[dict], list[dict]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (pd.DataFrame([r for p in parts for r in p[0]]), pd.DataFrame([s for p in parts for s in p[1]]))


def levels(median: float, shifts: Sequence[float], count: int = 25, spread: float = 0.01) -> list[np.ndarray]:
    """One array of samples per round: round i's samples lie within +-spread of median * shifts[i]."""
    return [median * f * (1.0 + spread * np.linspace(-1.0, 1.0, count)) for f in shifts]


# -- combine_rounds --------------------------------------------------------------------------

ROUNDS = [np.array([1.0, 1.2, 1.1, 1.4, 1.3]), np.array([2.0, 2.2, 2.1]), np.array([0.9, 1.5, 1.6, 1.7])]


def test_combine_rounds_pools_the_ok_rounds_samples():
    df, sm = frames(rounds_table("direct-numpy", 3, ROUNDS, loops=[10, 20, 5]))
    out = combine_rounds(df, sm)
    assert len(out) == 1 and "round" not in out.columns
    r = out.iloc[0]
    pooled = np.concatenate(ROUNDS)
    expect = {"time_s": np.median(pooled), "time_min_s": pooled.min(), "time_q1_s": np.percentile(pooled, 25),
              "time_q3_s": np.percentile(pooled, 75), "time_mean_s": pooled.mean(),
              "time_std_s": pooled.std(ddof=1)}
    for c, v in expect.items():
        assert r[c] == pytest.approx(v, rel=1e-12), c
    assert r["samples"] == 12 and r["loops"] == 20 and r["rounds"] == 3
    # gflops is flops / time: the first round's gflops (1.0) at its median 1.2, rescaled.
    assert r["gflops"] == pytest.approx(1.0 * 1.2 / np.median(pooled))


def test_combine_rounds_without_samples_combines_the_summaries():
    df, _ = frames(rounds_table("direct-numpy", 3, ROUNDS))
    r = combine_rounds(df).iloc[0]
    pooled = np.concatenate(ROUNDS)
    assert r["time_s"] == pytest.approx(np.median([1.2, 2.1, 1.55]))
    assert r["time_min_s"] == pytest.approx(0.9)
    assert r["time_q1_s"] == pytest.approx(np.median([np.percentile(s, 25) for s in ROUNDS]))
    assert r["time_q3_s"] == pytest.approx(np.median([np.percentile(s, 75) for s in ROUNDS]))
    assert r["samples"] == 12 and r["rounds"] == 3
    # Mean and standard deviation are exact from each round's mean, std and count.
    assert r["time_mean_s"] == pytest.approx(pooled.mean(), rel=1e-12)
    assert r["time_std_s"] == pytest.approx(pooled.std(ddof=1), rel=1e-12)


def test_rounds_whose_samples_are_missing_fall_back_to_the_summaries():
    df, sm = frames(rounds_table("direct-numpy", 3, ROUNDS))
    out = combine_rounds(df, sm[sm["round"] != 2])
    assert out.iloc[0]["time_s"] == pytest.approx(np.median([1.2, 2.1, 1.55]))


def test_a_failing_round_wins_and_says_which():
    df, sm = frames(rounds_table("direct-numpy", 3, [ROUNDS[0], ROUNDS[1], ROUNDS[2]],
                                 statuses=["ok", "mismatch", "ok"], messages=["", "rel_err 1e-3", ""]))
    r = combine_rounds(df, sm).iloc[0]
    assert r["status"] == "mismatch" and r["message"] == "round 1: rel_err 1e-3" and r["rounds"] == 1
    df, sm = frames(rounds_table("direct-numpy", 3, ROUNDS, statuses=["ok", "ok", "error"],
                                 messages=["", "", "boom"]))
    assert combine_rounds(df, sm).iloc[0]["message"] == "round 2: boom"


def test_only_ok_rounds_are_pooled_and_all_failed_keeps_the_first_round():
    df, sm = frames(rounds_table("direct-numpy", 3, [None, ROUNDS[1], ROUNDS[2]],
                                 statuses=["timeout", "ok", "ok"]))
    r = combine_rounds(df, sm).iloc[0]
    pooled = np.concatenate(ROUNDS[1:])
    assert r["status"] == "ok" and r["rounds"] == 2 and r["samples"] == pooled.size
    assert r["time_s"] == pytest.approx(np.median(pooled))
    df, sm = frames(rounds_table("direct-numpy", 3, [None, None], statuses=["timeout", "skipped"]))
    r = combine_rounds(df, sm).iloc[0]
    assert r["status"] == "timeout" and r["rounds"] == 1


def test_schema_1_and_empty_rounds():
    df, sm = frames(rounds_table("direct-numpy", 3, [ROUNDS[0]]), rounds_table("fft-scipy", 3, [ROUNDS[1]]))
    plain = df.drop(columns="round")
    out = combine_rounds(plain, sm.drop(columns="round"))
    assert out["rounds"].tolist() == [1, 1]
    pd.testing.assert_frame_equal(out.drop(columns="rounds"), plain)
    # An empty round is round 0: rounds NaN and 1 are two rounds of one measurement.
    df, sm = frames(rounds_table("direct-numpy", 3, ROUNDS[:2]))
    df["round"] = [np.nan, 1]
    sm["round"] = sm["round"].where(sm["round"] != 0, np.nan)
    r = combine_rounds(df, sm).iloc[0]
    assert r["rounds"] == 2 and r["time_s"] == pytest.approx(np.median(np.concatenate(ROUNDS[:2])))


def test_combine_keeps_order_and_other_measurements_apart():
    a = rounds_table("direct-numpy", 3, ROUNDS)
    b = rounds_table("fft-scipy", 3, ROUNDS[:2])
    c = rounds_table("direct-numpy", 5, [ROUNDS[0]])
    df, sm = frames(a, b, c)
    out = combine_rounds(df, sm)
    assert out[["kernel", "k", "rounds"]].values.tolist() == [["direct-numpy", 3, 3], ["fft-scipy", 3, 2],
                                                              ["direct-numpy", 5, 1]]


def test_dedupe_combines_raw_per_round_rows():
    df, _ = frames(rounds_table("direct-numpy", 3, ROUNDS), rounds_table("fft-scipy", 3, ROUNDS))
    out = dedupe(df)
    assert len(out) == 2 and out["rounds"].tolist() == [3, 3]
    assert out.iloc[0]["time_s"] == pytest.approx(np.median([1.2, 2.1, 1.55]))


def test_grouped_summary_is_measurements_statistics():
    s = pd.Series(np.concatenate(ROUNDS))
    by = pd.Series(np.repeat([0, 1, 2], [len(x) for x in ROUNDS]))
    out = grouped_summary(s, by)
    for g, x in enumerate(ROUNDS):
        assert out.loc[g, "time_s"] == np.median(x)
        assert out.loc[g, "time_q1_s"] == pytest.approx(np.percentile(x, 25), rel=1e-15)
        assert out.loc[g, "time_std_s"] == pytest.approx(x.std(ddof=1), rel=1e-12)
    one = grouped_summary(pd.Series([2.0]), pd.Series([0]))
    assert one.loc[0, "time_std_s"] == 0.0 and one.loc[0, "samples"] == 1


def test_sample_rounds_and_rounds_of():
    df, sm = frames(rounds_table("direct-numpy", 3, ROUNDS))
    idx = sample_rounds(sm)
    got = row_rounds(idx, df.iloc[0].to_dict())
    assert [a.tolist() for a in got] == [sorted(x) for x in ROUNDS]
    np.testing.assert_array_equal(sample_index(sm)[next(iter(idx))], np.sort(np.concatenate(ROUNDS)))
    one = sample_rounds(sm.drop(columns="round"))
    assert len(next(iter(one.values()))) == 1
    combined = combine_rounds(df, sm)
    assert rounds_of([{"config": {}}], combined) == 3
    assert rounds_of([{"config": {"rounds": 3}}]) == 3 and rounds_of([{}]) == 1
    other = combined.assign(run_id="other", rounds=1)
    assert rounds_of([], pd.concat([combined, other])) == 1


# -- the hierarchical bootstrap ---------------------------------------------------------------

def test_hierarchical_bootstrap_is_deterministic_and_stays_within_the_data():
    groups = [np.array([1.0, 1.1, 1.2]), np.array([2.0, 2.1]), np.array([3.0])]
    a = hierarchical_boot_medians(groups, 500, np.random.default_rng(7))
    b = hierarchical_boot_medians(groups, 500, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (500,) and a.min() >= 1.0 and a.max() <= 3.0
    # Rounds are drawn whole: a replicate of only round 2 gives 3.0, one the flat bootstrap almost never gives.
    assert (a == 3.0).any()


def test_hierarchical_median_matches_a_direct_computation():
    # Recompute each replicate's pooled median from the same draws, without padding.
    groups = [np.array([1.0, 4.0, 2.0, 8.0]), np.array([3.0, 5.0]), np.array([7.0, 6.0, 9.0])]
    sizes = np.array([g.size for g in groups])
    rng = np.random.default_rng(3)
    got = hierarchical_boot_medians(groups, 50, rng)
    rng = np.random.default_rng(3)
    drawn = rng.integers(0, 3, size=(50, 3))
    u = rng.random((50, 3, 4))
    for b in range(50):
        pool = [groups[r][min(int(u[b, j, i] * sizes[r]), sizes[r] - 1)]
                for j, r in enumerate(drawn[b]) for i in range(sizes[r])]
        assert got[b] == np.median(pool)


def test_one_round_is_the_flat_bootstrap():
    s = np.sort(np.random.default_rng(1).uniform(1, 2, 9))
    flat = _boot_medians(s, 300, 0, "m|k|3")
    hier = hierarchical_boot_medians([s], 300, _row_rng(0, "m|k|3"))
    np.testing.assert_array_equal(flat, hier)


def pair_in_rounds(shift_d: Sequence[float], shift_f: Sequence[float], *, with_rounds: bool = True
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """direct-numpy vs fft-scipy at k=3 (direct 2x faster) and k=100 (fft 5% faster within each round)."""
    parts = [rounds_table("direct-numpy", 3, levels(0.5, [1.0] * len(shift_d))),
             rounds_table("fft-scipy", 3, levels(1.0, [1.0] * len(shift_f))),
             rounds_table("direct-numpy", 100, levels(1.05, shift_d)),
             rounds_table("fft-scipy", 100, levels(1.0, shift_f))]
    df, sm = frames(*parts)
    if not with_rounds:
        # The same samples as if one process had taken them all (schema 1).
        df, sm = frames(*[rounds_table(r[0][0]["kernel"], r[0][0]["k"], [np.concatenate(levels_of(r))])
                          for r in parts])
        df, sm = df.drop(columns="round"), sm.drop(columns="round")
    return df, sm


def levels_of(part: tuple[list[dict], list[dict]]) -> list[np.ndarray]:
    s = pd.DataFrame(part[1])
    return [g["time_s"].to_numpy() for _, g in s.groupby("round")]


# Rounds shifted by up to +-20 %, as drawn once per kernel; the middle round of each is unshifted.
SHIFT_D = (0.82, 1.0, 1.2)
SHIFT_F = (1.18, 0.83, 1.0)


def test_between_round_spread_makes_a_flat_decision_inconclusive():
    flat = find_crossovers(*pair_in_rounds(SHIFT_D, SHIFT_F, with_rounds=False), seed=1)
    hier = find_crossovers(*pair_in_rounds(SHIFT_D, SHIFT_F), seed=1)
    assert flat.iloc[0]["verdict"] == "crossover"
    assert flat.iloc[0]["note"].startswith("bootstrap of median")
    assert hier.iloc[0]["verdict"] == "inconclusive"
    assert "paired rounds" in hier.iloc[0]["note"] and ">=3 rounds" in hier.iloc[0]["note"]
    assert hier.iloc[0]["decided_by"] == "bootstrap"
    # Same medians, so the same bracket; only the confidence differs.
    assert (flat.iloc[0]["k_lo"], flat.iloc[0]["k_hi"]) == (hier.iloc[0]["k_lo"], hier.iloc[0]["k_hi"])
    assert hier.iloc[0]["confidence"] < flat.iloc[0]["confidence"]


def test_consistent_rounds_stay_decided():
    out = find_crossovers(*pair_in_rounds((1.0, 1.01, 0.99), (1.0, 0.99, 1.01)), seed=1)
    assert out.iloc[0]["verdict"] == "crossover" and "paired rounds" in out.iloc[0]["note"]


def test_a_round_slow_for_both_kernels_moves_both_not_their_ratio():
    # Every round is 5 % apart in the same direction, but the rounds' levels move by
    # +-25 % for both kernels alike (the machine's speed in that round's minutes):
    # the rounds are drawn jointly for the pair, so the crossover stays decided.
    common = (0.75, 1.0, 1.25)
    out = find_crossovers(*pair_in_rounds(common, common), seed=1)
    assert out.iloc[0]["verdict"] == "crossover" and "paired rounds" in out.iloc[0]["note"]
    # The same levels drawn independently per kernel would not separate them.
    d = levels(1.05, common)
    f = levels(1.0, common)
    bd = hierarchical_boot_medians(d, 1000, np.random.default_rng(1))
    bf = hierarchical_boot_medians(f, 1000, np.random.default_rng(2))
    assert 0.2 < float((bd > bf).mean()) < 0.8
    drawn = np.random.default_rng(3).integers(0, 3, size=(1000, 3))
    bd = hierarchical_boot_medians(d, 1000, np.random.default_rng(1), drawn)
    bf = hierarchical_boot_medians(f, 1000, np.random.default_rng(2), drawn)
    assert float((bd > bf).mean()) == 1.0
    with pytest.raises(ValueError, match="shape"):
        hierarchical_boot_medians(d, 1000, np.random.default_rng(1), drawn[:, :2])


def test_raw_per_round_rows_give_one_row_per_key():
    df, sm = pair_in_rounds(SHIFT_D, SHIFT_F)
    out = find_crossovers(df, sm)
    assert len(out) == 1 and out.iloc[0]["k_values"] == "3,100"


def test_one_round_with_a_round_column_gives_todays_numbers():
    df, sm = pair_in_rounds((1.0,), (1.0,), with_rounds=True)
    plain = find_crossovers(df.drop(columns="round"), sm.drop(columns="round"), seed=2)
    with_col = find_crossovers(df, sm, seed=2)
    pd.testing.assert_frame_equal(plain, with_col)
    assert "hierarchical" not in with_col.iloc[0]["note"]


# -- compare ------------------------------------------------------------------------------------

def one_row(median: float, shifts: Sequence[float], run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    df, sm = frames(rounds_table("direct-numpy", 3, levels(median, shifts), run_id=run_id))
    return combine_rounds(df, sm), sm


def test_compare_uses_the_hierarchical_test_with_rounds():
    base, bs = one_row(1.0, (0.8, 1.0, 1.2), "base")
    new, ns = one_row(1.15, (0.83, 1.0, 1.22), "new")
    out = compare_tables(base, new, bs, ns).iloc[0]
    assert out["status"] == "noise" and "hierarchical bootstrap, 3+3 rounds" in out["note"]
    assert out["p_value"] > 0.05
    # The same samples as one round each: Mann-Whitney treats them as independent and flags it.
    flat = compare_tables(base, new, bs.drop(columns="round"), ns.drop(columns="round")).iloc[0]
    assert flat["status"] == "regression" and "hierarchical" not in flat["note"]


def test_compare_with_rounds_still_flags_a_real_regression():
    base, bs = one_row(1.0, (0.98, 1.0, 1.02), "base")
    new, ns = one_row(1.4, (1.01, 0.99, 1.0), "new")
    out = compare_tables(base, new, bs, ns).iloc[0]
    assert out["status"] == "regression" and out["p_value"] < 0.01
    again = compare_tables(base, new, bs, ns).iloc[0]
    assert again["p_value"] == out["p_value"]
    faster = compare_tables(new, base, ns, bs).iloc[0]
    assert faster["status"] == "improvement"


def test_hierarchical_p_counts_replicates_not_beyond_the_bound():
    same = levels(1.0, (1.0, 1.0))
    p = hierarchical_p(same, same, 1.1, True, 999, np.random.default_rng(0))
    assert p == 1.0  # no replicate ratio exceeds 1.1
    far = levels(2.0, (1.0, 1.0))
    assert hierarchical_p(far, same, 1.1, True, 999, np.random.default_rng(0)) == pytest.approx(1 / 1000)


def test_moderated_score_is_students_t_with_the_pooled_variance():
    from scipy.stats import t as student_t

    from symbench.analysis.crossover import PRIOR_DF, moderated_score, pooled_variance

    lr = np.array([0.2, 0.25, 0.15])
    p, reps = moderated_score(lr, (0.01, 100), 4000, np.random.default_rng(0))
    var = (PRIOR_DF * 0.01 + 2 * lr.var(ddof=1)) / (PRIOR_DF + 2)
    assert p == pytest.approx(student_t.cdf(lr.mean() / math.sqrt(var / 3), PRIOR_DF + 2), rel=1e-12)
    assert reps.mean() == pytest.approx(lr.mean(), abs=0.01) and reps.std() > 0
    # A prior with fewer degrees of freedom than PRIOR_DF weighs only what it has.
    p_small, _ = moderated_score(lr, (0.01, 2), 10, np.random.default_rng(0))
    var2 = (2 * 0.01 + 2 * lr.var(ddof=1)) / 4
    assert p_small == pytest.approx(student_t.cdf(lr.mean() / math.sqrt(var2 / 3), 4), rel=1e-12)
    # No spread at all: certain.
    assert moderated_score(np.array([0.1, 0.1]), (0.0, 5), 10, np.random.default_rng(0))[0] == 1.0
    assert pooled_variance([np.array([0.0, 0.2]), np.array([1.0])]) == (pytest.approx(0.02), 1)


def test_the_pooled_variance_keeps_one_odd_cell_from_deciding_alone():
    # Many cells whose rounds agree within 2 %, and one k whose three rounds happen to
    # agree too although the table says rounds move by more: its own variance alone
    # would call a 3 % difference certain; moderated by the table's, it stays a tie.
    from symbench.analysis.crossover import moderated_score

    lr = np.array([0.03, 0.031, 0.029])
    own_only, _ = moderated_score(lr, (math.nan, 0), 10, np.random.default_rng(0))
    pooled, _ = moderated_score(lr, (0.1 ** 2, 200), 10, np.random.default_rng(0))
    assert own_only > 0.99 and 0.5 < pooled < 0.95


# -- compare: the rows' spread between runs -------------------------------------------------------

def grid_in_rounds(run_id: str, factor: Sequence[float], slow: float = 1.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """40 rows of direct-numpy and 4 of fft-scipy (times ``slow``), each times its ``factor``; 5 tight rounds."""
    parts = [rounds_table("direct-numpy", 3 + i, levels(1e-4 * (1 + i % 5) * factor[i], (0.99, 1.0, 1.01, 1.0, 0.995)),
                          run_id=run_id) for i in range(40)]
    parts += [rounds_table("fft-scipy", 3 + i, levels(2e-4 * slow * factor[40 + i], (1.0, 0.99, 1.01, 1.0, 1.0)),
                           run_id=run_id) for i in range(4)]
    df, sm = frames(*parts)
    return combine_rounds(df, sm), sm


def test_rows_that_move_on_their_own_between_runs_widen_the_test_and_a_real_change_still_shows():
    from symbench.analysis.compare import between_run_spread, compare_runs
    from symbench.analysis.data import Runs

    # Each row's level is drawn anew in the new run (log SD 0.12, up to 2.25 SDs here), far beyond
    # its rounds' 1 %; fft-scipy is also 1.8x slower, and the whole run 1.05x (the machine).
    offsets = 1.05 * np.exp(np.random.default_rng(4).normal(0.0, 0.12, 44))
    base, bs = grid_in_rounds("base", np.ones(44))
    new, ns = grid_in_rounds("new", offsets, slow=1.8)
    cmp = compare_runs(Runs(base, bs, [{}], ["a"]), Runs(new, ns, [{}], ["b"]))
    assert cmp.spread_rows == 44 == cmp.rounds_rows and cmp.spread_applied and 0.08 < cmp.spread < 0.16
    st = cmp.rows.set_index(["kernel", "k"]).status
    assert (st["fft-scipy"] == "regression").all()
    assert not any("one round each" in w for w in cmp.warnings)
    assert not st["direct-numpy"].isin(["regression", "improvement"]).any()
    assert "rows' spread between runs" in cmp.rows.set_index("kernel").loc["fft-scipy", "note"].iloc[0]
    # Without the spread, the rows' own moves are taken for changes.
    plain = compare_tables(base, new, bs, ns, scale=cmp.shift)
    assert plain[plain.kernel == "direct-numpy"].status.isin(["regression", "improvement"]).sum() >= 5
    # The same runs without --no-common-mode's corrections: spread reported, not applied.
    off = compare_runs(Runs(base, bs, [{}], ["a"]), Runs(new, ns, [{}], ["b"]), common_mode_correction=False)
    assert off.spread == cmp.spread and not off.spread_applied and not off.shift_applied
    # Quiet runs: nothing beyond the rounds' own spread, and the estimate is robust to the changed rows.
    assert between_run_spread(np.r_[np.zeros(40), np.full(4, 0.6)], np.full(44, 1e-4)) == 0.0
    lr = np.random.default_rng(0).normal(0.0, 0.2, 400)
    assert between_run_spread(lr, np.full(400, 0.1 ** 2)) == pytest.approx(math.sqrt(0.2 ** 2 - 0.01), rel=0.1)
    assert between_run_spread(lr[:7], np.zeros(7)) == 0.0  # too few rows to tell
    # Rows of two kinds: noisy ones whose rounds explain their moves, and tight ones that moved 0.1 on
    # their own. Subtracting the median row's variance from the overall spread would see nothing here.
    r = np.random.default_rng(2)
    lr = np.r_[r.normal(0.0, 0.3, 200), r.normal(0.0, 0.1, 200)]
    wv = np.r_[np.full(200, 0.3 ** 2), np.full(200, 1e-4)]
    assert 0.08 < between_run_spread(lr, wv) < 0.14
