"""``symbench ab``: the worker protocol, ABBA order, paired statistics, real workers, and compare's common mode."""

from __future__ import annotations

import math
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from symbench.analysis.compare import compare_runs
from symbench.analysis.data import load_runs
from symbench.analysis.paired import (binom_cdf_half, log_ratios, median_interval, paired_verdict, sign_p,
                                      sign_rank)
from symbench.config import load_config
from symbench.sweep.ab import ABRun, abba_order, parse_env
from symbench.sweep.worker import PROTOCOL
from synth import Table

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


# -- paired statistics: pure functions with known answers -----------------------------------

def test_sign_rank_matches_the_binomial_tables():
    # P(Bin(20, 1/2) <= 4) = 0.0059 <= 0.01 < P(<= 5) = 0.0207: the 5th smallest bounds the median.
    assert sign_rank(20, 0.01) == 5
    assert math.isclose(binom_cdf_half(4, 20), 6196 / 2 ** 20)
    assert sign_rank(6, 0.01) == 0 and sign_rank(7, 0.01) == 1  # 1/128 < 0.01 < 1/64
    assert sign_rank(10, 0.05) == 2


def test_median_interval_is_order_statistics():
    d = np.arange(20, dtype=float)[::-1]
    est, lo, hi = median_interval(d, 0.01)
    assert est == 9.5 and lo == 4.0 and hi == 15.0
    assert median_interval(np.ones(3), 0.01)[1:] == (-math.inf, math.inf)


def test_log_ratios_pair_by_index_and_drop_bad_samples():
    base = np.array([1.0, 2.0, 0.0, 4.0, 5.0])
    new = np.array([2.0, 2.0, 1.0, np.nan])
    assert np.allclose(log_ratios(base, new), [math.log(2), 0.0])


def test_known_slowdown_is_a_regression_and_pure_noise_is_not():
    rng = np.random.default_rng(3)
    slow = math.log(1.25) + 0.05 * rng.standard_normal(20)
    v = paired_verdict(slow, 0.10, 0.01)
    assert v["status"] == "regression" and v["ratio_lo"] > 1 and 1.15 < v["ratio"] < 1.35
    assert v["p_value"] < 0.01 and v["pairs"] == 20
    flagged = sum(paired_verdict(0.05 * rng.standard_normal(20), 0.10, 0.01)["status"] != "unchanged"
                  for _ in range(500))
    assert flagged == 0
    fast = paired_verdict(-math.log(1.5) + 0.05 * rng.standard_normal(20), 0.10, 0.01)
    assert fast["status"] == "improvement" and fast["ratio_hi"] < 1


def test_noise_untestable_and_unchanged():
    # Beyond the threshold at the median, but half the pairs say faster: the interval includes 1.
    d = np.array([0.3] * 11 + [-0.3] * 9)
    assert paired_verdict(d, 0.10, 0.01)["status"] == "noise"
    assert paired_verdict(np.full(5, 0.5), 0.10, 0.01)["status"] == "untestable"
    assert paired_verdict(np.full(20, 0.05), 0.10, 0.01)["status"] == "unchanged"  # certain but small
    assert sign_p(np.full(10, 0.1), greater=True) == pytest.approx(2 ** -10)


# -- ABBA order --------------------------------------------------------------------------------

def test_abba_order():
    seq = "".join("AB"[s] for i in range(4) for s in abba_order(i))
    assert seq == "ABBAABBA"


class FakeClient:
    """A worker stand-in that logs requests into a shared list."""

    def __init__(self, label: str, log: list, seconds: float) -> None:
        self.label, self.log, self.seconds, self._next = label, log, seconds, 0

    def new_id(self) -> int:
        self._next += 1
        return self._next

    def request(self, msg):
        self.log.append((self.label, msg["op"], msg.get("loops")))
        op = msg["op"]
        if op == "open":
            return {"ok": True, "open": True, "single_s": 1e-4, "row": {"kernel": msg["kernel"], "status": "ok"}}
        if op == "autorange":
            return {"ok": True, "loops": 7, "best_s": 1e-4}
        if op == "sample":
            return {"ok": True, "seconds": self.seconds}
        if op == "row":
            return {"ok": True, "row": {"kernel": "x", "status": "ok"}, "samples": []}
        return {"ok": True}


