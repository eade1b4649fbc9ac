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

A sweep may run in several *rounds*, each in a fresh process (schema 2:
``measurements.csv`` and ``samples.csv`` carry a 0-based ``round``).
:func:`combine_rounds` makes one row of the rounds of each measurement, so
every analysis sees one row per kernel and problem as before; the samples keep
their rounds (:func:`sample_rounds`) for the hierarchical bootstrap.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from symbench.analysis.stats import grouped_summary
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
    samples = (pd.concat(sample_frames, ignore_index=True) if sample_frames
               else pd.DataFrame(columns=[*SAMPLE_KEY, "sample", "loops", "time_s"]))
    if len(sample_frames) > 1 and "sample" in samples.columns:
        # Two copies of one run (another directory, same run_id) hold the same samples;
        # sample i of two different rounds is not a copy.
        dup_key = [*SAMPLE_KEY, "sample", *(["round"] if "round" in samples.columns else [])]
        samples = samples.drop_duplicates(dup_key, keep="last").reset_index(drop=True)
    # Rounds first, from their samples: dedupe then sees one row per measurement,
    # and its "measured more than once" count is not inflated by rounds.
    df = combine_rounds(df, samples)
    before = len(df)
    df = dedupe(df)
    if len(frames) > 1 and len(df) < before:
        warnings.warn(f"{before - len(df)} rows were measured more than once on the same machine; "
                      "using the run given last", SymbenchWarning)
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


def rounds_of(metas: Sequence[Mapping[str, Any]], df: pd.DataFrame | None = None) -> int:
    """How many rounds (fresh-process repetitions of the whole sweep) the runs' statistics rest on.

    Parameters
    ----------
    metas : sequence of dict
        ``run.json`` of each run (its ``config.rounds``; 1 when absent).
    df : pandas.DataFrame, optional
        The combined measurements (:func:`combine_rounds`). When they have a
        ``rounds`` column they decide: the fewest, over runs, of the most rounds
        any ok row of the run pooled. The data rather than the config, because a
        round that failed or was interrupted pooled nothing.

    Returns
    -------
    int
        1 when some run rests on a single round: its confidence covers only the
        noise within one process.
    """
    if df is not None and "rounds" in df.columns and len(df):
        ok = df[df["status"] == "ok"] if "status" in df.columns else df
        r = pd.to_numeric(ok["rounds"], errors="coerce")
        if r.notna().any():
            by_run = r.groupby(ok["run_id"]).max() if "run_id" in ok.columns else r.max()
            return max(1, int(np.nanmin(np.atleast_1d(by_run))))
    counts = [int(((m or {}).get("config") or {}).get("rounds") or 1) for m in metas if m] or [1]
    return min(counts)


#: Statuses of a round that make the whole measurement fail, whatever the other rounds say.
FAILING_STATUSES = ("mismatch", "error")


def _round_numbers(df: pd.DataFrame) -> np.ndarray:
    # Schema 1 has no `round` column and an empty cell means round 0 too.
    if "round" not in df.columns:
        return np.zeros(len(df), dtype=np.int64)
    return pd.to_numeric(df["round"], errors="coerce").fillna(0).to_numpy().astype(np.int64)


def _str_key(df: pd.DataFrame, cols: Sequence[str]) -> pd.Series:
    # One string per row: tables read separately may type a key column differently
    # (int vs str), as in `_key`; the separator cannot occur in a key field.
    out = df[cols[0]].astype(str)
    for c in cols[1:]:
        out = out + "\x1f" + df[c].astype(str)
    return out


