"""Dispatch tables from runs (``symbench tune``): the fastest kernel as a function of (n, k).

Per *setting* (op, group, dim, dtype, mode, batch, c_in, c_out, threads,
device) of the runs, on one machine:

1. Every measured (n, k) gets its fastest ``ok`` kernel (``direct`` and ``fft``
   kernels only: ``auto`` kernels are heuristics, not candidates; a ``timeout``
   row counts as slower than any ``ok`` one). Kernels that are fastest nowhere
   are left out.
2. Every pair of the remaining kernels gets a **crossover curve** k\\*(n): at
   each measured n, the least-regret hand-over between the pair's ``left``
   and ``right`` kernel (:func:`split`; on clean data the report's bracket,
   but one noisy point far from the crossover cannot drag it away),
   interpolated in log k, with ``right`` the kernel that wins at the largest k
   at most n.
   Where one kernel wins at every measured k the curve is put just outside
   the measured ks (within one octave, where the fitted cost models of
   :mod:`~symbench.analysis.models` say, else one octave out).
3. Beyond the measured n (:data:`EXTRA_OCTAVES` octaves each way) each curve
   follows the cost models' k\\*(n) (:func:`~symbench.analysis.models.model_k_star`),
   anchored at the nearest measured n: the models give the trend, the
   measurement the level. Those points are marked ``measured: false``.

The result is a JSON-ready dict (format: :mod:`symbench.dispatch.table`); its
``regions`` (the fastest kernel per k range at each measured n) and
``grid_regret`` (how the table does on the very grid it was tuned on) are
there for people.
"""

from __future__ import annotations

import math
from collections import Counter
from itertools import combinations
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from symbench.analysis.crossover import bracket
from symbench.analysis.data import Runs, dedupe, series_label
from symbench.analysis.models import fit_models, model_k_star
from symbench.analysis.stats import log_interpolate_k
from symbench.errors import SymbenchError
from symbench.dispatch.table import (KIND, SETTING_FIELDS, TABLE_SCHEMA_NOTES, TABLE_SCHEMA_VERSION, DispatchTable)

#: Octaves of n beyond the measured ones that each curve is extrapolated to, each way.
EXTRA_OCTAVES = 4
#: A ``timeout`` row counts as this many times the slowest ``ok`` time of its setting.
TIMEOUT_FACTOR = 1e3
#: Machine facts copied from run.json into the table.
MACHINE_FACTS = ("machine_id", "machine_label", "hostname", "cpu_model", "cpu_count", "cpu_flags",
                 "memory_total", "os", "python", "libraries", "fftw_planner", "symbench_version")


def _setting_label(s: Mapping[str, Any]) -> str:
    return f"{series_label(s)} ({s['device']})"


def _orient(a: str, b: str, times: Mapping[tuple[str, int, int], float], ns: Sequence[int],
            methods: Mapping[str, str]) -> tuple[str, str]:
    """(left, right): ``right`` is the kernel faster at the largest common k at most n."""
    score = 0
    for n in ns:
        common = [k for (kern, nn, k) in times if kern == a and nn == n and (b, n, k) in times]
        if common:
            k = max(common)
            ta, tb = times[(a, n, k)], times[(b, n, k)]
            score += (ta > tb) - (ta < tb)
    if score > 0:  # a slower at large k: a is the small-k side
        return a, b
    if score < 0:
        return b, a
    if methods.get(a) != methods.get(b):  # no evidence either way: fft on the large-k side
        return (a, b) if methods.get(b) == "fft" else (b, a)
    return (a, b) if a < b else (b, a)


def _clip_log(value: float, lo: float, hi: float, default: float) -> float:
    if not math.isfinite(value) or value <= 0:
        return default
    return min(max(value, lo), hi)


