"""The timing core with an injected fake clock: exact loops and statistics."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from symbench.sweep.timing import FakeClock, Measurement, PerfCounterClock, autorange, measure, summarize, timer_overhead


def test_autorange_ladder():
    clock = FakeClock(1e-4)
    loops, per_call = autorange(lambda: None, clock, 5e-3)
    # 1, 2, 5, 10, 20 calls are below 5 ms; 50 calls reach it.
    assert loops == 50
    assert per_call == pytest.approx(1e-4)
    assert clock.calls == 1 + 2 + 5 + 10 + 20 + 50


def test_autorange_slow_call_is_one_loop():
    loops, _ = autorange(lambda: None, FakeClock(0.02), 5e-3)
    assert loops == 1


def test_autorange_respects_resolution():
    clock = FakeClock(1e-9)
    clock.resolution_s = 1e-6  # min_time below 100x resolution is raised to it
    loops, _ = autorange(lambda: None, clock, 1e-9)
    assert loops * 1e-9 >= 1e-4


def test_measure_exact_statistics():
    costs = [1e-3, 2e-3, 3e-3, 4e-3, 10e-3]
    calls = {"n": 0}

    def cost(i: int) -> float:
        # warm-up excluded by the fake clock (warmup calls fn directly); the single
        # call and autorange see cost 1e-2, samples then cycle through `costs`.
        return 1e-2 if i < 2 else costs[(i - 2) % len(costs)]

    def fn() -> None:
        calls["n"] += 1

    res = measure(fn, FakeClock(cost), min_time=5e-3, repeat=5, warmup=1)
    m = res.measurement
    assert m.loops == 1
    assert m.samples == tuple(costs)
    assert m.median == 3e-3
    assert m.min == 1e-3
    assert m.q1 == 2e-3 and m.q3 == 4e-3
    assert m.mean == pytest.approx(4e-3)
    assert m.std == pytest.approx(statistics.stdev(costs))
    assert not res.over_max_call
    # warm-up + single call + autorange (1) + 5 samples
    assert calls["n"] == 1 + 1 + 1 + 5


def test_measure_uses_loops_and_divides():
    res = measure(lambda: None, FakeClock(1e-4), min_time=5e-3, repeat=3, warmup=0)
    assert res.measurement.loops == 50
    assert res.measurement.samples == pytest.approx((1e-4, 1e-4, 1e-4))


def test_measure_over_max_call_takes_three_single_samples():
    res = measure(lambda: None, FakeClock(2.0), min_time=5e-3, repeat=7, max_call=1.0)
    assert res.over_max_call
    assert res.single_call_s == 2.0
    assert res.measurement.loops == 1
    assert len(res.measurement.samples) == 3


def test_measurement_single_sample_std_zero():
    m = Measurement((0.5,), 1)
    assert m.std == 0.0 and m.median == 0.5 and m.iqr == 0.0
    assert math.isnan(m.host_median)


def test_measurement_needs_samples():
    with pytest.raises(ValueError):
        Measurement((), 1)


def test_summarize_matches_numpy():
    s = [3.0, 1.0, 2.0, 10.0]
    d = summarize(s)
    assert d["time_s"] == np.median(s)
    assert d["time_q1_s"] == np.percentile(s, 25)
    assert d["time_q3_s"] == np.percentile(s, 75)


def test_gc_is_disabled_while_timing():
    import gc

    seen = []
    measure(lambda: seen.append(gc.isenabled()), FakeClock(1e-3), min_time=1e-3, repeat=2, warmup=0)
    assert seen and not any(seen)
    assert gc.isenabled()


def test_host_samples_are_kept():
    class DeviceClock(FakeClock):
        def measure(self, fn, loops):
            t = super().measure(fn, loops)
            self.last_host_s = 2 * t
            return t

    res = measure(lambda: None, DeviceClock(1e-2), min_time=5e-3, repeat=3, warmup=0)
    assert res.measurement.host_samples == pytest.approx((2e-2,) * 3)


def test_real_clock_sanity():
    clock = PerfCounterClock()
    assert 0 < clock.resolution_s < 1e-3
    info = timer_overhead(clock, calls=1000)
    assert 0 <= info["overhead_per_call_s"] < 1e-3
    assert 0 < info["measured_resolution_s"] < 1e-3
    assert "measured_resolution_s" not in timer_overhead(FakeClock(1e-6), calls=10)
    res = measure(lambda: sum(range(100)), clock, min_time=1e-3, repeat=3)
    assert all(s > 0 for s in res.measurement.samples)
    assert res.measurement.loops * res.measurement.median > 1e-4


def test_settle_heap_frees_cycles_and_takes_survivors_out_of_later_collections():
    import gc
    import weakref

    from symbench.sweep.timing import settle_heap

    class Node:
        pass

    dead = Node()
    dead.me = dead  # a garbage cycle: only a collection frees it
    gone = weakref.ref(dead)
    del dead
    alive = [Node() for _ in range(1000)]
    settle_heap()
    assert gone() is None
    # The survivors are frozen: a full collection no longer walks them (what makes it cheap).
    assert gc.get_freeze_count() >= len(alive)
    tracked = len(gc.get_objects())
    assert tracked < gc.get_freeze_count()
    # Frozen objects are still freed by their reference counts.
    probe = weakref.ref(alive[0])
    del alive
    assert probe() is None
