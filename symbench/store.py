"""The files of a run: ``measurements.csv``, ``samples.csv`` and ``run.json``.

Rows are appended and flushed one at a time, so a crash or Ctrl-C loses at
most the row in flight; a half-written last line is cut off when the run is
resumed and skipped with a warning when it is loaded. ``run.json`` is always
replaced atomically.

Versions of the format (``schema_version`` in ``run.json``):

1. First version: the fixed columns (docs/formats.md), then ``source`` (``grid`` or
   ``adaptive``), ``host_time_s`` (host wall time of device kernels),
   ``seed`` and ``setup_notes``; ``samples.csv`` holds one row per sample.

An older file still loads (missing extra columns are filled in); a file
written by a newer symbench is refused with a message.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import secrets
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from symbench.errors import RunDirError, SchemaError, SymbenchWarning
from symbench.problem import KEY_FIELDS

SCHEMA_VERSION = 1
SCHEMA_NOTES = {
    1: "first version: the fixed columns + source, host_time_s, seed, setup_notes; samples.csv one row per sample",
}

#: ``measurements.csv`` columns, in the order fixed by the file format (docs/formats.md), then ours.
COLUMNS = (
    "run_id", "kernel", "method", "op", "group", "library", "device", "dim", "n", "k", "batch",
    "c_in", "c_out", "dtype", "mode", "threads", "samples", "loops", "time_s", "time_min_s",
    "time_q1_s", "time_q3_s", "time_mean_s", "time_std_s", "setup_s", "gflops", "rel_err",
    "status", "message",
    "source", "host_time_s", "seed", "setup_notes",
)
SAMPLE_COLUMNS = ("run_id", "kernel", *KEY_FIELDS, "source", "sample", "loops", "time_s", "host_time_s")
STATUSES = ("ok", "mismatch", "error", "skipped", "timeout")
INT_COLUMNS = ("dim", "n", "k", "batch", "c_in", "c_out", "threads", "samples", "loops", "seed")
FLOAT_COLUMNS = ("time_s", "time_min_s", "time_q1_s", "time_q3_s", "time_mean_s", "time_std_s",
                 "setup_s", "gflops", "rel_err", "host_time_s")
#: The columns a CSV must have to be read as measurements.
REQUIRED_COLUMNS = COLUMNS[:29]

MEASUREMENTS = "measurements.csv"
SAMPLES = "samples.csv"
RUN_JSON = "run.json"


def new_run_id(now: datetime | None = None) -> str:
    """``YYYYmmdd-HHMMSS-xxxx``: sortable by time, unique by the random suffix."""
    now = now or datetime.now()
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def fmt_value(value: Any) -> str:
    """A value as it is written to (and read back from) the CSV files: exact floats, empty for None/NaN."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return repr(float(value))  # shortest exact round-trip form (also for numpy floats)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _csv_line(values: Sequence[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([fmt_value(v) for v in values])
    return buf.getvalue()


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def _cut_partial_line(path: Path) -> bool:
    """Truncate a file after its last newline; True when something was cut."""
    if not path.exists():
        return False
    size = path.stat().st_size
    if size == 0:
        return False
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return False
        data = path.read_bytes()
        f.truncate(data.rfind(b"\n") + 1)
    return True


# -- run.json ---------------------------------------------------------------------------

def read_run_json(run_dir: str | Path) -> dict[str, Any]:
    """The run's metadata; refuses a newer schema and anything that is not a run."""
    run_dir = Path(run_dir)
    path = run_dir / RUN_JSON
    if not run_dir.is_dir():
        raise RunDirError(f"{str(run_dir)!r} is not a directory; give a run directory made by symbench sweep")
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RunDirError(f"{str(run_dir)!r} is not a symbench run (no {RUN_JSON})") from None
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path}: cannot read run metadata ({exc})") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise RunDirError(f"{path}: not a symbench run.json (no schema_version)")
    check_schema(data.get("schema_version"), str(path))
    return data


def check_schema(version: Any, where: str) -> int:
    try:
        v = int(version)
    except (TypeError, ValueError):
        raise RunDirError(f"{where}: schema_version {version!r} is not a number") from None
    if v > SCHEMA_VERSION:
        raise SchemaError(
            f"{where}: written by a newer symbench (schema {v}); this version reads schema "
            f"<= {SCHEMA_VERSION}; upgrade symbench to read it"
        )
    return v


# -- writing ------------------------------------------------------------------------------

