"""``symbench report`` output: rich table, CSV, Markdown, LaTeX (booktabs) and JSON.

The crossover table is shown per *series* (machine, device, op, group, dim,
dtype, mode, batch, channels, threads), one row per n and pair. CSV is the flat
crossover table with the fixed report columns (docs/formats.md) first; JSON holds every table.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence

from symbench.analysis.data import series_label
from symbench.analysis.report import REPORT_SCHEMA, Report
from symbench.render.text import (bracket_of, csv_text, fmt_int, fmt_num, fmt_pct, fmt_ratio, fmt_seconds,
                                  json_text, latex_tabular, markdown_table, records)

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
            fmt_num(r["k_star"]), bracket_text(r), fmt_pct(r["confidence"]), fmt_num(r.get("model_k_star")),
            fmt_ratio(r["speedup_at_kmax"]), fmt_num(r["log2_n"]),
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
             f"otherwise the row is inconclusive. Confidence: share of resamples giving the same bracket."]
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


def report_markdown(report: Report) -> str:
    out = ["# symbench report", ""]
    if report.runs:
        out += [f"Runs: {_runs_line(report)}", ""]
    for note in report.notes:
        if note.startswith("nothing to pair"):
            out += [f"**{note}**", ""]
    out += ["## Crossovers", ""]
    sections = list(_cross_sections(report))
    if not sections:
        out += ["No crossovers: nothing to pair.", ""]
    for title, rows in sections:
        out += [f"### {title}", "", markdown_table(_CROSS_HEAD, rows, _CROSS_RIGHT)]
    if len(report.regret):
        out += ["## Regret of auto kernels", "",
                "Regret = t_auto / t_fastest kernel of the same problem (1.00x: the heuristic picked the "
                "fastest).", "", markdown_table(_REGRET_HEAD, _regret_rows(report), _REGRET_RIGHT)]
    if len(report.models):
        out += ["## Cost models", "",
                "direct: t = a*out*h + b with out, h the output and kernel elements (times channels); "
                "fft: t = c*N*log2(N) + d with N = prod(n+k-1) the transform size. Fitted in relative error.", "", markdown_table(_MODEL_HEAD, _model_rows(report), _MODEL_RIGHT)]
    preds = _pred_rows(report)
    if preds:
        out += ["## Model k* at unmeasured n", "", markdown_table(_PRED_HEAD, preds, (False,) * 4)]
    out += ["## How verdicts were decided", ""] + [f"- {line}" for line in _how_decided(report)]
    other = [n for n in report.notes if not n.startswith("nothing to pair")]
    if other:
        out += ["", "## Notes", ""] + [f"- {n}" for n in other]
    return "\n".join(out).rstrip() + "\n"


def report_latex(report: Report) -> str:
    """booktabs tabulars (needs ``\\usepackage{booktabs}``): crossovers, regret, models."""
    head = ("n", "direct", "fft", "verdict", "k*", "bracket", "conf.", "model k*", "speedup", "log2 n")
    sections = list(_cross_sections(report))
    parts = []
    if sections:
        parts.append(latex_tabular(head, sections, _CROSS_RIGHT,
                                   comment="symbench crossovers (needs \\usepackage{booktabs})"))
    else:
        parts.append("% symbench crossovers: nothing to pair\n\\begin{tabular}{l}\n\\toprule\n"
                     "No crossovers: nothing to pair. \\\\\n\\bottomrule\n\\end{tabular}\n")
    if len(report.regret):
        parts.append(latex_tabular(_REGRET_HEAD, [(None, _regret_rows(report))], _REGRET_RIGHT,
                                   comment="regret of auto kernels: t_auto / t_fastest of the same problem"))
    if len(report.models):
        parts.append(latex_tabular(_MODEL_HEAD, [(None, _model_rows(report))], _MODEL_RIGHT,
                                   comment="cost models: direct a*out*h + b; fft c*N*log2(N) + d"))
    return "\n".join(parts)


def _rich_table(title: str, head: Sequence[str], right: Sequence[bool], rows: Iterable[Sequence[str]],
                no_wrap: Sequence[str] = ()) -> Any:
    """One titled rich table; ``right`` marks the right-aligned (numeric) columns, as for LaTeX."""
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for h, r in zip(head, right):
        t.add_column(h, justify="right" if r else "left", no_wrap=h in no_wrap)
    for row in rows:
        t.add_row(*row)
    return t


def report_rich(report: Report) -> Any:
    """A rich renderable: one table per series, then regret, models and notes."""
    from rich.console import Group
    from rich.text import Text

    parts: list[Any] = []
    if report.runs:
        parts.append(Text(f"runs: {_runs_line(report)}"))
    for note in report.notes:
        if note.startswith("nothing to pair"):
            parts.append(Text(note, style="bold"))
    for title, rows in _cross_sections(report):
        parts.append(_rich_table(f"crossovers: {title}", _CROSS_HEAD, _CROSS_RIGHT, rows,
                                 no_wrap=("direct", "fft", "verdict")))
    if len(report.regret):
        parts.append(_rich_table("regret of auto kernels (t_auto / fastest kernel of the same problem)",
                                 _REGRET_HEAD, _REGRET_RIGHT, _regret_rows(report)))
    if len(report.models):
        parts.append(_rich_table("cost models (direct: a*out*h + b; fft: c*N*log2(N) + d) and how well they fit",
                                 _MODEL_HEAD, _MODEL_RIGHT, _model_rows(report)))
    preds = _pred_rows(report)
    if preds:
        parts.append(_rich_table("model k* at unmeasured n", _PRED_HEAD, [False] * len(_PRED_HEAD), preds))
    for line in _how_decided(report)[1:]:
        parts.append(Text(line))
    for note in report.notes:
        if not note.startswith("nothing to pair"):
            parts.append(Text(f"note: {note}"))
    return Group(*parts)


def render_report(report: Report, fmt: str) -> str:
    """The report as text in ``fmt`` (one of :data:`FORMATS`; ``table`` as plain text)."""
    from symbench.render.text import rich_text

    if fmt == "csv":
        return report_csv(report)
    if fmt == "json":
        return report_json(report)
    if fmt == "markdown":
        return report_markdown(report)
    if fmt == "latex":
        return report_latex(report)
    if fmt == "table":
        return rich_text(report_rich(report))
    raise ValueError(f"unknown format {fmt!r}")


__all__ = ["FORMATS", "render_report", "report_csv", "report_json", "report_latex", "report_markdown",
           "report_rich", "bracket_text"]
