"""How noisy the machine was while it measured, and whether it is set up for stable timings.

Two pieces, both read-only and cheap, both Linux-only (elsewhere they say so
and nothing fails):

* :class:`NoiseProbe` reads ``/proc/stat``, ``/proc/self/stat`` and
  ``/proc/pressure/cpu`` at the start and the end of an interval (two small
  file reads each time) and says what else happened on the machine in
  between: the share of CPU time the hypervisor stole, the CPU time of *other*
  processes (in cores), and the share of wall time some task waited for a CPU.
  :class:`NoiseRecord` collects one reading per problem and summarises them for
  ``run.json``; a problem whose window crossed :data:`STEAL_THRESHOLD` or
  :data:`OTHERS_THRESHOLD` is *disturbed*.
* :func:`preflight` checks the machine before a sweep, as pyperf's
  ``system show`` does: CPU frequency governor, turbo, load, steal, a cgroup
  CPU quota, running on battery. Each check gives a value, a status and, when
  it threatens stable timings, an advice.

Every path is read under a ``root`` (default ``/``), so tests give a directory
of synthetic files.
"""

from __future__ import annotations

import glob
import os
import sys
import time
from pathlib import Path
from statistics import median
from typing import Any, Callable

#: A problem is disturbed when the hypervisor stole more than this share of the CPU time.
STEAL_THRESHOLD = 0.10
#: ... or other processes used more than this many cores (0.5: half a core) while it was measured.
OTHERS_THRESHOLD = 0.5
#: Windows shorter than this many clock ticks per CPU (10 ms each at the usual 100 Hz) are not judged:
#: /proc/stat counts in ticks, and one tick of someone else in a short window is not a disturbance.
MIN_TICKS = 5
#: At most this many disturbed problems are named in run.json (the count is always exact).
MAX_LABELS = 50


def _read(root: Path, rel: str) -> str | None:
    try:
        return (root / rel).read_text()
    except OSError:
        return None


def unavailable_reason(root: str | Path = "/") -> str | None:
    """Why the noise record cannot be taken here, or None when it can."""
    if not sys.platform.startswith("linux") and Path(root) == Path("/"):
        return f"not Linux ({sys.platform}): no /proc/stat"
    if _read(Path(root), "proc/stat") is None:
        return "/proc/stat is not readable"
    return None


def _cpu_times(text: str) -> tuple[dict[str, int], int]:
    """The aggregate ``cpu`` line of /proc/stat as named tick counts, and the number of CPUs."""
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    agg: dict[str, int] = {}
    cpus = 0
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "cpu":
            agg = {n: int(v) for n, v in zip(names, parts[1:])}
        elif parts[0].startswith("cpu") and parts[0][3:].isdigit():
            cpus += 1
    for n in names:
        agg.setdefault(n, 0)
    return agg, max(cpus, 1)


def _self_ticks(text: str) -> int:
    """utime + stime of this process, in ticks, from /proc/self/stat (the name may hold spaces)."""
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5), counted after the name


def _pressure(text: str) -> tuple[float, int]:
    """``some avg10`` (percent) and ``some total`` (microseconds) of /proc/pressure/cpu."""
    for line in text.splitlines():
        if line.startswith("some"):
            kv = dict(p.split("=", 1) for p in line.split()[1:] if "=" in p)
            return float(kv.get("avg10", "nan")), int(kv.get("total", "0"))
    raise ValueError("no 'some' line")


