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
factor, ``exp(median(log ratio))`` over the rows both runs have ok, and
tests each row against the baseline scaled by it. The factor is reported on
its own, with a warning when it exceeds the threshold: such a drift cannot be
told from a change that slowed every row (only ``symbench ab``, which
measures both sides in the same minutes, can), so the report says so. A
run-wide slowdown beyond ``1 + max_shift`` (``--max-shift``, default 0.5)
fails the gate: the gate fails closed on what it cannot tell from the
machine, and a change that makes everything 1.6x slower must not pass. The
default sits above the drift of a shared 2-core machine between runs
minutes apart (0.65-1.5x in 39 of 40 consecutive comparisons, 1.63x in
one); 0.10 suits a quiet machine. (Until 2026-12 a factor beyond the
threshold was not applied at all, which failed 2 of 10 A/A comparisons of
``configs/ci.toml`` on that machine.)

**Rows' own spread between runs.** After the common mode, rows still move on
their own between two runs: every run draws a new per-process level of each
row, and the host favours some work over other work for minutes. The rounds
of one run are made in the same minutes and cannot show this; the other rows
can. :func:`between_run_spread` estimates it as a random effect (robust to
the few rows a real change moved, each row weighed by its own precision
within the runs); the test of rows measured in rounds then adds it
(:func:`hierarchical_p`'s ``spread``). On quiet pairs of runs it is 0 (the
rounds' spread explains all); it grows in pairs where the machine moved a lot.
``common_mode_correction=False`` (``--no-common-mode``) reports the factor
and the spread and applies neither.

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
#: Fewest rows the common-mode factor is estimated from; with fewer, a change
#: of one kernel would pass for the machine's.
MIN_COMMON_MODE_ROWS = 5
#: A run-wide slowdown beyond ``1 + DEFAULT_MAX_SHIFT`` fails the gate (see the module's notes).
DEFAULT_MAX_SHIFT = 0.5
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
#: Statuses of rows that both runs have ok.
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
    #: The rows' between-run spread (log SD; :func:`between_run_spread`), NaN for ab.
    spread: float = math.nan
    #: Rows that ``spread`` was estimated from (0: none).
    spread_rows: int = 0
    #: Rows both runs measured in rounds (tested by the hierarchical bootstrap).
    rounds_rows: int = 0
    #: Whether the tests of rows measured in rounds added ``spread``.
    spread_applied: bool = False
    #: The gate fails when ``shift`` is above ``1 + max_shift`` (None: it never does).
    max_shift: float | None = None
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
    def shift_exceeded(self) -> bool:
        """Whether the common-mode factor is a slowdown beyond ``max_shift`` (and the threshold)."""
        return shift_exceeds(self.shift, self.shift_rows, self.max_shift, self.threshold)

    @property
    def failed(self) -> bool:
        """Whether the gate fails: a regression, a run-wide slowdown beyond ``max_shift``, or (unless
        allowed) something it could not test."""
        return self.regressions > 0 or self.shift_exceeded or (bool(self.missing) and not self.allow_missing)


def shift_exceeds(shift: float, rows: int, max_shift: float | None, threshold: float) -> bool:
    """Whether a common-mode factor from ``rows`` rows is a slowdown beyond ``max_shift`` and the threshold."""
    return (max_shift is not None and rows >= MIN_COMMON_MODE_ROWS and math.isfinite(shift)
            and shift > 1 + max(max_shift, threshold))


def min_p_value(m: int, n: int) -> float:
    """Smallest one-sided p an exact Mann-Whitney U test can give with m and n samples."""
    if m < 1 or n < 1:
        return 1.0
    return 1.0 / math.comb(m + n, m)


def hierarchical_p(new_rounds: Sequence[np.ndarray], base_rounds: Sequence[np.ndarray], bound: float,
                   slower: bool, n_boot: int, rng: np.random.Generator, spread: float = 0.0) -> float:
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
    spread : float
        Standard deviation, in log, of a row's own move between two runs
        (:func:`between_run_spread`). Each replicate's ratio is multiplied by
        ``exp(spread * z)``, ``z`` standard normal (a random effect), so the test
        asks whether the row moved by more than the bound *beyond* what rows
        move between runs anyway. 0: no such term and no extra draws.

    Returns
    -------
    float
        ``(m + 1) / (n_boot + 1)``, ``m`` the replicates whose ratio of medians
        does not exceed the bound (in the direction tested).
    """
    ratio = boot_ratios(new_rounds, base_rounds, n_boot, rng)
    if spread > 0:
        ratio = ratio * np.exp(spread * rng.standard_normal(n_boot))
    fails = int(np.count_nonzero(ratio <= bound if slower else ratio >= bound))
    return (fails + 1) / (n_boot + 1)


def boot_ratios(new_rounds: Sequence[np.ndarray], base_rounds: Sequence[np.ndarray], n_boot: int,
                rng: np.random.Generator) -> np.ndarray:
    """Replicates of new / base, each the ratio of the two sides' hierarchical bootstrap medians.

    The new side draws first, then the base, from ``rng``.
    """
    return hierarchical_boot_medians(new_rounds, n_boot, rng) / hierarchical_boot_medians(base_rounds, n_boot, rng)


def classify(ratio: float, new: np.ndarray | None, base: np.ndarray | None, threshold: float,
             alpha: float, *, new_rounds: Sequence[np.ndarray] | None = None,
             base_rounds: Sequence[np.ndarray] | None = None, n_boot: int = DEFAULT_ROUNDS_BOOT,
             rng: np.random.Generator | None = None, spread: float = 0.0) -> tuple[str, float, str]:
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
    spread : float
        The rows' between-run spread (log SD) the hierarchical test adds (see
        :func:`hierarchical_p`); the Mann-Whitney test of one-round rows has no
        such term.
    """
    slower = ratio > 1 + threshold
    faster = ratio < 1 / (1 + threshold)
    if not (slower or faster):
        return "unchanged", math.nan, ""
    direction = "slower" if slower else "faster"
    if (new_rounds is not None and base_rounds is not None and len(new_rounds) >= MIN_ROUNDS
            and len(base_rounds) >= MIN_ROUNDS):
        how = f"hierarchical bootstrap, {len(base_rounds)}+{len(new_rounds)} rounds"
        if spread > 0:
            how += f", rows' spread between runs {math.expm1(spread):.0%}"
        if 1.0 / (n_boot + 1) >= alpha:
            return ("untestable", math.nan,
                    f"{ratio:.2f}x ({direction}) but {n_boot} replicates cannot reach p < {alpha:g} ({how})")
        bound = (1 + threshold) if slower else 1 / (1 + threshold)
        p = hierarchical_p(new_rounds, base_rounds, bound, slower, n_boot,
                           rng if rng is not None else np.random.default_rng(0), spread)
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
                   alpha: float = DEFAULT_ALPHA, scale: float = 1.0, spread: float = 0.0,
                   paired: bool = False, n_boot: int = DEFAULT_ROUNDS_BOOT, seed: int = 0) -> pd.DataFrame:
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
    spread : float
        The rows' between-run spread (:func:`between_run_spread`) that the
        test of rows measured in rounds adds (:func:`hierarchical_p`).
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
    rows, stored = _match_rows(base, new, base_samples, new_samples, threshold=threshold, alpha=alpha,
                               paired=paired)
    _test_stored(stored, threshold=threshold, alpha=alpha, scale=scale, spread=spread, n_boot=n_boot, seed=seed)
    return _rows_frame(rows, paired)


