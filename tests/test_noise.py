"""The noise record and the pre-flight checks, on synthetic /proc and /sys trees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from symbench.machine import noise
from symbench.machine.noise import NoiseProbe, NoiseRecord, preflight

KS = [3, 5, 9, 17, 33, 65]


def write_proc(root: Path, *, user: int, system: int = 0, idle: int, steal: int = 0, self_ticks: int = 0,
               psi_total: int = 0, cpus: int = 2) -> None:
    (root / "proc/self").mkdir(parents=True, exist_ok=True)
    (root / "proc/pressure").mkdir(parents=True, exist_ok=True)
    lines = [f"cpu  {user} 0 {system} {idle} 0 0 0 {steal} 0 0"]
    lines += [f"cpu{i} 0 0 0 0 0 0 0 0 0 0" for i in range(cpus)]
    (root / "proc/stat").write_text("\n".join(lines) + "\nintr 0\n")
    # a process name with spaces and a parenthesis: fields are counted after the last ')'
    fields = ["S"] + ["0"] * 10 + [str(self_ticks), "0"] + ["0"] * 30
    (root / "proc/self/stat").write_text(f"123 (py (x) y) {' '.join(fields)}\n")
    (root / "proc/pressure/cpu").write_text(f"some avg10=12.50 avg60=1.00 avg300=0.00 total={psi_total}\n"
                                            "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def probe_interval(tmp_path: Path, start: dict, end: dict, wall: float = 1.0) -> dict:
    clock = Clock()
    write_proc(tmp_path, **start)
    p = NoiseProbe(tmp_path, clock=clock)
    p.start()
    write_proc(tmp_path, **end)
    clock.t = wall
    return p.stop()


def test_quiet_interval(tmp_path):
    # 2 CPUs, 1 s at 100 Hz: 200 ticks; this process used 100 of the 100 busy ones.
    r = probe_interval(tmp_path, dict(user=1000, idle=1000, self_ticks=50),
                       dict(user=1100, idle=1100, self_ticks=150, psi_total=100_000))
    assert r["steal_share"] == 0 and r["others_cores"] == 0
    assert r["pressure_share"] == pytest.approx(0.1) and r["pressure_avg10"] == 12.5
    assert r["judged"] and not r["disturbed"]


def test_others_and_steal_make_a_disturbed_window(tmp_path):
    # others: 180 busy ticks - 100 of ours = 80 ticks over 100 ticks per CPU: 0.8 of a core
    r = probe_interval(tmp_path, dict(user=0, idle=0), dict(user=180, idle=20, self_ticks=100))
    assert r["others_cores"] == pytest.approx(0.8) and r["disturbed"]
    # steal: 30 of 200 ticks = 15%
    r = probe_interval(tmp_path, dict(user=0, idle=0), dict(user=100, idle=70, steal=30, self_ticks=100))
    assert r["steal_share"] == pytest.approx(0.15) and r["others_cores"] == 0 and r["disturbed"]
    # just under both thresholds
    r = probe_interval(tmp_path, dict(user=0, idle=0), dict(user=190, idle=0, steal=10, self_ticks=150))
    assert r["steal_share"] == pytest.approx(0.05) and r["others_cores"] == pytest.approx(0.4)
    assert not r["disturbed"]


def test_short_windows_are_not_judged(tmp_path):
    r = probe_interval(tmp_path, dict(user=0, idle=0), dict(user=4, idle=0), wall=0.02)
    assert r["others_cores"] == pytest.approx(2.0) and not r["judged"] and not r["disturbed"]


def test_missing_pressure_and_self_stat_leave_those_empty(tmp_path):
    write_proc(tmp_path, user=0, idle=0)
    (tmp_path / "proc/pressure/cpu").unlink()
    (tmp_path / "proc/self/stat").unlink()
    p = NoiseProbe(tmp_path)
    p.start()
    write_proc(tmp_path, user=100, idle=100)
    (tmp_path / "proc/pressure/cpu").unlink()
    (tmp_path / "proc/self/stat").unlink()
    r = p.stop()
    assert r["others_cores"] is None and r["pressure_share"] is None and not r["disturbed"]


def test_unavailable_probe_records_why_and_nothing_fails(tmp_path, monkeypatch):
    p = NoiseProbe(tmp_path / "nowhere")
    assert not p.available and "not readable" in p.reason
    p.start()
    assert p.stop() == {}
    monkeypatch.setattr(noise.sys, "platform", "darwin")
    rec = NoiseRecord(NoiseProbe())
    rec.start()
    rec.stop("conv 1-D n=8 k=3 float64 full")
    s = rec.summary()
    assert s["available"] is False and "not Linux" in s["reason"] and s["problems"] == 0
    json.dumps(s)
    pre = preflight()
    assert all(c["status"] == "unknown" and "not Linux" in c["reason"] for c in pre["checks"].values())


class FakeProbe:
    """Readings given in advance: the disturbed flag without a busy machine."""

    available, reason = True, None

    def __init__(self, readings):
        self.readings = list(readings)

    def start(self):
        pass

    def stop(self):
        return self.readings.pop(0)


def test_record_summary_counts_and_caps_the_disturbed(monkeypatch):
    monkeypatch.setattr(noise, "MAX_LABELS", 2)
    quiet = {"steal_share": 0.0, "others_cores": 0.1, "pressure_share": 0.2, "judged": True, "disturbed": False}
    bad = {"steal_share": 0.2, "others_cores": 0.1, "pressure_share": 0.5, "judged": True, "disturbed": True}
    rec = NoiseRecord(FakeProbe([quiet, bad, bad, bad]))
    for i in range(4):
        rec.start()
        rec.stop(f"p{i}", {"k": str(i)})
    s = rec.summary()
    assert s["problems"] == 4 and s["disturbed"] == 3 and s["disturbed_truncated"]
    assert [p["label"] for p in s["disturbed_problems"]] == ["p1", "p2"]
    assert s["steal_share"] == {"median": 0.2, "max": 0.2}
    assert s["thresholds"]["steal_share"] == noise.STEAL_THRESHOLD


# -- pre-flight -------------------------------------------------------------------------------------

def sysfile(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def test_preflight_warns_with_advice(tmp_path):
    write_proc(tmp_path, user=0, idle=0)
    sysfile(tmp_path, "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "powersave\n")
    sysfile(tmp_path, "sys/devices/system/cpu/cpu1/cpufreq/scaling_governor", "powersave\n")
    sysfile(tmp_path, "sys/devices/system/cpu/intel_pstate/no_turbo", "0\n")
    sysfile(tmp_path, "proc/loadavg", "64.00 10.00 5.00 3/100 1\n")
    sysfile(tmp_path, "sys/fs/cgroup/cpu.max", "150000 100000\n")
    sysfile(tmp_path, "sys/class/power_supply/BAT0/type", "Battery\n")
    sysfile(tmp_path, "sys/class/power_supply/BAT0/status", "Discharging\n")

    def sleep(_s):  # 20% of the ticks stolen while "sleeping"
        write_proc(tmp_path, user=80, idle=80, steal=40)

    pre = preflight(tmp_path, sleep=sleep)
    c = pre["checks"]
    assert c["governor"]["value"] == "powersave" and "performance" in c["governor"]["advice"]
    assert c["turbo"]["value"].startswith("on") and c["turbo"]["advice"]
    assert c["load_average"]["status"] == "warn"
    assert c["steal"]["status"] == "warn" and c["steal"]["value"].startswith("20.0%")
    assert c["cgroup_quota"]["value"] == "1.50 CPUs (cgroup v2)" and c["cgroup_quota"]["advice"]
    assert c["battery"]["value"] == "discharging" and c["battery"]["advice"]
    assert pre["warnings"] == 6


def test_preflight_quiet_machine_and_missing_files(tmp_path):
    write_proc(tmp_path, user=0, idle=0)
    sysfile(tmp_path, "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "performance\n")
    sysfile(tmp_path, "sys/devices/system/cpu/cpufreq/boost", "0\n")
    sysfile(tmp_path, "proc/loadavg", "0.10 0.10 0.10 1/100 1\n")
    sysfile(tmp_path, "sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n")
    sysfile(tmp_path, "sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n")
    sysfile(tmp_path, "sys/class/power_supply/AC/type", "Mains\n")
    pre = preflight(tmp_path, sleep=lambda s: None)
    c = pre["checks"]
    assert pre["warnings"] == 0
    assert c["governor"]["status"] == "ok" and c["turbo"]["value"].startswith("off")
    assert c["cgroup_quota"]["value"] == "none (cgroup v1)" and c["battery"]["value"] == "no battery"
    empty = preflight(tmp_path / "empty", sleep=lambda s: None)
    assert {n: v["status"] for n, v in empty["checks"].items()} == dict.fromkeys(empty["checks"], "unknown")
    assert all(v["reason"] for v in empty["checks"].values())


# -- a sweep records it; the report warns ------------------------------------------------------------

def test_sweep_records_noise_and_preflight(tmp_path, monkeypatch):
    from symbench.config import load_config
    from symbench.sweep.runner import run_sweep

    reading = {"wall_s": 0.1, "steal_share": 0.3, "others_cores": 0.0, "pressure_share": 0.0,
               "pressure_avg10": 0.0, "judged": True, "disturbed": True}
    monkeypatch.setattr(noise.NoiseProbe, "start", lambda self: None)
    monkeypatch.setattr(noise.NoiseProbe, "stop", lambda self: dict(reading))
    cfg = load_config(None, {"kernel": ["direct-numpy,fft-numpy"], "n": "64", "k": "3,5", "repeat": "3",
                             "min_time": "0.0001"})
    res = run_sweep(cfg, tmp_path / "run")
    meta = json.loads((res.run_dir / "run.json").read_text())
    assert set(meta["preflight"]["checks"]) >= {"governor", "turbo", "load_average", "steal", "cgroup_quota",
                                                "battery"}
    n = meta["noise"]
    assert n["problems"] == 2 and n["disturbed"] == 2
    assert [p["k"] for p in n["disturbed_problems"]] == ["3", "5"]
    assert n["disturbed_problems"][0]["label"].startswith("conv 1-D n=64 k=3")


def test_report_warns_once_when_a_verdict_rests_on_disturbed_rows(tmp_path):
    from synth import crossover_table

    from symbench.analysis.data import load_runs
    from symbench.analysis.report import build_report

    td = [1.0, 2.0, 3.2, 8.0, 16.0, 32.0]
    t = crossover_table(KS, [x * 1e-5 for x in td], [4e-5] * 6)
    run = t.write(tmp_path / "run")
    rep = build_report(load_runs([run]), n_boot=200)
    assert not any(n.startswith("warning:") for n in rep.notes)
    assert sum("one round per run" in n for n in rep.notes) == 1
    meta = json.loads((run / "run.json").read_text())
    key = {"op": "conv", "group": "none", "dim": "1", "n": "1024", "k": "17", "batch": "1", "c_in": "1",
           "c_out": "1", "dtype": "float64", "mode": "full", "threads": "1", "source": "grid"}
    meta["noise"] = {"available": True, "problems": 6, "disturbed": 1, "disturbed_truncated": False,
                     "disturbed_problems": [{"label": "conv 1-D n=1024 k=17 float64 full", **key}]}
    (run / "run.json").write_text(json.dumps(meta))
    rep = build_report(load_runs([run]), n_boot=200)
    warns = [n for n in rep.notes if n.startswith("warning:")]
    assert len(warns) == 1 and "1 of 1 verdicts" in warns[0] and "disturbed" in warns[0]