class NoiseProbe:
    """Measures what else ran on the machine over an interval.

    Parameters
    ----------
    root : path
        Where ``proc/`` is found (``/``; tests give a directory of synthetic files).
    clock : callable
        Wall time in seconds (for the pressure share); ``time.monotonic``.
    """

    def __init__(self, root: str | Path = "/", clock: Callable[[], float] = time.monotonic) -> None:
        self.root = Path(root)
        self.clock = clock
        self.reason = unavailable_reason(root)
        self._start: dict[str, Any] | None = None

    @property
    def available(self) -> bool:
        return self.reason is None

    def _snapshot(self) -> dict[str, Any] | None:
        stat = _read(self.root, "proc/stat")
        if stat is None:
            return None
        times, cpus = _cpu_times(stat)
        snap: dict[str, Any] = {"times": times, "cpus": cpus, "wall": self.clock()}
        own = _read(self.root, "proc/self/stat")
        try:
            snap["self"] = _self_ticks(own) if own else None
        except (ValueError, IndexError):
            snap["self"] = None
        psi = _read(self.root, "proc/pressure/cpu")
        try:
            snap["psi"] = _pressure(psi) if psi else None
        except (ValueError, IndexError):
            snap["psi"] = None
        return snap

    def start(self) -> None:
        """Mark the start of an interval."""
        self._start = self._snapshot() if self.available else None

    def stop(self) -> dict[str, Any]:
        """What happened since :meth:`start`.

        Returns
        -------
        dict
            ``wall_s``; ``steal_share`` (stolen ticks / all ticks of all CPUs);
            ``others_cores`` (busy ticks of every process but this one, per CPU's
            elapsed ticks: 1.0 is one core kept busy); ``pressure_share`` (growth
            of ``some total`` / wall time: the share of time some task waited for a
            CPU, this process's threads included) and ``pressure_avg10`` (at the
            end); ``judged`` (the window was long enough, :data:`MIN_TICKS`) and
            ``disturbed``. Empty when the probe is unavailable.
        """
        begin, self._start = self._start, None
        end = self._snapshot() if begin is not None else None
        if begin is None or end is None:
            return {}
        t0, t1 = begin["times"], end["times"]
        d = {n: t1[n] - t0[n] for n in t1}
        total = sum(d.values())
        busy = total - d["idle"] - d["iowait"] - d["steal"]
        per_cpu = total / end["cpus"]
        wall = max(end["wall"] - begin["wall"], 0.0)
        out: dict[str, Any] = {"wall_s": wall,
                               "steal_share": d["steal"] / total if total > 0 else 0.0}
        if begin["self"] is not None and end["self"] is not None and per_cpu > 0:
            out["others_cores"] = max(busy - (end["self"] - begin["self"]), 0) / per_cpu
        else:
            out["others_cores"] = None
        if begin["psi"] is not None and end["psi"] is not None and wall > 0:
            out["pressure_share"] = min(max(end["psi"][1] - begin["psi"][1], 0) / (wall * 1e6), 1.0)
            out["pressure_avg10"] = end["psi"][0]
        else:
            out["pressure_share"] = out["pressure_avg10"] = None
        out["judged"] = per_cpu >= MIN_TICKS
        out["disturbed"] = bool(out["judged"] and is_disturbed(out))
        return out


def is_disturbed(reading: dict[str, Any]) -> bool:
    """Whether a reading crosses :data:`STEAL_THRESHOLD` or :data:`OTHERS_THRESHOLD`."""
    steal = reading.get("steal_share") or 0.0
    others = reading.get("others_cores") or 0.0
    return steal > STEAL_THRESHOLD or others > OTHERS_THRESHOLD


def thresholds() -> dict[str, Any]:
    return {"steal_share": STEAL_THRESHOLD, "others_cores": OTHERS_THRESHOLD, "min_ticks_per_cpu": MIN_TICKS}