@dataclass
class _Stored:
    """A row both stored runs have ok, matched and waiting for its test."""

    out: dict[str, Any]
    key: dict[str, Any]
    ratio: float
    base: np.ndarray | None
    new: np.ndarray | None
    base_rounds: tuple[np.ndarray, ...] | None
    new_rounds: tuple[np.ndarray, ...] | None

    def rng(self, seed: int, *extra: int) -> np.random.Generator:
        # Seeded by the row's key: its p does not depend on the other rows.
        return np.random.default_rng([seed, zlib.crc32("|".join(map(str, self.key.values())).encode()), *extra])

    @property
    def in_rounds(self) -> bool:
        return (self.base_rounds is not None and self.new_rounds is not None
                and len(self.base_rounds) >= MIN_ROUNDS and len(self.new_rounds) >= MIN_ROUNDS)


def _match_rows(base: pd.DataFrame, new: pd.DataFrame, base_samples: pd.DataFrame | None,
                new_samples: pd.DataFrame | None, *, threshold: float, alpha: float,
                paired: bool) -> tuple[list[dict[str, Any]], list[_Stored]]:
    """Rows of the comparison; those of stored runs both have ok are left for :func:`_test_stored`."""
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
    rows: list[dict[str, Any]] = []
    stored: list[_Stored] = []
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
                out.update(ratio=float(r["time_s_n"]) / float(r["time_s_b"]),
                           base_samples=0 if bs is None else int(bs.size),
                           new_samples=0 if ns is None else int(ns.size))
                stored.append(_Stored(out, key, out["ratio"], bs, ns, row_rounds(bri, bkey), row_rounds(nri, nkey)))
            elif sb == "ok" and sn in FAILED_STATUSES:
                msg = str(r.get("message_n") or "").strip()
                out.update(status="regression", note=f"ok in the baseline, {sn} now" + (f": {msg}" if msg else ""))
            elif sb != "ok" and sn == "ok":
                out.update(status="improvement", note=f"{sb} in the baseline, ok now")
            else:
                out.update(status="not_ok", note=f"{sb} -> {sn}")
        rows.append(out)
    return rows, stored