def combine_rounds(df: pd.DataFrame, samples: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per measurement: the rows of its rounds pooled.

    Rows of the same (run_id, kernel, problem key, source) that differ only in
    ``round`` become one row:

    * a ``mismatch`` or ``error`` in any round wins over ok (a wrong result or
      a crash is not averaged away): the row of the first such round is kept,
      its message prefixed with ``round R:``;
    * else, when some round is ok, the ok rounds are pooled (other rounds are
      left out). With ``samples`` holding every ok round's samples, ``time_s``,
      ``time_min_s``, ``time_q1_s``, ``time_q3_s``, ``time_mean_s``,
      ``time_std_s`` and ``samples`` are recomputed from the pooled samples
      (:func:`~symbench.analysis.stats.grouped_summary`). Without them:
      ``time_s``, ``time_q1_s`` and ``time_q3_s`` are the medians of the
      rounds', ``time_min_s`` their minimum, ``samples`` their sum, and the mean
      and standard deviation those of the pooled samples, exact from each
      round's mean, standard deviation and count. ``loops`` and ``rel_err`` are
      the largest of the rounds, ``setup_s`` and ``host_time_s`` the medians;
      ``gflops`` is rescaled to the new ``time_s`` (it is flops / time); other
      columns are the first ok round's;
    * else the first round's row is kept.

    Parameters
    ----------
    df : pandas.DataFrame
        Measurements; without a ``round`` column (schema 1) every row is round 0,
        and an empty ``round`` is round 0 too.
    samples : pandas.DataFrame, optional
        Raw samples (``samples.csv``) with their ``round``.

    Returns
    -------
    pandas.DataFrame
        ``df`` without ``round`` and with ``rounds``: the number of rounds whose
        statistics the row carries (the ok rounds pooled; 1 for a row of a single
        round, including a failed row). Rows keep their index and their order
        (each measurement where its first row was).
    """
    if "round" not in df.columns:
        return df if "rounds" in df.columns else df.assign(rounds=1)
    rnd = _round_numbers(df)
    cols = [c for c in SAMPLE_KEY if c in df.columns]
    work = df.assign(_round=rnd, _pos=np.arange(len(df)))
    if "source" not in work.columns:
        work["source"] = "grid"
        cols = [*cols, "source"] if "source" not in cols else cols
    work["_gid"] = work.groupby(cols, sort=False, dropna=False).ngroup().to_numpy()
    n_rounds = work.groupby("_gid")["_round"].transform("nunique").to_numpy()
    multi = n_rounds > 1
    single = work[~multi].assign(rounds=1)
    if not multi.any():
        out = single
    else:
        out = pd.concat([single, _combine_multi(work[multi], cols, samples)])
    out = out.sort_values("_pos", kind="stable").drop(columns=["_round", "_pos", "_gid", "round"])
    if "source" not in df.columns:
        out = out.drop(columns="source")
    out["rounds"] = out["rounds"].astype("int64")
    for c in ("samples", "loops"):
        # Pooling sums and maxima in floats; give the counts back their integer type.
        if c in df.columns and pd.api.types.is_integer_dtype(df[c]) and out[c].notna().all():
            out[c] = out[c].astype(df[c].dtype)
    return out


def _combine_multi(m: pd.DataFrame, cols: Sequence[str], samples: pd.DataFrame | None) -> pd.DataFrame:
    """:func:`combine_rounds` of the rows whose measurement has several rounds."""
    status = m["status"].astype(str)
    # Two copies of one (measurement, round) come from a run given twice: like
    # dedupe, keep the last, ok first.
    order = np.where(status.to_numpy() == "ok", len(m), 0) + np.arange(len(m))
    m = (m.assign(_o=order).sort_values("_o", kind="stable").drop_duplicates(["_gid", "_round"], keep="last")
         .sort_values(["_gid", "_round"], kind="stable").drop(columns="_o"))
    status = m["status"].astype(str)
    failing = status.isin(FAILING_STATUSES).to_numpy()
    fail_gids = set(m.loc[failing, "_gid"])
    failed = m[failing].drop_duplicates("_gid", keep="first").copy()
    msg = failed["message"].fillna("").astype(str) if "message" in failed.columns else ""
    failed["message"] = "round " + failed["_round"].astype(str) + ": " + msg
    failed["rounds"] = 1
    ok = m[(status == "ok").to_numpy() & ~m["_gid"].isin(fail_gids).to_numpy()]
    ok_gids = set(ok["_gid"])
    rest = m[~m["_gid"].isin(fail_gids | ok_gids)].drop_duplicates("_gid", keep="first").assign(rounds=1)
    parts = [failed, rest]
    if len(ok):
        parts.append(_pool_ok(ok, cols, samples))
    return pd.concat(parts)


def _pool_ok(ok: pd.DataFrame, cols: Sequence[str], samples: pd.DataFrame | None) -> pd.DataFrame:
    """One row per measurement from its ok rounds (``_gid`` marks the measurement)."""
    gid = ok["_gid"]
    g = ok.groupby("_gid", sort=False)
    out = ok.drop_duplicates("_gid", keep="first").set_index("_gid", drop=False)
    num = {c: pd.to_numeric(ok[c], errors="coerce") for c in
           ("time_s", "time_min_s", "time_q1_s", "time_q3_s", "time_mean_s", "time_std_s", "samples")
           if c in ok.columns}
    first_time = out["time_s"].astype(float)
    stats = pd.DataFrame(index=out.index)
    stats["time_s"] = num["time_s"].groupby(gid).median()
    for c, how in (("time_min_s", "min"), ("time_q1_s", "median"), ("time_q3_s", "median")):
        if c in num:
            stats[c] = num[c].groupby(gid).agg(how)
    if "samples" in num:
        n_i = num["samples"].fillna(1).clip(lower=1)
        stats["samples"] = n_i.groupby(gid).sum()
        if "time_mean_s" in num:
            # Pooled mean and standard deviation from each round's (mean, std, count):
            # the total sum of squares is the within-round plus the between-round part.
            m_i = num["time_mean_s"]
            n_tot = n_i.groupby(gid).transform("sum")
            mean = (n_i * m_i).groupby(gid).transform("sum") / n_tot
            stats["time_mean_s"] = mean.groupby(gid).first()
            if "time_std_s" in num:
                ss = (n_i - 1) * num["time_std_s"].fillna(0.0) ** 2 + n_i * (m_i - mean) ** 2
                n_sum = stats["samples"]
                var = ss.groupby(gid).sum() / (n_sum - 1).where(n_sum > 1)
                stats["time_std_s"] = np.sqrt(var).fillna(0.0)
    if samples is not None and len(samples) and "time_s" in samples.columns:
        from_samples = _pooled_from_samples(ok, cols, samples)
        if len(from_samples):
            stats.loc[from_samples.index, from_samples.columns] = from_samples
    for c in stats.columns:
        out[c] = stats[c].to_numpy()
    if "loops" in ok.columns:
        out["loops"] = pd.to_numeric(ok["loops"], errors="coerce").groupby(gid).max().reindex(out.index).to_numpy()
    if "rel_err" in ok.columns:
        out["rel_err"] = pd.to_numeric(ok["rel_err"], errors="coerce").groupby(gid).max().reindex(out.index).to_numpy()
    for c in ("setup_s", "host_time_s"):
        if c in ok.columns:
            out[c] = pd.to_numeric(ok[c], errors="coerce").groupby(gid).median().reindex(out.index).to_numpy()
    if "gflops" in ok.columns:
        # gflops is flops / time_s: the flops are those of any round, so rescale the first round's.
        with np.errstate(divide="ignore", invalid="ignore"):
            out["gflops"] = (pd.to_numeric(out["gflops"], errors="coerce").to_numpy(dtype=float)
                             * first_time.to_numpy() / out["time_s"].to_numpy(dtype=float))
    out["rounds"] = g.size().reindex(out.index).to_numpy()
    return out.reset_index(drop=True).set_index(ok.index[~gid.duplicated()])


def _pooled_from_samples(ok: pd.DataFrame, cols: Sequence[str], samples: pd.DataFrame) -> pd.DataFrame:
    """Statistics of the pooled samples of the measurements whose every ok round has samples."""
    s = samples
    if "source" not in s.columns:
        s = s.assign(source="grid")
    if any(c not in s.columns for c in cols):
        return pd.DataFrame()
    left = pd.DataFrame({"_k": _str_key(ok, cols).to_numpy(), "_round": ok["_round"].to_numpy(),
                         "_gid": ok["_gid"].to_numpy()})
    right = pd.DataFrame({"_k": _str_key(s, cols).to_numpy(), "_round": _round_numbers(s),
                          "time_s": pd.to_numeric(s["time_s"], errors="coerce").to_numpy(dtype=float)})
    right = right[np.isfinite(right["time_s"].to_numpy())]
    joined = left.merge(right, on=["_k", "_round"], how="inner")
    if len(joined) == 0:
        return pd.DataFrame()
    # Pool only when every ok round brought samples; else the rounds' summaries decide.
    have = joined.groupby("_gid")["_round"].nunique()
    need = left.groupby("_gid")["_round"].nunique()
    full = have.index[have.to_numpy() == need.reindex(have.index).to_numpy()]
    joined = joined[joined["_gid"].isin(full)]
    return grouped_summary(joined["time_s"], joined["_gid"])


def dedupe(df: pd.DataFrame) -> pd.DataFrame:
    """Keep the last row of each (machine, kernel, problem); ``ok`` rows win over others.

    Rows of several rounds of one measurement (``round``, as straight from
    :func:`symbench.store.load`) are first combined by :func:`combine_rounds`
    from their summaries, so that every caller gets one row per measurement.
    """
    if "machine_id" not in df.columns:  # straight from store.load: its run.json is in attrs
        mid, label = machine_of(df.attrs.get("run"))
        df = df.assign(machine_id=mid, machine=label)
    if "round" in df.columns or "rounds" not in df.columns:
        df = combine_rounds(df)
    # A grid row and an adaptive row of one problem are two measurements of the
    # same thing; a failed re-measurement must not hide a good one.
    order = np.arange(len(df)) + np.where(df["status"].to_numpy() == "ok", len(df), 0)
    keep = (df.assign(_order=order).sort_values("_order", kind="stable")
            .drop_duplicates(list(ROW_KEY), keep="last").sort_index())
    return keep.drop(columns="_order")


def _key(values: Sequence[Any]) -> tuple[str, ...]:
    # Strings on both sides: ints read from two CSVs compare equal whatever their dtype.
    return tuple(str(v) for v in values)


def _usable_samples(samples: pd.DataFrame | None) -> pd.DataFrame | None:
    """A copy of ``samples`` with a ``source`` and finite numeric ``time_s`` (None when there are none)."""
    if samples is None or len(samples) == 0 or "time_s" not in samples.columns:
        return None
    s = samples.copy()
    if "source" not in s.columns:
        s["source"] = "grid"
    missing = [c for c in SAMPLE_KEY if c not in s.columns]
    if missing:
        raise RunDirError(f"samples table lacks columns {', '.join(missing)}; "
                          "give the samples.csv of a symbench run")
    s["time_s"] = pd.to_numeric(s["time_s"], errors="coerce")
    return s[np.isfinite(s["time_s"].to_numpy(dtype=float))]


def sample_index(samples: pd.DataFrame | None) -> dict[tuple[str, ...], np.ndarray]:
    """Raw sample times (seconds per call) by (run_id, kernel, problem key, source)."""
    s = _usable_samples(samples)
    if s is None:
        return {}
    out: dict[tuple[str, ...], np.ndarray] = {}
    cols = list(SAMPLE_KEY)
    for key, g in s.groupby(cols, sort=False):
        # Sorted, so that resampling does not depend on the order rows were read in.
        out[_key(key)] = np.sort(g["time_s"].to_numpy(dtype=float))
    return out


def sample_rounds(samples: pd.DataFrame | None) -> dict[tuple[str, ...], tuple[np.ndarray, ...]]:
    """Raw sample times by (run_id, kernel, problem key, source), one sorted array per round.

    The rounds come in ascending order of ``round``; a table without ``round``
    (schema 1) has one round. Keys are those of :func:`sample_index`.
    """
    s = _usable_samples(samples)
    if s is None:
        return {}
    s = s.assign(_round=_round_numbers(s)).sort_values("_round", kind="stable")
    out: dict[tuple[str, ...], tuple[np.ndarray, ...]] = {}
    for key, g in s.groupby(list(SAMPLE_KEY), sort=False):
        t = g["time_s"].to_numpy(dtype=float)
        r = g["_round"].to_numpy()
        cuts = np.flatnonzero(np.diff(r)) + 1
        out[_key(key)] = tuple(np.sort(part) for part in np.split(t, cuts))
    return out


def row_rounds(index: Mapping[tuple[str, ...], tuple[np.ndarray, ...]],
               row: Mapping[str, Any]) -> tuple[np.ndarray, ...] | None:
    """The raw samples of one measurement row, one array per round, or None when there are none."""
    if not index:
        return None
    key = _key([row.get(c, "grid" if c == "source" else "") for c in SAMPLE_KEY])
    found = index.get(key)
    return found if found else None


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
