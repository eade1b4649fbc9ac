"""The files of a run: ``measurements.csv``, ``samples.csv`` and ``run.json``.

Rows are appended and flushed one at a time, so a crash or Ctrl-C loses at
most the row in flight; a half-written last line is cut off when the run is
resumed and skipped with a warning when it is loaded. ``run.json`` is always
replaced atomically. A writer holds an OS lock on ``RUN_DIR/.lock`` (released
when its process dies), so two sweeps never write one directory.

Reading is tolerant: :func:`load` and :func:`load_samples` parse every line on
its own, with explicit types, skip the lines that do not parse and warn once
per file with their count and the first bad line's number.

Versions of the format (``schema_version`` in ``run.json``):

1. First version: the fixed columns (docs/formats.md), then ``source`` (``grid`` or
   ``adaptive``), ``host_time_s`` (host wall time of device kernels),
   ``seed`` and ``setup_notes``; ``samples.csv`` holds one row per sample.
2. Rounds: ``round`` (0-based) in both files, one row per (kernel, problem,
   source, round); ``samples.csv`` also ``steal_share`` and ``others_cores``,
   the machine's noise while the sample's problem was measured. A file of
   version 1 loads as round 0 with empty noise columns.

An older file still loads (missing extra columns are filled in); a file
written by a newer symbench is refused with a message.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import json
import math
import os
import secrets
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from symbench.errors import RunDirError, SchemaError, SymbenchWarning
from symbench.problem import KEY_FIELDS

SCHEMA_VERSION = 2
SCHEMA_NOTES = {
    1: "first version: the fixed columns + source, host_time_s, seed, setup_notes; samples.csv one row per sample",
    2: "rounds: a round column in both files (one row per kernel, problem, source and round); "
       "samples.csv also steal_share and others_cores",
}

#: ``measurements.csv`` columns, in the order fixed by the file format (docs/formats.md), then ours.
COLUMNS = (
    "run_id", "kernel", "method", "op", "group", "library", "device", "dim", "n", "k", "batch",
    "c_in", "c_out", "dtype", "mode", "threads", "samples", "loops", "time_s", "time_min_s",
    "time_q1_s", "time_q3_s", "time_mean_s", "time_std_s", "setup_s", "gflops", "rel_err",
    "status", "message",
    "source", "host_time_s", "seed", "setup_notes", "round",
)
SAMPLE_COLUMNS = ("run_id", "kernel", *KEY_FIELDS, "source", "sample", "loops", "time_s", "host_time_s", "round",
                  "steal_share", "others_cores")
STATUSES = ("ok", "mismatch", "error", "skipped", "timeout")
INT_COLUMNS = ("dim", "n", "k", "batch", "c_in", "c_out", "threads", "samples", "loops", "seed", "round")
FLOAT_COLUMNS = ("time_s", "time_min_s", "time_q1_s", "time_q3_s", "time_mean_s", "time_std_s",
                 "setup_s", "gflops", "rel_err", "host_time_s")
#: The columns a CSV must have to be read as measurements.
REQUIRED_COLUMNS = COLUMNS[:29]

#: The columns a ``samples.csv`` must have to be read as samples.
SAMPLE_REQUIRED = ("run_id", "kernel", *KEY_FIELDS, "time_s")
SAMPLE_INT_COLUMNS = ("dim", "n", "k", "batch", "c_in", "c_out", "threads", "sample", "loops", "round")
#: Integer columns that must hold a value for a line to count (the problem key).
KEY_INT_COLUMNS = ("dim", "n", "k", "batch", "c_in", "c_out", "threads")

#: What identifies a row of ``measurements.csv`` within a run (and its samples).
ROW_KEY_COLUMNS = ("kernel", *KEY_FIELDS, "source", "round")
#: The value of an empty (or, in an older file, missing) key column.
_KEY_DEFAULTS = {"source": "grid", "round": "0"}

MEASUREMENTS = "measurements.csv"
LOCK = ".lock"
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


# -- the lock ---------------------------------------------------------------------------

def _lock_holder(path: Path) -> str:
    # The holder writes its PID right after taking the lock; a loser that reads
    # in between waits a moment rather than name nobody.
    for _ in range(20):
        try:
            text = path.read_text().strip()
        except OSError:
            text = ""
        if text:
            return f"pid {text}"
        time.sleep(0.05)
    return "another process"


class RunLock:
    """An exclusive ``fcntl.flock`` on ``RUN_DIR/.lock``, held while a run is written.

    The kernel drops the lock when its process dies (even by ``kill -9``), so a
    stale lock file never blocks anyone; only a live writer does.
    """

    def __init__(self, fd: int, path: Path) -> None:
        self.fd: int | None = fd
        self.path = path

    @classmethod
    def acquire(cls, run_dir: Path) -> "RunLock":
        """Take the lock or raise :class:`RunDirError` naming the holder's PID.

        ``OSError`` from creating the lock file (read-only, no space, no
        permission) is left to the caller, which knows what it had created.
        """
        path = run_dir / LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise RunDirError(f"{str(run_dir)!r} is in use by another symbench ({_lock_holder(path)}); "
                              "wait for it to finish or stop it, or choose another directory") from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass  # the lock holds without the PID; only the message of a loser gets vaguer
        return cls(fd, path)

    def __del__(self) -> None:
        # A writer dropped without close() must not keep its directory locked
        # for the rest of a long-lived process (a notebook, a test session).
        self.release()

    def release(self) -> None:
        if getattr(self, "fd", None) is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = None


# -- free space ---------------------------------------------------------------------------

#: Never start writing a run on a filesystem with less free than this.
MIN_FREE_BYTES = 1 << 20
#: Rough sizes of what a run writes, for :func:`estimate_bytes` (measured lines are 250-350 bytes).
ROW_BYTES, SAMPLE_BYTES, META_BYTES = 400, 160, 64 << 10


def estimate_bytes(rows: int, repeat: int) -> int:
    """About how many bytes a run of ``rows`` rows with ``repeat`` samples each writes."""
    return META_BYTES + rows * (ROW_BYTES + repeat * SAMPLE_BYTES)


def check_free_space(run_dir: str | Path, need: int) -> None:
    """Refuse to start when the filesystem of ``run_dir`` has too little room.

    A run needs room for its rows, and as much again for the atomic rewrites of
    ``run.json`` and (adaptive sweeps) ``measurements.csv``; so the floor is
    twice ``need``, and never under :data:`MIN_FREE_BYTES`. A disk that fills
    up anyway is handled where it happens (rows kept, run marked incomplete).
    """
    p = Path(run_dir).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        st = os.statvfs(p)
    except OSError:
        return  # cannot tell: the writes themselves will say
    free = st.f_bavail * st.f_frsize
    want = max(MIN_FREE_BYTES, 2 * need)
    if free < want:
        raise RunDirError(f"only {free // 1024} KiB free on the filesystem of {str(run_dir)!r}; this sweep needs "
                          f"about {want // 1024} KiB; free some space or choose another --out (nothing was written)")


# -- writing ------------------------------------------------------------------------------

def _io_reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


@dataclass
class RunWriter:
    """Appends rows to a run directory and keeps ``run.json`` up to date.

    Use :meth:`create` for a new run and :meth:`reopen` to resume one; both take
    the directory's lock, which :meth:`close` (or the process's death) releases.
    Rows are written in the order of the header the file has on disk.
    """

    run_dir: Path
    meta: dict[str, Any]
    lock: RunLock | None = None
    headers: dict[str, list[str]] = field(default_factory=dict)
    #: Keys of the rows this writer appended (checked by :meth:`check_readback`).
    written: set[tuple[str, ...]] = field(default_factory=set)

    @staticmethod
    def _refuse_existing(run_dir: Path) -> None:
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
        if run_dir.exists() and (not run_dir.is_dir() or any(p.name != LOCK for p in run_dir.iterdir())):
            raise RunDirError(f"--out {str(run_dir)!r} exists and is not an empty directory; "
                              "choose a new directory")

    @classmethod
    def create(cls, run_dir: str | Path, meta: Mapping[str, Any]) -> "RunWriter":
        """Start a new run; refuses a directory that already holds a run or other files.

        The lock is taken before anything is written, so of two sweeps started
        into one new directory at once exactly one wins. A start that fails on
        I/O (read-only, no space, no permission) removes what it created, so the
        directory can be used again.
        """
        run_dir = Path(run_dir)
        if run_dir.exists() and not run_dir.is_dir():
            cls._refuse_existing(run_dir)
        made_dirs: list[Path] = []
        made_files: list[Path] = []
        lock: RunLock | None = None
        try:
            missing = [p for p in (run_dir, *run_dir.parents) if not p.exists()]
            for d in reversed(missing):
                try:
                    d.mkdir()
                    made_dirs.append(d)
                except FileExistsError:
                    pass  # a concurrent sweep made it; the lock decides who writes
            had_lock = (run_dir / LOCK).exists()
            lock = RunLock.acquire(run_dir)
            if not had_lock:
                made_files.append(run_dir / LOCK)
            # Under the lock: a run being written is "in use" (above), one whose
            # writer is gone is "unfinished" (resume it), a finished one is refused.
            cls._refuse_existing(run_dir)
            full = {"schema_version": SCHEMA_VERSION, "schema_note": SCHEMA_NOTES[SCHEMA_VERSION],
                    **meta, "complete": False, "finished": None}
            writer = cls(run_dir, full, lock, {MEASUREMENTS: list(COLUMNS), SAMPLES: list(SAMPLE_COLUMNS)})
            for name, cols in ((MEASUREMENTS, COLUMNS), (SAMPLES, SAMPLE_COLUMNS)):
                made_files.append(run_dir / name)
                _write_synced(run_dir / name, _csv_line(cols))
            made_files.append(run_dir / RUN_JSON)
            writer.save_meta()
            return writer
        except OSError as exc:
            cls._undo(made_files, made_dirs, lock)
            raise RunDirError(f"cannot start a run in --out {str(run_dir)!r}: {_io_reason(exc)}; "
                              "nothing was kept") from None
        except BaseException:
            cls._undo(made_files, made_dirs, lock)
            raise

    @staticmethod
    def _undo(files: list[Path], dirs: list[Path], lock: RunLock | None) -> None:
        for f in files:
            for p in (f, f.with_name(f".{f.name}.{os.getpid()}.tmp")):
                try:
                    p.unlink()
                except OSError:
                    pass
        if lock is not None:
            lock.release()
        for d in reversed(dirs):
            try:
                d.rmdir()
            except OSError:
                pass

    @classmethod
    def reopen(cls, run_dir: str | Path) -> "RunWriter":
        """Open an existing run to append to it, repairing what a crash may have left.

        Takes the lock first (a second resume of a run being written is refused),
        then reads each file's header: rows are appended in that order. An empty
        file gets the header back; a file whose first line is not a header is
        refused, because rows appended to it could not be read.
        """
        run_dir = Path(run_dir)
        meta = read_run_json(run_dir)
        try:
            lock = RunLock.acquire(run_dir)
        except OSError as exc:
            raise RunDirError(f"cannot resume {str(run_dir)!r}: {_io_reason(exc)}; nothing was changed") from None
        writer = cls(run_dir, meta, lock)
        try:
            meta = read_run_json(run_dir)  # again, under the lock: the last writer may just have finished
            writer.meta = meta
            for name, default, required in ((MEASUREMENTS, COLUMNS, REQUIRED_COLUMNS),
                                             (SAMPLES, SAMPLE_COLUMNS, SAMPLE_REQUIRED)):
                path = run_dir / name
                if not path.exists():
                    raise RunDirError(f"{str(run_dir)!r} is not a complete run directory (no {name})")
                if _cut_partial_line(path):
                    warnings.warn(f"{path}: dropped a half-written last line", SymbenchWarning)
                writer.headers[name] = _header_for_append(path, default, required)
            writer._drop_orphan_samples()
        except OSError as exc:
            writer.close()
            raise RunDirError(f"cannot resume {str(run_dir)!r}: {_io_reason(exc)}; nothing was changed") from None
        except BaseException:
            writer.close()
            raise
        return writer

    def close(self) -> None:
        """Release the directory's lock (a dying process releases it too)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def _drop_orphan_samples(self) -> None:
        # Samples are written just before their row; a crash in between leaves
        # samples without a row, which the re-measurement would duplicate. A
        # row's samples are numbered 0 .. samples-1: an adaptive re-measurement
        # appends samples numbered from there and then replaces its row, so a
        # crash in between leaves samples past the row's count, dropped here too.
        # Lines that do not parse are kept as they are (byte for byte): they are
        # the reader's to skip and report, not ours to destroy.
        counts: dict[tuple[str, ...], int | None] = {}
        for r in self.rows():
            try:
                counts[self._row_key(r)] = int(r.get("samples") or "")
            except ValueError:
                counts[self._row_key(r)] = None
        path = self.run_dir / SAMPLES
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
            rows = list(csv.reader(f))
        if not rows:
            return
        header, body = rows[0], rows[1:]
        if not all(c in header for c in ("kernel", *KEY_FIELDS)):
            return
        idx = [header.index(c) for c in ("kernel", *KEY_FIELDS)]
        i_source = header.index("source") if "source" in header else None
        i_sample = header.index("sample") if "sample" in header else None
        i_round = header.index("round") if "round" in header else None

        def keep(r: list[str]) -> bool:
            if len(r) != len(header):
                return True
            key = (*(r[i] for i in idx), r[i_source] if i_source is not None else "grid",
                   (r[i_round] or "0") if i_round is not None else "0")
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
            with open(tmp, "w", newline="", encoding="utf-8", errors="surrogateescape") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(header)
                w.writerows(kept)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)

    @staticmethod
    def _row_key(row: Mapping[str, Any]) -> tuple[str, ...]:
        out = []
        for c in ROW_KEY_COLUMNS:
            v = row.get(c)
            out.append(fmt_value(v) if v not in (None, "") else _KEY_DEFAULTS.get(c, ""))
        return tuple(out)

    def rows(self) -> list[dict[str, str]]:
        """The rows on disk that parse, as strings (lines that do not are left out)."""
        frame, _ = _parse_lines(self.run_dir / MEASUREMENTS, _MEASUREMENTS_SPEC, warn=False)
        return frame.to_dict("records")

    def done_keys(self) -> set[tuple[str, ...]]:
        """(kernel, *problem key, source, round) of every row already written (and readable)."""
        return {self._row_key(r) for r in self.rows()}

    def append(self, row: Mapping[str, Any], samples: Iterable[Mapping[str, Any]] = ()) -> None:
        """Write the samples, then the row, each in its file's column order; each synced to disk."""
        scols = self.headers.get(SAMPLES, SAMPLE_COLUMNS)
        lines = "".join(_csv_line([s.get(c) for c in scols]) for s in samples)
        if lines:
            self._append(SAMPLES, lines)
        self._append(MEASUREMENTS, _csv_line([row.get(c) for c in self.headers.get(MEASUREMENTS, COLUMNS)]))
        self.written.add(self._row_key(row))

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
        scols = self.headers.get(SAMPLES, SAMPLE_COLUMNS)
        lines = "".join(_csv_line([s.get(c) for c in scols]) for s in samples)
        path = self.run_dir / MEASUREMENTS
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
            table = list(csv.reader(f))
        header, body = table[0], table[1:]
        cols = [c for c in ROW_KEY_COLUMNS if c in header]
        idx = [header.index(c) for c in cols]
        key = tuple(fmt_value(row.get(c)) if row.get(c) not in (None, "") else _KEY_DEFAULTS.get(c, "")
                    for c in cols)
        hits = [i for i, r in enumerate(body) if len(r) == len(header)
                and tuple(r[j] or _KEY_DEFAULTS.get(c, "") for j, c in zip(idx, cols)) == key]
        if not hits:
            raise RunDirError(f"{path}: no row {key} to replace")
        if lines:
            self._append(SAMPLES, lines)
        new_line = _csv_line([row.get(c) for c in header])
        text = [_csv_line(header)] + [new_line if i == hits[-1] else _csv_line(r) for i, r in enumerate(body)]
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w", newline="", encoding="utf-8", errors="surrogateescape") as f:
                f.write("".join(text))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise
        self.written.add(self._row_key(row))

    def _append(self, name: str, text: str) -> None:
        # One write per row: a reader never sees a row without its end of line
        # unless the process died inside this call (or the disk filled up in
        # it; the half line is cut off on resume and skipped when loading).
        with open(self.run_dir / name, "a", newline="", encoding="utf-8") as f:
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

    def check_readback(self) -> str | None:
        """Read the run's files again; why the rows written do not all read back, or None.

        A run is only marked complete when every row this writer appended loads
        again (a file damaged under it, or rows in an order the header does not
        describe, would otherwise pass as a finished run).
        """
        try:
            frame, damage = _parse_lines(self.run_dir / MEASUREMENTS, _MEASUREMENTS_SPEC, warn=False)
            _parse_lines(self.run_dir / SAMPLES, _SAMPLES_SPEC, warn=False)
        except (RunDirError, OSError) as exc:
            return str(exc)
        keys = {self._row_key(r) for r in frame.to_dict("records")}
        lost = self.written - keys
        if lost:
            first = next(iter(sorted(lost)))
            return (f"{len(lost)} rows written to {self.run_dir / MEASUREMENTS} do not read back "
                    f"(e.g. {first[0]} n={first[4]} k={first[5]}){'; ' + damage.describe() if damage.count else ''}")
        return None


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _header_for_append(path: Path, default: Sequence[str], required: Sequence[str]) -> list[str]:
    """The header rows will be appended under; writes ``default`` into an empty file."""
    with open(path, "rb") as f:
        first = f.readline()
    if not first.strip():
        if path.stat().st_size > len(first):
            raise RunDirError(f"{path}: the first line is empty, not a header; rows appended to it could not "
                              "be read; restore its header line or start a new run with --out")
        _write_synced(path, _csv_line(default))
        warnings.warn(f"{path}: was empty; wrote its header back", SymbenchWarning)
        return list(default)
    try:
        header = next(csv.reader([first.decode("utf-8").rstrip("\r\n")]))
    except (UnicodeDecodeError, csv.Error):
        header = []
    missing = [c for c in required if c not in header]
    if missing:
        raise RunDirError(f"{path}: the first line is not a header (missing columns "
                          f"{', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}); rows appended to it "
                          "could not be read; restore its header line or start a new run with --out")
    return header