def _test_stored(stored: Sequence[_Stored], *, threshold: float, alpha: float, scale: float, spread: float,
                 n_boot: int, seed: int) -> None:
    """Classify the rows both stored runs have ok (their status, p and note, in place)."""
    for st in stored:
        bs, br, ratio = st.base, st.base_rounds, st.ratio
        if scale != 1.0:
            bs = None if bs is None else bs * scale
            br = None if br is None else tuple(a * scale for a in br)
        status, p, note = classify(ratio / scale, st.new, bs, threshold, alpha, new_rounds=st.new_rounds,
                                   base_rounds=br, n_boot=n_boot, rng=st.rng(seed), spread=spread)
        if note and scale != 1.0:
            note = f"{note} (raw {ratio:.2f}x, common-mode {scale:.3f}x removed)"
        st.out.update(p_value=p, status=status, note=note)


def _rows_frame(rows: list[dict[str, Any]], paired: bool) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(PAIRED_COLUMNS if paired else COMPARE_COLUMNS))
    order = {s: i for i, s in enumerate(STATUSES)}
    df["_o"] = df["status"].map(order)
    return df.sort_values(["_o", *MATCH_KEY], kind="stable").drop(columns="_o").reset_index(drop=True)


#: Fewest rows measured in rounds that the rows' between-run spread is estimated from.
MIN_SPREAD_ROWS = 8
#: Fewest such rows a kernel needs for its rows to enter the estimate (each is taken from its kernel's median).
MIN_KERNEL_ROWS = 3
#: Replicates of each row's bootstrap when estimating how much its ratio varies within the runs.
SPREAD_BOOT = 400
#: Median absolute value of a standard normal variable (the 75th percentile).
MAD_OF_NORMAL = 0.6744897501960817


