"""The sweep: grid -> problems -> verify -> time -> rows.

For every problem (in grid order, k ascending within each series) the inputs
and the float64 reference are made once; then each kernel is prepared (set-up
and warm-up time go to ``setup_s``), its result is checked against the
reference (``rel_err``; beyond the tolerance the row is a ``mismatch``), and
its call is timed. Each row is appended to the run directory as soon as it is
measured. Ctrl-C stops the sweep between two writes; ``--resume`` measures
only the rows that are missing. With ``adaptive`` the grid is searched for the
crossover bracket instead of measured whole (:mod:`symbench.adaptive`).
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np

from symbench import interrupt
from symbench.allocator import steady_heap
from symbench.config import SweepConfig
from symbench.environment import available_memory, collect
from symbench.errors import ConfigError, KernelError
from symbench.kernels.base import Kernel, KernelOptions, thread_limits
from symbench.kernels.registry import all_kernels, resolve
from symbench.problem import KEY_FIELDS, Problem, make_inputs, reference, rel_err
from symbench.store import RunWriter, SymbenchWarning, _fmt, new_run_id, utcnow
from symbench.timing import Clock, PerfCounterClock, TimingResult, measure, timer_overhead

#: Share of the available RAM a problem may plan to use.
MEMORY_FRACTION = 0.8


class Progress(Protocol):
    """What the runner tells whoever shows progress (the CLI's rich bar)."""

    def start(self, total: int) -> None: ...

    def advance(self, label: str, steps: int = 1) -> None: ...

    def stop(self) -> None: ...


class _NoProgress:
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


def _kernels_for(patterns: Sequence[str], problem: Problem) -> list[Kernel]:
    if patterns:
        return resolve(patterns)
    # No kernel given: every available kernel of the op (on any device).
    return [k for k in all_kernels().values() if problem.op in k.ops and k.available]


def plan(config: SweepConfig) -> list[tuple[Problem, list[Kernel]]]:
    """Resolve every job's kernels; fail early on unknown names or when nothing can run."""
    cache: dict[tuple[tuple[str, ...], str], list[Kernel]] = {}
    jobs = []
    for problem, patterns in config.jobs():
        key = (patterns, problem.op)
        if key not in cache:
            cache[key] = _kernels_for(patterns, problem)
        jobs.append((problem, cache[key]))
    used = {k.name: k for _, ks in jobs for k in ks}
    if not used:
        raise KernelError("no kernel to run; name kernels with --kernel (see symbench kernels)")
    usable = [k for k in used.values() if k.available]
    if not usable:
        reasons = "; ".join(f"{k.name}: {k.unavailable_reason()}" for k in used.values())
        raise KernelError(f"no requested kernel can run on this machine ({reasons})")
    for k in used.values():
        if not k.available:
            warnings.warn(f"kernel {k.name} is unavailable here ({k.unavailable_reason()}); "
                          "its rows are marked skipped", SymbenchWarning)
    if not any(any(k.supports(p) is None for k in ks if k.available) for p, ks in jobs):
        raise KernelError("none of the requested kernels supports the requested problems "
                          f"(e.g. {jobs[0][0].label()}); see symbench kernels")
    return jobs


def row_key(kernel: str, problem: Problem, source: str = "grid") -> tuple[str, ...]:
    """The key of a row as it reads back from disk (all strings)."""
    return (kernel, *(_fmt(v) for v in problem.key()), source)


@dataclass
class Measurer:
    """Measures one (kernel, problem) pair into a row and its samples."""

    config: SweepConfig
    run_id: str
    clock: Clock | None = None
    #: (kernel, series) -> (k, seconds): the first k whose single call exceeded max_call.
    cut: dict[tuple[str, tuple], tuple[int, float]] = field(default_factory=dict)

    @property
    def options(self) -> KernelOptions:
        return KernelOptions(planner=self.config.planner, flush_l2=self.config.flush_l2)

    def base_row(self, kernel: Kernel, problem: Problem, source: str) -> dict[str, Any]:
        row: dict[str, Any] = {"run_id": self.run_id, "kernel": kernel.name, "method": kernel.method,
                               "library": kernel.library, "device": kernel.device,
                               "seed": self.config.seed, "source": source, "samples": 0, "loops": 0}
        row.update(problem.as_dict())
        return row

    def precheck(self, kernel: Kernel, problem: Problem) -> tuple[str, str] | None:
        """(status, message) when the pair is not run at all."""
        reason = kernel.unavailable_reason()
        if reason:
            return "skipped", f"kernel unavailable: {reason}"
        reason = kernel.supports(problem)
        if reason:
            return "skipped", reason
        series = _series(problem)
        cut = self.cut.get((kernel.name, series))
        if cut and problem.k > cut[0]:
            return "timeout", (f"not run: one call at k={cut[0]} took {cut[1]:.3g} s, over "
                               f"--max-call {self.config.max_call:g} s")
        need = kernel.host_memory_bytes(problem)
        have = available_memory()
        if have and need > MEMORY_FRACTION * have:
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
                _close(prepared)
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
            _close(prepared)
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
            self.cut[(kernel.name, _series(problem))] = (problem.k, timing.single_call_s)
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
                 "loops": m.loops, "time_s": t,
                 "host_time_s": m.host_samples[i] if m.host_samples else None}
            s.update(problem.as_dict())
            samples.append(s)
        return samples


