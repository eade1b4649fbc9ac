"""Dispatch tables (symbench tune), their lookup, and symbench.convolve dispatching on them."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.signal

import symbench
from symbench.dispatch import api
from symbench.dispatch import selector as dispatch
from symbench.analysis.data import load_runs
from symbench.analysis.tune import build_table
from symbench.errors import SchemaError, SymbenchError
from symbench.errors import SymbenchWarning
from symbench.dispatch.table import TABLE_SCHEMA_VERSION, DispatchTable, TableError, table_json
from tests.synth import LIBS, MACHINE, Table

pytestmark = pytest.mark.filterwarnings("ignore:dispatch table")

NS = [2048, 4096, 8192, 16384, 32768]
KS = [4, 8, 16, 32, 64, 128, 256, 512]


def costs(n: float, k: float) -> dict[str, float]:
    """direct-numpy wins at small n*k, direct at larger k, fft-pyfftw from k ~ 100 on."""
    return {"direct-numpy": 1e-9 * n * k + 2e-6,
            "direct": 0.6e-9 * n * k + 10e-6,
            "fft-pyfftw": 5e-9 * (n + k) * math.log2(n + k) + 20e-6}


def truth(n: float, k: float) -> tuple[str, float]:
    """The fastest kernel, and how much faster it is than the runner-up (a ratio >= 1)."""
    c = sorted((t, name) for name, t in costs(n, k).items())
    return c[0][1], c[1][0] / c[0][0]


def synth_run(path: Path, ns=NS, ks=KS, machine=MACHINE, libraries=LIBS, dim=1, op="conv", **kw) -> Path:
    t = Table()
    for n in ns:
        for k in ks:
            for name, cost in costs(n, k).items():
                t.add(name, k, cost, n=n, dim=dim, op=op, **kw)
    return t.write(path, machine=machine, libraries=libraries)


@pytest.fixture
def table(tmp_path: Path) -> dict:
    tab, notes = build_table(load_runs([synth_run(tmp_path / "run")]))
    return tab


@pytest.fixture(autouse=True)
def _no_table():
    symbench.use_table(None)
    api.clear_cache()
    yield
    symbench.use_table(None)
    api.clear_cache()


def test_table_reproduces_every_measured_winner(table):
    assert len(table["entries"]) == 1
    e = table["entries"][0]
    assert set(e["kernels"]) == {"direct-numpy", "direct", "fft-pyfftw"}
    assert e["grid_regret"]["worst"] == pytest.approx(1.0) and e["grid_regret"]["points"] == len(NS) * len(KS)
    t = DispatchTable.from_dict(table)
    setting = ("conv", "none", 1, "float64", "full", 1, 1, 1, 1, "cpu")
    for n in NS:
        for k in KS:
            c = t.choose(setting, n, k)
            assert c.kernel == truth(n, k)[0] and not c.extrapolated
    # regions: direct-numpy only at small n and k, then direct, then fft-pyfftw
    first = e["regions"][0]["segments"]
    assert [s["kernel"] for s in first] == ["direct-numpy", "direct", "fft-pyfftw"]
    last = e["regions"][-1]["segments"]
    assert [s["kernel"] for s in last] == ["direct", "fft-pyfftw"]


def test_interpolation_between_measured_n(table):
    t = DispatchTable.from_dict(table)
    setting = ("conv", "none", 1, "float64", "full", 1, 1, 1, 1, "cpu")
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(400):
        n = float(np.exp(rng.uniform(math.log(2048), math.log(32768))))
        k = float(np.exp(rng.uniform(math.log(4), math.log(512))))
        best, margin = truth(n, k)
        if margin < 1.1:
            continue  # near a boundary either choice is fine
        c = t.choose(setting, n, k)
        assert c.kernel == best, (n, k)
        assert not c.extrapolated
        checked += 1
    assert checked > 250


def test_extrapolation_is_flagged_and_follows_the_models(table):
    t = DispatchTable.from_dict(table)
    setting = ("conv", "none", 1, "float64", "full", 1, 1, 1, 1, "cpu")
    for n, k in [(200_000, 8), (200_000, 2000), (100, 3), (4096, 3000), (4096, 2)]:
        c = t.choose(setting, n, k)
        assert c.extrapolated
        best, margin = truth(n, k)
        if margin > 1.3:
            assert c.kernel == best, (n, k)
    assert t.choose(("conv", "none", 2, "float64", "full", 1, 1, 1, 1, "cpu"), 100, 3) is None


def test_round_trip(tmp_path: Path, table):
    p = tmp_path / "t.json"
    p.write_text(table_json(table))
    a, b = DispatchTable.from_dict(table), DispatchTable.load(p)
    assert b.data == json.loads(table_json(table))
    setting = ("conv", "none", 1, "float64", "full", 1, 1, 1, 1, "cpu")
    for n in (2048, 3000, 10_000, 50_000, 1e6):
        for k in (3, 10, 100, 1000):
            assert a.choose(setting, n, k) == b.choose(setting, n, k)
    assert b.machine["machine_id"] == MACHINE["machine_id"]
    assert b.machine["libraries"]["pyfftw"] == LIBS["pyfftw"]


@pytest.mark.parametrize("edit, fragment", [
    (lambda t: "{not json", "not JSON"),
    (lambda t: [], "JSON object"),
    (lambda t: {**t, "kind": "other"}, "kind"),
    (lambda t: {"schema_version": 1, "run_id": "x"}, "run.json"),
    (lambda t: {**t, "schema_version": "one"}, "schema_version"),
    (lambda t: {**t, "entries": {}}, "entries"),
    (lambda t: {**t, "entries": [{**t["entries"][0], "n": []}]}, "same length"),
    (lambda t: {**t, "entries": [{k: v for k, v in t["entries"][0].items() if k != "curves"}]}, "missing curves"),
    (lambda t: {**t, "entries": [{**t["entries"][0], "curves": [{"left": "x", "right": "direct", "k_star": []}]}]},
     "name kernels"),
    (lambda t: {**t, "entries": [{**t["entries"][0], "curves": [
        {**t["entries"][0]["curves"][0], "k_star": [-1.0] * len(t["entries"][0]["n"])}]}]}, "positive"),
    (lambda t: {**t, "entries": [{**t["entries"][0], "dim": "one"}]}, "dim"),
])
def test_corrupt_tables_are_refused(tmp_path: Path, table, edit, fragment):
    p = tmp_path / "bad.json"
    bad = edit(table)
    p.write_text(bad if isinstance(bad, str) else json.dumps(bad))
    with pytest.raises(TableError, match=fragment):
        DispatchTable.load(p)
    with pytest.raises(SymbenchError, match=fragment):
        symbench.use_table(p)


def test_newer_table_is_refused_older_loads(tmp_path: Path, table):
    p = tmp_path / "new.json"
    p.write_text(json.dumps({**table, "schema_version": TABLE_SCHEMA_VERSION + 1}))
    with pytest.raises(SchemaError, match="newer symbench"):
        DispatchTable.load(p)
    with pytest.raises(TableError, match="does not exist"):
        DispatchTable.load(tmp_path / "nope.json")


def test_table_for_the_wrong_op(tmp_path: Path):
    tab, _ = build_table(load_runs([synth_run(tmp_path / "run", ns=[32, 64], ks=[3, 5], op="gconv", dim=2,
                                              group="p4", mode="valid")]))
    p = tmp_path / "g.json"
    p.write_text(table_json(tab))
    with pytest.raises(TableError, match="for gconv, not for conv"):
        symbench.use_table(p)


def test_tune_refuses_several_machines_and_nothing_to_tune(tmp_path: Path):
    a = synth_run(tmp_path / "a")
    b = synth_run(tmp_path / "b", machine={"machine_id": "other", "machine_label": "other box"})
    with pytest.raises(SymbenchError, match="2 machines"):
        build_table(load_runs([a, b]))
    t = Table()
    t.add("auto-scipy", 3, 1e-3)
    with pytest.raises(SymbenchError, match="nothing to tune"):
        build_table(load_runs([t.write(tmp_path / "c")]))


def test_dispatcher_follows_the_table(tmp_path: Path, table):
    p = tmp_path / "t.json"
    p.write_text(table_json(table))
    symbench.use_table(p)
    from symbench.problem import Problem

    for n, k in [(3000, 5), (20000, 20), (20000, 400), (5000, 3)]:
        c = dispatch.select(Problem(n=n, k=k))
        assert c.source == "table"
        if truth(n, k)[1] > 1.1:
            assert c.kernel == truth(n, k)[0]
    rng = np.random.default_rng(1)
    for n, k in [(3000, 5), (20000, 400)]:
        x, h = rng.standard_normal(n), rng.standard_normal(k)
        y = symbench.convolve(x, h)
        np.testing.assert_allclose(y, scipy.signal.convolve(x, h), atol=1e-9)
        plan = api.cached_plan(x, h, "full", None, 1)
        assert plan.kernel.name == dispatch.select(Problem(n=n, k=k)).kernel
        # the named kernel shares the plan the dispatcher made
        symbench.convolve(x, h, kernel=plan.kernel.name)
        assert api.cached_plan(x, h, "full", plan.kernel.name, 1) is plan


def test_no_table_falls_back_to_the_model(monkeypatch):
    monkeypatch.delenv("SYMBENCH_TABLE", raising=False)
    from symbench.problem import Problem

    assert dispatch.active_table() is None
    c = dispatch.select(Problem(n=100_000, k=3))
    assert c.source == "model" and c.kernel == dispatch.choose(Problem(n=100_000, k=3))
    x = np.arange(10.0)
    np.testing.assert_allclose(symbench.convolve(x, x[:3]), scipy.signal.convolve(x, x[:3]))


def test_no_entry_for_the_setting_falls_back(tmp_path: Path, table):
    p = tmp_path / "t.json"
    p.write_text(table_json(table))
    symbench.use_table(p)
    x = np.ones((20, 20), dtype=np.float32)
    from symbench.problem import Problem

    c = dispatch.select(Problem(dim=2, n=20, k=3, dtype="float32"))
    assert c.source == "model" and "no entry" in c.note
    y = symbench.convolve(x, x[:3, :3], mode="same")
    np.testing.assert_allclose(y, scipy.signal.convolve(x, x[:3, :3], mode="same"), rtol=1e-5)


def test_environment_table_and_cached_table(tmp_path: Path, table, monkeypatch):
    from symbench.problem import Problem

    p = tmp_path / "t.json"
    p.write_text(table_json(table))
    monkeypatch.setenv("SYMBENCH_TABLE", str(p))
    assert dispatch.select(Problem(n=20000, k=400)).source == "table"
    monkeypatch.setenv("SYMBENCH_TABLE", str(tmp_path / "missing.json"))
    with pytest.raises(TableError, match="SYMBENCH_TABLE"):
        symbench.convolve(np.ones(50), np.ones(3))
    monkeypatch.delenv("SYMBENCH_TABLE")
    cache = dispatch.cached_table_path()
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("{broken")
    try:
        with pytest.warns(SymbenchWarning, match="ignoring the cached dispatch table"):
            assert dispatch.select(Problem(n=20000, k=400)).source == "model"
        cache.write_text(table_json(table))
        assert dispatch.select(Problem(n=20000, k=400)).source == "table"
    finally:
        cache.unlink()


def test_table_from_another_machine_warns(tmp_path: Path, table):
    p = tmp_path / "t.json"
    p.write_text(table_json(table))
    with pytest.warns(SymbenchWarning, match="tuned on testbox.*pyfftw 0.14.0 when tuned"):
        symbench.use_table(p)


def test_use_table_switches_cached_dispatch(tmp_path: Path, table):
    x, h = np.ones(3000), np.ones(5)
    symbench.convolve(x, h)  # the model's choice, cached
    model_plan = api.cached_plan(x, h, "full", None, 1)
    # a table that always picks fft-pyfftw for this setting
    only = json.loads(table_json(table))
    e = only["entries"][0]
    e["kernels"] = ["fft-pyfftw"]
    e["curves"] = []
    p = tmp_path / "fft.json"
    p.write_text(json.dumps(only))
    symbench.use_table(p)
    symbench.convolve(x, h)
    plan = api.cached_plan(x, h, "full", None, 1)
    assert plan.kernel.name == "fft-pyfftw" and plan is not model_plan


def test_plan_cache_evicts_least_recently_used(monkeypatch):
    monkeypatch.setattr(api, "CACHE_ENTRIES", 3)
    for n in (10, 11, 12, 13):
        symbench.convolve(np.ones(n), np.ones(3), kernel="direct-numpy")
    assert len(api._plans) == 3
    assert (np.ones(10).shape, (3,)) not in {(k[1], k[2]) for k in api._plans}
    np.testing.assert_allclose(symbench.convolve(np.ones(10), np.ones(3), kernel="direct-numpy"),
                               scipy.signal.convolve(np.ones(10), np.ones(3)))


def test_cli_tune_writes_table_and_cache(cli, tmp_path: Path):
    run = synth_run(tmp_path / "run")
    out = tmp_path / "table.json"
    r = cli("tune", run, "--out", out)
    assert r.code == 0, r.err
    assert "direct-numpy" in r.out and "fft-pyfftw" in r.out and "extrapolated" in r.out
    t = DispatchTable.load(out)
    assert t.ops == {"conv"}
    assert dispatch.cached_table_path().read_text() == out.read_text()
    r = cli("tune", "--show", out, "--n", "20000", "--k", "400")
    assert r.code == 0 and r.out.startswith("fft-pyfftw")
    r = cli("tune", "--show", out, "--n", "500000", "--k", "3", "--json")
    assert json.loads(r.out)["extrapolated"] is True
    dispatch.cached_table_path().unlink()


def test_cli_tune_errors(cli, tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    r = cli("tune", "--show", bad)
    assert r.code == 2 and "not a valid symbench dispatch table" in r.err and "Traceback" not in r.err
    r = cli("tune", tmp_path / "missing")
    assert r.code == 2 and "does not exist" in r.err
    r = cli("tune")
    assert r.code == 2 and "run directories" in r.err
    a = synth_run(tmp_path / "a")
    b = synth_run(tmp_path / "b", machine={"machine_id": "other", "machine_label": "other box"})
    r = cli("tune", a, b, "--no-cache")
    assert r.code == 2 and "machines" in r.err


def test_lookup_is_cheap(table):
    # Not a timing assertion: the lookup runs in pure Python over lists made at load.
    t = DispatchTable.from_dict(table)
    e = next(iter(t.entries.values()))
    assert all(isinstance(v, float) for v in e.log2_n)
    assert all(isinstance(v, float) for c in e.curves for v in c.log2_k)


def test_tune_decides_by_fastest_sample_or_median(tmp_path: Path):
    # direct-numpy's samples are steady; fft-pyfftw's are disturbed (a wide spread around a higher
    # median, with a faster best sample) at every k >= 64: min and median disagree there.
    t = Table()
    for n in (4096, 8192):
        for k in (16, 32, 64, 128):
            t.add("direct-numpy", k, 1e-6 * k, n=n, spread=0.01)
            fast = 0.5e-6 * k if k >= 64 else 2e-6 * k
            t.add("fft-pyfftw", k, None, n=n, samples=[fast, *(3e-6 * k,) * 6])
    run = t.write(tmp_path / "run")
    by_min, _ = build_table(load_runs([run]))
    by_median, _ = build_table(load_runs([run]), by="median")
    seg_min = by_min["entries"][0]["regions"][0]["segments"]
    seg_med = by_median["entries"][0]["regions"][0]["segments"]
    assert [s["kernel"] for s in seg_min] == ["direct-numpy", "fft-pyfftw"]
    assert [s["kernel"] for s in seg_med] == ["direct-numpy"]
    assert by_min["statistic"] == "time_min_s" and by_median["statistic"] == "time_s"
    with pytest.raises(SymbenchError, match="statistic"):
        build_table(load_runs([run]), by="mean")


@pytest.mark.parametrize("kernel", [None, "direct", "direct-numpy", "fft-pyfftw", "fft-scipy", "auto-scipy"])
def test_cached_plans_see_new_data_strides_and_dtypes(kernel):
    rng = np.random.default_rng(5)
    for _ in range(3):  # the same shapes again and again: one plan, fresh data each time
        x, h = rng.standard_normal(300), rng.standard_normal(17)
        np.testing.assert_allclose(symbench.convolve(x, h, kernel=kernel), scipy.signal.convolve(x, h), atol=1e-10)
    big = rng.standard_normal(600)
    x = big[::2]  # not contiguous, same shape as above
    np.testing.assert_allclose(symbench.convolve(x, h, kernel=kernel), scipy.signal.convolve(x, h), atol=1e-10)
    x32 = x.astype(np.float32)  # float32 signal, float64 filter: float64 result, as SciPy
    y = symbench.convolve(x32, h, "same", kernel=kernel)
    ref = scipy.signal.convolve(x32, h, "same")
    assert y.dtype == ref.dtype == np.float64
    np.testing.assert_allclose(y, ref, atol=1e-6)
    y1 = symbench.convolve(x, h, kernel=kernel)
    y2 = symbench.convolve(x, h, kernel=kernel)
    assert y1 is not y2 and not np.shares_memory(y1, y2)  # every call returns its own array


def test_plans_are_safe_across_threads():
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(6)
    pairs = [(rng.standard_normal(2000), rng.standard_normal(40)) for _ in range(16)]

    def one(i: int) -> float:
        x, h = pairs[i]
        return float(np.abs(symbench.convolve(x, h, kernel="fft-pyfftw") - scipy.signal.convolve(x, h)).max())

    with ThreadPoolExecutor(4) as pool:
        errs = list(pool.map(one, list(range(16)) * 4))
    assert max(errs) < 1e-10


def test_cli_show_table_for_the_wrong_op(cli, tmp_path: Path):
    tab, _ = build_table(load_runs([synth_run(tmp_path / "run", ns=[32, 64], ks=[3, 5], op="gconv", dim=2,
                                              group="p4", mode="valid")]))
    p = tmp_path / "g.json"
    p.write_text(table_json(tab))
    r = cli("tune", "--show", p, "--n", "100", "--k", "3")
    assert r.code == 2 and "no entry for conv" in r.err
