"""Adaptive crossover search: ``symbench sweep --adaptive``.

A grid sweep measures every k of the LIST; the crossover report then only
looks at the two measured ks around the flip. The adaptive search measures
what the report needs and little else. For each *series* (a problem without
its k: op, group, dim, n, batch, channels, dtype, mode, threads) and each
(direct, fft) pair of the requested kernels, over the k values of the LIST:

1. **Ends.** Both kernels are measured at the smallest and the largest k.
2. **Bisection on a geometric scale.** With the measured ks so far, the bracket
   is found exactly as the report finds it (:func:`~symbench.analysis.crossover.crossover_position`:
   the first k from which fft is faster at every larger measured k), and the
   k of the LIST nearest to the geometric mean of the bracket's ends is
   measured next, until the ends are neighbours in the LIST.
3. **Guards.** The bracket's claim is "fft faster at k_hi *and every larger k*".
   A lucky dip of one kernel could make bisection stop below the true k\\*,
   so above k_hi the measured ks are filled in until no two are more than
   :data:`GUARD_RATIO` apart; any guard that comes out direct-faster moves the
   bracket up, and bisection resumes.
4. **Near ties, with rounds.** With ``rounds > 1`` the search runs on round 0
   alone and the pooled rounds decide the report's bracket, so a point whose
   round-0 ratio is within :data:`NEAR_TIE` of 1 gets its neighbours in the
   LIST measured too, whichever side of it the bracket is.
5. **Re-measurement.** The verdict is then decided by the report's own
   function (:func:`~symbench.analysis.crossover.find_crossovers`: a bootstrap
   of the raw samples). While it says ``inconclusive``, the points that tie
   (a one-sided Mann-Whitney U test on the raw samples, p >= alpha) are
   measured again with ``repeat`` more samples each, and the search goes on
   from step 2 with the pooled samples (the medians may move the bracket).
   After :data:`MAX_ROUNDS` re-measurements of a point the search gives up:
   the row stays, and ``symbench report`` says ``inconclusive``.

The two kernels of a point are measured together: in turns, sample by sample,
where the runner can interleave them (:mod:`symbench.sweep.interleave`), so that a
change of machine load hits both alike.

Pairs share points, and a point measured for one pair may join another pair's
ks, so the pairs of a series are searched again until none measures anything
new. Kernels in no pair (``auto`` kernels) are then measured at every k the
search visited, so the report can give their regret. A series with no pair at
all (only direct kernels, say) is swept over the full grid, with a warning.

How rows are stored
-------------------
Each (kernel, problem) has **one** row in ``measurements.csv``, as in a grid
sweep, with ``source = adaptive``; it is appended as soon as it is first
measured. A re-measurement appends its samples to ``samples.csv`` under the
same key, numbered after the earlier ones, and then *replaces* the row with
one whose statistics cover all of its samples
(:meth:`symbench.store.RunWriter.replace_row`, an atomic rewrite). So
``samples`` always counts the row's samples, ``store.load`` and the report need
nothing special, and a crash loses at most the measurement in flight
(``--resume`` drops samples numbered past their row's count).

``--resume`` replays the search: every point already on disk is read back
(with its pooled samples) instead of measured, so the search continues where
it stopped. Ctrl-C stops it between two writes, as in a grid sweep.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from symbench.analysis.crossover import DEFAULT_ALPHA, crossover_position
from symbench.analysis.stats import mann_whitney_p
from symbench.errors import SymbenchWarning
from symbench.kernels.base import Kernel, thread_limits
from symbench.problem import KEY_FIELDS, Problem
from symbench.store import COLUMNS, RunWriter
from symbench.sweep import interleave, interrupt
from symbench.sweep.measure import Measurer, Progress, SweepResult, add_noise, problem_inputs
from symbench.sweep.timing import summarize

#: The ``source`` of rows written by the search.
SOURCE = "adaptive"
#: Re-measurements of one point (each adds ``repeat`` samples) before the search gives up on it.
MAX_ROUNDS = 4
#: Above the bracket, neighbouring measured ks may be at most this factor apart.
GUARD_RATIO = 2.0
#: With rounds (``rounds > 1``) the search sees round 0 only, and the pooled rounds decide
#: the report's bracket. A round's ratio of two kernels moves by about 10 % on a shared
#: machine (between processes), so a point whose round-0 ratio is within this factor of 1
#: may come out on the other side once pooled; its neighbours in the LIST are measured too,
#: so that the pooled bracket has neighbouring ends whichever side it falls on. Measured:
#: 3 runs of configs/default.toml with ``adaptive = true`` and 10 rounds kept 87 % of their
#: decided brackets in the next run without this, most misses a bracket such as (3, 513]
#: where round 0 had called the pair one-sided.
NEAR_TIE = 1.3
#: Significance of the Mann-Whitney U test that decides which points to re-measure
#: (the report's bootstrap uses the same alpha by default).
ALPHA = DEFAULT_ALPHA


@dataclass
class Point:
    """One (kernel, problem) measurement, with all of its raw samples."""

    row: dict[str, Any]
    samples: list[float] = field(default_factory=list)
    host: list[float] = field(default_factory=list)
    #: Set when a re-measurement failed: no more rounds for this point.
    exhausted: bool = False

    @property
    def ok(self) -> bool:
        t = self.row.get("time_s")
        return (self.row.get("status") == "ok" and bool(self.samples) and t is not None
                and math.isfinite(float(t)) and float(t) > 0)

    @property
    def median(self) -> float:
        return float(self.row["time_s"])


@dataclass
class Series:
    """A problem without its k, with the ks of the LIST and the kernels requested at each."""

    base: Problem
    ks: list[int]
    kernels: dict[int, list[Kernel]]

    def problem(self, k: int) -> Problem:
        return replace(self.base, k=k)

    def names(self) -> list[str]:
        seen: dict[str, Kernel] = {}
        for k in self.ks:
            for kern in self.kernels[k]:
                seen.setdefault(kern.name, kern)
        return list(seen)

    def kernel(self, name: str) -> Kernel:
        for k in self.ks:
            for kern in self.kernels[k]:
                if kern.name == name:
                    return kern
        raise KeyError(name)


def group_series(jobs: Sequence[tuple[Problem, Sequence[Kernel]]]) -> list[Series]:
    """The jobs of a plan grouped into series (first appearance order, ks ascending)."""
    out: dict[Problem, Series] = {}
    for problem, kernels in jobs:
        base = replace(problem, k=1)
        s = out.setdefault(base, Series(base, [], {}))
        if problem.k not in s.kernels:
            s.ks.append(problem.k)
            s.kernels[problem.k] = []
        for kern in kernels:
            if all(kern.name != other.name for other in s.kernels[problem.k]):
                s.kernels[problem.k].append(kern)
    for s in out.values():
        s.ks.sort()
    return list(out.values())


def geometric_pick(inner: Sequence[int], lo: float, hi: float) -> int:
    """The k of ``inner`` (strictly between lo and hi) nearest to sqrt(lo * hi) in log k."""
    target = 0.5 * (math.log(lo) + math.log(hi))
    return min(inner, key=lambda k: (abs(math.log(k) - target), k))


def _between(usable: Sequence[int], measured: Sequence[int], lo: int, hi: int) -> list[int]:
    """The ks of ``usable`` strictly between ``lo`` and ``hi`` not measured yet."""
    done = set(measured)
    return [k for k in usable if lo < k < hi and k not in done]


def _plain(value: Any) -> Any:
    """Python scalars for values read back through pandas (the store writes repr of floats)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _separated(slow: Sequence[float], fast: Sequence[float], alpha: float) -> bool:
    """One-sided Mann-Whitney U: are ``slow``'s samples larger than ``fast``'s (p < alpha)?"""
    if len(slow) < 2 or len(fast) < 2:
        return False
    return mann_whitney_p(slow, fast, "greater") < alpha


