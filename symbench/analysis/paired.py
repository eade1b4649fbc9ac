"""Paired statistics for ``symbench ab``: per-pair log-ratios, their median and a sign-test interval.

Each row of an A/B job has ``n`` pairs of samples, the two samples of a pair
taken milliseconds apart (:mod:`symbench.sweep.ab`). A slow drift of the
machine moves both samples of a pair alike and cancels in their ratio, which
is what makes the pairs worth more than two independent sets of samples.

Estimate
    ``d_i = log(new_i / base_i)``; the row's ratio is ``exp(median(d))``.
Interval
    The distribution-free confidence interval of the median from the sign
    test: with ``j`` the largest count such that ``P(Binomial(n, 1/2) <= j - 1)
    <= alpha``, the interval is ``[d_(j), d_(n+1-j)]`` (order statistics), each
    bound one-sided at level ``alpha``. It assumes only that pairs are
    independent, not that the log-ratios are symmetric or normal (a
    preempted sample gives one wild pair, which moves the median and the
    interval by at most one rank). It is exact, which makes the false-alarm
    rate a known quantity, and it needs no scipy. With ``alpha = 0.01`` the
    fewest pairs that can reach it are 7; :data:`symbench.sweep.ab.DEFAULT_PAIRS`
    is 20.
Incarnations
    Pairs of one incarnation (one pair of worker processes) share those
    processes' offsets, so they are not independent. With several
    incarnations the interval is the hull of the pairs' interval, the
    sign-test interval of the incarnations' medians at
    :data:`INCARNATION_ALPHA` (7 incarnations: the second smallest and largest
    median) and their t interval at :data:`INCARNATION_T_ALPHA`. The sign test
    lets one incarnation go the other way; the t interval weighs how far they
    went, so that six incarnations just above the threshold and one far below
    are not a verdict.
Verdict
    ``regression`` when the estimate exceeds ``1 + threshold`` *and* the
    interval's lower bound exceeds 1 (slower, with confidence ``1 - alpha``);
    ``improvement`` is the mirror (estimate below ``1 / (1 + threshold)`` and
    upper bound below 1); ``noise`` when the estimate is beyond the threshold
    but the interval reaches 1; ``untestable`` when it is beyond the
    threshold with too few pairs for any test to reach ``alpha``;
    ``unchanged`` otherwise. Requiring the *lower bound* to clear ``1 +
    threshold`` would be stricter still, but would then miss a true 25 %
    slowdown whenever the interval is wider than about 12 %, which happens on
    a shared machine; A/A pairs have a true ratio of 1, so an estimate beyond
    10 % that is also significant is rare (measured in docs/performance.md).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import pandas as pd

#: ``symbench ab`` numbers sample ``i`` of a row's incarnation ``r`` (its ``r``-th pair of
#: fresh worker processes) ``r * INCARNATION_STRIDE + i``.
INCARNATION_STRIDE = 100_000

#: One-sided level of the incarnations' sign-test bound (see the module's rules): with 7
#: incarnations it is their second smallest (largest) median, P = 8/128; the guard lets
#: one incarnation's offset go the other way without hiding a real change.
INCARNATION_ALPHA = 0.07

#: One-sided level of the t interval of the incarnations' medians, the third part of the hull
#: (see the module's rules): the sign tests count incarnations on each side of 1 but not how
#: far, so six incarnations a little above 1.1 and one far below passed them in A/A. At 0.025
#: an A/A row of numpy.convolve 4096 x 257 whose seven incarnations all came out 1.00-1.23
#: (per-process offsets) was still flagged; at 0.005 it is ``noise``, and a real change left
#: ``noise`` by it is decided by the rows' extra incarnations (``symbench.sweep.ab``).
INCARNATION_T_ALPHA = 0.005

#: Columns ab adds to :data:`symbench.analysis.compare.COMPARE_COLUMNS`.
INTERVAL_COLUMNS = ("ratio_lo", "ratio_hi", "pairs")


def log_ratios(base: np.ndarray | None, new: np.ndarray | None) -> np.ndarray:
    """``log(new_i / base_i)`` of the pairs both sides have (sample ``i`` with sample ``i``).

    Pairs with a non-positive or non-finite time are dropped.
    """
    if base is None or new is None:
        return np.empty(0)
    b, n, good = _kept_pairs(base, new)
    return np.log(n[good] / b[good])


def pair_groups(base: np.ndarray, new: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The entries of ``groups`` (one per base sample) for the pairs :func:`log_ratios` keeps, in its order."""
    b, _, good = _kept_pairs(base, new)
    return np.asarray(groups[: b.size])[good]