# -- reading -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Spec:
    """What a file's lines must hold: required columns and typed columns."""

    what: str
    required: tuple[str, ...]
    ints: tuple[str, ...]
    key_ints: tuple[str, ...]
    floats: tuple[str, ...]
    nonempty_floats: tuple[str, ...] = ()
    statuses: bool = False


_MEASUREMENTS_SPEC = _Spec("measurements", REQUIRED_COLUMNS, INT_COLUMNS, KEY_INT_COLUMNS, FLOAT_COLUMNS,
                           statuses=True)
_SAMPLES_SPEC = _Spec("samples", SAMPLE_REQUIRED, SAMPLE_INT_COLUMNS, KEY_INT_COLUMNS,
                      ("time_s", "host_time_s", "steal_share", "others_cores"), nonempty_floats=("time_s",))


@dataclass
class _Damage:
    """Lines of one file that did not parse: how many, and the first one."""

    path: Path
    count: int = 0
    first_line: int = 0
    first_reason: str = ""

    def add(self, line: int, reason: str) -> None:
        self.count += 1
        if not self.first_line or line < self.first_line:
            self.first_line, self.first_reason = line, reason

    def describe(self) -> str:
        return (f"skipped {self.count} line{'s' if self.count != 1 else ''} that do not parse "
                f"(first: line {self.first_line}, {self.first_reason})")