class FakeWriter:
    def __init__(self) -> None:
        self.rows = []

    def append(self, row, samples=()):
        self.rows.append(row)


def test_samples_alternate_in_abba_order_with_the_base_loops():
    cfg = load_config(None, {"kernel": ["direct-numpy"], "dim": "1", "n": "1024", "k": "5"})
    log: list = []
    clients = [FakeClient("A", log, 1e-4), FakeClient("B", log, 1e-4)]
    run = ABRun(cfg, clients, [FakeWriter(), FakeWriter()], ["a", "b"], pairs=4)  # type: ignore[arg-type]
    problem, _ = cfg.jobs()[0]
    run.measure(problem, "direct-numpy")
    ops = [(who, op) for who, op, _ in log]
    assert ops[:3] == [("A", "open"), ("B", "open"), ("A", "autorange")]  # loops agreed on the base
    timed = [who for who, op, _ in log if op == "sample"]
    assert "".join(timed) == "AB" + "ABBAABBA"  # one untimed warm-up sample each, then ABBA
    assert {loops for _, op, loops in log if op == "sample"} == {7}
    assert ops[-2:] == [("A", "row"), ("B", "row")]


class LongCallClient(FakeClient):
    """A worker whose kernel takes 20 ms a call; it keeps every request."""

    def __init__(self, label: str, log: list) -> None:
        super().__init__(label, log, 0.02)
        self.msgs: list = []

    def request(self, msg):
        self.msgs.append(dict(msg))
        reply = super().request(msg)
        if msg["op"] == "open":
            reply["single_s"] = 0.02 if msg.get("single", True) else None
        return reply


def test_a_call_longer_than_eight_sample_budgets_takes_eight_pairs_of_one_call():
    from symbench.sweep.ab import SLOW_ROW_PAIRS

    # min_time 2 ms: a sample's budget is 1 ms, so one 20 ms call is 20 budgets.
    cfg = load_config(None, {"kernel": ["direct-numpy"], "dim": "1", "n": "1024", "k": "5", "min_time": 0.002})
    log: list = []
    clients = [LongCallClient("A", log), LongCallClient("B", log)]
    run = ABRun(cfg, clients, [FakeWriter(), FakeWriter()], ["a", "b"], pairs=20,  # type: ignore[arg-type]
                incarnations=2)
    problem, _ = cfg.jobs()[0]
    run.measure(problem, "direct-numpy")
    samples = [m for m in clients[0].msgs if m["op"] == "sample"]
    assert not any(m["op"] == "autorange" for m in clients[0].msgs)
    assert len(samples) == SLOW_ROW_PAIRS // 2 and all(m["loops"] == 1 and m["best_of"] == 1 for m in samples)
    assert all(m.get("keep", True) for m in samples)  # no untimed warm-up sample: the open warmed it
    assert [m["single"] for m in clients[0].msgs if m["op"] == "open"] == [True]
    run.incarnation = 1
    run.next_incarnation()  # the second incarnation's open needs no single-call timing
    assert [m["single"] for m in clients[0].msgs if m["op"] == "open"] == [True, False]
    assert len([m for m in clients[0].msgs if m["op"] == "sample"]) == SLOW_ROW_PAIRS


def test_parse_env():
    assert parse_env(["A=1", "B_C=x=y"], "--new-env") == {"A": "1", "B_C": "x=y"}
    with pytest.raises(Exception, match="KEY=VALUE"):
        parse_env(["nope"], "--new-env")


# -- the CLI with real worker processes -------------------------------------------------------

def worker_env(**extra: str) -> list[str]:
    """``--base-env``-style items that let a worker import symbench from this checkout and the test plug-in."""
    path = os.pathsep.join([str(ROOT), str(TESTS), os.environ.get("PYTHONPATH", "")])
    items = [f"PYTHONPATH={path}", "SYMBENCH_PLUGINS=abplugin:KERNELS"]
    return items + [f"{k}={v}" for k, v in extra.items()]