@dataclass
class RunWriter:
    """Appends rows to a run directory and keeps ``run.json`` up to date.

    Use :meth:`create` for a new run and :meth:`reopen` to resume one.
    """

    run_dir: Path
    meta: dict[str, Any]

    @classmethod
    def create(cls, run_dir: str | Path, meta: Mapping[str, Any]) -> "RunWriter":
        """Start a new run; refuses a directory that already holds a run or other files."""
        run_dir = Path(run_dir)
        if (run_dir / RUN_JSON).exists():
            try:
                complete = bool(json.loads((run_dir / RUN_JSON).read_text()).get("complete"))
            except (OSError, ValueError):
                complete = False
            if complete:
                raise RunDirError(f"--out {str(run_dir)!r} already holds a completed run; "
                                  "choose a new directory or delete it")
            raise RunDirError(f"--out {str(run_dir)!r} already holds an unfinished run; "
                              f"continue it with --resume {run_dir} or choose a new directory")
        if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
            raise RunDirError(f"--out {str(run_dir)!r} exists and is not an empty directory; "
                              "choose a new directory")
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"cannot create --out {str(run_dir)!r}: {exc.strerror}") from None
        full = {"schema_version": SCHEMA_VERSION, "schema_note": SCHEMA_NOTES[SCHEMA_VERSION],
                **meta, "complete": False, "finished": None}
        writer = cls(run_dir, full)
        (run_dir / MEASUREMENTS).write_text(_csv_line(COLUMNS))
        (run_dir / SAMPLES).write_text(_csv_line(SAMPLE_COLUMNS))
        writer.save_meta()
        return writer

    @classmethod
    def reopen(cls, run_dir: str | Path) -> "RunWriter":
        """Open an existing run to append to it, repairing what a crash may have left."""
        run_dir = Path(run_dir)
        meta = read_run_json(run_dir)
        for name in (MEASUREMENTS, SAMPLES):
            if not (run_dir / name).exists():
                raise RunDirError(f"{str(run_dir)!r} is not a complete run directory (no {name})")
            if _cut_partial_line(run_dir / name):
                warnings.warn(f"{run_dir / name}: dropped a half-written last line", SymbenchWarning)
        writer = cls(run_dir, meta)
        writer._drop_orphan_samples()
        return writer

    def _drop_orphan_samples(self) -> None:
        # Samples are written just before their row; a crash in between leaves
        # samples without a row, which the re-measurement would duplicate. A
        # row's samples are numbered 0 .. samples-1: an adaptive re-measurement
        # appends samples numbered from there and then replaces its row, so a
        # crash in between leaves samples past the row's count, dropped here too.
        counts: dict[tuple[str, ...], int | None] = {}
        for r in self.rows():
            try:
                counts[self._row_key(r)] = int(r.get("samples") or "")
            except ValueError:
                counts[self._row_key(r)] = None
        path = self.run_dir / SAMPLES
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            return
        header, body = rows[0], rows[1:]
        idx = [header.index(c) for c in ("kernel", *KEY_FIELDS, "source")]
        i_sample = header.index("sample") if "sample" in header else None

        def keep(r: list[str]) -> bool:
            key = tuple(r[i] for i in idx)
            if key not in counts:
                return False
            limit = counts[key]
            if limit is None or i_sample is None:
                return True
            try:
                return int(r[i_sample]) < limit
            except ValueError:
                return True

        kept = [r for r in body if keep(r)]
        if len(kept) != len(body):
            tmp = path.with_name(f".{path.name}.tmp")
            with open(tmp, "w", newline="") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(header)
                w.writerows(kept)
            os.replace(tmp, path)

    @staticmethod
    def _row_key(row: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(str(row[c]) for c in ("kernel", *KEY_FIELDS, "source"))

    def rows(self) -> list[dict[str, str]]:
        """The rows on disk, as strings."""
        with open(self.run_dir / MEASUREMENTS, newline="") as f:
            return list(csv.DictReader(f))

    def done_keys(self) -> set[tuple[str, ...]]:
        """(kernel, *problem key, source) of every row already written."""
        return {self._row_key(r) for r in self.rows()}

    def append(self, row: Mapping[str, Any], samples: Iterable[Mapping[str, Any]] = ()) -> None:
        """Write the samples, then the row; each file flushed and synced to disk."""
        lines = "".join(_csv_line([s.get(c) for c in SAMPLE_COLUMNS]) for s in samples)
        if lines:
            self._append(SAMPLES, lines)
        self._append(MEASUREMENTS, _csv_line([row.get(c) for c in COLUMNS]))

    def replace_row(self, row: Mapping[str, Any], samples: Iterable[Mapping[str, Any]] = ()) -> None:
        """Append more ``samples`` of an existing row, then replace that row (same key) with ``row``.

        Used by the adaptive search when it re-measures a point: the new samples
        go to ``samples.csv`` (numbered after the row's earlier ones) and the row,
        with statistics over all of them, replaces the old one, so
        ``measurements.csv`` keeps one row per (kernel, problem). The row file is
        rewritten atomically (a crash leaves the old or the new file, never half
        of one); a crash between the two writes leaves extra samples, which
        :meth:`reopen` drops.
        """
        lines = "".join(_csv_line([s.get(c) for c in SAMPLE_COLUMNS]) for s in samples)
        path = self.run_dir / MEASUREMENTS
        with open(path, newline="") as f:
            table = list(csv.reader(f))
        header, body = table[0], table[1:]
        idx = [header.index(c) for c in ("kernel", *KEY_FIELDS, "source")]
        key = tuple(fmt_value(row.get(c)) for c in ("kernel", *KEY_FIELDS, "source"))
        hits = [i for i, r in enumerate(body) if tuple(r[j] for j in idx) == key]
        if not hits:
            raise RunDirError(f"{path}: no row {key} to replace")
        if lines:
            self._append(SAMPLES, lines)
        new_line = _csv_line([row.get(c) for c in header])
        text = [_csv_line(header)] + [new_line if i == hits[-1] else _csv_line(r) for i, r in enumerate(body)]
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", newline="") as f:
            f.write("".join(text))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def _append(self, name: str, text: str) -> None:
        # One write per row: a reader never sees a row without its end of line
        # unless the process died inside this call.
        with open(self.run_dir / name, "a", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    def save_meta(self) -> None:
        _write_json_atomic(self.run_dir / RUN_JSON, self.meta)

    def finish(self, complete: bool, **extra: Any) -> None:
        self.meta.update(extra)
        self.meta["complete"] = complete
        self.meta["finished"] = utcnow()
        self.save_meta()


# -- reading -----------------------------------------------------------------------------

def _read_csv_text(path: Path) -> str:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise RunDirError(f"{str(path)!r} does not exist; give a run directory or a measurements CSV") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirError(f"cannot read {str(path)!r}: {exc}") from None
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
        warnings.warn(f"{path}: skipped a truncated last line (a crash leaves one)", SymbenchWarning)
    return text


def _measurements_path(path: str | Path) -> tuple[Path, dict[str, Any] | None]:
    path = Path(path)
    if path.is_dir():
        meta = read_run_json(path)
        return path / MEASUREMENTS, meta
    if not path.exists():
        raise RunDirError(f"{str(path)!r} does not exist; give a run directory or a measurements CSV")
    meta = None
    if (path.parent / RUN_JSON).exists() and path.name == MEASUREMENTS:
        meta = read_run_json(path.parent)
    return path, meta


def load(path: str | Path) -> "Any":
    """Load a run's measurements as a pandas DataFrame.

    Parameters
    ----------
    path : str or Path
        A run directory or a ``measurements.csv`` file.

    Returns
    -------
    pandas.DataFrame
        One row per (kernel, problem), with the columns of :data:`COLUMNS`;
        ``df.attrs["run"]`` holds ``run.json`` when there is one.

    Raises
    ------
    RunDirError
        A missing path, a file that is not a run, or a CSV without the fixed columns of docs/formats.md.
    SchemaError
        A run written by a newer symbench.
    """
    import pandas as pd

    csv_path, meta = _measurements_path(path)
    text = _read_csv_text(csv_path)
    try:
        df = pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""],
                         dtype={c: str for c in ("message", "group", "setup_notes", "run_id")})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise RunDirError(f"{csv_path}: not a measurements CSV ({str(exc).splitlines()[0]})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise RunDirError(f"{csv_path}: not a symbench measurements CSV; missing columns: "
                          f"{', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}")
    for c in COLUMNS:
        if c not in df.columns:  # older schema: fill what it did not have
            df[c] = "grid" if c == "source" else (0 if c == "seed" else math.nan)
    for c in INT_COLUMNS:
        df[c] = pd.to_numeric(df[c], errors="coerce").fillna(0).astype("int64")
    for c in FLOAT_COLUMNS:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    for c in ("message", "setup_notes"):
        df[c] = df[c].astype(object).where(df[c].notna(), "").astype(str)
    df["group"] = df["group"].fillna("none").astype(str)
    if meta is not None:
        df.attrs["run"] = meta
    return df


def load_samples(path: str | Path) -> "Any":
    """The raw samples of a run (``samples.csv``) as a DataFrame; empty if there are none."""
    import pandas as pd

    path = Path(path)
    run_dir = path if path.is_dir() else path.parent
    sp = run_dir / SAMPLES
    if not sp.exists():
        return pd.DataFrame(columns=list(SAMPLE_COLUMNS))
    text = _read_csv_text(sp)
    try:
        df = pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""],
                         dtype={"group": str, "run_id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise RunDirError(f"{sp}: not a samples CSV ({str(exc).splitlines()[0]})") from None
    if "source" not in df.columns:
        df["source"] = "grid"
    df["group"] = df["group"].fillna("none").astype(str)
    return df
