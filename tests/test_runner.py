"""The sweep runner with a fake clock: rows, statuses, cut-offs, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from symbench.config import load_config
from symbench.errors import ConfigError, KernelError, RunDirError
from symbench.kernels import Kernel, KernelOptions, Prepared, register, unregister
from symbench.reference import conv_reference
from symbench.sweep.runner import run_sweep
from symbench.store import COLUMNS, load, load_samples
from symbench.sweep.timing import FakeClock


class _Exact(Kernel):
    """Correct results from the reference; its fake cost is set by the test clock."""

    name = "test-exact"
    method = "direct"
    library = "test"
    dims = (1,)

    def prepare(self, problem, x, h, options=KernelOptions()):
        y = conv_reference(x, h, problem.mode).astype(x.dtype)
        return Prepared(lambda: None, lambda: y, notes={"why": "test"})


class _Off(_Exact):
    name = "test-off"
    method = "fft"

    def prepare(self, problem, x, h, options=KernelOptions()):
        y = conv_reference(x, h, problem.mode) + 1.0
        return Prepared(lambda: None, lambda: y)


class _Crash(_Exact):
    name = "test-crash"

    def prepare(self, problem, x, h, options=KernelOptions()):
        raise MemoryError("cannot allocate 1 TiB")


class _Slow(_Exact):
    name = "test-slow"


class _Missing(_Exact):
    name = "test-missing"

    def _check_available(self):
        return "cannot import libnothing"


@pytest.fixture(autouse=True)
def _test_kernels():
    kernels = [_Exact(), _Off(), _Crash(), _Slow(), _Missing()]
    for k in kernels:
        register(k)
    yield
    for k in kernels:
        unregister(k.name)


def _cfg(**over):
    base = {"kernel": ["test-exact"], "n": "64,128", "k": "3,5,9", "repeat": "3", "min_time": "0.001"}
    base.update(over)
    return load_config(None, base)


def test_rows_and_statistics_with_fake_clock(tmp_path: Path):
    res = run_sweep(_cfg(), tmp_path / "run", clock=FakeClock(1e-4), command=["symbench", "sweep"])
    assert not res.interrupted and res.counts == {"ok": 6}
    df = load(tmp_path / "run")
    assert list(df.columns) == list(COLUMNS)
    assert len(df) == 6 and set(df["status"]) == {"ok"}
    row = df.iloc[0]
    assert (row["n"], row["k"], row["samples"], row["loops"]) == (64, 3, 3, 10)
    assert row["time_s"] == pytest.approx(1e-4)
    assert row["time_std_s"] == pytest.approx(0.0, abs=1e-18)
    assert row["gflops"] == pytest.approx(2 * 64 * 3 / 1e-4 / 1e9)
    assert row["setup_notes"] == '{"why":"test"}'
    s = load_samples(tmp_path / "run")
    assert len(s) == 18 and s["time_s"].tolist() == pytest.approx([1e-4] * 18)
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["complete"] is True and meta["command"] == ["symbench", "sweep"]
    assert meta["config"]["grids"][0]["n"] == [64, 128]
    for key in ("cpu_model", "cpu_count", "memory_total", "os", "python", "libraries", "threads"):
        assert key in meta["environment"]
    assert meta["started"] and meta["finished"]


def test_statuses(tmp_path: Path):
    cfg = _cfg(kernel=["test-exact,test-off,test-crash,test-missing,direct-numpy"], dim="1", n="64", k="3")
    with pytest.warns(UserWarning, match="test-missing is unavailable"):
        run_sweep(cfg, tmp_path / "run", clock=FakeClock(1e-4))
    df = load(tmp_path / "run").set_index("kernel")
    assert df.loc["test-exact", "status"] == "ok"
    assert df.loc["test-off", "status"] == "mismatch" and "rel_err" in df.loc["test-off", "message"]
    assert df.loc["test-off", "time_s"] > 0  # a wrong answer is still timed, never paired
    assert df.loc["test-crash", "status"] == "error"
    assert "MemoryError: cannot allocate 1 TiB" in df.loc["test-crash", "message"]
    assert df.loc["test-missing", "status"] == "skipped" and "libnothing" in df.loc["test-missing", "message"]
    assert df.loc["direct-numpy", "status"] == "ok"


def test_unsupported_problem_is_skipped(tmp_path: Path):
    cfg = _cfg(kernel=["test-exact,direct"], dim="2", n="16", k="3")
    run_sweep(cfg, tmp_path / "run", clock=FakeClock(1e-4))
    df = load(tmp_path / "run").set_index("kernel")
    assert df.loc["test-exact", "status"] == "skipped" and "1-D" in df.loc["test-exact", "message"]
    assert df.loc["direct", "status"] == "ok"


def test_max_call_cuts_larger_k(tmp_path: Path):
    # test-slow costs 0.4 s per call at k >= 5 (fake time); --max-call 0.2
    cfg = _cfg(kernel=["test-slow,test-exact"], n="64,128", k="3,5,9,17", max_call="0.2")

    class Clock(FakeClock):
        def __init__(self):
            super().__init__(1e-4)
            self.k = 3

        def measure(self, fn, loops):
            return loops * (0.4 if self.k >= 5 and self.slow else 1e-4)

    clock = Clock()
    import symbench.sweep.measure as runner

    orig = runner.Measurer.measure

    def spy(self, kernel, problem, *a, **kw):
        clock.k, clock.slow = problem.k, kernel.name == "test-slow"
        return orig(self, kernel, problem, *a, **kw)

    runner.Measurer.measure = spy
    try:
        run_sweep(cfg, tmp_path / "run", clock=clock)
    finally:
        runner.Measurer.measure = orig
    df = load(tmp_path / "run")
    slow = df[df.kernel == "test-slow"].set_index(["n", "k"])
    for n in (64, 128):
        assert slow.loc[(n, 3), "status"] == "ok"
        assert slow.loc[(n, 5), "status"] == "ok" and slow.loc[(n, 5), "samples"] == 3
        assert "larger k not run" in slow.loc[(n, 5), "message"]
        for k in (9, 17):
            assert slow.loc[(n, k), "status"] == "timeout"
            assert "k=5" in slow.loc[(n, k), "message"]
    assert set(df[df.kernel == "test-exact"]["status"]) == {"ok"}


def test_resume_measures_only_missing_rows(tmp_path: Path):
    cfg = _cfg()
    run_sweep(cfg, tmp_path / "run", clock=FakeClock(1e-4))
    # simulate an interrupted run: keep 2 rows and mark incomplete
    m = tmp_path / "run" / "measurements.csv"
    lines = m.read_text().splitlines(keepends=True)
    m.write_text("".join(lines[:3]))
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    meta["complete"] = False
    (tmp_path / "run" / "run.json").write_text(json.dumps(meta))
    res = run_sweep(resume=tmp_path / "run", clock=FakeClock(1e-4))
    assert res.skipped_existing == 2 and res.counts == {"ok": 4}
    df = load(tmp_path / "run")
    assert len(df) == 6 and len(df.drop_duplicates(["kernel", "n", "k"])) == 6
    assert df.attrs["run"]["complete"] is True and df.attrs["run"]["resumed"]
    assert len(load_samples(tmp_path / "run")) == 6 * 3


def test_resume_refuses_a_different_config(tmp_path: Path):
    run_sweep(_cfg(), tmp_path / "run", clock=FakeClock(1e-4))
    with pytest.raises(ConfigError, match="--k differ"):
        run_sweep(resume=tmp_path / "run", overrides={"k": "3,5,7"})
    # the same values are accepted
    run_sweep(resume=tmp_path / "run", overrides={"k": "3,5,9"}, clock=FakeClock(1e-4))


def test_resume_of_something_that_is_not_a_run(tmp_path: Path):
    with pytest.raises(RunDirError, match="not a symbench run"):
        run_sweep(resume=tmp_path)


def test_out_must_be_new(tmp_path: Path):
    run_sweep(_cfg(), tmp_path / "run", clock=FakeClock(1e-4))
    with pytest.raises(RunDirError, match="completed run"):
        run_sweep(_cfg(), tmp_path / "run", clock=FakeClock(1e-4))


def test_nothing_runnable(tmp_path: Path):
    with pytest.raises(KernelError, match="test-missing: cannot import libnothing"):
        run_sweep(_cfg(kernel=["test-missing"]), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_memory_check_skips(tmp_path: Path, monkeypatch):
    import symbench.sweep.measure as runner

    monkeypatch.setattr(runner, "available_memory", lambda: 1000)
    run_sweep(_cfg(n="64", k="3"), tmp_path / "run", clock=FakeClock(1e-4))
    row = load(tmp_path / "run").iloc[0]
    assert row["status"] == "skipped" and "GiB available" in row["message"]


def test_interrupt_keeps_rows(tmp_path: Path):
    class Interrupting(FakeClock):
        def measure(self, fn, loops):
            self.count = getattr(self, "count", 0) + 1
            if self.count > 20:
                raise KeyboardInterrupt
            return super().measure(fn, loops)

    res = run_sweep(_cfg(), tmp_path / "run", clock=Interrupting(1e-2))
    assert res.interrupted
    df = load(tmp_path / "run")
    assert 0 < len(df) < 6
    assert df.attrs["run"]["complete"] is False and df.attrs["run"]["interrupted"] is True
    res = run_sweep(resume=tmp_path / "run", clock=FakeClock(1e-2))
    assert not res.interrupted and len(load(tmp_path / "run")) == 6


def test_real_sweep_sanity(tmp_path: Path):
    cfg = load_config(None, {"kernel": ["direct-numpy,fft-scipy"], "n": "256", "k": "3,33", "repeat": "3",
                             "min_time": "0.001"})
    run_sweep(cfg, tmp_path / "run")
    df = load(tmp_path / "run")
    assert set(df["status"]) == {"ok"}
    assert (df["time_s"] > 0).all() and (df["time_min_s"] <= df["time_s"]).all()
    assert (df["time_q1_s"] <= df["time_s"]).all() and (df["time_s"] <= df["time_q3_s"]).all()
    assert (df["rel_err"] < 1e-12).all()
    # loops are calibrated for samples of min_time (1 ms); the host's speed can move 2x after the
    # calibration on a shared machine, so a quarter of it is the bound, not a half.
    assert (df["loops"] * df["time_min_s"] >= 0.25e-3).all()
