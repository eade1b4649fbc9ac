"""A measuring worker: one process that prepares kernels and times samples on request.

``python -m symbench worker`` (a hidden command) speaks a small protocol of
JSON lines: requests on stdin, one reply per request on stdout. The parent
decides *when* each sample is taken; the worker only knows how to measure in
its own environment (its interpreter, its libraries, its environment
variables). ``symbench ab`` runs one worker per side and alternates samples
between them; a sweep in rounds can run each round in a fresh worker the same
way. The worker is generic: it knows nothing of A/B, pairs or verdicts.

Protocol (version :data:`PROTOCOL`)
-----------------------------------
First line from the worker, unasked::

    {"type": "hello", "protocol": 1, "symbench": "0.1.0", "python": "...", "kernels": [...]}

Then one reply per request, in order. Every reply has ``"ok": true`` or
``"ok": false, "error": "..."`` (a request the worker could not serve; a
kernel failure is *not* such an error, it is a row with status ``error``).

``{"op": "meta", "config": {...}, "run_id": "...", "kernels": [...]}``
    ``{"meta": {...}}``: the ``run.json`` facts of this environment.
``{"op": "open", "id": ID, "kernel": NAME, "problem": {...}, "config": {...}, "run_id": "...", "single": bool}``
    Precheck, prepare, warm up, verify and time one call (not with ``single``
    false: ``single_s`` is then null). ``{"row": {...}, "single_s": float |
    null, "open": bool}``; ``open`` is false when the pair was not prepared
    (skipped, error): its row is final.
``{"op": "autorange", "id": ID, "min_time": float}``
    ``{"loops": int, "best_s": float}``: the loop count that makes a timing last
    ``min_time`` (default: the config's).
``{"op": "sample", "id": ID, "loops": N, "best_of": M, "keep": bool, "jitter": bool}``
    ``{"seconds": float}``: seconds per call of one sample: the fastest of ``M``
    (default 1) back-to-back timings of ``N`` calls; kept for the row unless
    ``keep`` is false (a warm-up sample). With ``jitter`` (default false) the
    heap placement of the kernel's temporaries is moved before each timing
    (:class:`_HeapJitter`). Older workers ignore the field.
``{"op": "row", "id": ID}``
    ``{"row": {...}, "samples": [...]}``: the row with statistics of the kept samples; closes ``ID``.
``{"op": "close", "id": ID}``
    Releases ``ID`` without a row.
``{"op": "problem", "problem": {...}, "kernels": [NAME, ...], "config": {...}, "run_id": "...", "round": R, "source": "grid", "cuts": [[NAME, K, SECONDS], ...]}``
    Measure the kernels of one problem as a sweep does (prepared, verified,
    sampled in turns where they interleave): ``{"rows": [{"row": {...},
    "samples": [...]}, ...], "noise": {...}, "cuts": [...]}``. ``noise`` is the
    reading of the problem's window (:class:`symbench.machine.noise.NoiseProbe`,
    this process's own CPU time excluded); ``cuts`` are the kernels whose single
    call exceeded ``max_call`` in this problem's series (larger k of them are
    not run; send them back with the series' next problems). Rows of one round
    share one measurer per (config, run_id, round).
``{"op": "pin", "cpus": [N, ...]}``
    ``{"cpus": [...]}``: restrict this process to those CPUs (where the OS allows).
``{"op": "bye"}``
    The worker exits 0 (so does end of input).

The protocol's stdout is a private copy of file descriptor 1; fd 1 itself is
pointed at stderr, so that a library printing to stdout cannot corrupt it.
SIGINT is ignored: Ctrl-C in a terminal reaches the whole process group, and
the parent, which holds what was measured, decides what happens (it closes
the workers' input and they exit).
"""

from __future__ import annotations

import gc
import json
import math
import os
import signal
import sys
import time
from contextlib import ExitStack
from typing import IO, Any

from symbench.sweep.protocol import PROTOCOL  # noqa: F401  (also exported here)

#: Hidden test hook: ``module:attr`` (comma-separated) naming extra kernels to register in
#: the worker, as plug-ins would be; tests use it instead of installing an entry point.
PLUGINS_ENV = "SYMBENCH_PLUGINS"


def _jsonable(value: Any) -> Any:
    """NumPy scalars and NaN as JSON can carry them (NaN as null)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _Open:
    """One (kernel, problem) prepared in this worker."""

    def __init__(self, kernel: Any, problem: Any, row: dict[str, Any], prepared: Any, clock: Any,
                 single: float | None) -> None:
        self.kernel, self.problem, self.row, self.prepared, self.clock = kernel, problem, row, prepared, clock
        self.single = single  # None: the parent asked not to time the single call (``"single": false``)
        self.loops = 0
        self.samples: list[float] = []
        self.host: list[float] = []


class _Missing:
    """A kernel named in a request but not installed here: enough of one for a row's base."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.method = self.library = self.device = ""


