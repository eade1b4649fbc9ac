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
so a pair compares like with like.

Each side's rows and samples go to an ordinary run directory (``DIR/base``,
``DIR/new``); sample ``i`` of a row in one is paired with sample ``i`` of the
same row in the other (:mod:`symbench.analysis.paired` does the statistics).
"""

from __future__ import annotations

import fnmatch
import math
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Mapping, Sequence

from symbench.config import SweepConfig
from symbench.errors import KernelError, SymbenchError
from symbench.problem import Problem
from symbench.store import RunWriter, new_run_id, utcnow
from symbench.sweep import interrupt
from symbench.sweep.measure import NoProgress, Progress
from symbench.sweep.worker import PROTOCOL

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
#: One side's sample lasts about ``SAMPLE_SHARE * min_time``: a row's 2 x pairs
#: samples then cost about what a sweep's samples of it cost (the budget: ab at
#: most 2.5x a sweep of the same config).
SAMPLE_SHARE = 0.5
#: Fewest pairs of a row whose single call is longer than a sample's budget
#: (with alpha 0.01 the sign test needs 7; 10 leave room for a wild pair).
MIN_PAIRS = 10
#: Rows whose single call exceeds ``max_call`` take this many pairs of one call
#: (the fewest with which a one-sided sign test can reach p < 0.01 is 7).
SLOW_ROW_PAIRS = 8
#: Seconds a worker may take to import symbench and its kernels and say hello.
HELLO_TIMEOUT_S = 120.0


class WorkerDied(Exception):
    """A worker closed its output (crashed, was killed, or exited)."""


@dataclass
class Side:
    """One side of the comparison: an interpreter with symbench, and extra environment variables.

    Attributes
    ----------
    label : str
        ``"base"`` or ``"new"``.
    python : str
        The interpreter (already resolved from a venv directory).
    env : dict of str
        Variables set for the side's worker on top of this process's environment.
    option : str
        The command-line option that named the side, for error messages.
    """

    label: str
    python: str
    env: dict[str, str] = field(default_factory=dict)
    option: str = ""


def resolve_python(spec: str, option: str) -> str:
    """The interpreter named by ``spec``: itself, or ``DIR/bin/python`` for a venv directory.

    Raises
    ------
    SymbenchError
        When there is no such interpreter.
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        for cand in (path / "bin" / "python", path / "Scripts" / "python.exe"):
            if cand.exists():
                return str(cand)
        raise SymbenchError(f"{option} {spec!r} is a directory but not a venv (no bin/python in it); "
                            "give an interpreter or a venv directory with symbench installed")
    if path.exists():
        if not os.access(path, os.X_OK):
            raise SymbenchError(f"{option} {spec!r} is not executable; give a Python interpreter or a venv directory")
        return str(path)
    if os.sep not in spec:  # a bare name such as python3: look it up on PATH
        import shutil

        found = shutil.which(spec)
        if found:
            return found
    raise SymbenchError(f"{option} {spec!r}: no such interpreter or venv directory")


def parse_env(items: Sequence[str] | None, option: str) -> dict[str, str]:
    """``KEY=VALUE`` items as a dict; a malformed one is a :class:`SymbenchError`."""
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = str(item).partition("=")
        if not sep or not key or not key.replace("_", "a").isalnum():
            raise SymbenchError(f"{option} {item!r}: expected KEY=VALUE (e.g. {option} OMP_NUM_THREADS=1)")
        out[key] = value
    return out


