"""Sweeps in rounds: each round over the whole grid, in a fresh worker process; resume per round."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from symbench.config import load_config
from symbench.errors import ConfigError
from symbench.kernels import Kernel, KernelOptions, Prepared, register, unregister
from symbench.problem import Problem
from symbench.reference import conv_reference
from symbench.store import SCHEMA_VERSION, load, load_samples
from symbench.sweep.client import WorkerDied
from symbench.sweep.rounds import InProcess, Job, round_order
from symbench.sweep.runner import run_sweep
from symbench.sweep.timing import FakeClock


class _Exact(Kernel):
    """Correct results from the reference; its fake cost is set by the test clock."""

    name = "test-rounds-exact"
    method = "direct"
    library = "test"
    dims = (1,)

    def prepare(self, problem, x, h, options=KernelOptions()):
        y = conv_reference(x, h, problem.mode).astype(x.dtype)
        return Prepared(lambda: None, lambda: y)


class _Fft(_Exact):
    name = "test-rounds-fft"
    method = "fft"


@pytest.fixture(autouse=True)
def _test_kernels():
    kernels = [_Exact(), _Fft()]
    for k in kernels:
        register(k)
    yield
    for k in kernels:
        unregister(k.name)


def _cfg(**over):
    base = {"kernel": ["test-rounds-exact,test-rounds-fft"], "n": "64,128,256", "k": "3,5,9", "repeat": "3",
            "min_time": "0.001", "rounds": "3"}
    base.update({k: str(v) if not isinstance(v, list) else v for k, v in over.items()})
    return load_config(None, base)


def test_rounds_is_a_validated_setting():
    assert _cfg().rounds == 3
    assert load_config(None, {"n": "64", "k": "3"}).rounds == 1
    with pytest.raises(ConfigError, match="--rounds"):
        _cfg(rounds="0")
    with pytest.raises(ConfigError, match="--rounds"):
        _cfg(rounds="two")


def test_round_order_shuffles_series_and_keeps_k_ascending():
    jobs = [Job(Problem(n=n, k=k), ()) for n in (16, 32, 64, 128, 256, 512, 1024, 2048) for k in (9, 3, 5)]
    orders = [round_order(jobs, 0, r) for r in range(4)]
    for order in orders:
        assert sorted(j.problem.key() for j in order) == sorted(j.problem.key() for j in jobs)
        ns = [j.problem.n for j in order]
        # a series stays together, k ascending within it
        assert [ns[i] for i in range(0, len(ns), 3)] == [ns[i + 2] for i in range(0, len(ns), 3)]
        for i in range(0, len(order), 3):
            assert [j.problem.k for j in order[i:i + 3]] == [3, 5, 9]
    series_orders = {tuple(j.problem.n for j in o[::3]) for o in orders}
    assert len(series_orders) > 1  # rounds visit the series in different orders
    assert round_order(jobs, 0, 2) == orders[2]  # seeded: the same order again
    assert round_order(jobs, 1, 2) != orders[2]


def test_fake_clock_rounds_write_one_row_per_round(tmp_path: Path):
    res = run_sweep(_cfg(), tmp_path / "run", clock=FakeClock(1e-4))
    assert not res.interrupted and res.counts == {"ok": 3 * 2 * 3 * 3}
    df = load(tmp_path / "run")
    assert sorted(df["round"].unique()) == [0, 1, 2]
    assert (df.groupby(["kernel", "n", "k"])["round"].nunique() == 3).all()
    s = load_samples(tmp_path / "run")
    assert sorted(s["round"].unique()) == [0, 1, 2]
    assert len(s) == len(df) * 3
    assert {"steal_share", "others_cores"} <= set(s.columns)
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["schema_version"] == SCHEMA_VERSION == 2
    assert meta["config"]["rounds"] == 3 and meta["complete"] is True
    assert meta["noise"]["problems"] == 3 * 9 or not meta["noise"]["available"]


def test_resume_measures_only_missing_rounds(tmp_path: Path):
    out = tmp_path / "run"
    run_sweep(_cfg(), out, clock=FakeClock(1e-4))
    # Cut the run back to rounds 0 and 1 of every row, plus round 2 of one problem.
    m = out / "measurements.csv"
    with open(m, newline="") as f:
        header, *body = list(csv.reader(f))
    i_round, i_n, i_k = header.index("round"), header.index("n"), header.index("k")
    keep = [r for r in body if r[i_round] != "2" or (r[i_n], r[i_k]) == ("64", "3")]
    with open(m, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([header, *keep])
    meta = json.loads((out / "run.json").read_text())
    meta["complete"] = False
    (out / "run.json").write_text(json.dumps(meta))
    calls = FakeClock(1e-4)
    res = run_sweep(resume=out, clock=calls)
    assert res.skipped_existing == len(keep)
    assert res.counts == {"ok": 2 * 9 - 2}  # round 2 of every problem but n=64 k=3
    df = load(out)
    assert len(df) == 54 and len(df.drop_duplicates(["kernel", "n", "k", "round"])) == 54
    # the orphan samples of the dropped rows were dropped, the new ones written: 3 per row
    assert len(load_samples(out)) == 54 * 3


def test_a_schema_1_run_loads_as_round_0(tmp_path: Path):
    out = tmp_path / "run"
    run_sweep(_cfg(rounds=1), out, clock=FakeClock(1e-4))
    for name in ("measurements.csv", "samples.csv"):
        p = out / name
        lines = p.read_text().splitlines()
        header = lines[0].split(",")
        drop = [header.index(c) for c in ("round", "steal_share", "others_cores") if c in header]
        p.write_text("".join(",".join(v for i, v in enumerate(ln.split(",")) if i not in drop) + "\n"
                             for ln in lines))
    meta = json.loads((out / "run.json").read_text())
    meta["schema_version"] = 1
    (out / "run.json").write_text(json.dumps(meta))
    df = load(out)
    assert len(df) == 18 and set(df["round"]) == {0}
    assert set(load_samples(out)["round"]) == {0}


class _Dying:
    """An executor whose worker dies on one problem."""

    def __init__(self, inner, bad_n):
        self.inner, self.bad_n, self.restarts = inner, bad_n, 0

    def begin(self, r):
        self.inner.begin(r)

    def problem(self, job, kernels, r, cuts):
        if job.problem.n == self.bad_n and r == 1:
            raise WorkerDied("the round worker died (exit status -11)")
        return self.inner.problem(job, kernels, r, cuts)

    def restart(self):
        self.restarts += 1

    def end(self, abort=False):
        self.inner.end(abort)


def test_a_dying_worker_costs_its_problem_in_that_round_only(tmp_path: Path, monkeypatch):
    from symbench.sweep import runner

    cfg = _cfg()
    made = []

    def executor(config, run_id, clock):
        made.append(_Dying(InProcess(config, run_id, clock), 128))
        return made[-1]

    monkeypatch.setattr(runner, "InProcess", executor)
    res = run_sweep(cfg, tmp_path / "run", clock=FakeClock(1e-4))
    assert res.counts == {"ok": 54 - 6, "error": 6}
    df = load(tmp_path / "run")
    bad = df[df["status"] == "error"]
    assert set(bad["round"]) == {1} and set(bad["n"]) == {128}
    assert bad["message"].str.contains("worker process failed on this problem").all()
    assert made[0].restarts == 3


def test_real_rounds_run_in_separate_workers(tmp_path: Path):
    cfg = load_config(None, {"kernel": ["direct-numpy,fft-numpy"], "n": "256", "k": "3,33", "repeat": "2",
                             "min_time": "0.0005", "rounds": "2"})
    res = run_sweep(cfg, tmp_path / "run")
    assert res.counts == {"ok": 8}
    df = load(tmp_path / "run")
    assert sorted(df["round"]) == [0, 0, 0, 0, 1, 1, 1, 1]
    assert (df["rel_err"] < 1e-12).all() and (df["time_s"] > 0).all()
    s = load_samples(tmp_path / "run")
    assert len(s) == 16 and set(s["round"]) == {0, 1}


def test_worker_problem_op_measures_and_reports_unknown_kernels():
    from symbench.sweep.worker import serve

    cfg = load_config(None, {"kernel": ["direct-numpy"], "n": "128", "k": "5", "repeat": "2", "min_time": "0.0005"})
    req = {"op": "problem", "problem": Problem(n=128, k=5).as_dict(), "kernels": ["direct-numpy", "no-such-kernel"],
           "config": cfg.to_dict(), "run_id": "r1", "round": 4}
    stdin = io.StringIO(json.dumps(req) + "\n")
    stdout = io.StringIO()
    t = threading.Thread(target=serve, args=(stdin, stdout))
    t.start()
    t.join(60)
    hello, reply = [json.loads(x) for x in stdout.getvalue().splitlines()[:2]]
    assert hello["type"] == "hello" and reply["ok"], reply
    rows = {r["row"]["kernel"]: r for r in reply["rows"]}
    assert rows["no-such-kernel"]["row"]["status"] == "skipped"
    ok = rows["direct-numpy"]
    assert ok["row"]["status"] == "ok" and ok["row"]["round"] == 4
    assert [s["round"] for s in ok["samples"]] == [4, 4]
    assert isinstance(reply["noise"], dict) and reply["cuts"] == []


def test_ctrl_c_in_rounds_keeps_rows_and_resume_finishes(tmp_path: Path):
    out = tmp_path / "run"
    args = ["sweep", "--kernel", "direct-scipy,fft-scipy", "--dim", "2", "--n", "64,128", "--k", "3:21:2",
            "--dtype", "float32", "--repeat", "3", "--min-time", "0.02", "--rounds", "2", "--quiet",
            "--out", str(out)]

    def preexec() -> None:  # a background job of a non-interactive shell: SIGINT ignored
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    proc = subprocess.Popen([sys.executable, "-m", "symbench", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=preexec)
    m = out / "measurements.csv"
    deadline = time.time() + 120
    while (not m.exists() or len(m.read_text().splitlines()) < 5) and time.time() < deadline \
            and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep ended before it could be interrupted"
    os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "--resume" in stderr
    kept = load(out)
    assert 4 <= len(kept) < 80 and set(kept["status"]) == {"ok"}
    r = subprocess.run([sys.executable, "-m", "symbench", "sweep", "--resume", str(out), "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    df = load(out)
    assert len(df) == 80 and len(df.drop_duplicates(["kernel", "n", "k", "round"])) == 80
    assert df.attrs["run"]["complete"] is True