def _kept_pairs(base: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both sides cut to the pairs they share, and the mask of pairs with finite positive times."""
    m = min(len(base), len(new))
    b, n = np.asarray(base[:m], dtype=float), np.asarray(new[:m], dtype=float)
    return b, n, np.isfinite(b) & np.isfinite(n) & (b > 0) & (n > 0)


def binom_cdf_half(k: int, n: int) -> float:
    """``P(Binomial(n, 1/2) <= k)``, exactly."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return sum(math.comb(n, i) for i in range(k + 1)) / 2.0 ** n


def sign_rank(n: int, alpha: float) -> int:
    """The order statistic (1-based) that bounds the median at one-sided level ``alpha``; 0 if none can.

    The largest ``j`` with ``P(Binomial(n, 1/2) <= j - 1) <= alpha``: the
    median is below ``d_(j)`` with probability at most ``alpha``.
    """
    j = 0
    while j < n and binom_cdf_half(j, n) <= alpha:
        j += 1
    return j


def sign_p(d: np.ndarray, greater: bool) -> float:
    """One-sided sign-test p-value of ``median(d) > 0`` (``greater``) or ``< 0``; ties dropped."""
    d = d[d != 0]
    n = d.size
    if n == 0:
        return 1.0
    wins = int((d > 0).sum() if greater else (d < 0).sum())
    return 1.0 - binom_cdf_half(wins - 1, n)


def median_interval(d: np.ndarray, alpha: float) -> tuple[float, float, float]:
    """Median of ``d`` and its sign-test interval, each bound one-sided at ``alpha``.

    Returns
    -------
    (estimate, lo, hi) : floats
        ``lo = -inf`` and ``hi = inf`` when there are too few values for ``alpha``.
    """
    d = np.sort(np.asarray(d, dtype=float))
    n = d.size
    if n == 0:
        return math.nan, -math.inf, math.inf
    est = float(np.median(d))
    j = sign_rank(n, alpha)
    if j == 0:
        return est, -math.inf, math.inf
    return est, float(d[j - 1]), float(d[n - j])


def t_interval(values: np.ndarray, alpha: float) -> tuple[float, float]:
    """Student's t interval of the mean of ``values``, each bound one-sided at ``alpha``.

    ``(-inf, inf)`` with fewer than 3 values. An outlier widens it (it
    inflates the standard deviation), so in the hull it can only make a
    verdict more cautious.
    """
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if v.size < 3:
        return -math.inf, math.inf
    half = float(stats.t.ppf(1 - alpha, v.size - 1)) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return float(v.mean()) - half, float(v.mean()) + half


def paired_verdict(d: np.ndarray, threshold: float, alpha: float,
                   groups: np.ndarray | None = None) -> dict[str, Any]:
    """Status, ratio, interval, p-value and note of one row's log-ratios (see the module's rules).

    Parameters
    ----------
    d : ndarray
        Per-pair ``log(new / base)``.
    threshold : float
        Relative change that counts (0.10: 10 %).
    alpha : float
        One-sided level of each bound of the interval.
    groups : ndarray, optional
        The incarnation (pair of worker processes) of each pair. With more than
        one, the interval is the hull of the pairs' interval and the sign-test
        and t intervals of the incarnations' medians (see the module's rules).

    Returns
    -------
    dict
        ``status``, ``ratio``, ``ratio_lo``, ``ratio_hi``, ``p_value``, ``pairs``, ``note``.
    """
    d = np.asarray(d, dtype=float)
    est, lo, hi = median_interval(d, alpha)
    meds = np.empty(0)
    if groups is not None and d.size:
        g = np.asarray(groups)[: d.size]
        labels = np.unique(g)
        if labels.size > 1:
            meds = np.array([np.median(d[g == x]) for x in labels])
            _, lo_i, hi_i = median_interval(meds, INCARNATION_ALPHA)
            lo_t, hi_t = t_interval(meds, INCARNATION_T_ALPHA)
            lo, hi = min(lo, lo_i, lo_t), max(hi, hi_i, hi_t)
    out: dict[str, Any] = {"ratio": math.exp(est) if math.isfinite(est) else math.nan,
                           "ratio_lo": math.exp(lo), "ratio_hi": math.exp(hi), "pairs": int(d.size),
                           "p_value": math.nan, "note": ""}
    if d.size == 0:
        out.update(status="untestable", note="no pairs of samples")
        return out
    r = out["ratio"]
    slower, faster = r > 1 + threshold, r < 1 / (1 + threshold)
    interval = f"[{out['ratio_lo']:.3f}, {out['ratio_hi']:.3f}]"
    if not (slower or faster):
        out.update(status="unchanged")
        return out
    direction = "slower" if slower else "faster"
    if sign_rank(d.size, alpha) == 0 or (meds.size and sign_rank(meds.size, INCARNATION_ALPHA) == 0):
        what = f"{d.size} pairs" if sign_rank(d.size, alpha) == 0 else f"{meds.size} incarnations"
        out.update(status="untestable", note=f"{r:.2f}x ({direction}) but {what} cannot reach p < {alpha:g}")
        return out
    p = sign_p(d, greater=slower)
    out["p_value"] = p
    of = f"{d.size} pairs" + (f" in {meds.size} incarnations" if meds.size else "")
    if (slower and lo > 0) or (faster and hi < 0):
        out.update(status="regression" if slower else "improvement",
                   note=f"{r:.2f}x {direction}, {1 - alpha:.0%} interval {interval}, {of}")
    else:
        out.update(status="noise", note=f"{r:.2f}x {direction} but the interval {interval} includes 1")
    return out


def ordered_sample_index(samples: pd.DataFrame | None) -> dict[tuple[str, ...], np.ndarray]:
    """Raw samples by (kernel, problem key, source), in the order they were taken (``sample``).

    Unlike :func:`symbench.analysis.data.sample_index`, the order is kept: it is what pairs them.
    """
    from symbench.problem import KEY_FIELDS

    if samples is None or len(samples) == 0 or "time_s" not in samples.columns:
        return {}
    s = samples.copy()
    if "source" not in s.columns:
        s["source"] = "grid"
    s["time_s"] = pd.to_numeric(s["time_s"], errors="coerce")
    if "sample" in s.columns:
        s = s.sort_values("sample", kind="stable")
    cols = ["kernel", *KEY_FIELDS, "source"]
    return {tuple(str(v) for v in key): g["time_s"].to_numpy(dtype=float)
            for key, g in s.groupby(cols, sort=False)}


def ordered_incarnation_index(samples: pd.DataFrame | None) -> dict[tuple[str, ...], np.ndarray]:
    """The incarnation of each sample (``sample // INCARNATION_STRIDE``), keyed and ordered as
    :func:`ordered_sample_index`; all 0 for runs without incarnations."""
    from symbench.problem import KEY_FIELDS

    if samples is None or len(samples) == 0 or "time_s" not in samples.columns or "sample" not in samples.columns:
        return {}
    s = samples.copy()
    if "source" not in s.columns:
        s["source"] = "grid"
    s = s.sort_values("sample", kind="stable")
    inc = pd.to_numeric(s["sample"], errors="coerce").fillna(0).astype(np.int64) // INCARNATION_STRIDE
    s["_inc"] = inc.to_numpy()
    cols = ["kernel", *KEY_FIELDS, "source"]
    return {tuple(str(v) for v in key): g["_inc"].to_numpy()
            for key, g in s.groupby(cols, sort=False)}


def row_incarnations(inc_b: Mapping[tuple[str, ...], np.ndarray], key: Mapping[str, Any],
                     base: Mapping[tuple[str, ...], np.ndarray], new: Mapping[tuple[str, ...], np.ndarray]
                     ) -> np.ndarray | None:
    """The incarnation of each of a row's pairs (as :func:`row_pairs` returns them), from the base's samples."""
    from symbench.problem import KEY_FIELDS

    k = tuple(str(key.get(c, "grid" if c == "source" else "")) for c in ("kernel", *KEY_FIELDS, "source"))
    g, b, n = inc_b.get(k), base.get(k), new.get(k)
    if g is None or b is None or n is None:
        return None
    return pair_groups(b, n, g)


def row_pairs(index_b: Mapping[tuple[str, ...], np.ndarray], index_n: Mapping[tuple[str, ...], np.ndarray],
              key: Mapping[str, Any]) -> np.ndarray:
    """Log-ratios of one row from two :func:`ordered_sample_index` tables."""
    from symbench.problem import KEY_FIELDS

    k = tuple(str(key.get(c, "grid" if c == "source" else "")) for c in ("kernel", *KEY_FIELDS, "source"))
    return log_ratios(index_b.get(k), index_n.get(k))


__all__ = ["INCARNATION_ALPHA", "INCARNATION_STRIDE", "INCARNATION_T_ALPHA", "INTERVAL_COLUMNS", "binom_cdf_half", "log_ratios", "median_interval", "pair_groups",
           "ordered_incarnation_index", "ordered_sample_index", "paired_verdict", "row_incarnations", "row_pairs",
           "sign_p", "sign_rank", "t_interval"]
