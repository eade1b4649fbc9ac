"""Plain-text table writers shared by report and compare: Markdown, LaTeX, CSV, JSON, rich.

Nothing here computes: values arrive already decided, and only get formatted.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd


def is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def fmt_num(v: Any, digits: int = 3) -> str:
    """A number with ``digits`` significant digits; '' for missing, 'inf' for infinity."""
    if is_missing(v):
        return ""
    if isinstance(v, (bool,)):
        return "yes" if v else "no"
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == int(x) and abs(x) < 10 ** 7:
        return str(int(x))
    return f"{x:.{digits}g}"


def fmt_int(v: Any) -> str:
    return "" if is_missing(v) else str(int(float(v)))


def fmt_pct(v: Any) -> str:
    return "" if is_missing(v) else f"{100 * float(v):.0f}%"


def fmt_ratio(v: Any) -> str:
    if is_missing(v):
        return ""
    x = float(v)
    return f"{x:.3g}x" if x < 100 else f"{x:.0f}x"


def fmt_seconds(v: Any) -> str:
    """Seconds with a unit that keeps 3 significant digits readable (ns, us, ms, s)."""
    if is_missing(v):
        return ""
    x = float(v)
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if abs(x) >= scale or unit == "ns":
            return f"{x / scale:.3g} {unit}"
    return f"{x:g} s"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[str]], right: Sequence[bool]) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells are escaped)."""
    def cell(s: str) -> str:
        return str(s).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |",
             "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(cell(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"$<$", ">": r"$>$"}


def latex_escape(s: Any) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(s))


def latex_tabular(headers: Sequence[str], sections: Sequence[tuple[str | None, Sequence[Sequence[str]]]],
                  right: Sequence[bool], comment: str = "") -> str:
    """A booktabs ``tabular``; each section gets an italic heading row and a ``\\midrule``.

    Cells are escaped here; pass plain text.
    """
    spec = "".join("r" if r else "l" for r in right)
    out = []
    if comment:
        out.append(f"% {comment}")
    out += [f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
            " & ".join(latex_escape(h) for h in headers) + r" \\", "\\midrule"]
    for i, (title, rows) in enumerate(sections):
        if i:
            out.append("\\midrule")
        if title:
            out.append(f"\\multicolumn{{{len(headers)}}}{{l}}{{\\emph{{{latex_escape(title)}}}}} \\\\")
        for row in rows:
            out.append(" & ".join(latex_escape(c) for c in row) + r" \\")
    out += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(out) + "\n"


def csv_text(df: pd.DataFrame) -> str:
    """CSV with 6 significant digits for floats (stable, diff-friendly)."""
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.6g", lineterminator="\n")
    return buf.getvalue()


def _jsonable(v: Any) -> Any:
    if is_missing(v):
        return None
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if hasattr(v, "item"):  # numpy scalars
        return _jsonable(v.item())
    return v


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (NaN -> null, numpy scalars -> Python)."""
    return [{str(k): _jsonable(v) for k, v in r.items()} for r in df.to_dict("records")]


def json_text(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2, default=str, allow_nan=False) + "\n"


def rich_text(renderable: Any, width: int = 160) -> str:
    """Render a rich object to plain text (no colour) at a fixed width."""
    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, force_terminal=False, highlight=False,
            soft_wrap=False, legacy_windows=False).print(renderable)
    return buf.getvalue()


def bracket_of(verdict: Any, k_lo: Any, k_hi: Any) -> str:
    """``(5, 2049]``; ``<= 3`` when only k_hi is known (fft_always); ``> 4097`` when only k_lo is."""
    if is_missing(k_lo) and is_missing(k_hi):
        return str(verdict or "")
    if is_missing(k_lo):
        return f"<= {fmt_int(k_hi)}"
    if is_missing(k_hi):
        return f"> {fmt_int(k_lo)}"
    return f"({fmt_int(k_lo)}, {fmt_int(k_hi)}]"
