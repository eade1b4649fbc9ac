"""Run files that survive: the lock, resume, the tolerant reader, the fail-closed gate, I/O faults.

Real subprocesses only where the OS is the point (the lock, two sweeps at once);
disk-full and read-only faults are injected by monkeypatching the writer.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from symbench import store
from symbench.config import load_config
from symbench.errors import ConfigError, RunDirError, SymbenchError, SymbenchWarning
from symbench.store import MEASUREMENTS, RUN_JSON, SAMPLES, RunWriter, load, load_samples
from symbench.sweep.runner import run_sweep
from tests.synth import Table

TINY = {"kernel": ["direct-numpy,fft-scipy"], "n": "64,128", "k": "3,9", "repeat": "3", "min_time": "0.0005"}
TINY_ARGS = ["--kernel", "direct-numpy,fft-scipy", "--n", "64,128", "--k", "3,9", "--repeat", "3",
             "--min-time", "0.0005", "--quiet"]


def _reset_signals() -> None:
    # A child of pytest (or of a CI shell) may inherit these ignored.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _symbench(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "symbench", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_reset_signals, **kw)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A real, complete 8-row run (2 kernels x n 64,128 x k 3,9)."""
    out = tmp_path_factory.mktemp("tiny") / "run"
    run_sweep(load_config(None, TINY), out, command=["test"])
    return out


def _copy(src: Path, dst: Path, complete: bool | None = None) -> Path:
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock"))
    if complete is not None:
        meta = json.loads((dst / RUN_JSON).read_text())
        meta["complete"] = complete
        (dst / RUN_JSON).write_text(json.dumps(meta))
    return dst


# -- the lock ----------------------------------------------------------------------------

def test_a_locked_run_refuses_a_second_writer_naming_the_holder(tiny_run, tmp_path, cli):
    run = _copy(tiny_run, tmp_path / "run", complete=False)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from symbench.store import RunWriter; "
         "w = RunWriter.reopen(sys.argv[1]); print('locked', flush=True); time.sleep(60)", str(run)],
        stdout=subprocess.PIPE, text=True, preexec_fn=_reset_signals)
    try:
        assert holder.stdout.readline().strip() == "locked"
        r = cli("sweep", "--resume", run, "--quiet")
        assert r.code == 2 and len(r.err.strip().splitlines()) == 1, r.err
        assert f"pid {holder.pid}" in r.err and "in use" in r.err
        with pytest.raises(RunDirError, match="in use"):
            RunWriter.create(run, {"run_id": "x"})
    finally:
        holder.kill()
        holder.wait()
    # The holder died (kill -9): the OS dropped its lock, and the run can be resumed.
    w = RunWriter.reopen(run)
    w.close()


def test_two_sweeps_into_one_new_directory_one_wins(tmp_path):
    out = tmp_path / "race"
    out.mkdir()
    procs = [_symbench("sweep", *TINY_ARGS, "--out", out) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(c for c, _ in results)
    assert codes == [0, 2], results
    loser = next(err for c, err in results if c == 2)
    assert len(loser.strip().splitlines()) == 1 and "Traceback" not in loser
    df = load(out)
    assert df["run_id"].nunique() == 1 and len(df) == 8


# -- resume ------------------------------------------------------------------------------

def test_resume_of_an_empty_measurements_file_writes_the_header(tiny_run, tmp_path):
    run = _copy(tiny_run, tmp_path / "run", complete=False)
    (run / MEASUREMENTS).write_text("")
    with pytest.warns(SymbenchWarning, match="empty"):
        run_sweep(resume=run)
    df = load(run)
    assert len(df) == 8 and df.attrs["run"]["complete"] is True
    assert len(load_samples(run)) == 8 * 3  # the old samples lost their rows and were dropped


def test_resume_appends_in_the_files_own_column_order(tiny_run, tmp_path):
    run = _copy(tiny_run, tmp_path / "run", complete=False)
    d = pd.read_csv(run / MEASUREMENTS)
    d = d[d.k <= 3]
    d[list(d.columns[::-1])].to_csv(run / MEASUREMENTS, index=False)
    run_sweep(resume=run)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SymbenchWarning)  # nothing skipped
        df = load(run)
    assert len(df) == 8 and sorted(df["k"].unique()) == [3, 9]
    assert df.attrs["run"]["complete"] is True


