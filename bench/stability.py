"""``make bench-stability``: do consecutive sweeps put k* in the same bracket?

Usage::

    python bench/stability.py [--config configs/default.toml] [--runs 3] [--out results/stability-...]

Runs the sweep ``--runs`` times in a row (``symbench.sweep.runner.run_sweep``), finds
the crossovers of each run (``symbench.analysis.crossover.find_crossovers``) and
counts, for every (direct, fft) pair and problem group (n included), whether
all runs agree on the bracket ``(k_lo, k_hi]`` and the verdict. Writes
``stability.md`` (also printed) with the share and every cell that moved.

It also measures how far the verdicts can be trusted, run by run: of the
cells a run calls decided, the share whose verdict and bracket the *next*
run reproduces (the goal of issue 10: >= 95%), the share of cells a run
leaves inconclusive (<= 25%), and a reliability table: decided cells binned
by the run's ``confidence`` (the share of bootstrap replicates that put k* in
the same bracket), with the share of each bin that the next run reproduced.
A calibrated confidence of 0.9 is reproduced about 90% of the time; a bin
reproduced less often than its confidence says is overconfident.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from symbench.problem import SERIES_FIELDS

CELL = [*SERIES_FIELDS, "direct_kernel", "fft_kernel"]


def bracket_of(row: pd.Series) -> tuple:
    """The bracket a run put k* in, as a hashable value (open ends as None)."""
    lo = None if pd.isna(row["k_lo"]) else float(row["k_lo"])
    hi = None if pd.isna(row["k_hi"]) else float(row["k_hi"])
    verdict = row["verdict"]
    # An inconclusive row keeps the bracket of the medians: the bracket is what is compared.
    if verdict == "inconclusive":
        verdict = "crossover" if lo is not None and hi is not None else (
            "fft_always" if lo is None else "direct_always")
    return verdict, lo, hi


def agreement(tables: Sequence[pd.DataFrame]) -> tuple[float, pd.DataFrame, float]:
    """Share of cells whose bracket is the same in all runs, the cells that moved, and the share
    among the cells that every run decided (no ``inconclusive`` verdict: the bootstrap separated
    the two kernels at the bracket in every run)."""
    keyed, decided = [], []
    for t in tables:
        keyed.append({tuple(r[c] for c in CELL): bracket_of(r) for _, r in t.iterrows()})
        decided.append({tuple(r[c] for c in CELL) for _, r in t.iterrows() if r["verdict"] != "inconclusive"})
    common = set(keyed[0]).intersection(*keyed[1:]) if keyed else set()
    moved = []
    for cell in sorted(common, key=str):
        brackets = [k[cell] for k in keyed]
        if len(set(brackets)) > 1:
            moved.append({**dict(zip(CELL, cell)), "brackets": " / ".join(_fmt(b) for b in brackets),
                          "inconclusive": sum(cell not in d for d in decided)})
    share = 1 - len(moved) / len(common) if common else float("nan")
    sure = common.intersection(*decided) if decided else set()
    sure_moved = sum(1 for m in moved if tuple(m[c] for c in CELL) in sure)
    sure_share = 1 - sure_moved / len(sure) if sure else float("nan")
    return share, pd.DataFrame(moved), sure_share


#: Bins of ``confidence`` for the reliability table (left-closed; the last one includes 1).
CONFIDENCE_BINS = (0.0, 0.8, 0.9, 0.95, 0.99, 1.0)


def _cells(t: pd.DataFrame) -> dict[tuple, pd.Series]:
    return {tuple(r[c] for c in CELL): r for _, r in t.iterrows()}


def _same(a: pd.Series, b: pd.Series) -> bool:
    def key(r: pd.Series) -> tuple:
        return (r["verdict"], None if pd.isna(r["k_lo"]) else float(r["k_lo"]),
                None if pd.isna(r["k_hi"]) else float(r["k_hi"]))
    return key(a) == key(b)


def next_run(tables: Sequence[pd.DataFrame]) -> dict[str, float | int]:
    """Over consecutive pairs of runs: decided cells, how many the next run kept, and inconclusive cells.

    A decided cell is *kept* when the next run gives the same verdict and the same
    bracket (an inconclusive verdict in the next run is not kept).
    """
    decided = kept = cells = inconclusive = 0
    for a, b in zip(tables, tables[1:]):
        ca, cb = _cells(a), _cells(b)
        for cell in set(ca) & set(cb):
            cells += 1
            if ca[cell]["verdict"] == "inconclusive":
                inconclusive += 1
                continue
            decided += 1
            kept += _same(ca[cell], cb[cell])
    return {"decided": decided, "kept": kept, "cells": cells, "inconclusive": inconclusive,
            "kept_share": kept / decided if decided else float("nan"),
            "inconclusive_share": inconclusive / cells if cells else float("nan")}


def reliability(tables: Sequence[pd.DataFrame], bins: Sequence[float] = CONFIDENCE_BINS) -> pd.DataFrame:
    """Decided cells of each run binned by their ``confidence``, and the share the next run reproduced.

    Returns
    -------
    DataFrame
        One row per bin that holds cells: ``confidence`` (the bin, as text),
        ``cells``, ``mean_confidence`` and ``reproduced`` (a share). Cells without a
        confidence (decided on quartiles) are left out.
    """
    rows = []
    for a, b in zip(tables, tables[1:]):
        ca, cb = _cells(a), _cells(b)
        for cell in set(ca) & set(cb):
            r = ca[cell]
            if r["verdict"] == "inconclusive" or pd.isna(r.get("confidence", np.nan)):
                continue
            rows.append((float(r["confidence"]), _same(r, cb[cell])))
    if not rows:
        return pd.DataFrame(columns=["confidence", "cells", "mean_confidence", "reproduced"])
    df = pd.DataFrame(rows, columns=["c", "same"])
    edges = list(bins)
    idx = np.clip(np.searchsorted(edges, df["c"].to_numpy(), side="right") - 1, 0, len(edges) - 2)
    out = []
    for i in sorted(set(idx)):
        g = df[idx == i]
        hi = "]" if i == len(edges) - 2 else ")"
        out.append({"confidence": f"[{edges[i]:g}, {edges[i + 1]:g}{hi}", "cells": len(g),
                    "mean_confidence": float(g["c"].mean()), "reproduced": float(g["same"].mean())})
    return pd.DataFrame(out)


def _fmt(b: tuple) -> str:
    verdict, lo, hi = b
    if verdict == "fft_always":
        return f"fft always (k* <= {hi:g})" if hi is not None else "fft always"
    if verdict == "direct_always":
        return f"direct always (k* > {lo:g})" if lo is not None else "direct always"
    return f"({lo:g}, {hi:g}]"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/default.toml")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=f"results/stability-{time.strftime('%Y%m%d-%H%M%S')}")
    args = ap.parse_args(argv)

    from symbench.analysis.crossover import find_crossovers
    from symbench.analysis.data import load_runs
    from symbench.config import load_config
    from symbench.sweep.runner import run_sweep

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = load_config(args.config, {})
    tables, lines = [], []
    for i in range(1, args.runs + 1):
        load_before = os.getloadavg()[0]
        result = run_sweep(config, out / f"run{i}", command=["bench/stability.py", *(argv or sys.argv[1:])])
        if result.interrupted:
            return 130
        run = out / f"run{i}"
        runs = load_runs([run])  # rounds pooled; samples kept by round for the bootstrap
        tables.append(find_crossovers(runs.df, runs.samples))
        lines.append(f"- run {i}: {result.elapsed_s:.0f} s, {len(tables[-1])} (pair, n) cells, "
                     f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}")
    share, moved, sure_share = agreement(tables)
    cells = len(tables[0]) if tables else 0
    text = [f"# k* stability: {args.runs} consecutive runs of `{args.config}`", "", *lines, "",
            f"**{share * 100:.0f}%** of {cells} (pair, n) cells put k* in the same bracket in every run "
            f"(goal: >= 90%); {sure_share * 100:.0f}% of the cells that no run called inconclusive.", ""]
    nxt = next_run(tables)
    text += [f"Run to run: of the cells a run called decided, **{nxt['kept']}/{nxt['decided']} "
             f"({nxt['kept_share'] * 100:.0f}%)** had the same verdict and bracket in the next run (goal: >= 95%); "
             f"{nxt['inconclusive']} of {nxt['cells']} ({nxt['inconclusive_share'] * 100:.0f}%) were inconclusive "
             f"(goal: <= 25%). Rounds per run: {config.rounds}.", ""]
    rel = reliability(tables)
    if len(rel):
        text += ["Reliability (decided cells by the run's `confidence`; reproduced: same verdict and bracket "
                 "in the next run):", "", "| confidence | cells | mean confidence | reproduced |", "|---|---|---|---|"]
        text += [f"| {r['confidence']} | {r['cells']} | {r['mean_confidence']:.3f} | {r['reproduced'] * 100:.0f}% |"
                 for _, r in rel.iterrows()]
        text.append("")
    if len(moved):
        text += ["Cells that moved (runs that called the cell inconclusive: the two kernels tie within "
                 "noise at the bracket):", "",
                 "| pair | problem | brackets (run 1 / 2 / ...) | inconclusive in |", "|---|---|---|---|"]
        for _, r in moved.iterrows():
            text.append(f"| {r['direct_kernel']} vs {r['fft_kernel']} | {r['dim']}-D {r['dtype']} {r['mode']} "
                        f"n={r['n']} | {r['brackets']} | {r['inconclusive']} of {len(tables)} |")
    body = "\n".join(text) + "\n"
    (out / "stability.md").write_text(body)
    print(body)
    print(out / "stability.md")
    return 0 if not np.isnan(share) else 1


if __name__ == "__main__":
    sys.exit(main())
