"""Sweeps in rounds: the whole grid measured ``rounds`` times, each round in a fresh worker process.

Samples taken in one process are not independent draws of what the next run
will see: where malloc put a kernel's buffers, which CPU the scheduler chose,
how warm the page cache was and how fast the machine ran in that minute are
fixed for a process and move between processes and minutes (pyperf spawns 20
worker processes for the same reason). A sweep with ``rounds = R`` therefore
measures every (kernel, problem) R times:

* each round runs in a fresh worker (:mod:`symbench.sweep.worker`, op
  ``problem``), started with this interpreter and environment;
* each round visits every problem before the next round starts, so the rounds
  are spread over the run's whole time; the *series* (the problems without k)
  come in an order shuffled per round (seeded by the config's seed and the
  round), k ascending within a series, so that ``--max-call`` still spares
  the larger k of a series whose call got too long;
* within a round, the kernels of a problem take their samples in turns, as in
  a one-process sweep (:mod:`symbench.sweep.interleave`).

Every row and sample carries its ``round``; rows are written as each
problem's reply arrives. ``--resume`` measures only the missing (kernel,
problem, round); Ctrl-C kills the worker and keeps what was written. A worker
that dies (a kernel crashed the process) costs that problem's rows of that
round (status ``error``); the next problem gets a fresh worker.

With an injected clock (tests), the rounds run in this process instead, one
fresh :class:`~symbench.sweep.measure.Measurer` per round, so that their
logic can be tested with exact fake times.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from symbench.config import SweepConfig
from symbench.kernels.base import Kernel
from symbench.machine.noise import NoiseRecord
from symbench.problem import KEY_FIELDS, Problem
from symbench.store import RunWriter, fmt_value
from symbench.sweep.client import Side, WorkerClient, WorkerDied
from symbench.sweep.measure import Measurer, Progress, SweepResult, measure_round, row_key, write_rows
from symbench.sweep.timing import Clock

#: (kernel, k, seconds) of a series whose single call exceeded ``max_call``.
Cut = tuple[str, int, float]
Rows = list[tuple[dict[str, Any], list[dict[str, Any]]]]


@dataclass(frozen=True)
class Job:
    """One problem of a round and the kernels to measure on it."""

    problem: Problem
    kernels: tuple[Kernel, ...]
    source: str = "grid"


def round_order(jobs: Sequence[Job], seed: int, round_: int) -> list[Job]:
    """The jobs in round ``round_``'s order: series shuffled (seeded), k ascending within each series.

    Examples
    --------
    >>> from symbench.problem import Problem
    >>> jobs = [Job(Problem(n=n, k=k), ()) for n in (64, 128) for k in (3, 5)]
    >>> sorted((j.problem.n, j.problem.k) for j in round_order(jobs, 0, 1)) == sorted((j.problem.n, j.problem.k) for j in jobs)
    True
    """
    series: dict[tuple[Any, str], list[Job]] = {}
    for job in jobs:
        series.setdefault((job.problem.series(), job.source), []).append(job)
    keys = list(series)
    random.Random(f"symbench-rounds/{seed}/{round_}").shuffle(keys)
    return [job for key in keys for job in sorted(series[key], key=lambda j: j.problem.k)]


class Executor(Protocol):
    """Where a round's problems are measured: a worker process, or this process (tests)."""

    def begin(self, round_: int) -> None: ...

    def problem(self, job: Job, kernels: Sequence[Kernel], round_: int, cuts: Sequence[Cut]
                ) -> tuple[Rows, dict[str, Any], list[Cut]]: ...

    def restart(self) -> None: ...

    def end(self, abort: bool = False) -> None: ...