def ab_args(tmp_path: Path, *, base_env=(), new_env=(), k: str = "17,65", pairs: str = "9") -> list[str]:
    args = ["ab", "--base", sys.executable, "--new", sys.executable, "--kernel", "direct-abtest",
            "--dim", "1", "--n", "4096", "--k", k, "--dtype", "float64", "--mode", "full", "--threads", "1",
            "--pairs", pairs, "--min-time", "0.002", "--format", "csv", "--out", str(tmp_path / "ab")]
    for item in worker_env(**dict(base_env)):
        args += ["--base-env", item]
    for item in worker_env(**dict(new_env)):
        args += ["--new-env", item]
    return args


def read_csv(text: str) -> pd.DataFrame:
    import io

    return pd.read_csv(io.StringIO(text))


def test_ab_a_over_a_passes_and_writes_two_runs(cli, tmp_path):
    r = cli(*ab_args(tmp_path))
    assert r.code == 0, r.err
    d = read_csv(r.out)
    assert list(d.k) == [17, 65] and set(d.status) <= {"unchanged", "noise"}
    for c in ("kernel", "op", "group", "dim", "n", "k", "batch", "c_in", "c_out", "dtype", "mode", "threads",
              "status", "ratio", "ratio_lo", "ratio_hi", "pairs"):
        assert c in d.columns
    assert (d.pairs == 9).all()
    rep = cli("report", tmp_path / "ab" / "base", "--format", "csv")
    assert rep.code == 0, rep.err
    base = load_runs([tmp_path / "ab" / "base"])
    assert len(base.df) == 2 and (base.df.samples == 9).all() and base.metas[0]["ab"]["side"] == "base"


def test_ab_catches_a_slowed_kernel(cli, tmp_path):
    r = cli(*ab_args(tmp_path, new_env={"ABTEST_SLOW": "1.6"}.items(), pairs="12"))
    assert r.code == 1, r.err
    d = read_csv(r.out)
    # Real timing on a shared machine: a sanity check, not the gate's power (bench/gate.py measures
    # that). Both rows see the slowdown; a row may be left `noise` when the host's state flips
    # under it (seen now and then under pytest -n 2 on the 2-core development machine), never `unchanged`.
    assert (d.status == "regression").any() and d.status.isin(["regression", "noise"]).all(), \
        d[["k", "ratio", "ratio_lo", "status"]]
    assert (d.ratio > 1.25).all()


def test_a_dead_worker_marks_its_rows_error_and_keeps_the_rest(cli, tmp_path):
    r = cli(*ab_args(tmp_path, new_env={"ABTEST_DIE_K": "65"}.items(), k="17,65,129"))
    assert r.code == 1, r.err
    assert "new worker died" in r.err
    d = read_csv(r.out).set_index("k")
    # The row measured before the death is kept with a timing verdict. Which one is left open:
    # it is an A/A row timed for real, and another ab test pinned to the same CPU (pytest -n 2)
    # has had it flagged (1 run in 5). It has the 2 pairs of the first incarnation only (the
    # dead side ends the job), so a ratio beyond the threshold is also ``untestable``.
    assert d.loc[17, "status"] in ("unchanged", "noise", "untestable", "regression", "improvement")
    assert d.loc[65, "status"] == "regression" and d.loc[129, "status"] == "regression"
    new = load_runs([tmp_path / "ab" / "new"]).df.set_index("k")
    assert new.loc[17, "status"] == "ok" and new.loc[65, "status"] == "error"
    assert "died" in new.loc[129, "message"]
    base = load_runs([tmp_path / "ab" / "base"]).df
    assert (base.status == "ok").all() and len(base) == 3


def one_line_error(r, text: str) -> None:
    assert r.code == 2, (r.code, r.out, r.err)
    assert len(r.err.strip().splitlines()) == 1 and text in r.err and "Traceback" not in r.err


def fake_python(tmp_path: Path, name: str, body: str) -> Path:
    p = tmp_path / name
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return p


