"""``symbench tune``: a dispatch table for ``symbench.convolve`` from measured runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from symbench.cli.app import app, console, print_json
from symbench.errors import SymbenchError


def _write(path: Path, text: str, what: str) -> None:
    import os

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)  # a reader never sees half a table
    except OSError as exc:
        raise SymbenchError(f"cannot write {what} {str(path)!r}: {exc.strerror}") from None


@app.command("tune")
def tune_cmd(
    runs: Annotated[Optional[List[str]], typer.Argument(help="Run directories (or measurements CSVs) of one machine.", metavar="RUN_DIR ...", show_default=False)] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the table to FILE.json.")] = None,
    by: Annotated[str, typer.Option("--by", help="Which time of a row decides: min (its fastest sample: least disturbed by other work, what a best-of-N timing sees) or median.")] = "min",
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not also make it this machine's default table (in the user cache directory).")] = False,
    show: Annotated[Optional[Path], typer.Option("--show", help="Read a table instead of making one: print it (and, with --n and --k, what it picks).")] = None,
    n: Annotated[Optional[int], typer.Option("--n", help="With --show: signal length (or image side) to look up.")] = None,
    k: Annotated[Optional[int], typer.Option("--k", help="With --show: kernel length (or side) to look up.")] = None,
    dim: Annotated[int, typer.Option("--dim", help="With --show: 1 or 2.")] = 1,
    dtype: Annotated[str, typer.Option("--dtype", help="With --show: dtype of the lookup.")] = "float64",
    mode: Annotated[str, typer.Option("--mode", help="With --show: full, same or valid.")] = "full",
    threads: Annotated[int, typer.Option("--threads", help="With --show: threads of the lookup.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the table (or the lookup) as JSON.")] = False,
) -> int:
    """Make a dispatch table: the fastest kernel as a function of (n, k), from measured runs.

    Per setting (op, dim, dtype, mode, channels, threads, device) it keeps the
    kernels that were fastest somewhere and a crossover curve k*(n) for each pair
    of them, interpolated in log n between the measured n and extrapolated with
    the fitted cost models beyond them. The table also becomes this machine's
    default: symbench.convolve(x, h) uses it unless symbench.use_table(path) or
    SYMBENCH_TABLE names another.
    """
    if show is not None:
        return _show(show, n, k, dim, dtype, mode, threads, as_json)
    if not runs:
        raise SymbenchError("give one or more run directories to tune on (symbench tune RUN_DIR --out FILE.json), "
                            "or --show FILE.json to read a table")
    from datetime import datetime, timezone

    from symbench.analysis.data import load_runs
    from symbench.analysis.tune import build_table
    from symbench.dispatch.selector import cached_table_path
    from symbench.dispatch.table import DispatchTable, table_json

    from symbench.analysis.tune import STATISTICS

    if by not in STATISTICS:
        raise SymbenchError(f"--by {by!r} is not supported; allowed: {', '.join(STATISTICS)}")
    if out is not None and out.exists() and out.is_dir():
        raise SymbenchError(f"--out {str(out)!r} is a directory; give a file name such as table.json")
    loaded = load_runs(runs)
    table, notes = build_table(loaded, created=datetime.now(timezone.utc).isoformat(timespec="seconds"), by=by)
    DispatchTable.from_dict(table, "the new table")  # what we write must read back
    text = table_json(table)
    written = []
    if out is not None:
        _write(out, text, "--out")
        written.append(f"wrote {out}")
    if not no_cache:
        cache = cached_table_path()
        _write(cache, text, "the cached table")
        written.append(f"wrote {cache} (this machine's default table for symbench.convolve)")
    if as_json:
        print_json(table)
        return 0
    from symbench.render.tune import table_summary

    console().print(table_summary(table, notes, written))
    return 0


def _show(path: Path, n: Optional[int], k: Optional[int], dim: int, dtype: str, mode: str, threads: int,
          as_json: bool) -> int:
    from symbench.problem import Problem
    from symbench.dispatch.table import DispatchTable

    table = DispatchTable.load(path)
    if (n is None) != (k is None):
        raise SymbenchError("--n and --k go together: give both to look a problem up")
    if n is None:
        if as_json:
            print_json(table.data)
        else:
            from symbench.render.tune import table_summary

            console().print(table_summary(table.data))
        return 0
    problem = Problem(op="conv", dim=dim, n=n, k=k, dtype=dtype, mode=mode, threads=threads)
    setting = (problem.op, problem.group, problem.dim, problem.dtype, problem.mode, problem.batch, problem.c_in,
               problem.c_out, problem.threads, "cpu")
    choice = table.choose(setting, n, k)
    if choice is None:
        have = "; ".join(e.get("label", "?") for e in table.data["entries"])
        raise SymbenchError(f"{path}: no entry for {problem.label()}; the table has: {have}")
    if as_json:
        print_json({"kernel": choice.kernel, "extrapolated": choice.extrapolated, "ranking": list(choice.ranking)})
    else:
        print(f"{choice.kernel}{' (extrapolated)' if choice.extrapolated else ''}; ranking: "
              f"{', '.join(choice.ranking)}")
    return 0
