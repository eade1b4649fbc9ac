"""``symbench report``, ``compare`` and ``plot`` end to end: golden files, bad input, figures.

Golden files live in ``tests/golden/``; regenerate them after an intended change with
``SYMBENCH_UPDATE_GOLDEN=1 pytest tests/test_report_cli.py`` and review the diff.
"""

from __future__ import annotations

import re

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from synth import LIBS, MACHINE, Table

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("SYMBENCH_UPDATE_GOLDEN") == "1"


def golden_table() -> Table:
    """A run with known answers, its times drawn from the cost models.

    1-D n=1024, 4096, k=3..65: two direct and two fft kernels, plus ``oa-scipy``
    that ties ``direct-scipy`` within noise at k=17 (inconclusive), plus
    ``auto-scipy`` (the faster of direct-numpy and fft-scipy, 1.5x off at k=9).
    2-D n=256 k=15..31: direct-scipy is 10-20x slower than fft-scipy (fft_always).
    """
    from symbench.analysis.models import direct_work, fft_work

    t = Table()
    direct = {"direct-numpy": (1e-9, 1e-6), "direct-scipy": (1.5e-9, 2e-6)}
    fft = {"fft-numpy": (2e-9, 5e-6), "fft-scipy": (1.5e-9, 4e-6)}
    for n in (1024, 4096):
        for k in (3, 5, 9, 17, 33, 65):
            times = {}
            for name, (a, b) in direct.items():
                times[name] = a * float(direct_work("conv", "none", 1, "full", n, k)) + b
            for name, (c, d) in fft.items():
                times[name] = c * float(fft_work(1, n, k)) + d
            for name, tt in times.items():
                t.add(name, k, tt, n=n)
            ds = times["direct-scipy"]
            oa = ds * (1.3 if k < 17 else 0.98 if k == 17 else 0.5)
            t.add("oa-scipy", k, oa, n=n, spread=0.3 if k == 17 else 0.02)
            t.add("auto-scipy", k, min(times["direct-numpy"], times["fft-scipy"]) * (1.5 if k == 9 else 1.0), n=n)
    for k in (15, 21, 31):
        t.add("direct-scipy", k, 1e-3 * k / 15, dim=2, n=256, dtype="float32")
        t.add("fft-scipy", k, 1e-4, dim=2, n=256, dtype="float32")
    t.add("fft-scipy", 129, None, samples=[1.0], n=1024, status="skipped", message="not available")
    return t


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return golden_table().write(tmp_path / "run")


def _digits(text: str) -> str:
    # Full-precision floats (JSON, CSV) are compared to 9 significant digits: their last
    # digits are the round-off of the fitting solver, which moves with the SciPy/BLAS build.
    # Values below 1e-12 are round-off whole (a fit's rel_rmse on exact synthetic data:
    # 1.4e-16 on one CPU, 1.2e-16 or 0.0 on another), so they compare as 0.0.
    def norm(m: re.Match) -> str:
        v = float(m.group())
        return "0.0" if abs(v) < 1e-12 else f"{v:.9g}"

    return re.sub(r"-?\d+\.\d{9,}(?:e[-+]?\d+)?", norm, text)


def check_golden(name: str, text: str, tmp_path: Path) -> None:
    text = text.replace(str(tmp_path), "TMP")
    path = GOLDEN / name
    if UPDATE or not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        if not UPDATE:
            pytest.fail(f"golden file {path} was missing and has been written; review it and rerun")
    assert _digits(text) == _digits(path.read_text()), f"output differs from {path} (SYMBENCH_UPDATE_GOLDEN=1 to regenerate)"


@pytest.mark.parametrize("fmt,suffix", [("csv", "csv"), ("markdown", "md"), ("latex", "tex"), ("json", "json"),
                                        ("table", "txt")])
def test_report_golden(cli, run_dir, tmp_path, fmt, suffix):
    r = cli("report", run_dir, "--format", fmt)
    assert r.code == 0, r.err
    check_golden(f"report.{suffix}", r.out, tmp_path)


