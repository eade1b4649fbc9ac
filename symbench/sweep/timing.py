"""Timing a callable: one clock protocol, autorange, raw samples and their statistics.

This module knows nothing of kernels. A :class:`Clock` times ``loops``
back-to-back calls of a function; :func:`measure` warms it up, picks a loop
count so that one sample lasts at least ``min_time`` (well above the clock's
resolution), then takes ``repeat`` samples. A :class:`Measurement` keeps the raw
per-call times of each sample; every statistic is derived from them.

The clock is injectable: tests use :class:`FakeClock`, whose times are exact,
so the loop count and the statistics can be asserted to the last digit. GPU
kernels bring their own clock (CUDA events) through the same protocol.
"""

from __future__ import annotations

import gc
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class Clock(Protocol):
    """Times ``loops`` consecutive calls of ``fn`` and returns the total seconds.

    A clock that times on a device may also set ``last_host_s``, the host wall
    seconds of its last ``measure``; :func:`measure` then keeps those too.
    """

    name: str
    #: Smallest interval the clock can tell apart, in seconds.
    resolution_s: float

    def measure(self, fn: Callable[[], object], loops: int) -> float:  # pragma: no cover - protocol
        ...


class PerfCounterClock:
    """CPU wall time from :func:`time.perf_counter_ns`."""

    name = "perf_counter_ns"

    def __init__(self) -> None:
        self.resolution_s = time.get_clock_info("perf_counter").resolution

    def measure(self, fn: Callable[[], object], loops: int) -> float:
        # A plain loop over a local: the overhead per call is a few tens of ns,
        # which `timer_overhead` reports and autorange keeps well below 1%.
        rng = range(loops)
        t0 = time.perf_counter_ns()
        for _ in rng:
            fn()
        return (time.perf_counter_ns() - t0) * 1e-9


class FakeClock:
    """A deterministic clock for tests.

    Parameters
    ----------
    cost : float or callable
        Seconds per call. A callable gets the 0-based index of the call (counted
        over the clock's life) and returns that call's cost, which lets tests
        plant noise, drifts or outliers.
    call : bool
        Whether to really call ``fn`` (so side effects happen); on by default.
    """

    name = "fake"
    resolution_s = 1e-9

    def __init__(self, cost: float | Callable[[int], float], call: bool = True) -> None:
        self._cost = cost if callable(cost) else (lambda i, c=float(cost): c)
        self._call = call
        self.calls = 0

    def measure(self, fn: Callable[[], object], loops: int) -> float:
        total = 0.0
        for _ in range(loops):
            if self._call:
                fn()
            total += self._cost(self.calls)
            self.calls += 1
        return total


@dataclass(frozen=True)
class Measurement:
    """Raw samples of one timed callable; statistics are derived from them.

    Attributes
    ----------
    samples : tuple of float
        Seconds per call, one value per sample (each sample averages ``loops`` calls).
    loops : int
        Calls per sample, chosen by autorange.
    host_samples : tuple of float
        Host wall seconds per call for clocks that measure elsewhere (CUDA
        events); empty when the samples already are host time.
    """

    samples: tuple[float, ...]
    loops: int
    host_samples: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.samples:
            raise ValueError("a Measurement needs at least one sample")

    @property
    def _a(self) -> np.ndarray:
        return np.asarray(self.samples, dtype=float)

    @property
    def median(self) -> float:
        return float(np.median(self._a))

    @property
    def min(self) -> float:
        return float(self._a.min())

    @property
    def q1(self) -> float:
        return float(np.percentile(self._a, 25))

    @property
    def q3(self) -> float:
        return float(np.percentile(self._a, 75))

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    @property
    def mean(self) -> float:
        return float(self._a.mean())

    @property
    def std(self) -> float:
        """Sample standard deviation (``ddof=1``); 0 for a single sample."""
        return float(self._a.std(ddof=1)) if len(self.samples) > 1 else 0.0

    @property
    def host_median(self) -> float:
        return float(np.median(self.host_samples)) if self.host_samples else math.nan


def settle_heap() -> None:
    """Collect all garbage, then move what survives out of the collector's sight (:func:`gc.freeze`).

    Called between problems, when no prepared kernel is alive. What survives
    there lives for the run (imported modules, numba's and FFTW's compiled
    code, the run's rows), and a full collection has to walk all of it: with
    numba loaded that is ~100k objects and 50-100 ms per collection, which was
    half of a sweep of ``configs/ci.toml`` (74 collections, 7 of 16 s). Frozen
    objects are still freed by their reference counts; only a frozen object
    that later becomes part of a garbage cycle is kept, which run-long objects
    do not do.
    """
    gc.collect()
    gc.freeze()


