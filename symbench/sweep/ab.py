"""Paired A/B measurement: two environments measured in the same minutes, samples taken in turns.

Comparing two stored runs mixes the code's change with the machine's: on a
shared machine the speed drifts over minutes, and a run made an hour later is
a few percent faster or slower everywhere. Here one worker per side
(:mod:`symbench.sweep.worker`, started with the side's interpreter and
environment variables) prepares and verifies every (kernel, problem); the
parent then asks for one sample at a time, alternating sides in ABBA order
(A B, B A, A B, ...), so that the two samples of a pair are taken
milliseconds apart and no other symbench process uses the CPU during a timed
call. Both sides use the same loop count for a row (autoranged on the base),
so a pair compares like with like. A worker process has offsets of its own (where
malloc put a kernel's temporaries), so the worker moves that placement before
each timing, and each row's pairs are spread over several *incarnations*
(fresh pairs of workers, :class:`ABRun`).

Each side's rows and samples go to an ordinary run directory (``DIR/base``,
``DIR/new``); sample ``i`` of a row in one is paired with sample ``i`` of the
same row in the other (:mod:`symbench.analysis.paired` does the statistics).
"""

from __future__ import annotations

import fnmatch
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from symbench.analysis.paired import INCARNATION_STRIDE
from symbench.config import SweepConfig
from symbench.errors import KernelError, SymbenchError
from symbench.problem import Problem
from symbench.store import RunWriter, new_run_id, utcnow
from symbench.sweep import interrupt
from symbench.sweep.measure import NoProgress, Progress
from symbench.sweep.client import Side, WorkerClient, WorkerDied, parse_env, resolve_python

#: Pairs per row by default: with alpha 0.01 the sign test's lower bound is then
#: the 5th smallest of 20 log-ratios, and a 25 % slowdown clears 1 by a wide margin.
DEFAULT_PAIRS = 20
#: A side's sample is the fastest of up to this many back-to-back timings, each
#: autoranged to ``min_time * SAMPLE_SHARE / BEST_OF``. On a shared machine a
#: timing that a preemption (or a neighbour's cache traffic) landed in is
#: slower, never faster: the fastest of several short timings is the
#: uninterrupted one, where a single long timing would carry every preemption
#: of its span into the pair's ratio.
BEST_OF = 10
#: Fewest timings a sample is the fastest of (rows whose call is longer than the
#: sample's budget included): with one, a single preemption or an unlucky heap
#: placement (see the worker's heap jitter) is the sample.
MIN_BEST_OF = 3
#: One side's sample lasts about ``SAMPLE_SHARE * min_time``: a row's 2 x 20
#: samples then cost about 3 times a sweep's 7 samples of ``min_time`` (on
#: ``configs/ci.toml`` the samples of short rows are a small part of ab's time; the
#: opens in 14 fresh workers and the rows of long calls are the rest).
SAMPLE_SHARE = 0.5
#: Fewest pairs of a row whose single call is longer than a sample's budget: three
#: in each of the 7 incarnations, so at the default 20 pairs every row takes all 20.
#: With 14 (two per incarnation) the pairs' lower bound at alpha 0.01 was the 3rd
#: smallest ratio, and in ``make bench-gate`` three pairs from two processes with a
#: slow state (numpy.convolve 65536 x 65: the base 1.7x slower in one process) hid a
#: 25 % slowdown; with 20 or 21 it is the 5th smallest. Only ``--pairs`` above 21
#: shortens long rows now.
MIN_PAIRS = 21
#: Rows whose single call exceeds ``max_call`` take this many pairs of one call
#: (the fewest with which a one-sided sign test can reach p < 0.01 is 7).
SLOW_ROW_PAIRS = 8
#: Rows whose single call is longer than this many samples' budgets
#: (``min_time * SAMPLE_SHARE``) take ``SLOW_ROW_PAIRS`` pairs of one call as
#: well. Such a call is already many timings long, so the fastest of three of
#: them buys little, and their cost is what decided ab's: in ``configs/ci.toml``
#: (min_time 2 ms) direct-scipy's 2-D 128 x 128, k = 17 call takes 67 ms, and its
#: 20 pairs of the fastest of 3 calls were 11 of ab's 31 s (a sweep takes 9
#: calls of it). Rows left ``noise`` take more incarnations (:meth:`ABRun.undecided`).
LONG_CALL = 8
#: Pairs of fresh workers a row's pairs are spread over (see :class:`ABRun`). With
#: alpha 0.01 the sign test over the incarnations' medians needs 7 of them.
INCARNATIONS = 7
#: Rows whose verdict after the incarnations is ``noise`` (beyond the threshold, but the
#: interval reaches 1) take this many times as many incarnations again, once (see
#: :meth:`ABRun.undecided`).
EXTEND = 1


