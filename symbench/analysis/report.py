"""Everything ``symbench report`` shows, as data: crossovers, models, predictions, regret."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from symbench.analysis.crossover import DEFAULT_ALPHA, DEFAULT_BOOT, find_crossovers, why_no_pairs
from symbench.analysis.data import Runs, disturbed_rows, rounds_of, series_label
from symbench.analysis.models import add_model_k_star, fit_models, predict_crossovers
from symbench.analysis.regret import auto_regret

REPORT_SCHEMA = "symbench-report/1"


@dataclass
class Report:
    """The results of :func:`build_report` (tables are pandas DataFrames).

    Attributes
    ----------
    crossovers : DataFrame
        :func:`~symbench.analysis.crossover.find_crossovers` plus ``model_k_star``.
    models : DataFrame
        :func:`~symbench.analysis.models.fit_models`.
    predictions : DataFrame
        :func:`~symbench.analysis.models.predict_crossovers` at n that were not measured.
    regret : DataFrame
        :func:`~symbench.analysis.regret.auto_regret`.
    notes : list of str
        Plain sentences for the reader (e.g. that there is nothing to pair).
    runs : list of dict
        Run id, path, machine and completeness of each run given.
    """

    crossovers: pd.DataFrame
    models: pd.DataFrame
    predictions: pd.DataFrame
    regret: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    alpha: float = DEFAULT_ALPHA
    n_boot: int = DEFAULT_BOOT


def run_summaries(runs: Runs) -> list[dict[str, Any]]:
    """Run id, path, machine and completeness of each run."""
    out = []
    for path, meta in zip(runs.paths, runs.metas):
        env = meta.get("environment") or {}
        out.append({"path": path, "run_id": meta.get("run_id"), "machine": env.get("machine_label"),
                    "machine_id": env.get("machine_id"), "complete": meta.get("complete"),
                    "started": meta.get("started")})
    return out


def disturbed_note(runs: Runs, cross: pd.DataFrame) -> str | None:
    """One line when a verdict rests on rows measured while run.json's ``noise`` says the machine was disturbed."""
    if not len(cross):
        return None
    df = runs.df
    mask, truncated = disturbed_rows(df, runs.metas)
    if not mask.any():
        return None
    bad = df[mask]
    hit = []
    for r in cross.to_dict("records"):
        ks = {float(k) for k in str(r["k_values"]).split(",") if k}
        same = bad[(bad["machine_id"] == r["machine_id"]) & bad["kernel"].isin([r["direct_kernel"], r["fft_kernel"]])]
        for c in ("op", "group", "dim", "dtype", "mode", "batch", "c_in", "c_out", "threads", "n"):
            same = same[same[c].astype(str) == str(r[c])]
        if len(same) and same["k"].astype(float).isin(ks).any():
            hit.append(r)
    if not hit:
        return None
    first = hit[0]
    more = "; more may be, as a run names only its first disturbed problems" if truncated else ""
    return (f"warning: {len(hit)} of {len(cross)} verdicts rest on rows measured while the machine was "
            f"disturbed (steal or other processes' CPU over run.json's noise thresholds), e.g. "
            f"{series_label(first, with_n=True)} {first['direct_kernel']} vs {first['fft_kernel']}{more}; "
            f"measure again on a quieter machine")


def build_report(runs: Runs, *, alpha: float = DEFAULT_ALPHA, n_boot: int = DEFAULT_BOOT,
                 seed: int = 0) -> Report:
    """Crossovers, cost models, model predictions and auto-kernel regret of ``runs``.

    Parameters
    ----------
    runs : Runs
        From :func:`symbench.analysis.data.load_runs`.
    alpha, n_boot, seed
        Passed to :func:`~symbench.analysis.crossover.find_crossovers`.
    """
    df = runs.df
    cross = find_crossovers(df, runs.samples, alpha=alpha, n_boot=n_boot, seed=seed)
    models = fit_models(df)
    cross = add_model_k_star(cross, models)
    pred = predict_crossovers(cross, models)
    pred = pred[~pred["measured"]].reset_index(drop=True)
    notes: list[str] = []
    reason = why_no_pairs(df) if len(cross) == 0 else None
    if reason:
        notes.append(reason)
    incomplete = [m.get("run_id") or p for p, m in zip(runs.paths, runs.metas) if m and not m.get("complete")]
    if incomplete:
        notes.append(f"incomplete run{'s' if len(incomplete) > 1 else ''} (interrupted or still running): "
                     f"{', '.join(map(str, incomplete))}")
    machines = df["machine_id"].nunique()
    if machines > 1:
        notes.append(f"{machines} machines: their rows are kept apart (see the machine column)")
    warn = disturbed_note(runs, cross)
    if warn:
        notes.append(warn)
    if len(cross) and rounds_of(runs.metas, df) == 1:
        notes.append("one round per run: confidence and the k* interval cover only the noise within this run "
                     "(its samples), not what changes from one run to the next (load, boot, frequency)")
    not_ok = int((df["status"] != "ok").sum())
    if not_ok:
        counts = df.loc[df["status"] != "ok", "status"].value_counts()
        notes.append("rows left out (only ok rows enter crossovers): "
                     + ", ".join(f"{int(v)} {k}" for k, v in counts.items()))
    return Report(cross, models, pred, auto_regret(df), notes, run_summaries(runs), alpha, n_boot)
