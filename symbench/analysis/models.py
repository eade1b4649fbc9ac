"""Cost models fitted per kernel, and the k\\* they predict where nothing was measured.

Two models, fitted on each kernel's ``ok`` rows of one *series* (machine,
device, op, group, dim, dtype, mode, batch, channels, threads; over all n and k):

* ``direct``: ``t = a * W + b`` with ``W = |out| * |kernel|`` (output elements
  times kernel elements, times the channel and group factors; in SciPy's
  ``valid`` mode with a kernel longer than the signal the smaller operand is the
  kernel, as SciPy swaps them);
* ``fft``: ``t = c * N log2 N + d`` with ``N`` the linear-convolution transform
  size ``prod(n + k - 1)`` (before any padding to a fast length, so that the
  model can be evaluated for any n and k).

The fits minimise the *relative* error (timings span orders of magnitude; an
absolute fit would only see the largest problems) with non-negative
coefficients (``scipy.optimize.nnls``). Fit quality is given as the RMS and
the largest relative error, and R^2 of log t.

:func:`model_k_star` predicts k\\* for a (direct, fft) pair of fits at any n,
with the same "from here on" definition as :mod:`symbench.analysis.crossover`.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from symbench.analysis.data import dedupe, ok_rows
from symbench.analysis.stats import log_interpolate_k
from symbench.dispatch.costs import direct_work, fft_work

#: A series: everything that stays fixed while a model is fitted over n and k.
FIT_KEYS = ("machine_id", "machine", "device", "kernel", "method", "op", "group", "dim", "dtype", "mode",
            "batch", "c_in", "c_out", "threads")
MODEL_COLUMNS = (*FIT_KEYS, "model", "slope", "intercept", "points", "n_values", "k_min", "k_max",
                 "rel_rmse", "max_rel_err", "r2_log")
FORMULAS = {"direct": "a*out*h + b", "fft": "c*N*log2(N) + d"}


def work(method: str, fit: Mapping[str, Any], n: Any, k: Any) -> np.ndarray:
    """The model's size variable (``W`` or ``N log2 N``) for the series of ``fit``."""
    if method == "direct":
        return direct_work(str(fit["op"]), str(fit["group"]), int(fit["dim"]), str(fit["mode"]), n, k,
                           int(fit["batch"]), int(fit["c_in"]), int(fit["c_out"]))
    return fft_work(int(fit["dim"]), n, k)


def fit_linear(x: Sequence[float], t: Sequence[float]) -> tuple[float, float]:
    """Non-negative ``(slope, intercept)`` of ``t = slope * x + intercept`` in relative error."""
    from scipy.optimize import nnls

    x = np.asarray(x, dtype=float)
    t = np.asarray(t, dtype=float)
    a = np.column_stack([x / t, 1.0 / t])
    coef, _ = nnls(a, np.ones_like(t))
    slope, intercept = float(coef[0]), float(coef[1])
    # A term that adds less than a billionth of every measured time is the solver's
    # round-off, not a cost (an intercept of 1e-25 s whose digits change with the
    # SciPy version): report it as the zero it is.
    floor = 1e-9 * float(np.min(t))
    if intercept < floor:
        intercept = 0.0
    if float(np.max(slope * x)) < floor:
        slope = 0.0
    return slope, intercept


def fit_quality(pred: np.ndarray, t: np.ndarray) -> dict[str, float]:
    """RMS and largest relative error, and R^2 of log t against log prediction."""
    rel = pred / t - 1.0
    out = {"rel_rmse": float(np.sqrt(np.mean(rel ** 2))), "max_rel_err": float(np.max(np.abs(rel)))}
    lt = np.log(t)
    ss_tot = float(np.sum((lt - lt.mean()) ** 2))
    if ss_tot > 0 and np.all(pred > 0):
        out["r2_log"] = 1.0 - float(np.sum((lt - np.log(pred)) ** 2)) / ss_tot
    else:
        out["r2_log"] = math.nan
    return out


def fit_models(df: pd.DataFrame) -> pd.DataFrame:
    """Fit the cost model of every ``direct`` and ``fft`` kernel, per series.

    Parameters
    ----------
    df : pandas.DataFrame
        Measurements; only ``ok`` rows are used. Needs ``machine_id`` (added when missing).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`MODEL_COLUMNS`: the series, ``model`` (the formula),
        ``slope`` (a or c, seconds per unit), ``intercept`` (b or d, seconds),
        ``points``, the n values and k range it was fitted on, and the fit quality
        (``rel_rmse``, ``max_rel_err``, ``r2_log``). A series with fewer than two
        distinct sizes gets no row.
    """
    data = ok_rows(dedupe(df))
    data = data[data["method"].isin(["direct", "fft"])]
    if "machine" not in data.columns:
        data = data.assign(machine=data["machine_id"])
    rows = []
    for key, g in data.groupby(list(FIT_KEYS), sort=True, dropna=False):
        fit = dict(zip(FIT_KEYS, key))
        x = work(fit["method"], fit, g["n"].to_numpy(), g["k"].to_numpy())
        t = g["time_s"].to_numpy(dtype=float)
        if len(np.unique(x)) < 2:
            continue
        slope, intercept = fit_linear(x, t)
        rows.append({**fit, "model": FORMULAS[fit["method"]], "slope": slope, "intercept": intercept,
                     "points": int(len(t)),
                     "n_values": ",".join(str(v) for v in sorted(g["n"].unique())),
                     "k_min": int(g["k"].min()), "k_max": int(g["k"].max()),
                     **fit_quality(slope * x + intercept, t)})
    out = pd.DataFrame(rows, columns=list(MODEL_COLUMNS))
    return out.reset_index(drop=True)


