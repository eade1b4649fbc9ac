"""``symbench compare`` and ``symbench ab`` output: rich table, Markdown (for a CI job's log or summary page), CSV, JSON.

``ab`` comparisons (``Comparison.paired``) show the ratio's interval and the
pairs instead of the Mann-Whitney p, and the crossovers of both sides; stored-run
comparisons show the common-mode factor on its own line.
"""

from __future__ import annotations

import math
from typing import Any

from symbench.analysis.compare import COMPARED, MIN_COMMON_MODE_ROWS, STATUSES, Comparison
from symbench.analysis.data import series_label
from symbench.render.text import (bracket_of, csv_text, fit_table, fmt_num, fmt_ratio, fmt_seconds, json_text, markdown_table, md_escape, records,
                                  rich_text)

FORMATS = ("table", "markdown", "csv", "json")
COMPARE_SCHEMA = "symbench-compare/1"
#: Statuses listed row by row (the others are only counted).
LISTED = ("regression", "improvement", "untestable")
_HEAD = ("status", "kernel", "problem", "baseline", "new", "ratio", "p", "note")
_RIGHT = (False, False, False, True, True, True, True, False)
_MOVED_HEAD = ("direct", "fft", "problem", "baseline", "new", "steps")
_PAIRED_HEAD = ("status", "kernel", "problem", "baseline", "new", "ratio", "interval", "pairs", "note")
_PAIRED_RIGHT = (False, False, False, True, True, True, True, True, False)
_CROSS_HEAD = ("direct", "fft", "problem", "baseline", "new")


def _head(cmp: Comparison) -> tuple[tuple[str, ...], tuple[bool, ...]]:
    return (_PAIRED_HEAD, _PAIRED_RIGHT) if cmp.paired else (_HEAD, _RIGHT)


#: Narrower layouts for an 80-column terminal: the note goes first, then columns stack.
_LAYOUTS = (_HEAD, ("status", "kernel", "problem", "baseline", "new", "ratio", "p"),
            ("status / kernel", "problem", "baseline / new", "ratio", "p"))
_PAIRED_LAYOUTS = (_PAIRED_HEAD, ("status", "kernel", "problem", "baseline", "new", "ratio", "interval"),
                   ("status / kernel", "problem", "baseline / new", "ratio / interval"))
_MOVED_LAYOUTS = (_MOVED_HEAD, ("direct / fft", "problem", "baseline", "new", "steps"))
_CROSS_LAYOUTS = (_CROSS_HEAD, ("direct / fft", "problem", "baseline", "new"))


def shift_line(cmp: Comparison) -> str:
    """The common-mode factor and the rows' between-run spread of a stored-run comparison ("" for ab)."""
    if cmp.paired:
        return ""
    if not cmp.shift_rows or cmp.shift != cmp.shift:
        return "Common-mode shift: none (no row is ok in both runs)."
    if cmp.shift_applied:
        what = "rows were tested against the baseline scaled by it"
    elif abs(cmp.shift - 1) <= 1e-9:
        what = "nothing to correct"
    elif cmp.shift_rows < MIN_COMMON_MODE_ROWS:
        what = "too few rows to tell it from a change of one kernel: not applied"
    else:
        what = "not applied (--no-common-mode)"
    if cmp.shift_exceeded:
        what += f"; a slowdown beyond --max-shift {cmp.max_shift:g}: the gate fails"
    line = (f"Common-mode shift: {cmp.shift:.3f}x (median ratio over {cmp.shift_rows} rows ok in both runs); "
            f"{what}.")
    if cmp.spread_rows:
        used = ("added to the tests of rows measured in rounds" if cmp.spread_applied
                else "nothing beyond the rounds' own spread" if not cmp.spread > 0
                else "not applied (--no-common-mode)")
        line += (f" Rows' own spread between the runs: {math.expm1(cmp.spread):.0%} "
                 f"(over {cmp.spread_rows} rows measured in rounds, each from its kernel's median); {used}.")
    return line


def headline(cmp: Comparison) -> str:
    """One line: pass or fail, and how many rows of each kind."""
    c = cmp.counts
    verdict = f"FAIL: {c['regression']} regression{'s' if c['regression'] != 1 else ''}" if c["regression"] \
        else f"FAIL: the whole run {cmp.shift:.2f}x slower (--max-shift {cmp.max_shift:g})" if cmp.shift_exceeded \
        else "FAIL: fails closed (see the warnings)" if cmp.failed else "OK: no regression"
    compared = sum(c[s] for s in COMPARED)
    test = (f"paired sign test, {1 - cmp.alpha:.0%} interval" if cmp.paired
            else f"hierarchical bootstrap over rounds, p < {cmp.alpha:g}" if cmp.rounds_rows
            else f"Mann-Whitney U p < {cmp.alpha:g}")
    return (f"{verdict}; {c['improvement']} improved, {c['unchanged'] + c['noise']} unchanged "
            f"({c['noise']} within noise), {c['untestable']} untestable, of {compared} rows compared "
            f"(threshold {cmp.threshold:.0%}, {test})")


def _listed_rows(cmp: Comparison) -> list[list[str]]:
    rows = []
    df = cmp.rows[cmp.rows["status"].isin(LISTED)]
    for r in df.to_dict("records"):
        head = [str(r["status"]), str(r["kernel"]), series_label(r, with_n=True) + f" k={int(r['k'])}",
                fmt_seconds(r["base_s"]), fmt_seconds(r["new_s"]), fmt_ratio(r["ratio"])]
        if cmp.paired:
            head += [f"{fmt_num(r['ratio_lo'])}-{fmt_num(r['ratio_hi'])}", str(int(r["pairs"]))]
        else:
            head += [fmt_num(r["p_value"], 2)]
        rows.append(head + [str(r["note"])])
    return rows