def _close(prepared: Any) -> None:
    try:
        prepared.close()
    except Exception:
        pass


def _series(problem: Problem) -> tuple:
    """A problem without its k: the series that --max-call cuts."""
    return tuple(v for f, v in zip(KEY_FIELDS, problem.key()) if f != "k")


def _meta(config: SweepConfig, run_id: str, command: Sequence[str] | None,
          kernels: Mapping[str, Kernel]) -> dict[str, Any]:
    from symbench import __version__

    gpu = any(k.device == "gpu" and k.available for k in kernels.values())
    return {
        "run_id": run_id,
        "symbench_version": __version__,
        "started": utcnow(),
        "command": list(command) if command is not None else list(sys.argv),
        "config": config.to_dict(),
        "environment": {**collect(planner=config.planner, devices=gpu), "allocator": steady_heap()},
        "timer": timer_overhead(calls=20_000),
        "kernels": {name: k.info() for name, k in kernels.items()},
    }


def run_sweep(
    config: SweepConfig | None = None,
    out: str | Path | None = None,
    *,
    resume: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    command: Sequence[str] | None = None,
    clock: Clock | None = None,
    progress: Progress | None = None,
    results_root: str | Path = "results",
) -> SweepResult:
    """Run a sweep into a run directory.

    Parameters
    ----------
    config : SweepConfig
        What to measure (ignored with ``resume``, which uses the run's own).
    out : path, optional
        The run directory; default ``results/<run_id>/``.
    resume : path, optional
        An unfinished run to complete. ``overrides`` must then agree with it.
    overrides : mapping, optional
        With ``resume``: the options given on the command line, checked against the run.
    command : sequence of str, optional
        The command line to record (default ``sys.argv``).
    clock : Clock, optional
        Times every kernel (tests inject a fake clock).
    progress : Progress, optional
        Receives progress updates.

    Returns
    -------
    SweepResult
        ``interrupted`` is true after Ctrl-C; everything measured is on disk.
    """
    progress = progress or _NoProgress()
    t_start = time.perf_counter()
    steady_heap()  # timings must not depend on what the process freed before (symbench.allocator)
    if resume is not None:
        writer = RunWriter.reopen(resume)
        config = SweepConfig.from_dict(writer.meta["config"])
        _check_resume_overrides(config, overrides or {})
        run_id = str(writer.meta["run_id"])
        jobs = plan(config)
        done = writer.done_keys()
        writer.meta.setdefault("resumed", []).append(utcnow())
        with interrupt.critical():
            writer.meta["complete"] = False
            writer.save_meta()
    else:
        if config is None:
            raise ConfigError("run_sweep needs a config or resume")
        jobs = plan(config)
        run_id = new_run_id()
        run_dir = Path(out) if out is not None else Path(results_root) / run_id
        used = {k.name: k for _, ks in jobs for k in ks}
        with interrupt.critical():
            writer = RunWriter.create(run_dir, _meta(config, run_id, command, used))
        done = set()
    measurer = Measurer(config, run_id, clock)
    result = SweepResult(writer.run_dir)
    search = None
    if config.adaptive:
        from symbench.adaptive import AdaptiveSearch

        machine_id = str((writer.meta.get("environment") or {}).get("machine_id") or "unknown")
        search = AdaptiveSearch(measurer, writer, jobs, result, progress, machine_id=machine_id)
        total = search.estimate()
    else:
        total = sum(len(ks) for _, ks in jobs)
    progress.start(total)
    try:
        if search is not None:
            search.run()
        else:
            for problem, kernels in jobs:
                todo = [k for k in kernels if row_key(k.name, problem) not in done]
                progress.advance(problem.label(), len(kernels) - len(todo))
                result.skipped_existing += len(kernels) - len(todo)
                if not todo:
                    continue
                measure_problem(measurer, writer, problem, todo, result, progress)
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        progress.stop()
    result.elapsed_s = time.perf_counter() - t_start
    with interrupt.critical():
        writer.finish(complete=not result.interrupted, interrupted=result.interrupted)
    return result