def split(ks: Sequence[float], t_left: Sequence[float], t_right: Sequence[float]) -> dict[str, Any]:
    """Where a pair should hand over from ``left`` to ``right`` at one n: the least-regret split.

    The report's bracket (:func:`~symbench.analysis.crossover.bracket`) asks for
    the right kernel to win at *every* larger k, so one noisy sample far above
    the true crossover moves it a long way. A dispatch table wants the
    threshold that loses least: the split ``s`` (left kernel for the first
    ``s`` ks, right for the rest) that minimises the summed log-regret
    ``sum_{i<s} max(0, log(t_l/t_r)) + sum_{i>=s} max(0, log(t_r/t_l))``. On
    clean data it is the report's bracket (ties go to the split nearest to it).

    Returns
    -------
    dict
        ``position`` (index of the first right-side k; 0: right always, len: left
        always), ``k_lo``/``k_hi`` (the ks around it, None where open), ``k_star``
        (interpolated in log k where log(t_l/t_r) crosses 0 between them, else
        their geometric mean; None where open), ``report_position`` (the report's).
    """
    k = np.asarray(ks, dtype=float)
    r = np.log(np.asarray(t_left, dtype=float) / np.asarray(t_right, dtype=float))  # > 0: right faster
    left_loss = np.concatenate([[0.0], np.cumsum(np.maximum(r, 0.0))])  # left used for the first s
    right_loss = np.concatenate([np.cumsum(np.maximum(-r, 0.0)[::-1])[::-1], [0.0]])
    cost = left_loss + right_loss
    report = bracket(ks, t_left, t_right).position
    best = float(cost.min())
    candidates = [s for s in range(len(cost)) if cost[s] <= best + 1e-12]
    pos = min(candidates, key=lambda s: (abs(s - report), s))
    out: dict[str, Any] = {"position": pos, "report_position": report, "k_lo": None, "k_hi": None, "k_star": None}
    if pos > 0:
        out["k_lo"] = float(k[pos - 1])
    if pos < len(k):
        out["k_hi"] = float(k[pos])
    if 0 < pos < len(k):
        lo, hi = pos - 1, pos
        out["k_star"] = float(log_interpolate_k(float(k[lo]), float(k[hi]), float(r[lo]), float(r[hi])))
    return out


def _curve(left: str, right: str, times: Mapping[tuple[str, int, int], float], ok: set[tuple[str, int, int]],
           ns: Sequence[int], fits: Mapping[str, Mapping[str, Any]], k_cap: int) -> tuple[list[float], list[dict]]:
    """Effective k* of one pair at every measured n (NaN where the pair has no common k), with the splits."""
    fl, fr = fits.get(left), fits.get(right)
    eff, points = [], []
    for n in ns:
        kk = sorted(k for (kern, nn, k) in times if kern == left and nn == n and (right, n, k) in times
                    and ((left, n, k) in ok or (right, n, k) in ok))
        if not kk:
            eff.append(math.nan)
            continue
        sp = split(kk, [times[(left, n, k)] for k in kk], [times[(right, n, k)] for k in kk])
        model = model_k_star(fl, fr, n, k_max=min(n, k_cap)) if fl and fr else math.nan
        if sp["k_star"] is not None:
            value, verdict = sp["k_star"], "crossover"
        elif sp["position"] == 0:  # right faster at every measured k: k* <= the smallest
            value, verdict = _clip_log(model, kk[0] / 2, kk[0], kk[0] / 2), "right_always"
        else:  # left faster at every measured k: k* above the largest
            value, verdict = _clip_log(model, kk[-1] * 2 ** (1 / 64), kk[-1] * 2, kk[-1] * 2), "left_always"
        eff.append(value)
        points.append({"n": int(n), "verdict": verdict, "k_lo": sp["k_lo"], "k_hi": sp["k_hi"],
                       "k_star": sp["k_star"],
                       "model_k_star": None if not math.isfinite(model) else float(model),
                       "as_report": sp["position"] == sp["report_position"]})
    return eff, points