def _cross_rows(cmp: Comparison) -> list[list[str]]:
    """Both sides' crossovers, side by side (ab only)."""
    b, n = cmp.base_crossovers, cmp.new_crossovers
    if b is None or n is None or (len(b) == 0 and len(n) == 0):
        return []
    from symbench.analysis.crossover import GROUP_COLUMNS

    keys = [*GROUP_COLUMNS, "direct_kernel", "fft_kernel"]
    m = b.merge(n, on=keys, how="outer", suffixes=("_b", "_n"))
    rows = []
    for r in m.to_dict("records"):
        def side(sfx: str) -> str:
            v = r.get(f"verdict{sfx}")
            return "-" if not isinstance(v, str) else bracket_of(v, r.get(f"k_lo{sfx}"), r.get(f"k_hi{sfx}"))
        rows.append([str(r["direct_kernel"]), str(r["fft_kernel"]), series_label(r, with_n=True), side("_b"),
                     side("_n")])
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
    """The comparison as CommonMark + tables, headed like the report (``#`` title, ``##`` sections).

    A CI summary that appends ``report`` after ``compare`` gets two documents at the same level.
    """
    c = cmp.counts
    out = [f"# symbench {'ab' if cmp.paired else 'compare'}", "", f"**{md_escape(headline(cmp))}**", "",
           f"Baseline `{cmp.base}`, new `{cmp.new}`.", ""]
    if shift_line(cmp):
        out += [md_escape(shift_line(cmp)), ""]
    out += [markdown_table(("status", "rows"), [[s, str(c[s])] for s in STATUSES], (False, True))]
    listed = _listed_rows(cmp)
    if listed:
        out += ["## Rows beyond the threshold", "", markdown_table(*_with_rows(_head(cmp), listed))]
    moved = _moved_rows(cmp)
    if moved:
        out += ["## Crossovers that moved by more than one grid step", "",
                markdown_table(_MOVED_HEAD, moved, (False,) * 5 + (True,))]
    cross = _cross_rows(cmp)
    if cross:
        out += ["## Crossovers of both sides", "", markdown_table(_CROSS_HEAD, cross, (False,) * 5)]
    if cmp.warnings:
        out += ["## Warnings", ""] + [f"- {md_escape(w)}" for w in cmp.warnings] + [""]
    return "\n".join(out).rstrip() + "\n"


def _with_rows(head: tuple[tuple[str, ...], tuple[bool, ...]], rows: list[list[str]]) -> tuple[Any, ...]:
    return head[0], rows, head[1]


def compare_rich(cmp: Comparison) -> Any:
    """A rich renderable: the headline, the listed rows and the crossovers, each fitted to the width."""
    from rich.console import Group
    from rich.text import Text

    parts: list[Any] = [Text(headline(cmp), style="bold")]
    if shift_line(cmp):
        parts.append(Text(shift_line(cmp)))
    listed = _listed_rows(cmp)
    if listed:
        head, right = _head(cmp)
        parts.append(fit_table("rows beyond the threshold", list(zip(head, right)), listed,
                               _PAIRED_LAYOUTS if cmp.paired else _LAYOUTS))
    moved = _moved_rows(cmp)
    if moved:
        parts.append(fit_table("crossovers that moved by more than one grid step",
                               [(h, h == "steps") for h in _MOVED_HEAD], moved, _MOVED_LAYOUTS))
    cross = _cross_rows(cmp)
    if cross:
        parts.append(fit_table("crossovers of both sides", [(h, False) for h in _CROSS_HEAD], cross,
                               _CROSS_LAYOUTS))
    for w in cmp.warnings:
        parts.append(Text(f"warning: {w}"))
    return Group(*parts)


def compare_json(cmp: Comparison) -> str:
    data: dict[str, Any] = {"schema": COMPARE_SCHEMA, "baseline": cmp.base, "new": cmp.new,
                            "threshold": cmp.threshold, "alpha": cmp.alpha, "paired": cmp.paired,
                            "counts": cmp.counts, "failed": cmp.failed, "warnings": cmp.warnings}
    if not cmp.paired:
        data["common_mode"] = {"shift": cmp.shift, "rows": cmp.shift_rows, "applied": cmp.shift_applied,
                               "max_shift": cmp.max_shift, "exceeded": cmp.shift_exceeded,
                               "spread": cmp.spread, "spread_rows": cmp.spread_rows,
                               "spread_applied": cmp.spread_applied}
    data["rows"] = records(cmp.rows)
    data["moved_crossovers"] = records(cmp.moved)
    if cmp.paired and cmp.base_crossovers is not None and cmp.new_crossovers is not None:
        data["crossovers"] = {"base": records(cmp.base_crossovers), "new": records(cmp.new_crossovers)}
    return json_text(data)


def render_compare(cmp: Comparison, fmt: str, width: int | None = None) -> str:
    """The comparison as text in ``fmt`` (``table``: plain text at ``width``, default ``$COLUMNS`` or 160)."""
    if fmt == "csv":
        return csv_text(cmp.rows)
    if fmt == "json":
        return compare_json(cmp)
    if fmt == "markdown":
        return compare_markdown(cmp)
    if fmt == "table":
        return rich_text(compare_rich(cmp), width)
    raise ValueError(f"unknown format {fmt!r}")