def _not_installed(measurer: Any, name: str, problem: Any, source: str) -> dict[str, Any]:
    """The ``skipped`` row of a kernel this worker's environment does not have."""
    return {**measurer.base_row(_Missing(name), problem, source), "status": "skipped",
            "message": "kernel not installed in this environment"}


class _HeapJitter:
    """Moves where malloc places a kernel's next temporaries, at random, before a timing.

    A kernel that allocates per call (numpy.convolve copies the reversed filter
    and allocates its output) runs at a speed that depends on where those
    blocks land modulo a cache line: numpy.convolve of 65536 x 257 points took
    2.20 or 2.57 ms in one process depending only on a small block allocated
    before it. Which of those a process gets is an accident of its history, so
    two workers differed systematically (one per-process offset for all their
    pairs). ``shift`` holds a block of a random size (16 to 4096 bytes) in place
    of the previous one; the kernel's blocks then land elsewhere, and each
    timing sees a random placement instead of the process's one.
    """

    def __init__(self) -> None:
        import ctypes
        import ctypes.util
        import random

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        self._malloc, self._free = libc.malloc, libc.free
        self._malloc.restype, self._malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
        self._free.restype, self._free.argtypes = None, [ctypes.c_void_p]
        self._rng = random.Random()
        self._held: int | None = None

    def shift(self) -> None:
        block = self._malloc(16 * self._rng.randint(1, 256))
        if self._held:
            self._free(self._held)
        self._held = block


_jitter: Any = None


def _heap_jitter() -> Any:
    """The process's :class:`_HeapJitter`, or None where there is no C malloc to call."""
    global _jitter
    if _jitter is None:
        try:
            _jitter = _HeapJitter()
        except (OSError, AttributeError):
            _jitter = False
    return _jitter or None


