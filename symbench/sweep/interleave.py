"""Interleaved sampling: the kernels of one problem take their samples in turns.

Timed one after the other, two kernels of one problem see the machine at
different moments: on a shared machine a burst of load during one kernel's
samples moves their ratio, and with it the crossover bracket. Interleaved,
every kernel is first prepared, verified and autoranged (as
:func:`symbench.sweep.timing.measure` does), then sample ``i`` of every kernel is
taken before sample ``i + 1`` of any: a change of load lands on all kernels
alike, and the medians keep their ratio.

Each sample is still ``loops`` back-to-back calls of one kernel, statistics
and rows are the same as the one-by-one path's. The differences: all the
kernels of the problem hold their buffers at the same time (so the runner
interleaves only when they fit in memory together, and only CPU kernels),
and their rows are written together once the problem's rounds are done.
A kernel whose single call exceeds ``--max-call`` is measured on its own at
once (its few one-call samples), exactly as before.
"""

from __future__ import annotations

from typing import Any, Iterator, Protocol, Sequence

import numpy as np

from symbench.kernels.base import Kernel, close_quietly
from symbench.problem import Problem
from symbench.sweep.timing import Clock, Measurement, TimingResult, autorange, gc_disabled


class Measures(Protocol):
    """What interleaving needs of :class:`symbench.sweep.measure.Measurer` (which imports this module).

    A protocol rather than the class keeps the imports one way:
    measure -> interleave.
    """

    clock: Clock | None

    def fits_in_memory(self, need: int) -> bool: ...

    def precheck(self, kernel: Kernel, problem: Problem) -> tuple[str, str] | None: ...

    def base_row(self, kernel: Kernel, problem: Problem, source: str) -> dict[str, Any]: ...

    def setup(self, kernel: Kernel, problem: Problem, x: np.ndarray, h: np.ndarray, y_ref: np.ndarray,
              row: dict[str, Any]) -> tuple[Any, Clock]: ...

    def error_row(self, row: dict[str, Any], exc: BaseException) -> dict[str, Any]: ...

    def finish(self, row: dict[str, Any], kernel: Kernel, problem: Problem, timing: TimingResult,
               source: str = "grid") -> list[dict[str, Any]]: ...


def applies(measurer: Measures, problem: Problem, kernels: Sequence[Kernel]) -> bool:
    """Whether ``kernels`` on ``problem`` should be interleaved: several CPU kernels that fit together.

    Not with a clock injected into the whole sweep (tests' fake clocks, whose
    exact per-call costs follow the one-by-one order).
    """
    if measurer.clock is not None:
        return False
    runnable = [k for k in kernels if measurer.precheck(k, problem) is None]
    if len(runnable) < 2 or any(k.device != "cpu" for k in runnable):
        return False
    return measurer.fits_in_memory(sum(k.host_memory_bytes(problem) for k in runnable))


class _Open:
    """One kernel prepared, verified and autoranged, collecting its samples."""

    def __init__(self, kernel: Kernel, row: dict[str, Any], prepared: Any, clock: Any, loops: int,
                 single: float) -> None:
        self.kernel, self.row, self.prepared, self.clock = kernel, row, prepared, clock
        self.loops, self.single = loops, single
        self.samples: list[float] = []
        self.host: list[float] = []

    def sample(self) -> None:
        self.samples.append(self.clock.measure(self.prepared.call, self.loops) / self.loops)
        host_s = getattr(self.clock, "last_host_s", None)
        if host_s is not None:
            self.host.append(host_s / self.loops)

    def timing(self) -> TimingResult:
        return TimingResult(Measurement(tuple(self.samples), self.loops, tuple(self.host)), self.single, False)


def measure_interleaved(measurer: Measures, problem: Problem, kernels: Sequence[Kernel],
                        inputs: tuple[np.ndarray, np.ndarray, np.ndarray], source: str = "grid"
                        ) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Rows (and samples) of ``kernels`` on ``problem``, sampled in turns.

    Rows that need no sampling (skipped, errors, over ``--max-call``) come as
    soon as they are known; the others after the last round, in kernel order.
    """
    x, h, y_ref = inputs
    config = measurer.config
    opened: list[_Open] = []
    try:
        for kernel in kernels:
            row = measurer.base_row(kernel, problem, source)
            pre = measurer.precheck(kernel, problem)
            if pre:
                row["status"], row["message"] = pre
                yield row, []
                continue
            prepared = None
            try:
                prepared, clock = measurer.setup(kernel, problem, x, h, y_ref, row)
                with gc_disabled():
                    single = clock.measure(prepared.call, 1)
                    if single > config.max_call:
                        samples = [single] + [clock.measure(prepared.call, 1) for _ in range(min(config.repeat, 3) - 1)]
                        timing = TimingResult(Measurement(tuple(samples), 1), single, True)
                    else:
                        loops, _ = autorange(prepared.call, clock, config.min_time)
                        timing = None
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # a kernel failure is a row, and the sweep goes on
                if prepared is not None:
                    close_quietly(prepared)
                yield measurer.error_row(row, exc), []
                continue
            if timing is not None:  # over --max-call: done now, like the one-by-one path
                close_quietly(prepared)
                yield row, measurer.finish(row, kernel, problem, timing, source)
                continue
            opened.append(_Open(kernel, row, prepared, clock, loops, single))
        failed: list[tuple[_Open, Exception]] = []
        with gc_disabled():
            for _ in range(config.repeat):
                for o in list(opened):
                    try:
                        o.sample()
                    except (KeyboardInterrupt, SystemExit):
                        raise
                    except Exception as exc:
                        opened.remove(o)
                        close_quietly(o.prepared)
                        failed.append((o, exc))
        for o, exc in failed:
            yield measurer.error_row(o.row, exc), []
        while opened:
            o = opened.pop(0)
            close_quietly(o.prepared)
            yield o.row, measurer.finish(o.row, o.kernel, problem, o.timing(), source)
    finally:
        for o in opened:
            close_quietly(o.prepared)


__all__ = ["applies", "measure_interleaved"]