def predict_time(fit: Mapping[str, Any], n: Any, k: Any) -> np.ndarray:
    """Seconds per call the fitted model predicts (vectorised over n and k)."""
    return float(fit["slope"]) * work(str(fit["method"]), fit, n, k) + float(fit["intercept"])


def model_k_star(direct_fit: Mapping[str, Any], fft_fit: Mapping[str, Any], n: int,
                 k_max: int | None = None) -> float:
    """k\\* that two fitted models predict at signal size ``n``.

    Parameters
    ----------
    direct_fit, fft_fit : mapping
        Rows of :func:`fit_models` of the same series (the direct one's op, dim,
        mode and channels size both models).
    n : int
        Signal length or image side; need not have been measured.
    k_max : int, optional
        Largest k considered (default ``n``).

    Returns
    -------
    float
        The smallest k from which the fft model is faster at every larger k up to
        ``k_max``, interpolated on ``log k`` between the integers around it; 1.0 when
        the fft model is faster for every k (``fft_always``), ``inf`` when it is not
        faster at ``k_max`` (``direct_always``).
    """
    k_max = int(k_max or n)
    ks = np.arange(1, max(k_max, 1) + 1, dtype=float)
    td = predict_time(direct_fit, n, ks)
    tf = predict_time(fft_fit, n, ks)
    faster = td > tf
    suffix = np.logical_and.accumulate(faster[::-1])[::-1]
    pos = ks.size - int(suffix.sum())
    if pos == 0:
        return 1.0
    if pos == ks.size:
        return math.inf
    lo, hi = pos - 1, pos
    return log_interpolate_k(float(ks[lo]), float(ks[hi]), math.log(td[lo] / tf[lo]), math.log(td[hi] / tf[hi]))


def _fit_index(models: pd.DataFrame) -> dict[tuple, dict[str, Any]]:
    keys = [c for c in FIT_KEYS if c not in ("method",)]
    return {tuple(str(r[c]) for c in keys): r for r in models.to_dict("records")}


def lookup_fit(models: pd.DataFrame | dict, kernel: str, series: Mapping[str, Any]) -> dict[str, Any] | None:
    """The fitted model of ``kernel`` in the series of ``series`` (a crossover or measurement row)."""
    index = models if isinstance(models, dict) else _fit_index(models)
    key = tuple(str(kernel) if c == "kernel" else str(series[c]) for c in FIT_KEYS if c != "method")
    return index.get(key)


def add_model_k_star(crossovers: pd.DataFrame, models: pd.DataFrame) -> pd.DataFrame:
    """``crossovers`` with a ``model_k_star`` column right after ``log2_n`` (NaN where a fit is missing)."""
    out = crossovers.copy()
    index = _fit_index(models)
    values = []
    for r in out.to_dict("records"):
        d = lookup_fit(index, r["direct_kernel"], r)
        f = lookup_fit(index, r["fft_kernel"], r)
        values.append(model_k_star(d, f, int(r["n"])) if d and f else math.nan)
    out.insert(list(out.columns).index("log2_n") + 1, "model_k_star", pd.Series(values, dtype="float64"))
    return out


def default_prediction_ns(measured: Iterable[int]) -> list[int]:
    """Powers of two from the smallest measured n to four times the largest."""
    ns = sorted({int(v) for v in measured})
    if not ns:
        return []
    lo, hi = int(math.floor(math.log2(ns[0]))), int(math.ceil(math.log2(ns[-1]))) + 2
    return sorted(set(ns) | {2 ** e for e in range(lo, hi + 1) if 2 ** e >= ns[0]})


PREDICTION_COLUMNS = ("machine", "machine_id", "device", "op", "group", "dim", "dtype", "mode", "batch",
                      "c_in", "c_out", "threads", "direct_kernel", "fft_kernel", "n", "measured",
                      "model_k_star", "log2_n")


def predict_crossovers(crossovers: pd.DataFrame, models: pd.DataFrame,
                       n_values: Sequence[int] | None = None) -> pd.DataFrame:
    """``model_k_star`` of every pair in ``crossovers`` at ``n_values``.

    Parameters
    ----------
    crossovers : pandas.DataFrame
        From :func:`symbench.analysis.crossover.find_crossovers` (gives the pairs and series).
    models : pandas.DataFrame
        From :func:`fit_models`.
    n_values : sequence of int, optional
        Where to predict; default :func:`default_prediction_ns` of each series' measured n.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PREDICTION_COLUMNS`; ``measured`` says whether that n was measured.
    """
    if len(crossovers) == 0:
        return pd.DataFrame(columns=list(PREDICTION_COLUMNS))
    index = _fit_index(models)
    series_cols = ["machine_id", "machine", "device", "op", "group", "dim", "dtype", "mode", "batch",
                   "c_in", "c_out", "threads", "direct_kernel", "fft_kernel"]
    rows = []
    for key, g in crossovers.groupby(series_cols, sort=False):
        s = dict(zip(series_cols, key))
        d = lookup_fit(index, s["direct_kernel"], s)
        f = lookup_fit(index, s["fft_kernel"], s)
        if not d or not f:
            continue
        measured = set(int(v) for v in g["n"])
        for n in (n_values if n_values is not None else default_prediction_ns(measured)):
            rows.append({**s, "n": int(n), "measured": int(n) in measured,
                         "model_k_star": model_k_star(d, f, int(n)),
                         "log2_n": math.log2(n) if int(s["dim"]) == 1 else math.nan})
    return pd.DataFrame(rows, columns=list(PREDICTION_COLUMNS))