def _fill(ns: Sequence[int], values: list[float]) -> list[float] | None:
    """NaNs replaced by interpolation in (log n, log k) between the pair's measured n (None if it has none)."""
    x = np.log2(np.asarray(ns, dtype=float))
    y = np.asarray(values, dtype=float)
    good = np.isfinite(y) & (y > 0)
    if not good.any():
        return None
    return list(np.exp2(np.interp(x, x[good], np.log2(y[good]))))


def _extend(ns: Sequence[int], eff: Sequence[float], fl: Mapping[str, Any] | None,
            fr: Mapping[str, Any] | None, k_cap: int) -> tuple[list[float], list[float], list[bool]]:
    """The curve on the measured n plus EXTRA_OCTAVES octaves each way, following the models' trend."""
    lo = [ns[0] / 2 ** j for j in range(EXTRA_OCTAVES, 0, -1)]
    hi = [ns[-1] * 2 ** j for j in range(1, EXTRA_OCTAVES + 1)]
    lo = [v for v in lo if v >= 1]

    def trend(n_edge: float, k_edge: float, n: float) -> float:
        if not (fl and fr):
            return k_edge
        a = model_k_star(fl, fr, int(n_edge), k_max=min(int(n_edge), k_cap))
        b = model_k_star(fl, fr, max(int(n), 1), k_max=min(max(int(n), 1), k_cap))
        if math.isfinite(a) and math.isfinite(b) and a > 1 and b > 1:
            return k_edge * b / a
        return k_edge

    all_n = [float(v) for v in lo] + [float(v) for v in ns] + [float(v) for v in hi]
    values = ([trend(ns[0], eff[0], n) for n in lo] + [float(v) for v in eff]
              + [trend(ns[-1], eff[-1], n) for n in hi])
    measured = [False] * len(lo) + [True] * len(ns) + [False] * len(hi)
    return all_n, values, measured


def _regions(entry: Mapping[str, Any], ns: Sequence[int]) -> list[dict[str, Any]]:
    """The fastest kernel per k range at each measured n, as the table decides it (for people)."""
    e = DispatchTable._entry(entry, "table")
    k_lo, k_hi = entry["k_range"]
    ys = np.arange(math.log2(k_lo), math.log2(k_hi) + 1e-9, 1 / 32)
    out = []
    for n in ns:
        segs: list[dict[str, Any]] = []
        prev = None
        for y in ys:
            kern = e.choose(n, float(2 ** y)).kernel
            if kern != prev:
                if segs:
                    segs[-1]["k_to"] = float(round(2 ** (y - 1 / 64), 2))
                segs.append({"kernel": kern, "k_from": None if not segs else float(round(2 ** (y - 1 / 64), 2)),
                             "k_to": None})
                prev = kern
        out.append({"n": int(n), "segments": segs})
    return out


def _grid_regret(entry: Mapping[str, Any], times: Mapping[tuple[str, int, int], float],
                 ok: set[tuple[str, int, int]], best: Mapping[tuple[int, int], float]) -> dict[str, Any]:
    e = DispatchTable._entry(entry, "table")
    regrets = []
    for (n, k), t_best in best.items():
        ranking = e.choose(n, k).ranking
        pick = next((kern for kern in ranking if (kern, n, k) in ok), None)
        if pick is None:
            continue
        regrets.append((times[(pick, n, k)] / t_best, n, k, pick))
    if not regrets:
        return {"points": 0}
    r = np.array([v[0] for v in regrets])
    worst = max(regrets)
    return {"points": len(regrets), "median": float(np.median(r)), "worst": float(worst[0]),
            "worst_at": {"n": int(worst[1]), "k": int(worst[2]), "kernel": worst[3]},
            "fastest_share": float(np.mean(r <= 1 + 1e-12))}


#: Which time of a row decides: its fastest sample, or its median.
STATISTICS = {"min": "time_min_s", "median": "time_s"}