def test_report_csv_answers(cli, run_dir):
    r = cli("report", run_dir, "--format", "csv")
    df = pd.read_csv(__import__("io").StringIO(r.out))
    assert list(df.columns[:18]) == ("op,group,dim,dtype,mode,batch,c_in,c_out,threads,n,direct_kernel,fft_kernel,"
                                     "verdict,k_star,k_lo,k_hi,speedup_at_kmax,log2_n").split(",")
    assert list(df.columns[18:20]) == ["model_k_star", "confidence"]
    row = lambda d, f, n: df[(df.direct_kernel == d) & (df.fft_kernel == f) & (df.n == n)].iloc[0]  # noqa: E731
    r1 = row("direct-numpy", "fft-scipy", 1024)
    # direct 1e-9*(n+k-1)*k + 1e-6 vs fft 1.5e-9*N*log2(N) + 4e-6 (N = n+k-1):
    # k=17: 18.7 us vs 19.6 us (direct faster); k=33: 35.8 us vs 19.9 us (fft faster)
    assert (r1.verdict, r1.k_lo, r1.k_hi) == ("crossover", 17, 33) and 17 < r1.k_star < 33 and r1.log2_n == 10
    assert r1.model_k_star == pytest.approx(r1.k_star, rel=0.01)  # the times follow the models exactly
    assert row("direct-scipy", "oa-scipy", 1024).verdict == "inconclusive"
    r2 = df[df.dim == 2].iloc[0]
    assert (r2.verdict, r2.k_hi) == ("fft_always", 15) and pd.isna(r2.log2_n)


def test_report_mentions_regret_and_models(cli, run_dir):
    out = cli("report", run_dir, "--format", "table").out
    assert "regret" in out and "auto-scipy" in out and "cost models" in out
    md = cli("report", run_dir, "--format", "markdown").out
    assert "## Regret of auto kernels" in md and "| auto-scipy | 12 |" in md


def test_report_out_file_and_format_from_suffix(cli, run_dir, tmp_path):
    out = tmp_path / "r.json"
    r = cli("report", run_dir, "--out", out)
    assert r.code == 0 and r.out == ""
    data = json.loads(out.read_text())
    assert data["schema"] == "symbench-report/1" and len(data["crossovers"]) == 13
    assert {"crossovers", "regret", "models", "predictions", "notes", "runs"} <= set(data)


def test_report_of_several_runs_keeps_machines_apart(cli, tmp_path):
    t = golden_table()
    a = t.write(tmp_path / "a")
    b = t.write(tmp_path / "b", machine={"machine_id": "other", "machine_label": "other box"},
                run_id="20260101-000002-othr")
    r = cli("report", a, b, "--format", "csv")
    assert r.code == 0, r.err
    df = pd.read_csv(__import__("io").StringIO(r.out))
    assert len(df) == 26 and set(df.machine) == {MACHINE["machine_label"], "other box"}
    md = cli("report", a, b, "--format", "markdown").out
    assert "2 machines" in md and "[other box]" in md


def test_report_with_only_one_kernel_says_nothing_to_pair(cli, tmp_path):
    t = Table()
    t.series("direct-numpy", {3: 1e-6, 5: 2e-6})
    d = t.write(tmp_path / "one")
    r = cli("report", d, "--format", "markdown")
    assert r.code == 0 and "nothing to pair: the run has only one kernel (direct-numpy)" in r.out
    r = cli("report", d, "--format", "csv")
    assert r.code == 0 and "nothing to pair" in r.err
    assert r.out.startswith("op,group,dim,dtype,mode,batch,c_in,c_out,threads,n,direct_kernel")


