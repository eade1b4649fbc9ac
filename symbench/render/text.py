"""Plain-text table writers shared by report and compare: Markdown, LaTeX, CSV, JSON, rich.

Nothing here computes: values arrive already decided, and only get formatted.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
from typing import Any, Callable, Iterable, Mapping, Sequence

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
    if 1e-3 <= abs(x) < 1e7:
        # Fixed notation: a k* of 1030 reads as 1030, not 1.03e+03.
        return _fixed(x, digits, keep_zeros=False)
    return f"{x:.{digits}g}"


def _fixed(x: float, digits: int, keep_zeros: bool) -> str:
    """``x`` rounded to ``digits`` significant digits, in fixed notation."""
    places = digits - 1 - math.floor(math.log10(abs(x)))
    r = round(x, places)
    if r != 0 and math.floor(math.log10(abs(r))) != math.floor(math.log10(abs(x))):
        places -= 1  # 9.996 rounds to 10.0: one integer digit more, one decimal less
        r = round(x, places)
    if places <= 0:
        return str(int(r))
    text = f"{r:.{places}f}"
    return text if keep_zeros else text.rstrip("0").rstrip(".")


def fmt_sig(v: Any, digits: int = 3) -> str:
    """``digits`` significant digits, trailing zeros kept (``25.0``, ``2.60``, ``1030``), for papers.

    Fixed notation from 0.001 to 10**7, else ``1.50e-9``; '' for missing values.
    Paste into ``\\num{}`` (siunitx) to get a proper exponent.
    """
    if is_missing(v):
        return ""
    x = float(v)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e7:
        return _fixed(x, digits, keep_zeros=True)
    mant, exp = f"{x:.{digits - 1}e}".split("e")
    return f"{mant}e{int(exp)}"


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


_MD_SPECIAL = re.compile(r"[*\\`]|(?<!\w)_|_(?!\w)")


def md_escape(text: Any) -> str:
    """Text safe in Markdown: ``*``, backslashes, backticks and word-edge ``_`` escaped.

    ``k*`` stays ``k*`` on the page instead of opening an emphasis; an
    underscore inside a word (``fft_always``) needs no escape in CommonMark.
    """
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(), str(text))


def md_code(text: str) -> str:
    """A code span (for formulas: ``t = a*out*h + b`` keeps its asterisks)."""
    return f"`{text}`"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[str]], right: Sequence[bool]) -> str:
    """A GitHub-flavoured Markdown table (cells escaped with :func:`md_escape`, pipes too)."""
    def cell(s: str) -> str:
        return md_escape(s).replace("|", "\\|").replace("\n", " ")

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
    out += [f"\\begin{{tabular}}{{{spec}}}", *_tabular_body(headers, sections, latex_escape, "l"),
            "\\end{tabular}"]
    return "\n".join(out) + "\n"


def _tabular_body(headers: Sequence[Any], sections: Sequence[tuple[str | None, Sequence[Sequence[Any]]]],
                  cell: Callable[[Any], str], heading: str) -> list[str]:
    """A booktabs tabular's lines from ``\\toprule`` to ``\\bottomrule``; ``heading``: the column spec of section titles."""
    out = ["\\toprule", " & ".join(cell(h) for h in headers) + r" \\", "\\midrule"]
    for i, (title, rows) in enumerate(sections):
        if i:
            out.append("\\midrule")
        if title:
            out.append(f"\\multicolumn{{{len(headers)}}}{{{heading}}}{{\\emph{{{latex_escape(title)}}}}} \\\\")
        for row in rows:
            out.append(" & ".join(cell(c) for c in row) + r" \\")
    out.append("\\bottomrule")
    return out


class TeX(str):
    """A cell or header that is LaTeX already (math, ``\\num{}``): :func:`latex_float` does not escape it."""


def tex_num(v: Any, digits: int = 3, suffix: str = "") -> "TeX":
    """A number for a paper: ``\\num{23.8}`` at ``digits`` significant digits (siunitx); '' if missing."""
    text = fmt_sig(v, digits)
    if not text:
        return TeX("")
    if text in ("inf", "-inf"):
        return TeX(("$-\\infty$" if text == "-inf" else "$\\infty$") + suffix)
    return TeX(f"\\num{{{text}}}{suffix}")


def _tex_cell(c: Any) -> str:
    return str(c) if isinstance(c, TeX) else latex_escape(c)


#: Packages the paper tables need (the preamble of a two-column paper usually has them all).
LATEX_PACKAGES = "booktabs,siunitx,graphicx"