def _split_fields(line: str) -> list[str] | None:
    if '"' not in line:
        return line.split(",")
    try:
        rows = list(csv.reader([line], strict=True))
    except csv.Error:
        return None
    return rows[0] if len(rows) == 1 else None


def _parse_lines(path: Path, spec: _Spec, warn: bool = True) -> tuple[Any, _Damage]:
    """Every line of ``path`` that parses, as a DataFrame of strings, and the damage found.

    Each line is decoded and split on its own, so one bad line (undecodable bytes,
    a wrong number of fields, a value of the wrong type, two rows glued together)
    costs that line only. A last line without its newline is a row cut short by a
    crash and is skipped too. Raises :class:`RunDirError` only when the header is
    unusable (no valid line can be read then).
    """
    import numpy as np
    import pandas as pd

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RunDirError(f"{str(path)!r} does not exist; give a run directory or a measurements CSV") from None
    except OSError as exc:
        raise RunDirError(f"cannot read {str(path)!r}: {_io_reason(exc)}") from None
    damage = _Damage(path)
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    if not lines:
        lines, tail = [tail], b""
    try:
        header = next(csv.reader([lines[0].decode("utf-8").rstrip("\r")]))
    except (UnicodeDecodeError, csv.Error, StopIteration):
        header = []
    missing = [c for c in spec.required if c not in header]
    if missing:
        if not data.strip():
            raise RunDirError(f"{path}: empty file, not a {spec.what} CSV (no header line)")
        raise RunDirError(f"{path}: not a symbench {spec.what} CSV; missing columns: "
                          f"{', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}")
    if len(set(header)) != len(header):
        raise RunDirError(f"{path}: the header names a column twice; not a symbench {spec.what} CSV")
    width = len(header)
    good: list[list[str]] = []
    numbers: list[int] = []
    for i, raw in enumerate(lines[1:], start=2):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue  # a blank line holds no row
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            damage.add(i, "bytes that are not UTF-8")
            continue
        fields = _split_fields(line)
        if fields is None:
            damage.add(i, "unbalanced quotes")
        elif len(fields) != width:
            damage.add(i, f"{len(fields)} fields where the header has {width}")
        else:
            good.append(fields)
            numbers.append(i)
    if tail.strip():
        damage.add(len(lines) + 1, "truncated last line (a crash leaves one)")
    frame = pd.DataFrame(good, columns=header, dtype=object) if good else pd.DataFrame(
        {c: pd.Series(dtype=object) for c in header})
    line_no = np.asarray(numbers, dtype=np.int64)
    bad = np.zeros(len(frame), dtype=bool)
    for c in (*spec.ints, *spec.floats):
        if c not in frame.columns or not len(frame):
            continue
        text = frame[c].astype(str).str.strip()
        empty = (text == "").to_numpy()
        num = pd.to_numeric(text.where(~empty), errors="coerce").to_numpy(dtype=float)
        if c in spec.ints:
            ok = empty | (np.isfinite(num) & (np.floor(num) == num))
            if c in spec.key_ints:
                ok &= ~empty
        else:
            nan_word = text.str.lower().isin(["nan", "+nan", "-nan"]).to_numpy()
            ok = empty | ~np.isnan(num) | nan_word
            if c in spec.nonempty_floats:
                ok &= ~empty & ~np.isnan(num)
        for j in np.flatnonzero(~ok & ~bad):
            damage.add(int(line_no[j]), f"{c} {frame[c].iloc[j]!r} is not a number")
        bad |= ~ok
    if spec.statuses and "status" in frame.columns and len(frame):
        ok = frame["status"].isin(STATUSES).to_numpy()
        for j in np.flatnonzero(~ok & ~bad):
            damage.add(int(line_no[j]), f"status {frame['status'].iloc[j]!r} is not one of {', '.join(STATUSES)}")
        bad |= ~ok
    if "kernel" in frame.columns and len(frame):
        ok = (frame["kernel"].astype(str).str.strip() != "").to_numpy()
        for j in np.flatnonzero(~ok & ~bad):
            damage.add(int(line_no[j]), "no kernel name")
        bad |= ~ok
    frame = frame[~bad].reset_index(drop=True)
    frame.attrs["lines"] = line_no[~bad]
    if warn and damage.count:
        warnings.warn(f"{path}: {damage.describe()}; the {len(frame)} other rows are loaded", SymbenchWarning)
    return frame, damage


