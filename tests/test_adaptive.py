"""The adaptive search (sweep --adaptive) on synthetic timing functions, through an injected clock.

Two test kernels compute the right answer and tell the clock who they are; the
clock returns a planted cost per (kernel, k), with seeded noise where asked. The
"planted bracket" is what the report finds on the *full* grid of noiseless costs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from symbench.sweep.adaptive import GUARD_RATIO, MAX_ROUNDS, NEAR_TIE, geometric_pick, group_series
from symbench.analysis.crossover import bracket, find_crossovers
from symbench.analysis.data import load_runs
from symbench.config import load_config, parse_int_list
from symbench.kernels import Kernel, KernelOptions, Prepared, register, unregister
from symbench.problem import Problem
from symbench.reference import conv_reference
from symbench.sweep.runner import run_sweep
from symbench.store import RunWriter, load, load_samples
from symbench.sweep.timing import FakeClock

KS = "3:515:8"
_CURRENT: dict[str, tuple[str, int, int]] = {}


class _Synth(Kernel):
    name = "test-dir"
    method = "direct"
    library = "test"
    dims = (1,)

    def prepare(self, problem, x, h, options=KernelOptions()):
        y = conv_reference(x, h, problem.mode).astype(x.dtype)
        key = (self.name, problem.n, problem.k)

        def call() -> None:
            _CURRENT["key"] = key

        return Prepared(call, lambda: y)


class _SynthFFT(_Synth):
    name = "test-fft"
    method = "fft"


class _SynthDir2(_Synth):
    name = "test-dir2"


class _SynthAuto(_Synth):
    name = "test-auto"
    method = "auto"


class SynthClock(FakeClock):
    """Seconds per call from ``cost(kernel, n, k)``, times (1 + noise) per sample when ``noise`` > 0."""

    def __init__(self, cost: Callable[[str, int, int], float], noise: float = 0.0, seed: int = 0,
                 stop_after: int | None = None) -> None:
        super().__init__(0.0)
        self.cost = cost
        self.noise = noise
        self.rng = np.random.default_rng(seed)
        self.stop_after = stop_after
        self.samples = 0

    def measure(self, fn, loops):
        fn()
        name, n, k = _CURRENT["key"]
        self.samples += 1
        if self.stop_after is not None and self.samples > self.stop_after:
            raise KeyboardInterrupt
        jitter = 1.0 + self.noise * float(self.rng.standard_normal()) if self.noise else 1.0
        return loops * self.cost(name, n, k) * max(jitter, 0.05)


@pytest.fixture(autouse=True)
def _kernels():
    ks = [_Synth(), _SynthFFT(), _SynthDir2(), _SynthAuto()]
    for k in ks:
        register(k)
    yield
    for k in ks:
        unregister(k.name)


def _cfg(kernels="test-dir,test-fft", n="4096", k=KS, adaptive=True, repeat="7"):
    over = {"kernel": [kernels], "n": n, "k": k, "repeat": repeat, "min_time": "0.001"}
    if adaptive:
        over["adaptive"] = True
    return load_config(None, over)


def linear(k_cross: float, fft_cost: float = 40e-6) -> Callable[[str, int, int], float]:
    """direct costs grow with k; fft is flat; they meet at k_cross."""
    def cost(name: str, n: int, k: int) -> float:
        return fft_cost if name in ("test-fft",) else fft_cost * k / k_cross

    return cost


def planted(cost: Callable[[str, int, int], float], ks: str = KS, n: int = 4096,
            pair=("test-dir", "test-fft")) -> tuple[str, float, float]:
    """The report's bracket on the full grid of noiseless costs."""
    kv = parse_int_list(ks, "k")
    b = bracket(kv, [cost(pair[0], n, k) for k in kv], [cost(pair[1], n, k) for k in kv])
    return b.verdict, b.k_lo, b.k_hi


def _report(run: Path):
    runs = load_runs([run])
    return find_crossovers(runs.df, runs.samples)


def _rows(run: Path) -> int:
    return len((run / "measurements.csv").read_text().splitlines()) - 1


