"""Interleaved sampling: kernels of one problem take their samples in turns."""

from __future__ import annotations

from pathlib import Path

import pytest

from symbench.sweep import interleave, measure, runner
from symbench.config import load_config
from symbench.kernels import Kernel, KernelOptions, Prepared, register, unregister
from symbench.problem import Problem
from symbench.reference import conv_reference
from symbench.sweep.measure import Measurer, problem_inputs
from symbench.sweep.runner import run_sweep
from symbench.store import load, load_samples
from symbench.sweep.timing import FakeClock


class Log:
    """What happened, in order: ("sample", kernel, loops) for every clock.measure, and closes."""

    def __init__(self) -> None:
        self.events: list[tuple] = []


LOG = Log()


class _Clock:
    """A per-kernel clock with a fixed cost per call that logs every measurement."""

    name = "fake"
    resolution_s = 1e-9

    def __init__(self, kernel: str, cost: float, fail_after: int | None = None) -> None:
        self.kernel, self.cost, self.fail_after, self.n = kernel, cost, fail_after, 0

    def measure(self, fn, loops):
        self.n += 1
        if self.fail_after is not None and self.n > self.fail_after:
            raise RuntimeError("device lost")
        LOG.events.append(("sample", self.kernel, loops))
        for _ in range(loops):
            fn()
        return loops * self.cost


class _Timed(Kernel):
    method = "direct"
    library = "test"
    dims = (1,)
    cost = 1e-3
    fail_after: int | None = None

    def prepare(self, problem, x, h, options=KernelOptions()):
        y = conv_reference(x, h, problem.mode).astype(x.dtype)
        name = self.name
        return Prepared(lambda: None, lambda: y, clock=_Clock(name, self.cost, self.fail_after),
                        close=lambda: LOG.events.append(("close", name)))


class _A(_Timed):
    name = "il-a"
    cost = 1e-3


class _B(_Timed):
    name = "il-b"
    method = "fft"
    cost = 2e-3


class _Slow(_Timed):
    name = "il-slow"
    cost = 5.0


class _Crash(_Timed):
    name = "il-crash"

    def prepare(self, problem, x, h, options=KernelOptions()):
        raise MemoryError("no room")


class _Flaky(_Timed):
    name = "il-flaky"
    fail_after = 3  # fails in the middle of the rounds


class _Gpu(_Timed):
    name = "il-gpu"
    device = "gpu"


KERNELS = [_A(), _B(), _Slow(), _Crash(), _Flaky(), _Gpu()]


@pytest.fixture(autouse=True)
def _kernels():
    LOG.events.clear()
    for k in KERNELS:
        register(k)
    yield
    for k in KERNELS:
        unregister(k.name)


def _measurer(**over) -> Measurer:
    base = {"kernel": ["il-a"], "n": "64", "k": "3", "repeat": "4", "min_time": "0.01", "max_call": "1"}
    base.update(over)
    return Measurer(load_config(None, base), "run-1")


def _run(names, repeat=4):
    m = _measurer(repeat=str(repeat))
    problem = Problem(n=64, k=3)
    kernels = [k for k in KERNELS if k.name in names]
    rows = list(interleave.measure_interleaved(m, problem, kernels, problem_inputs(problem, 0)))
    return m, rows


def test_samples_are_taken_in_turns():
    _, rows = _run(["il-a", "il-b"])
    samples = [e for e in LOG.events if e[0] == "sample"]
    # Each kernel: 1 single call, autorange (1, 2, 5, 10 calls -> 10 ms), then 4 samples in turns.
    setup_a, setup_b, rounds = samples[:5], samples[5:9], samples[9:]
    assert [e[2] for e in setup_a] == [1, 1, 2, 5, 10]
    assert [e[2] for e in setup_b] == [1, 1, 2, 5]
    assert [e[1] for e in rounds] == ["il-a", "il-b"] * 4
    assert [e[2] for e in rounds] == [10, 5] * 4
    (ra, sa), (rb, sb) = rows
    assert (ra["kernel"], rb["kernel"]) == ("il-a", "il-b")
    assert ra["status"] == rb["status"] == "ok"
    assert ra["samples"] == 4 and ra["loops"] == 10 and ra["time_s"] == pytest.approx(1e-3)
    assert rb["loops"] == 5 and rb["time_s"] == pytest.approx(2e-3)
    assert [s["sample"] for s in sa] == [0, 1, 2, 3] and all(s["time_s"] == pytest.approx(1e-3) for s in sa)
    assert ("close", "il-a") in LOG.events and ("close", "il-b") in LOG.events