class Worker:
    """Serves the protocol's requests; one instance per process."""

    def __init__(self) -> None:
        self.opened: dict[Any, _Open] = {}
        self._measurers: dict[Any, Any] = {}
        self._inputs_key: Any = None
        self._inputs: Any = None
        self._threads: int | None = None
        self._limits = ExitStack()
        self._round: Any = None
        self._round_key: Any = None

    # -- helpers --------------------------------------------------------------------------

    def hello(self) -> dict[str, Any]:
        from symbench import __version__
        from symbench.kernels.registry import all_kernels

        return {"type": "hello", "protocol": PROTOCOL, "symbench": __version__, "python": sys.executable,
                "pid": os.getpid(), "kernels": sorted(all_kernels())}

    def _measurer(self, msg: dict[str, Any]) -> Any:
        from symbench.config import SweepConfig
        from symbench.sweep.measure import Measurer

        return Measurer(SweepConfig.from_dict(msg["config"]), str(msg.get("run_id", "worker")))

    def _set_threads(self, threads: int) -> None:
        # Entering the thread limits costs ~0.1 ms: hold them while the problem's
        # thread count stays the same rather than around each sample.
        if self._threads == threads:
            return
        from symbench.kernels.base import thread_limits

        self._limits.close()
        self._limits = ExitStack()
        self._limits.enter_context(thread_limits(threads))
        self._threads = threads

    def _problem_inputs(self, problem: Any, seed: int) -> Any:
        from symbench.sweep.measure import problem_inputs

        key = (problem.key(), seed)
        if key != self._inputs_key:
            self._inputs, self._inputs_key = None, None
            self._inputs = problem_inputs(problem, seed)
            self._inputs_key = key
        return self._inputs

    # -- operations -----------------------------------------------------------------------

    def op_meta(self, msg: dict[str, Any]) -> dict[str, Any]:
        from symbench.config import SweepConfig
        from symbench.kernels.registry import all_kernels
        from symbench.sweep.runner import run_meta

        config = SweepConfig.from_dict(msg["config"])
        have = all_kernels()
        kernels = {n: have[n] for n in msg.get("kernels") or [] if n in have}
        return {"meta": run_meta(config, str(msg.get("run_id", "")), msg.get("command") or [], kernels)}

    def op_problem(self, msg: dict[str, Any]) -> dict[str, Any]:
        from symbench.config import SweepConfig
        from symbench.kernels.registry import all_kernels
        from symbench.machine.noise import NoiseRecord
        from symbench.problem import Problem
        from symbench.sweep.measure import Measurer, measure_round

        key = (json.dumps(msg["config"], sort_keys=True), str(msg.get("run_id", "worker")), int(msg.get("round", 0)))
        if self._round_key != key:
            self._round = Measurer(SweepConfig.from_dict(msg["config"]), key[1], noise=NoiseRecord(), round=key[2])
            self._round_key = key
        measurer = self._round
        problem = Problem.from_mapping(msg["problem"])
        source = str(msg.get("source") or "grid")
        have = all_kernels()
        names = [str(n) for n in msg.get("kernels") or []]
        rows = [{"row": _not_installed(measurer, name, problem, source), "samples": []}
                for name in names if name not in have]
        measured, window, cuts = measure_round(measurer, problem, [have[n] for n in names if n in have], source,
                                               msg.get("cuts") or [])
        rows += [{"row": row, "samples": samples} for row, samples in measured]
        return {"rows": rows, "noise": window, "cuts": [list(c) for c in cuts]}

    def op_pin(self, msg: dict[str, Any]) -> dict[str, Any]:
        cpus = {int(c) for c in msg.get("cpus") or []}
        if cpus and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, cpus)
        return {"cpus": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []}

    def op_open(self, msg: dict[str, Any]) -> dict[str, Any]:
        from symbench.kernels.base import close_quietly
        from symbench.kernels.registry import all_kernels
        from symbench.problem import Problem
        from symbench.sweep.timing import settle_heap

        # The rows closed before are garbage now; what survives lives for the worker, and
        # freezing it keeps the collections of this row short (see settle_heap).
        settle_heap()
        measurer = self._measurer(msg)
        problem = Problem.from_mapping(msg["problem"])
        name = str(msg["kernel"])
        kernel = all_kernels().get(name)
        if kernel is None:
            return {"row": _not_installed(measurer, name, problem, "grid"), "single_s": None, "open": False}
        row = measurer.base_row(kernel, problem, "grid")
        pre = measurer.precheck(kernel, problem)
        if pre:
            row["status"], row["message"] = pre
            return {"row": row, "single_s": None, "open": False}
        self._set_threads(problem.threads)
        prepared = None
        try:
            x, h, y_ref = self._problem_inputs(problem, measurer.config.seed)
            prepared, clock = measurer.setup(kernel, problem, x, h, y_ref, row)
            # The parent needs one call's time once per row (to plan its samples); later
            # incarnations skip it, which on a row of 67 ms calls saves a call per side each.
            single = clock.measure(prepared.call, 1) if msg.get("single", True) else None
        except Exception as exc:  # a kernel failure is a row, as in a sweep
            if prepared is not None:
                close_quietly(prepared)
            return {"row": measurer.error_row(row, exc), "single_s": None, "open": False}
        self.opened[msg["id"]] = _Open(kernel, problem, row, prepared, clock, single)
        self._measurers[msg["id"]] = measurer
        return {"row": row, "single_s": single, "open": True}

    def _get(self, msg: dict[str, Any]) -> _Open:
        o = self.opened.get(msg.get("id"))
        if o is None:
            raise KeyError(f"no open measurement with id {msg.get('id')!r}")
        return o

    def op_autorange(self, msg: dict[str, Any]) -> dict[str, Any]:
        from symbench.sweep.timing import autorange

        o = self._get(msg)
        self._set_threads(o.problem.threads)
        min_time = float(msg.get("min_time") or self._measurers[msg["id"]].config.min_time)
        gc.disable()
        try:
            loops, best = autorange(o.prepared.call, o.clock, min_time)
        finally:
            gc.enable()
        return {"loops": loops, "best_s": best}

    def op_sample(self, msg: dict[str, Any]) -> dict[str, Any]:
        o = self._get(msg)
        loops, best_of = int(msg["loops"]), int(msg.get("best_of", 1))
        if loops < 1 or best_of < 1:
            raise ValueError(f"loops and best_of must be >= 1, got {loops} and {best_of}")
        self._set_threads(o.problem.threads)
        # The collector stays out of the timed region; collecting before every
        # sample would cost milliseconds per sample, so it runs at open/row only.
        jitter = _heap_jitter() if msg.get("jitter") else None
        gc.disable()
        try:
            times = []
            for _ in range(best_of):
                if jitter is not None:
                    jitter.shift()
                times.append(o.clock.measure(o.prepared.call, loops))
            total = min(times)
        finally:
            gc.enable()
        per_call = total / loops
        if msg.get("keep", True):
            o.loops = loops
            o.samples.append(per_call)
            host_s = getattr(o.clock, "last_host_s", None)
            if host_s is not None:
                o.host.append(host_s / loops)
        return {"seconds": per_call}

    def op_row(self, msg: dict[str, Any]) -> dict[str, Any]:
        from symbench.kernels.base import close_quietly
        from symbench.sweep.timing import Measurement, TimingResult

        o = self._get(msg)
        measurer = self._measurers.pop(msg["id"])
        self.opened.pop(msg["id"], None)
        close_quietly(o.prepared)
        if not o.samples:
            return {"row": o.row, "samples": []}
        # Without a single-call time (a later incarnation's open) the row says NaN, never a made-up number.
        single = o.single if o.single is not None else math.nan
        timing = TimingResult(Measurement(tuple(o.samples), o.loops, tuple(o.host)), single, False)
        samples = measurer.finish(o.row, o.kernel, o.problem, timing, "grid")
        return {"row": o.row, "samples": samples}

    def op_close(self, msg: dict[str, Any]) -> dict[str, Any]:
        from symbench.kernels.base import close_quietly

        o = self.opened.pop(msg.get("id"), None)
        self._measurers.pop(msg.get("id"), None)
        if o is not None:
            close_quietly(o.prepared)
        return {}

    def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        op = msg.get("op")
        fn = getattr(self, f"op_{op}", None) if isinstance(op, str) else None
        if fn is None:
            return {"ok": False, "error": f"unknown op {op!r}"}
        try:
            return {"ok": True, **fn(msg)}
        except Exception as exc:  # a bad request is answered, never fatal
            return {"ok": False, "error": f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]}

    def close(self) -> None:
        from symbench.kernels.base import close_quietly

        for o in self.opened.values():
            close_quietly(o.prepared)
        self.opened.clear()
        self._limits.close()


