"""``symbench compare`` output: rich table, Markdown (for a CI job's log or summary page), CSV, JSON."""

from __future__ import annotations

from typing import Any

from symbench.analysis.compare import STATUSES, Comparison
from symbench.analysis.data import series_label
from symbench.render.text import (bracket_of, csv_text, fmt_num, fmt_ratio, fmt_seconds, json_text, markdown_table, records,
                                  rich_text)

FORMATS = ("table", "markdown", "csv", "json")
COMPARE_SCHEMA = "symbench-compare/1"
#: Statuses listed row by row (the others are only counted).
LISTED = ("regression", "improvement", "untestable")
_HEAD = ("status", "kernel", "problem", "baseline", "new", "ratio", "p", "note")
_RIGHT = (False, False, False, True, True, True, True, False)
_MOVED_HEAD = ("direct", "fft", "problem", "baseline", "new", "steps")


def headline(cmp: Comparison) -> str:
    """One line: pass or fail, and how many rows of each kind."""
    c = cmp.counts
    verdict = f"FAIL: {c['regression']} regression{'s' if c['regression'] != 1 else ''}" if c["regression"] \
        else "FAIL: fails closed (see the warnings)" if cmp.failed else "OK: no regression"
    compared = sum(c[s] for s in ("regression", "improvement", "unchanged", "noise", "untestable"))
    return (f"{verdict}; {c['improvement']} improved, {c['unchanged'] + c['noise']} unchanged "
            f"({c['noise']} within noise), {c['untestable']} untestable, of {compared} rows compared "
            f"(threshold {cmp.threshold:.0%}, Mann-Whitney U p < {cmp.alpha:g})")


def _listed_rows(cmp: Comparison) -> list[list[str]]:
    rows = []
    df = cmp.rows[cmp.rows["status"].isin(LISTED)]
    for r in df.to_dict("records"):
        rows.append([str(r["status"]), str(r["kernel"]), series_label(r, with_n=True) + f" k={int(r['k'])}",
                     fmt_seconds(r["base_s"]), fmt_seconds(r["new_s"]), fmt_ratio(r["ratio"]),
                     fmt_num(r["p_value"], 2), str(r["note"])])
    return rows


def _moved_rows(cmp: Comparison) -> list[list[str]]:
    rows = []
    for r in cmp.moved.to_dict("records"):
        base = bracket_of(r["base_verdict"], r["base_k_lo"], r["base_k_hi"])
        new = bracket_of(r["new_verdict"], r["new_k_lo"], r["new_k_hi"])
        rows.append([str(r["direct_kernel"]), str(r["fft_kernel"]), series_label(r, with_n=True), base, new,
                     f"{int(r['steps']):+d}"])
    return rows


def compare_markdown(cmp: Comparison) -> str:
    c = cmp.counts
    out = ["## symbench compare", "", f"**{headline(cmp)}**", "",
           f"Baseline `{cmp.base}`, new `{cmp.new}`.", "",
           markdown_table(("status", "rows"), [[s, str(c[s])] for s in STATUSES], (False, True))]
    listed = _listed_rows(cmp)
    if listed:
        out += ["### Rows beyond the threshold", "", markdown_table(_HEAD, listed, _RIGHT)]
    moved = _moved_rows(cmp)
    if moved:
        out += ["### Crossovers that moved by more than one grid step", "",
                markdown_table(_MOVED_HEAD, moved, (False,) * 5 + (True,))]
    if cmp.warnings:
        out += ["### Warnings", ""] + [f"- {w}" for w in cmp.warnings] + [""]
    return "\n".join(out).rstrip() + "\n"


def compare_rich(cmp: Comparison) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = [Text(headline(cmp), style="bold")]
    listed = _listed_rows(cmp)
    if listed:
        t = Table(title="rows beyond the threshold", title_justify="left")
        for h, r in zip(_HEAD, _RIGHT):
            t.add_column(h, justify="right" if r else "left", no_wrap=h in ("status", "kernel"))
        for row in listed:
            t.add_row(*row)
        parts.append(t)
    moved = _moved_rows(cmp)
    if moved:
        t = Table(title="crossovers that moved by more than one grid step", title_justify="left")
        for h in _MOVED_HEAD:
            t.add_column(h, justify="right" if h == "steps" else "left")
        for row in moved:
            t.add_row(*row)
        parts.append(t)
    for w in cmp.warnings:
        parts.append(Text(f"warning: {w}"))
    return Group(*parts)


def compare_json(cmp: Comparison) -> str:
    return json_text({"schema": COMPARE_SCHEMA, "baseline": cmp.base, "new": cmp.new,
                      "threshold": cmp.threshold, "alpha": cmp.alpha, "counts": cmp.counts,
                      "failed": cmp.failed, "warnings": cmp.warnings,
                      "rows": records(cmp.rows), "moved_crossovers": records(cmp.moved)})


def render_compare(cmp: Comparison, fmt: str) -> str:
    if fmt == "csv":
        return csv_text(cmp.rows)
    if fmt == "json":
        return compare_json(cmp)
    if fmt == "markdown":
        return compare_markdown(cmp)
    if fmt == "table":
        return rich_text(compare_rich(cmp))
    raise ValueError(f"unknown format {fmt!r}")