def test_resume_refuses_a_file_without_a_header(tiny_run, tmp_path):
    run = _copy(tiny_run, tmp_path / "run", complete=False)
    lines = (run / MEASUREMENTS).read_text().splitlines(keepends=True)
    (run / MEASUREMENTS).write_text("".join(lines[1:]))
    with pytest.raises(RunDirError, match="not a header"):
        run_sweep(resume=run)
    assert (run / MEASUREMENTS).read_text() == "".join(lines[1:])  # untouched


def test_a_run_whose_rows_do_not_read_back_is_not_complete(tmp_path):
    w = RunWriter.create(tmp_path / "run", {"run_id": "r"})
    t = Table()
    t.add("direct", 3, 1e-3)
    w.append({**t.rows[0], "run_id": "r"})
    assert w.check_readback() is None
    path = tmp_path / "run" / MEASUREMENTS
    path.write_bytes(path.read_bytes().replace(b",conv,", b",conv,\xff", 1))  # damaged under the writer
    assert "do not read back" in w.check_readback()


def test_resume_names_only_the_options_that_differ(tiny_run, tmp_path):
    run = _copy(tiny_run, tmp_path / "run", complete=False)
    with pytest.raises(ConfigError) as err:
        run_sweep(resume=run, overrides={"repeat": "3", "min_time": "0.01"})
    assert "--min-time" in str(err.value) and "--repeat" not in str(err.value)


# -- the tolerant reader ----------------------------------------------------------------------

def _damaged(tiny_run: Path, tmp_path: Path, edit) -> Path:
    run = _copy(tiny_run, tmp_path / "run")
    lines = (run / MEASUREMENTS).read_bytes().split(b"\n")[:-1]
    (run / MEASUREMENTS).write_bytes(b"\n".join(edit(lines)) + b"\n")
    return run


