"""Dispatch tables: the file ``symbench tune`` writes and ``symbench.convolve`` dispatches on.

A table holds, per *setting* (op, group, dim, dtype, mode, batch, c_in, c_out,
threads, device), the kernels that were fastest somewhere on the tuning grid
and one **crossover curve** k\\*(n) per pair of them: below k\\*(n) the pair's
``left`` kernel is faster, from k\\*(n) on its ``right`` kernel. The curve has
a value at every measured n (from the measured bracket) and at a few octaves
beyond them (from the report's fitted cost models, anchored at the nearest
measured n). The fastest kernel at (n, k) is the one that wins all of its
pairs (with several direct kernels, e.g. ``direct-numpy`` at small n and k and
``direct`` elsewhere, that is how a region belongs to each).

Lookup (:meth:`Entry.choose`) interpolates each curve linearly in (log n,
log k) between its two nearest n; outside the measured n and k it says
``extrapolated``. Everything the lookup needs is turned into plain Python
lists once, at load: a lookup costs a few microseconds and imports neither
pandas nor any kernel.

File format versions (``schema_version``):

1. First version: ``kind``, ``schema_version``, ``schema_note``, ``created``,
   ``symbench_version``, ``runs``, ``machine`` (the facts of run.json's
   environment), ``entries`` (settings, ``kernels``, ``n``, ``measured``,
   ``k_range``, ``curves`` with ``left``/``right``/``k_star`` and the measured
   brackets, ``regions`` and ``grid_regret`` for people).

An older table loads; a newer one is refused with a message.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from symbench.errors import SchemaError, SymbenchError
from symbench.problem import SERIES_FIELDS

KIND = "symbench-dispatch-table"
TABLE_SCHEMA_VERSION = 1
TABLE_SCHEMA_NOTES = {
    1: "first version: per setting, crossover curves k*(n) between the kernels that win somewhere, "
       "measured n plus model-extrapolated octaves; machine facts from run.json",
}
#: The columns that make a setting (one entry of a table).
SETTING_FIELDS = (*SERIES_FIELDS[:-1], "device")
#: The file ``symbench tune`` also writes in the user's cache directory.
CACHE_NAME = "dispatch-table.json"


class TableError(SymbenchError):
    """A dispatch table file is missing, corrupt, or not for what it is used for."""


@dataclass(frozen=True)
class Choice:
    """What a table (or the cost model) picks for one problem.

    Attributes
    ----------
    kernel : str
        The kernel name.
    source : str
        ``table`` or ``model`` (no table, or no entry of the table for this setting).
    extrapolated : bool
        The problem lies outside the measured n or k of the table's entry: the
        choice rests on the fitted cost models (or on the nearest measured n).
    ranking : tuple of str
        Every kernel of the entry, best first (the next ones are used when the
        first cannot run here).
    note : str
        A plain sentence saying how the choice was made.
    """

    kernel: str
    source: str
    extrapolated: bool = False
    ranking: tuple[str, ...] = ()
    note: str = ""


@dataclass
class Curve:
    """One pair's k*(n): ``left`` is faster below it, ``right`` from it on."""

    left: int
    right: int
    log2_k: list[float]


@dataclass
class Entry:
    """One setting of a table, ready for fast lookups."""

    setting: tuple[Any, ...]
    kernels: list[str]
    log2_n: list[float]
    n_measured: tuple[float, float]
    k_range: tuple[float, float]
    curves: list[Curve] = field(default_factory=list)

    def choose(self, n: float, k: float) -> Choice:
        """The fastest kernel at (n, k), by the curves (a few microseconds, pure Python)."""
        x = math.log2(n)
        y = math.log2(k)
        ln = self.log2_n
        last = len(ln) - 1
        if last == 0 or x <= ln[0]:
            i, t = 0, 0.0
        elif x >= ln[last]:
            i, t = last - 1, 1.0
        else:
            i = bisect_right(ln, x) - 1
            t = (x - ln[i]) / (ln[i + 1] - ln[i])
        wins = [0] * len(self.kernels)
        for c in self.curves:
            ks = c.log2_k
            kstar = ks[i] if last == 0 else ks[i] + t * (ks[i + 1] - ks[i])
            wins[c.right if y >= kstar else c.left] += 1
        # Kernels are stored best-first over the tuning grid, which breaks ties
        # (a cycle of pairwise wins can only come from noise).
        order = sorted(range(len(wins)), key=lambda j: (-wins[j], j))
        extrapolated = not (self.n_measured[0] <= n <= self.n_measured[1]
                            and self.k_range[0] <= k <= self.k_range[1])
        return Choice(self.kernels[order[0]], "table", extrapolated,
                      tuple(self.kernels[j] for j in order))


