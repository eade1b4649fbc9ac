"""The sweep: grid -> problems -> verify -> time -> rows.

For every problem (in grid order, k ascending within each series) the inputs
and the float64 reference are made once; then each kernel is prepared (set-up
and warm-up time go to ``setup_s``), its result is checked against the
reference (``rel_err``; beyond the tolerance the row is a ``mismatch``), and
its call is timed. Each row is appended to the run directory as soon as it is
measured. Ctrl-C stops the sweep between two writes; ``--resume`` measures
only the rows that are missing. With ``adaptive`` the grid is searched for the
crossover bracket instead of measured whole (:mod:`symbench.sweep.adaptive`).
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

from symbench.config import SweepConfig
from symbench.errors import ConfigError, KernelError, RunDirError, SymbenchWarning
from symbench.kernels.base import Kernel
from symbench.kernels.registry import all_kernels, required_modules, resolve
from symbench.machine.environment import collect
from symbench.machine.noise import MAX_LABELS, NoiseRecord, preflight
from symbench.problem import Problem
from symbench.store import RunWriter, check_free_space, estimate_bytes, new_run_id, utcnow
from symbench.sweep import interrupt
from symbench.sweep.allocator import steady_heap
from symbench.sweep.measure import (Measurer, NoProgress, Progress, SweepResult, measure_problem,
                                    problem_inputs, row_key)
from symbench.sweep.rounds import Executor, InProcess, InWorkers, Job, run_rounds
from symbench.sweep.timing import Clock, timer_overhead

#: Seconds of /proc/stat the pre-flight's steal check samples (tests set 0).
PREFLIGHT_STEAL_S = 0.2

__all__ = ["Measurer", "SweepResult", "plan", "problem_inputs", "run_meta", "run_sweep"]

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


def run_meta(config: SweepConfig, run_id: str, command: Sequence[str] | None,
             kernels: Mapping[str, Kernel]) -> dict[str, Any]:
    """The ``run.json`` facts of a run made in this process: config, environment, timer, kernels."""
    from symbench import __version__

    gpu = any(k.device == "gpu" and k.available for k in kernels.values())
    return {
        "run_id": run_id,
        "symbench_version": __version__,
        "started": utcnow(),
        "command": list(command) if command is not None else list(sys.argv),
        "config": config.to_dict(),
        "environment": {**collect(planner=config.planner, devices=gpu, libraries=required_modules()),
                        "allocator": steady_heap()},
        "timer": timer_overhead(calls=20_000),
        "preflight": preflight(steal_sample_s=PREFLIGHT_STEAL_S),
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
    progress = progress or NoProgress()
    t_start = time.perf_counter()
    steady_heap()  # timings must not depend on what the process freed before (symbench.sweep.allocator)
    if resume is not None:
        writer = RunWriter.reopen(resume)  # takes the run's lock: a second resume is refused
        try:
            config = SweepConfig.from_dict(writer.meta["config"])
            _check_resume_overrides(config, overrides or {})
            run_id = str(writer.meta["run_id"])
            jobs = plan(config)
            done = writer.done_keys()
            check_free_space(writer.run_dir, estimate_bytes(
                sum(len(ks) for _, ks in jobs) * config.rounds - len(done), config.repeat))
            writer.meta.setdefault("resumed", []).append(utcnow())
            with interrupt.critical():
                writer.meta["complete"] = False
                writer.save_meta()
        except OSError as exc:
            writer.close()
            raise RunDirError(f"cannot resume {writer.run_dir}: {exc.strerror or exc}; "
                              "its rows are kept as they were") from None
        except BaseException:
            writer.close()
            raise
    else:
        if config is None:
            raise ConfigError("run_sweep needs a config or resume")
        jobs = plan(config)
        run_id = new_run_id()
        run_dir = Path(out) if out is not None else Path(results_root) / run_id
        used = {k.name: k for _, ks in jobs for k in ks}
        meta = run_meta(config, run_id, command, used)
        check_free_space(run_dir, estimate_bytes(sum(len(ks) for _, ks in jobs) * config.rounds, config.repeat))
        with interrupt.critical():
            writer = RunWriter.create(run_dir, meta)
        done = set()
    try:
        return _measure_all(writer, config, jobs, done, run_id, clock, progress, t_start)
    finally:
        writer.close()


def _measure_all(writer: RunWriter, config: SweepConfig, jobs: list[tuple[Problem, list[Kernel]]],
                 done: set[tuple[str, ...]], run_id: str, clock: Clock | None, progress: Progress,
                 t_start: float) -> SweepResult:
    """Measure what is not ``done`` yet; then mark the run complete only if its rows read back."""
    noise = NoiseRecord()
    measurer = Measurer(config, run_id, clock, noise=noise)
    result = SweepResult(writer.run_dir)
    search = None
    if config.adaptive:
        from symbench.sweep.adaptive import AdaptiveSearch  # only adaptive sweeps pay for its imports

        machine_id = str((writer.meta.get("environment") or {}).get("machine_id") or "unknown")
        search = AdaptiveSearch(measurer, writer, jobs, result, progress, machine_id=machine_id)
        total = search.estimate() * config.rounds
    else:
        total = sum(len(ks) for _, ks in jobs) * config.rounds
    progress.start(total)
    io_error: OSError | None = None
    try:
        if search is not None:
            search.run()
            if config.rounds > 1:
                # The search picks the ks in round 0; the later rounds re-measure
                # its points in fresh workers, and the verdict is made across rounds.
                _rounds(writer, config, search_jobs(search), done, run_id, clock, result, progress, noise,
                        range(1, config.rounds))
        elif config.rounds > 1:
            _rounds(writer, config, [Job(p, tuple(ks)) for p, ks in jobs], done, run_id, clock, result,
                    progress, noise)
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
    except OSError as exc:  # disk full, read-only remount, permissions changed under us
        io_error = exc
    finally:
        progress.stop()
    result.elapsed_s = time.perf_counter() - t_start
    kept = len(done) + len(writer.written)
    if io_error is not None:
        why = io_error.strerror or str(io_error)
        try:
            with interrupt.critical():
                writer.finish(complete=False, interrupted=False, error=f"I/O error: {why}",
                              noise=_noise_summary(writer.meta, noise))
            noted = "run.json says incomplete"
        except OSError:
            noted = "run.json could not be updated"
        raise RunDirError(f"cannot write to {writer.run_dir}: {why}; the {kept} rows measured before are kept "
                          f"({noted}); make room and finish it with --resume {writer.run_dir}") from None
    failed = None if result.interrupted else writer.check_readback()
    extra: dict[str, Any] = {"interrupted": result.interrupted, "noise": _noise_summary(writer.meta, noise)}
    if result.interrupted:
        extra["interrupted_by"] = interrupt.received or "SIGINT"
    if failed:
        extra["error"] = failed
    try:
        with interrupt.critical():
            writer.finish(complete=not result.interrupted and failed is None, **extra)
    except OSError as exc:
        raise RunDirError(f"cannot update {writer.run_dir}/run.json: {exc.strerror or exc}; the {kept} rows "
                          f"measured are kept; finish it with --resume {writer.run_dir}") from None
    if failed:
        raise RunDirError(f"{failed}; the run is marked incomplete; check the disk and finish it with "
                          f"--resume {writer.run_dir}")
    return result


def _rounds(writer: RunWriter, config: SweepConfig, jobs: list[Job], done: set[tuple[str, ...]], run_id: str,
            clock: Clock | None, result: SweepResult, progress: Progress, noise: NoiseRecord,
            rounds: Sequence[int] | None = None) -> None:
    executor: Executor = InProcess(config, run_id, clock) if clock is not None else InWorkers(config, run_id)
    run_rounds(writer, config, jobs, done, run_id, result, progress, noise, executor, rounds)


def search_jobs(search: Any) -> list[Job]:
    """The problems an adaptive search measured (its round 0), with their kernels, for the later rounds."""
    by: dict[tuple[Problem, str], list[Kernel]] = {}
    kernels = {k.name: k for s in search.series for ks in s.kernels.values() for k in ks}
    for (name, problem), point in search.points.items():
        if name in kernels:
            by.setdefault((problem, str(point.row.get("source") or "grid")), []).append(kernels[name])
    return [Job(p, tuple(ks), source) for (p, source), ks in by.items()]


def _noise_summary(meta: Mapping[str, Any], noise: NoiseRecord) -> dict[str, Any]:
    """``run.json``'s ``noise``; after ``--resume`` the disturbed problems of the earlier sessions are kept."""
    summary = noise.summary()
    before = meta.get("noise")
    if isinstance(before, dict) and before.get("problems"):
        earlier = list(before.get("disturbed_problems") or [])
        summary["disturbed"] += int(before.get("disturbed") or 0)
        summary["problems"] += int(before.get("problems") or 0)
        summary["judged"] += int(before.get("judged") or 0)
        merged = earlier + summary["disturbed_problems"]
        summary["disturbed_problems"] = merged[:MAX_LABELS]
        summary["disturbed_truncated"] = bool(before.get("disturbed_truncated")) or len(merged) > MAX_LABELS \
            or summary["disturbed_truncated"]
        summary["sessions"] = int(before.get("sessions") or 1) + 1  # medians and maxima: the last session's
    return summary


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
        # Name only the options that change the config on their own: one given
        # with the run's own value is not a difference.
        differ = [k for k in sorted(given)
                  if config_from_mapping(base, config.source, {k: given[k]}).comparable() != config.comparable()]
        names = ", ".join(f"--{k.replace('_', '-')}" for k in (differ or sorted(given)))
        raise ConfigError(f"--resume: {names} differ{'s' if len(differ) == 1 else ''} from the run's config; resume without them "
                          "(the run keeps its own config) or start a new run with --out")