class InWorkers:
    """Each round in a fresh worker process of this interpreter (the real thing)."""

    def __init__(self, config: SweepConfig, run_id: str) -> None:
        self.config, self.run_id = config, run_id
        self.client: WorkerClient | None = None
        self._config = config.to_dict()

    def _start(self) -> None:
        self.client = WorkerClient(Side("round", sys.executable, option="--rounds"))
        self.client.start()

    def begin(self, round_: int) -> None:
        self._start()

    def problem(self, job: Job, kernels: Sequence[Kernel], round_: int, cuts: Sequence[Cut]
                ) -> tuple[Rows, dict[str, Any], list[Cut]]:
        if self.client is None:
            self._start()
        assert self.client is not None
        reply = self.client.request({"op": "problem", "problem": job.problem.as_dict(),
                                     "kernels": [k.name for k in kernels], "config": self._config,
                                     "run_id": self.run_id, "round": round_, "source": job.source,
                                     "cuts": [list(c) for c in cuts]})
        rows = [(dict(item["row"]), [dict(s) for s in item.get("samples") or []]) for item in reply["rows"]]
        cuts_out = [(str(n), int(k), float(s)) for n, k, s in reply.get("cuts") or []]
        return rows, dict(reply.get("noise") or {}), cuts_out

    def restart(self) -> None:
        self.end(abort=True)

    def end(self, abort: bool = False) -> None:
        if self.client is not None:
            if abort:
                self.client.kill()
            else:
                self.client.stop()
            self.client = None


class InProcess:
    """Each round with a fresh measurer in this process: for an injected clock (tests)."""

    def __init__(self, config: SweepConfig, run_id: str, clock: Clock | None) -> None:
        self.config, self.run_id, self.clock = config, run_id, clock
        self.measurer: Measurer | None = None

    def begin(self, round_: int) -> None:
        self.measurer = Measurer(self.config, self.run_id, self.clock, noise=NoiseRecord(), round=round_)

    def problem(self, job: Job, kernels: Sequence[Kernel], round_: int, cuts: Sequence[Cut]
                ) -> tuple[Rows, dict[str, Any], list[Cut]]:
        assert self.measurer is not None
        return measure_round(self.measurer, job.problem, kernels, job.source, cuts)

    def restart(self) -> None:
        pass

    def end(self, abort: bool = False) -> None:
        self.measurer = None


def run_rounds(writer: RunWriter, config: SweepConfig, jobs: Sequence[Job], done: set[tuple[str, ...]],
               run_id: str, result: SweepResult, progress: Progress, noise: NoiseRecord,
               executor: Executor, rounds: Sequence[int] | None = None) -> None:
    """Measure every job in each of ``rounds`` (default: all of the config's) that is not ``done`` yet.

    Raises ``KeyboardInterrupt`` (after killing the worker; every row written
    stays) and ``OSError`` from the writer, as the one-process sweep does.
    """
    cuts: dict[tuple[Any, str], dict[str, Cut]] = {}
    for r in (range(config.rounds) if rounds is None else rounds):
        todo: list[tuple[Job, list[Kernel]]] = []
        for job in round_order(jobs, config.seed, r):
            kernels = [k for k in job.kernels if row_key(k.name, job.problem, job.source, r) not in done]
            skipped = len(job.kernels) - len(kernels)
            if skipped:
                progress.advance(job.problem.label(), skipped)
                result.skipped_existing += skipped
            if kernels:
                todo.append((job, kernels))
        if not todo:
            continue
        executor.begin(r)
        try:
            for job, kernels in todo:
                key = (job.problem.series(), job.source)
                known = list(cuts.get(key, {}).values())
                try:
                    rows, reading, found = executor.problem(job, kernels, r, known)
                except (WorkerDied, RuntimeError) as exc:
                    rows, reading, found = _lost(config, run_id, job, kernels, r, exc), {}, []
                    executor.restart()
                for cut in found:
                    cuts.setdefault(key, {})[cut[0]] = cut
                label = job.problem.label()
                noise.add(reading, f"{label} round {r}",
                          {**{f: fmt_value(v) for f, v in zip(KEY_FIELDS, job.problem.key())},
                           "source": job.source, "round": r})
                write_rows(writer, rows, reading, result, progress, f"{label} (round {r + 1}/{config.rounds})")
        except BaseException:
            executor.end(abort=True)
            raise
        executor.end()


def _lost(config: SweepConfig, run_id: str, job: Job, kernels: Sequence[Kernel], round_: int,
          exc: BaseException) -> Rows:
    """Error rows for a problem whose worker died (or refused the request) in this round."""
    m = Measurer(config, run_id, round=round_)
    why = " ".join(str(exc).split())[:300]
    rows: Rows = []
    for kernel in kernels:
        row = m.base_row(kernel, job.problem, job.source)
        row["status"], row["message"] = "error", f"the round's worker process failed on this problem: {why}"
        rows.append((row, []))
    return rows


__all__ = ["Executor", "InProcess", "InWorkers", "Job", "round_order", "run_rounds"]
