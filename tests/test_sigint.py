"""Ctrl-C in a real subprocess: rows kept, run marked incomplete, exit 130, then resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from symbench.store import load

ARGS = ["sweep", "--kernel", "direct-scipy,fft-scipy", "--dim", "2", "--n", "64,128", "--k", "3:21:2",
        "--dtype", "float32", "--threads", "1", "--repeat", "3", "--min-time", "0.02", "--quiet"]


def _start(out: Path, disposition: signal.Handlers) -> subprocess.Popen:
    # CI starts background jobs with SIGINT ignored; the CLI must install its own
    # handler either way, so the test sets the child's inherited disposition.
    def preexec() -> None:
        signal.signal(signal.SIGINT, disposition)

    return subprocess.Popen([sys.executable, "-m", "symbench", *ARGS, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec)


def _rows(out: Path) -> int:
    m = out / "measurements.csv"
    return len(m.read_text().splitlines()) - 1 if m.exists() else 0


@pytest.mark.parametrize("disposition", [signal.SIG_DFL, signal.SIG_IGN], ids=["default", "ignored"])
def test_sigint_then_resume(tmp_path: Path, disposition):
    out = tmp_path / "run"
    proc = _start(out, disposition)
    deadline = time.time() + 120
    while _rows(out) < 4 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep ended before it could be interrupted"
    os.kill(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "--resume" in stderr
    kept = _rows(out)
    assert 4 <= kept < 40
    meta = json.loads((out / "run.json").read_text())
    assert meta["complete"] is False
    assert (out / "measurements.csv").read_text().endswith("\n")  # no half row
    df = load(out)
    assert len(df) == kept and set(df["status"]) == {"ok"}

    r = subprocess.run([sys.executable, "-m", "symbench", "sweep", "--resume", str(out), "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    df = load(out)
    assert len(df) == 40 and len(df.drop_duplicates(["kernel", "n", "k"])) == 40
    assert df.attrs["run"]["complete"] is True