def build_table(runs: Runs, *, created: str | None = None, by: str = "min") -> tuple[dict[str, Any], list[str]]:
    """The dispatch table of ``runs`` and notes for the user.

    Parameters
    ----------
    runs : Runs
        From :func:`symbench.analysis.data.load_runs`; all from one machine.
    created : str, optional
        Timestamp to record.
    by : {"min", "median"}
        The time of a row that decides: ``min`` (its fastest sample, ``time_min_s``;
        the default) is the least disturbed by other work on a shared machine and
        what a best-of-N benchmark of the dispatched call sees; ``median`` is the
        report's ``time_s``.

    Returns
    -------
    (dict, list of str)
        The table (JSON-ready; see :mod:`symbench.dispatch.table`) and plain sentences
        (kernels left out, extrapolation, incomplete runs).

    Raises
    ------
    SymbenchError
        Runs from several machines, or nothing to tune (no ``ok`` direct or fft rows).
    """
    if by not in STATISTICS:
        raise SymbenchError(f"unknown statistic {by!r}; allowed: {', '.join(STATISTICS)}")
    df = dedupe(runs.df)
    df = df[df["method"].isin(["direct", "fft"])].copy()
    column = STATISTICS[by]
    # A row without the statistic (a CSV of an older version, say) falls back to its median.
    df["t_by"] = pd.to_numeric(df[column], errors="coerce").fillna(pd.to_numeric(df["time_s"], errors="coerce"))
    t = df["t_by"].to_numpy(dtype=float)
    is_ok = (df["status"] == "ok").to_numpy() & np.isfinite(t) & (t > 0)
    is_timeout = (df["status"] == "timeout").to_numpy()
    if not is_ok.any():
        raise SymbenchError("nothing to tune: the runs have no ok rows of direct or fft kernels; "
                            "sweep direct and fft kernels first (e.g. symbench sweep --kernel direct,fft-pyfftw)")
    machines = sorted(df.loc[is_ok, "machine_id"].unique())
    if len(machines) > 1:
        raise SymbenchError(f"the runs come from {len(machines)} machines ({', '.join(map(str, machines))}); "
                            "a dispatch table is for one machine: tune each machine's runs on their own")
    meta = next((m for m in runs.metas if (m.get("environment") or {}).get("machine_id") == machines[0]), {})
    env = meta.get("environment") or {}
    notes: list[str] = []
    data = df[is_ok | is_timeout].copy()
    data["okflag"] = is_ok[is_ok | is_timeout]
    entries = []
    for key, g in data.groupby(list(SETTING_FIELDS), sort=True):
        setting = dict(zip(SETTING_FIELDS, key))
        ok_rows = g[g["okflag"]]
        if not len(ok_rows):
            continue
        big = float(ok_rows["t_by"].max()) * TIMEOUT_FACTOR
        times: dict[tuple[str, int, int], float] = {}
        ok: set[tuple[str, int, int]] = set()
        for r in g.itertuples(index=False):
            kk = (str(r.kernel), int(r.n), int(r.k))
            times[kk] = float(r.t_by) if r.okflag else big
            if r.okflag:
                ok.add(kk)
        methods = dict(zip(g["kernel"], g["method"]))
        best: dict[tuple[int, int], float] = {}
        wins: Counter[str] = Counter()
        for n, k in sorted({(n, k) for (_, n, k) in ok}):
            t_best, winner = min((times[(kern, n, k)], kern) for kern in methods if (kern, n, k) in times)
            best[(n, k)] = t_best
            wins[winner] += 1
        kernels = sorted((kern for kern in methods if wins[kern] > 0), key=lambda kern: (-wins[kern], kern))
        left_out = sorted(kern for kern in methods if wins[kern] == 0)
        label = _setting_label(setting)
        if left_out:
            notes.append(f"{label}: {', '.join(left_out)} fastest nowhere on the grid; left out of the table")
        ns = sorted({n for (_, n, _) in ok})
        ks = sorted({k for (_, _, k) in ok})
        k_cap = int(ks[-1]) * 64
        models = fit_models(ok_rows)
        fits = {str(r["kernel"]): r for r in models.to_dict("records")}
        curves = []
        for a, b in combinations(kernels, 2):
            left, right = _orient(a, b, times, ns, methods)
            eff, points = _curve(left, right, times, ok, ns, fits, k_cap)
            filled = _fill(ns, eff)
            if filled is None:
                notes.append(f"{label}: {left} and {right} were never measured at the same problems; "
                             "their order comes from how often each was fastest")
                continue
            all_n, values, measured = _extend(ns, filled, fits.get(left), fits.get(right), k_cap)
            curves.append({"left": left, "right": right, "k_star": [float(v) for v in values],
                           "at_measured_n": points})
        if not curves and len(kernels) > 1:
            kernels = kernels[:1]
        all_n = (_extend(ns, [1.0] * len(ns), None, None, k_cap)[0] if not curves
                 else [float(v) for v in all_n])
        measured = [float(n) in {float(v) for v in ns} for n in all_n]
        entry = {**{f: (int(v) if f in ("dim", "batch", "c_in", "c_out", "threads") else str(v))
                    for f, v in setting.items()},
                 "label": label, "kernels": kernels, "wins": {kern: int(wins[kern]) for kern in kernels},
                 "n": all_n, "measured": measured, "k_range": [float(ks[0]), float(ks[-1])],
                 "k_values": [int(v) for v in ks],
                 "curves": [{**c, "k_star": c["k_star"]} for c in curves]}
        entry["regions"] = _regions(entry, ns)
        entry["grid_regret"] = _grid_regret(entry, times, ok, best)
        entry["models"] = {kern: {"model": f["model"], "slope": float(f["slope"]), "intercept": float(f["intercept"]),
                                  "rel_rmse": float(f["rel_rmse"])} for kern, f in fits.items() if kern in kernels}
        entries.append(entry)
    incomplete = [m.get("run_id") for m in runs.metas if m and not m.get("complete")]
    if incomplete:
        notes.append(f"incomplete run{'s' if len(incomplete) > 1 else ''} ({', '.join(map(str, incomplete))}): "
                     "the table covers what was measured")
    versions = {str((m.get("environment") or {}).get("libraries")) for m in runs.metas if m}
    if len(versions) > 1:
        notes.append("the runs were made with different library versions; the table records the first run's")
    machine = {f: env.get(f) for f in MACHINE_FACTS if f in env} or {"machine_id": machines[0]}
    timed = timed_libraries(runs.metas, {name for e in entries for name in e["kernels"]})
    if timed is not None:
        machine["timed_libraries"] = timed
    table = {
        "kind": KIND,
        "schema_version": TABLE_SCHEMA_VERSION,
        "schema_note": TABLE_SCHEMA_NOTES[TABLE_SCHEMA_VERSION],
        "created": created,
        "symbench_version": _version(),
        "statistic": column,
        "runs": [{"path": p, "run_id": m.get("run_id"), "complete": m.get("complete")}
                 for p, m in zip(runs.paths, runs.metas)],
        "machine": machine,
        "extrapolation": (f"curves are measured brackets at the measured n (interpolated in log n and log k "
                          f"between them) and follow the fitted cost models' k*(n) for {EXTRA_OCTAVES} octaves "
                          "beyond them (anchored at the nearest measured n); outside the measured n and k a "
                          "lookup says extrapolated"),
        "entries": entries,
    }
    return table, notes


def timed_libraries(metas: Sequence[Mapping[str, Any]], kernels: set[str]) -> list[str] | None:
    """The libraries whose version changes what the table's ``kernels`` measure.

    Read from what run.json recorded of each kernel (``requires``), so that the
    kernel registry stays the one place these facts live; NumPy holds every
    kernel's buffers and is always included. ``None`` when a run predates that
    record: the table then compares every library it recorded.
    """
    infos: dict[str, Any] = {}
    for meta in metas:
        infos.update((meta or {}).get("kernels") or {})
    libs = {"numpy"}
    for name in kernels:
        info = infos.get(name) or {}
        if "requires" not in info:
            return None
        libs.update(info["requires"])
    return sorted(libs)


def _version() -> str:
    from symbench import __version__

    return __version__
