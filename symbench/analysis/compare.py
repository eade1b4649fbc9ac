"""Comparing two runs: regressions, improvements and crossovers that moved.

Rows are matched by kernel and problem (the machine is not part of the key:
comparing two machines is allowed, with a warning). For each matched pair of
``ok`` rows:

* ``ratio`` is ``time_s(new) / time_s(base)`` (medians);
* a **regression** is ``ratio > 1 + threshold`` *and* a one-sided Mann-Whitney U
  test on the raw samples (``scipy.stats.mannwhitneyu``) with ``p < alpha``; the
  test compares the new samples with the baseline's samples times
  ``1 + threshold`` (H0: "not slower by more than the threshold"), which keeps
  pure noise from being flagged even over hundreds of rows. An **improvement**
  is ``ratio < 1 / (1 + threshold)`` and the mirror test against the baseline
  divided by ``1 + threshold``. Both conditions: a large shift in a noisy row,
  or a tiny but certain one, is not flagged.
* ``noise``: beyond the threshold but not significant; ``untestable``: beyond
  the threshold, but the samples are too few for any outcome to reach ``p < alpha``
  (e.g. 3 + 3 samples: the smallest exact one-sided p is 0.05), or missing.
* **Rounds.** When both rows' samples come from two or more rounds (fresh
  processes, ``samples.csv``'s ``round``), the samples of one round are not
  independent draws of what the next process would measure, and the
  Mann-Whitney test, which treats every sample as independent, would call the
  difference between two processes significant. The p-value then comes from a
  hierarchical bootstrap instead
  (:func:`~symbench.analysis.stats.hierarchical_boot_medians`: rounds
  resampled, then samples within each drawn round), testing the same
  hypothesis: ``p`` is the share of replicates in which the ratio of the
  replicate medians, new over baseline (scaled by the common-mode factor), does
  *not* exceed ``1 + threshold`` (for an improvement: is not below
  ``1 / (1 + threshold)``), counted as ``(m + 1) / (B + 1)`` over ``B``
  replicates so that it is never 0. The note says ``hierarchical bootstrap``.
  Single-round runs keep the Mann-Whitney test.
* A row that was ``ok`` in the base and is ``mismatch``, ``error`` or
  ``timeout`` in the new run is a regression too (a wrong result or a kernel that
  became too slow to finish).

**Common mode.** Two stored runs are measured minutes or hours apart, and a
shared machine's speed drifts in between: every row of the new run is then a
few percent slower or faster, and rows near the threshold tip over (21 % of
the rows of an A/A comparison were flagged on a 2-core shared machine before
this correction). :func:`compare_runs` therefore estimates the common-mode
factor, ``exp(median(log ratio))`` over the rows both runs have ``ok``, and
tests each row against the baseline scaled by it. The factor is reported on
its own. When it exceeds the threshold itself it is *not* applied: a drift
that large cannot be told from a change that slowed every row, and a gate
must not pass a global slowdown; a warning then recommends ``symbench ab``,
which measures both sides in the same minutes. ``common_mode=False``
(``--no-common-mode``) reports the factor without applying it.

**Paired** comparisons (``symbench ab``) classify rows by
:func:`symbench.analysis.paired.paired_verdict` instead: the two runs' samples
were taken in pairs, and the statistics are those of the pairs.

The gate fails closed (:func:`gate_reasons`, :attr:`Comparison.failed`): a row ok
in the baseline but missing, skipped, error or timeout in the new run, an
incomplete new run, or a run without raw samples fails it unless accepted
(``compare --allow-missing``).

Crossovers of both runs are compared by their position on the union of the two
k grids; a move of more than one grid step (or a change of verdict that amounts
to one) is listed. Differences of machine or library versions are warned about.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from symbench.analysis.crossover import GROUP_COLUMNS, find_crossovers
from symbench.analysis.data import Runs, dedupe, row_rounds, row_samples, sample_rounds
from symbench.analysis.stats import hierarchical_boot_medians, mann_whitney_p
from symbench.analysis.paired import (INTERVAL_COLUMNS, ordered_incarnation_index, ordered_sample_index,
                                      paired_verdict, row_incarnations, row_pairs)
from symbench.problem import KEY_FIELDS

DEFAULT_THRESHOLD = 0.10
DEFAULT_ALPHA = 0.01
#: Replicates of the hierarchical bootstrap test of rows measured in several rounds; the
#: smallest p it can give is 1 / (B + 1), well below the default alpha.
DEFAULT_ROUNDS_BOOT = 2000
#: Fewest rounds both rows' samples must come from for the hierarchical test.
MIN_ROUNDS = 2
MATCH_KEY = ("kernel", *KEY_FIELDS)
STATUSES = ("regression", "improvement", "unchanged", "noise", "untestable", "only_base", "only_new",
            "not_ok")
COMPARE_COLUMNS = (*MATCH_KEY, "base_s", "new_s", "ratio", "p_value", "base_samples", "new_samples",
                   "status", "note")
MOVED_COLUMNS = (*GROUP_COLUMNS, "direct_kernel", "fft_kernel", "base_verdict", "base_k_lo", "base_k_hi",
                 "new_verdict", "new_k_lo", "new_k_hi", "steps")
FAILED_STATUSES = ("mismatch", "error", "timeout")
#: Columns of a paired comparison (``symbench ab``): the ratio's interval and the pairs behind it.
PAIRED_COLUMNS = (*COMPARE_COLUMNS[:-2], *INTERVAL_COLUMNS, "status", "note")
#: Statuses of rows that both runs have ok (they enter the common-mode factor).
COMPARED = ("regression", "improvement", "unchanged", "noise", "untestable")


@dataclass
class Comparison:
    """The result of :func:`compare_runs`.

    Attributes
    ----------
    rows : DataFrame
        One row per kernel and problem of either run; columns :data:`COMPARE_COLUMNS`.
    moved : DataFrame
        Crossovers that moved by more than one grid step; columns :data:`MOVED_COLUMNS`.
    warnings : list of str
        Machines, library versions or settings that differ; incomplete runs.
    threshold, alpha : float
        The settings used.
    """

    rows: pd.DataFrame
    moved: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    threshold: float = DEFAULT_THRESHOLD
    alpha: float = DEFAULT_ALPHA
    base: str = ""
    new: str = ""
    #: True for ``symbench ab`` (rows classified on pairs of samples).
    paired: bool = False
    #: Common-mode factor: exp(median log ratio) over rows both runs have ok (NaN: none).
    shift: float = math.nan
    #: Rows the factor was estimated from.
    shift_rows: int = 0
    #: Whether rows were tested against the baseline scaled by ``shift``.
    shift_applied: bool = False
    #: Crossovers of each run (filled by paired comparisons, which show both).
    base_crossovers: pd.DataFrame | None = None
    new_crossovers: pd.DataFrame | None = None
    #: Why the gate cannot vouch for the new run (fails closed unless allowed); see :func:`gate_reasons`.
    missing: list[str] = field(default_factory=list)
    #: Rows of both runs that were compared (0: the runs share nothing).
    shared: int = 0
    #: Whether :attr:`missing` is accepted (``compare --allow-missing``).
    allow_missing: bool = False

    @property
    def counts(self) -> dict[str, int]:
        """Rows per status (every status present, zeros included)."""
        vc = self.rows["status"].value_counts()
        return {s: int(vc.get(s, 0)) for s in STATUSES}

    @property
    def regressions(self) -> int:
        return self.counts["regression"]

    @property
    def failed(self) -> bool:
        """Whether the gate fails: a regression, or (unless allowed) something it could not test."""
        return self.regressions > 0 or (bool(self.missing) and not self.allow_missing)


def min_p_value(m: int, n: int) -> float:
    """Smallest one-sided p an exact Mann-Whitney U test can give with m and n samples."""
    if m < 1 or n < 1:
        return 1.0
    return 1.0 / math.comb(m + n, m)


def hierarchical_p(new_rounds: Sequence[np.ndarray], base_rounds: Sequence[np.ndarray], bound: float,
                   slower: bool, n_boot: int, rng: np.random.Generator) -> float:
    """One-sided p-value of "new / base exceeds ``bound``" from a hierarchical bootstrap.

    Parameters
    ----------
    new_rounds, base_rounds : sequence of ndarray
        The samples of each round of the new and the baseline row.
    bound : float
        ``1 + threshold`` for a regression, ``1 / (1 + threshold)`` for an
        improvement (times the common-mode factor when it is applied, which the
        caller does by scaling the baseline).
    slower : bool
        True: H1 is ``new / base > bound``; False: ``new / base < bound``.
    n_boot : int
        Replicates of each side.
    rng : numpy.random.Generator
        Source of both sides' draws.

    Returns
    -------
    float
        ``(m + 1) / (n_boot + 1)``, ``m`` the replicates whose ratio of medians
        does not exceed the bound (in the direction tested).
    """
    bn = hierarchical_boot_medians(new_rounds, n_boot, rng)
    bb = hierarchical_boot_medians(base_rounds, n_boot, rng)
    ratio = bn / bb
    fails = int(np.count_nonzero(ratio <= bound if slower else ratio >= bound))
    return (fails + 1) / (n_boot + 1)


def classify(ratio: float, new: np.ndarray | None, base: np.ndarray | None, threshold: float,
             alpha: float, *, new_rounds: Sequence[np.ndarray] | None = None,
             base_rounds: Sequence[np.ndarray] | None = None, n_boot: int = DEFAULT_ROUNDS_BOOT,
             rng: np.random.Generator | None = None) -> tuple[str, float, str]:
    """Status, p-value and note of one matched pair of ``ok`` rows.

    Parameters
    ----------
    ratio : float
        Median time of the new row over the base row.
    new, base : ndarray or None
        Raw sample times (None when the run has no samples).
    threshold, alpha : float
        As in :func:`compare_runs`.
    new_rounds, base_rounds : sequence of ndarray, optional
        The same samples by round. When both have :data:`MIN_ROUNDS` or more,
        the p-value is :func:`hierarchical_p`'s instead of Mann-Whitney's.
    n_boot : int
        Replicates of the hierarchical test.
    rng : numpy.random.Generator, optional
        Its draws (seed 0 when not given).
    """
    slower = ratio > 1 + threshold
    faster = ratio < 1 / (1 + threshold)
    if not (slower or faster):
        return "unchanged", math.nan, ""
    direction = "slower" if slower else "faster"
    if (new_rounds is not None and base_rounds is not None and len(new_rounds) >= MIN_ROUNDS
            and len(base_rounds) >= MIN_ROUNDS):
        how = f"hierarchical bootstrap, {len(base_rounds)}+{len(new_rounds)} rounds"
        if 1.0 / (n_boot + 1) >= alpha:
            return ("untestable", math.nan,
                    f"{ratio:.2f}x ({direction}) but {n_boot} replicates cannot reach p < {alpha:g} ({how})")
        bound = (1 + threshold) if slower else 1 / (1 + threshold)
        p = hierarchical_p(new_rounds, base_rounds, bound, slower, n_boot,
                           rng if rng is not None else np.random.default_rng(0))
        if p < alpha:
            return ("regression" if slower else "improvement"), p, f"{ratio:.2f}x {direction}, p={p:.2g} ({how})"
        return "noise", p, f"{ratio:.2f}x {direction} but not significant (p={p:.2g}, {how})"
    if new is None or base is None:
        return "untestable", math.nan, f"{ratio:.2f}x ({direction}) but no raw samples to test"
    if min_p_value(new.size, base.size) >= alpha:
        return ("untestable", math.nan,
                f"{ratio:.2f}x ({direction}) but {base.size}+{new.size} samples cannot reach p < {alpha:g}")
    # The test asks whether the new samples exceed the baseline *scaled by the
    # threshold*: "slower by more than the threshold", not merely "slower". Plain
    # "slower" is true of most rows of two runs at some p (machines drift), and
    # with hundreds of rows per-row noise would then fail CI now and then. This
    # is stricter than testing against the unscaled baseline (U only grows when
    # the baseline is scaled down), so it flags a subset of what that would.
    scaled = base * (1 + threshold) if slower else base / (1 + threshold)
    p = mann_whitney_p(new, scaled, "greater" if slower else "less")
    if p < alpha:
        return ("regression" if slower else "improvement"), p, f"{ratio:.2f}x {direction}, p={p:.2g}"
    return "noise", p, f"{ratio:.2f}x {direction} but not significant (p={p:.2g})"


def _env_warnings(base_meta: Mapping[str, Any], new_meta: Mapping[str, Any]) -> list[str]:
    out = []
    be, ne = base_meta.get("environment") or {}, new_meta.get("environment") or {}
    if not be or not ne:
        return ["a run has no run.json: machines and library versions cannot be checked"]
    if be.get("machine_id") != ne.get("machine_id"):
        out.append(f"the runs come from different machines: {be.get('machine_label')} vs "
                   f"{ne.get('machine_label')}; differences may be the machine's, not the code's")
    bl, nl = be.get("libraries") or {}, ne.get("libraries") or {}
    changed = [f"{lib} {bl.get(lib)} -> {nl.get(lib)}" for lib in sorted(set(bl) | set(nl))
               if bl.get(lib) != nl.get(lib)]
    for key, name in (("python", "python"), ("symbench_version", "symbench")):
        if be.get(key) != ne.get(key):
            changed.append(f"{name} {be.get(key)} -> {ne.get(key)}")
    if changed:
        out.append("library versions differ: " + ", ".join(changed))
    for label, meta in (("baseline", base_meta), ("new", new_meta)):
        if meta and meta.get("complete") is False:
            out.append(f"the {label} run {meta.get('run_id')} is incomplete (interrupted or still running)")
    return out


def compare_tables(base: pd.DataFrame, new: pd.DataFrame, base_samples: pd.DataFrame | None = None,
                   new_samples: pd.DataFrame | None = None, *, threshold: float = DEFAULT_THRESHOLD,
                   alpha: float = DEFAULT_ALPHA, scale: float = 1.0, paired: bool = False,
                   n_boot: int = DEFAULT_ROUNDS_BOOT, seed: int = 0) -> pd.DataFrame:
    """Match rows of two measurement tables by kernel and problem and classify each.

    Parameters
    ----------
    base, new : DataFrame
        Measurement tables.
    base_samples, new_samples : DataFrame, optional
        Their raw samples.
    threshold, alpha : float
        As in :func:`compare_runs`.
    scale : float
        Common-mode factor: rows are tested against the baseline times ``scale``
        (``ratio`` stays the raw ratio; the note gives the corrected one).
    paired : bool
        Sample ``i`` of a row in one table was taken next to sample ``i`` in the
        other (``symbench ab``): classify on the pairs' log-ratios.
    n_boot, seed : int
        Replicates and seed of the hierarchical bootstrap test of rows whose
        samples come from several rounds; each row's draws are seeded by its key.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COMPARE_COLUMNS` (:data:`PAIRED_COLUMNS` when paired);
        ``status`` is one of :data:`STATUSES`.
    """
    if threshold <= 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    b = dedupe(base).drop_duplicates(list(MATCH_KEY), keep="last")
    n = dedupe(new).drop_duplicates(list(MATCH_KEY), keep="last")
    if paired:
        bi, ni = ordered_sample_index(base_samples), ordered_sample_index(new_samples)
        bg = ordered_incarnation_index(base_samples)
    else:
        bri, nri = sample_rounds(base_samples), sample_rounds(new_samples)
        # The pooled samples are the rounds' together (what sample_index gives), grouped once.
        bi = {k: np.sort(np.concatenate(v)) for k, v in bri.items()}
        ni = {k: np.sort(np.concatenate(v)) for k, v in nri.items()}
    merged = b.merge(n, on=list(MATCH_KEY), how="outer", suffixes=("_b", "_n"), indicator=True)
    rows = []
    for r in merged.to_dict("records"):
        key = {c: r[c] for c in MATCH_KEY}
        out: dict[str, Any] = {**key, "base_s": r.get("time_s_b"), "new_s": r.get("time_s_n"),
                               "ratio": math.nan, "p_value": math.nan, "base_samples": 0, "new_samples": 0,
                               "note": ""}
        if r["_merge"] == "left_only":
            out.update(status="only_base", note="not measured in the new run")
        elif r["_merge"] == "right_only":
            out.update(status="only_new", note="not measured in the baseline")
        else:
            sb, sn = r["status_b"], r["status_n"]
            if sb == "ok" and sn == "ok" and paired:
                pkey = {**key, "source": r.get("source_b", "grid")}
                v = paired_verdict(row_pairs(bi, ni, pkey), threshold, alpha, row_incarnations(bg, pkey, bi, ni))
                out.update(v, base_samples=v["pairs"], new_samples=v["pairs"])
            elif sb == "ok" and sn == "ok":
                bkey = {**key, "run_id": r["run_id_b"], "source": r.get("source_b", "grid")}
                nkey = {**key, "run_id": r["run_id_n"], "source": r.get("source_n", "grid")}
                bs, ns = row_samples(bi, bkey), row_samples(ni, nkey)
                br, nr = row_rounds(bri, bkey), row_rounds(nri, nkey)
                ratio = float(r["time_s_n"]) / float(r["time_s_b"])
                # Seeded by the row's key: its p does not depend on the other rows.
                rng = np.random.default_rng([seed, zlib.crc32("|".join(map(str, key.values())).encode())])
                if scale != 1.0:
                    status, p, note = classify(ratio / scale, ns, None if bs is None else bs * scale,
                                               threshold, alpha, new_rounds=nr,
                                               base_rounds=None if br is None else tuple(a * scale for a in br),
                                               n_boot=n_boot, rng=rng)
                    if note:
                        note = f"{note} (raw {ratio:.2f}x, common-mode {scale:.3f}x removed)"
                else:
                    status, p, note = classify(ratio, ns, bs, threshold, alpha, new_rounds=nr, base_rounds=br,
                                               n_boot=n_boot, rng=rng)
                out.update(ratio=ratio, p_value=p, status=status, note=note,
                           base_samples=0 if bs is None else int(bs.size),
                           new_samples=0 if ns is None else int(ns.size))
            elif sb == "ok" and sn in FAILED_STATUSES:
                msg = str(r.get("message_n") or "").strip()
                out.update(status="regression", note=f"ok in the baseline, {sn} now" + (f": {msg}" if msg else ""))
            elif sb != "ok" and sn == "ok":
                out.update(status="improvement", note=f"{sb} in the baseline, ok now")
            else:
                out.update(status="not_ok", note=f"{sb} -> {sn}")
        rows.append(out)
    df = pd.DataFrame(rows, columns=list(PAIRED_COLUMNS if paired else COMPARE_COLUMNS))
    order = {s: i for i, s in enumerate(STATUSES)}
    df["_o"] = df["status"].map(order)
    df = df.sort_values(["_o", *MATCH_KEY], kind="stable").drop(columns="_o").reset_index(drop=True)
    return df


def moved_crossovers(base_cross: pd.DataFrame, new_cross: pd.DataFrame, max_steps: int = 1) -> pd.DataFrame:
    """Crossovers whose bracket moved by more than ``max_steps`` steps of the union k grid.

    ``fft_always`` counts as position 0 and ``direct_always`` as one past the
    largest k, so ``crossover`` -> ``fft_always`` is a move like any other;
    ``inconclusive`` rows are not compared.
    """
    keys = [*GROUP_COLUMNS, "direct_kernel", "fft_kernel"]
    if len(base_cross) == 0 or len(new_cross) == 0:
        return pd.DataFrame(columns=list(MOVED_COLUMNS))
    m = base_cross.merge(new_cross, on=keys, suffixes=("_b", "_n"))
    rows = []
    for r in m.to_dict("records"):
        grid = sorted({float(v) for s in (r["k_values_b"], r["k_values_n"]) for v in str(s).split(",") if v})

        def pos(verdict: str, k_hi: float) -> float:
            if verdict == "fft_always":
                return 0.0
            if verdict == "direct_always":
                return float(len(grid))
            if verdict == "crossover":
                return float(np.searchsorted(grid, k_hi))
            return math.nan

        pb, pn = pos(r["verdict_b"], r["k_hi_b"]), pos(r["verdict_n"], r["k_hi_n"])
        if math.isnan(pb) or math.isnan(pn) or abs(pn - pb) <= max_steps:
            continue
        rows.append({**{c: r[c] for c in keys}, "base_verdict": r["verdict_b"], "base_k_lo": r["k_lo_b"],
                     "base_k_hi": r["k_hi_b"], "new_verdict": r["verdict_n"], "new_k_lo": r["k_lo_n"],
                     "new_k_hi": r["k_hi_n"], "steps": int(pn - pb)})
    return pd.DataFrame(rows, columns=list(MOVED_COLUMNS))


def common_mode(rows: pd.DataFrame) -> tuple[float, int]:
    """``exp(median(log ratio))`` over the rows both runs have ok, and how many there are.

    NaN and 0 when no row has a ratio.
    """
    r = pd.to_numeric(rows.loc[rows["status"].isin(COMPARED), "ratio"], errors="coerce").to_numpy(dtype=float)
    r = r[np.isfinite(r) & (r > 0)]
    if r.size == 0:
        return math.nan, 0
    return float(np.exp(np.median(np.log(r)))), int(r.size)


#: Fewest rows the common-mode factor is estimated from; with fewer, a change
#: of one kernel would pass for the machine's.
MIN_COMMON_MODE_ROWS = 5


def compare_runs(base: Runs, new: Runs, *, threshold: float = DEFAULT_THRESHOLD,
                 alpha: float = DEFAULT_ALPHA, n_boot: int = 200, common_mode_correction: bool = True,
                 paired: bool = False) -> Comparison:
    """Compare a new run with a baseline.

    Parameters
    ----------
    base, new : Runs
        From :func:`symbench.analysis.data.load_runs` (one run each, usually).
    threshold : float
        Relative change of the median that counts (0.10: 10 % slower or faster).
    alpha : float
        Significance level of the Mann-Whitney U test on the raw samples (of the
        hierarchical bootstrap test for rows measured in several rounds).
    n_boot : int
        Bootstrap replicates for the crossover verdicts of both runs.
    common_mode_correction : bool
        Test rows against the baseline scaled by the common-mode factor
        (when the factor is within the threshold; see the module's notes).
    paired : bool
        The runs are the two sides of ``symbench ab``: rows are classified on
        their pairs of samples, and no common-mode factor is applied (the
        pairs already cancel drift).

    Returns
    -------
    Comparison
    """
    rows = compare_tables(base.df, new.df, base.samples, new.samples, threshold=threshold, alpha=alpha,
                          paired=paired)
    warns: list[str] = []
    shift, shift_rows = common_mode(rows) if not paired else (math.nan, 0)
    applied = False
    if math.isfinite(shift) and shift_rows >= MIN_COMMON_MODE_ROWS:
        within = abs(math.log(shift)) <= math.log1p(threshold)
        if common_mode_correction and within and abs(math.log(shift)) > 1e-9:
            rows = compare_tables(base.df, new.df, base.samples, new.samples, threshold=threshold,
                                  alpha=alpha, scale=shift)
            applied = True
        if not within:
            warns.append(f"the new run is {shift:.2f}x the baseline across {shift_rows} rows (median ratio): the "
                         "machine's speed drifted between the runs, or every row changed; rows were tested "
                         "without correcting for it; measure both sides together with symbench ab to tell")
    bc = find_crossovers(base.df, base.samples, n_boot=n_boot)
    nc = find_crossovers(new.df, new.samples, n_boot=n_boot)
    moved = moved_crossovers(bc, nc)
    bm = base.metas[0] if len(base.metas) == 1 else {}
    nm = new.metas[0] if len(new.metas) == 1 else {}
    warns += _env_warnings(bm, nm)
    ok_both = rows["status"].isin(["regression", "improvement", "unchanged", "noise", "untestable"]) & (
        rows["ratio"].notna())
    if ok_both.any() and (len(base.samples) == 0 or len(new.samples) == 0):
        warns.append("no raw samples (samples.csv) for a run: changes beyond the threshold cannot be "
                     "tested and are reported as untestable, never as regressions")
    untestable = int((rows["status"] == "untestable").sum())
    if untestable and len(base.samples) and len(new.samples):
        warns.append(f"{untestable} rows changed by more than the threshold but have too few samples "
                     f"to test at alpha {alpha:g} (use {'--pairs' if paired else '--repeat'} 7 or more)")
    both = rows[~rows["status"].isin(["only_base", "only_new"])]
    if len(both) == 0:
        warns.append("the two runs have no kernel and problem in common: nothing was compared")
    return Comparison(rows, moved, warns, threshold, alpha, base=", ".join(base.paths), new=", ".join(new.paths),
                      paired=paired, shift=shift, shift_rows=shift_rows, shift_applied=applied,
                      base_crossovers=bc if paired else None, new_crossovers=nc if paired else None,
                      missing=gate_reasons(base, new, rows), shared=len(both))


def gate_reasons(base: Runs, new: Runs, rows: pd.DataFrame) -> list[str]:
    """Why a comparison cannot pass as "no regression", even with none found.

    The gate fails closed: what was not measured cannot have been shown not to
    be slower. A reason is given when a row that was ``ok`` in the baseline is
    missing from the new run, or ``skipped``, ``error`` or ``timeout`` there;
    when the new run is incomplete (``complete: false`` in its ``run.json``);
    and when either run has no raw samples to test.

    Parameters
    ----------
    base, new : Runs
        The two runs compared.
    rows : DataFrame
        :attr:`Comparison.rows` of the two.

    Returns
    -------
    list of str
        One sentence per reason; empty when the gate can decide.
    """
    out: list[str] = []
    b = dedupe(base.df).drop_duplicates(list(MATCH_KEY), keep="last")
    n = dedupe(new.df).drop_duplicates(list(MATCH_KEY), keep="last")
    ok_base = b[b["status"] == "ok"][list(MATCH_KEY)]
    merged = ok_base.merge(n[[*MATCH_KEY, "status"]], on=list(MATCH_KEY), how="left")
    gone = int(merged["status"].isna().sum())
    lost = merged[merged["status"].isin(["skipped", "error", "timeout"])]
    if gone:
        out.append(f"{gone} rows ok in the baseline are missing from the new run")
    if len(lost):
        by = lost["status"].value_counts()
        out.append(f"{len(lost)} rows ok in the baseline are " +
                   ", ".join(f"{int(c)} {s}" for s, c in by.items()) + " in the new run")
    for meta in new.metas:
        if meta and meta.get("complete") is False:
            out.append(f"the new run {meta.get('run_id')} is incomplete (complete: false in its run.json)")
    ok_both = rows["ratio"].notna()
    if ok_both.any():
        for label, runs in (("baseline", base), ("new", new)):
            if len(runs.samples) == 0:
                out.append(f"the {label} run has no raw samples (samples.csv) to test")
    return out