class NoiseRecord:
    """One reading per measured problem, summarised for ``run.json``'s ``noise``."""

    def __init__(self, probe: NoiseProbe | None = None) -> None:
        self.probe = probe or NoiseProbe()
        self.readings: list[dict[str, Any]] = []
        self.disturbed: list[dict[str, Any]] = []

    def start(self) -> None:
        self.probe.start()

    def stop(self, label: str, key: dict[str, Any] | None = None) -> dict[str, Any]:
        """End the window of the problem ``label`` (``key``: its key fields, for analysis to match rows)."""
        return self.add(self.probe.stop(), label, key)

    def add(self, reading: dict[str, Any], label: str, key: dict[str, Any] | None = None) -> dict[str, Any]:
        """Record a reading taken elsewhere (a worker process's window, :mod:`symbench.sweep.rounds`)."""
        if reading:
            self.readings.append(reading)
            if reading.get("disturbed"):
                self.disturbed.append({"label": label, **(key or {}),
                                       "steal_share": round(reading["steal_share"], 4),
                                       "others_cores": None if reading["others_cores"] is None
                                       else round(reading["others_cores"], 3)})
        return reading

    def summary(self) -> dict[str, Any]:
        """The ``noise`` record of ``run.json`` (docs/formats.md)."""
        out: dict[str, Any] = {"available": self.probe.available, "reason": self.probe.reason,
                               "thresholds": thresholds(), "problems": len(self.readings)}

        def stats(name: str) -> dict[str, float | None]:
            values = [r[name] for r in self.readings if r.get(name) is not None]
            if not values:
                return {"median": None, "max": None}
            return {"median": round(median(values), 4), "max": round(max(values), 4)}

        out["steal_share"] = stats("steal_share")
        out["others_cores"] = stats("others_cores")
        out["pressure_share"] = stats("pressure_share")
        out["judged"] = sum(1 for r in self.readings if r.get("judged"))
        out["disturbed"] = len(self.disturbed)
        out["disturbed_problems"] = self.disturbed[:MAX_LABELS]
        out["disturbed_truncated"] = len(self.disturbed) > MAX_LABELS
        return out


# -- pre-flight -----------------------------------------------------------------------------------

def _check(value: Any, advice: str | None = None, *, unknown: str | None = None) -> dict[str, Any]:
    if unknown is not None:
        return {"value": "unknown", "status": "unknown", "advice": None, "reason": unknown}
    return {"value": value, "status": "warn" if advice else "ok", "advice": advice}


def _governor(root: Path) -> dict[str, Any]:
    paths = sorted(glob.glob(str(root / "sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor")))
    govs = sorted({(Path(p).read_text().strip() if os.access(p, os.R_OK) else "") for p in paths} - {""})
    if not govs:
        return _check(None, unknown="no cpufreq scaling_governor (a VM, a container, or no cpufreq driver)")
    value = ",".join(govs)
    if govs != ["performance"]:
        return _check(value, "the CPU clock follows the load; for stable timings set the governor to "
                             "performance (cpupower frequency-set -g performance)")
    return _check(value)


def _turbo(root: Path) -> dict[str, Any]:
    no_turbo = _read(root, "sys/devices/system/cpu/intel_pstate/no_turbo")
    if no_turbo is not None:
        on = no_turbo.strip() == "0"
        return _check("on (intel_pstate)" if on else "off (intel_pstate)",
                      "turbo boost makes the clock depend on temperature and other cores' load; "
                      "disable it for stable timings (echo 1 > /sys/devices/system/cpu/intel_pstate/no_turbo)"
                      if on else None)
    boost = _read(root, "sys/devices/system/cpu/cpufreq/boost")
    if boost is not None:
        on = boost.strip() == "1"
        return _check("on (cpufreq boost)" if on else "off (cpufreq boost)",
                      "boost makes the clock depend on temperature and other cores' load; disable it for "
                      "stable timings (echo 0 > /sys/devices/system/cpu/cpufreq/boost)" if on else None)
    return _check(None, unknown="neither intel_pstate/no_turbo nor cpufreq/boost is readable")


def _load(root: Path, cpus: int) -> dict[str, Any]:
    text = _read(root, "proc/loadavg")
    try:
        one, five, fifteen = (float(x) for x in (text or "").split()[:3])
    except ValueError:
        return _check(None, unknown="/proc/loadavg is not readable")
    value = f"{one:.2f} {five:.2f} {fifteen:.2f}"
    if one > max(cpus - 1, 0.5):
        return _check(value, f"load {one:.2f} on {cpus} CPUs: other work competes for the cores; "
                             "wait for it or pin the benchmark")
    return _check(value)


