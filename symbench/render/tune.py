"""What ``symbench tune`` prints: per setting, the fastest kernel by k at each measured n."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text

from symbench.render.text import fmt_num


def regions_line(segments: Sequence[Mapping[str, Any]]) -> str:
    """``direct-numpy < 12.3 <= direct < 90 <= fft-pyfftw``: the winner of each k range, left to right."""
    parts = []
    for i, seg in enumerate(segments):
        if i:
            parts.append(f"< {fmt_num(seg['k_from'])} <=")
        parts.append(str(seg["kernel"]))
    return " ".join(parts)


def table_summary(table: Mapping[str, Any], notes: Sequence[str] = (), paths: Sequence[str] = ()) -> Group:
    """A readable account of a dispatch table (and where it was written)."""
    machine = table.get("machine") or {}
    entries = table.get("entries") or []
    parts: list[Any] = [Text(f"dispatch table (schema {table.get('schema_version')}): {len(entries)} setting"
                             f"{'s' if len(entries) != 1 else ''} from {len(table.get('runs') or [])} run"
                             f"{'s' if len(table.get('runs') or []) != 1 else ''}, machine "
                             f"{machine.get('machine_label') or machine.get('machine_id') or 'unknown'}",
                             style="bold")]
    for e in entries:
        kr = e.get("k_range") or ["", ""]
        parts.append(Text(f"{e.get('label', e.get('op'))}: fastest kernel by k (k measured {fmt_num(kr[0])}.."
                          f"{fmt_num(kr[1])})"))
        t = Table()
        t.add_column("n", justify="right")
        t.add_column("kernel by k range (k* between them)")
        for r in e.get("regions") or []:
            t.add_row(str(r["n"]), regions_line(r["segments"]))
        parts.append(t)
        g = e.get("grid_regret") or {}
        if g.get("points"):
            w = g.get("worst_at") or {}
            parts.append(Text(f"  on its own grid: fastest on {round(100 * g['fastest_share'])}% of {g['points']} "
                              f"points; regret median {g['median']:.3f}, worst {g['worst']:.3f} "
                              f"(n={w.get('n')}, k={w.get('k')}, {w.get('kernel')})"))
    if entries:
        measured = [n for e in entries for n, m in zip(e["n"], e["measured"]) if m]
        parts.append(Text(f"extrapolated: outside the measured n ({fmt_num(min(measured))}..{fmt_num(max(measured))}) "
                          "and k of a setting, lookups say so: each curve follows the fitted cost models' k*(n) "
                          "for 4 octaves beyond the measured n, anchored at the nearest one, then stays constant"))
    for note in notes:
        parts.append(Text(f"note: {note}"))
    for p in paths:
        parts.append(Text(p))
    return Group(*parts)
