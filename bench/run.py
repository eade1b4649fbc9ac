"""``make bench``: run the fast-kernel comparisons through symbench's sweep and write a Markdown report.

Usage::

    python bench/run.py [--config bench/bench.toml] [--out results/bench-...] [--quiet]

The sweep runs in this process (``symbench.sweep.runner.run_sweep``, the engine behind
``symbench sweep``), so the single-thread GEMM that "% of GEMM" refers to is
measured in the same process, just before and just after it. The report
(``report.md`` in the output directory, also printed) is made by
``bench/report.py``; the run itself (``run/``) can be read with
``symbench report``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402  (bench/report.py)


def gemm_gflops(dtype: str, n: int = 2048, repeat: int = 3) -> float:
    """Single-thread BLAS GEMM speed (best of ``repeat``), as the acceptance check measures it."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).random((n, n)).astype(dtype)
    with threadpool_limits(1):
        a @ a
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            a @ a
            best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(HERE / "bench.toml"))
    ap.add_argument("--out", default=f"results/bench-{time.strftime('%Y%m%d-%H%M%S')}")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)

    from symbench import load
    from symbench.analysis.crossover import find_crossovers
    from symbench.config import load_config
    from symbench.kernels.registry import required_modules
    from symbench.machine.environment import collect
    from symbench.sweep.runner import run_sweep
    from symbench.store import load_samples
    from symbench.sweep.timing import timer_overhead

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_dir = out / "run"
    config = load_config(args.config, {})
    env = collect(planner=config.planner, libraries=required_modules())
    load_before = os.getloadavg()
    facts: dict = {"gemm_float32": [gemm_gflops("float32")], "gemm_float64": [gemm_gflops("float64")],
                   "timer": timer_overhead(calls=20_000)}
    progress = None
    if not args.quiet and sys.stdout.isatty():
        from symbench.cli.cmd_sweep import RichProgress

        progress = RichProgress()
    result = run_sweep(config, run_dir, command=["bench/run.py", *(argv or sys.argv[1:])], progress=progress)
    facts["gemm_float32"].append(gemm_gflops("float32"))
    facts["gemm_float64"].append(gemm_gflops("float64"))
    load_after = os.getloadavg()
    libs = env.get("libraries", {})
    facts.update(
        machine=f"{env.get('cpu_model')} ({', '.join(f for f in ('avx512f', 'avx2', 'fma') if f in env.get('cpu_flags', ''))})",
        cpu_count=env.get("cpu_count"),
        load=f"{load_before[0]:.1f}, {load_after[0]:.1f}",
        versions=", ".join(f"{k} {v}" for k, v in libs.items() if v and k in (
            "numpy", "scipy", "pyfftw", "numba", "cv2")),
        run_dir=str(run_dir),
    )
    df = load(run_dir)
    samples = load_samples(run_dir)
    crossovers = find_crossovers(df, samples)
    text = report.render(df, facts, crossovers)
    (out / "facts.json").write_text(json.dumps(facts, indent=1, default=str))  # to re-render later
    (out / "report.md").write_text(text)
    print(text)
    print(f"{result.counts} in {result.elapsed_s:.0f} s; report: {out / 'report.md'}")
    return 130 if result.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