def test_bad_sides_are_one_line_exit_2(cli, tmp_path):
    grid = ["--kernel", "direct-numpy", "--dim", "1", "--n", "1024", "--k", "5"]
    one_line_error(cli("ab", "--base", tmp_path / "no-such-python", "--new", sys.executable, *grid),
                   "no such interpreter")
    one_line_error(cli("ab", "--base", tmp_path, "--new", sys.executable, *grid), "not a venv")
    other = fake_python(tmp_path, "py-other", 'echo \'{"type": "hello", "protocol": 999, "symbench": "9.9", "kernels": []}\'; cat >/dev/null')
    one_line_error(cli("ab", "--base", sys.executable, "--new", other, *grid, "--out", tmp_path / "o1"),
                   f"protocol 999, this one speaks {PROTOCOL}")
    nosym = fake_python(tmp_path, "py-nosym", "echo \"/usr/bin/python3: Error while finding module specification for 'symbench.__main__' "
                        "(ModuleNotFoundError: No module named symbench)\" >&2; exit 1")
    one_line_error(cli("ab", "--base", nosym, "--new", sys.executable, *grid, "--out", tmp_path / "o2"),
                   "symbench is not installed")
    one_line_error(cli("ab", "--base", sys.executable, "--new", sys.executable, "--new-env", "oops", *grid),
                   "KEY=VALUE")


# -- compare of stored runs: the common-mode factor -------------------------------------------

def drift_tables(shift: float, changed: dict[int, float]) -> tuple[Table, Table]:
    """Base and new tables: every row ``shift`` slower in the new, the rows in ``changed`` by their factor."""
    base, new = Table(), Table()
    for i in range(30):
        k, median = 3 + i, 1e-4 * (1 + i % 5)
        base.add("direct-numpy", k, median, spread=0.004, count=10)
        new.add("direct-numpy", k, median * changed.get(k, shift), spread=0.004, count=10)
    return base, new


def test_common_mode_drift_is_removed_and_a_real_change_still_caught(tmp_path):
    base, new = drift_tables(1.08, {5: 1.13, 9: 1.6})
    a, b = base.write(tmp_path / "a"), new.write(tmp_path / "b", run_id="20260101-000001-new")
    cmp = compare_runs(load_runs([a]), load_runs([b]))
    assert cmp.shift == pytest.approx(1.08) and cmp.shift_applied
    st = cmp.rows.set_index("k").status
    assert st[9] == "regression" and st[5] == "unchanged" and cmp.regressions == 1
    raw = compare_runs(load_runs([a]), load_runs([b]), common_mode_correction=False)
    assert not raw.shift_applied and raw.rows.set_index("k").status[5] == "regression"


def test_a_common_shift_beyond_the_threshold_is_corrected_and_said_and_can_fail_the_gate(tmp_path, cli):
    base, new = drift_tables(1.3, {9: 1.3 * 1.6})
    a, b = base.write(tmp_path / "a"), new.write(tmp_path / "b", run_id="20260101-000001-new")
    cmp = compare_runs(load_runs([a]), load_runs([b]))
    # The shift is the machine's or every row's: rows are tested against it, and the report says so.
    assert cmp.shift_applied and cmp.shift == pytest.approx(1.3) and cmp.regressions == 1
    assert cmp.rows.set_index("k").status[9] == "regression"
    assert any("symbench ab" in w and "1.30x" in w and "lower --max-shift" in w for w in cmp.warnings)
    r = cli("compare", a, b, "--format", "markdown")
    assert r.code == 1 and "Common-mode shift: 1.300x" in r.out and "scaled by it" in r.out
    raw = compare_runs(load_runs([a]), load_runs([b]), common_mode_correction=False)
    assert not raw.shift_applied and raw.regressions == 30
    r = cli("compare", a, b, "--no-common-mode", "--format", "json")
    assert r.code == 1 and '"applied": false' in r.out
    # --max-shift (default 0.5): a run-wide slowdown beyond it fails the gate, on its own line first.
    base, new = drift_tables(1.3, {})
    a, b = base.write(tmp_path / "c"), new.write(tmp_path / "d", run_id="20260101-000001-new")
    r = cli("compare", a, b, "--format", "csv")
    assert r.code == 0 and "1.30x the baseline" in r.err and "lower --max-shift" in r.err
    r = cli("compare", a, b, "--max-shift", "0.2", "--format", "markdown")
    assert r.code == 1 and r.err.startswith("symbench: gate failed: the whole new run is 1.30x")
    assert "FAIL: the whole run 1.30x slower (--max-shift 0.2)" in r.out
    base, new = drift_tables(1.7, {})
    a, b = base.write(tmp_path / "e"), new.write(tmp_path / "f", run_id="20260101-000001-new")
    assert cli("compare", a, b).code == 1
    assert cli("compare", a, b, "--max-shift", "inf").code == 0
    one_line_error(cli("compare", a, b, "--max-shift", "0"), "--max-shift 0 must be positive")