def between_run_spread(log_ratios: Sequence[float], within_var: Sequence[float]) -> float:
    """How much rows move between two runs beyond what their rounds show (log SD; 0 when nothing is left).

    A random effect, estimated robustly and per row's own precision: the
    ``spread`` for which the rows' log ratios, centred on their median and
    divided by ``sqrt(within_var + spread**2)``, have the median absolute value
    of a standard normal (0.6745). It is a robust form of the Paule-Mandel
    estimator of meta-analysis: a median, so the few rows a real change moved
    do not count, and per row, so a row whose rounds agree tightly but which
    moved far counts as much as a noisy one. Rows of two runs made minutes
    apart move on their own on a shared machine (a process's level is drawn
    anew in every run, and the host favours some work over other work for
    minutes); the rounds of one run are made in the same minutes and cannot
    show it, the other rows can.

    Parameters
    ----------
    log_ratios : sequence of float
        ``log(new / base)`` of each row measured in rounds (finite).
    within_var : sequence of float
        The variance of each row's log ratio within the runs (e.g. of its
        hierarchical bootstrap replicates).

    Returns
    -------
    float
        0 when the rows' own variances already explain their spread, or with
        fewer than :data:`MIN_SPREAD_ROWS` rows.

    Examples
    --------
    >>> between_run_spread([0.0] * 8, [0.01] * 8)
    0.0
    >>> round(between_run_spread([-0.2, 0.2] * 4, [0.0] * 8), 3)
    0.297
    """
    lr = np.asarray(log_ratios, dtype=float)
    wv = np.maximum(np.asarray(within_var, dtype=float), 0.0)
    if lr.size < MIN_SPREAD_ROWS or wv.size != lr.size:
        return 0.0
    dev = np.abs(lr - np.median(lr))

    def excess(spread: float) -> float:  # decreasing in spread
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(dev > 0, dev / np.sqrt(wv + spread * spread), 0.0)
        return float(np.median(z)) - MAD_OF_NORMAL

    if excess(0.0) <= 0:
        return 0.0
    lo, hi = 0.0, max(1e-12, 2.0 * float(np.max(dev)) / MAD_OF_NORMAL)
    for _ in range(60):  # bisection to far below any figure shown
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if excess(mid) > 0 else (lo, mid)
    return hi


def _spread_of(stored: Sequence[_Stored], seed: int) -> tuple[float, int]:
    """:func:`between_run_spread` of the rows measured in rounds in both runs, and how many there are.

    Each row's log ratio is taken from its kernel's median log ratio, over
    kernels with :data:`MIN_KERNEL_ROWS` such rows or more: a change of code
    moves a kernel's rows together, and must not widen every row's test (on
    the gate bench's grid, with one kernel of three made 50 % slower, the
    spread taken around the run's median let 30 of 152 of its rows through,
    around each kernel's 42).
    """
    lr: list[float] = []
    wv: list[float] = []
    kernels: list[str] = []
    for st in stored:
        if not (st.in_rounds and st.ratio > 0 and math.isfinite(st.ratio)):
            continue
        assert st.new_rounds is not None and st.base_rounds is not None
        boot = boot_ratios(st.new_rounds, st.base_rounds, SPREAD_BOOT, st.rng(seed, 1))  # not the test's draws
        lr.append(math.log(st.ratio))
        wv.append(float(np.var(np.log(boot))))
        kernels.append(str(st.key["kernel"]))
    if not lr:
        return 0.0, 0
    lra, wva, ka = np.array(lr), np.array(wv), np.array(kernels)
    keep = np.zeros(lra.size, dtype=bool)
    for k in np.unique(ka):
        mine = ka == k
        if mine.sum() >= MIN_KERNEL_ROWS:
            lra[mine] -= np.median(lra[mine])
            keep |= mine
    return between_run_spread(lra[keep], wva[keep]), int(keep.sum())


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


def _median_ratio(r: np.ndarray) -> tuple[float, int]:
    r = r[np.isfinite(r) & (r > 0)]
    if r.size == 0:
        return math.nan, 0
    return float(np.exp(np.median(np.log(r)))), int(r.size)