def test_geometric_pick():
    assert geometric_pick([11, 19, 27, 35], 3, 515) == 35  # sqrt(3 * 515) = 39.3
    assert geometric_pick([5, 6, 7], 4, 16) == 8 - 1  # 7 is nearest to 8 in log k


def test_group_series_merges_kernels_per_k():
    p = Problem(n=64, k=3)
    a, b = _Synth(), _SynthFFT()
    series = group_series([(p, [a]), (Problem(n=64, k=5), [a, b]), (p, [b])])
    assert len(series) == 1
    s = series[0]
    assert s.ks == [3, 5] and s.names() == ["test-dir", "test-fft"]
    assert [k.name for k in s.kernels[3]] == ["test-dir", "test-fft"]


@pytest.mark.parametrize("k_cross", [40.5, 7.5, 300.0])
def test_finds_planted_bracket_with_few_rows(tmp_path: Path, k_cross: float):
    cost = linear(k_cross)
    res = run_sweep(_cfg(), tmp_path / "run", clock=SynthClock(cost))
    assert not res.interrupted
    c = _report(tmp_path / "run").iloc[0]
    assert (c["verdict"], c["k_lo"], c["k_hi"]) == planted(cost)
    df = load(tmp_path / "run")
    assert set(df["source"]) == {"adaptive"}
    assert len(df) == len(df.drop_duplicates(["kernel", "k"]))  # one row per (kernel, problem)
    assert _rows(tmp_path / "run") <= 0.4 * 2 * 65
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["complete"] is True and meta["config"]["adaptive"] is True


@pytest.mark.parametrize("fft_cost, verdict", [(1e-9, "fft_always"), (1.0, "direct_always")])
def test_one_sided_verdicts(tmp_path: Path, fft_cost: float, verdict: str):
    def cost(name, n, k):
        return fft_cost if name == "test-fft" else 1e-6 * k

    run_sweep(_cfg(), tmp_path / "run", clock=SynthClock(cost))
    c = _report(tmp_path / "run").iloc[0]
    exp = planted(cost)
    assert exp[0] == verdict
    assert c["verdict"] == verdict
    assert (c["k_lo"], c["k_hi"]) == pytest.approx(exp[1:], nan_ok=True)
    if verdict == "direct_always":
        assert _rows(tmp_path / "run") == 4  # the two ends say it all
    else:
        # fft_always claims every k: guards fill the range up to GUARD_RATIO apart
        ks = sorted(load(tmp_path / "run")["k"].unique())
        grid = parse_int_list(KS, "k")
        for a, b in zip(ks, ks[1:]):
            assert b / a <= GUARD_RATIO or grid.index(b) == grid.index(a) + 1


def test_noisy_bracket_is_separated_by_re_measurement(tmp_path: Path):
    # fft is only 4% faster than direct at k_hi: 7 samples with 3% noise rarely separate them.
    cost = linear(41.3)
    run_sweep(_cfg(), tmp_path / "run", clock=SynthClock(cost, noise=0.03, seed=3))
    c = _report(tmp_path / "run").iloc[0]
    assert (c["verdict"], c["k_lo"], c["k_hi"]) == planted(cost)
    df = load(tmp_path / "run").set_index(["kernel", "k"])
    assert df.loc[("test-dir", 43), "samples"] > 7  # re-measured, its row replaced
    assert len(df) == len(df.index.unique())
    s = load_samples(tmp_path / "run")
    counts = s.groupby(["kernel", "k"]).size()
    for (kern, k), row in df.iterrows():
        assert counts.get((kern, k), 0) == row["samples"]  # samples.csv holds every sample, once
        got = s[(s.kernel == kern) & (s.k == k)]
        assert row["time_s"] == pytest.approx(float(np.median(got["time_s"])))
        assert sorted(got["sample"]) == list(range(int(row["samples"])))


