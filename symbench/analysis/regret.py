"""Regret of ``auto`` kernels: how much a library's own heuristic loses to the best kernel.

For every ``ok`` row of an ``auto`` kernel (``scipy.signal.convolve(method="auto")``,
``cv2.filter2D``), its regret is ``t_auto / t_best`` where ``t_best`` is the
fastest ``ok`` kernel of the same problem on the same machine and device (the
auto kernel itself included, so regret >= 1, and 1 means it was the fastest).
Kernels on another device are not candidates: a CPU heuristic cannot pick a GPU.
"""

from __future__ import annotations

import pandas as pd

from symbench.analysis.data import dedupe, ok_rows, series_label
from symbench.problem import KEY_FIELDS

REGRET_ROW_COLUMNS = ("machine", "machine_id", "device", "kernel", *KEY_FIELDS, "time_s", "best_kernel",
                      "best_time_s", "regret")
REGRET_COLUMNS = ("machine", "machine_id", "device", "kernel", "problems", "fastest", "median_regret",
                  "worst_regret", "worst_problem", "best_at_worst")


def regret_rows(df: pd.DataFrame) -> pd.DataFrame:
    """One row per ``ok`` auto-kernel measurement: its time, the best kernel's, and the regret."""
    data = ok_rows(dedupe(df))
    if "machine" not in data.columns:
        data = data.assign(machine=data["machine_id"])
    keys = ["machine_id", "device", *KEY_FIELDS]
    auto = data[data["method"] == "auto"]
    if len(auto) == 0:
        return pd.DataFrame(columns=list(REGRET_ROW_COLUMNS))
    best_idx = data.groupby(keys, sort=False)["time_s"].idxmin()
    best = data.loc[best_idx, [*keys, "kernel", "time_s"]].rename(
        columns={"kernel": "best_kernel", "time_s": "best_time_s"})
    out = auto.merge(best, on=keys, how="left")
    out["regret"] = out["time_s"] / out["best_time_s"]
    return out[list(REGRET_ROW_COLUMNS)].reset_index(drop=True)


def auto_regret(df: pd.DataFrame) -> pd.DataFrame:
    """Regret of every auto kernel, summarised over the run.

    Parameters
    ----------
    df : pandas.DataFrame
        Measurements (``ok`` rows are used).

    Returns
    -------
    pandas.DataFrame
        One row per (machine, device, auto kernel), columns :data:`REGRET_COLUMNS`:
        ``problems`` measured, ``fastest`` (how many of them it was the fastest
        kernel on), ``median_regret``, ``worst_regret``, ``worst_problem`` (a label)
        and ``best_at_worst`` (the kernel that beat it there). Empty when the run
        has no auto kernel.
    """
    rows = regret_rows(df)
    out = []
    for (mid, device, kernel), g in rows.groupby(["machine_id", "device", "kernel"], sort=True):
        worst = g.loc[g["regret"].idxmax()]
        out.append({
            "machine": worst["machine"], "machine_id": mid, "device": device, "kernel": kernel,
            "problems": int(len(g)), "fastest": int((g["regret"] <= 1 + 1e-9).sum()),  # ties count
            "median_regret": float(g["regret"].median()), "worst_regret": float(worst["regret"]),
            "worst_problem": series_label(worst, with_n=True) + f" k={int(worst['k'])}",
            "best_at_worst": worst["best_kernel"],
        })
    return pd.DataFrame(out, columns=list(REGRET_COLUMNS))