def test_pairs_spread_over_incarnations_and_their_medians_guard_the_verdict():
    from symbench.analysis.paired import INCARNATION_STRIDE, ordered_incarnation_index
    from symbench.sweep.ab import split_pairs

    assert split_pairs(20, 7) == [3, 3, 3, 3, 3, 3, 2] and sum(split_pairs(9, 7)) == 9
    groups = np.repeat(np.arange(7), 3)
    # Per-process offsets: five incarnations 13 % slow, two of them mostly fast.
    d = np.array([0.13] * 15 + [-0.1, -0.1, 0.2, -0.1, -0.1, 0.2])
    assert paired_verdict(d, 0.10, 0.01)["status"] == "regression"  # the pairs alone are fooled
    assert paired_verdict(d, 0.10, 0.01, groups)["status"] != "regression"
    # A real 25 % slowdown survives one incarnation whose offset went the other way.
    d = math.log(1.25) + np.array([0.0, 0.05, -0.05, 0.1, -0.3, 0.02, 0.0])[groups]
    assert paired_verdict(d, 0.10, 0.01, groups)["status"] == "regression"
    from symbench.problem import KEY_FIELDS

    s = pd.DataFrame({**{c: "x" for c in KEY_FIELDS}, "kernel": "k", "time_s": 1.0,
                      "sample": [2 * INCARNATION_STRIDE + 1, 0, INCARNATION_STRIDE, 1]})
    assert list(next(iter(ordered_incarnation_index(s).values()))) == [0, 0, 1, 2]


# -- rows still undecided after the incarnations take more ------------------------------------