@contextmanager
def gc_disabled() -> Iterator[None]:
    """Collect once, then keep the garbage collector out of the timed region."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _ladder() -> Iterator[int]:
    i = 1
    while True:
        for mult in (1, 2, 5):
            yield i * mult
        i *= 10


def autorange(fn: Callable[[], object], clock: Clock, min_time: float) -> tuple[int, float]:
    """Smallest loop count in 1, 2, 5, 10, 20, 50, ... whose total is >= ``min_time``.

    Returns the loop count and the fastest seconds per call seen. The same
    ladder as :meth:`timeit.Timer.autorange`, so results are predictable;
    ``min_time`` is raised to 100x the clock's resolution if it is below that.
    The count is checked against the *fastest* per-call time seen on the way:
    one run slowed by a preemption must not stop the ladder early, or every
    sample would then be shorter than ``min_time``.
    """
    target = max(min_time, 100.0 * clock.resolution_s)
    best = math.inf
    for loops in _ladder():
        total = clock.measure(fn, loops)
        best = min(best, total / loops)
        if total >= target and loops * best >= target:
            return loops, best
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class TimingResult:
    """What :func:`measure` found: the samples and whether the call was over ``max_call``."""

    measurement: Measurement
    #: Seconds of one call, measured after warm-up and before autorange.
    single_call_s: float
    #: True when a single call took longer than ``max_call``: fewer samples were
    #: taken, and the runner skips larger problems of the same series.
    over_max_call: bool


def measure(
    fn: Callable[[], object],
    clock: Clock | None = None,
    *,
    min_time: float = 5e-3,
    repeat: int = 7,
    max_call: float = math.inf,
    warmup: int = 1,
) -> TimingResult:
    """Warm up, autorange and sample ``fn``.

    Parameters
    ----------
    fn : callable
        The timed call; it must leave the same state behind every time.
    clock : Clock, optional
        Defaults to :class:`PerfCounterClock`.
    min_time : float
        Shortest duration of one sample, in seconds.
    repeat : int
        Number of samples.
    max_call : float
        When one call takes longer than this, only ``min(repeat, 3)`` samples
        of one call each are taken (the caller decides what to skip next).
    warmup : int
        Untimed calls before anything is measured.

    Returns
    -------
    TimingResult
    """
    if repeat < 1:
        raise ValueError("repeat must be >= 1")
    clock = clock or PerfCounterClock()
    for _ in range(warmup):
        fn()
    with gc_disabled():
        single = clock.measure(fn, 1)
        if single > max_call:
            samples = [single] + [clock.measure(fn, 1) for _ in range(min(repeat, 3) - 1)]
            return TimingResult(Measurement(tuple(samples), 1), single, True)
        loops, _ = autorange(fn, clock, min_time)
        samples: list[float] = []
        host: list[float] = []
        for _ in range(repeat):
            samples.append(clock.measure(fn, loops) / loops)
            # Clocks that time on a device (CUDA events) also report the host
            # wall time of their last measure() in `last_host_s`.
            host_s = getattr(clock, "last_host_s", None)
            if host_s is not None:
                host.append(host_s / loops)
    return TimingResult(Measurement(tuple(samples), loops, tuple(host)), single, False)


def measured_tick(reads: int = 20_000) -> float:
    """Smallest non-zero step between consecutive :func:`time.perf_counter_ns` readings, in seconds.

    The resolution the OS reports (``time.get_clock_info``) is nominal; this is
    what the clock really tells apart here, read-out cost included.
    """
    read = time.perf_counter_ns
    best = math.inf
    with gc_disabled():
        last = read()
        for _ in range(reads):
            now = read()
            if now != last and now - last < best:
                best = now - last
            last = now
    return best * 1e-9 if math.isfinite(best) else math.nan


def timer_overhead(clock: Clock | None = None, calls: int = 100_000) -> dict[str, float]:
    """Per-call overhead of the timing loop on an empty function, and the clock's resolution.

    ``resolution_s`` is the clock's nominal resolution; for the CPU clock,
    ``measured_resolution_s`` is the smallest step it was seen to take
    (:func:`measured_tick`).
    """
    clock = clock or PerfCounterClock()

    def empty() -> None:
        return None

    with gc_disabled():
        per_call = min(clock.measure(empty, calls) for _ in range(5)) / calls
    info = {"clock": clock.name, "resolution_s": clock.resolution_s, "overhead_per_call_s": per_call}
    if isinstance(clock, PerfCounterClock):
        info["measured_resolution_s"] = measured_tick()
    return info


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """The statistics written to ``measurements.csv`` for a list of samples."""
    m = Measurement(tuple(samples), 1)
    return {"time_s": m.median, "time_min_s": m.min, "time_q1_s": m.q1, "time_q3_s": m.q3,
            "time_mean_s": m.mean, "time_std_s": m.std}