def _steal(root: Path, sample_s: float, sleep: Callable[[float], None]) -> dict[str, Any]:
    probe = NoiseProbe(root)
    if not probe.available:
        return _check(None, unknown=probe.reason or "")
    probe.start()
    sleep(sample_s)
    r = probe.stop()
    if not r:
        return _check(None, unknown="/proc/stat is not readable")
    value = f"{100 * r['steal_share']:.1f}% over {sample_s:g} s"
    if r["steal_share"] > STEAL_THRESHOLD / 2:
        return _check(value, "the hypervisor is taking CPU time from this VM; timings will vary with the "
                             "neighbours' load (a dedicated or bare-metal machine avoids it)")
    return _check(value)


def _quota(root: Path) -> dict[str, Any]:
    v2 = _read(root, "sys/fs/cgroup/cpu.max")
    if v2 is not None:
        parts = v2.split()
        if not parts or parts[0] == "max":
            return _check("none (cgroup v2)")
        try:
            cores = int(parts[0]) / int(parts[1] if len(parts) > 1 else 100000)
        except (ValueError, ZeroDivisionError):
            return _check(None, unknown=f"cpu.max is not understood: {v2.strip()!r}")
        return _check(f"{cores:.2f} CPUs (cgroup v2)",
                      "a CPU quota throttles the process once it is spent in each period: multi-threaded "
                      "kernels and long samples see pauses; run without a quota or with fewer threads")
    q = _read(root, "sys/fs/cgroup/cpu/cpu.cfs_quota_us") or _read(root, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us")
    p = _read(root, "sys/fs/cgroup/cpu/cpu.cfs_period_us") or _read(root, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us")
    if q is not None and p is not None:
        try:
            quota, period = int(q), int(p)
        except ValueError:
            return _check(None, unknown="cpu.cfs_quota_us is not understood")
        if quota < 0:
            return _check("none (cgroup v1)")
        return _check(f"{quota / period:.2f} CPUs (cgroup v1)",
                      "a CPU quota throttles the process once it is spent in each period: multi-threaded "
                      "kernels and long samples see pauses; run without a quota or with fewer threads")
    return _check(None, unknown="no cgroup cpu.max or cpu.cfs_quota_us")


def _battery(root: Path) -> dict[str, Any]:
    supplies = sorted(glob.glob(str(root / "sys/class/power_supply/*")))
    if not supplies:
        return _check(None, unknown="no /sys/class/power_supply")
    batteries = [s for s in supplies if (_read(Path(s), "type") or "").strip() == "Battery"]
    if not batteries:
        return _check("no battery")
    status = [(_read(Path(b), "status") or "").strip() for b in batteries]
    if "Discharging" in status:
        return _check("discharging", "running on battery: power saving lowers and varies the clock; "
                                     "plug in the power supply")
    return _check(",".join(s or "unknown" for s in status))


def preflight(root: str | Path = "/", *, steal_sample_s: float = 0.2,
              sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Checks of the machine before measuring (``run.json``'s ``preflight``, ``symbench info``).

    Returns
    -------
    dict
        ``checks``: name -> ``{value, status, advice}`` where status is ``ok``,
        ``warn`` (``advice`` says why and what to do) or ``unknown`` (``reason``
        says why: a file is missing, or the platform is not Linux); ``warnings``:
        how many checks warn. Nothing raises.
    """
    r = Path(root)
    cpus = os.cpu_count() or 1
    if not sys.platform.startswith("linux") and r == Path("/"):
        why = f"not Linux ({sys.platform})"
        checks = {name: _check(None, unknown=why)
                  for name in ("governor", "turbo", "load_average", "steal", "cgroup_quota", "battery")}
    else:
        checks = {}
        for name, fn in (("governor", lambda: _governor(r)), ("turbo", lambda: _turbo(r)),
                         ("load_average", lambda: _load(r, cpus)),
                         ("steal", lambda: _steal(r, steal_sample_s, sleep)),
                         ("cgroup_quota", lambda: _quota(r)), ("battery", lambda: _battery(r))):
            try:
                checks[name] = fn()
            except Exception as exc:  # a check must never fail a run
                checks[name] = _check(None, unknown=f"{type(exc).__name__}: {exc}")
    return {"checks": checks, "warnings": sum(1 for c in checks.values() if c["status"] == "warn")}