def _fail(where: str, what: str) -> TableError:
    return TableError(f"{where}: not a valid symbench dispatch table ({what}); "
                      "make one with symbench tune RUN_DIR --out FILE.json")


def _num(value: Any, where: str, what: str, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(where, f"{what} is {value!r}, not a number")
    v = float(value)
    if not math.isfinite(v) or (positive and v <= 0):
        raise _fail(where, f"{what} is {value!r}, not a positive number")
    return v


class DispatchTable:
    """A loaded, validated dispatch table.

    Build one with :meth:`load` (a file) or :meth:`from_dict`; look problems up with
    :meth:`choose`. The JSON itself stays available as :attr:`data`.
    """

    def __init__(self, data: dict[str, Any], where: str = "table") -> None:
        self.data = data
        self.where = where
        self.version = self._check_header(data, where)
        self.entries: dict[tuple[Any, ...], Entry] = {}
        for i, raw in enumerate(data["entries"]):
            entry = self._entry(raw, f"{where}: entry {i + 1}")
            self.entries[entry.setting] = entry

    # -- loading ---------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> "DispatchTable":
        """Read and validate a table file.

        Raises
        ------
        TableError
            A missing or unreadable file, or one that is not a dispatch table.
        SchemaError
            A table written by a newer symbench.
        """
        p = Path(path)
        try:
            text = p.read_text()
        except FileNotFoundError:
            raise TableError(f"dispatch table {str(p)!r} does not exist; make one with "
                             "symbench tune RUN_DIR --out FILE.json") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise TableError(f"cannot read dispatch table {str(p)!r}: {exc}") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise _fail(str(p), f"not JSON: {exc}") from None
        return cls(data, str(p))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "table") -> "DispatchTable":
        return cls(dict(data), where)

    @staticmethod
    def _check_header(data: Any, where: str) -> int:
        if not isinstance(data, dict):
            raise _fail(where, "the file does not hold a JSON object")
        if data.get("kind") != KIND:
            if "schema_version" in data and "run_id" in data:
                raise _fail(where, "this is a run.json; give the table that symbench tune wrote")
            raise _fail(where, f"kind is {data.get('kind')!r}, not {KIND!r}")
        version = data.get("schema_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise _fail(where, f"schema_version {version!r} is not a positive whole number")
        if version > TABLE_SCHEMA_VERSION:
            raise SchemaError(f"{where}: written by a newer symbench (table schema {version}); this version "
                              f"reads schema <= {TABLE_SCHEMA_VERSION}; upgrade symbench or tune again")
        if not isinstance(data.get("entries"), list):
            raise _fail(where, "no list of entries")
        if not isinstance(data.get("machine", {}), dict):
            raise _fail(where, "machine is not an object")
        return version

    @staticmethod
    def _entry(raw: Any, where: str) -> Entry:
        if not isinstance(raw, dict):
            raise _fail(where, "not an object")
        missing = [f for f in (*SETTING_FIELDS, "kernels", "n", "measured", "k_range", "curves") if f not in raw]
        if missing:
            raise _fail(where, f"missing {', '.join(missing)}")
        setting = []
        for f in SETTING_FIELDS:
            v = raw[f]
            if f in ("dim", "batch", "c_in", "c_out", "threads"):
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise _fail(where, f"{f} is {v!r}, not a positive whole number")
            elif not isinstance(v, str) or not v:
                raise _fail(where, f"{f} is {v!r}, not a name")
            setting.append(v)
        kernels = raw["kernels"]
        if (not isinstance(kernels, list) or not kernels or not all(isinstance(k, str) and k for k in kernels)
                or len(set(kernels)) != len(kernels)):
            raise _fail(where, "kernels is not a list of distinct names")
        ns = raw["n"]
        measured = raw["measured"]
        if not isinstance(ns, list) or not ns or not isinstance(measured, list) or len(measured) != len(ns):
            raise _fail(where, "n and measured must be lists of the same length")
        log2_n = [math.log2(_num(v, where, "an n")) for v in ns]
        if any(b <= a for a, b in zip(log2_n, log2_n[1:])):
            raise _fail(where, "n is not strictly ascending")
        if not all(isinstance(m, bool) for m in measured) or not any(measured):
            raise _fail(where, "measured must be true/false values, at least one true")
        meas = [float(v) for v, m in zip(ns, measured) if m]
        kr = raw["k_range"]
        if not isinstance(kr, list) or len(kr) != 2:
            raise _fail(where, "k_range must be [k_min, k_max]")
        k_range = (_num(kr[0], where, "k_min"), _num(kr[1], where, "k_max"))
        index = {name: i for i, name in enumerate(kernels)}
        curves = []
        if not isinstance(raw["curves"], list):
            raise _fail(where, "curves is not a list")
        for j, c in enumerate(raw["curves"]):
            cw = f"{where}, curve {j + 1}"
            if not isinstance(c, dict) or c.get("left") not in index or c.get("right") not in index:
                raise _fail(cw, "left and right must name kernels of the entry")
            ks = c.get("k_star")
            if not isinstance(ks, list) or len(ks) != len(ns):
                raise _fail(cw, "k_star must have one value per n")
            curves.append(Curve(index[c["left"]], index[c["right"]],
                                [math.log2(_num(v, cw, "a k*")) for v in ks]))
        if len(kernels) > 1 and not curves:
            raise _fail(where, "several kernels but no curve between them")
        return Entry(tuple(setting), list(kernels), log2_n, (min(meas), max(meas)), k_range, curves)

    # -- use ----------------------------------------------------------------------------
    @property
    def ops(self) -> set[str]:
        return {e.setting[0] for e in self.entries.values()}

    @property
    def machine(self) -> dict[str, Any]:
        return dict(self.data.get("machine") or {})

    @property
    def timed_libraries(self) -> list[str]:
        """Libraries whose version changes what the table's kernels measure (a difference gives a warning).

        Recorded by ``symbench tune`` from the kernels' ``requires``; a table
        written before that compares every library it recorded.
        """
        machine = self.machine
        return list(machine.get("timed_libraries") or (machine.get("libraries") or {}))

    def entry(self, setting: Sequence[Any]) -> Entry | None:
        return self.entries.get(tuple(setting))

    def choose(self, setting: Sequence[Any], n: float, k: float) -> Choice | None:
        """The table's choice at (n, k) for ``setting`` (a tuple of :data:`SETTING_FIELDS`), or None."""
        e = self.entries.get(tuple(setting))
        return None if e is None else e.choose(n, k)

    def require_op(self, op: str) -> None:
        """Refuse a table that has nothing for ``op`` (a table tuned on group convolutions, say)."""
        if op not in self.ops:
            have = ", ".join(sorted(self.ops)) or "nothing"
            raise TableError(f"{self.where}: a dispatch table for {have}, not for {op}; symbench.convolve "
                             f"needs a table tuned on {op} runs (symbench tune RUN_DIR with {op} kernels)")

    def differences(self, env: Mapping[str, Any]) -> list[str]:
        """How this machine (``env``, as :func:`symbench.machine.environment.collect` gives) differs from the table's."""
        mine = self.machine
        out = []
        if mine.get("machine_id") and env.get("machine_id") and mine["machine_id"] != env["machine_id"]:
            out.append(f"tuned on {mine.get('machine_label') or mine['machine_id']}, "
                       f"running on {env.get('machine_label') or env['machine_id']}")
        theirs = mine.get("libraries") or {}
        here = env.get("libraries") or {}
        for lib in self.timed_libraries:
            a, b = theirs.get(lib), here.get(lib)
            if a and a != b:
                out.append(f"{lib} {a} when tuned, {b or 'not installed'} here")
        return out


def table_json(table: Mapping[str, Any]) -> str:
    """The JSON text of a table (stable key order, so tables diff well)."""
    return json.dumps(table, indent=1, sort_keys=False, allow_nan=False) + "\n"
