"""Grid vs adaptive sweep: rows measured and bracket found (``make adaptive-bench``).

For each n, the same problem is swept twice, over every k of the LIST (grid)
and with ``--adaptive``; both runs go through ``symbench report``'s own
crossover function. Prints (and with ``--markdown`` writes) one row per n:
rows measured by each, the bracket (k_lo, k_hi] and k* each found, and the
ratio of the two k*.

    python bench/adaptive.py                          # direct-numpy vs fft-pyfftw, n = 4096, 16384, 65536
    python bench/adaptive.py --n 16384 --k 3:515:8 --kernel direct-numpy,fft-pyfftw
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any


def sweep(out: Path, kernels: str, n: int, k: str, adaptive: bool) -> tuple[int, dict[str, Any], float]:
    from symbench.analysis.crossover import find_crossovers
    from symbench.analysis.data import load_runs
    from symbench.config import load_config
    from symbench.sweep.runner import run_sweep

    over: dict[str, Any] = {"kernel": [kernels], "dim": "1", "n": str(n), "k": k, "dtype": "float64", "threads": "1"}
    if adaptive:
        over["adaptive"] = True
    t0 = time.perf_counter()
    run_sweep(load_config(None, over), out, command=["bench/adaptive.py"])
    elapsed = time.perf_counter() - t0
    runs = load_runs([out])
    cross = find_crossovers(runs.df, runs.samples)
    rows = len((out / "measurements.csv").read_text().splitlines()) - 1
    return rows, cross.iloc[0].to_dict(), elapsed


def fmt(c: dict[str, Any]) -> str:
    def num(v: Any) -> str:
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{float(v):g}"

    return f"({num(c['k_lo'])}, {num(c['k_hi'])}]"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", default="4096,16384,65536")
    ap.add_argument("--k", default="3:515:8")
    ap.add_argument("--kernel", default="direct-numpy,fft-pyfftw")
    ap.add_argument("--out-dir", type=Path, default=Path("results") / f"adaptive-{time.strftime('%Y%m%d-%H%M%S')}")
    ap.add_argument("--markdown", type=Path)
    args = ap.parse_args(argv)
    from symbench.config import parse_int_list

    n_ks = len(parse_int_list(args.k, "--k"))
    lines = [f"`{args.kernel}`, 1-D float64, k = {args.k} ({n_ks} values), 1 thread:", "",
             "| n | grid rows | grid bracket | grid k* | adaptive rows | adaptive bracket | adaptive k* "
             "| k* ratio | rows |", "|---|---|---|---|---|---|---|---|---|"]
    for n in parse_int_list(args.n, "--n"):
        g_rows, g, g_s = sweep(args.out_dir / f"grid-{n}", args.kernel, n, args.k, False)
        a_rows, a, a_s = sweep(args.out_dir / f"adaptive-{n}", args.kernel, n, args.k, True)
        ratio = (a["k_star"] / g["k_star"]) if g["verdict"] == a["verdict"] == "crossover" else math.nan
        lines.append(f"| {n} | {g_rows} | {fmt(g)} {g['verdict'] if g['verdict'] != 'crossover' else ''} | "
                     f"{g['k_star']:.1f} | {a_rows} | {fmt(a)} {a['verdict'] if a['verdict'] != 'crossover' else ''} | "
                     f"{a['k_star']:.1f} | {ratio:.2f} | {100 * a_rows / g_rows:.0f}% |")
        print(lines[-1], file=sys.stderr, flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