#: Whether the CPU kernels of a problem take their samples in turns (see :mod:`symbench.interleave`).
INTERLEAVE = True


def measure_problem(measurer: Measurer, writer: RunWriter, problem: Problem, kernels: Sequence[Kernel],
                    result: SweepResult, progress: Progress, source: str = "grid") -> None:
    """Measure ``kernels`` on one problem, appending each row as it is done.

    With :data:`INTERLEAVE` (and several CPU kernels whose buffers fit in memory
    together), the kernels take their samples in turns, so that a change of
    machine load hits all of them alike; their rows are then written together.
    """
    inputs = None
    with thread_limits(problem.threads):
        from symbench import interleave

        if INTERLEAVE and interleave.applies(measurer, problem, kernels):
            inputs = problem_inputs(problem, measurer.config.seed)
            for row, samples in interleave.measure_interleaved(measurer, problem, kernels, inputs, source):
                with interrupt.critical():
                    writer.append(row, samples)
                result.counts[row["status"]] = result.counts.get(row["status"], 0) + 1
                progress.advance(f"{row['kernel']} {problem.label()}")
            return
        for kernel in kernels:
            if measurer.precheck(kernel, problem) is None and inputs is None:
                inputs = problem_inputs(problem, measurer.config.seed)
            if inputs is None:
                row, samples = measurer.measure(kernel, problem, None, None, None, source)  # type: ignore[arg-type]
            else:
                row, samples = measurer.measure(kernel, problem, *inputs, source=source)
            with interrupt.critical():
                writer.append(row, samples)
            result.counts[row["status"]] = result.counts.get(row["status"], 0) + 1
            progress.advance(f"{kernel.name} {problem.label()}")


def problem_inputs(problem: Problem, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read-only inputs and their float64 reference (a kernel cannot corrupt the next one's data)."""
    x, h = make_inputs(problem, seed)
    y_ref = reference(problem, x, h)
    for a in (x, h, y_ref):
        a.setflags(write=False)
    return x, h, y_ref


def _check_resume_overrides(config: SweepConfig, overrides: Mapping[str, Any]) -> None:
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return
    from symbench.config import config_from_mapping

    stored = config.to_dict()
    base = {k: v for k, v in stored.items() if k not in ("grids", "source")}
    base["grid"] = stored["grids"]
    rebuilt = config_from_mapping(base, config.source, given)
    if rebuilt.comparable() != config.comparable():
        names = ", ".join(f"--{k.replace('_', '-')}" for k in sorted(given))
        raise ConfigError(f"--resume: {names} differ from the run's config; resume without them "
                          "(the run keeps its own config) or start a new run with --out")