def compare_runs(base: Runs, new: Runs, *, threshold: float = DEFAULT_THRESHOLD,
                 alpha: float = DEFAULT_ALPHA, n_boot: int = 200, common_mode_correction: bool = True,
                 paired: bool = False, max_shift: float | None = DEFAULT_MAX_SHIFT) -> Comparison:
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
        Test rows against the baseline scaled by the common-mode factor, and
        rows measured in rounds with the rows' between-run spread (see the
        module's notes). False: both are reported, neither is applied.
    paired : bool
        The runs are the two sides of ``symbench ab``: rows are classified on
        their pairs of samples, and no common-mode factor is applied (the
        pairs already cancel drift).
    max_shift : float or None
        Fail the gate (:attr:`Comparison.failed`) when the common-mode factor
        is above ``1 + max_shift`` (None or ``inf``: never). The default, 0.5,
        is above the run-wide drift seen between consecutive runs on a shared
        2-core machine in 39 of 40 comparisons; 0.10 suits a quiet
        machine, where a run-wide slowdown can only be the code's.

    Returns
    -------
    Comparison
    """
    if max_shift is not None and not max_shift > 0:
        raise ValueError(f"max_shift must be positive, got {max_shift}")
    if max_shift is not None and math.isinf(max_shift):
        max_shift = None
    rows, stored = _match_rows(base.df, new.df, base.samples, new.samples, threshold=threshold, alpha=alpha,
                               paired=paired)
    warns: list[str] = []
    shift, shift_rows = (_median_ratio(np.array([st.ratio for st in stored], dtype=float)) if not paired
                         else (math.nan, 0))
    spread, spread_rows = _spread_of(stored, 0) if not paired else (math.nan, 0)
    rounds_rows = sum(st.in_rounds for st in stored)
    applied = (common_mode_correction and math.isfinite(shift) and shift_rows >= MIN_COMMON_MODE_ROWS
               and abs(math.log(shift)) > 1e-9)
    _test_stored(stored, threshold=threshold, alpha=alpha, scale=shift if applied else 1.0,
                 spread=spread if common_mode_correction else 0.0, n_boot=DEFAULT_ROUNDS_BOOT, seed=0)
    rows = _rows_frame(rows, paired)
    if math.isfinite(shift) and shift_rows >= MIN_COMMON_MODE_ROWS and abs(math.log(shift)) > math.log1p(threshold):
        if shift_exceeds(shift, shift_rows, max_shift, threshold):
            what = f"that is beyond --max-shift {max_shift:g}, so the gate fails"
        elif applied:
            what = ("rows were tested against the baseline scaled by it, so a change that slowed every row by as "
                    "much passes as the machine's" + (" (lower --max-shift to fail on it)" if shift > 1 else ""))
        else:
            what = "rows were tested without correcting for it"
        warns.append(f"the new run is {shift:.2f}x the baseline across {shift_rows} rows (median ratio): the "
                     f"machine's speed drifted between the runs, or every row changed; {what}; measure both "
                     "sides together with symbench ab to tell")
    bc = find_crossovers(base.df, base.samples, n_boot=n_boot)
    nc = find_crossovers(new.df, new.samples, n_boot=n_boot)
    moved = moved_crossovers(bc, nc)
    bm = base.metas[0] if len(base.metas) == 1 else {}
    nm = new.metas[0] if len(new.metas) == 1 else {}
    warns += _env_warnings(bm, nm)
    ok_both = rows["status"].isin(COMPARED) & rows["ratio"].notna()
    if ok_both.any() and (len(base.samples) == 0 or len(new.samples) == 0):
        warns.append("no raw samples (samples.csv) for a run: changes beyond the threshold cannot be "
                     "tested and are reported as untestable, never as regressions")
    flagged_stored = sum(st.out["status"] in ("regression", "improvement") for st in stored)
    if flagged_stored and not rounds_rows and len(base.samples) and len(new.samples):
        warns.append(f"{flagged_stored} rows flagged between runs of one round each may be each process's own "
                     "level, which one round cannot show: sweep both with --rounds 5 (as configs/ci.toml) or use "
                     "symbench ab")
    untestable = int((rows["status"] == "untestable").sum())
    if untestable and len(base.samples) and len(new.samples):
        warns.append(f"{untestable} rows changed by more than the threshold but have too few samples "
                     f"to test at alpha {alpha:g} (use {'--pairs' if paired else '--repeat'} 7 or more)")
    both = rows[~rows["status"].isin(["only_base", "only_new"])]
    if len(both) == 0:
        warns.append("the two runs have no kernel and problem in common: nothing was compared")
    return Comparison(rows, moved, warns, threshold, alpha, base=", ".join(base.paths), new=", ".join(new.paths),
                      paired=paired, shift=shift, shift_rows=shift_rows, shift_applied=applied,
                      spread=spread, spread_rows=spread_rows, rounds_rows=rounds_rows,
                      spread_applied=bool(common_mode_correction and spread_rows and spread > 0),
                      max_shift=max_shift,
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
