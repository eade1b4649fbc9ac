"""What ``symbench sweep`` and ``symbench verify`` print when they finish."""

from __future__ import annotations

import math
from typing import Any, Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text


def sweep_summary(result: Any) -> Group:
    """Rows per status and, per kernel, the ok rows and their median GFLOP/s."""
    from symbench.store import load

    parts: list[Any] = []
    df = load(result.run_dir)
    status = Table(title=f"sweep {'interrupted' if result.interrupted else 'done'} "
                         f"in {result.elapsed_s:.1f} s: {len(df)} rows", show_header=True)
    for col in ("kernel", "ok", "mismatch", "error", "skipped", "timeout", "median GFLOP/s"):
        status.add_column(col, justify="left" if col == "kernel" else "right")
    for name, g in df.groupby("kernel", sort=False):
        counts = g["status"].value_counts()
        gf = g.loc[g["status"] == "ok", "gflops"].median()
        status.add_row(str(name), *(str(int(counts.get(s, 0))) for s in
                                    ("ok", "mismatch", "error", "skipped", "timeout")),
                       "" if not math.isfinite(gf) else f"{gf:.2f}")
    parts.append(status)
    bad = df[df["status"].isin(["mismatch", "error"])]
    for _, row in bad.head(5).iterrows():
        parts.append(Text(f"{row['status']}: {row['kernel']} n={row['n']} k={row['k']}: {row['message']}"))
    parts += crossover_matrices(result.run_dir)
    return Group(*parts)


def crossover_matrices(run_dir: Any) -> list[Any]:
    """Per series, a k* matrix (pairs x n); the full table is ``symbench report``'s."""
    from symbench.analysis.crossover import SERIES_COLUMNS, find_crossovers
    from symbench.analysis.data import load_runs, series_label
    from symbench.render.text import bracket_of, fmt_num

    runs = load_runs([run_dir])
    cross = find_crossovers(runs.df, runs.samples, n_boot=200)
    parts: list[Any] = []
    for _, c in cross.groupby(list(SERIES_COLUMNS[1:]), sort=False):
        ns = sorted(c["n"].unique())
        parts.append(Text(f"k* (fft faster from this k on): {series_label(c.iloc[0].to_dict())}",
                          style="italic"))
        table = Table()
        table.add_column("direct / fft")
        for n in ns:
            table.add_column(f"n={n}", justify="right")
        for (d, f), p in c.groupby(["direct_kernel", "fft_kernel"], sort=False):
            cells = []
            for n in ns:
                r = p[p["n"] == n]
                if not len(r):
                    cells.append("")
                    continue
                r0 = r.iloc[0]
                text = fmt_num(r0["k_star"]) if r0["verdict"] == "crossover" else bracket_of(
                    r0["verdict"], r0["k_lo"], r0["k_hi"])
                cells.append(text + ("?" if r0["verdict"] == "inconclusive" else ""))
            table.add_row(f"{d} / {f}", *cells)
        parts.append(table)
    if parts:
        parts.append(Text("<= k: fft faster at every measured k; > k: direct faster at the largest; "
                          "?: inconclusive (ties within noise). Details: symbench report RUN_DIR"))
    return parts


def verify_table(checks: Sequence[Any]) -> Table:
    """Per kernel: checks passed, failed and the largest rel_err / tolerance seen."""
    table = Table(title="symbench verify")
    for col in ("kernel", "ok", "failed", "skipped", "worst rel_err / tolerance"):
        table.add_column(col, justify="left" if col == "kernel" else "right")
    by: dict[str, list[Any]] = {}
    for c in checks:
        by.setdefault(c.kernel, []).append(c)
    for name, cs in by.items():
        ratios = [c.rel_err / c.tolerance for c in cs
                  if math.isfinite(c.rel_err) and math.isfinite(c.tolerance) and c.tolerance > 0]
        skipped = [c for c in cs if c.status == "skipped"]
        note = skipped[0].message if skipped and len(skipped) == len(cs) else ""
        table.add_row(name, str(sum(c.status == "ok" for c in cs)), str(sum(c.failed for c in cs)),
                      str(len(skipped)) + (f" ({note})" if note else ""),
                      f"{max(ratios):.3g}" if ratios else "")
    return table