class AdaptiveSearch:
    """The adaptive sweep of a plan (see the module docstring).

    Parameters
    ----------
    measurer : symbench.sweep.measure.Measurer
        Measures one (kernel, problem) into a row and its samples.
    writer : symbench.store.RunWriter
        The run directory; rows already in it (``--resume``) are read back, not measured.
    jobs : sequence of (Problem, kernels)
        From :func:`symbench.sweep.runner.plan`.
    result, progress
        The runner's :class:`~symbench.sweep.measure.SweepResult` and progress sink.
    machine_id : str
        The run's machine id (the report's bootstrap is seeded with it).
    """

    def __init__(self, measurer: Measurer, writer: RunWriter, jobs: Sequence[tuple[Problem, Sequence[Kernel]]],
                 result: SweepResult, progress: Progress, *, machine_id: str) -> None:
        self.measurer = measurer
        self.writer = writer
        self.series = group_series(jobs)
        self.result = result
        self.progress = progress
        self.machine_id = machine_id
        self.repeat = int(measurer.config.repeat)
        self.points: dict[tuple[str, Problem], Point] = {}
        self._inputs: OrderedDict[Problem, tuple[np.ndarray, np.ndarray, np.ndarray]] = OrderedDict()
        self._load_existing()

    # -- bookkeeping -----------------------------------------------------------------
    def _load_existing(self) -> None:
        """Read back every row (and its samples) of the run: a resumed search replays on them."""
        from symbench.store import load, load_samples

        rows = self.writer.rows()
        if not rows:
            return
        # The search is round 0; later rounds re-measure its points (symbench.sweep.rounds).
        df = load(self.writer.run_dir)
        df = df[df["round"] == 0]
        samples = load_samples(self.writer.run_dir)
        if len(samples):
            samples = samples[samples["round"] == 0]
        by_key: dict[tuple[str, ...], list[tuple[int, float, float]]] = {}
        if len(samples):
            cols = ["kernel", *KEY_FIELDS, "source"]
            for rec in samples.to_dict("records"):
                key = tuple(str(_plain(rec[c])) for c in cols)
                host = rec.get("host_time_s")
                by_key.setdefault(key, []).append((int(rec["sample"]), float(rec["time_s"]),
                                                   float(host) if host is not None else math.nan))
        for rec in df.to_dict("records"):
            row = {c: _plain(rec.get(c)) for c in COLUMNS}
            problem = Problem.from_mapping(row)
            key = tuple(str(row[c]) for c in ("kernel", *KEY_FIELDS, "source"))
            got = sorted(by_key.get(key, []))
            host = [h for _, _, h in got if math.isfinite(h)]
            self.points[(str(row["kernel"]), problem)] = Point(row, [t for _, t, _ in got], host)
            self.result.skipped_existing += 1

    def estimate(self) -> int:
        """Rough number of rows the search will write (for the progress bar)."""
        total = 0
        for s in self.series:
            steps = min(len(s.ks), 4 + math.ceil(math.log2(max(len(s.ks), 2))))
            total += len(s.names()) * steps
        return total

    def _problem_inputs(self, problem: Problem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:

        got = self._inputs.get(problem)
        if got is None:
            got = problem_inputs(problem, self.measurer.config.seed)
            self._inputs[problem] = got
            while len(self._inputs) > 2:  # a bisection step revisits its ends, not older points
                self._inputs.popitem(last=False)
        return got

    def _measure(self, kernels: Sequence[Kernel], problem: Problem, source: str
                 ) -> list[tuple[Kernel, dict[str, Any], list[dict[str, Any]]]]:
        """Rows and samples of ``kernels`` on ``problem``; in turns when the runner can interleave them.

        Sampled in turns (:mod:`symbench.sweep.interleave`),
        a change of machine load hits both kernels of a pair alike, which is
        what the bracket's verdict depends on.
        """
        runnable = [k for k in kernels if self.measurer.precheck(k, problem) is None]
        inputs = self._problem_inputs(problem) if runnable else (None, None, None)
        by_name = {k.name: k for k in kernels}

        if len(kernels) > 1 and interleave.applies(self.measurer, problem, kernels):
            return [(by_name[row["kernel"]], row, samples) for row, samples in
                    interleave.measure_interleaved(self.measurer, problem, kernels, inputs, source)]
        out = []
        for kern in kernels:
            if kern in runnable:
                row, samples = self.measurer.measure(kern, problem, *inputs, source=source)  # type: ignore[misc]
            else:
                row, samples = self.measurer.measure(kern, problem, None, None, None, source)  # type: ignore[arg-type]
            out.append((kern, row, samples))
        return out

    def points_at(self, kernels: Sequence[Kernel], problem: Problem, source: str = SOURCE) -> list[Point]:
        """The points of ``kernels`` at ``problem``; those not on disk yet are measured (together) and written."""
        missing = [k for k in kernels if (k.name, problem) not in self.points]
        if missing:
            with self.measurer.watch(problem, source) as window:
                measured = self._measure(missing, problem, source)
            for kern, row, samples in measured:
                add_noise(samples, window)
                with interrupt.critical():
                    self.writer.append(row, samples)
                self.result.counts[row["status"]] = self.result.counts.get(row["status"], 0) + 1
                self.progress.advance(f"{kern.name} {problem.label()}")
                self.points[(kern.name, problem)] = Point(
                    dict(row), [float(s["time_s"]) for s in samples],
                    [float(s["host_time_s"]) for s in samples if s.get("host_time_s") is not None])
        return [self.points[(k.name, problem)] for k in kernels]

    def point(self, kernel: Kernel, problem: Problem, source: str = SOURCE) -> Point:
        """The point, measured (and written) if it is not on disk yet."""
        return self.points_at([kernel], problem, source)[0]

    def remeasure(self, kernels: Sequence[Kernel], problem: Problem) -> None:
        """``repeat`` more samples of each point; each row is replaced by one over all its samples."""
        todo = [k for k in kernels if not self.points[(k.name, problem)].exhausted]
        if not todo:
            return
        self.progress.advance(f"re-measure {', '.join(k.name for k in todo)} {problem.label()}", 0)
        source = str(self.points[(todo[0].name, problem)].row["source"])
        for kern, row, samples in self._measure(todo, problem, source):
            p = self.points[(kern.name, problem)]
            if row["status"] != "ok" or not samples:
                p.exhausted = True  # the first measurement stands; no more rounds for it
                continue
            start = len(p.samples)
            for i, smp in enumerate(samples):
                smp["sample"] = start + i
                smp["source"] = p.row["source"]
            pooled = p.samples + [float(smp["time_s"]) for smp in samples]
            host = p.host + [float(smp["host_time_s"]) for smp in samples if smp.get("host_time_s") is not None]
            new = dict(p.row)
            stats = summarize(pooled)
            new.update(stats)
            new["samples"] = len(pooled)
            new["loops"] = row["loops"]
            new["gflops"] = problem.flops() / stats["time_s"] / 1e9 if stats["time_s"] > 0 else math.nan
            new["rel_err"] = max(float(p.row.get("rel_err") or 0.0), float(row.get("rel_err") or 0.0))
            new["host_time_s"] = float(np.median(host)) if host else None
            with interrupt.critical():
                self.writer.replace_row(new, samples)
            p.row, p.samples, p.host = new, pooled, host

    def rounds(self, p: Point) -> int:
        """Re-measurements a point has had (read from its sample count, so it survives --resume)."""
        if p.exhausted:
            return MAX_ROUNDS
        # A call over --max-call is sampled min(repeat, 3) times, once per call (its row says so).
        per = min(self.repeat, 3) if "--max-call" in str(p.row.get("message") or "") else self.repeat
        return max(0, math.ceil(len(p.samples) / max(per, 1)) - 1)

    # -- the search ------------------------------------------------------------------
    def run(self) -> None:
        """Search every series; rows go to disk as they are measured."""
        for s in self.series:
            with thread_limits(s.base.threads):
                self.run_series(s)

    def run_series(self, s: Series) -> None:
        names = s.names()
        method = {name: s.kernel(name).method for name in names}
        pairs = [(d, f) for d in names if method[d] == "direct" for f in names if method[f] == "fft"]
        if not pairs:
            warnings.warn(f"--adaptive: no (direct, fft) pair to search in {s.base.label().replace(' k=1', '')}; "
                          "measured every k", SymbenchWarning)
            for k in s.ks:
                self.points_at(s.kernels[k], s.problem(k), source="grid")
            return
        # A pair's ks include points measured for other pairs: search until none measures more.
        changed = True
        while changed:
            changed = False
            for d, f in pairs:
                changed |= self.search_pair(s, s.kernel(d), s.kernel(f))
        visited = sorted({problem.k for (name, problem) in self.points
                          if replace(problem, k=1) == s.base and name in method and method[name] != "auto"})
        for k in visited:
            others = [kern for kern in s.kernels.get(k, []) if not any(kern.name in pair for pair in pairs)]
            if others:
                self.points_at(others, s.problem(k))

    def _pair_state(self, s: Series, d: Kernel, f: Kernel, k: int) -> str:
        """``ok`` (both measured and ok), ``bad`` (one of them is not ok) or ``missing``."""
        problem = s.problem(k)
        pd_ = self.points.get((d.name, problem))
        pf = self.points.get((f.name, problem))
        if (pd_ is not None and not pd_.ok) or (pf is not None and not pf.ok):
            return "bad"
        if pd_ is not None and pf is not None:
            return "ok"
        # Beyond a --max-call cut a kernel is not run: a grid sweep writes a timeout row
        # for every such k, the search just stays below the cut.
        for kern, p in ((d, pd_), (f, pf)):
            cut = self.measurer.cut.get((kern.name, problem.series()))
            if p is None and cut is not None and k > cut[0]:
                return "bad"
        return "missing"

    def _measure_pair(self, s: Series, d: Kernel, f: Kernel, k: int) -> None:
        self.points_at([d, f], s.problem(k))

    def search_pair(self, s: Series, d: Kernel, f: Kernel) -> bool:
        """Search one pair's bracket to the end; True when anything was measured or re-measured."""
        names = (d.name, f.name)
        cand = [k for k in s.ks if {kern.name for kern in s.kernels[k]} >= set(names)]
        did = False
        while True:
            states = {k: self._pair_state(s, d, f, k) for k in cand}
            usable = [k for k in cand if states[k] != "bad"]
            if not usable:
                return did
            end = next((k for k in (usable[0], usable[-1]) if states[k] == "missing"), None)
            if end is not None:
                self._measure_pair(s, d, f, end)
                did = True
                continue
            ms = [k for k in usable if states[k] == "ok"]
            td = [self.points[(d.name, s.problem(k))].median for k in ms]
            tf = [self.points[(f.name, s.problem(k))].median for k in ms]
            pos = int(crossover_position([a > b for a, b in zip(td, tf)]))
            nxt = self._next_k(usable, ms, pos)
            if nxt is None and self.measurer.config.rounds > 1:
                near = [k for k, a, b in zip(ms, td, tf) if max(a / b, b / a) < NEAR_TIE]
                nxt = self._beside_ties(usable, ms, near)
            if nxt is not None:
                self._measure_pair(s, d, f, nxt)
                did = True
                continue
            ties = self._ties(s, d, f, ms, pos)
            if not ties:
                return did
            for k in ties:
                self.remeasure([d, f], s.problem(k))
            did = True

    @staticmethod
    def _next_k(usable: Sequence[int], ms: Sequence[int], pos: int) -> int | None:
        """The next k to measure: bisection inside the bracket, else a guard above it, else None."""
        if 0 < pos < len(ms):
            lo, hi = ms[pos - 1], ms[pos]
            inner = _between(usable, ms, lo, hi)
            if inner:
                return geometric_pick(inner, lo, hi)
        top = list(ms[pos:])
        gaps = []
        for a, b in zip(top, top[1:]):
            inner = _between(usable, ms, a, b)
            if inner and b / a > GUARD_RATIO:
                gaps.append((b / a, a, b, inner))
        if gaps:
            _, a, b, inner = max(gaps)
            return geometric_pick(inner, a, b)
        return None

    @staticmethod
    def _beside_ties(usable: Sequence[int], ms: Sequence[int], near: Sequence[int]) -> int | None:
        """A k of the LIST between a near-tie point and a measured neighbour, or None (see :data:`NEAR_TIE`)."""
        for k in near:
            i = ms.index(k)  # ms is ascending, as usable is
            for a, b in zip(ms[max(i - 1, 0):i + 1], ms[i:i + 2]):
                inner = _between(usable, ms, a, b)
                if inner:
                    return geometric_pick(inner, a, b)
        return None

    def _ties(self, s: Series, d: Kernel, f: Kernel, ms: Sequence[int], pos: int) -> list[int]:
        """Points to re-measure; empty when the verdict stands or the budget is spent."""
        if self._verdict(s, d, f, ms) != "inconclusive":
            return []
        need = [(k, True) for k in ms[pos:]] + ([(ms[pos - 1], False)] if pos > 0 else [])
        ties = []
        for k, fft_side in need:
            pd_, pf = self.points[(d.name, s.problem(k))], self.points[(f.name, s.problem(k))]
            slow, fast = (pd_, pf) if fft_side else (pf, pd_)
            if not _separated(slow.samples, fast.samples, ALPHA):
                ties.append(k)
        if not ties:
            # The U test separates them but the report's bootstrap does not: more
            # samples at the bracket itself settle it either way.
            ties = [k for k, _ in need if k in (ms[pos - 1] if pos > 0 else None,
                                                ms[pos] if pos < len(ms) else None)]
        return [k for k in sorted(set(ties))
                if max(self.rounds(self.points[(d.name, s.problem(k))]),
                       self.rounds(self.points[(f.name, s.problem(k))])) < MAX_ROUNDS]

    def _verdict(self, s: Series, d: Kernel, f: Kernel, ms: Sequence[int]) -> str:
        """The verdict ``symbench report`` will give this pair on these points."""
        import pandas as pd

        from symbench.analysis.crossover import find_crossovers
        from symbench.store import SAMPLE_COLUMNS

        rows, samples = [], []
        for name in (d.name, f.name):
            for k in ms:
                p = self.points[(name, s.problem(k))]
                rows.append({c: p.row.get(c) for c in COLUMNS})
                base = {c: p.row.get(c) for c in ("run_id", "kernel", *KEY_FIELDS, "source")}
                samples += [{**base, "sample": i, "loops": 1, "time_s": t} for i, t in enumerate(p.samples)]
        df = pd.DataFrame(rows, columns=list(COLUMNS))
        df["machine_id"] = self.machine_id
        df["machine"] = self.machine_id
        cross = find_crossovers(df, pd.DataFrame(samples, columns=list(SAMPLE_COLUMNS)))
        if len(cross) == 0:
            return "inconclusive"
        return str(cross["verdict"].iloc[0])
