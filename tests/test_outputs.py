"""Outputs people paste: LaTeX that fits a paper's column, Markdown that renders, 80-column text.

The LaTeX test compiles with a real TeX engine when one is installed (skipped
otherwise), in the two-column preamble of the acceptance check.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from test_report_cli import golden_table

PREAMBLE = ("\\documentclass[twocolumn]{article}\n"
            "\\usepackage{booktabs,tabularx,siunitx,graphicx,amsmath,array,multirow}\n")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return golden_table().write(tmp_path / "run")


def _tex_ready() -> bool:
    if shutil.which("pdflatex") is None or shutil.which("kpsewhich") is None:
        return False
    found = subprocess.run(["kpsewhich", "siunitx.sty", "tabularx.sty"], capture_output=True, text=True)
    return len(found.stdout.split()) == 2


@pytest.mark.parametrize("table", ["crossovers", "regret", "models", "all"])
def test_latex_tables_have_caption_label_and_math_headers(cli, run_dir, table):
    r = cli("report", run_dir, "--format", "latex", "--table", table, "--caption", "Crossovers", "--label", "tab:x")
    assert r.code == 0, r.err
    assert r.out.count("\\begin{table}") == (3 if table == "all" else 1)
    if table == "all":
        assert "\\label{tab:x:crossovers}" in r.out and "\\label{tab:x:models}" in r.out
    else:
        assert "\\caption{Crossovers}" in r.out and "\\label{tab:x}" in r.out
    if table == "crossovers":
        assert "$k^\\ast$" in r.out and "\\num{23.8}" in r.out and "\\num{25.0}" in r.out  # 3 digits
        assert "(\\%)" in r.out and "100\\%" not in r.out  # units in headers, not cells


def test_latex_bad_table_and_misplaced_options_exit_2(cli, run_dir):
    r = cli("report", run_dir, "--format", "latex", "--table", "nope")
    assert r.code == 2 and "allowed: all, crossovers, regret, models" in r.err
    r = cli("report", run_dir, "--format", "csv", "--caption", "x")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1


@pytest.mark.skipif(not _tex_ready(), reason="needs pdflatex with siunitx and tabularx")
@pytest.mark.parametrize("table", ["crossovers", "all"])
def test_latex_compiles_in_a_two_column_paper_without_overfull_boxes(cli, run_dir, tmp_path, table):
    r = cli("report", run_dir, "--format", "latex", "--table", table, "--caption", "Crossovers",
            "--label", "tab:x", "--out", tmp_path / "t.tex")
    assert r.code == 0, r.err
    (tmp_path / "doc.tex").write_text(PREAMBLE + "\\begin{document}\n\\input{t.tex}\n\\end{document}\n")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert done.returncode == 0, [line for line in log.splitlines() if line.startswith("!")]
    assert "Overfull \\hbox" not in log


def test_markdown_renders_without_stray_emphasis(cli, run_dir):
    markdown_it = pytest.importorskip("markdown_it")
    r = cli("report", run_dir, "--format", "markdown")
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(r.out)
    assert "<em>" not in html and "<table>" in html
    assert "<code>t = a*out*h + b</code>" in html  # formulas as code spans
    assert "k*" in html  # the escaped star is shown as a star
    assert r.out.startswith("# symbench report\n")


def test_markdown_numbers_are_readable():
    from symbench.render.text import fmt_num, fmt_sig

    assert fmt_num(1030.4) == "1030" and fmt_num(23.84) == "23.8" and fmt_num(1.5e-9) == "1.5e-09"
    assert fmt_sig(25) == "25.0" and fmt_sig(9.996) == "10.0" and fmt_sig(1.5e-9) == "1.50e-9"


def test_compare_and_report_markdown_share_heading_levels(cli, run_dir, tmp_path):
    other = golden_table().write(tmp_path / "b", run_id="20260101-000003-new")
    r = cli("compare", run_dir, other, "--format", "markdown")
    assert r.out.startswith("# symbench compare\n")
    assert not any(line.startswith("###") for line in r.out.splitlines())


@pytest.mark.parametrize("command", ["report", "compare"])
def test_80_columns_keeps_every_cell_whole(cli, run_dir, tmp_path, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "80")
    args = [run_dir] if command == "report" else [run_dir, golden_table().write(tmp_path / "b")]
    r = cli(command, *args, "--format", "table")
    assert r.code in (0, 1), r.err
    lines = r.out.splitlines()
    assert "…" not in r.out
    assert max(len(line.encode()) for line in lines) <= 80  # bytes: ASCII rules in files
    if command == "report":
        assert "23.8" in r.out and "(17, 33]" in r.out


def test_wide_output_keeps_every_column(cli, run_dir, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    r = cli("report", run_dir, "--format", "table")
    assert "log2 n" in r.out and "model k*" in r.out


# -- figures ---------------------------------------------------------------------------------

def test_kernel_styles_are_stable_across_runs():
    from symbench.render.plots import kernel_style

    assert kernel_style("fft-pyfftw") == kernel_style("fft-pyfftw", "fft")
    assert kernel_style("fft-pyfftw")["code"] == "FW" and kernel_style("direct")["code"] == "D"
    mine = kernel_style("my-fancy-kernel")
    assert mine == kernel_style("my-fancy-kernel") and mine["code"] == "MFK"
    known = ["direct", "direct-numpy", "direct-scipy", "fft-numpy", "fft-scipy", "oa-scipy", "fft-pyfftw",
             "auto-scipy", "auto-opencv"]
    assert len({(kernel_style(k)["color"], kernel_style(k)["marker"]) for k in known}) == len(known)


@pytest.mark.parametrize("kind", ["kstar", "time", "winners"])
def test_one_panel_pdf_has_truetype_fonts_only(cli, run_dir, tmp_path, kind):
    out = tmp_path / f"{kind}.pdf"
    extra = ["--n", "4096"] if kind == "time" else []
    r = cli("plot", run_dir, "--kind", kind, "--figsize", "3.4,2.6", "--series", "1-D", *extra, "--out", out)
    assert r.code == 0, r.err
    data = out.read_bytes()
    assert b"/Type3" not in data and b"/FontFile2" in data  # Type 42: embedded TrueType
    if shutil.which("pdffonts"):
        fonts = subprocess.run(["pdffonts", str(out)], capture_output=True, text=True).stdout
        assert "Type 3" not in fonts and "TrueType" in fonts
    if kind == "kstar":
        box = re.search(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
        assert box and abs(float(box.group(1)) - 3.4 * 72) < 1 and abs(float(box.group(2)) - 2.6 * 72) < 1


def test_one_panel_size_svg_text_and_ps(cli, run_dir, tmp_path):
    svg = tmp_path / "k.svg"
    assert cli("plot", run_dir, "--kind", "kstar", "--figsize", "3.4,2.6", "--series", "1-D", "--out", svg).code == 0
    text = svg.read_text()
    assert 'width="244.8pt"' in text and 'height="187.2pt"' in text  # 3.4 x 2.6 in
    assert "<text" in text and "direct-numpy / fft-scipy" in text  # fonts kept as text; the legend names kernels
    ps = tmp_path / "k.ps"
    assert cli("plot", run_dir, "--kind", "kstar", "--figsize", "3.4,2.6", "--series", "1-D", "--out", ps).code == 0
    data = ps.read_bytes()
    assert data.startswith(b"%!PS") and b"/FontType 42" in data and b"/FontType 3" not in data


def test_one_panel_needs_one_series_and_one_n(cli, run_dir, tmp_path):
    r = cli("plot", run_dir, "--kind", "kstar", "--figsize", "3.4,2.6", "--out", tmp_path / "k.pdf")
    assert r.code == 2 and "--series" in r.err and "conv 2-D float32" in r.err
    r = cli("plot", run_dir, "--kind", "time", "--figsize", "3.4,2.6", "--series", "1-D", "--out", tmp_path / "t.pdf")
    assert r.code == 2 and "--n" in r.err
    r = cli("plot", run_dir, "--kind", "all", "--figsize", "3.4,2.6", "--out", tmp_path / "a.pdf")
    assert r.code == 2
    for bad in (["--figsize", "3.4"], ["--figsize", "a,b"], ["--n", "999"], ["--series", "nope"]):
        r = cli("plot", run_dir, "--kind", "kstar", *bad, "--out", tmp_path / "b.pdf")
        assert r.code == 2 and len(r.err.strip().splitlines()) == 1, (bad, r.err)


def test_inconclusive_kstar_is_drawn_hollow(run_dir):
    pytest.importorskip("matplotlib")
    from symbench.analysis.crossover import find_crossovers
    from symbench.analysis.data import load_runs
    from symbench.render.plots import make_panel, select

    runs = load_runs([run_dir])
    df, cross = select(runs.df, find_crossovers(runs.df, runs.samples), series="1-D")
    assert (cross["verdict"] == "inconclusive").any()
    fig = make_panel(df, cross, "kstar")
    hollow = [line for line in fig.axes[0].lines if line.get_markerfacecolor() in ("white", (1, 1, 1, 1))]
    assert hollow


# -- the CI recipe of docs/reports.md ---------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def _recipe() -> str:
    text = (ROOT / "docs" / "reports.md").read_text()
    block = text.split("<!-- ci-recipe:start -->", 1)[1].split("<!-- ci-recipe:end -->", 1)[0]
    return block.split("```sh\n", 1)[1].rsplit("```", 1)[0]


@pytest.mark.slow
def test_ci_recipe_runs_as_written(tmp_path):
    """The recipe's own lines, in a fresh directory with a ``ci`` folder that must not shadow the config.

    Only two things change: ``pip install`` is skipped (the package is on PYTHONPATH)
    and ``symbench`` is a shell function that shrinks the grid, so the test stays fast.
    """
    import os
    import sys

    script = _recipe()
    assert "--config builtin:ci" in script and "symbench compare" in script
    # A generous --max-call: on a loaded machine a 50 ms cut made a timeout row in one run only, and
    # the gate (rightly) fails closed on a row the new run lost.
    shim = f"""symbench() {{
  case "$1" in
    sweep) "{sys.executable}" -m symbench "$@" --n 256 --k 3,9 --repeat 3 --min-time 0.0005 --max-call 5 ;;
    warmup) "{sys.executable}" -m symbench "$@" --dtype float64 ;;
    *) "{sys.executable}" -m symbench "$@" ;;
  esac
}}
"""
    body = "\n".join(":  # " + line if line.startswith("pip ") else line for line in script.splitlines())
    (tmp_path / "bench.sh").write_text(shim + body + "\n")
    (tmp_path / "ci").mkdir()  # a folder named like the config
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    for attempt in (1, 2):  # the first run makes the baseline; the second compares against it
        done = subprocess.run(["bash", "bench.sh"], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=400)
        assert done.returncode == 0, (attempt, done.stderr[-2000:])
    assert (tmp_path / "bench" / "baseline" / "measurements.csv").exists()
    summary = (tmp_path / "summary.md").read_text()
    assert summary.count("# symbench compare") == 2 and "# symbench report" in summary


# -- CLI polish ------------------------------------------------------------------------------

def test_version_and_completion(cli):
    import symbench

    r = cli("--version")
    assert r.code == 0 and r.out.strip() == f"symbench {symbench.__version__}"
    r = cli("--help")
    assert r.code == 0 and "--install-completion" in r.out and "--version" in r.out


def test_numeric_options_show_their_type_and_overrides_stay_optional(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    r = cli("sweep", "--help")
    repeat = next(line for line in r.out.splitlines() if "--repeat" in line)
    min_time = next(line for line in r.out.splitlines() if "--min-time" in line)
    # typer writes INTEGER/FLOAT or <int>/<float> depending on its version; never <str>
    assert ("INTEGER" in repeat or "<int>" in repeat) and ("FLOAT" in min_time or "<float>" in min_time)
    from symbench.config import load_config

    # not given: the config's value; given: the option's
    assert load_config("ci").repeat == 7
    assert load_config("ci", {"repeat": 3}).repeat == 3


def test_config_reports_every_problem_with_suggestions(tmp_path, cli):
    bad = tmp_path / "bad.toml"
    bad.write_text('repet = 3\nmin_time = -1\n[[grid]]\nkernel = ["direct"]\nn = "0"\ndtyp = "float32"\n')
    r = cli("sweep", "--config", bad, "--out", tmp_path / "x")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1
    assert "4 problems" in r.err and "did you mean 'repeat'" in r.err and "did you mean 'dtype'" in r.err
    assert "min_time" in r.err and "n: 0" in r.err
    r = cli("sweep", "--kernel", "fft-scpy,dirct", "--n", "64", "--k", "3", "--out", tmp_path / "y")
    assert r.code == 2 and "did you mean 'fft-scipy'" in r.err and "did you mean 'direct'" in r.err


def test_bad_values_are_value_errors():
    from symbench.config import load_config
    from symbench.errors import ConfigError, KernelError, SymbenchError
    from symbench.kernels.registry import get

    assert issubclass(ConfigError, ValueError) and issubclass(KernelError, ValueError)
    with pytest.raises(ValueError):
        load_config(None, {"n": "0", "k": "3"})
    with pytest.raises(ValueError, match="did you mean"):
        get("fft-scpy")
    assert SymbenchError("x").exit_code == 2


def test_builtin_config_wins_over_a_folder(tmp_path, monkeypatch):
    from symbench.config import bundled_configs_dir, find_config
    from symbench.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "ci").mkdir()
    assert find_config("builtin:ci") == bundled_configs_dir() / "ci.toml"
    assert find_config("ci").name == "ci.toml"
    with pytest.raises(ConfigError, match="did you mean 'ci'"):
        find_config("builtin:cii")


def test_info_uses_human_units():
    from symbench.render.kernels import facts_table
    from symbench.render.text import rich_text

    text = rich_text(facts_table({"memory_total": 32 * 2**30, "libraries": {"cupy": None},
                                  "timer": {"overhead_per_call_s": 4e-8}}), width=100)
    assert "32.0 GiB" in text and "none" in text and "None" not in text and "40 ns" in text


def test_plain_progress_prints_lines_with_eta(capsys):
    from symbench.cli.cmd_sweep import PlainProgress

    clock = iter([0.0, 0.0, 6.0, 6.0, 6.0, 7.0, 12.5, 12.5, 12.5, 13.0, 13.0])
    p = PlainProgress(every=5.0)
    p._clock = lambda: next(clock)
    p.start(4)
    for label in ("a", "b", "c", "d"):
        p.advance(label)
    p.stop()
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("symbench: 2/4 (50%), 0:00:06 elapsed, eta 0:00:06: b")
    assert err[-1].startswith("symbench: 4/4 (100%)") and err[-1].endswith("done")


def test_dispatch_info_and_one_time_notice(tmp_path, monkeypatch):
    import warnings

    import symbench
    from symbench.dispatch import selector

    monkeypatch.delenv("SYMBENCH_TABLE", raising=False)
    selector.use_table(None)
    info = symbench.dispatch_info()
    assert set(info) == {"source", "path", "machine", "entries"}
    if info["source"] == "model":
        assert info["path"] is None and info["entries"] == 0
    assert "dispatch_info" in dir(symbench)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        symbench.dispatch_info()
