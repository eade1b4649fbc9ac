"""Choosing a kernel for ``symbench.convolve(..., kernel=None)``: a tuned table, else a cost model.

Which table (:func:`active_table`), first found wins:

1. the one given to :func:`use_table` (``symbench.use_table(path)``);
2. the file named by the ``SYMBENCH_TABLE`` environment variable;
3. the last table ``symbench tune`` wrote on this machine
   (``dispatch-table.json`` in :func:`symbench.paths.cache_dir`).

A table given by 1 or 2 that cannot be read is an error
(:class:`~symbench.dispatch.table.TableError`); a damaged cached table (3) only gives a
warning. A table tuned on another machine or with other library versions
gives a warning when it is loaded. Problems the table has no entry for (another
dtype, mode, dimension or thread count) fall back to the cost model.

The fallback cost model (:func:`choose`) is the textbook one that the report
fits per kernel: a direct convolution costs ``a * |out| * |h|`` and an FFT
convolution ``c * N log2 N`` for a transform of ``N`` points (three
transforms: two forward, one inverse), each plus a fixed overhead. The
constants are rough figures for one modern x86 core.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from symbench.dispatch.costs import model_times
from symbench.kernels.registry import all_kernels
from symbench.problem import Problem
from symbench.dispatch.table import CACHE_NAME, Choice, DispatchTable, TableError

DIRECT_PREFERENCE = ("direct", "direct-numpy", "direct-scipy")
FFT_PREFERENCE = ("fft-pyfftw", "fft-scipy", "fft-numpy")


def _first_usable(names: tuple[str, ...], problem: Problem) -> str | None:
    registry = all_kernels()
    for name in names:
        kernel = registry.get(name)
        if kernel is not None and kernel.available and kernel.supports(problem) is None:
            return name
    return None


def choose(problem: Problem) -> str:
    """The kernel the cost model predicts to be fastest for ``problem``."""
    t_direct, t_fft = model_times(problem)
    order = (DIRECT_PREFERENCE, FFT_PREFERENCE) if t_direct <= t_fft else (FFT_PREFERENCE, DIRECT_PREFERENCE)
    for names in order:
        name = _first_usable(names, problem)
        if name:
            return name
    return "direct-scipy"


# -- tuned tables ---------------------------------------------------------------------------

_lock = threading.Lock()
_explicit: DispatchTable | None = None
#: (path, mtime_ns) -> the implicit table read from there (None: nothing usable there).
_implicit: tuple[tuple[str, int] | None, DispatchTable | None] = (None, None)
#: Bumped whenever the table in use may change; the API's plan cache keys on it.
generation = 0
#: Called (with no argument) when the table in use changes: the API forgets what it dispatched.
listeners: list[Any] = []


def _changed() -> None:
    global generation
    generation += 1
    for fn in list(listeners):
        fn()


def cached_table_path() -> Path:
    """Where ``symbench tune`` leaves the last table it wrote on this machine."""
    from symbench.paths import cache_dir

    return cache_dir() / CACHE_NAME


def _warn_environment(table: DispatchTable) -> None:
    from symbench.machine.environment import cpu_model, library_versions, machine_id, memory_bytes
    from symbench.errors import SymbenchWarning
    import socket

    facts: dict[str, Any] = {"hostname": socket.gethostname(), "cpu_model": cpu_model(),
                             "cpu_count": os.cpu_count(), "memory_total": memory_bytes()["total"]}
    env = {"machine_id": machine_id(facts), "libraries": library_versions(table.timed_libraries),
           "machine_label": f"{facts['hostname']} ({facts['cpu_model']}, {facts['cpu_count']} cores)"}
    diffs = table.differences(env)
    if diffs:
        warnings.warn(f"dispatch table {table.where} may not fit here: {'; '.join(diffs)}; "
                      "its choices may not be the fastest (tune again on this machine)", SymbenchWarning,
                      stacklevel=3)


def load_table(path: str | Path, op: str = "conv") -> DispatchTable:
    """Read, validate and check a table for dispatching ``op`` (warns when it was tuned elsewhere)."""
    table = DispatchTable.load(path)
    table.require_op(op)
    _warn_environment(table)
    _warn_unknown_kernels(table)
    return table


def _warn_unknown_kernels(table: DispatchTable) -> None:
    # A table tuned with a plug-in kernel (or by a newer symbench) may name a
    # kernel this process does not have; lookups then fall back silently, so say it once.
    known = all_kernels()
    unknown = sorted({k for e in table.data.get("entries", []) for k in e.get("kernels", []) if k not in known})
    if unknown:
        from symbench.errors import SymbenchWarning

        warnings.warn(f"dispatch table {table.where} names kernels unknown here: {', '.join(unknown)}; "
                      "where they would win, the next kernel of the ranking (or the cost model) is used",
                      SymbenchWarning, stacklevel=3)


def use_table(path: str | Path | None) -> DispatchTable | None:
    """Dispatch ``symbench.convolve(kernel=None)`` on the table at ``path``.

    Parameters
    ----------
    path : str, Path or None
        A table written by ``symbench tune``; ``None`` goes back to the default
        (``SYMBENCH_TABLE``, then the last table tuned on this machine, then the model).

    Returns
    -------
    DispatchTable or None
        The loaded table.

    Raises
    ------
    TableError
        A missing or corrupt file, or a table with no entry for ``conv``.
    SchemaError
        A table written by a newer symbench.
    """
    global _explicit
    table = load_table(path) if path is not None else None
    with _lock:
        _explicit = table
    _changed()
    return table


def active_table() -> DispatchTable | None:
    """The table ``symbench.convolve`` dispatches on now (see the module docstring), or None."""
    global _implicit
    if _explicit is not None:
        return _explicit
    env = os.environ.get("SYMBENCH_TABLE")
    strict = bool(env)
    path = Path(env) if env else cached_table_path()
    try:
        key: tuple[str, int] | None = (str(path), path.stat().st_mtime_ns)
    except OSError:
        key = None
    if key is not None and key == _implicit[0]:
        return _implicit[1]
    if key is None:
        if strict:
            raise TableError(f"SYMBENCH_TABLE={env!r}: no such file; unset it or point it to a table "
                             "written by symbench tune")
        return None
    try:
        table: DispatchTable | None = load_table(path)
    except TableError as exc:
        if strict:
            raise TableError(f"SYMBENCH_TABLE: {exc}") from None
        from symbench.errors import SymbenchWarning

        warnings.warn(f"ignoring the cached dispatch table: {exc}; using the cost model", SymbenchWarning,
                      stacklevel=2)
        table = None
    with _lock:
        _implicit = (key, table)
    if table is not None and not strict and str(path) not in _announced:
        # A table picked up silently from the cache changes which kernel runs; say so
        # once per process, so a surprise in speed has a visible cause.
        _announced.add(str(path))
        from symbench.errors import SymbenchWarning

        warnings.warn(f"symbench.convolve dispatches on the dispatch table that symbench tune cached at "
                      f"{path}; symbench.dispatch_info() says more, symbench.use_table(other) or "
                      f"SYMBENCH_TABLE=... chooses another", SymbenchWarning, stacklevel=3)
    _changed()
    return table


_announced: set[str] = set()


def dispatch_info() -> dict[str, Any]:
    """What ``symbench.convolve(kernel=None)`` dispatches on now, and where it came from.

    Returns
    -------
    dict
        ``source``: ``"use_table"``, ``"SYMBENCH_TABLE"``, ``"cache"`` (the last
        table ``symbench tune`` wrote here) or ``"model"`` (no table: the cost
        model of :func:`choose`); ``path`` of the table (None for the model);
        ``machine`` it was tuned on; ``entries``: how many settings it covers.

    Examples
    --------
    >>> import symbench
    >>> symbench.dispatch_info()["source"]  # doctest: +SKIP
    'model'
    """
    table = active_table()
    if table is None:
        return {"source": "model", "path": None, "machine": None, "entries": 0}
    if table is _explicit:
        source = "use_table"
    elif os.environ.get("SYMBENCH_TABLE"):
        source = "SYMBENCH_TABLE"
    else:
        source = "cache"
    return {"source": source, "path": str(table.where), "machine": table.machine.get("hostname")
            or table.machine.get("cpu"), "entries": len(getattr(table, "entries", ()) or ())}


def _usable(name: str, problem: Problem) -> bool:
    kernel = all_kernels().get(name)
    return kernel is not None and kernel.available and kernel.supports(problem) is None


def select(problem: Problem, n: float | None = None, k: float | None = None) -> Choice:
    """The kernel ``symbench.convolve`` runs for ``problem`` (tuned table first, then the cost model).

    Parameters
    ----------
    problem : Problem
        What is computed (its n and k are used unless ``n``/``k`` are given).
    n, k : float, optional
        Signal and kernel size to look up (the API gives the geometric mean of
        the sides of a non-square 2-D input).

    Returns
    -------
    Choice
        ``source`` says whether a table or the model decided, ``extrapolated``
        whether the table was used outside what was measured.
    """
    n = float(problem.n if n is None else n)
    k = float(problem.k if k is None else k)
    table = active_table()
    if table is not None:
        setting = (problem.op, problem.group, problem.dim, problem.dtype, problem.mode, problem.batch,
                   problem.c_in, problem.c_out, problem.threads, "cpu")
        got = table.choose(setting, n, k)
        if got is not None:
            for name in got.ranking:
                if _usable(name, problem):
                    where = "outside the measured n and k (cost models)" if got.extrapolated else "measured range"
                    return replace(got, kernel=name,
                                   note=f"{table.where}: {name} ({where})"
                                        + ("" if name == got.kernel else f"; {got.kernel} cannot run here"))
    name = choose(problem)
    why = "no tuned table" if table is None else f"{table.where} has no entry for this setting"
    return Choice(name, "model", False, (name,), f"cost model ({why})")