def test_over_max_call_is_measured_alone_and_cuts_the_series():
    m, rows = _run(["il-a", "il-slow", "il-b"])
    by = {r["kernel"]: r for r, _ in rows}
    assert [r["kernel"] for r, _ in rows] == ["il-slow", "il-a", "il-b"]  # known at once, written first
    assert by["il-slow"]["samples"] == 3 and by["il-slow"]["loops"] == 1
    assert "larger k not run" in by["il-slow"]["message"]
    assert ("il-slow", Problem(n=64, k=3).series()) in m.cut
    rounds = [e[1] for e in LOG.events if e[0] == "sample"][-8:]
    assert rounds == ["il-a", "il-b"] * 4


def test_failures_become_rows_and_the_others_finish():
    _, rows = _run(["il-a", "il-crash", "il-flaky", "il-b"])
    by = {r["kernel"]: r for r, _ in rows}
    assert by["il-crash"]["status"] == "error" and "MemoryError: no room" in by["il-crash"]["message"]
    assert by["il-flaky"]["status"] == "error" and "device lost" in by["il-flaky"]["message"]
    assert by["il-a"]["status"] == by["il-b"]["status"] == "ok" and by["il-a"]["samples"] == 4
    closes = [e[1] for e in LOG.events if e[0] == "close"]
    assert sorted(closes) == ["il-a", "il-b", "il-flaky"]


def test_applies_only_to_several_cpu_kernels_that_fit(monkeypatch):
    m = _measurer()
    p = Problem(n=64, k=3)
    a, b, gpu = (next(k for k in KERNELS if k.name == n) for n in ("il-a", "il-b", "il-gpu"))
    assert interleave.applies(m, p, [a, b])
    assert not interleave.applies(m, p, [a])
    assert not interleave.applies(m, p, [a, gpu])
    monkeypatch.setattr(measure, "available_memory", lambda: 1000)
    assert not interleave.applies(m, p, [a, b])
    injected = Measurer(m.config, "run-1", clock=FakeClock(1e-3))
    monkeypatch.setattr(measure, "available_memory", lambda: 0)
    assert not interleave.applies(injected, p, [a, b])


def test_a_sweep_interleaves_and_writes_every_row(tmp_path: Path):
    cfg = load_config(None, {"kernel": ["il-a,il-b"], "n": "64,128", "k": "3,5", "repeat": "3", "min_time": "0.002"})
    res = run_sweep(cfg, tmp_path / "run")
    assert res.counts == {"ok": 8}
    df = load(tmp_path / "run")
    assert len(df) == 8 and set(df["samples"]) == {3}
    assert len(load_samples(tmp_path / "run")) == 24
    names = [e[1] for e in LOG.events if e[0] == "sample"]
    rounds = ["il-a", "il-b"] * 3
    # Every one of the 4 problems ends with its three rounds in turns.
    hits = sum(names[i:i + 6] == rounds for i in range(len(names) - 5))
    assert hits == 4


def test_switch_off(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(measure, "INTERLEAVE", False)
    cfg = load_config(None, {"kernel": ["il-a,il-b"], "n": "64", "k": "3", "repeat": "3", "min_time": "0.002"})
    run_sweep(cfg, tmp_path / "run")
    names = [e[1] for e in LOG.events if e[0] == "sample"]
    # One by one: all of il-a's measurements, then all of il-b's (and both were sampled).
    assert set(names) == {"il-a", "il-b"}
    assert names == sorted(names)