@pytest.mark.parametrize("edit, kept, first", [
    (lambda L: L + [b"\xff\xfe\x00garbage"], 8, 10),                       # not UTF-8
    (lambda L: L[:3] + [L[3] + L[4]] + L[5:], 6, 4),                        # two rows glued
    (lambda L: L[:2] + [L[2][: len(L[2]) // 2]] + L[3:], 7, 3),             # a row cut short
    (lambda L: L[:5] + [L[5].replace(b",cpu,1,", b",cpu,one,", 1)] + L[6:], 7, 6),  # a bad value
    (lambda L: L[:5] + [L[5].replace(b",ok,", b",okay,", 1)] + L[6:], 7, 6),  # a bad status
    (lambda L: L + [b"zzzz"], 8, 10),                                       # a stray word
])
def test_bad_lines_are_skipped_counted_and_named(tiny_run, tmp_path, edit, kept, first):
    run = _damaged(tiny_run, tmp_path, edit)
    with pytest.warns(SymbenchWarning, match=rf"skipped \d+ lines? .*first: line {first}\b") as rec:
        df = load(run)
    assert len([w for w in rec if "do not parse" in str(w.message)]) == 1  # once per file
    assert len(df) == kept
    assert df["n"].dtype == np.int64 and df["k"].dtype == np.int64


def test_a_bad_sample_line_keeps_the_other_samples(tiny_run, tmp_path):
    run = _copy(tiny_run, tmp_path / "run")
    with open(run / SAMPLES, "a") as f:
        f.write("zzzz\n")
    with pytest.warns(SymbenchWarning, match="samples.csv: skipped 1 line"):
        s = load_samples(run)
    assert len(s) == 8 * 3 and s["n"].dtype == np.int64


def test_conflicting_duplicates_are_warned_with_the_rule(tiny_run, tmp_path):
    run = _copy(tiny_run, tmp_path / "run")
    d = pd.read_csv(run / MEASUREMENTS)
    x = d.iloc[:2].copy()
    x["time_s"] *= 50
    pd.concat([d, x]).to_csv(run / MEASUREMENTS, index=False)
    with pytest.warns(SymbenchWarning, match="2 kernel/problem rows appear more than once.*last ok row"):
        load(run)


def test_the_same_run_given_twice_counts_once(tiny_run, cli):
    from symbench.analysis.data import load_runs

    with pytest.warns(SymbenchWarning, match="same run"):
        runs = load_runs([tiny_run, tiny_run, tiny_run / MEASUREMENTS])
    assert len(runs.df) == 8 and len(runs.samples) == 8 * 3
    r = cli("report", tiny_run, tiny_run, "--format", "csv")
    assert r.code == 0 and "same run" in r.err


def test_load_of_a_non_path_is_a_symbench_error():
    with pytest.raises(SymbenchError):
        load(None)  # type: ignore[arg-type]


# -- the gate --------------------------------------------------------------------------------

def _gate_runs(tmp_path: Path) -> tuple[Table, Path]:
    t = Table()
    for name in ("direct-numpy", "fft-scipy"):
        for k in (3, 9, 17):
            t.add(name, k, 1e-4 * k if name.startswith("direct") else 1e-3)
    return t, t.write(tmp_path / "base")


def test_the_gate_fails_closed_on_skipped_missing_and_incomplete(tmp_path, cli):
    t, base = _gate_runs(tmp_path)
    skipped = Table()
    skipped.rows = [dict(r, status="skipped", message="kernel unavailable") if r["kernel"] == "fft-scipy" else dict(r)
                    for r in t.rows]
    skipped.samples = [s for s in t.samples if s["kernel"] != "fft-scipy"]
    new = skipped.write(tmp_path / "skipped")
    r = cli("compare", base, new, "--format", "csv")
    assert r.code == 1 and r.err.splitlines()[0].startswith("symbench: gate failed: 3 rows ok in the baseline")
    assert cli("compare", base, new, "--format", "csv", "--allow-missing").code == 0
    r = cli("compare", base, new, "--format", "json")
    data = json.loads(r.out)
    assert r.code == 1 and data["failed"] is True and any(w.startswith("gate:") for w in data["warnings"])
    assert "FAIL: fails closed" in cli("compare", base, new, "--format", "markdown").out
    half = Table()
    half.rows, half.samples = [dict(r) for r in t.rows[:4]], list(t.samples)
    new = half.write(tmp_path / "half", complete=False)
    r = cli("compare", base, new, "--format", "csv")
    assert r.code == 1 and "missing from the new run" in r.err.splitlines()[0]
    assert "incomplete" in r.err.splitlines()[0]
    assert cli("compare", base, base, "--format", "csv").code == 0


def test_runs_that_share_nothing_exit_2(tmp_path, cli):
    _, base = _gate_runs(tmp_path)
    other = Table()
    other.add("direct-numpy", 5, 1e-3, n=512)
    r = cli("compare", base, other.write(tmp_path / "other"), "--format", "csv")
    assert r.code == 2 and "share no kernel and problem" in r.err


def test_a_bad_sample_line_does_not_disable_the_gate(tmp_path, cli):
    t, base = _gate_runs(tmp_path)
    slow = t.write(tmp_path / "slow", scale=2.0)
    with open(slow / SAMPLES, "a") as f:
        f.write("zzzz\n")
    r = cli("compare", base, slow, "--format", "csv")
    assert r.code == 1 and "skipped 1 line" in r.err


# -- I/O and config faults --------------------------------------------------------------------

def _enospc(*a, **kw):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_at_start_removes_what_it_made(tmp_path, monkeypatch, cli):
    monkeypatch.setattr(store, "_write_synced", _enospc)
    out = tmp_path / "new" / "run"
    r = cli("sweep", *TINY_ARGS, "--out", out)
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1
    assert "No space left" in r.err and "nothing was kept" in r.err
    assert not (tmp_path / "new").exists()  # the directories it made are gone too
    monkeypatch.undo()
    assert cli("sweep", *TINY_ARGS, "--out", out).code == 0  # and can be used again


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_read_only_or_forbidden_out_is_one_line(tmp_path, monkeypatch, cli, code):
    def refuse(cls, run_dir):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(store.RunLock, "acquire", classmethod(refuse))
    out = tmp_path / "ro"
    out.mkdir()
    r = cli("sweep", *TINY_ARGS, "--out", out)
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and os.strerror(code) in r.err
    assert list(out.iterdir()) == []


def test_disk_full_mid_sweep_keeps_rows_and_resumes(tmp_path, monkeypatch, cli):
    calls = {"n": 0}
    real = RunWriter._append

    def append(self, name, text):
        if name == MEASUREMENTS:
            calls["n"] += 1
            if calls["n"] > 3:
                _enospc()
        return real(self, name, text)

    monkeypatch.setattr(RunWriter, "_append", append)
    out = tmp_path / "run"
    r = cli("sweep", *TINY_ARGS, "--out", out)
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1, r.err
    assert "the 3 rows measured before are kept" in r.err and "--resume" in r.err
    meta = json.loads((out / RUN_JSON).read_text())
    assert meta["complete"] is False and "No space left" in meta["error"]
    monkeypatch.undo()
    assert cli("sweep", "--resume", out, "--quiet").code == 0
    df = load(out)
    assert len(df) == 8 and df.attrs["run"]["complete"] is True


def test_too_little_free_space_is_refused_before_writing(tmp_path, monkeypatch, cli):
    class Full:
        f_bavail, f_frsize = 10, 4096

    monkeypatch.setattr(os, "statvfs", lambda p: Full())
    r = cli("sweep", *TINY_ARGS, "--out", tmp_path / "run")
    assert r.code == 2 and "KiB free" in r.err and not (tmp_path / "run").exists()


@pytest.mark.parametrize("text", [b'kernel = 5\n[[grid]]\nn = "64"\nk = "3"\n', b"\xff\xfe[[grid]]\n", b"",
                                  b"repeat = 3\n", b'[[grid]]\nn = "64"\nk = "3"\nop = 1\n'])
def test_bad_configs_are_refused(tmp_path, cli, text):
    f = tmp_path / "c.toml"
    f.write_bytes(text)
    r = cli("sweep", "--config", f, "--quiet", "--out", tmp_path / "o")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err, r.err
    assert not (tmp_path / "o").exists()


def test_empty_kernel_and_zero_bootstrap_are_refused(tiny_run, tmp_path, cli):
    r = cli("sweep", "--kernel", "", "--n", "64", "--k", "3", "--out", tmp_path / "o")
    assert r.code == 2 and "--kernel is empty" in r.err
    r = cli("report", tiny_run, "--bootstrap", "0")
    assert r.code == 2 and "--bootstrap" in r.err


def test_an_interrupt_during_start_up_is_exit_130(monkeypatch, capsys):
    import symbench.cli as cli_mod

    def boom(argv):
        raise KeyboardInterrupt  # e.g. Ctrl-C while scipy is imported

    monkeypatch.setattr(cli_mod, "_main", boom)
    assert cli_mod.main(["sweep"]) == 130
    assert capsys.readouterr().err.strip() == "symbench: interrupted"


def test_convolve_on_objects_is_a_symbench_error():
    import symbench

    with pytest.raises(SymbenchError, match="dtype object"):
        symbench.convolve(np.array([1, 2], dtype=object), np.array([1.0]))


@pytest.mark.filterwarnings("ignore:dispatch table .* may not fit here")
def test_a_table_naming_an_unknown_kernel_warns(tmp_path):
    import symbench
    from symbench.analysis.data import load_runs
    from symbench.analysis.tune import build_table
    from symbench.dispatch.table import table_json

    t = Table()
    for n in (1024, 4096):
        for k in (3, 9, 33):
            t.add("direct-numpy", k, 1e-9 * n * k, n=n)
            t.add("fft-scipy", k, 3e-8 * n, n=n)
    tab, _ = build_table(load_runs([t.write(tmp_path / "run")]))
    text = table_json(tab).replace('"fft-scipy"', '"fft-gone"')
    (tmp_path / "t.json").write_text(text)
    try:
        with pytest.warns(SymbenchWarning, match="unknown here: fft-gone"):
            symbench.use_table(tmp_path / "t.json")
    finally:
        symbench.use_table(None)


# -- SIGTERM -----------------------------------------------------------------------------------

def test_sigterm_keeps_rows_records_why_and_resumes(tmp_path):
    out = tmp_path / "run"
    proc = _symbench("sweep", "--kernel", "direct-numpy,fft-scipy", "--n", "256", "--k", "3:31:2",
                     "--repeat", "3", "--min-time", "0.005", "--quiet", "--out", out)
    m = out / MEASUREMENTS
    deadline = time.time() + 120
    while (not m.exists() or len(m.read_text().splitlines()) < 4) and time.time() < deadline \
            and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "SIGTERM" in err and "--resume" in err
    meta = json.loads((out / RUN_JSON).read_text())
    assert meta["complete"] is False and meta["interrupted"] is True and meta["interrupted_by"] == "SIGTERM"
    kept = len(load(out))
    assert 3 <= kept < 30
    r = subprocess.run([sys.executable, "-m", "symbench", "sweep", "--resume", str(out), "--quiet"],
                       capture_output=True, text=True, timeout=300, preexec_fn=_reset_signals)
    assert r.returncode == 0, r.stderr
    df = load(out)
    assert len(df) == 30 and df.attrs["run"]["complete"] is True