def _typed(frame: Any, spec: _Spec) -> Any:
    import pandas as pd

    for c in spec.ints:
        if c in frame.columns:
            frame[c] = pd.to_numeric(frame[c].astype(str).str.strip().replace("", None),
                                     errors="coerce").fillna(0).astype("int64")
    for c in spec.floats:
        if c in frame.columns:
            frame[c] = pd.to_numeric(frame[c].astype(str).str.strip().replace("", None),
                                     errors="coerce").astype("float64")
    return frame


def _measurements_path(path: str | Path) -> tuple[Path, dict[str, Any] | None]:
    if not isinstance(path, (str, os.PathLike)):
        raise RunDirError(f"expected a run directory or a measurements CSV path, got {type(path).__name__}")
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


def _warn_conflicts(df: Any, path: Path) -> None:
    # The same kernel and problem measured twice *in one file* with different
    # times cannot come from symbench (the adaptive search replaces its row); it
    # is a hand-merged or damaged file. Say so, and which row is used.
    key = ["kernel", *KEY_FIELDS, "source", "round"]
    dup = df[df.duplicated(key, keep=False)]
    if not len(dup):
        return
    spread = dup.groupby(key, sort=False, dropna=False)["time_s"].nunique(dropna=False)
    conflicts = spread[spread > 1]
    if not len(conflicts):
        return
    first = dict(zip(key, conflicts.index[0]))
    warnings.warn(f"{path}: {len(conflicts)} kernel/problem rows appear more than once with different times "
                  f"(first: {first['kernel']} n={first['n']} k={first['k']}); of each, the last ok row in "
                  "file order is used", SymbenchWarning)