def test_dip_below_the_crossover_is_caught_by_the_guards(tmp_path: Path):
    # numpy.convolve-like: direct is slow at k=19 only (fft faster there), yet
    # direct wins again at 27 and 35; the report's k* (fft faster from here on) is 43.
    base = linear(40.5)

    def cost(name, n, k):
        if name == "test-dir" and k == 19:
            return 3 * base("test-fft", n, k)
        return base(name, n, k)

    exp = planted(cost)
    assert exp == ("crossover", 35, 43)
    run_sweep(_cfg(), tmp_path / "run", clock=SynthClock(cost))
    c = _report(tmp_path / "run").iloc[0]
    assert (c["verdict"], c["k_lo"], c["k_hi"]) == exp
    assert 19 in set(load(tmp_path / "run")["k"])  # bisection did fall into the dip


def test_sawtooth_direct_times(tmp_path: Path):
    # Non-monotonic in k (a fast path every 4th k) but one crossover from the top.
    def cost(name, n, k):
        if name == "test-fft":
            return 100e-6
        return 1e-6 * k * (0.8 if (k // 8) % 4 == 0 else 1.0)

    exp = planted(cost)
    run_sweep(_cfg(), tmp_path / "run", clock=SynthClock(cost, noise=0.01, seed=1))
    c = _report(tmp_path / "run").iloc[0]
    assert (c["verdict"], c["k_lo"], c["k_hi"]) == exp


def test_indistinguishable_kernels_give_up_honestly(tmp_path: Path):
    def cost(name, n, k):
        return 50e-6

    run_sweep(_cfg(k="3:99:8"), tmp_path / "run", clock=SynthClock(cost, noise=0.05, seed=7))
    c = _report(tmp_path / "run").iloc[0]
    assert c["verdict"] == "inconclusive"
    df = load(tmp_path / "run")
    # the budget is spent, and no more: at most MAX_ROUNDS re-measurements of a point
    assert df["samples"].max() == 7 * (1 + MAX_ROUNDS)
    assert df["samples"].max() > 7


def test_several_pairs_share_points_and_auto_kernels_follow(tmp_path: Path):
    def cost(name, n, k):
        return {"test-fft": 60e-6, "test-dir": 1e-6 * k, "test-dir2": 0.5e-6 * k + 20e-6,
                "test-auto": 70e-6}[name]

    run_sweep(_cfg(kernels="test-dir,test-dir2,test-fft,test-auto"), tmp_path / "run", clock=SynthClock(cost))
    cross = _report(tmp_path / "run").set_index("direct_kernel")
    for d in ("test-dir", "test-dir2"):
        assert tuple(cross.loc[d, ["verdict", "k_lo", "k_hi"]]) == planted(cost, pair=(d, "test-fft"))
    df = load(tmp_path / "run")
    auto_ks = set(df[df.kernel == "test-auto"]["k"])
    assert auto_ks == set(df[df.kernel != "test-auto"]["k"])  # regret needs the others at its ks
    assert len(df) <= 0.4 * 4 * 65


def test_no_pair_measures_the_grid(tmp_path: Path):
    with pytest.warns(UserWarning, match="no \\(direct, fft\\) pair"):
        run_sweep(_cfg(kernels="test-dir", k="3,5,9"), tmp_path / "run", clock=SynthClock(linear(40)))
    df = load(tmp_path / "run")
    assert sorted(df["k"]) == [3, 5, 9] and set(df["source"]) == {"grid"}


def test_interrupt_then_resume_gives_the_same_result(tmp_path: Path):
    cost = linear(41.3)
    full = tmp_path / "full"
    run_sweep(_cfg(), full, clock=SynthClock(cost, noise=0.03, seed=3))
    part = tmp_path / "part"
    res = run_sweep(_cfg(), part, clock=SynthClock(cost, noise=0.03, seed=3, stop_after=120))
    assert res.interrupted
    assert json.loads((part / "run.json").read_text())["complete"] is False
    kept = _rows(part)
    assert 0 < kept < _rows(full)
    res2 = run_sweep(resume=part, clock=SynthClock(cost, noise=0.03, seed=3))
    assert not res2.interrupted and res2.skipped_existing == kept
    a, b = _report(full).iloc[0], _report(part).iloc[0]
    assert (a["verdict"], a["k_lo"], a["k_hi"]) == (b["verdict"], b["k_lo"], b["k_hi"])
    df = load(part)
    assert len(df) == len(df.drop_duplicates(["kernel", "k"]))
    s = load_samples(part)
    assert len(s) == df["samples"].sum()


def test_crash_between_samples_and_row_loses_only_that_re_measurement(tmp_path: Path):
    run = tmp_path / "run"
    run_sweep(_cfg(), run, clock=SynthClock(linear(40.5)))
    before = load(run)
    # a re-measurement whose samples reached samples.csv but whose row replacement did not
    s = load_samples(run)
    extra = s[(s.kernel == "test-dir") & (s.k == 35)].copy()
    extra["sample"] += 7
    with open(run / "samples.csv", "a") as f:
        extra.to_csv(f, header=False, index=False)
    meta = json.loads((run / "run.json").read_text())
    meta["complete"] = False
    (run / "run.json").write_text(json.dumps(meta))
    RunWriter.reopen(run)
    assert len(load_samples(run)) == before["samples"].sum()


def test_replace_row_keeps_one_row(tmp_path: Path):
    from tests.synth import Table

    t = Table()
    t.add("direct", 3, 1e-3, count=2)
    t.add("direct", 5, 2e-3, count=2)
    run = t.write(tmp_path / "run")
    w = RunWriter.reopen(run)
    row = dict(t.rows[0], samples=4, time_s=5e-4)
    extra = [{**t.samples[0], "sample": 2, "time_s": 4e-4}, {**t.samples[0], "sample": 3, "time_s": 6e-4}]
    w.replace_row(row, extra)
    df = load(run)
    assert df["k"].tolist() == [3, 5] and df["samples"].tolist() == [4, 2]
    assert df["time_s"].iloc[0] == pytest.approx(5e-4)
    assert len(load_samples(run)) == 6
    with pytest.raises(Exception, match="no row"):
        w.replace_row(dict(t.rows[0], k=7))


def test_adaptive_from_a_config_file(tmp_path: Path):
    cfg = tmp_path / "a.toml"
    cfg.write_text('adaptive = true\nrepeat = 5\nmin_time = 0.001\n[[grid]]\nkernel = ["test-dir", "test-fft"]\n'
                   'n = 1024\nk = "3:99:4"\n')
    config = load_config(cfg)
    assert config.adaptive is True
    run_sweep(config, tmp_path / "run", clock=SynthClock(linear(30.2)))
    c = _report(tmp_path / "run").iloc[0]
    assert (c["verdict"], c["k_lo"], c["k_hi"]) == planted(linear(30.2), "3:99:4", n=1024)
    assert math.isfinite(c["k_star"])


def test_max_call_at_the_top_end(tmp_path: Path):
    # direct is over --max-call from k=300 on: its rows there have 3 one-call samples, and the
    # search still finds the planted bracket below.
    base = linear(40.5)

    def cost(name, n, k):
        return 0.5 if (name == "test-dir" and k >= 300) else base(name, n, k)

    cfg = load_config(None, {"kernel": ["test-dir,test-fft"], "n": "4096", "k": KS, "repeat": "7",
                             "min_time": "0.001", "max_call": "0.2", "adaptive": True})
    run_sweep(cfg, tmp_path / "run", clock=SynthClock(cost))
    c = _report(tmp_path / "run").iloc[0]
    assert (c["verdict"], c["k_lo"], c["k_hi"]) == planted(cost)
    df = load(tmp_path / "run").set_index(["kernel", "k"])
    assert df.loc[("test-dir", 515), "samples"] == 3 and "max-call" in df.loc[("test-dir", 515), "message"]
    assert set(df["status"]) == {"ok"}


@pytest.mark.slow
def test_sigint_then_resume_adaptive(tmp_path: Path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    args = [sys.executable, "-m", "symbench", "sweep", "--kernel", "direct-numpy,fft-numpy", "--dim", "1",
            "--n", "8192", "--k", "3:515:8", "--repeat", "5", "--min-time", "0.02", "--adaptive", "--quiet"]

    def rows() -> int:
        m = out / "measurements.csv"
        return len(m.read_text().splitlines()) - 1 if m.exists() else 0

    proc = subprocess.Popen([*args, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while rows() < 4 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep ended before it could be interrupted"
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err
    kept = rows()
    assert json.loads((out / "run.json").read_text())["complete"] is False
    r = subprocess.run([sys.executable, "-m", "symbench", "sweep", "--resume", str(out), "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    df = load(out)
    assert len(df) >= kept and len(df) == len(df.drop_duplicates(["kernel", "k"]))
    assert set(df["source"]) == {"adaptive"} and df.attrs["run"]["complete"] is True
    assert len(load_samples(out)) == df["samples"].sum()
    c = _report(out).iloc[0]
    assert c["verdict"] in ("crossover", "inconclusive", "fft_always", "direct_always")


def test_tune_on_an_adaptive_run(tmp_path: Path):
    from symbench.analysis.tune import build_table
    from symbench.dispatch.table import DispatchTable

    cost = linear(40.5)
    run_sweep(_cfg(n="4096,8192"), tmp_path / "run", clock=SynthClock(cost))
    table, _ = build_table(load_runs([tmp_path / "run"]))
    t = DispatchTable.from_dict(table)
    setting = ("conv", "none", 1, "float64", "full", 1, 1, 1, 1, "cpu")
    for n in (4096, 6000, 8192):
        assert t.choose(setting, n, 30).kernel == "test-dir"
        assert t.choose(setting, n, 60).kernel == "test-fft"


def test_adaptive_with_rounds_re_measures_the_search_points(tmp_path: Path):
    # Round 0 is the search; rounds 1 and 2 measure exactly its points again, same source.
    cost = linear(40.0)
    cfg = load_config(None, {"kernel": ["test-dir,test-fft"], "n": "4096", "k": KS, "repeat": "5",
                             "min_time": "0.001", "adaptive": True, "rounds": "3"})
    res = run_sweep(cfg, tmp_path / "run", clock=SynthClock(cost))
    assert not res.interrupted
    df = load(tmp_path / "run")
    points = {r: set(zip(g["kernel"], g["k"], g["source"])) for r, g in df.groupby("round")}
    assert sorted(points) == [0, 1, 2] and points[0] == points[1] == points[2]
    c = _report(tmp_path / "run").iloc[0]
    assert (c["verdict"], c["k_lo"], c["k_hi"]) == planted(cost)
    # a resume with nothing missing measures nothing
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    meta["complete"] = False
    (tmp_path / "run" / "run.json").write_text(json.dumps(meta))
    res = run_sweep(resume=tmp_path / "run", clock=SynthClock(cost))
    assert res.counts == {} and len(load(tmp_path / "run")) == len(df)


def test_with_rounds_the_neighbours_of_a_near_tie_are_measured(tmp_path: Path):
    # direct is 10% faster than fft at the top k, so round 0 says direct_always from the two ends
    # alone; the pooled rounds could call the top k either way, so its neighbour below is measured
    # too (and that one's, while it is a near tie as well).
    def cost(name, n, k):
        return 1e-4 if name == "test-fft" else 0.9e-4 * (k / 515) ** 0.1

    def ks_measured(rounds: str) -> list[int]:
        cfg = load_config(None, {"kernel": ["test-dir,test-fft"], "n": "4096", "k": "3,9,33,129,515",
                                 "repeat": "5", "min_time": "0.001", "adaptive": True, "rounds": rounds})
        out = tmp_path / f"r{rounds}"
        run_sweep(cfg, out, clock=SynthClock(cost))
        return sorted(load(out)["k"].unique())

    assert ks_measured("1") == [3, 515]  # one round: the two ends say it all
    # direct / fft = 0.54, 0.60, 0.68, 0.78, 0.90 at k = 3, 9, 33, 129, 515. Near ties (above
    # 1 / NEAR_TIE = 0.77): 515, then 129 once measured. 515's gap down to 3 is bisected (33, then
    # 129); 129's neighbours are then measured points; 33 is no near tie, so 9 is never needed.
    assert 1 / NEAR_TIE < 0.78
    assert ks_measured("2") == [3, 33, 129, 515]
