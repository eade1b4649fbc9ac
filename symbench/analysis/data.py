"""Several runs in one table: loading, machine tags, de-duplication and raw samples.

Everything goes through :func:`symbench.store.load` and
:func:`symbench.store.load_samples`, so a missing run, a CSV without the
the fixed columns (docs/formats.md) or a newer schema raise the store's one-line errors, and lines
that do not parse are skipped with a :class:`~symbench.errors.SymbenchWarning`
(one per file, with their count and the first bad line).

Rows measured on different machines must never be compared as if they were
one machine, so every row is tagged with ``machine_id`` and ``machine`` (a
human label) from ``run.json``'s ``environment``; every analysis groups by
``machine_id``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from symbench.errors import RunDirError
from symbench.problem import KEY_FIELDS
from symbench.errors import SymbenchWarning
from symbench.store import fmt_value, load, load_samples

#: Machine id and label of rows whose run has no ``run.json`` (a bare CSV).
UNKNOWN_MACHINE = ("unknown", "unknown machine (no run.json)")
#: The columns that identify one measurement of one kernel on one machine.
ROW_KEY = ("machine_id", "kernel", *KEY_FIELDS)
#: The columns that link a row of ``measurements.csv`` to its samples.
SAMPLE_KEY = ("run_id", "kernel", *KEY_FIELDS, "source")


@dataclass
class Runs:
    """One or more runs loaded into one table.

    Attributes
    ----------
    df : pandas.DataFrame
        The measurements of every run, with ``machine_id`` and ``machine`` added.
    samples : pandas.DataFrame
        The raw samples of every run (``samples.csv``); empty when there are none.
    metas : list of dict
        ``run.json`` of each path given (``{}`` for a bare CSV), in the order given.
    paths : list of str
        The paths, as given.
    """

    df: pd.DataFrame
    samples: pd.DataFrame
    metas: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


def machine_of(meta: Mapping[str, Any] | None) -> tuple[str, str]:
    """``(machine_id, machine_label)`` from a ``run.json`` (unknown for a bare CSV)."""
    env = (meta or {}).get("environment") or {}
    mid = env.get("machine_id")
    if not mid:
        return UNKNOWN_MACHINE
    return str(mid), str(env.get("machine_label") or mid)


def tag_machine(df: pd.DataFrame, meta: Mapping[str, Any] | None) -> pd.DataFrame:
    """A copy of ``df`` with ``machine_id`` and ``machine`` columns from ``meta``."""
    mid, label = machine_of(meta)
    out = df.copy()
    out["machine_id"] = mid
    out["machine"] = label
    return out


def load_runs(paths: Sequence[str | Path]) -> Runs:
    """Load run directories or measurement CSVs into one :class:`Runs`.

    Parameters
    ----------
    paths : sequence of str or Path
        Run directories (or their ``measurements.csv``, or any CSV with the fixed columns of docs/formats.md).

    Returns
    -------
    Runs
        The rows of every path, tagged with their machine. When the same kernel and
        problem were measured more than once on one machine, the last path given wins
        (and a warning says so).

    Raises
    ------
    RunDirError, SchemaError
        From :func:`symbench.store.load`: a missing or unreadable path, a CSV without
        the fixed columns, a run written by a newer symbench.
    """
    if not paths:
        raise RunDirError("no run given; give one or more run directories or measurements CSVs")
    frames, sample_frames, metas = [], [], []
    seen: dict[str, str] = {}
    for path in paths:
        # The same run given twice (report RUN RUN, or RUN and RUN/measurements.csv)
        # is read once: its samples must not count double in a test or a bootstrap.
        p = Path(path)
        ident = str((p / "measurements.csv" if p.is_dir() else p).resolve()) if p.exists() else str(p)
        if ident in seen:
            warnings.warn(f"{path} is the same run as {seen[ident]}; read once", SymbenchWarning)
            continue
        seen[ident] = str(path)
        df = load(path)
        meta = dict(df.attrs.get("run") or {})
        df = tag_machine(df, meta)
        frames.append(df)
        metas.append(meta)
        samples = load_samples(path)
        if len(samples):
            sample_frames.append(samples)
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    df.attrs = {}
    before = len(df)
    df = dedupe(df)
    if len(frames) > 1 and len(df) < before:
        warnings.warn(f"{before - len(df)} rows were measured more than once on the same machine; "
                      "using the run given last", SymbenchWarning)
    samples = (pd.concat(sample_frames, ignore_index=True) if sample_frames
               else pd.DataFrame(columns=[*SAMPLE_KEY, "sample", "loops", "time_s"]))
    if len(sample_frames) > 1 and "sample" in samples.columns:
        # Two copies of one run (another directory, same run_id) hold the same samples.
        samples = samples.drop_duplicates([*SAMPLE_KEY, "sample"], keep="last").reset_index(drop=True)
    return Runs(df.reset_index(drop=True), samples, metas, list(seen.values()))


def disturbed_rows(df: pd.DataFrame, metas: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, bool]:
    """Which rows of ``df`` were measured in a window ``run.json``'s ``noise`` flags as disturbed.

    Returns
    -------
    (ndarray of bool, bool)
        A mask over ``df``'s rows, and whether some run named only the first of
        its disturbed problems (``disturbed_truncated``: more rows may be affected).
    """
    flagged: set[tuple[str, ...]] = set()
    truncated = False
    for meta in metas:
        noise = (meta or {}).get("noise")
        if not isinstance(noise, Mapping):
            continue
        truncated = truncated or bool(noise.get("disturbed_truncated"))
        run_id = str(meta.get("run_id", ""))
        for p in noise.get("disturbed_problems") or ():
            if isinstance(p, Mapping):
                flagged.add((run_id, *(str(p.get(c, "")) for c in KEY_FIELDS), str(p.get("source", "grid"))))
    if not flagged or len(df) == 0:
        return np.zeros(len(df), dtype=bool), truncated
    cols = ["run_id", *KEY_FIELDS]
    src = df["source"] if "source" in df.columns else pd.Series("grid", index=df.index)
    keys = zip(*(df[c] for c in cols), src)
    mask = np.array([(*(fmt_value(v) for v in key[:-1]), str(key[-1] or "grid")) in flagged for key in keys],
                    dtype=bool)
    return mask, truncated


def rounds_of(metas: Sequence[Mapping[str, Any]]) -> int:
    """The fewest rounds (independent repetitions of the whole sweep) of the runs given; 1 today."""
    counts = [int(((m or {}).get("config") or {}).get("rounds") or 1) for m in metas if m] or [1]
    return min(counts)


def dedupe(df: pd.DataFrame) -> pd.DataFrame:
    """Keep the last row of each (machine, kernel, problem); ``ok`` rows win over others."""
    if "machine_id" not in df.columns:  # straight from store.load: its run.json is in attrs
        mid, label = machine_of(df.attrs.get("run"))
        df = df.assign(machine_id=mid, machine=label)
    # A grid row and an adaptive row of one problem are two measurements of the
    # same thing; a failed re-measurement must not hide a good one.
    order = np.arange(len(df)) + np.where(df["status"].to_numpy() == "ok", len(df), 0)
    keep = (df.assign(_order=order).sort_values("_order", kind="stable")
            .drop_duplicates(list(ROW_KEY), keep="last").sort_index())
    return keep.drop(columns="_order")


def _key(values: Sequence[Any]) -> tuple[str, ...]:
    # Strings on both sides: ints read from two CSVs compare equal whatever their dtype.
    return tuple(str(v) for v in values)


def sample_index(samples: pd.DataFrame | None) -> dict[tuple[str, ...], np.ndarray]:
    """Raw sample times (seconds per call) by (run_id, kernel, problem key, source)."""
    if samples is None or len(samples) == 0 or "time_s" not in samples.columns:
        return {}
    s = samples.copy()
    if "source" not in s.columns:
        s["source"] = "grid"
    missing = [c for c in SAMPLE_KEY if c not in s.columns]
    if missing:
        raise RunDirError(f"samples table lacks columns {', '.join(missing)}; "
                          "give the samples.csv of a symbench run")
    s["time_s"] = pd.to_numeric(s["time_s"], errors="coerce")
    s = s[np.isfinite(s["time_s"].to_numpy(dtype=float))]
    out: dict[tuple[str, ...], np.ndarray] = {}
    cols = list(SAMPLE_KEY)
    for key, g in s.groupby(cols, sort=False):
        # Sorted, so that resampling does not depend on the order rows were read in.
        out[_key(key)] = np.sort(g["time_s"].to_numpy(dtype=float))
    return out


def row_samples(index: Mapping[tuple[str, ...], np.ndarray], row: Mapping[str, Any]) -> np.ndarray | None:
    """The raw samples of one measurement row, or None when there are none."""
    if not index:
        return None
    key = _key([row.get(c, "grid" if c == "source" else "") for c in SAMPLE_KEY])
    found = index.get(key)
    return found if found is not None and len(found) else None


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that enter analyses: status ``ok`` and a positive, finite ``time_s``."""
    t = pd.to_numeric(df["time_s"], errors="coerce").to_numpy(dtype=float)
    return df[(df["status"] == "ok").to_numpy() & np.isfinite(t) & (t > 0)]


def series_label(row: Mapping[str, Any], with_n: bool = False) -> str:
    """``conv 1-D float64 full`` (+ batch/channels/threads when not 1, + n when asked)."""
    op = row["op"] if str(row.get("group", "none")) in ("none", "", "nan") else f"{row['op']}/{row['group']}"
    parts = [op, f"{int(row['dim'])}-D"]
    if with_n:
        parts.append(f"n={int(row['n'])}")
    parts += [str(row["dtype"]), str(row["mode"])]
    if (int(row["batch"]), int(row["c_in"]), int(row["c_out"])) != (1, 1, 1):
        parts.append(f"b={int(row['batch'])} {int(row['c_in'])}->{int(row['c_out'])}")
    parts.append(f"{int(row['threads'])} thread{'s' if int(row['threads']) != 1 else ''}")
    return " ".join(parts)
