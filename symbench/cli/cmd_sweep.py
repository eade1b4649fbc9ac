"""``symbench kernels``, ``info``, ``sweep`` and ``verify``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, List, Optional

import typer


from symbench.cli.app import app, console, print_json, warn
from symbench.defaults import DEFAULTS, PLANNERS

_GRID = "Grid (override the config in every grid)"
_MEAS = "Measurement"


@app.command("kernels")
def kernels_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> int:
    """List every kernel with what it supports and whether it can run here (and why not)."""
    from symbench.kernels.registry import all_kernels

    infos = [k.info() for k in all_kernels().values()]
    if as_json:
        print_json(infos)
        return 0
    from symbench.render.kernels import kernels_table

    console().print(kernels_table(infos))
    return 0


@app.command("info")
def info_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> int:
    """Machine and library facts, as a run records them in run.json (timer overhead and pre-flight checks included)."""
    from symbench.kernels.registry import required_modules
    from symbench.machine.environment import collect
    from symbench.machine.noise import preflight
    from symbench.sweep.timing import timer_overhead

    facts = collect(devices=True, libraries=required_modules())
    facts["timer"] = timer_overhead(calls=20_000)
    facts["preflight"] = preflight()
    if as_json:
        print_json(facts)
        return 0
    from symbench.render.kernels import facts_table, preflight_table

    checks = facts.pop("preflight")
    console().print(facts_table(facts))
    console().print(preflight_table(checks))
    return 0


@app.command("sweep")
def sweep_cmd(
    config: Annotated[Optional[str], typer.Option("--config", help="TOML config file, or the name of a bundled one (default, quick, ...).")] = None,
    kernel: Annotated[Optional[List[str]], typer.Option("--kernel", help="Kernel names, comma lists or globs ('fft-*'); may repeat.", rich_help_panel=_GRID)] = None,
    op: Annotated[Optional[str], typer.Option("--op", help="conv, lift or gconv.", rich_help_panel=_GRID)] = None,
    group: Annotated[Optional[str], typer.Option("--group", help="p4 or p4m (lift and gconv).", rich_help_panel=_GRID)] = None,
    dim: Annotated[Optional[str], typer.Option("--dim", help="1 or 2.", rich_help_panel=_GRID)] = None,
    n: Annotated[Optional[str], typer.Option("--n", help="Signal sizes: a,b,c | start:stop:step | pow2:lo:hi.", rich_help_panel=_GRID)] = None,
    k: Annotated[Optional[str], typer.Option("--k", help="Kernel sizes (LIST, as --n).", rich_help_panel=_GRID)] = None,
    dtype: Annotated[Optional[str], typer.Option("--dtype", help="float32, float64, complex64, complex128 (comma list).", rich_help_panel=_GRID)] = None,
    mode: Annotated[Optional[str], typer.Option("--mode", help="full, same or valid.", rich_help_panel=_GRID)] = None,
    batch: Annotated[Optional[int], typer.Option("--batch", help="Batch size.", rich_help_panel=_GRID)] = None,
    c_in: Annotated[Optional[int], typer.Option("--c-in", help="Input channels.", rich_help_panel=_GRID)] = None,
    c_out: Annotated[Optional[int], typer.Option("--c-out", help="Output channels.", rich_help_panel=_GRID)] = None,
    threads: Annotated[Optional[str], typer.Option("--threads", help="Threads per kernel (BLAS, FFTW, OpenCV, numba).", rich_help_panel=_GRID)] = None,
    repeat: Annotated[Optional[int], typer.Option("--repeat", help=f"Samples per measurement \\[default: {DEFAULTS['repeat']}].", rich_help_panel=_MEAS)] = None,
    rounds: Annotated[Optional[int], typer.Option("--rounds", help=f"Measure the whole grid this many times, each round in a fresh worker process, problems shuffled; the report's confidence then covers differences between processes \\[default: {DEFAULTS['rounds']}].", rich_help_panel=_MEAS)] = None,
    min_time: Annotated[Optional[float], typer.Option("--min-time", help=f"Shortest sample in seconds; calls per sample are autoranged to reach it \\[default: {DEFAULTS['min_time']:g}].", rich_help_panel=_MEAS)] = None,
    max_call: Annotated[Optional[float], typer.Option("--max-call", help=f"Once one call takes longer (seconds), larger k of that kernel and n are not run \\[default: {DEFAULTS['max_call']:g}].", rich_help_panel=_MEAS)] = None,
    adaptive: Annotated[bool, typer.Option("--adaptive", help="Search for k* instead of measuring every k.", rich_help_panel=_MEAS)] = False,
    seed: Annotated[Optional[int], typer.Option("--seed", help=f"Seed of the random inputs \\[default: {DEFAULTS['seed']}].", rich_help_panel=_MEAS)] = None,
    planner: Annotated[Optional[str], typer.Option("--planner", help=f"FFTW planner effort: {', '.join(PLANNERS)} \\[default: {DEFAULTS['planner']}].", rich_help_panel=_MEAS)] = None,
    flush_l2: Annotated[bool, typer.Option("--flush-l2", help="GPU kernels: evict the L2 cache before each call.", rich_help_panel=_MEAS)] = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Run directory to create \\[default: results/<run_id>/].")] = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Finish an interrupted run: measure only its missing rows.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary; print only the run directory.")] = False,
    progress_mode: Annotated[Optional[str], typer.Option("--progress", help="bar (a terminal), plain (a line every few seconds, for CI logs) or none \\[default: bar on a terminal, plain otherwise].")] = None,
) -> int:
    """Measure kernels over a grid of problems and write a run directory.

    Without --config and without grid options, configs/default.toml is swept.
    Grid options without --config sweep one grid of the built-in defaults.
    The last line printed is the run directory.
    """
    from symbench.config import load_config
    from symbench.errors import ConfigError

    overrides: dict[str, Any] = {
        "kernel": kernel, "op": op, "group": group, "dim": dim, "n": n, "k": k, "dtype": dtype,
        "mode": mode, "batch": batch, "c_in": c_in, "c_out": c_out, "threads": threads,
        "repeat": repeat, "rounds": rounds, "min_time": min_time, "max_call": max_call, "seed": seed, "planner": planner,
        "adaptive": True if adaptive else None, "flush_l2": True if flush_l2 else None,
    }
    overrides = {key: value for key, value in overrides.items() if value is not None}
    if kernel is not None and not any(part.strip() for item in kernel for part in item.split(",")):
        # An empty --kernel used to mean "every kernel": a typo'd variable in a
        # script would silently sweep everything.
        raise ConfigError("--kernel is empty; give kernel names, comma lists or globs (see symbench kernels), "
                          "or leave --kernel out to run every available kernel")
    if resume is not None and (out is not None or config is not None):
        raise ConfigError("--resume continues a run in its own directory with its own config; "
                          "drop --out and --config")
    from symbench.sweep.runner import run_sweep

    if progress_mode not in (None, "bar", "plain", "none"):
        raise ConfigError(f"--progress {progress_mode!r}: allowed: bar, plain, none")
    mode = progress_mode or ("none" if quiet else "bar" if sys.stdout.isatty() else "plain")
    progress: Any = RichProgress() if mode == "bar" else PlainProgress() if mode == "plain" else None
    cmd = ["symbench", *sys.argv[1:]]
    if resume is not None:
        result = run_sweep(resume=resume, overrides=overrides, command=cmd, progress=progress)
    else:
        cfg = load_config(config, overrides)
        result = run_sweep(cfg, out, command=cmd, progress=progress)
    if not quiet:
        from symbench.render.summary import sweep_summary

        console().print(sweep_summary(result))
    if result.interrupted:
        from symbench.sweep import interrupt

        by = f" by {interrupt.received}" if interrupt.received else ""
        warn(f"interrupted{by}: what was measured is in {result.run_dir}; "
             f"finish it with: symbench sweep --resume {result.run_dir}")
        print(result.run_dir, flush=True)
        return interrupt.exit_code()
    print(result.run_dir, flush=True)
    return 0


def progress_bar() -> "RichProgress":
    """A rich progress bar on stdout (for commands that measure: sweep, ab)."""
    return RichProgress()


class RichProgress:
    """A rich progress bar with ETA (only on a terminal)."""

    def __init__(self) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        out = console()
        # The label gives way first: at 80 columns a 48-character label squeezed the
        # ETA to a few characters. Bar, counts, elapsed and ETA need about 50.
        label = max(10, min(48, out.width - 52))
        self._bar = Progress(TextColumn(f"[progress.description]{{task.description:<{label}.{label}}}"),
                             BarColumn(bar_width=max(10, min(40, out.width - label - 42))),
                             MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"),
                             TimeRemainingColumn(), console=out, transient=False)
        self._task: Any = None

    def start(self, total: int) -> None:
        self._bar.start()
        self._task = self._bar.add_task("sweep", total=total)

    def advance(self, label: str, steps: int = 1) -> None:
        self._bar.update(self._task, advance=steps, description=label)

    def stop(self) -> None:
        self._bar.stop()


class PlainProgress:
    """One short line on stderr every few seconds, for CI logs where a bar cannot redraw.

    A sweep shorter than the interval prints nothing, so quick runs stay quiet.
    """

    def __init__(self, every: float = 5.0) -> None:
        import time

        self._clock = time.monotonic
        self._every = every
        self._total = 0
        self._done = 0
        self._start = self._last = 0.0
        self._printed = False

    def start(self, total: int) -> None:
        self._total = total
        self._start = self._last = self._clock()

    def _line(self, label: str) -> None:
        elapsed = self._clock() - self._start
        eta = elapsed / self._done * (self._total - self._done) if self._done else float("nan")
        pct = 100 * self._done / self._total if self._total else 100.0
        eta_text = "?" if eta != eta else _clock_text(eta)
        print(f"symbench: {self._done}/{self._total} ({pct:.0f}%), {_clock_text(elapsed)} elapsed, "
              f"eta {eta_text}: {label}", file=sys.stderr, flush=True)
        self._printed = True

    def advance(self, label: str, steps: int = 1) -> None:
        self._done += steps
        if self._clock() - self._last >= self._every:
            self._last = self._clock()
            self._line(label)

    def stop(self) -> None:
        if self._printed:
            self._line("done" if self._done >= self._total else "stopped")


def _clock_text(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}"


@app.command("verify")
def verify_cmd(
    kernel: Annotated[Optional[List[str]], typer.Option("--kernel", help="Kernels to check (names, comma lists, globs); default all.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every check as JSON.")] = False,
) -> int:
    """Check every available kernel against a float64 reference on small edge cases.

    Group kernels are also checked for equivariance. Exit 1 when any check fails.
    """
    from symbench.kernels.registry import all_kernels, resolve
    from symbench.verify import require_kernels, verify

    kernels = resolve(kernel) if kernel else list(all_kernels().values())
    require_kernels(kernels)
    checks = verify(kernels)
    if as_json:
        print_json([c.__dict__ for c in checks])
    else:
        from symbench.render.summary import verify_table

        console().print(verify_table(checks))
        for c in checks:
            if c.failed:
                print(f"FAIL {c.kernel}: {c.case}: {c.message}", file=sys.stderr)
    failed = sum(c.failed for c in checks)
    if not as_json:
        ok = sum(c.status == "ok" for c in checks)
        print(f"{ok} checks passed, {failed} failed" + (", some kernels skipped" if any(
            c.status == "skipped" for c in checks) else ""))
    return 1 if failed else 0


@app.command("warmup")
def warmup_cmd(
    kernel: Annotated[str, typer.Option("--kernel", help="The kernel to compile (numba: direct).")] = "direct",
    dtype: Annotated[Optional[str], typer.Option("--dtype", help="Comma list of dtypes \\[default: all four].")] = None,
    threads: Annotated[Optional[str], typer.Option("--threads", help="Comma list of thread counts to compile for \\[default: 1].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the timings as JSON.")] = False,
) -> int:
    """Compile the numba kernels now (seconds per dtype and dimension), not in the first timed call.

    The code is cached on disk, so later processes start fast; run it once after
    installing, or as a CI step before a sweep.
    """
    from symbench.config import parse_choice_list, parse_int_list
    from symbench.warmup import DTYPES, warmup

    dtypes = parse_choice_list(dtype, "--dtype", DTYPES) if dtype else list(DTYPES)
    counts = parse_int_list(threads, "--threads") if threads else [1]
    done = warmup(kernel, dtypes=dtypes, threads=counts)
    if as_json:
        print_json(done)
        return 0
    for row in done:
        print(f"{row['kernel']} {row['dtype']} {row['dim']}-D {row['threads']} thread(s): {row['seconds']:.2f} s")
    print(f"total {sum(r['seconds'] for r in done):.1f} s")
    return 0
