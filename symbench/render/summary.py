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
    return Group(*parts)


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