def _load_plugins() -> None:
    spec = os.environ.get(PLUGINS_ENV, "").strip()
    if not spec:
        return
    import importlib

    from symbench.kernels.registry import register

    for item in spec.split(","):
        module, _, attr = item.strip().partition(":")
        obj = getattr(importlib.import_module(module), attr or "KERNELS")
        for kernel in obj if isinstance(obj, (list, tuple)) else [obj]:
            register(kernel)


def _preload() -> None:
    """Import what every row's reference needs (scipy.signal: most of a second) before the hello.

    ab starts both sides' workers at once and reads their hellos afterwards, so
    these imports run side by side, before the workers are pinned to one CPU
    (several times a job: see :mod:`symbench.sweep.ab`'s incarnations).
    """
    try:
        import scipy.signal  # noqa: F401
    except Exception:  # without scipy the reference falls back to numpy
        pass


def serve(stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> int:
    """Run the worker loop until ``bye`` or end of input; returns the exit status.

    Parameters
    ----------
    stdin, stdout : text streams, optional
        The protocol's streams (default: the process's stdin, and a private
        copy of its stdout while fd 1 is pointed at stderr).
    """
    if stdout is None:
        proto_fd = os.dup(1)
        os.dup2(2, 1)  # stray prints of kernels and libraries go to stderr
        sys.stdout = sys.stderr
        stdout = os.fdopen(proto_fd, "w", buffering=1)
    stdin = stdin or sys.stdin
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread (tests serving in a thread)
        pass
    from symbench.sweep.allocator import steady_heap

    steady_heap()  # as a sweep does: timings must not depend on what the process freed before
    _load_plugins()
    _preload()
    worker = Worker()

    def send(obj: dict[str, Any]) -> None:
        stdout.write(json.dumps(_jsonable(obj), separators=(",", ":")) + "\n")
        stdout.flush()

    send(worker.hello())
    gc.collect()
    # What was imported lives as long as the process: out of the collector's sight
    # (each open settles the heap again, after the kernels' own lazy imports).
    gc.freeze()
    try:
        for line in stdin:
            line = line.strip()
            if not line:
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                send({"ok": False, "error": "not a JSON line"})
                continue
            if not isinstance(msg, dict):
                send({"ok": False, "error": "a request is a JSON object"})
                continue
            if msg.get("op") == "bye":
                send({"ok": True})
                break
            t0 = time.perf_counter()
            reply = worker.handle(msg)
            reply["worker_s"] = time.perf_counter() - t0
            send(reply)
    except BrokenPipeError:  # the parent went away: nothing to report to
        pass
    finally:
        worker.close()
    return 0


__all__ = ["PLUGINS_ENV", "PROTOCOL", "Worker", "serve"]