class WorkerClient:
    """The parent's end of one worker process."""

    def __init__(self, side: Side) -> None:
        self.side = side
        self.proc: subprocess.Popen[str] | None = None
        self.hello: dict[str, Any] = {}
        self._stderr: IO[bytes] | None = None
        self._next = 0

    def start(self) -> None:
        """Start the worker and check its hello; bad sides are :class:`SymbenchError`."""
        side = self.side
        self._stderr = tempfile.TemporaryFile()
        env = {**os.environ, **side.env}
        try:
            # Its own session: Ctrl-C in the terminal goes to the parent only, which
            # stops the run, keeps what was measured and then closes the workers.
            self.proc = subprocess.Popen([side.python, "-m", "symbench", "worker"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1,
                                         env=env, start_new_session=True)
        except OSError as exc:
            raise SymbenchError(f"{side.option} {side.python!r}: cannot start it ({exc.strerror})") from None
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], HELLO_TIMEOUT_S)
        line = self.proc.stdout.readline() if ready else ""
        try:
            hello = json.loads(line) if line else None
        except ValueError:
            hello = None
        if not isinstance(hello, dict) or hello.get("type") != "hello":
            self.stop()
            err = self.stderr_tail()
            if "No module named symbench" in err:
                raise SymbenchError(f"{side.option} {side.python}: symbench is not installed in that interpreter; "
                                    "install it there (pip install symbench) or give another one")
            if "No such command" in err or "worker" in err and "Usage" in err:
                raise SymbenchError(f"{side.option} {side.python}: its symbench has no worker command "
                                    "(too old for ab); install the same symbench version on both sides")
            why = err.splitlines()[-1] if err.strip() else ("no answer" if not ready else "no hello")
            raise SymbenchError(f"{side.option} {side.python}: the symbench worker did not start ({why})")
        if hello.get("protocol") != PROTOCOL:
            self.stop()
            raise SymbenchError(f"{side.option} {side.python}: its symbench {hello.get('symbench')} speaks worker "
                                f"protocol {hello.get('protocol')!r}, this one speaks {PROTOCOL}; install the same "
                                "symbench version on both sides")
        self.hello = hello

    @property
    def kernels(self) -> list[str]:
        return list(self.hello.get("kernels") or [])

    def stderr_tail(self, lines: int = 20) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode(errors="replace")
        except (OSError, ValueError):
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def request(self, msg: Mapping[str, Any]) -> dict[str, Any]:
        """Send one request and wait for its reply.

        Raises
        ------
        WorkerDied
            The worker's output ended (it crashed or was killed).
        RuntimeError
            The worker answered ``ok: false`` (a request it could not serve).
        """
        proc = self.proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise WorkerDied("the worker is not running")
        try:
            proc.stdin.write(json.dumps(msg, separators=(",", ":")) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        except (BrokenPipeError, OSError, ValueError):
            line = ""
        if not line:
            raise WorkerDied(self.death_note())
        reply = json.loads(line)
        if not reply.get("ok"):
            raise RuntimeError(str(reply.get("error", "the worker refused the request")))
        return reply

    def death_note(self) -> str:
        code = None
        if self.proc is not None:
            try:
                code = self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                code = None
        tail = self.stderr_tail(1).strip()
        return f"the {self.side.label} worker died (exit status {code})" + (f": {tail}" if tail else "")

    def new_id(self) -> int:
        self._next += 1
        return self._next

    def stop(self) -> None:
        """Ask the worker to exit; kill it if it does not within a few seconds."""
        proc = self.proc
        if proc is None:
            return
        try:
            if proc.poll() is None and proc.stdin is not None:
                proc.stdin.close()  # end of input: the worker exits
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            proc.kill()
            proc.wait()
        for stream in (proc.stdout,):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


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


class ABRun:
    """State of one ab run: the two workers, their writers, and who is still alive."""

    def __init__(self, config: SweepConfig, clients: list[WorkerClient], writers: list[RunWriter],
                 run_ids: list[str], pairs: int) -> None:
        self.config, self.clients, self.writers, self.run_ids, self.pairs = config, clients, writers, run_ids, pairs
        self.dead: dict[int, str] = {}
        self.cut: dict[tuple[str, tuple], tuple[int, float]] = {}
        self.settings = config.to_dict()

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
        """Both sides' rows of one (kernel, problem), sampled in ABBA turns."""
        cfg = self.config
        cut = self.cut.get((kernel, problem.series()))
        if cut and problem.k > cut[0]:
            msg = (f"not run: one call at k={cut[0]} took {cut[1]:.3g} s, over --max-call {cfg.max_call:g} s")
            for s in (0, 1):
                self.write(s, _bare_row(self.run_ids[s], kernel, problem, cfg.seed, "timeout", msg))
            return
        ids: dict[int, int] = {}
        rows: dict[int, dict[str, Any]] = {}
        single: dict[int, float] = {}
        for s in self.alive():
            rid = self.clients[s].new_id()
            try:
                reply = self.call(s, {"op": "open", "id": rid, "kernel": kernel, "problem": problem.as_dict(),
                                      "config": self.settings, "run_id": self.run_ids[s]})
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
                self._sample(problem, kernel, ids, single)
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
                self.write(s, _bare_row(self.run_ids[s], kernel, problem, cfg.seed, "error", self.dead[s], like))
            elif s in rows:
                self.write(s, rows[s], samples[s])
        slow = [t for t in single.values() if t > cfg.max_call]
        if slow:
            self.cut[(kernel, problem.series())] = (problem.k, max(slow))

    def _sample(self, problem: Problem, kernel: str, ids: dict[int, int], single: dict[int, float]) -> None:
        cfg = self.config
        first = min(ids)  # the base when it is open: both sides use its loop count
        if max(single.values()) > cfg.max_call:
            loops, pairs, best_of = 1, min(self.pairs, SLOW_ROW_PAIRS), 1
        else:
            budget = cfg.min_time * SAMPLE_SHARE
            reply = self.call(first, {"op": "autorange", "id": ids[first], "min_time": budget / BEST_OF})
            if reply is None:
                return
            loops, call_s = int(reply["loops"]), float(reply["best_s"])
            timing = loops * call_s
            best_of = max(1, min(BEST_OF, int(round(budget / timing)))) if timing > 0 else BEST_OF
            pairs = self.pairs
            if timing * best_of > budget * 1.5:  # long calls: fewer pairs keep the row's cost bounded
                pairs = max(min(MIN_PAIRS, self.pairs), math.ceil(self.pairs * budget / (timing * best_of)))
            # One untimed sample per side first: the new side has not been
            # autoranged, and its first sample would pay for caches and pages.
            for s in list(ids):
                if s not in self.dead:
                    self.call(s, {"op": "sample", "id": ids[s], "loops": loops, "best_of": BEST_OF, "keep": False})
        for i in range(pairs):
            for s in abba_order(i):
                if s in ids and s not in self.dead:
                    self.call(s, {"op": "sample", "id": ids[s], "loops": loops, "best_of": best_of})
            if all(s in self.dead for s in ids):
                return


def run_ab(config: SweepConfig, base: Side, new: Side, out: str | Path, *, pairs: int = DEFAULT_PAIRS,
           command: Sequence[str] | None = None, progress: Progress | None = None) -> ABResult:
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
    result = ABResult(out, pairs=pairs)
    writers: list[RunWriter] = []
    run = None
    try:
        for c in clients:
            c.start()
        # Both workers on the same CPU: on a shared machine (or with SMT siblings) the
        # CPUs are not alike, and a worker stays where the scheduler last put it, so
        # two workers on two CPUs differ for reasons of their own (A/A rows were 10-40 %
        # apart with tight intervals). On one CPU they take turns in the same place.
        if hasattr(os, "sched_getaffinity"):
            cpu = max(os.sched_getaffinity(0))
            for c in clients:
                c.request({"op": "pin", "cpus": [cpu]})
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
        run = ABRun(config, clients, writers, run_ids, pairs)
        progress.start(sum(len(n) for _, n in jobs))
        try:
            for problem, names in jobs:
                for name in names:
                    run.measure(problem, name)
                    result.rows += 1
                    progress.advance(f"{name} {problem.label()}")
        except KeyboardInterrupt:
            result.interrupted = True
        finally:
            progress.stop()
    finally:
        for c in clients:
            c.stop()
        if run is not None:
            result.dead = {("base", "new")[s]: why for s, why in run.dead.items()}
        with interrupt.critical():
            for w in writers:
                try:
                    w.finish(complete=not result.interrupted, interrupted=result.interrupted)
                finally:
                    w.close()  # release the run directory's lock now, not when the writer is collected
    result.elapsed_s = time.perf_counter() - t0
    return result


__all__ = ["ABResult", "ABRun", "DEFAULT_PAIRS", "Side", "WorkerClient", "WorkerDied", "abba_order", "parse_env",
           "plan_names", "resolve_python", "run_ab"]