def latex_float(headers: Sequence[str], sections: Sequence[tuple[str | None, Sequence[Sequence[Any]]]],
                right: Sequence[bool], caption: str | None = None, label: str | None = None,
                comment: str = "", notes: Sequence[str] = ()) -> str:
    """A booktabs ``table`` float that never exceeds ``\\linewidth`` (one column of a two-column paper).

    The tabular keeps its natural size when it fits and is scaled down to
    ``\\linewidth`` (``\\resizebox`` of graphicx) only when it does not, so no
    overfull box whatever the kernel names. Each section gets an italic heading
    row. Cells are escaped unless they are :class:`TeX`; ``notes`` (LaTeX) go
    below the table in footnote size. Needs ``\\usepackage{booktabs,siunitx,graphicx}``.
    """
    spec = "@{}" + "".join("r" if r else "l" for r in right) + "@{}"
    out = [f"% {comment}" if comment else "% symbench",
           f"% needs \\usepackage{{{LATEX_PACKAGES}}}; scaled to \\linewidth only when wider",
           "\\begin{table}[tbp]", "\\centering", "\\small"]
    if caption is not None:
        out.append(f"\\caption{{{caption}}}")  # LaTeX as given: captions carry math
    if label is not None:
        out.append(f"\\label{{{label}}}")
    out += ["\\setlength{\\tabcolsep}{3pt}",
            "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%",
            f"\\begin{{tabular}}{{{spec}}}", *_tabular_body(headers, sections, _tex_cell, "@{}l"),
            "\\end{tabular}}"]
    if notes:
        out.append("\\par\\smallskip{\\raggedright\\footnotesize " + " ".join(notes) + "\\par}")
    out.append("\\end{table}")
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


def output_width(default: int = 160) -> int:
    """The width of text written to a file or pipe: ``$COLUMNS`` when set, else ``default``.

    Rich's own guess is 80 for anything that is not a terminal; logs read better
    wider, but a user who sets ``COLUMNS`` asked for that width.
    """
    try:
        width = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        return default
    return width if width >= 20 else default


class _AsciiBuffer(io.StringIO):
    # Rich draws table rules in ASCII (+, -, |) when its file's encoding is not UTF-8.
    encoding = "ascii"  # type: ignore[assignment]


def rich_text(renderable: Any, width: int | None = None) -> str:
    """Render a rich object to plain text (no colour, ASCII rules) at a fixed width.

    ``width`` defaults to :func:`output_width`. Files and logs get ``+-|`` rules
    rather than box-drawing characters: one byte per column, so ``awk``, ``cut``
    and byte-counting CI viewers agree with the terminal on how wide a line is.
    """
    from rich.console import Console

    width = output_width() if width is None else width
    buf = _AsciiBuffer()
    Console(file=buf, width=width, color_system=None, force_terminal=False, highlight=False,
            soft_wrap=False, legacy_windows=False).print(renderable)
    # Rich pads titles to the table's width; trailing blanks only make noisy diffs.
    return "".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines())


class Fit:
    """The first of several renderables (widest first) whose natural width fits; else the last.

    Lets a table print a narrower layout (fewer or merged columns) on an
    80-column terminal instead of cutting its cells to an ellipsis.
    """

    def __init__(self, *layouts: Any) -> None:
        self.layouts = layouts

    def _pick(self, console: Any, options: Any) -> Any:
        wide = options.update_width(10_000)
        for layout in self.layouts[:-1]:
            if console.measure(layout, options=wide).maximum <= options.max_width:
                return layout
        return self.layouts[-1]

    def __rich_console__(self, console: Any, options: Any) -> Any:
        yield self._pick(console, options)

    def __rich_measure__(self, console: Any, options: Any) -> Any:
        from rich.measure import Measurement

        return Measurement.get(console, options, self._pick(console, options))


def rich_table(title: str, columns: Sequence[tuple[str, bool]], rows: Iterable[Sequence[str]]) -> Any:
    """A titled rich table; ``columns`` are (header, right-aligned). Cells wrap or fold, never cut to '…'."""
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for head, right in columns:
        t.add_column(head, justify="right" if right else "left", overflow="fold")
    for row in rows:
        t.add_row(*row)
    return t


def fit_table(title: str, columns: Sequence[tuple[str, bool]], rows: Sequence[Sequence[str]],
              layouts: Sequence[Sequence[str]]) -> Any:
    """The table in each layout (the headers kept, widest first) inside a :class:`Fit`.

    A layout header may be ``"a / b"`` for two columns stacked in one cell, or
    ``"header=short"`` to show the column under a shorter name.
    """
    heads = [h for h, _ in columns]
    right = dict(columns)
    tables = []
    for layout in layouts:
        names = {}
        for h in layout:
            h, _, short = h.partition("=")
            names[h] = short or h
        layout = list(names)
        cols, picks = [], []
        for h in layout:
            if " / " in h and h not in right:
                a, b = h.split(" / ")
                cols.append((names[h], False))
                picks.append((heads.index(a), heads.index(b)))
            else:
                cols.append((names[h], right[h]))
                picks.append((heads.index(h),))
        body = [["\n".join(row[i] for i in p) for p in picks] for row in rows]
        tables.append(rich_table(title, cols, body))
    return Fit(*tables)


def bracket_of(verdict: Any, k_lo: Any, k_hi: Any) -> str:
    """``(5, 2049]``; ``<= 3`` when only k_hi is known (fft_always); ``> 4097`` when only k_lo is."""
    if is_missing(k_lo) and is_missing(k_hi):
        return str(verdict or "")
    if is_missing(k_lo):
        return f"<= {fmt_int(k_hi)}"
    if is_missing(k_hi):
        return f"> {fmt_int(k_lo)}"
    return f"({fmt_int(k_lo)}, {fmt_int(k_hi)}]"