def load(path: str | Path) -> "Any":
    """Load a run's measurements as a pandas DataFrame.

    Lines that do not parse are skipped and counted, with one
    :class:`~symbench.errors.SymbenchWarning` per file naming the count and the
    first bad line; every valid line is kept. Rows of one kernel and problem
    that appear more than once with different times are warned about (the
    analyses use the last ``ok`` row of each, in file order).

    Parameters
    ----------
    path : str or Path
        A run directory or a ``measurements.csv`` file.

    Returns
    -------
    pandas.DataFrame
        One row per line of the file that parses, with the columns of
        :data:`COLUMNS` (``n``, ``k`` and the other integer columns as int64);
        ``df.attrs["run"]`` holds ``run.json`` when there is one.

    Raises
    ------
    RunDirError
        A missing path (or not a path), a file that is not a run, or a CSV
        without the fixed columns of docs/formats.md.
    SchemaError
        A run written by a newer symbench.
    """
    csv_path, meta = _measurements_path(path)
    df, _ = _parse_lines(csv_path, _MEASUREMENTS_SPEC)
    df.attrs = {}
    for c in COLUMNS:
        if c not in df.columns:  # older schema: fill what it did not have
            df[c] = "grid" if c == "source" else ("0" if c == "seed" else "")
    df = _typed(df, _MEASUREMENTS_SPEC)
    for c in ("message", "setup_notes", "run_id"):
        df[c] = df[c].astype(str)
    df["group"] = df["group"].astype(str).replace("", "none")
    df["source"] = df["source"].astype(str).replace("", "grid")
    df = df[[*COLUMNS, *(c for c in df.columns if c not in COLUMNS)]]
    _warn_conflicts(df, csv_path)
    if meta is not None:
        df.attrs["run"] = meta
    return df