class ScriptedClient:
    """A worker stand-in for :func:`run_ab`: each sample's time comes from ``time_of(side, incarnation, k)``.

    Instances count the incarnations (pairs of workers) as they are made, and log
    which rows each one opened.
    """

    made: list = []
    opened: list = []
    time_of = staticmethod(lambda side, inc, k: 1e-3)

    def __init__(self, side) -> None:
        self.side, self.kernels, self._next, self._taken = side, ["direct-numpy"], 0, {}
        self.inc = sum(1 for s in ScriptedClient.made if s == side.label)
        ScriptedClient.made.append(side.label)

    def spawn(self, cpus=None) -> None:
        pass

    def handshake(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def new_id(self) -> int:
        self._next += 1
        return self._next

    def request(self, msg):
        from symbench.sweep.runner import run_meta
        from symbench.problem import Problem
        from symbench.sweep.ab import _bare_row

        op = msg["op"]
        if op == "meta":
            from symbench.config import SweepConfig

            return {"meta": run_meta(SweepConfig.from_dict(msg["config"]), msg["run_id"], [], {})}
        if op == "open":
            p = Problem(**msg["problem"])
            ScriptedClient.opened.append((self.inc, p.k))
            self._taken[msg["id"]] = (p, msg["run_id"], [])
            return {"open": True, "single_s": 1e-4,
                    "row": _bare_row(msg["run_id"], msg["kernel"], p, 0, "ok", "")}
        if op == "autorange":
            return {"loops": 1, "best_s": 1e-3}
        if op == "sample":
            p, _, kept = self._taken[msg["id"]]
            if msg.get("keep", True):
                kept.append(ScriptedClient.time_of(self.side.label, self.inc, p.k))
            return {"seconds": 1e-3}
        if op == "row":
            p, run_id, kept = self._taken.pop(msg["id"])
            row = _bare_row(run_id, "direct-numpy", p, 0, "ok", "")
            return {"row": row, "samples": [{"run_id": run_id, "kernel": "direct-numpy", "source": "grid",
                                             "sample": i, "loops": 1, "time_s": t, **p.as_dict()}
                                            for i, t in enumerate(kept)]}
        return {}


def test_a_row_left_as_noise_takes_more_incarnations_and_only_it(tmp_path, monkeypatch):
    import symbench.sweep.ab as ab
    from symbench.analysis.compare import compare_runs

    # k=17: 25 % slower, but the workers of incarnations 1 and 4 favoured the new side
    # (offsets 0.8x), so the second smallest incarnation median is below 1: noise after
    # 7 incarnations. k=5: unchanged. The 7 more incarnations are clean.
    def time_of(side, inc, k):
        if side == "base" or k == 5:
            return 1e-3
        return 1.25e-3 * (0.75 if inc in (1, 4) else 1.0)

    monkeypatch.setattr(ScriptedClient, "made", [])
    monkeypatch.setattr(ScriptedClient, "opened", [])
    monkeypatch.setattr(ScriptedClient, "time_of", staticmethod(time_of))
    monkeypatch.setattr(ab, "WorkerClient", ScriptedClient)
    monkeypatch.setattr(ab, "spawn_workers", lambda sides: [ScriptedClient(s) for s in sides])
    monkeypatch.setattr(ab, "start_workers", lambda clients, spawned=False: None)
    cfg = load_config(None, {"kernel": ["direct-numpy"], "dim": "1", "n": "1024", "k": "5,17"})
    sides = [ab.Side("base", sys.executable, {}), ab.Side("new", sys.executable, {})]

    plain = ab.run_ab(cfg, *sides, tmp_path / "plain", pairs=21)  # no threshold: no extension
    c = compare_runs(load_runs([plain.base_dir]), load_runs([plain.new_dir]), paired=True)
    assert c.rows.set_index("k").status.to_dict() == {5: "unchanged", 17: "noise"}
    assert ScriptedClient.made.count("new") == 7

    ScriptedClient.made.clear(), ScriptedClient.opened.clear()
    res = ab.run_ab(cfg, *sides, tmp_path / "more", pairs=21, threshold=0.10, alpha=0.01)
    assert ScriptedClient.made.count("new") == 14
    assert [k for inc, k in ScriptedClient.opened if inc >= 7] == [17] * 14  # both sides, 7 incarnations
    c = compare_runs(load_runs([res.base_dir]), load_runs([res.new_dir]), paired=True)
    rows = c.rows.set_index("k")
    assert rows.status.to_dict() == {5: "unchanged", 17: "regression"}
    assert rows.pairs.to_dict() == {5: 21, 17: 42}


def test_the_incarnations_t_interval_weighs_how_far_they_went():
    from symbench.analysis.paired import t_interval

    lo, hi = t_interval(np.array([0.0, 0.1, 0.2]), 0.025)
    assert lo == pytest.approx(0.1 - 4.302653 * 0.1 / math.sqrt(3), rel=1e-5) and hi > 0.2
    # Seven incarnations all 1.00-1.23 in A/A (per-process offsets of numpy.convolve 4096 x 257): noise.
    offsets = np.log([1.17, 1.23, 1.13, 1.05, 1.00, 1.18, 1.03])
    assert paired_verdict(offsets[np.repeat(np.arange(7), 3)], 0.10, 0.01,
                          np.repeat(np.arange(7), 3))["status"] == "noise"
    assert t_interval(np.array([0.1, 0.2]), 0.025) == (-math.inf, math.inf)
    groups = np.repeat(np.arange(7), 3)
    # Six incarnations just above 1.1 and one far below: the sign tests pass it (6 of 7 above 1),
    # the t interval of the medians does not.
    offsets = np.array([0.13, 0.12, 0.15, 0.13, 0.16, -0.9, 0.12])
    assert paired_verdict(offsets[groups], 0.10, 0.01, groups)["status"] == "noise"
    # A real 25 % slowdown with the same kind of outlier still is one.
    d = math.log(1.25) + np.array([0.0, 0.05, -0.05, 0.1, -0.3, 0.02, 0.0])[groups]
    assert paired_verdict(d, 0.10, 0.01, groups)["status"] == "regression"
