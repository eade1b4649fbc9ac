"""``make bench-gate``: how often does the CI gate cry wolf, and how often does it catch a slowdown?

Usage::

    python bench/gate.py [--jobs 10] [--n 4096,65536] [--k 5,17,65,257] [--pairs 20]
                         [--rounds 5] [--skip-compare | --skip-ab] [--out results/gate-...]
                         [--markdown FILE]

Every job is a real ``symbench`` command in a subprocess, on the grid
``direct-gate,direct-numpy,fft-scipy`` x ``--n`` x ``--k`` (1-D float64 full,
one thread). ``direct-gate`` is a plug-in kernel (``bench/gate_plugin.py``,
loaded through the worker's ``SYMBENCH_PLUGINS`` hook): ``numpy.convolve``
plus ``GATE_SLOW - 1`` as much work again, so a known slowdown can be planted
on one side.

Measured:

* **A/A, ab**: ``--jobs`` runs of ``symbench ab`` with the same interpreter on
  both sides: rows flagged (regression or improvement) and jobs that exit 1.
* **A/A, compare**: ``--jobs`` + 1 consecutive sweeps of ``--rounds`` rounds
  each (default 5, as ``configs/ci.toml``; with several, ``compare`` tests each
  row by a hierarchical bootstrap over the rounds); each is compared with the
  previous one (``symbench compare`` as shipped: common-mode correction on,
  ``--max-shift`` 0.5), i.e. runs
  made a minute or so apart, not hours: drift over hours is larger, so this
  is a lower bound on the stored-baseline false-alarm rate.
* **Power**: one ab job (and one sweep compared with an A/A baseline) per
  slowdown of 10, 25 and 50 % of ``direct-gate``: the share of its rows flagged
  ``regression``.
* **Noisy neighbour**: the A/A and 25 % ab jobs again while a CPU-bound process
  runs on one core for the middle half of each job.

Writes ``gate.md`` (also printed) in ``--out``.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FLAG = ("regression", "improvement")


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), str(HERE), e.get("PYTHONPATH", "")) if p)
    e["SYMBENCH_PLUGINS"] = "gate_plugin:KERNELS"
    return e


def grid(args: argparse.Namespace) -> list[str]:
    return ["--kernel", "direct-gate,direct-numpy,fft-scipy", "--dim", "1", "--n", args.n, "--k", args.k,
            "--dtype", "float64", "--mode", "full", "--threads", "1"]


#: ``python -m symbench`` with the plug-in registered first: the sweep does not read
#: SYMBENCH_PLUGINS (only ab's workers do), and the bench must not install an entry point.
BOOT = ("import sys; from symbench.kernels.registry import register; import gate_plugin; "
        "[register(k) for k in gate_plugin.KERNELS]; from symbench.cli import main; sys.exit(main(sys.argv[1:]))")


def symbench(*argv: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BOOT, *argv], capture_output=True, text=True,
                          env={**env(), **(extra_env or {})})


class Neighbour:
    """A CPU-bound process on one core from ``start`` to ``stop`` seconds after the job starts."""

    def __init__(self, start: float, stop: float) -> None:
        self.start, self.stop = start, stop
        self._t = threading.Thread(target=self._run, daemon=True)
        self._done = threading.Event()

    def _run(self) -> None:
        if self._done.wait(self.start):
            return
        p = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        self._done.wait(self.stop - self.start)
        p.kill()
        p.wait()

    def __enter__(self) -> "Neighbour":
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._t.join()


def ab_job(args: argparse.Namespace, out: Path, slow: float = 1.0, neighbour: float = 0.0) -> dict:
    """One ``symbench ab`` job; returns rows, flagged rows, caught gate rows, exit status, seconds."""
    cmd = ["ab", "--base", sys.executable, "--new", sys.executable, *grid(args), "--pairs", str(args.pairs),
           "--format", "csv", "--out", str(out)]
    if slow != 1.0:
        cmd += ["--new-env", f"GATE_SLOW={slow}"]
    t0 = time.perf_counter()
    if neighbour:
        with Neighbour(neighbour / 4, 3 * neighbour / 4):
            r = symbench(*cmd)
    else:
        r = symbench(*cmd)
    secs = time.perf_counter() - t0
    if r.returncode not in (0, 1):
        raise SystemExit(f"ab failed ({r.returncode}): {r.stderr.strip().splitlines()[-1:]}")
    d = pd.read_csv(io.StringIO(r.stdout))
    gate, other = d[d.kernel == "direct-gate"], d[d.kernel != "direct-gate"]
    return {"rows": len(d), "flagged": int(d.status.isin(FLAG).sum()), "rc": r.returncode, "s": secs,
            "caught": int((gate.status == "regression").sum()), "gate_rows": len(gate),
            "other_flagged": int(other.status.isin(FLAG).sum())}


def sweep(args: argparse.Namespace, out: Path, slow: float = 1.0) -> Path:
    r = symbench("sweep", *grid(args), "--rounds", str(args.rounds), "--out", str(out), "--quiet",
                 extra_env={"GATE_SLOW": str(slow)} if slow != 1.0 else None)
    if r.returncode != 0:
        raise SystemExit(f"sweep failed ({r.returncode}): {r.stderr.strip().splitlines()[-1:]}")
    return out


def compare(a: Path, b: Path) -> dict:
    r = symbench("compare", str(a), str(b), "--format", "csv")
    d = pd.read_csv(io.StringIO(r.stdout))
    gate = d[d.kernel == "direct-gate"]
    return {"rows": len(d), "flagged": int(d.status.isin(FLAG).sum()), "rc": r.returncode,
            "caught": int((gate.status == "regression").sum()), "gate_rows": len(gate)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=10, help="A/A jobs of each gate (default 10)")
    ap.add_argument("--n", default="4096,65536")
    ap.add_argument("--k", default="5,17,65,257")
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--slowdowns", default="1.10,1.25,1.50")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of each sweep compare gates (default 5, as configs/ci.toml)")
    ap.add_argument("--skip-compare", action="store_true", help="measure ab only (compare needs many sweeps)")
    ap.add_argument("--skip-ab", action="store_true", help="measure stored-run compare only")
    ap.add_argument("--out", default=f"results/gate-{time.strftime('%Y%m%d-%H%M%S')}")
    ap.add_argument("--markdown", default=None, help="also write the Markdown to FILE")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slowdowns = [float(s) for s in args.slowdowns.split(",") if s]
    lines = [f"## The CI gate (bench/gate.py, {date.today().isoformat()})", "",
             f"Grid: direct-gate, direct-numpy, fft-scipy x n={args.n} x k={args.k} (1-D float64 full, one thread); "
             f"ab with {args.pairs} pairs per row; compare of sweeps of {args.rounds} rounds; "
             f"{args.jobs} A/A jobs per gate.", ""]
    t_all = time.perf_counter()
    table: list[tuple[str, int, int, int, int]] = []
    power: list[tuple[str, float, dict]] = []
    ab_s = None
    if not args.skip_ab:
        aa = [ab_job(args, out / f"ab-aa{i}") for i in range(args.jobs)]
        ab_s = sum(j["s"] for j in aa) / len(aa)
        table.append(("ab, A/A", sum(j["flagged"] for j in aa), sum(j["rows"] for j in aa),
                      sum(j["rc"] == 1 for j in aa), len(aa)))
        power += [("ab", s, ab_job(args, out / f"ab-slow{s}", slow=s)) for s in slowdowns]
        noisy_aa = [ab_job(args, out / f"ab-noisy-aa{i}", neighbour=ab_s) for i in range(max(1, args.jobs // 3))]
        table.append(("ab, A/A, noisy neighbour", sum(j["flagged"] for j in noisy_aa),
                      sum(j["rows"] for j in noisy_aa), sum(j["rc"] == 1 for j in noisy_aa), len(noisy_aa)))
        power.append(("ab, noisy neighbour", 1.25, ab_job(args, out / "ab-noisy-slow", slow=1.25, neighbour=ab_s)))
    sweep_s = None
    if not args.skip_compare:
        t0 = time.perf_counter()
        runs = [sweep(args, out / "sweep0")]
        sweep_s = time.perf_counter() - t0
        for i in range(1, args.jobs + 1):
            runs.append(sweep(args, out / f"sweep{i}"))
        cmp = [compare(runs[i - 1], runs[i]) for i in range(1, len(runs))]
        table.append((f"compare (consecutive sweeps of {args.rounds} rounds), A/A", sum(c["flagged"] for c in cmp),
                      sum(c["rows"] for c in cmp), sum(c["rc"] == 1 for c in cmp), len(cmp)))
        for s in slowdowns:
            power.append(("compare", s, compare(runs[-1], sweep(args, out / f"sweep-slow{s}", slow=s))))
    lines += ["| gate | rows flagged | row rate | jobs exit 1 | job rate |", "|---|---:|---:|---:|---:|"]
    for name, f, n, j, jn in table:
        lines.append(f"| {name} | {f} of {n} | {f / max(n, 1):.1%} | {j} of {jn} | {j / max(jn, 1):.0%} |")
    lines += ["", "| gate | slowdown of direct-gate | its rows caught | other rows flagged | exit |",
              "|---|---:|---:|---:|---:|"]
    for name, s, r in power:
        other = r.get("other_flagged", r["flagged"] - r["caught"])
        lines.append(f"| {name} | {s - 1:.0%} | {r['caught']} of {r['gate_rows']} | {other} | {r['rc']} |")
    lines += ["", (f"One ab job: {ab_s:.0f} s; " if ab_s else "")
              + (f"one sweep of the same grid ({args.rounds} rounds): {sweep_s:.0f} s; " if sweep_s else "")
              + f"the whole bench: {(time.perf_counter() - t_all) / 60:.1f} min.", ""]
    text = "\n".join(lines)
    (out / "gate.md").write_text(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
