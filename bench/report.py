"""Markdown tables of the fast-kernel benchmark (``make bench``), from one run's measurements.

Pure functions over the run's DataFrame and a few measured facts (GEMM speed,
timer overhead, machine): nothing here measures. ``bench/run.py`` runs the
sweep and the GEMM, then calls :func:`render`.

Ratios are ``time_s`` (median seconds per call) of one kernel over another on
the same problem, both measured back to back in the same run. GFLOP/s are
symbench's nominal direct-method flop count over ``time_s`` (the ``gflops``
column), so % of GEMM compares the direct kernel's useful work with a
single-thread BLAS GEMM measured in the same process.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

#: The grids the issue's goals 1-4 are stated on (other rows of the run, e.g. the
#: thread problems, appear in the tables but not in the goal figures).
GRID_1D = dict(dim=1, dtype="float64", mode="full", c_in=1, c_out=1, batch=1, n=(1024, 16384, 262144))
GRID_2D = dict(dim=2, dtype="float32", mode="same", c_in=1, c_out=1, batch=1, n=(256, 1024))


def ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"] == "ok"]


def select(df: pd.DataFrame, **where: Any) -> pd.DataFrame:
    """``ok`` rows matching ``where`` (a tuple value means "one of"); threads 1 unless given."""
    where.setdefault("threads", 1)
    sel = ok(df)
    for col, val in where.items():
        sel = sel[sel[col].isin(val)] if isinstance(val, tuple) else sel[sel[col] == val]
    return sel


def pivot(df: pd.DataFrame, **where: Any) -> pd.DataFrame:
    """``time_s`` by (n, k) x kernel for the rows matching ``where``."""
    return select(df, **where).pivot_table(index=["n", "k"], columns="kernel", values="time_s", aggfunc="median")


def gflops(df: pd.DataFrame, kernel: str, **where: Any) -> pd.Series:
    sel = select(df, **where)
    return sel[sel["kernel"] == kernel].set_index(["n", "k"])["gflops"].sort_index()


def ratio(table: pd.DataFrame, num: str, den: str) -> pd.Series:
    if num not in table or den not in table:
        return pd.Series(dtype=float)
    return (table[num] / table[den]).dropna()


def _fmt(x: float, digits: int = 2) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _verdict(value: float, limit: float, below: bool = True) -> str:
    if not np.isfinite(value):
        return "not measured"
    good = value <= limit if below else value >= limit
    return "holds" if good else "**misses**"


def grid_table(values: pd.Series, digits: int = 2, suffix: str = "") -> list[str]:
    """A Markdown table with n down and k across."""
    if values.empty:
        return ["(no rows)"]
    wide = values.unstack("k")
    head = "| n \\ k | " + " | ".join(str(int(k)) for k in wide.columns) + " |"
    rule = "|---|" + "---|" * len(wide.columns)
    lines = [head, rule]
    for n, row in wide.iterrows():
        cells = [(_fmt(v, digits) + suffix) if np.isfinite(v) else "–" for v in row.to_numpy(dtype=float)]
        lines.append(f"| {int(n)} | " + " | ".join(cells) + " |")
    return lines


def summary_rows(df: pd.DataFrame, gemm32: float) -> dict[str, float]:
    """The figures the goals are about."""
    one = pivot(df, **GRID_1D)
    two = pivot(df, **GRID_2D)
    r1 = ratio(one, "direct", "direct-numpy")
    r2 = ratio(two, "direct", "auto-opencv")
    f1 = ratio(one, "fft-pyfftw", "fft-scipy")
    f2 = ratio(two, "fft-pyfftw", "fft-scipy")
    g2 = gflops(df, "direct", **GRID_2D)
    g2 = g2[g2.index.get_level_values("k") >= 7]
    both = pd.concat([f1, f2])
    return {
        "direct_numpy_median": r1.median() if len(r1) else math.nan,
        "direct_numpy_max": r1.max() if len(r1) else math.nan,
        "direct_opencv_median": r2.median() if len(r2) else math.nan,
        "direct_opencv_max": r2.max() if len(r2) else math.nan,
        "fftw_scipy_median": both.median() if len(both) else math.nan,
        "fftw_scipy_median_1d": f1.median() if len(f1) else math.nan,
        "fftw_scipy_median_2d": f2.median() if len(f2) else math.nan,
        "direct_gemm_share": (g2 / gemm32).median() if len(g2) and gemm32 > 0 else math.nan,
    }


def layer_rows(df: pd.DataFrame, crossovers: pd.DataFrame | None, gemm32: float) -> list[str]:
    """Goal 7: the multi-channel layer, per k, and its crossover."""
    sel = ok(df)
    sel = sel[(sel["c_in"] > 1) & (sel["threads"] == 1)]
    if sel.empty:
        return ["(no layer rows)"]
    lines = []
    for key, g in sel.groupby(["batch", "c_in", "c_out", "n", "dtype", "mode"]):
        b, ci, co, n, dtype, mode = key
        t = g.pivot_table(index="k", columns="kernel", values="time_s")
        gf = g[g["kernel"] == "direct"].set_index("k")["gflops"]
        lines += [f"Layer: batch {b}, {ci} -> {co} channels, {n} x {n}, {dtype}, {mode}.", "",
                  "| k | direct ms | fft-pyfftw ms | direct / fft | direct GFLOP/s | direct % of GEMM |",
                  "|---|---|---|---|---|---|"]
        for k, row in t.iterrows():
            d = row.get("direct", math.nan)
            f = row.get("fft-pyfftw", math.nan)
            g_ = float(gf.get(k, math.nan))
            lines.append(f"| {int(k)} | {_fmt(d * 1e3, 1)} | {_fmt(f * 1e3, 1)} | {_fmt(d / f)} | "
                         f"{_fmt(g_, 0)} | {_fmt(100 * g_ / gemm32, 0)}% |")
        if crossovers is not None and len(crossovers) and len(t) > 1:
            c = crossovers[(crossovers["batch"] == b) & (crossovers["c_in"] == ci) & (crossovers["c_out"] == co)
                           & (crossovers["n"] == n) & (crossovers["threads"] == 1)]
            for _, r in c.iterrows():
                lines += ["", f"Crossover {r['direct_kernel']} vs {r['fft_kernel']}: **{r['verdict']}**, "
                              f"k* = {_fmt(r['k_star'], 1)} in ({_fmt(r['k_lo'], 0)}, {_fmt(r['k_hi'], 0)}]"
                              + (f" (bootstrap confidence {_fmt(r['confidence'])})"
                                 if np.isfinite(r.get('confidence', math.nan)) else "")]
        lines.append("")
    return lines


def thread_rows(df: pd.DataFrame) -> tuple[list[str], list[float]]:
    """Goal 5: t(1 thread) / t(2 threads) for every problem measured with both."""
    sel = ok(df)
    key = ["kernel", "dim", "n", "k", "batch", "c_in", "c_out", "dtype", "mode"]
    t = sel.pivot_table(index=key, columns="threads", values="time_s")
    if 1 not in t or 2 not in t:
        return ["(no problem was measured with 1 and 2 threads)"], []
    t = t.dropna(subset=[1, 2])
    best = sel.pivot_table(index=key, columns="threads", values="time_min_s") if "time_min_s" in sel else None
    lines = ["| kernel | problem | 1 thread ms | 2 threads ms | speedup (medians) | speedup (best samples) |",
             "|---|---|---|---|---|---|"]
    speedups = []
    for idx, row in t.iterrows():
        rec = dict(zip(key, idx))
        label = f"{rec['dim']}-D n={rec['n']} k={rec['k']} {rec['dtype']} {rec['mode']}"
        if (rec["batch"], rec["c_in"], rec["c_out"]) != (1, 1, 1):
            label += f" b={rec['batch']} {rec['c_in']}->{rec['c_out']}"
        s = row[1] / row[2]
        sb = best.loc[idx, 1] / best.loc[idx, 2] if best is not None else math.nan
        if row[1] > 0.010:
            speedups.append(s)
        lines.append(f"| {rec['kernel']} | {label} | {_fmt(row[1] * 1e3, 1)} | {_fmt(row[2] * 1e3, 1)} | "
                     f"{_fmt(s)} | {_fmt(sb)} |")
    return lines, speedups


def render(df: pd.DataFrame, facts: Mapping[str, Any], crossovers: pd.DataFrame | None = None) -> str:
    """The whole Markdown report.

    ``facts`` holds ``machine`` (a label), ``cpu_count``, ``gemm_float32`` and
    ``gemm_float64`` (lists of single-thread GFLOP/s measured in the process),
    ``timer`` (:func:`symbench.sweep.timing.timer_overhead`), ``load`` (load averages
    before and after), ``versions`` and ``run_dir``.
    """
    # "% of GEMM" divides by the faster GEMM measured in the process: the machine's load moves
    # GEMM by ~10% between before and after, and the slower figure would flatter the kernels.
    g32 = float(np.max(facts.get("gemm_float32") or [math.nan]))
    g64 = float(np.max(facts.get("gemm_float64") or [math.nan]))
    s = summary_rows(df, g32)
    timer = facts.get("timer") or {}
    out: list[str] = []
    out += [f"Measured on {facts.get('machine', '?')}, {facts.get('cpu_count', '?')} cores, "
            f"load average {facts.get('load', '?')} (before, after); one run, `{facts.get('run_dir', '')}`.",
            f"Libraries: {facts.get('versions', '')}.",
            f"Timer: {timer.get('clock', '?')}, overhead {_fmt(timer.get('overhead_per_call_s', math.nan) * 1e9, 0)} ns "
            f"per timed call, resolution {_fmt(timer.get('measured_resolution_s', math.nan) * 1e9, 0)} ns measured "
            f"({_fmt(timer.get('resolution_s', math.nan) * 1e9, 0)} ns nominal); every sample lasts >= 5 ms.",
            f"Single-thread GEMM in the same process (2048^3, before/after the sweep; % of GEMM uses the faster): float32 "
            f"{' / '.join(_fmt(g, 0) for g in facts.get('gemm_float32') or [])} GFLOP/s, float64 "
            f"{' / '.join(_fmt(g, 0) for g in facts.get('gemm_float64') or [])} GFLOP/s.", ""]
    out += ["| goal (1 thread) | figure | limit | |", "|---|---|---|---|",
            f"| 1. direct / numpy.convolve, 1-D float64 full, median | {_fmt(s['direct_numpy_median'])} | <= 1.0 | "
            f"{_verdict(s['direct_numpy_median'], 1.0)} |",
            f"| 1. ... worst cell | {_fmt(s['direct_numpy_max'])} | <= 1.5 | {_verdict(s['direct_numpy_max'], 1.5)} |",
            f"| 2. direct / OpenCV filter2D, 2-D float32 same, median | {_fmt(s['direct_opencv_median'])} | <= 1.0 | "
            f"{_verdict(s['direct_opencv_median'], 1.0)} |",
            f"| 2. ... worst cell | {_fmt(s['direct_opencv_max'])} | <= 1.5 | {_verdict(s['direct_opencv_max'], 1.5)} |",
            f"| 3. direct 2-D float32, k >= 7: median % of GEMM | {_fmt(100 * s['direct_gemm_share'], 0)}% | >= 50% | "
            f"{_verdict(s['direct_gemm_share'], 0.5, below=False)} |",
            f"| 4. fft-pyfftw / fft-scipy, both grids, median | {_fmt(s['fftw_scipy_median'])} | <= 0.5 | "
            f"{_verdict(s['fftw_scipy_median'], 0.5)} |",
            f"| 4. ... 1-D grid only / 2-D grid only | {_fmt(s['fftw_scipy_median_1d'])} / "
            f"{_fmt(s['fftw_scipy_median_2d'])} | | |", ""]
    one = pivot(df, dim=1, dtype="float64", mode="full", c_in=1, c_out=1, batch=1)
    two = pivot(df, dim=2, dtype="float32", mode="same", c_in=1, c_out=1, batch=1)
    out += ["**1-D float64, full: direct / numpy.convolve** (time ratio; < 1: direct is faster)", ""]
    out += grid_table(ratio(one, "direct", "direct-numpy"))
    out += ["", f"**1-D: direct GFLOP/s** (float64 GEMM: {_fmt(g64, 0)})", ""]
    out += grid_table(gflops(df, "direct", dim=1, dtype="float64", mode="full", c_in=1, c_out=1, batch=1), 1)
    out += ["", "**1-D: fft-pyfftw / fft-scipy**", ""]
    out += grid_table(ratio(one, "fft-pyfftw", "fft-scipy"))
    out += ["", "**2-D float32, same: direct / OpenCV filter2D**", ""]
    out += grid_table(ratio(two, "direct", "auto-opencv"))
    g2 = gflops(df, "direct", dim=2, dtype="float32", mode="same", c_in=1, c_out=1, batch=1)
    out += ["", f"**2-D: direct GFLOP/s** (float32 GEMM: {_fmt(g32, 0)})", ""]
    out += grid_table(g2, 0)
    out += ["", "**2-D: direct, % of single-thread float32 GEMM**", ""]
    out += grid_table(100 * g2 / g32, 0, "%")
    out += ["", "**2-D: fft-pyfftw / fft-scipy**", ""]
    out += grid_table(ratio(two, "fft-pyfftw", "fft-scipy"))
    out += ["", "**7. Multi-channel layer**", ""]
    out += layer_rows(df, crossovers, g32)
    lines, speedups = thread_rows(df)
    out += ["**5. Threads: 1 vs 2** (each pair measured back to back; on a shared machine the second core "
            "is not always free, and the best samples show the speedup when it was)", ""] + lines
    if speedups:
        out += ["", f"Problems over 10 ms: speedup median {_fmt(float(np.median(speedups)))}, "
                    f"min {_fmt(min(speedups))} (goal >= 1.6)."]
    return "\n".join(out) + "\n"
