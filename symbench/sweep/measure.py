"""One kernel on one problem becomes a row: precheck, prepare, verify, time.

:class:`Measurer` owns what a row is made of (the precheck that skips or cuts
a pair, set-up and warm-up in ``setup_s``, the check against the float64
reference, the timing and its statistics). :func:`measure_problem` measures
the kernels of one problem and appends their rows, in turns where
:mod:`symbench.sweep.interleave` applies. The grid loop, resume and Ctrl-C
are the runner's (:mod:`symbench.sweep.runner`); the adaptive search
(:mod:`symbench.sweep.adaptive`) calls the same pieces.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol, Sequence

import numpy as np

from symbench.config import SweepConfig
from symbench.kernels.base import Kernel, KernelOptions, close_quietly, thread_limits
from symbench.machine.environment import available_memory
from symbench.machine.noise import NoiseRecord
from symbench.problem import KEY_FIELDS, Problem, make_inputs
from symbench.reference import reference, rel_err
from symbench.store import RunWriter, fmt_value
from symbench.sweep import interleave, interrupt
from symbench.sweep.timing import Clock, PerfCounterClock, TimingResult, measure, settle_heap

#: Share of the available RAM a problem may plan to use.
MEMORY_FRACTION = 0.8


class Progress(Protocol):
    """What the runner tells whoever shows progress (the CLI's rich bar)."""

    def start(self, total: int) -> None: ...

    def advance(self, label: str, steps: int = 1) -> None: ...

    def stop(self) -> None: ...


class NoProgress:
    """Progress that shows nothing (library calls, ``--quiet``)."""

    def start(self, total: int) -> None:
        pass

    def advance(self, label: str, steps: int = 1) -> None:
        pass

    def stop(self) -> None:
        pass


@dataclass
class SweepResult:
    """What a sweep did: where it wrote, how many rows of each status, whether it was cut short."""

    run_dir: Path
    counts: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    elapsed_s: float = 0.0
    skipped_existing: int = 0


def row_key(kernel: str, problem: Problem, source: str = "grid", round_: int = 0) -> tuple[str, ...]:
    """The key of a row as it reads back from disk (all strings; :data:`symbench.store.ROW_KEY_COLUMNS`)."""
    return (kernel, *(fmt_value(v) for v in problem.key()), source, str(round_))


@dataclass
class Measurer:
    """Measures one (kernel, problem) pair into a row and its samples."""

    config: SweepConfig
    run_id: str
    clock: Clock | None = None
    #: (kernel, series) -> (k, seconds): the first k whose single call exceeded max_call.
    cut: dict[tuple[str, tuple], tuple[int, float]] = field(default_factory=dict)
    #: Reads the machine's noise around each problem (:mod:`symbench.machine.noise`); None: not recorded.
    noise: NoiseRecord | None = None
    #: The round (0-based) whose rows this measurer makes (:mod:`symbench.sweep.rounds`).
    round: int = 0

    @contextlib.contextmanager
    def watch(self, problem: Problem, source: str = "grid") -> Iterator[dict[str, Any]]:
        """Record the machine's noise while the kernels of ``problem`` are measured (two file reads).

        Yields a dict that holds the window's reading once the block is left
        (empty when nothing is recorded), for :func:`add_noise`.
        """
        window: dict[str, Any] = {}
        if self.noise is None:
            yield window
            return
        self.noise.start()
        try:
            yield window
        finally:
            key = {f: fmt_value(v) for f, v in zip(KEY_FIELDS, problem.key())}
            window.update(self.noise.stop(problem.label(), {**key, "source": source, "round": self.round}))

    @property
    def options(self) -> KernelOptions:
        return KernelOptions(planner=self.config.planner, flush_l2=self.config.flush_l2)

    def base_row(self, kernel: Kernel, problem: Problem, source: str) -> dict[str, Any]:
        row: dict[str, Any] = {"run_id": self.run_id, "kernel": kernel.name, "method": kernel.method,
                               "library": kernel.library, "device": kernel.device,
                               "seed": self.config.seed, "source": source, "samples": 0, "loops": 0,
                               "round": self.round}
        row.update(problem.as_dict())
        return row

    def fits_in_memory(self, need: int) -> bool:
        """Whether ``need`` bytes fit in :data:`MEMORY_FRACTION` of the available RAM."""
        have = available_memory()
        return not have or need <= MEMORY_FRACTION * have

    def precheck(self, kernel: Kernel, problem: Problem) -> tuple[str, str] | None:
        """(status, message) when the pair is not run at all."""
        reason = kernel.unavailable_reason()
        if reason:
            return "skipped", f"kernel unavailable: {reason}"
        reason = kernel.supports(problem)
        if reason:
            return "skipped", reason
        cut = self.cut.get((kernel.name, problem.series()))
        if cut and problem.k > cut[0]:
            return "timeout", (f"not run: one call at k={cut[0]} took {cut[1]:.3g} s, over "
                               f"--max-call {self.config.max_call:g} s")
        need = kernel.host_memory_bytes(problem)
        if not self.fits_in_memory(need):
            have = available_memory()
            return "skipped", (f"needs about {need / 2**30:.2f} GiB; {have / 2**30:.2f} GiB available")
        reason = kernel.device_memory_check(problem)
        if reason:
            return "skipped", reason
        return None

    def measure(self, kernel: Kernel, problem: Problem, x: np.ndarray, h: np.ndarray,
                y_ref: np.ndarray, source: str = "grid", repeat: int | None = None
                ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Prepare, verify and time; errors become rows, never exceptions (Ctrl-C excepted)."""
        row = self.base_row(kernel, problem, source)
        pre = self.precheck(kernel, problem)
        if pre:
            row["status"], row["message"] = pre
            return row, []
        prepared = None
        try:
            prepared, clock = self.setup(kernel, problem, x, h, y_ref, row)
            timing = measure(prepared.call, clock, min_time=self.config.min_time,
                             repeat=repeat or self.config.repeat, max_call=self.config.max_call, warmup=0)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # a kernel failure is a row, and the sweep goes on
            return self.error_row(row, exc), []
        finally:
            if prepared is not None:
                close_quietly(prepared)
        return row, self.finish(row, kernel, problem, timing, source)

    def setup(self, kernel: Kernel, problem: Problem, x: np.ndarray, h: np.ndarray, y_ref: np.ndarray,
              row: dict[str, Any]) -> tuple[Any, Clock]:
        """Prepare and warm up (``setup_s``), verify (``rel_err``, status); returns the prepared kernel and its clock."""
        t0 = time.perf_counter()
        prepared = kernel.prepare(problem, x, h, self.options)
        try:
            prepared.call()  # warm-up: first-call costs (compilation, page faults) go to setup_s
            row["setup_s"] = time.perf_counter() - t0
            y = prepared.result()
            err = rel_err(y, y_ref)
            tol = problem.tolerance()
            row["rel_err"] = err
            row["status"], row["message"] = "ok", ""
            if not err <= tol:
                row["status"] = "mismatch"
                row["message"] = (f"rel_err {err:.3g} > tolerance {tol:.3g}"
                                  if math.isfinite(err) else f"wrong shape or non-finite output {np.shape(y)}")
            if prepared.notes:
                row["setup_notes"] = json.dumps(prepared.notes, default=str, separators=(",", ":"))
        except BaseException:
            close_quietly(prepared)
            raise
        return prepared, self.clock or prepared.clock or PerfCounterClock()

    @staticmethod
    def error_row(row: dict[str, Any], exc: BaseException) -> dict[str, Any]:
        row["status"] = "error"
        row["message"] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]
        return row

    def finish(self, row: dict[str, Any], kernel: Kernel, problem: Problem, timing: TimingResult,
               source: str = "grid") -> list[dict[str, Any]]:
        """Fill ``row``'s statistics from ``timing``; returns its rows of ``samples.csv``."""
        m = timing.measurement
        if timing.over_max_call:
            self.cut[(kernel.name, problem.series())] = (problem.k, timing.single_call_s)
            note = (f"one call took {timing.single_call_s:.3g} s, over --max-call "
                    f"{self.config.max_call:g} s: {len(m.samples)} samples of one call; larger k not run")
            row["message"] = f"{row['message']}; {note}" if row["message"] else note
        row.update(samples=len(m.samples), loops=m.loops, time_s=m.median, time_min_s=m.min,
                   time_q1_s=m.q1, time_q3_s=m.q3, time_mean_s=m.mean, time_std_s=m.std,
                   gflops=problem.flops() / m.median / 1e9 if m.median > 0 else math.nan,
                   host_time_s=m.host_median if m.host_samples else None)
        samples = []
        for i, t in enumerate(m.samples):
            s = {"run_id": self.run_id, "kernel": kernel.name, "source": source, "sample": i,
                 "loops": m.loops, "time_s": t, "round": self.round,
                 "host_time_s": m.host_samples[i] if m.host_samples else None}
            s.update(problem.as_dict())
            samples.append(s)
        return samples


#: Whether the CPU kernels of a problem take their samples in turns (see :mod:`symbench.sweep.interleave`).
INTERLEAVE = True


def add_noise(samples: Sequence[dict[str, Any]], reading: dict[str, Any]) -> None:
    """Give each sample the noise of the window its problem was measured in (empty when none was read)."""
    for s in samples:
        s["steal_share"] = reading.get("steal_share")
        s["others_cores"] = reading.get("others_cores")


def problem_rows(measurer: Measurer, problem: Problem, kernels: Sequence[Kernel], source: str = "grid"
                 ) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Rows (and their samples) of ``kernels`` on one problem, as they are measured.

    With :data:`INTERLEAVE` (and several CPU kernels whose buffers fit in memory
    together), the kernels take their samples in turns, so that a change of
    machine load hits all of them alike.
    """
    settle_heap()  # the previous problem's objects are gone: later collections walk this one's only
    inputs = None
    with thread_limits(problem.threads):
        if INTERLEAVE and interleave.applies(measurer, problem, kernels):
            inputs = problem_inputs(problem, measurer.config.seed)
            yield from interleave.measure_interleaved(measurer, problem, kernels, inputs, source)
            return
        for kernel in kernels:
            if measurer.precheck(kernel, problem) is None and inputs is None:
                inputs = problem_inputs(problem, measurer.config.seed)
            if inputs is None:
                yield measurer.measure(kernel, problem, None, None, None, source)  # type: ignore[arg-type]
            else:
                yield measurer.measure(kernel, problem, *inputs, source=source)


def measure_round(measurer: Measurer, problem: Problem, kernels: Sequence[Kernel], source: str = "grid",
                  cuts: Iterable[tuple[str, int, float]] = ()
                  ) -> tuple[list[tuple[dict[str, Any], list[dict[str, Any]]]], dict[str, Any], list[tuple[str, int, float]]]:
    """One problem of one round (``sweep --rounds``), in whichever process measures the round.

    ``cuts`` are the (kernel, k, seconds) of the problem's series whose single
    call exceeded ``--max-call`` in earlier rounds (larger k of them are not
    run). Returns the rows with their samples, the reading of the problem's
    noise window, and the series' cuts as they stand now.
    """
    series = problem.series()
    for name, k, seconds in cuts:
        measurer.cut[(str(name), series)] = (int(k), float(seconds))
    with measurer.watch(problem, source) as window:
        rows = list(problem_rows(measurer, problem, kernels, source))
    found = [(name, k, s) for (name, ser), (k, s) in measurer.cut.items() if ser == series]
    return rows, dict(window), found


def measure_problem(measurer: Measurer, writer: RunWriter, problem: Problem, kernels: Sequence[Kernel],
                    result: SweepResult, progress: Progress, source: str = "grid") -> None:
    """Measure ``kernels`` on one problem and append their rows (:func:`problem_rows`).

    The rows are written when the problem's noise window closes, so that each
    sample carries the window's reading; Ctrl-C in between still writes the rows
    already measured.
    """
    pending: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    window: dict[str, Any] = {}
    try:
        with measurer.watch(problem, source) as window:
            for row, samples in problem_rows(measurer, problem, kernels, source):
                pending.append((row, samples))
    finally:
        write_rows(writer, pending, window, result, progress, problem.label())


def write_rows(writer: RunWriter, rows: Sequence[tuple[dict[str, Any], list[dict[str, Any]]]],
               reading: dict[str, Any], result: SweepResult, progress: Progress, label: str) -> None:
    """Append one problem's rows (their samples given the window's noise), counted and shown as progress.

    Ctrl-C and SIGTERM wait until the rows are written (:func:`symbench.sweep.interrupt.critical`).
    """
    with interrupt.critical():
        for row, samples in rows:
            add_noise(samples, reading)
            writer.append(row, samples)
            result.counts[row["status"]] = result.counts.get(row["status"], 0) + 1
            progress.advance(f"{row['kernel']} {label}")


#: Inputs start on a page boundary. malloc aligns a buffer to 16 bytes only, and
#: where within a cache line it starts depends on what the process allocated
#: before: numpy.convolve of 4096 x 257 points took 150 to 300 us on this
#: machine depending on x's and h's address modulo 64, so two processes (two ab
#: workers, two sweeps) timed the same call up to 1.5x apart. A fixed alignment
#: takes that out of the timing for the inputs the benchmark owns.
INPUT_ALIGN = 4096


def aligned_copy(a: np.ndarray, align: int = INPUT_ALIGN) -> np.ndarray:
    """A C-contiguous copy of ``a`` whose data start at a multiple of ``align`` bytes."""
    nbytes = max(a.nbytes, 1)
    buf = np.empty(nbytes + align, dtype=np.uint8)
    start = (-buf.ctypes.data) % align
    out = buf[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def problem_inputs(problem: Problem, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read-only, page-aligned inputs and their float64 reference (a kernel cannot corrupt the next one's data)."""
    x, h = make_inputs(problem, seed)
    y_ref = reference(problem, x, h)
    x, h = aligned_copy(x), aligned_copy(h)
    for a in (x, h, y_ref):
        a.setflags(write=False)
    return x, h, y_ref