@dataclass
class ABResult:
    """What :func:`run_ab` did.

    Attributes
    ----------
    out : Path
        The directory holding ``base/`` and ``new/``.
    interrupted : bool
        True after Ctrl-C; what was measured is on disk.
    dead : dict of str
        Side label -> why its worker died (its remaining rows are errors).
    elapsed_s : float
    pairs : int
        Pairs per row asked for.
    """

    out: Path
    interrupted: bool = False
    dead: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0
    pairs: int = DEFAULT_PAIRS
    rows: int = 0

    @property
    def base_dir(self) -> Path:
        return self.out / "base"

    @property
    def new_dir(self) -> Path:
        return self.out / "new"


def abba_order(i: int) -> tuple[int, int]:
    """Which side samples first in pair ``i``: (0, 1) for even ``i``, (1, 0) for odd (A B B A A B ...).

    Alternating which side goes first cancels a steady trend within a pair
    (the second sample of a pair always seeing a slightly warmer or cooler
    machine) over any two consecutive pairs.
    """
    return (0, 1) if i % 2 == 0 else (1, 0)


def plan_names(config: SweepConfig, known: Sequence[str]) -> list[tuple[Problem, list[str]]]:
    """Kernel names per problem, resolved against the kernels the workers have (``known``).

    Without kernel patterns, every kernel of the problem's op that this
    process knows and a worker has (the sides decide themselves whether it
    can run).
    """
    jobs = []
    for problem, patterns in config.jobs():
        if patterns:
            wanted: set[str] = set()
            for raw in patterns:
                for pattern in (p.strip() for p in str(raw).split(",")):
                    if not pattern:
                        continue
                    hits = fnmatch.filter(known, pattern) if any(c in pattern for c in "*?[") else (
                        [pattern] if pattern in known else [])
                    if not hits:
                        raise KernelError(f"no kernel {pattern!r} in either side's symbench; "
                                          f"their kernels: {', '.join(known)}")
                    wanted.update(hits)
            names = [n for n in known if n in wanted]
        else:
            from symbench.kernels.registry import all_kernels

            names = [n for n, k in all_kernels().items() if problem.op in k.ops and n in known]
        jobs.append((problem, names))
    if not any(names for _, names in jobs):
        raise KernelError("no kernel to run; name kernels with --kernel (see symbench kernels)")
    return jobs


def _bare_row(run_id: str, kernel: str, problem: Problem, seed: int, status: str, message: str,
              like: Mapping[str, Any] | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"run_id": run_id, "kernel": kernel, "source": "grid", "samples": 0, "loops": 0,
                           "seed": seed, **problem.as_dict()}
    for c in ("method", "library", "device"):
        if like and c in like:
            row[c] = like[c]
    row.update(status=status, message=message)
    return row


def split_pairs(pairs: int, incarnations: int) -> list[int]:
    """Pairs per incarnation: ``pairs`` split as evenly as possible, the first ones one larger."""
    q, r = divmod(pairs, incarnations)
    return [q + (1 if i < r else 0) for i in range(incarnations)]


