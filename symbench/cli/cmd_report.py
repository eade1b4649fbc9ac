"""``symbench report``, ``compare`` and ``plot``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from symbench.cli.app import app, console, write_text
from symbench.errors import SymbenchError

_SUFFIX_FORMATS = {".csv": "csv", ".md": "markdown", ".markdown": "markdown", ".tex": "latex", ".json": "json",
                   ".txt": "table"}


def _format(fmt: Optional[str], out: Optional[str], allowed: tuple[str, ...]) -> str:
    """The output format: as given; else from --out's suffix; else table on a terminal, csv otherwise."""
    if fmt is not None:
        fmt = fmt.lower()
        if fmt == "md":
            fmt = "markdown"
        if fmt not in allowed:
            raise SymbenchError(f"unknown --format {fmt!r}; allowed: {', '.join(allowed)}")
        return fmt
    if out is not None:
        guess = _SUFFIX_FORMATS.get(Path(out).suffix.lower())
        if guess in allowed:
            return guess
    return "table" if sys.stdout.isatty() and out is None else ("csv" if "csv" in allowed else allowed[0])


def _floats(text: str, name: str, count: int | None = None) -> list[float]:
    """A comma list of positive numbers (``3.4,2.6``); ``count`` of them when given."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or (count is not None and len(values) != count) or not all(v > 0 for v in values):
        want = f"{count} positive numbers" if count else "positive numbers"
        example = "3.4,2.6" if count == 2 else "1024,4096"
        raise SymbenchError(f"{name} {text!r}: give {want} separated by commas, e.g. {example}")
    return values


def _check_alpha(alpha: float, name: str = "--alpha") -> None:
    if not 0 < alpha < 0.5:
        raise SymbenchError(f"{name} {alpha:g} is out of range; allowed: 0 < alpha < 0.5 (e.g. 0.01)")


@app.command("report")
def report_cmd(
    runs: Annotated[List[str], typer.Argument(help="Run directories or measurements CSVs (several runs and machines may be given).", metavar="RUN_DIR|CSV ...")],
    fmt: Annotated[Optional[str], typer.Option("--format", "-f", help="table, csv, markdown, latex or json (default: the suffix of --out; else table on a terminal, csv otherwise).")] = None,
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="Write the report to FILE instead of stdout.")] = None,
    plot: Annotated[Optional[str], typer.Option("--plot", help="Also write the figures to FILE (.png, .svg or .pdf).")] = None,
    alpha: Annotated[float, typer.Option("--alpha", help="A crossover's bracket counts only when the bootstrap puts each side's winner ahead in at least 1-alpha of resamples; else inconclusive.")] = 0.05,
    n_boot: Annotated[int, typer.Option("--bootstrap", help="Bootstrap resamples of the raw samples (>= 1; a run without samples decides on quartiles).")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap (the report is reproducible).")] = 0,
    table: Annotated[str, typer.Option("--table", help="markdown and latex: all, crossovers, regret or models.")] = "all",
    caption: Annotated[Optional[str], typer.Option("--caption", help="latex: the table's \\caption (LaTeX, used as given).")] = None,
    label: Annotated[Optional[str], typer.Option("--label", help="latex: the table's \\label, e.g. tab:crossovers.")] = None,
) -> int:
    """Crossover table (k* per direct/fft pair), cost models, and regret of auto kernels.

    k* is the smallest measured k from which the fft kernel is faster at that k
    and at every larger measured k; the bracket (k_lo, k_hi] are its measured
    neighbours. Verdicts: crossover, fft_always, direct_always, inconclusive
    (the raw samples cannot separate the kernels at the bracket).
    """
    from symbench.analysis.data import load_runs
    from symbench.analysis.report import build_report
    from symbench.render.report import FORMATS, TABLES, render_report, report_rich

    fmt_ = _format(fmt, out, FORMATS)
    if table not in TABLES:
        raise SymbenchError(f"unknown --table {table!r}; allowed: {', '.join(TABLES)}")
    if table != "all" and fmt_ not in ("latex", "markdown"):
        raise SymbenchError(f"--table applies to --format latex and markdown, not {fmt_}")
    if (caption is not None or label is not None) and fmt_ != "latex":
        raise SymbenchError(f"--caption and --label apply to --format latex, not {fmt_}")
    _check_alpha(alpha)
    if n_boot < 1:
        # 0 used to mean "decide on quartiles" for runs with samples too, which
        # quietly dropped the test the samples allow; bare CSVs still decide on quartiles.
        raise SymbenchError(f"--bootstrap {n_boot}: must be 1 or more (e.g. 1000)")
    if plot is not None:
        from symbench.render.plots import FORMATS as PLOT_FORMATS

        if Path(plot).suffix.lower() not in PLOT_FORMATS:
            raise SymbenchError(f"--plot {plot!r}: unknown figure format; allowed: {', '.join(PLOT_FORMATS)}")
    loaded = load_runs(runs)
    report = build_report(loaded, alpha=alpha, n_boot=n_boot, seed=seed)
    for note in report.notes:
        if note.startswith("nothing to pair") and fmt_ in ("csv", "json", "latex"):
            print(f"symbench: {note}", file=sys.stderr)
    if fmt_ == "table" and out is None and sys.stdout.isatty():
        console().print(report_rich(report))
    else:
        write_text(render_report(report, fmt_, table=table, caption=caption, label=label), out)
    if plot is not None:
        from symbench.render.plots import write_plots

        path = write_plots(loaded.df, report.crossovers, plot)
        print(f"figures: {path}", file=sys.stderr if out is None else sys.stdout)
    return 0


@app.command("compare")
def compare_cmd(
    baseline: Annotated[str, typer.Argument(help="The baseline run directory (or measurements CSV).", metavar="BASELINE")],
    new: Annotated[str, typer.Argument(help="The new run directory (or measurements CSV).", metavar="NEW")],
    threshold: Annotated[float, typer.Option("--threshold", help="Relative change of the median that counts (0.10 = 10%).")] = 0.10,
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level of the one-sided Mann-Whitney U test on the raw samples.")] = 0.01,
    fmt: Annotated[Optional[str], typer.Option("--format", "-f", help="table, markdown, csv or json (default: table on a terminal, markdown otherwise).")] = None,
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="Write the comparison to FILE instead of stdout.")] = None,
    no_common_mode: Annotated[bool, typer.Option("--no-common-mode", help="Report the common-mode shift and the rows' between-run spread but test rows without them.")] = False,
    max_shift: Annotated[float, typer.Option("--max-shift", help="Also fail when the whole new run is slower than the baseline by more than this fraction (the common-mode shift): 0.5 fails a run 1.5x slower everywhere; 0.10 suits a quiet machine; inf never fails on it.", metavar="FRACTION")] = 0.5,
    allow_missing: Annotated[bool, typer.Option("--allow-missing", help="Pass the gate although baseline rows are missing, skipped, error or timeout in the new run, the new run is incomplete, or a run has no samples (each still warned about).")] = False,
) -> int:
    """Compare a new run with a baseline; exit 1 on any regression (a CI gate).

    The gate fails closed: it also exits 1 (saying why on the first line of
    stderr) when a row ok in the baseline is missing, skipped, error or timeout
    in the new run, when the new run is incomplete, or when a run has no raw
    samples to test; --allow-missing lets these pass. Two runs that share no
    kernel and problem exit 2.

    A row is a regression when its median time grew by more than --threshold AND
    a one-sided Mann-Whitney U test on the raw samples gives p < --alpha (or when
    it was ok in the baseline and is now mismatch, error or timeout). Faster rows
    are improvements by the same rule. Crossovers that moved by more than one grid
    step are listed; different machines or library versions are warned about.

    Runs made minutes apart on a shared machine differ by the machine's drift:
    the common-mode factor (median ratio over the rows both runs have ok) is
    reported and rows are tested against the baseline scaled by it; a shift
    beyond --threshold is warned about (it may be the machine's or a change
    that slowed every row; symbench ab tells them apart), and a slowdown beyond
    --max-shift fails the gate. Rows measured in rounds are also tested with
    the spread that rows show between the two runs beyond their rounds' own.
    """
    from symbench.analysis.compare import compare_runs
    from symbench.analysis.data import load_runs
    from symbench.render.compare import FORMATS, compare_rich, render_compare

    if fmt is None and out is None and not sys.stdout.isatty():
        fmt_ = "markdown"
    else:
        fmt_ = _format(fmt, out, FORMATS)
    if not threshold > 0:
        raise SymbenchError(f"--threshold {threshold:g} must be positive (e.g. 0.10 for 10%)")
    if not 0 < alpha < 1:
        raise SymbenchError(f"--alpha {alpha:g} is out of range; allowed: 0 < alpha < 1 (e.g. 0.01)")
    if not max_shift > 0:
        raise SymbenchError(f"--max-shift {max_shift:g} must be positive (e.g. 0.10 for a 10% slower run; inf: off)")
    base_runs = load_runs([baseline])
    new_runs = load_runs([new])
    cmp = compare_runs(base_runs, new_runs, threshold=threshold, alpha=alpha,
                       common_mode_correction=not no_common_mode, max_shift=max_shift)
    if cmp.shared == 0:
        raise SymbenchError(f"{baseline} and {new} share no kernel and problem: nothing to compare; "
                            "give a baseline measured on the same grid")
    cmp.allow_missing = allow_missing
    gate_failed = cmp.failed
    gate_lines = [f"{'accepted (--allow-missing)' if allow_missing else 'gate'}: {m}" for m in cmp.missing]
    cmp.warnings.extend(gate_lines)  # in the report itself too (a CI job summary shows it)
    if cmp.missing:
        # First line of stderr: why the gate failed closed (or what --allow-missing let through).
        head = "gate failed" if gate_failed else "gate passed only with --allow-missing"
        print(f"symbench: {head}: {'; '.join(cmp.missing)}"
              + ("; pass --allow-missing to accept" if gate_failed else ""), file=sys.stderr, flush=True)
    if cmp.shift_exceeded:
        print(f"symbench: gate failed: the whole new run is {cmp.shift:.2f}x the baseline (common-mode shift "
              f"over {cmp.shift_rows} rows), beyond --max-shift {max_shift:g}", file=sys.stderr, flush=True)
    if fmt_ == "table" and out is None and sys.stdout.isatty():
        console().print(compare_rich(cmp))
    else:
        write_text(render_compare(cmp, fmt_), out)
        if fmt_ in ("csv", "json"):
            for w in cmp.warnings:
                if w not in gate_lines:  # already said on the first line
                    print(f"symbench: warning: {w}", file=sys.stderr)
    return 1 if gate_failed else 0


@app.command("plot")
def plot_cmd(
    runs: Annotated[List[str], typer.Argument(help="Run directory (or several, or measurements CSVs).", metavar="RUN_DIR")],
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="Figure file: .png, .svg or .pdf (default: RUN_DIR/figures.png).")] = None,
    kind: Annotated[str, typer.Option("--kind", help="all, time (time vs k per n), kstar (k* vs n) or winners (fastest kernel map).")] = "all",
    series: Annotated[Optional[str], typer.Option("--series", help="Only this series: its label as the report shows it, or a unique part ('float32').")] = None,
    n: Annotated[Optional[str], typer.Option("--n", help="Only these n (comma list); --kind time with --figsize needs one.")] = None,
    figsize: Annotated[Optional[str], typer.Option("--figsize", help="One panel of WIDTH,HEIGHT inches for a paper's column, e.g. 3.4,2.6 (--kind time, kstar or winners).", metavar="W,H")] = None,
    dpi: Annotated[Optional[float], typer.Option("--dpi", help="Resolution of PNG output \\[default: 150].")] = None,
) -> int:
    """Figures: time vs k (log-log, one panel per n, k* marked), k* vs n with the log2 n rule, winner map.

    With --figsize, one clean panel of one series (fonts 6-8 pt, legend under the
    axes). PDF and PS embed TrueType (Type 42) fonts; SVG keeps text as text.
    """
    from symbench.analysis.crossover import find_crossovers
    from symbench.analysis.data import load_runs
    from symbench.render.plots import FORMATS, KINDS, write_plots

    if kind not in KINDS:
        raise SymbenchError(f"unknown --kind {kind!r}; allowed: {', '.join(KINDS)}")
    target = Path(out) if out is not None else Path(runs[0] if Path(runs[0]).is_dir() else Path(runs[0]).parent) / "figures.png"
    if target.suffix.lower() not in FORMATS:
        raise SymbenchError(f"--out {str(target)!r}: unknown figure format {target.suffix or '(none)'!r}; "
                            f"allowed: {', '.join(FORMATS)}")
    size = _floats(figsize, "--figsize", 2) if figsize is not None else None
    ns = [int(v) for v in _floats(n, "--n")] if n is not None else None
    loaded = load_runs(runs)
    cross = find_crossovers(loaded.df, loaded.samples)
    path = write_plots(loaded.df, cross, target, kind, series=series, n=ns,
                       figsize=tuple(size) if size else None, dpi=dpi)
    print(path)
    return 0
