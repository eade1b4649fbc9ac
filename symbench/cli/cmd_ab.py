"""``symbench ab`` (a paired A/B gate for CI) and the hidden ``worker`` it starts on each side."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, List, Optional

import typer

from symbench.cli.app import app, console, warn, write_text

_SIDES = "Sides"
_GRID = "Grid (override the config in every grid)"
_MEAS = "Measurement"
_GATE = "Gate"


@app.command("worker", hidden=True)
def worker_cmd() -> int:
    """Serve measurement requests on stdin/stdout (JSON lines); started by ab, not by hand."""
    from symbench.sweep.worker import serve

    return serve()


@app.command("ab")
def ab_cmd(
    base: Annotated[str, typer.Option("--base", help="Baseline side: a Python interpreter or a venv directory with symbench installed.", rich_help_panel=_SIDES)],
    new: Annotated[str, typer.Option("--new", help="New side: a Python interpreter or a venv directory (may be the same as --base with other --new-env).", rich_help_panel=_SIDES)],
    base_env: Annotated[Optional[List[str]], typer.Option("--base-env", help="KEY=VALUE set for the base side's worker; may repeat.", rich_help_panel=_SIDES)] = None,
    new_env: Annotated[Optional[List[str]], typer.Option("--new-env", help="KEY=VALUE set for the new side's worker; may repeat.", rich_help_panel=_SIDES)] = None,
    config: Annotated[Optional[str], typer.Option("--config", help="TOML config file, or the name of a bundled one (ci, quick, ...).")] = None,
    kernel: Annotated[Optional[List[str]], typer.Option("--kernel", help="Kernel names, comma lists or globs ('fft-*'); may repeat.", rich_help_panel=_GRID)] = None,
    op: Annotated[Optional[str], typer.Option("--op", help="conv, lift or gconv.", rich_help_panel=_GRID)] = None,
    group: Annotated[Optional[str], typer.Option("--group", help="p4 or p4m (lift and gconv).", rich_help_panel=_GRID)] = None,
    dim: Annotated[Optional[str], typer.Option("--dim", help="1 or 2.", rich_help_panel=_GRID)] = None,
    n: Annotated[Optional[str], typer.Option("--n", help="Signal sizes: a,b,c | start:stop:step | pow2:lo:hi.", rich_help_panel=_GRID)] = None,
    k: Annotated[Optional[str], typer.Option("--k", help="Kernel sizes (LIST, as --n).", rich_help_panel=_GRID)] = None,
    dtype: Annotated[Optional[str], typer.Option("--dtype", help="float32, float64, complex64, complex128 (comma list).", rich_help_panel=_GRID)] = None,
    mode: Annotated[Optional[str], typer.Option("--mode", help="full, same or valid.", rich_help_panel=_GRID)] = None,
    batch: Annotated[Optional[str], typer.Option("--batch", help="Batch size.", rich_help_panel=_GRID)] = None,
    c_in: Annotated[Optional[str], typer.Option("--c-in", help="Input channels.", rich_help_panel=_GRID)] = None,
    c_out: Annotated[Optional[str], typer.Option("--c-out", help="Output channels.", rich_help_panel=_GRID)] = None,
    threads: Annotated[Optional[str], typer.Option("--threads", help="Threads per kernel.", rich_help_panel=_GRID)] = None,
    pairs: Annotated[int, typer.Option("--pairs", help="Pairs of samples per row (one sample per side each), taken in ABBA order.", rich_help_panel=_MEAS)] = 20,
    incarnations: Annotated[int, typer.Option("--incarnations", help="Pairs of fresh worker processes each row's pairs are spread over (7 or more let the incarnations' sign test reach --alpha 0.01).", rich_help_panel=_MEAS)] = 7,
    min_time: Annotated[Optional[str], typer.Option("--min-time", help="Shortest sample in seconds; calls per sample are autoranged on the base side \\[default: 0.005].", rich_help_panel=_MEAS)] = None,
    max_call: Annotated[Optional[str], typer.Option("--max-call", help="Once one call takes longer (seconds), larger k of that kernel and n are not run \\[default: 1].", rich_help_panel=_MEAS)] = None,
    seed: Annotated[Optional[str], typer.Option("--seed", help="Seed of the random inputs \\[default: 0].", rich_help_panel=_MEAS)] = None,
    planner: Annotated[Optional[str], typer.Option("--planner", help="FFTW planner effort \\[default: measure].", rich_help_panel=_MEAS)] = None,
    threshold: Annotated[float, typer.Option("--threshold", help="Relative change of the paired ratio that counts (0.10 = 10%).", rich_help_panel=_GATE)] = 0.10,
    alpha: Annotated[float, typer.Option("--alpha", help="One-sided level of each bound of the ratio's sign-test interval.", rich_help_panel=_GATE)] = 0.01,
    out: Annotated[Optional[Path], typer.Option("--out", help="Directory for the two runs (DIR/base, DIR/new) \\[default: results/ab-<time>/].")] = None,
    fmt: Annotated[Optional[str], typer.Option("--format", "-f", help="table, markdown, csv or json (default: table on a terminal, markdown otherwise).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> int:
    """Measure two environments in the same minutes and gate on paired ratios; exit 1 on any regression.

    One worker per side prepares and verifies every (kernel, problem) in its own
    interpreter and environment; samples are then taken one at a time, in ABBA
    order, with the same calls per sample on both sides. A row's ratio is the
    median of its pairs' new/base ratios; it is a regression when that exceeds
    1 + --threshold and its interval lies above 1 (or when the row was ok in the
    base and fails in the new). Pairs are spread over --incarnations pairs of
    fresh workers, and the interval also covers how the incarnations differ; a
    row whose ratio is beyond the threshold but whose interval reaches 1 takes
    as many incarnations again, once. DIR/base and DIR/new are ordinary run
    directories (symbench report DIR/base works).
    """
    from symbench.analysis.compare import compare_runs
    from symbench.analysis.data import load_runs
    from symbench.config import load_config
    from symbench.errors import SymbenchError
    from symbench.render.compare import FORMATS, compare_rich, render_compare
    from symbench.store import new_run_id
    from symbench.sweep.ab import Side, parse_env, resolve_python, run_ab

    if fmt is None:
        fmt_ = "table" if sys.stdout.isatty() else "markdown"
    else:
        fmt_ = "markdown" if fmt.lower() == "md" else fmt.lower()
        if fmt_ not in FORMATS:
            raise SymbenchError(f"unknown --format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if not threshold > 0:
        raise SymbenchError(f"--threshold {threshold:g} must be positive (e.g. 0.10 for 10%)")
    if not 0 < alpha < 0.5:
        raise SymbenchError(f"--alpha {alpha:g} is out of range; allowed: 0 < alpha < 0.5 (e.g. 0.01)")
    if pairs < 1:
        raise SymbenchError(f"--pairs {pairs} must be at least 1 (7 or more to reach --alpha 0.01)")
    sides = (Side("base", resolve_python(base, "--base"), parse_env(base_env, "--base-env"), "--base"),
             Side("new", resolve_python(new, "--new"), parse_env(new_env, "--new-env"), "--new"))
    overrides: dict[str, Any] = {
        "kernel": kernel, "op": op, "group": group, "dim": dim, "n": n, "k": k, "dtype": dtype,
        "mode": mode, "batch": batch, "c_in": c_in, "c_out": c_out, "threads": threads,
        "min_time": min_time, "max_call": max_call, "seed": seed, "planner": planner,
    }
    cfg = load_config(config, {key: v for key, v in overrides.items() if v is not None})
    if cfg.adaptive:
        raise SymbenchError("ab measures every row of the grid; drop adaptive = true from the config")
    target = out if out is not None else Path("results") / f"ab-{new_run_id()}"
    progress = None
    if not quiet and sys.stdout.isatty():
        from symbench.cli.cmd_sweep import progress_bar

        progress = progress_bar()
    if incarnations < 1:
        raise SymbenchError(f"--incarnations {incarnations} must be at least 1")
    result = run_ab(cfg, *sides, target, pairs=pairs, command=["symbench", *sys.argv[1:]], progress=progress,
                    incarnations=incarnations, threshold=threshold, alpha=alpha)
    for label, why in result.dead.items():
        warn(f"{why}; its remaining rows are marked error")
    cmp = compare_runs(load_runs([result.base_dir]), load_runs([result.new_dir]), threshold=threshold,
                       alpha=alpha, paired=True)
    if fmt_ == "table" and sys.stdout.isatty():
        console().print(compare_rich(cmp))
    else:
        write_text(render_compare(cmp, fmt_), None)
        if fmt_ in ("csv", "json"):
            for w in cmp.warnings:
                warn(w)
    print(f"runs: {result.base_dir} {result.new_dir} ({result.elapsed_s:.0f} s)", file=sys.stderr)
    if result.interrupted:
        warn(f"interrupted: what was measured is in {result.out}")
        return 130
    return 1 if cmp.regressions else 0