def load_samples(path: str | Path) -> "Any":
    """The raw samples of a run (``samples.csv``) as a DataFrame; empty if there are none.

    Read like :func:`load`: lines that do not parse are skipped with one warning
    per file, every other sample is kept. A file whose header is unusable gives
    a warning and no samples (so a comparison fails closed on it).
    """
    import pandas as pd

    if not isinstance(path, (str, os.PathLike)):
        raise RunDirError(f"expected a run directory or a measurements CSV path, got {type(path).__name__}")
    path = Path(path)
    run_dir = path if path.is_dir() else path.parent
    sp = run_dir / SAMPLES
    if not sp.exists():
        return pd.DataFrame(columns=list(SAMPLE_COLUMNS))
    try:
        df, _ = _parse_lines(sp, _SAMPLES_SPEC)
    except RunDirError as exc:
        warnings.warn(f"{exc}; its samples are not used", SymbenchWarning)
        return pd.DataFrame(columns=list(SAMPLE_COLUMNS))
    df.attrs = {}
    df = _typed(df, _SAMPLES_SPEC)
    if "source" not in df.columns:
        df["source"] = "grid"
    if "round" not in df.columns:  # schema 1: one round
        df["round"] = 0
    df["source"] = df["source"].astype(str).replace("", "grid")
    df["group"] = df["group"].astype(str).replace("", "none")
    return df