def one_line_error(r, *words):
    assert r.code == 2, (r.code, r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symbench: error:"), r.err
    assert "Traceback" not in r.err
    for w in words:
        assert w in lines[0], lines[0]


def test_bad_input_exits_2_with_one_line(cli, run_dir, tmp_path):
    one_line_error(cli("report", tmp_path / "nope"), "does not exist")
    one_line_error(cli("compare", tmp_path / "nope", run_dir), "does not exist")
    one_line_error(cli("plot", tmp_path / "nope", "--out", tmp_path / "x.png"), "does not exist")
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(cli("report", empty), "not a symbench run")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    one_line_error(cli("report", bad), "missing columns")
    one_line_error(cli("compare", run_dir, bad), "missing columns")
    meta = json.loads((run_dir / "run.json").read_text())
    newer = tmp_path / "newer"
    golden_table().write(newer)
    (newer / "run.json").write_text(json.dumps({**meta, "schema_version": 99}))
    one_line_error(cli("report", newer), "newer symbench")
    one_line_error(cli("compare", run_dir, newer), "newer symbench")
    one_line_error(cli("plot", newer), "newer symbench")
    one_line_error(cli("report", run_dir, "--format", "xml"), "allowed: table, csv, markdown, latex, json")
    one_line_error(cli("compare", run_dir, run_dir, "--threshold", "-1"), "threshold")
    one_line_error(cli("plot", run_dir, "--out", tmp_path / "x.gif"), "allowed: .png, .svg, .pdf")
    one_line_error(cli("report", run_dir, "--plot", tmp_path / "x.gif"), "unknown figure format")


def test_truncated_last_line_is_skipped_with_a_warning(cli, run_dir):
    path = run_dir / "measurements.csv"
    text = path.read_text()
    path.write_text(text + text.splitlines()[1][:40])  # a crash mid-row
    r = cli("report", run_dir, "--format", "csv")
    assert r.code == 0 and "truncated last line" in r.err
    assert len(pd.read_csv(__import__("io").StringIO(r.out))) == 13


def test_compare_gate(cli, tmp_path):
    t = golden_table()
    a = t.write(tmp_path / "a")
    slow = t.write(tmp_path / "slow", scale=1.6)
    fast = t.write(tmp_path / "fast", scale=0.5)
    assert cli("compare", a, a).code == 0
    # Every row 1.6x slower: the common-mode factor, corrected and said; without the correction
    # every row is a regression, and --max-shift fails the gate on the factor itself.
    r = cli("compare", a, slow, "--no-common-mode", "--format", "markdown")
    assert r.code == 1 and "FAIL: 78 regressions" in r.out and "| regression |" in r.out
    r = cli("compare", a, slow, "--format", "markdown")
    assert r.code == 1 and "FAIL: the whole run 1.60x slower (--max-shift 0.5)" in r.out
    assert "symbench: gate failed: the whole new run is 1.60x" in r.err
    r = cli("compare", a, slow, "--max-shift", "0.7", "--format", "markdown")
    assert r.code == 0 and "OK: no regression" in r.out and "1.60x the baseline" in r.out
    r = cli("compare", a, fast, "--no-common-mode", "--format", "json")
    data = json.loads(r.out)
    assert r.code == 0 and data["counts"]["improvement"] == 78 and data["failed"] is False
    assert data["common_mode"]["shift"] == pytest.approx(0.5) and data["common_mode"]["applied"] is False
    r = cli("compare", a, slow, "--threshold", "0.7", "--no-common-mode")  # 1.6x is within a 70% threshold
    assert r.code == 0


@pytest.mark.parametrize("fmt,suffix", [("markdown", "md"), ("csv", "csv"), ("json", "json"), ("table", "txt")])
def test_compare_golden(cli, tmp_path, fmt, suffix):
    t = golden_table()
    a = t.write(tmp_path / "a")
    # one kernel 1.6x slower, one 2x faster, the rest unchanged; another numpy
    slow = Table()
    for r, s in zip(t.rows, [None] * len(t.rows)):
        slow.rows.append(dict(r))
    slow.samples = [dict(s) for s in t.samples]
    for coll in (slow.rows, slow.samples):
        for r in coll:
            if r["kernel"] == "fft-scipy" and r["dim"] == 1:
                for c in [c for c in r if c.startswith("time") and r[c] is not None]:
                    r[c] *= 1.6
            if r["kernel"] == "direct-scipy" and r["dim"] == 2:
                for c in [c for c in r if c.startswith("time") and r[c] is not None]:
                    r[c] *= 0.01  # direct becomes fastest: crossover moves
    b = slow.write(tmp_path / "b", run_id="20260101-000003-new", libraries={**LIBS, "numpy": "2.1.0"})
    r = cli("compare", a, b, "--format", fmt)
    assert r.code == 1, r.err
    check_golden(f"compare.{suffix}", r.out, tmp_path)


@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_plots_are_valid_files(cli, run_dir, tmp_path, suffix):
    out = tmp_path / f"fig.{suffix}"
    r = cli("plot", run_dir, "--out", out)
    assert r.code == 0, r.err
    data = out.read_bytes()
    if suffix == "png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    else:
        text = data.decode()
        assert "<svg" in text and "k* vs n" in text and "time per call (s)" in text
        assert "fastest kernel at each (n, k)" in text and "rule: k = log2 n" in text


@pytest.mark.parametrize("kind", ["time", "kstar", "winners"])
def test_plot_kinds(cli, run_dir, tmp_path, kind):
    out = tmp_path / f"{kind}.svg"
    assert cli("plot", run_dir, "--out", out, "--kind", kind).code == 0
    text = out.read_text()
    assert ("time per call (s)" in text) == (kind == "time")
    assert ("k* vs n" in text) == (kind == "kstar")


def test_plot_default_out_and_report_plot(cli, run_dir, tmp_path):
    r = cli("plot", run_dir)
    assert r.code == 0 and (run_dir / "figures.png").exists() and r.out.strip().endswith("figures.png")
    r = cli("report", run_dir, "--format", "markdown", "--plot", tmp_path / "r.svg")
    assert r.code == 0 and (tmp_path / "r.svg").read_text().startswith("<?xml")


def test_plot_with_one_kernel_still_draws_times(cli, tmp_path):
    t = Table()
    t.series("direct-numpy", {3: 1e-6, 5: 2e-6})
    d = t.write(tmp_path / "one")
    assert cli("plot", d, "--out", tmp_path / "one.png").code == 0
    r = cli("plot", d, "--out", tmp_path / "one.svg", "--kind", "kstar")
    assert r.code == 2 and "nothing to pair" in r.err


def test_sweep_summary_shows_the_crossover_matrix(run_dir):
    from symbench.render.summary import crossover_matrices
    from symbench.render.text import rich_text

    text = "".join(rich_text(p) for p in crossover_matrices(run_dir))
    assert "k* (fft faster from this k on): conv 1-D float64 full 1 thread" in text
    assert "direct-numpy / fft-scipy" in text and "17.9" in text  # k* at n=1024
    assert "<= 15" in text  # 2-D fft_always
    assert "(9, 17]?" in text  # inconclusive, with its bracket


def test_report_of_a_bare_csv_decides_on_quartiles(cli, run_dir, tmp_path):
    bare = tmp_path / "bare.csv"
    bare.write_text((run_dir / "measurements.csv").read_text())
    r = cli("report", bare, "--format", "csv")
    assert r.code == 0, r.err
    df = pd.read_csv(__import__("io").StringIO(r.out))
    assert set(df.decided_by) == {"quartiles"} and df.confidence.isna().all()
    assert set(df.machine) == {"unknown machine (no run.json)"}


def test_analysis_works_on_store_load_directly(run_dir):
    from symbench.analysis.crossover import find_crossovers
    from symbench.store import load, load_samples

    df = find_crossovers(load(run_dir), load_samples(run_dir))
    assert len(df) == 13 and set(df.machine_id) == {MACHINE["machine_id"]}


def test_analysis_and_render_do_not_import_measuring_code():
    import subprocess
    import sys

    code = ("import sys, symbench.analysis.report, symbench.analysis.compare, symbench.render.report, "
            "symbench.render.compare, symbench.render.plots, symbench.cli.cmd_report\n"
            "bad = [m for m in sys.modules if m.startswith(('symbench.kernels', 'symbench.sweep.timing', "
            "'symbench.sweep.runner', 'matplotlib', 'pyfftw', 'cv2'))]\n"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_compare_without_samples_cannot_confirm_regressions(cli, tmp_path):
    t = golden_table()
    a = t.write(tmp_path / "a")
    slow = t.write(tmp_path / "slow", scale=1.6)
    (tmp_path / "a.csv").write_text((a / "measurements.csv").read_text())
    (tmp_path / "slow.csv").write_text((slow / "measurements.csv").read_text())
    r = cli("compare", tmp_path / "a.csv", tmp_path / "slow.csv", "--format", "json", "--no-common-mode")
    data = json.loads(r.out)
    # Nothing can be tested, so the gate fails closed (exit 1, why on the first line) ...
    assert r.code == 1 and data["counts"]["untestable"] == 78
    assert r.err.splitlines()[0].startswith("symbench: gate failed:") and "no raw samples" in r.err.splitlines()[0]
    # ... unless the user accepts it.
    r = cli("compare", tmp_path / "a.csv", tmp_path / "slow.csv", "--format", "json", "--allow-missing", "--no-common-mode",
              "--max-shift", "inf")
    data = json.loads(r.out)
    assert r.code == 0 and data["counts"]["untestable"] == 78
    assert "no raw samples" in r.err and "no run.json" in r.err
