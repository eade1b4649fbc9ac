"""Crossovers: from which kernel size k the FFT kernel beats the direct one.

For one *pair* (a ``direct`` kernel and an ``fft`` kernel of the same op, on the
same device and machine) at one problem group (op, group, dim, dtype, mode,
batch, c_in, c_out, threads, n), over the k both measured:

* **k\\*** is the smallest measured k from which the fft kernel is faster at
  that k *and at every larger measured k*. Scanning from the largest k down is
  robust to non-monotonic timings (``numpy.convolve`` is faster at k=32 than at
  k=23): a lucky dip of the fft kernel below the crossover does not count.
* ``k_hi`` is k\\* itself and ``k_lo`` the measured k just below it (the
  bracket ``(k_lo, k_hi]``). ``k_star`` is interpolated where
  ``log(t_direct / t_fft)`` crosses 0 between them, linearly in ``log k``
  (k grids are usually geometric).
* Verdicts: ``crossover``; ``fft_always`` (fft faster at every measured k:
  ``k_hi`` is the smallest k, k\\* is at or below it); ``direct_always`` (fft
  not faster at the largest k: ``k_lo`` is the largest k, k\\* is above it);
  ``inconclusive`` when the raw samples cannot separate the two kernels at the
  bracket (see below). An inconclusive row keeps the bracket of the medians.

How a verdict is decided
------------------------
The point verdict uses the medians (``time_s``). Then the raw samples are
bootstrapped: each kernel's samples at each k are resampled ``n_boot`` times
and the median taken, which gives ``P(fft faster)`` at every k. The verdict
stands when ``P >= 1 - alpha`` at ``k_hi`` and every larger k (fft side) and
``P <= alpha`` at ``k_lo`` (direct side); otherwise it is ``inconclusive`` and
``note`` names the k where the two kernels tie within noise. ``confidence`` is
the share of bootstrap replicates that put k\\* in the same bracket (the same
verdict included). Without raw samples the interquartile ranges of
``measurements.csv`` decide instead (separated when they do not overlap) and
``confidence`` is empty; ``decided_by`` says which was used.

Rounds
------
When both kernels' samples at a k come from two or more rounds (fresh
processes; ``samples.csv``'s ``round``), the replicates at that k come from
:func:`~symbench.analysis.stats.hierarchical_boot_medians`: the rounds are
resampled, then the samples within each drawn round. The spread between rounds
then widens the replicates, and a verdict that only one process's noise
separated becomes ``inconclusive``. Single-round data is bootstrapped flat, as
before, with the same numbers. ``note`` says which bootstrap was used.

The k\\* interval
----------------
``k_star_lo`` and ``k_star_hi`` are the 2.5 and 97.5 percentiles
(:data:`K_STAR_INTERVAL`) of the k\\* of the bootstrap replicates: each
replicate's medians give a bracket (:func:`crossover_position`) and a k\\*
interpolated in ``log k`` exactly as the point k\\*. A replicate in which the
fft kernel wins at every measured k counts as the smallest k, one in which it
never wins from some k on counts as the largest k: the interval never reaches
beyond the measured ks. NaN unless the verdict is ``crossover`` and every k was
decided by the bootstrap. For a one-round run it covers the noise *within* the
run (the resampled samples), not what changes from one run, boot or machine
state to the next; with several rounds it covers the spread between the rounds'
processes too (not between boots or machines).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from symbench.analysis.data import dedupe, ok_rows, row_rounds, row_samples, sample_rounds
from symbench.analysis.stats import hierarchical_boot_medians, log_interpolate_k
from symbench.problem import SERIES_FIELDS

#: The report columns fixed by the file format (docs/formats.md), in order.
REPORT_COLUMNS = (
    "op", "group", "dim", "dtype", "mode", "batch", "c_in", "c_out", "threads", "n",
    "direct_kernel", "fft_kernel", "verdict", "k_star", "k_lo", "k_hi", "speedup_at_kmax", "log2_n",
)
#: Columns of :func:`find_crossovers`: the fixed ones first, then ours.
CROSSOVER_COLUMNS = (
    *REPORT_COLUMNS, "confidence", "decided_by", "note", "k_values", "device", "machine", "machine_id",
    "k_star_lo", "k_star_hi",
)
#: Percentiles of the bootstrap replicates' k\\* that bound ``k_star_lo`` and ``k_star_hi``.
K_STAR_INTERVAL = (2.5, 97.5)
#: A problem group: everything but the kernel and k.
GROUP_COLUMNS = SERIES_FIELDS
#: A series: a problem group without n (one line of a k* vs n plot).
SERIES_COLUMNS = ("machine_id", "device", *GROUP_COLUMNS[:-1])
VERDICTS = ("crossover", "fft_always", "direct_always", "inconclusive")

DEFAULT_ALPHA = 0.05
DEFAULT_BOOT = 1000


@dataclass(frozen=True)
class Bracket:
    """Where k\\* lies among the measured ks of one pair.

    Attributes
    ----------
    position : int
        Index of ``k_hi`` in the sorted ks; 0 for ``fft_always``, ``len(ks)`` for
        ``direct_always``.
    verdict : str
        ``crossover``, ``fft_always`` or ``direct_always`` (from the medians alone).
    k_lo, k_hi : float
        The bracket ``(k_lo, k_hi]`` (NaN where it is open).
    k_star : float
        Interpolated k\\* (NaN unless ``crossover``).
    """

    position: int
    verdict: str
    k_lo: float
    k_hi: float
    k_star: float


def crossover_position(fft_faster: Sequence[bool] | np.ndarray) -> np.ndarray | int:
    """Index of k\\* among sorted ks: the first k from which fft is faster at every larger k.

    Parameters
    ----------
    fft_faster : array of bool, shape (K,) or (B, K)
        Whether the fft kernel is faster at each k (ascending), for one or many replicates.

    Returns
    -------
    int or ndarray of int
        ``K - (length of the all-True suffix)``: 0 when fft is faster everywhere,
        ``K`` when it is not faster at the largest k.
    """
    f = np.asarray(fft_faster, dtype=bool)
    suffix = np.logical_and.accumulate(f[..., ::-1], axis=-1)
    pos = f.shape[-1] - suffix.sum(axis=-1)
    return int(pos) if f.ndim == 1 else pos


def bracket(ks: Sequence[float], t_direct: Sequence[float], t_fft: Sequence[float]) -> Bracket:
    """The crossover bracket of one pair from its median times.

    Parameters
    ----------
    ks : sequence of float
        Measured kernel sizes, ascending, each measured by both kernels.
    t_direct, t_fft : sequence of float
        Median seconds per call at each k.

    Returns
    -------
    Bracket

    Examples
    --------
    >>> b = bracket([3, 5, 2049, 4097], [1e-5, 2e-5, 4e-3, 2e-2], [4e-4, 4e-4, 3e-4, 7e-4])
    >>> b.verdict, b.k_lo, b.k_hi
    ('crossover', 5.0, 2049.0)
    """
    k = np.asarray(ks, dtype=float)
    td = np.asarray(t_direct, dtype=float)
    tf = np.asarray(t_fft, dtype=float)
    if k.size == 0:
        raise ValueError("bracket needs at least one k")
    pos = crossover_position(td > tf)
    if pos == 0:
        return Bracket(0, "fft_always", math.nan, float(k[0]), math.nan)
    if pos == k.size:
        return Bracket(pos, "direct_always", float(k[-1]), math.nan, math.nan)
    lo, hi = pos - 1, pos
    lr_lo, lr_hi = math.log(td[lo] / tf[lo]), math.log(td[hi] / tf[hi])  # lr_lo <= 0 < lr_hi
    k_star = log_interpolate_k(float(k[lo]), float(k[hi]), lr_lo, lr_hi)
    return Bracket(pos, "crossover", float(k[lo]), float(k[hi]), k_star)


def _row_rng(seed: int, key: str) -> np.random.Generator:
    # Seeded by the row's key, so a row's replicates do not depend on which
    # other rows are in the table or on the order they come in.
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def _boot_medians(samples: np.ndarray, n_boot: int, seed: int, key: str) -> np.ndarray:
    rng = _row_rng(seed, key)
    idx = rng.integers(0, samples.size, size=(n_boot, samples.size))
    return np.median(samples[idx], axis=1)


#: Fewest rounds both kernels' samples must come from for the hierarchical bootstrap.
MIN_ROUNDS = 2


def multi_round(*rounds: Sequence[np.ndarray] | None) -> bool:
    """Whether every one of ``rounds`` (per-round sample arrays, or None) has at least :data:`MIN_ROUNDS`."""
    return all(r is not None and len(r) >= MIN_ROUNDS for r in rounds)


#: Weight, in degrees of freedom, of the run's pooled between-round variance in each cell's
#: variance (:func:`moderated_score`): a cell's own 3 rounds give 2 degrees of freedom.
PRIOR_DF = 10.0


def round_log_ratios(d_r: Sequence[np.ndarray] | None, f_r: Sequence[np.ndarray] | None) -> np.ndarray | None:
    """``log(median_direct / median_fft)`` of each round, when both kernels have the same rounds (>= 2)."""
    if not multi_round(d_r, f_r) or len(d_r) != len(f_r):  # type: ignore[arg-type]
        return None
    assert d_r is not None and f_r is not None
    return np.log([np.median(a) for a in d_r]) - np.log([np.median(b) for b in f_r])


def pooled_variance(log_ratios: Sequence[np.ndarray]) -> tuple[float, int]:
    """The pooled variance of per-round log ratios around their own cell's mean, and its degrees of freedom.

    Examples
    --------
    >>> v, df = pooled_variance([np.array([0.1, 0.3]), np.array([1.0, 1.0, 1.3])])
    >>> round(v, 6), df
    (0.026667, 3)
    """
    ss = 0.0
    dof = 0
    for lr in log_ratios:
        if lr is not None and lr.size >= 2:
            ss += float(np.sum((lr - lr.mean()) ** 2))
            dof += lr.size - 1
    return (ss / dof if dof else math.nan), dof


def moderated_score(lr: np.ndarray, prior: tuple[float, int], n_boot: int, rng: np.random.Generator
                    ) -> tuple[float, np.ndarray]:
    """P(fft faster) from the rounds' log ratios, and replicates of their mean log ratio.

    Each round's ``log(t_direct / t_fft)`` is one paired observation: both kernels
    were measured in that round's process and minutes, in turns. With R rounds,
    the mean log ratio has standard error ``sqrt(s2 / R)``, where ``s2`` moderates
    the cell's own variance of the R values (R - 1 degrees of freedom, a very
    noisy estimate with 3 rounds) with the variance pooled over every cell of the
    table (``prior``), weighted by :data:`PRIOR_DF` degrees of freedom (an
    empirical-Bayes estimate as in limma's moderated t: Smyth, "Linear models and
    empirical Bayes methods for assessing differential expression", 2004).
    ``P(fft faster)`` is Student's t distribution function of ``mean / se`` with
    ``PRIOR_DF + R - 1`` degrees of freedom; the replicates are draws of the mean
    from the same distribution (for ``confidence`` and the k* interval).
    """
    s0, dof0 = prior
    r = lr.size
    d0 = min(PRIOR_DF, float(dof0)) if math.isfinite(s0) and dof0 > 0 else 0.0
    own = float(lr.var(ddof=1)) if r >= 2 else 0.0
    var = (d0 * (s0 if d0 else 0.0) + (r - 1) * own) / (d0 + r - 1)
    m = float(lr.mean())
    se = math.sqrt(max(var, 0.0) / r)
    dof = d0 + r - 1
    if se <= 0.0:
        p = 1.0 if m > 0 else 0.0 if m < 0 else 0.5
        return p, np.full(n_boot, m)
    from scipy.stats import t as student_t

    p = float(student_t.cdf(m / se, dof))
    return p, m + se * rng.standard_t(dof, size=n_boot)


def _fmt_k(k: float) -> str:
    return f"{k:g}"


def pairs_of(kernels: pd.DataFrame) -> list[tuple[str, str]]:
    """(direct, fft) kernel name pairs among rows of one op/device (``kernel``, ``method`` columns)."""
    methods = dict(zip(kernels["kernel"], kernels["method"]))
    direct = sorted(k for k, m in methods.items() if m == "direct")
    fft = sorted(k for k, m in methods.items() if m == "fft")
    return [(d, f) for d in direct for f in fft]


def why_no_pairs(df: pd.DataFrame) -> str | None:
    """A plain sentence saying why ``df`` has nothing to pair, or None when it has pairs."""
    ok = ok_rows(df)
    if len(ok) == 0:
        return ("nothing to pair: the run has no ok rows (every row is skipped, timed out or failed); "
                "a crossover needs a direct and an fft kernel measured at the same problems")
    kernels = sorted(ok["kernel"].unique())
    if len(kernels) == 1:
        return (f"nothing to pair: the run has only one kernel ({kernels[0]}); a crossover needs a "
                "direct and an fft kernel of the same op measured at the same problems")
    methods = set(ok["method"])
    if "direct" not in methods or "fft" not in methods:
        have = "direct" if "direct" in methods else "fft" if "fft" in methods else "auto"
        return (f"nothing to pair: the run has only {have} kernels ({', '.join(kernels)}); "
                "a crossover needs a direct and an fft kernel of the same op measured at the same problems")
    if len(find_crossovers(df, n_boot=0)) == 0:
        return ("nothing to pair: no direct and fft kernel of the same op and device were measured "
                f"at the same problems (kernels: {', '.join(kernels)})")
    return None


def replicate_k_stars(ks: Sequence[float], log_ratios: np.ndarray) -> np.ndarray:
    """The k\\* of each bootstrap replicate, interpolated in ``log k`` like the point k\\*.

    Parameters
    ----------
    ks : sequence of float
        Measured kernel sizes, ascending.
    log_ratios : ndarray, shape (B, K)
        ``log(t_direct / t_fft)`` of each replicate's medians at each k.

    Returns
    -------
    ndarray, shape (B,)
        A replicate with no crossover among the ks is put at the edge it lies
        beyond: the smallest k (fft faster everywhere) or the largest k (fft not
        faster at the largest k).

    Examples
    --------
    >>> np.round(replicate_k_stars([8, 32], np.array([[-1.0, 1.0], [1.0, 1.0], [-1.0, -1.0]])), 6).tolist()
    [16.0, 8.0, 32.0]
    """
    kv = np.asarray(ks, dtype=float)
    k = np.log(kv)
    lr = np.asarray(log_ratios, dtype=float)
    pos = np.asarray(crossover_position(lr > 0)).reshape(-1)
    out = np.where(pos == 0, kv[0], kv[-1]).astype(float)
    inner = (pos > 0) & (pos < k.size)
    if inner.any():
        rows = np.nonzero(inner)[0]
        hi = pos[inner]
        lo = hi - 1
        r_lo, r_hi = lr[rows, lo], lr[rows, hi]  # r_lo <= 0 < r_hi by construction
        frac = -r_lo / (r_hi - r_lo)
        out[inner] = np.exp(k[lo] + frac * (k[hi] - k[lo]))
    return out


def k_star_interval(ks: Sequence[float], log_ratios: np.ndarray,
                    percentiles: tuple[float, float] = K_STAR_INTERVAL) -> tuple[float, float]:
    """``(k_star_lo, k_star_hi)``: percentiles of the replicates' k\\* (:func:`replicate_k_stars`)."""
    stars = replicate_k_stars(ks, log_ratios)
    if stars.size == 0:
        return math.nan, math.nan
    lo, hi = np.percentile(stars, percentiles)
    return float(lo), float(hi)


def _score(d_row: Mapping[str, Any], f_row: Mapping[str, Any], d_s: np.ndarray | None,
           f_s: np.ndarray | None, n_boot: int, seed: int,
           d_r: Sequence[np.ndarray] | None = None,
           f_r: Sequence[np.ndarray] | None = None,
           prior: tuple[float, int] | None = None) -> tuple[float, np.ndarray | None, str]:
    """P(fft faster) at one k, the replicates' ``log(t_direct / t_fft)``, and how it was decided.

    ``d_r``/``f_r`` are the samples by round. When both kernels have the same
    rounds (two or more) and ``prior`` (the table's pooled between-round
    variance) is given, the rounds' paired log ratios decide
    (:func:`moderated_score`, method ``rounds``); rounds that do not pair are
    bootstrapped hierarchically (``hierarchical``).
    """
    d_key = f"{d_row['machine_id']}|{d_row['kernel']}|{d_row['k']}"
    f_key = f"{f_row['machine_id']}|{f_row['kernel']}|{f_row['k']}"
    if n_boot > 0 and multi_round(d_r, f_r):
        assert d_r is not None and f_r is not None
        lr = round_log_ratios(d_r, f_r)
        if lr is not None and prior is not None:
            p, reps = moderated_score(lr, prior, n_boot, _row_rng(seed, f"{d_key}|{f_key}|rounds"))
            return p, reps, "rounds"
        drawn = None
        if len(d_r) == len(f_r):
            # Both kernels were measured in the same rounds, in turns within each
            # (same process, same minutes): a replicate draws the same rounds for
            # both, so a round slow for both moves both medians, not their ratio.
            drawn = _row_rng(seed, f"{d_key}|{f_key}|rounds").integers(0, len(d_r), size=(n_boot, len(d_r)))
        bd = hierarchical_boot_medians(d_r, n_boot, _row_rng(seed, d_key), drawn)
        bf = hierarchical_boot_medians(f_r, n_boot, _row_rng(seed, f_key), drawn)
        return (*_boot_score(bd, bf), "hierarchical")
    if d_s is not None and f_s is not None and d_s.size >= 2 and f_s.size >= 2 and n_boot > 0:
        bd = _boot_medians(d_s, n_boot, seed, d_key)
        bf = _boot_medians(f_s, n_boot, seed, f_key)
        return (*_boot_score(bd, bf), "bootstrap")
    q1d, q3d = float(d_row.get("time_q1_s", math.nan)), float(d_row.get("time_q3_s", math.nan))
    q1f, q3f = float(f_row.get("time_q1_s", math.nan)), float(f_row.get("time_q3_s", math.nan))
    if all(math.isfinite(v) for v in (q1d, q3d, q1f, q3f)):
        score = 1.0 if q1d > q3f else 0.0 if q3d < q1f else 0.5
        return score, None, "quartiles"
    return (1.0 if float(d_row["time_s"]) > float(f_row["time_s"]) else 0.0), None, "medians"


def _boot_score(bd: np.ndarray, bf: np.ndarray) -> tuple[float, np.ndarray]:
    """P(fft faster) and the log ratios of paired replicates of the two kernels' medians."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log(bd) - np.log(bf)
    log_ratio = np.where(bd > bf, np.maximum(log_ratio, np.finfo(float).tiny), np.minimum(log_ratio, 0.0))
    return float((bd > bf).mean()), log_ratio


def _pair_row(group: Mapping[str, Any], d_rows: pd.DataFrame, f_rows: pd.DataFrame,
              index: Mapping[tuple[str, ...], np.ndarray], alpha: float, n_boot: int,
              seed: int, rounds: Mapping[tuple[str, ...], tuple[np.ndarray, ...]] | None = None,
              prior: tuple[float, int] | None = None) -> dict[str, Any] | None:
    d = d_rows.set_index("k")
    f = f_rows.set_index("k")
    ks = sorted(set(d.index) & set(f.index))
    if not ks:
        return None
    td = d.loc[ks, "time_s"].to_numpy(dtype=float)
    tf = f.loc[ks, "time_s"].to_numpy(dtype=float)
    b = bracket(ks, td, tf)
    scores, reps, how = [], [], set()
    n_samples: list[tuple[int, int]] = []
    n_rounds: list[int] = []
    for k in ks:
        dr, fr = d.loc[k].to_dict(), f.loc[k].to_dict()
        dr["k"], fr["k"] = k, k
        ds = row_samples(index, dr)
        fs = row_samples(index, fr)
        d_r = row_rounds(rounds, dr) if rounds else None
        f_r = row_rounds(rounds, fr) if rounds else None
        s, rep, h = _score(dr, fr, ds, fs, n_boot, seed, d_r, f_r, prior)
        scores.append(s)
        reps.append(rep)
        how.add(h)
        n_samples.append((0 if ds is None else ds.size, 0 if fs is None else fs.size))
        if h in ("hierarchical", "rounds"):
            assert d_r is not None and f_r is not None
            n_rounds.append(min(len(d_r), len(f_r)))
    hier = "hierarchical" in how
    paired = how == {"rounds"}
    # Both bootstraps are "bootstrap" to decided_by (a fixed column); the note tells them apart.
    how = {"bootstrap" if h in ("hierarchical", "rounds") else h for h in how}
    decided_by = "bootstrap" if how == {"bootstrap"} else "quartiles" if "medians" not in how else "medians"
    # The verdict stands only when the samples separate the kernels at the bracket.
    ties = []
    for i in range(b.position, len(ks)):
        if scores[i] < 1 - alpha:
            ties.append(i)
    if b.position > 0 and scores[b.position - 1] > alpha:
        ties.append(b.position - 1)
    verdict = "inconclusive" if ties else b.verdict
    confidence = k_star_lo = k_star_hi = math.nan
    if all(r is not None for r in reps):
        log_ratios = np.stack(reps, axis=1)
        pos_b = crossover_position(log_ratios > 0)
        confidence = float(np.mean(pos_b == b.position))
        if verdict == "crossover":
            k_star_lo, k_star_hi = k_star_interval(ks, log_ratios)
    if decided_by == "bootstrap":
        nd, nf = min(x[0] for x in n_samples), min(x[1] for x in n_samples)
        if paired:
            method = (f"paired rounds: t on the rounds' log ratios, variance pooled over the table "
                      f"(>={min(n_rounds)} rounds, prior df {PRIOR_DF:g}, >={nd}+{nf} samples)")
        elif hier and len(n_rounds) == len(ks):
            method = (f"hierarchical bootstrap of median (>={min(n_rounds)} rounds, {n_boot} resamples, "
                      f">={nd}+{nf} samples)")
        elif hier:
            method = (f"bootstrap of median ({n_boot} resamples, >={nd}+{nf} samples; hierarchical over "
                      f">={min(n_rounds)} rounds at {len(n_rounds)} of {len(ks)} k)")
        else:
            method = f"bootstrap of median ({n_boot} resamples, >={nd}+{nf} samples)"
    elif decided_by == "quartiles":
        method = "interquartile ranges (no raw samples)"
    else:
        method = "medians alone (no samples, no quartiles)"
    shown = sorted(set(([b.position - 1] if b.position > 0 else [])
                       + ([b.position] if b.position < len(ks) else [])))
    probs = ", ".join(f"P(fft faster)={scores[i]:.2f} at k={_fmt_k(ks[i])}" for i in shown)
    note = f"{method}: {probs}"
    if ties:
        tie_ks = ", ".join(_fmt_k(ks[i]) for i in sorted(set(ties)))
        note = (f"inconclusive ({b.verdict} by medians): tie within noise at k={tie_ks} "
                f"(alpha {alpha:g}); {note}")
    dim, n = int(group["dim"]), int(group["n"])
    return {
        **{c: group[c] for c in GROUP_COLUMNS},
        "direct_kernel": d_rows["kernel"].iloc[0], "fft_kernel": f_rows["kernel"].iloc[0],
        "verdict": verdict, "k_star": b.k_star, "k_lo": b.k_lo, "k_hi": b.k_hi,
        "speedup_at_kmax": float(td[-1] / tf[-1]),
        # The chapter's rule of thumb (fft wins once k > log2 n) is a 1-D rule.
        "log2_n": math.log2(n) if dim == 1 else math.nan,
        "confidence": confidence, "decided_by": decided_by, "note": note,
        "k_values": ",".join(_fmt_k(k) for k in ks),
        "device": group["device"], "machine": group["machine"], "machine_id": group["machine_id"],
        "k_star_lo": k_star_lo, "k_star_hi": k_star_hi,
    }


def _table_prior(tasks: Sequence[tuple[Mapping[str, Any], pd.DataFrame, pd.DataFrame]],
                 rounds: Mapping[tuple[str, ...], tuple[np.ndarray, ...]]) -> tuple[float, int] | None:
    """The between-round variance of the log ratios pooled over every (pair, k) of the table with paired rounds."""
    ratios = []
    for _, d_rows, f_rows in tasks:
        f_by_k = {r["k"]: r for r in f_rows.to_dict("records")}
        for dr in d_rows.to_dict("records"):
            fr = f_by_k.get(dr["k"])
            if fr is None:
                continue
            lr = round_log_ratios(row_rounds(rounds, dr), row_rounds(rounds, fr))
            if lr is not None:
                ratios.append(lr)
    if not ratios:
        return None
    v, dof = pooled_variance(ratios)
    return (v, dof) if dof > 0 else None


def find_crossovers(df: pd.DataFrame, samples: pd.DataFrame | None = None, *,
                    alpha: float = DEFAULT_ALPHA, n_boot: int = DEFAULT_BOOT, seed: int = 0) -> pd.DataFrame:
    """The crossover table: one row per (direct, fft) pair and problem group.

    Parameters
    ----------
    df : pandas.DataFrame
        Measurements (as from :func:`symbench.store.load` or
        :func:`symbench.analysis.data.load_runs`). Only ``ok`` rows are used. Rows
        without ``machine_id`` are taken to come from one machine.
    samples : pandas.DataFrame, optional
        Raw samples (``samples.csv``) of the same runs; without them the verdicts are
        decided on the interquartile ranges and ``confidence`` is NaN. Samples of
        several rounds (a ``round`` column) are bootstrapped hierarchically.
    alpha : float
        A kernel is "faster" at a k of the bracket when the bootstrap puts it faster in
        at least ``1 - alpha`` of the replicates; otherwise the row is ``inconclusive``.
    n_boot : int
        Bootstrap replicates (0: decide on quartiles, no confidence).
    seed : int
        Seed of the bootstrap; the table is reproducible for a given seed.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CROSSOVER_COLUMNS` (the fixed report columns first), sorted by
        machine, op, group, dim, dtype, mode, batch, c_in, c_out, threads, n and pair.
    """
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
    data = ok_rows(dedupe(df))
    data = data[data["method"].isin(["direct", "fft"])]
    if "machine" not in data.columns:
        data = data.assign(machine=data["machine_id"])
    rounds = sample_rounds(samples) if n_boot > 0 else {}
    # The pooled samples are the rounds' together: sorted, the same arrays as
    # sample_index gives, without grouping the samples a second time.
    index = {k: np.sort(np.concatenate(v)) for k, v in rounds.items()}
    rows: list[dict[str, Any]] = []
    keys = ["machine_id", "machine", "device", *GROUP_COLUMNS]
    tasks = []
    for key, g in data.groupby(keys, sort=False, dropna=False):
        group = dict(zip(keys, key))
        by_kernel = {name: kr for name, kr in g.groupby("kernel", sort=False)}
        for d_name, f_name in pairs_of(g[["kernel", "method"]].drop_duplicates()):
            tasks.append((group, by_kernel[d_name], by_kernel[f_name]))
    prior = _table_prior(tasks, rounds) if rounds else None
    for group, d_rows, f_rows in tasks:
        row = _pair_row(group, d_rows, f_rows, index, alpha, n_boot, seed, rounds, prior)
        if row is not None:
            rows.append(row)
    out = pd.DataFrame(rows, columns=list(CROSSOVER_COLUMNS))
    if len(out):
        for c in ("dim", "batch", "c_in", "c_out", "threads", "n"):
            out[c] = out[c].astype("int64")
        for c in ("k_star", "k_lo", "k_hi", "speedup_at_kmax", "log2_n", "confidence", "k_star_lo", "k_star_hi"):
            out[c] = out[c].astype("float64")
        out = out.sort_values(["machine_id", *GROUP_COLUMNS, "direct_kernel", "fft_kernel"],
                              kind="stable").reset_index(drop=True)
    return out

