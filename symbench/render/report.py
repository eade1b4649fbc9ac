"""``symbench report`` output: rich table, CSV, Markdown, LaTeX (booktabs) and JSON.

The crossover table is shown per *series* (machine, device, op, group, dim,
dtype, mode, batch, channels, threads), one row per n and pair. CSV is the flat
crossover table with the fixed report columns (docs/formats.md) first; JSON holds every table.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence

from symbench.analysis.data import series_label
from symbench.analysis.report import REPORT_SCHEMA, Report
from symbench.errors import SymbenchError
from symbench.render.text import (TeX, bracket_of, csv_text, fmt_int, fmt_num, fmt_pct, fmt_ratio, fmt_seconds,
                                  fit_table, is_missing, json_text, latex_escape, latex_float, markdown_table, md_code,
                                  md_escape, records, rich_table, tex_num)

FORMATS = ("table", "csv", "markdown", "latex", "json")

_CROSS_HEAD = ("n", "direct", "fft", "verdict", "k*", "bracket", "confidence", "model k*", "speedup at k_max",
               "log2 n")
_CROSS_RIGHT = (True, False, False, False, True, False, True, True, True, True)
_REGRET_HEAD = ("auto kernel", "problems", "fastest on", "median regret", "worst regret", "worst problem",
                "fastest there")
_REGRET_RIGHT = (False, True, True, True, True, False, False)
_MODEL_HEAD = ("kernel", "series", "model", "slope", "intercept", "points", "rel. RMS error",
               "max rel. error", "R2 (log t)")
_MODEL_RIGHT = (False, False, False, True, True, True, True, True, True)
_PRED_HEAD = ("series", "direct", "fft", "model k* at unmeasured n")


def bracket_text(row: dict[str, Any]) -> str:
    """``(5, 2049]``; ``<= 3`` for fft_always; ``> 4097`` for direct_always."""
    return bracket_of("", row.get("k_lo"), row.get("k_hi"))


def k_star_text(row: dict[str, Any]) -> str:
    """``45 (33-65)``: k* and its bootstrap interval (``k_star_lo``-``k_star_hi``) when there is one."""
    k = fmt_num(row["k_star"])
    lo, hi = row.get("k_star_lo"), row.get("k_star_hi")
    if not k or is_missing(lo) or is_missing(hi):
        return k
    return f"{k} ({fmt_num(lo)}-{fmt_num(hi)})"


def _series_key_label(row: dict[str, Any], machines: int) -> str:
    label = series_label(row)
    if str(row.get("device", "cpu")) != "cpu":
        label += f" on {row['device']}"
    if machines > 1:
        label += f" [{row.get('machine')}]"
    return label


def _cross_sections(report: Report) -> Iterator[tuple[str, list[list[str]]]]:
    df = report.crossovers
    machines = df["machine_id"].nunique() if len(df) else 0
    sections: dict[str, list[list[str]]] = {}
    for r in df.to_dict("records"):
        title = _series_key_label(r, machines)
        sections.setdefault(title, []).append([
            fmt_int(r["n"]), str(r["direct_kernel"]), str(r["fft_kernel"]), str(r["verdict"]),
            k_star_text(r), bracket_text(r), fmt_pct(r["confidence"]), fmt_num(r.get("model_k_star")),
            fmt_ratio(r["speedup_at_kmax"]), fmt_num(r["log2_n"]), fmt_num(r["k_star"]),
        ])
    yield from sections.items()


def _regret_rows(report: Report) -> list[list[str]]:
    machines = report.regret["machine_id"].nunique() if len(report.regret) else 0
    rows = []
    for r in report.regret.to_dict("records"):
        name = r["kernel"] + (f" [{r['machine']}]" if machines > 1 else "")
        rows.append([name, str(r["problems"]), str(r["fastest"]), fmt_ratio(r["median_regret"]),
                     fmt_ratio(r["worst_regret"]), str(r["worst_problem"]), str(r["best_at_worst"])])
    return rows


def _model_rows(report: Report) -> list[list[str]]:
    rows = []
    for r in report.models.to_dict("records"):
        unit = "s/MAC" if r["method"] == "direct" else "s/(N log2 N)"
        rows.append([str(r["kernel"]), series_label(r), str(r["model"]), f"{fmt_num(r['slope'])} {unit}",
                     fmt_seconds(r["intercept"]), str(r["points"]), fmt_pct(r["rel_rmse"]),
                     fmt_pct(r["max_rel_err"]), fmt_num(r["r2_log"])])
    return rows


def _pred_rows(report: Report) -> list[list[str]]:
    rows = []
    p = report.predictions
    if len(p) == 0:
        return rows
    cols = ["machine_id", "device", "op", "group", "dim", "dtype", "mode", "batch", "c_in", "c_out", "threads",
            "direct_kernel", "fft_kernel"]
    for _, g in p.groupby(cols, sort=False):
        r = g.iloc[0].to_dict()
        values = ", ".join(f"n={int(n)}: {fmt_num(k)}" for n, k in zip(g["n"], g["model_k_star"]))
        rows.append([series_label(r), str(r["direct_kernel"]), str(r["fft_kernel"]), values])
    return rows


def _how_decided(report: Report) -> list[str]:
    lines = [f"k* is the smallest measured k from which the fft kernel is faster at that k and every larger "
             f"measured k; bracket (k_lo, k_hi]; k* interpolated where log(t_direct/t_fft) crosses 0 "
             f"(linear in log k). Verdicts are checked on the raw samples by a bootstrap of the median "
             f"({report.n_boot} resamples): a side of the bracket counts only when P >= {1 - report.alpha:g}; "
             f"otherwise the row is inconclusive. Confidence: share of resamples giving the same bracket. "
             f"In parentheses after k*: the 2.5 and 97.5 percentiles of the resamples' k* (k_star_lo, k_star_hi)."]
    df = report.crossovers
    if len(df):
        methods = sorted(set(df["decided_by"]) - {"bootstrap"})
        if methods:
            lines.append("some rows had no raw samples and were decided on "
                         + " / ".join("interquartile ranges" if m == "quartiles" else "medians" for m in methods))
        for r in df[df["verdict"] == "inconclusive"].to_dict("records"):
            lines.append(f"{series_label(r, with_n=True)} {r['direct_kernel']} vs {r['fft_kernel']}: {r['note']}")
    return lines


# -- formats ----------------------------------------------------------------------------------

def report_csv(report: Report) -> str:
    """The crossover table as CSV: the fixed report columns first (docs/formats.md), then ours."""
    return csv_text(report.crossovers)


def report_json(report: Report) -> str:
    """Every table of the report, plus the runs and notes, as one JSON object."""
    return json_text({
        "schema": REPORT_SCHEMA, "runs": report.runs, "alpha": report.alpha, "n_boot": report.n_boot,
        "crossovers": records(report.crossovers), "regret": records(report.regret),
        "models": records(report.models), "predictions": records(report.predictions), "notes": report.notes,
    })


def _runs_line(report: Report) -> str:
    parts = []
    for r in report.runs:
        what = r.get("run_id") or r["path"]
        if r.get("machine"):
            what += f" on {r['machine']}"
        if r.get("complete") is False:
            what += " (incomplete)"
        parts.append(what)
    return "; ".join(parts)


def report_markdown(report: Report, table: str = "all") -> str:
    """The report as CommonMark + tables: one ``#`` title, ``##`` per table, ``###`` per series.

    Formulas are code spans and ``*`` is escaped, so nothing renders as emphasis.
    ``table`` (one of :data:`TABLES`) keeps one table and drops the prose around the others.
    """
    if table not in TABLES:
        raise SymbenchError(f"unknown --table {table!r}; allowed: {', '.join(TABLES)}")
    want = set(TABLES[1:]) if table == "all" else {table}
    out = ["# symbench report", ""]
    if report.runs:
        out += [f"Runs: {md_escape(_runs_line(report))}", ""]
    for note in report.notes:
        if note.startswith("nothing to pair"):
            out += [f"**{md_escape(note)}**", ""]
    if "crossovers" in want:
        out += ["## Crossovers", ""]
        sections = list(_cross_sections(report))
        if not sections:
            out += ["No crossovers: nothing to pair.", ""]
        for title, rows in sections:
            rows = [r[:len(_CROSS_HEAD)] for r in rows]  # the last cell is k* alone, for narrow tables
            out += [f"### {md_escape(title)}", "", markdown_table(_CROSS_HEAD, rows, _CROSS_RIGHT)]
    if len(report.regret) and "regret" in want:
        out += ["## Regret of auto kernels", "",
                f"Regret = {md_code('t_auto / t_fastest')} on the same problem "
                f"({md_code('1.00x')}: the heuristic picked the fastest).", "",
                markdown_table(_REGRET_HEAD, _regret_rows(report), _REGRET_RIGHT)]
    if len(report.models) and "models" in want:
        out += ["## Cost models", "",
                f"direct: {md_code('t = a*out*h + b')} with out, h the output and kernel elements (times "
                f"channels); fft: {md_code('t = c*N*log2(N) + d')} with {md_code('N = prod(n+k-1)')} the "
                f"transform size. Fitted in relative error.", "",
                markdown_table(_MODEL_HEAD, _model_rows(report), _MODEL_RIGHT)]
    preds = _pred_rows(report)
    if preds and "models" in want:
        out += ["## Model k\\* at unmeasured n", "", markdown_table(_PRED_HEAD, preds, (False,) * 4)]
    if "crossovers" in want:
        out += ["## How verdicts were decided", ""] + [f"- {md_escape(line)}" for line in _how_decided(report)]
    other = [n for n in report.notes if not n.startswith("nothing to pair")]
    if other:
        out += ["", "## Notes", ""] + [f"- {md_escape(n)}" for n in other]
    return "\n".join(out).rstrip() + "\n"


#: The tables ``--table`` chooses from (LaTeX and Markdown).
TABLES = ("all", "crossovers", "regret", "models")


def _tex_cross_sections(report: Report) -> list[tuple[str, list[list[Any]]]]:
    """Crossover rows for a paper: k* (dagger when inconclusive), bracket in math, units in headers."""
    df = report.crossovers
    machines = df["machine_id"].nunique() if len(df) else 0
    sections: dict[str, list[list[Any]]] = {}
    for r in df.to_dict("records"):
        k = tex_num(r["k_star"])
        if k and not is_missing(r.get("k_star_lo")) and not is_missing(r.get("k_star_hi")):
            k = TeX(f"{k} ({tex_num(r['k_star_lo'])}--{tex_num(r['k_star_hi'])})")
        if k and r["verdict"] == "inconclusive":
            k = TeX(k + "$^\\dagger$")
        elif not k:
            k = TeX("---")
        lo, hi = r.get("k_lo"), r.get("k_hi")
        if is_missing(lo) and is_missing(hi):
            bracket = TeX("")
        elif is_missing(lo):
            bracket = TeX(f"$\\le {fmt_int(hi)}$")
        elif is_missing(hi):
            bracket = TeX(f"$> {fmt_int(lo)}$")
        else:
            bracket = TeX(f"$({fmt_int(lo)}, {fmt_int(hi)}]$")
        conf = "" if is_missing(r["confidence"]) else f"{100 * float(r['confidence']):.0f}"
        sections.setdefault(_series_key_label(r, machines), []).append([
            fmt_int(r["n"]), str(r["direct_kernel"]), str(r["fft_kernel"]), k, bracket, conf,
            tex_num(r["speedup_at_kmax"])])
    return list(sections.items())


def _tex_crossovers(report: Report, caption: str | None, label: str | None) -> str:
    head = [TeX("$n$"), "direct", "FFT", TeX("$k^\\ast$"), TeX("bracket"), TeX("conf.\\ (\\%)"),
            TeX("speedup ($\\times$)")]
    sections = _tex_cross_sections(report)
    if not sections:
        return latex_float(["No crossovers: nothing to pair."], [], [False], caption, label,
                           comment="symbench crossovers: nothing to pair")
    notes = ["$k^\\ast$: smallest measured $k$ from which the FFT kernel wins at every larger $k$,",
             "interpolated in $\\log k$ (in parentheses: 2.5--97.5 percentiles of the bootstrap $k^\\ast$);",
             "bracket $(k_{\\mathrm{lo}}, k_{\\mathrm{hi}}]$;",
             "speedup of the FFT kernel at the largest $k$."]
    if any("dagger" in str(row[3]) for _, rows in sections for row in rows):
        notes.append(f"$^\\dagger$ inconclusive at $\\alpha = {report.alpha:g}$.")
    return latex_float(head, sections, (True, False, False, True, False, True, True), caption, label,
                       comment="symbench crossovers", notes=notes)


def _tex_regret(report: Report, caption: str | None, label: str | None) -> str:
    machines = report.regret["machine_id"].nunique() if len(report.regret) else 0
    rows: list[list[Any]] = []
    for r in report.regret.to_dict("records"):
        name = r["kernel"] + (f" [{r['machine']}]" if machines > 1 else "")
        rows.append([name, str(r["problems"]), str(r["fastest"]), tex_num(r["median_regret"]),
                     tex_num(r["worst_regret"])])
        # The worst problem is a long phrase: a wrapped line under its row, not a column
        # that would make the table too wide for a paper's column.
        where = latex_escape(f"worst on {r['worst_problem']}; fastest there: {r['best_at_worst']}")
        rows.append([TeX(f"\\multicolumn{{5}}{{@{{}}p{{0.95\\linewidth}}@{{}}}}{{\\footnotesize\\quad {where}}}")])
    head = ["auto kernel", "problems", "fastest", TeX("median ($\\times$)"), TeX("worst ($\\times$)")]
    return latex_float(head, [(None, rows)], (False, True, True, True, True), caption, label,
                       comment="symbench regret of auto kernels",
                       notes=["Regret: $t_{\\mathrm{auto}} / t_{\\mathrm{fastest}}$ on the same problem;",
                              "fastest: on how many problems the auto kernel was the fastest."])


def _tex_models(report: Report, caption: str | None, label: str | None) -> str:
    sections: dict[str, list[list[Any]]] = {}
    for r in report.models.to_dict("records"):
        model = TeX("$a\\,|y|\\,|h| + b$") if r["method"] == "direct" else TeX("$c\\,N \\log_2 N + d$")
        intercept = r["intercept"]
        sections.setdefault(series_label(r), []).append([
            str(r["kernel"]), model, tex_num(r["slope"]),
            tex_num(None if is_missing(intercept) else float(intercept) * 1e6), str(r["points"]),
            "" if is_missing(r["rel_rmse"]) else f"{100 * float(r['rel_rmse']):.0f}",
            "" if is_missing(r["max_rel_err"]) else f"{100 * float(r['max_rel_err']):.0f}",
            tex_num(r["r2_log"])])
    head = ["kernel", "model", TeX("$a$, $c$ (\\si{\\second})"), TeX("$b$, $d$ (\\si{\\micro\\second})"),
            "points", TeX("RMS (\\%)"), TeX("max (\\%)"), TeX("$R^2$")]
    notes = ["$|y|$, $|h|$: output and kernel elements (times channels); $N$: transform size.",
             "RMS, max: relative error of the fit; $R^2$ of $\\log t$."]
    return latex_float(head, list(sections.items()), (False, False, True, True, True, True, True, True),
                       caption, label, comment="symbench cost models", notes=notes)


def report_latex(report: Report, table: str = "all", caption: str | None = None,
                 label: str | None = None) -> str:
    """Paper-ready LaTeX: one booktabs ``table`` float per table, each within ``\\linewidth``.

    Parameters
    ----------
    report : Report
        From :func:`symbench.analysis.report.build_report`.
    table : {"all", "crossovers", "regret", "models"}
        Which table. With ``all``, regret and models are included when the run has them.
    caption, label : str, optional
        LaTeX, used as given. With ``all`` each float gets the caption with its own
        name appended (``Crossovers: regret``) and the label with ``:crossovers``,
        ``:regret`` or ``:models`` appended, so labels stay unique.

    Returns
    -------
    str
        Needs ``\\usepackage{booktabs,siunitx,graphicx}``.
    """
    if table not in TABLES:
        raise SymbenchError(f"unknown --table {table!r}; allowed: {', '.join(TABLES)}")
    makers = {"crossovers": _tex_crossovers, "regret": _tex_regret, "models": _tex_models}
    present = {"crossovers": True, "regret": len(report.regret) > 0, "models": len(report.models) > 0}
    if table != "all":
        if not present[table]:
            raise SymbenchError(f"--table {table}: the report has no {table} table "
                                f"({'no auto kernel was measured' if table == 'regret' else 'no ok rows'})")
        return makers[table](report, caption, label)
    names = {"crossovers": "crossovers", "regret": "regret of auto kernels", "models": "cost models"}
    parts = []
    for name, make in makers.items():
        if present[name]:
            cap = f"{caption}: {names[name]}" if caption else f"symbench {names[name]}"
            parts.append(make(report, cap, f"{label}:{name}" if label else None))
    return "\n".join(parts)


#: Crossover columns at narrower widths: secondary columns go first, then direct and fft stack.
#: "k*" is k* with its interval (``45 (33-65)``); narrower layouts show "k* alone" instead.
_CROSS_LAYOUTS = (
    _CROSS_HEAD,
    ("n", "direct", "fft", "verdict", "k*", "bracket", "confidence=conf.", "speedup at k_max=speedup"),
    ("n", "direct / fft", "verdict", "k*", "bracket", "confidence=conf.", "speedup at k_max=speedup"),
    ("n", "direct / fft", "verdict", "k* alone=k*", "bracket", "confidence=conf.", "speedup at k_max=speedup"),
    ("n", "direct / fft", "verdict", "k*", "bracket"),
    ("n", "direct / fft", "verdict", "k* alone=k*", "bracket"),
)
_REGRET_LAYOUTS = (_REGRET_HEAD, ("auto kernel", "median regret=median", "worst regret=worst", "worst problem",
                                  "fastest there"))
_MODEL_LAYOUTS = (
    _MODEL_HEAD,
    ("kernel", "series", "slope", "intercept", "rel. RMS error=RMS err.", "max rel. error=max err.",
     "R2 (log t)=R2"),
    ("kernel", "slope", "intercept", "rel. RMS error=RMS err.", "R2 (log t)=R2"),
)


def _cols(head: Sequence[str], right: Sequence[bool]) -> list[tuple[str, bool]]:
    return list(zip(head, right))


def report_rich(report: Report) -> Any:
    """A rich renderable: one table per series, then regret, models and notes.

    Each table picks the widest of its layouts that fits the console, so at 80
    columns secondary columns are dropped instead of cells being cut.
    """
    from rich.console import Group
    from rich.text import Text

    parts: list[Any] = []
    if report.runs:
        parts.append(Text(f"runs: {_runs_line(report)}"))
    for note in report.notes:
        if note.startswith("nothing to pair"):
            parts.append(Text(note, style="bold"))
    for title, rows in _cross_sections(report):
        parts.append(fit_table(f"crossovers: {title}", _cols((*_CROSS_HEAD, "k* alone"), (*_CROSS_RIGHT, True)),
                               rows, _CROSS_LAYOUTS))
    if len(report.regret):
        parts.append(fit_table("regret of auto kernels (t_auto / fastest kernel of the same problem)",
                               _cols(_REGRET_HEAD, _REGRET_RIGHT), _regret_rows(report), _REGRET_LAYOUTS))
    if len(report.models):
        parts.append(fit_table("cost models (direct: a*out*h + b; fft: c*N*log2(N) + d) and how well they fit",
                               _cols(_MODEL_HEAD, _MODEL_RIGHT), _model_rows(report), _MODEL_LAYOUTS))
    preds = _pred_rows(report)
    if preds:
        parts.append(rich_table("model k* at unmeasured n", _cols(_PRED_HEAD, [False] * len(_PRED_HEAD)), preds))
    for line in _how_decided(report)[1:]:
        parts.append(Text(line))
    for note in report.notes:
        if not note.startswith("nothing to pair"):
            parts.append(Text(note if note.startswith("warning:") else f"note: {note}"))
    return Group(*parts)


def render_report(report: Report, fmt: str, table: str = "all", caption: str | None = None,
                  label: str | None = None, width: int | None = None) -> str:
    """The report as text in ``fmt`` (one of :data:`FORMATS`; ``table`` as plain text).

    ``table`` applies to ``markdown`` and ``latex``; ``caption`` and ``label`` to
    ``latex``; ``width`` (default ``$COLUMNS``, else 160) to ``table``.
    """
    from symbench.render.text import rich_text

    if fmt == "csv":
        return report_csv(report)
    if fmt == "json":
        return report_json(report)
    if fmt == "markdown":
        return report_markdown(report, table)
    if fmt == "latex":
        return report_latex(report, table, caption, label)
    if fmt == "table":
        return rich_text(report_rich(report), width)
    raise ValueError(f"unknown format {fmt!r}")


__all__ = ["FORMATS", "TABLES", "render_report", "report_csv", "report_json", "report_latex", "report_markdown",
           "report_rich", "bracket_text"]
