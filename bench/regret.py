"""Regret of symbench.convolve's dispatch on random held-out problems (``make regret``).

For each of 1-D (float64) and 2-D (float32): sweep a tuning grid, ``symbench
tune`` it, then draw problems at random (log-uniform n and k, none of them on
the tuning grid) and time, on each, after one warm-up call and as the best of
``--reps`` calls (15), the candidates taking turns call by call so that a change of
machine load hits them alike (``--one-after-the-other``: each candidate's calls
together, as the acceptance check does):

- ``symbench.convolve(x, h)``: the dispatcher on the tuned table;
- ``symbench.convolve(x, h, kernel=K)`` for every kernel K of the tuning sweep:
  the fastest of them is the oracle;
- ``scipy.signal.convolve(x, h)``: SciPy's own choice (``method="auto"``).

Regret is time / the oracle's time. The script prints (and with ``--markdown``
writes) one table per case and the median and worst regret of each.

    python bench/regret.py                      # both cases, 16 problems each
    python bench/regret.py --dims 1 --problems 32 --tune-run results/mine
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from symbench.sweep.timing import Clock, PerfCounterClock

CASES: dict[int, dict[str, Any]] = {
    1: {"kernels": ["direct", "direct-numpy", "fft-pyfftw"], "dtype": "float64",
        "n": "pow2:11:17", "k": "pow2:2:11", "draw_n": (3000, 100_000), "draw_k": (3, 1500)},
    2: {"kernels": ["direct", "fft-pyfftw", "oa-scipy"], "dtype": "float32",
        "n": "64,96,128,192,256,384,512,768,1024", "k": "3,5,9,17,33,65", "draw_n": (80, 1000),
        "draw_k": (3, 60)},
}


def best_of(fn: Callable[[], object], reps: int, clock: Clock | None = None) -> float:
    """One warm-up call, then the fastest of ``reps`` timed calls (seconds): the acceptance check's way.

    Timed with the project's clock (:class:`symbench.sweep.timing.PerfCounterClock`
    unless another is given), as every sweep is.
    """
    clock = clock or PerfCounterClock()
    fn()
    return min(clock.measure(fn, 1) for _ in range(reps))


def best_in_turns(fns: dict[str, Callable[[], object]], reps: int, clock: Clock | None = None) -> dict[str, float]:
    """``reps`` rounds in which each candidate is called twice and its second call timed: the fastest of each.

    Taking turns makes a change of machine load (other work on a shared machine)
    hit every candidate alike, which timing them one after the other does not;
    the untimed call before each timed one gives it warm caches, as consecutive
    calls of one candidate would have.
    """
    clock = clock or PerfCounterClock()
    best = dict.fromkeys(fns, math.inf)
    for _ in range(reps):
        for name, fn in fns.items():
            fn()  # untimed: the caches hold this candidate's data, not the previous one's
            best[name] = min(best[name], clock.measure(fn, 1))
    return best


def tune(dim: int, out_dir: Path, run: Path | None) -> Path:
    """Sweep the case's grid (unless a run is given) and tune it; returns the table's path."""
    from symbench.analysis.data import load_runs
    from symbench.analysis.tune import build_table
    from symbench.config import load_config
    from symbench.sweep.runner import run_sweep
    from symbench.dispatch.table import table_json

    case = CASES[dim]
    if run is None:
        run = out_dir / f"tune-{dim}d"
        cfg = load_config(None, {"kernel": [",".join(case["kernels"])], "dim": str(dim), "n": case["n"],
                                 "k": case["k"], "dtype": case["dtype"], "threads": "1"})
        print(f"sweeping the {dim}-D tuning grid into {run} ...", file=sys.stderr, flush=True)
        run_sweep(cfg, run, command=["bench/regret.py"])
    table, notes = build_table(load_runs([run]))
    path = out_dir / f"table-{dim}d.json"
    path.write_text(table_json(table))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return path


def draw(dim: int, count: int, seed: int, table: dict[str, Any]) -> list[tuple[int, int]]:
    """Log-uniform (n, k), none of them on the tuning grid (n and k both measured)."""
    case = CASES[dim]
    grid_n = {int(n) for e in table["entries"] for n, m in zip(e["n"], e["measured"]) if m}
    grid_k = {int(k) for e in table["entries"] for k in e.get("k_values", [])}
    rng = np.random.default_rng(seed)
    out: list[tuple[int, int]] = []
    while len(out) < count:
        n = int(np.exp(rng.uniform(*np.log(case["draw_n"]))))
        k = int(np.exp(rng.uniform(*np.log(case["draw_k"]))))
        if (n in grid_n and k in grid_k) or k > n:
            continue
        out.append((n, k))
    return out


def measure(dim: int, problems: list[tuple[int, int]], reps: int, seed: int,
            turns: bool = True) -> list[dict[str, Any]]:
    import scipy.signal
    from threadpoolctl import threadpool_limits

    import symbench
    from symbench.dispatch import selector as dispatch
    from symbench.problem import Problem

    case = CASES[dim]
    rng = np.random.default_rng(seed + 1)
    rows = []
    with threadpool_limits(1):
        for n, k in problems:
            shape_x, shape_h = (n,) * dim, (k,) * dim
            x = rng.standard_normal(shape_x).astype(case["dtype"])
            h = rng.standard_normal(shape_h).astype(case["dtype"])
            chosen = dispatch.select(Problem(dim=dim, n=n, k=k, dtype=case["dtype"]))
            fns: dict[str, Callable[[], object]] = {"dispatch": lambda: symbench.convolve(x, h)}
            for K in case["kernels"]:
                fns[K] = lambda K=K: symbench.convolve(x, h, kernel=K)
            fns["scipy"] = lambda: scipy.signal.convolve(x, h)
            if turns:
                got = best_in_turns(fns, reps)
            else:
                got = {name: best_of(fn, reps) for name, fn in fns.items()}
            t_auto, t_scipy = got.pop("dispatch"), got.pop("scipy")
            per = got
            best = min(per, key=per.get)  # type: ignore[arg-type]
            rows.append({"n": n, "k": k, "chosen": chosen.kernel, "extrapolated": chosen.extrapolated,
                         "best": best, "t_best_s": per[best], "regret": t_auto / per[best],
                         "scipy_regret": t_scipy / per[best], "times_s": per, "t_dispatch_s": t_auto})
    return rows


def markdown(dim: int, rows: list[dict[str, Any]], kernels: list[str]) -> str:
    case = CASES[dim]
    r = np.array([row["regret"] for row in rows])
    s = np.array([row["scipy_regret"] for row in rows])
    lines = [f"**{dim}-D {case['dtype']}**, tuned on n {case['n']} x k {case['k']} "
             f"({', '.join(kernels)}); {len(rows)} held-out problems, n in {case['draw_n'][0]}..{case['draw_n'][1]}, "
             f"k in {case['draw_k'][0]}..{case['draw_k'][1]} (log-uniform):", "",
             "| | median regret | worst regret | fastest kernel picked |", "|---|---|---|---|",
             f"| `symbench.convolve` (tuned table) | {np.median(r):.3f} | {r.max():.3f} | "
             f"{sum(row['chosen'] == row['best'] for row in rows)}/{len(rows)} |",
             f"| `scipy.signal.convolve` (method=auto) | {np.median(s):.3f} | {s.max():.3f} | |", "",
             "<details><summary>per problem</summary>", "",
             "| n | k | picked | fastest | regret | scipy regret |", "|---|---|---|---|---|---|"]
    for row in sorted(rows, key=lambda q: (q["n"], q["k"])):
        lines.append(f"| {row['n']} | {row['k']} | {row['chosen']}{' (extrap.)' if row['extrapolated'] else ''} | "
                     f"{row['best']} | {row['regret']:.3f} | {row['scipy_regret']:.3f} |")
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dims", default="1,2", help="cases to run: 1, 2 or 1,2")
    ap.add_argument("--problems", type=int, default=16)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--one-after-the-other", action="store_true",
                    help="time each candidate's calls together (as the acceptance check does), not in turns")
    ap.add_argument("--out-dir", type=Path, default=Path("results") / f"regret-{time.strftime('%Y%m%d-%H%M%S')}")
    ap.add_argument("--tune-run", type=Path, action="append", default=[],
                    help="use this run (one per case, in --dims order) instead of sweeping")
    ap.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = ap.parse_args(argv)
    import symbench

    dims = [int(d) for d in args.dims.split(",")]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    parts, summary = [], {}
    for i, dim in enumerate(dims):
        run = args.tune_run[i] if i < len(args.tune_run) else None
        table_path = tune(dim, args.out_dir, run)
        symbench.use_table(table_path)
        table = json.loads(table_path.read_text())
        problems = draw(dim, args.problems, args.seed + dim, table)
        rows = measure(dim, problems, args.reps, args.seed + dim, turns=not args.one_after_the_other)
        text = markdown(dim, rows, CASES[dim]["kernels"])
        print(text, flush=True)
        parts.append(text)
        r = [row["regret"] for row in rows]
        summary[f"{dim}d"] = {"median": float(np.median(r)), "worst": float(max(r)),
                              "scipy_median": float(np.median([row["scipy_regret"] for row in rows])),
                              "scipy_worst": float(max(row["scipy_regret"] for row in rows)), "rows": rows}
    (args.out_dir / "regret.json").write_text(json.dumps(summary, indent=1, default=str))
    if args.markdown:
        args.markdown.write_text("\n".join(parts))
    print(f"results in {args.out_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