@dataclass
class _RowState:
    """A row being measured over several incarnations (in the parent)."""

    problem: Problem
    kernel: str
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    samples: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: {0: [], 1: []})
    plan: list[int] = field(default_factory=list)  # pairs per incarnation; empty: final after incarnation 0
    loops: int = 0
    best_of: int = 1
    warm: bool = True  # an untimed sample per side before the pairs (not for rows of one-call samples)
    final: bool = False

    def pairs(self) -> tuple[Any, Any]:
        """Log-ratios of the pairs taken so far and the incarnation of each, paired as the analysis pairs them.

        Sample ``i`` of one side goes with sample ``i`` of the other, in the order of
        their numbers (:func:`symbench.analysis.paired.ordered_sample_index`).
        """
        import numpy as np

        from symbench.analysis.paired import log_ratios, pair_groups

        b, n = (sorted(self.samples[s], key=lambda x: int(x["sample"])) for s in (0, 1))
        bt = np.array([float(x["time_s"]) for x in b])
        nt = np.array([float(x["time_s"]) for x in n])
        groups = np.array([int(x["sample"]) // INCARNATION_STRIDE for x in b], dtype=np.int64)
        return log_ratios(bt, nt), pair_groups(bt, nt, groups)


def merge_row(row: Mapping[str, Any], samples: Sequence[Mapping[str, Any]], problem: Problem) -> dict[str, Any]:
    """``row`` with the statistics of all its ``samples`` (several incarnations' worth), as a sweep computes them."""
    from symbench.sweep.timing import Measurement

    out = dict(row)
    if not samples:
        return out
    host = [s.get("host_time_s") for s in samples]
    m = Measurement(tuple(float(s["time_s"]) for s in samples), int(samples[-1]["loops"]),
                    tuple(float(h) for h in host) if all(h is not None for h in host) else ())
    out.update(samples=len(m.samples), loops=m.loops, time_s=m.median, time_min_s=m.min, time_q1_s=m.q1,
               time_q3_s=m.q3, time_mean_s=m.mean, time_std_s=m.std,
               gflops=problem.flops() / m.median / 1e9 if m.median > 0 else math.nan,
               host_time_s=m.host_median if m.host_samples else None)
    return out


class ABRun:
    """State of one ab run: the two workers, their writers, who is still alive, and the rows being measured.

    A row's pairs are spread over ``incarnations`` pairs of fresh workers
    (:func:`split_pairs`): all rows take their first pairs in the first two
    workers, then both workers are replaced and every row takes its next
    pairs, and so on. A worker process has offsets of its own (where malloc put
    a kernel's temporaries, modulo a cache line: numpy.convolve of 4096 x 257
    points was 13 % faster in one process than in the other, with a tight
    interval, in A/A); over several incarnations such an offset is noise, which
    :func:`symbench.analysis.paired.paired_verdict` accounts for with the
    incarnations' medians. Sample ``i`` of incarnation ``r`` is numbered
    ``r * INCARNATION_STRIDE + i`` in ``samples.csv``.
    """

    def __init__(self, config: SweepConfig, clients: list[WorkerClient], writers: list[RunWriter],
                 run_ids: list[str], pairs: int, incarnations: int = 1) -> None:
        self.config, self.clients, self.writers, self.run_ids, self.pairs = config, clients, writers, run_ids, pairs
        self.incarnations = max(1, incarnations)
        self.jitter = True
        self.incarnation = 0
        self.dead: dict[int, str] = {}
        self.cut: dict[tuple[str, tuple], tuple[int, float]] = {}
        self.settings = config.to_dict()
        self.states: list[_RowState] = []

    def alive(self) -> list[int]:
        return [s for s in (0, 1) if s not in self.dead]

    def call(self, s: int, msg: Mapping[str, Any]) -> dict[str, Any] | None:
        """A request to side ``s``; None (and the side marked dead) when its worker died."""
        try:
            return self.clients[s].request(msg)
        except WorkerDied as exc:
            self.dead[s] = str(exc)
            return None

    def write(self, s: int, row: Mapping[str, Any], samples: Sequence[Mapping[str, Any]] = ()) -> None:
        with interrupt.critical():
            self.writers[s].append(row, samples)

    def measure(self, problem: Problem, kernel: str) -> None:
        """Both sides' rows of one (kernel, problem) in the first incarnation; final rows are written now."""
        cfg = self.config
        st = _RowState(problem, kernel)
        self.states.append(st)
        cut = self.cut.get((kernel, problem.series()))
        if cut and problem.k > cut[0]:
            msg = (f"not run: one call at k={cut[0]} took {cut[1]:.3g} s, over --max-call {cfg.max_call:g} s")
            for s in (0, 1):
                self.write(s, _bare_row(self.run_ids[s], kernel, problem, cfg.seed, "timeout", msg))
            st.final = True
            return
        self._take(st)
        if not st.plan:  # not opened on some side, or a single incarnation: its rows are final now
            self.finish(st)

    def next_incarnation(self) -> None:
        """Every row that wants pairs from incarnation ``self.incarnation`` takes them (workers already fresh)."""
        for st in self.states:
            if not st.final and len(st.plan) > self.incarnation and st.plan[self.incarnation] > 0:
                self._take(st)
                if self.dead:
                    return

    def undecided(self, threshold: float, alpha: float) -> list[_RowState]:
        """Rows whose pairs so far are ``noise``: the ratio beyond the threshold, its interval reaching 1.

        With seven incarnations the bound of the incarnations' medians is their
        second smallest (largest), so two incarnations whose processes happened
        to favour the other side hide a real 25 % change (``make bench-gate``:
        one row of 8 in about half the jobs). Such a row is the one more
        incarnations decide; a row already decided, or within the threshold, is
        not measured again. Looking twice at a row's test at most doubles its
        false-alarm rate, and only for rows already beyond the threshold.
        """
        from symbench.analysis.paired import paired_verdict

        out = []
        for st in self.states:
            if st.final or len(st.plan) < 2 or any(st.rows.get(s, {}).get("status") != "ok" for s in (0, 1)):
                continue
            d, groups = st.pairs()
            if d.size and paired_verdict(d, threshold, alpha, groups)["status"] == "noise":
                out.append(st)
        return out

    def extend(self, rows: Sequence[_RowState], more: int) -> None:
        """Give ``rows`` ``more`` incarnations after the planned ones, as many pairs each as their largest."""
        for st in rows:
            st.plan = [*st.plan, *[max(st.plan)] * more]
        self.incarnations += more

    def finish(self, st: _RowState) -> None:
        """Write a row's two sides with all the samples it has."""
        if st.final:
            return
        st.final = True
        cfg = self.config
        like = next(iter(st.rows.values()), None)
        for s in (0, 1):
            row = st.rows.get(s)
            if row is None:
                if s in self.dead:
                    self.write(s, _bare_row(self.run_ids[s], st.kernel, st.problem, cfg.seed, "error",
                                            self.dead[s], like))
                continue
            self.write(s, merge_row(row, st.samples[s], st.problem) if st.samples[s] else row, st.samples[s])

    def finish_all(self) -> None:
        for st in self.states:
            self.finish(st)

    def _take(self, st: _RowState) -> None:
        """Open the row in the current workers, take this incarnation's pairs, and keep the samples."""
        cfg, problem, kernel, inc = self.config, st.problem, st.kernel, self.incarnation
        ids: dict[int, int] = {}
        rows: dict[int, dict[str, Any]] = {}
        single: dict[int, float] = {}
        for s in self.alive():
            rid = self.clients[s].new_id()
            try:
                reply = self.call(s, {"op": "open", "id": rid, "kernel": kernel, "problem": problem.as_dict(),
                                      "config": self.settings, "run_id": self.run_ids[s],
                                      "single": inc == 0})
            except RuntimeError as exc:  # a request the worker could not serve: this row is an error
                rows[s] = _bare_row(self.run_ids[s], kernel, problem, cfg.seed, "error", str(exc))
                continue
            if reply is None:
                continue
            rows[s] = reply["row"]
            if reply.get("open"):
                ids[s] = rid
                single[s] = float(reply.get("single_s") or 0.0)
        samples: dict[int, list[dict[str, Any]]] = {0: [], 1: []}
        try:
            if ids:
                self._sample(st, ids, single)
            for s in list(ids):
                if s in self.dead:
                    continue
                reply = self.call(s, {"op": "row", "id": ids[s]})
                if reply is not None:
                    rows[s], samples[s] = reply["row"], reply["samples"]
        except RuntimeError as exc:
            for s in ids:
                if s not in self.dead:
                    try:
                        self.call(s, {"op": "close", "id": ids[s]})
                    except RuntimeError:
                        pass
                    rows[s] = {**rows[s], "status": "error", "message": str(exc)[:500], "samples": 0}
                    samples[s] = []
        like = next(iter(rows.values()), None)
        for s in (0, 1):
            if s in self.dead and (s not in rows or s in ids or rows[s].get("status") in ("ok", "mismatch")):
                if inc == 0 or s not in st.rows:
                    rows[s] = _bare_row(self.run_ids[s], kernel, problem, cfg.seed, "error", self.dead[s], like)
                else:  # died in a later incarnation: the row keeps what the earlier ones measured
                    continue
            if s not in rows:
                continue
            for smp in samples[s]:
                smp["sample"] = inc * INCARNATION_STRIDE + int(smp["sample"])
            if inc == 0 or st.rows.get(s, {}).get("status") not in ("ok", "mismatch") or \
                    rows[s].get("status") not in ("ok", "mismatch"):
                st.rows[s] = rows[s]
            st.samples[s].extend(samples[s])
        if inc == 0:
            both_open = len(ids) == 2 and not self.dead
            if not both_open:
                st.plan = []
        elif len(ids) < 2 or any(r.get("status") not in ("ok", "mismatch") for r in rows.values()):
            self.finish(st)  # a later incarnation failed: the row stops here with what it has
        slow = [t for t in single.values() if t > cfg.max_call]
        if slow:
            self.cut[(kernel, problem.series())] = (problem.k, max(slow))

    def _sample(self, st: _RowState, ids: dict[int, int], single: dict[int, float]) -> None:
        cfg = self.config
        if self.incarnation == 0:
            first = min(ids)  # the base when it is open: both sides use its loop count
            if max(single.values()) > min(cfg.max_call, LONG_CALL * cfg.min_time * SAMPLE_SHARE):
                loops, pairs, best_of = 1, min(self.pairs, SLOW_ROW_PAIRS), 1
                st.warm = False  # the open's warm-up call is enough for a call this long
            else:
                budget = cfg.min_time * SAMPLE_SHARE
                reply = self.call(first, {"op": "autorange", "id": ids[first], "min_time": budget / BEST_OF})
                if reply is None:
                    return
                loops, call_s = int(reply["loops"]), float(reply["best_s"])
                timing = loops * call_s
                best_of = max(MIN_BEST_OF, min(BEST_OF, int(round(budget / timing)))) if timing > 0 else BEST_OF
                pairs = self.pairs
                if timing * best_of > budget * 1.5:  # long calls: fewer pairs keep the row's cost bounded
                    pairs = max(min(MIN_PAIRS, self.pairs), math.ceil(self.pairs * budget / (timing * best_of)))
            st.loops, st.best_of = loops, best_of
            st.plan = split_pairs(pairs, self.incarnations) if len(ids) == 2 else [pairs]
        loops, best_of, pairs = st.loops, st.best_of, st.plan[self.incarnation]
        if st.warm:
            # One untimed sample per side first: a fresh worker's first sample (and the
            # new side's, which has not autoranged) would pay for caches and pages.
            for s in list(ids):
                if s not in self.dead:
                    self.call(s, {"op": "sample", "id": ids[s], "loops": loops, "best_of": 1, "keep": False})
        for i in range(pairs):
            for s in abba_order(i):
                if s in ids and s not in self.dead:
                    self.call(s, {"op": "sample", "id": ids[s], "loops": loops, "best_of": best_of,
                                  "jitter": self.jitter})
            if all(s in self.dead for s in ids):
                return


def measuring_cpu() -> int | None:
    """The CPU both workers are pinned to while they measure (None where affinity is unknown)."""
    return max(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def spare_cpus() -> set[int] | None:
    """CPUs other than :func:`measuring_cpu`, where the next incarnation's workers import meanwhile."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = set(os.sched_getaffinity(0))
    rest = cpus - {max(cpus)}
    return rest or None


def spawn_workers(sides: Sequence[Side]) -> list[WorkerClient]:
    """The next incarnation's workers, started now on the spare CPUs (their imports take about a second)."""
    clients = [WorkerClient(side) for side in sides]
    try:
        for c in clients:
            c.spawn(spare_cpus())
    except BaseException:
        for c in clients:
            c.stop()
        raise
    return clients


def start_workers(clients: Sequence[WorkerClient], spawned: bool = False) -> None:
    """Start both workers (in parallel: the imports take most of a second), check their hellos, pin them.

    Both on the same CPU: on a shared machine (or with SMT siblings) the CPUs are
    not alike, and a worker stays where the scheduler last put it, so two workers
    on two CPUs differ for reasons of their own (A/A rows were 10-40 % apart with
    tight intervals). On one CPU they take turns in the same place.
    """
    try:
        if not spawned:
            for c in clients:
                c.spawn()
        for c in clients:
            c.handshake()
    except BaseException:
        for c in clients:
            c.stop()
        raise
    cpu = measuring_cpu()
    if cpu is not None:
        for c in clients:
            c.request({"op": "pin", "cpus": [cpu]})


def run_ab(config: SweepConfig, base: Side, new: Side, out: str | Path, *, pairs: int = DEFAULT_PAIRS,
           command: Sequence[str] | None = None, progress: Progress | None = None,
           incarnations: int = INCARNATIONS, threshold: float | None = None, alpha: float = 0.01) -> ABResult:
    """Measure ``config`` on two sides, sampling in ABBA turns; write ``out/base`` and ``out/new``.

    Parameters
    ----------
    config : SweepConfig
        The grid and measurement settings (``min_time``, ``max_call``, ``seed``,
        ...); ``repeat`` is replaced by ``pairs``.
    base, new : Side
        The two environments.
    out : path
        A new (or empty) directory.
    pairs : int
        Samples per side and row, taken in pairs.
    incarnations : int
        Pairs of fresh workers each row's pairs are spread over (at most ``pairs``).
    threshold, alpha : float, optional
        The verdict's settings (as in :func:`symbench.analysis.paired.paired_verdict`).
        With a threshold, rows that are ``noise`` after the incarnations take
        ``incarnations * EXTEND`` more (:meth:`ABRun.undecided`); without one, none do.
    command : sequence of str, optional
        The command line recorded in both ``run.json``.
    progress : Progress, optional

    Returns
    -------
    ABResult

    Raises
    ------
    SymbenchError
        A side without an interpreter or without symbench, a worker speaking
        another protocol version, an unknown kernel, an unusable ``out``.
    """
    if pairs < 1:
        raise SymbenchError(f"--pairs {pairs} must be at least 1")
    progress = progress or NoProgress()
    t0 = time.perf_counter()
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SymbenchError(f"--out {str(out)!r} exists and is not an empty directory; choose a new directory")
    clients = [WorkerClient(base), WorkerClient(new)]
    upcoming: list[WorkerClient] = []
    result = ABResult(out, pairs=pairs)
    writers: list[RunWriter] = []
    run = None
    try:
        start_workers(clients)
        known = list(dict.fromkeys([*clients[0].kernels, *clients[1].kernels]))
        jobs = plan_names(config, known)
        stamp = new_run_id()
        run_ids = [f"{stamp}-base", f"{stamp}-new"]
        used = sorted({n for _, names in jobs for n in names})
        cmd = list(command) if command is not None else list(sys.argv)
        for s, c in enumerate(clients):
            reply = c.request({"op": "meta", "config": config.to_dict(), "run_id": run_ids[s], "command": cmd,
                               "kernels": used})
            meta = {**reply["meta"], "ab": {"side": c.side.label, "python": c.side.python, "env": c.side.env,
                                            "pairs": pairs, "partner": str(out / ("new", "base")[s]),
                                            "started": utcnow()}}
            with interrupt.critical():
                writers.append(RunWriter.create(out / c.side.label, meta))
        incarnations = max(1, min(incarnations, pairs))
        run = ABRun(config, clients, writers, run_ids, pairs, incarnations)
        total = sum(len(n) for _, n in jobs)
        progress.start(total * incarnations)
        try:
            if incarnations > 1:
                upcoming = spawn_workers([base, new])
            for problem, names in jobs:
                for name in names:
                    run.measure(problem, name)
                    result.rows += 1
                    progress.advance(f"{name} {problem.label()}")
            planned, extended, inc = incarnations, False, 1
            while not run.dead:  # a side that died stays dead: the rows keep what they have
                if inc >= run.incarnations:
                    more = planned * EXTEND
                    if extended or threshold is None or more < 1 or planned < 2:
                        break
                    extended = True
                    undecided = run.undecided(threshold, alpha)
                    if not undecided:
                        break
                    run.extend(undecided, more)
                    progress.advance(f"{len(undecided)} undecided rows: {more} more incarnations", 0)
                for c in clients:
                    c.stop()
                try:
                    if upcoming:
                        clients[:], upcoming = upcoming, []
                    else:  # the extension's first workers: whether they are needed was just decided
                        clients[:] = spawn_workers([base, new])
                    start_workers(clients, spawned=True)
                except (SymbenchError, WorkerDied, OSError) as exc:
                    run.dead[1] = str(exc)
                    break
                if inc + 1 < run.incarnations:
                    upcoming = spawn_workers([base, new])
                run.incarnation = inc
                run.next_incarnation()
                if inc < planned:
                    progress.advance(f"incarnation {inc + 1} of {planned}", total)
                inc += 1
        except KeyboardInterrupt:
            result.interrupted = True
        finally:
            progress.stop()
    finally:
        for c in [*clients, *upcoming]:
            c.stop()
        if run is not None:
            run.finish_all()
            result.dead = {("base", "new")[s]: why for s, why in run.dead.items()}
        with interrupt.critical():
            for w in writers:
                try:
                    w.finish(complete=not result.interrupted, interrupted=result.interrupted)
                finally:
                    w.close()  # release the run directory's lock now, not when the writer is collected
    result.elapsed_s = time.perf_counter() - t0
    return result


__all__ = ["ABResult", "ABRun", "DEFAULT_PAIRS", "EXTEND", "INCARNATIONS", "INCARNATION_STRIDE", "LONG_CALL", "Side", "WorkerClient", "WorkerDied", "abba_order", "parse_env",
           "merge_row", "plan_names", "resolve_python", "run_ab", "split_pairs", "start_workers"]
