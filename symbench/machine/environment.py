"""Machine and library facts, recorded in ``run.json`` and shown by ``symbench info``.

A timing is only meaningful next to the machine and the library versions that
produced it, so every run records them. Which libraries: the core ones below
plus whatever the run's kernels require (the kernel registry says; the caller
passes them). Device facts (GPU model, driver, CUDA and cuFFT versions) come
from :mod:`symbench.machine.gpu` when a GPU kernel is part of the run.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
import platform
import socket
import sys
from importlib import metadata
from typing import Any, Iterable

#: Libraries every run records, whatever its kernels; kernels add what they require.
CORE_LIBRARIES = ("numpy", "scipy", "pandas", "threadpoolctl", "matplotlib", "typer", "rich")


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def memory_bytes() -> dict[str, int]:
    """Total and available RAM in bytes (0 when unknown)."""
    info: dict[str, int] = {}
    for line in _read("/proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable"):
            info[key] = int(rest.split()[0]) * 1024
    if not info:
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            info = {"MemTotal": total, "MemAvailable": total}
        except (ValueError, OSError, AttributeError):
            info = {"MemTotal": 0, "MemAvailable": 0}
    return {"total": info.get("MemTotal", 0), "available": info.get("MemAvailable", info.get("MemTotal", 0))}


def available_memory() -> int:
    return memory_bytes()["available"]


def cpu_flags() -> list[str]:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("flags"):
            flags = line.split(":", 1)[1].split()
            return sorted(f for f in flags if f.startswith(("avx", "fma", "sse4")))
    return []


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    # Import name -> installed distributions providing it (cv2 comes from one of several
    # opencv-* wheels, cupy from cupy-cuda12x or -13x): read from metadata, nothing imported.
    return metadata.packages_distributions()


def library_versions(modules: Iterable[str] = ()) -> dict[str, str | None]:
    """Installed versions of the core libraries and ``modules``, by import name.

    Read from package metadata without importing (so this stays fast); a
    module that is not installed maps to ``None``.
    """
    out: dict[str, str | None] = {}
    for module in dict.fromkeys([*CORE_LIBRARIES, *modules]):
        out[module] = None
        for dist in _distributions().get(module, ()):
            try:
                out[module] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return out


def thread_settings() -> dict[str, Any]:
    """BLAS/OpenMP pools as threadpoolctl sees them, and the thread variables set."""
    out: dict[str, Any] = {"env": {k: os.environ[k] for k in sorted(os.environ)
                                   if k.endswith("_NUM_THREADS") or k in ("OMP_PROC_BIND", "OMP_PLACES", "OMP_WAIT_POLICY")}}
    try:
        from threadpoolctl import threadpool_info

        out["threadpools"] = [
            {k: p.get(k) for k in ("user_api", "internal_api", "num_threads", "version", "architecture")}
            for p in threadpool_info()
        ]
    except Exception as exc:  # threadpoolctl is a core dependency; stay robust anyway
        out["threadpools"] = f"unavailable: {exc}"
    return out


def machine_id(facts: dict[str, Any]) -> str:
    """A short stable id of the hardware (host, CPU, cores, memory), to keep machines apart."""
    key = "|".join(str(facts.get(k)) for k in ("hostname", "cpu_model", "cpu_count", "memory_total"))
    return hashlib.sha1(key.encode()).hexdigest()[:10]


def collect(planner: str | None = None, devices: bool = False, libraries: Iterable[str] = ()) -> dict[str, Any]:
    """Everything ``run.json`` records about this machine.

    Parameters
    ----------
    planner : str, optional
        FFTW planner effort of the run.
    devices : bool
        Also record the GPU's facts (:func:`symbench.machine.gpu.device_facts`); this touches the device.
    libraries : iterable of str
        Import names whose versions to record besides :data:`CORE_LIBRARIES`
        (the modules the kernels require, from the kernel registry).
    """
    from symbench import __version__

    mem = memory_bytes()
    facts: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_flags": cpu_flags(),
        "memory_total": mem["total"],
        "memory_available": mem["available"],
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "libraries": library_versions(libraries),
        "threads": thread_settings(),
        "fftw_planner": planner,
        "symbench_version": __version__,
    }
    facts["machine_id"] = machine_id(facts)
    facts["machine_label"] = f"{facts['hostname']} ({facts['cpu_model']}, {facts['cpu_count']} cores)"
    if devices:
        from symbench.machine import gpu  # CuPy is imported only here, when devices are asked for

        try:
            facts.update(gpu.device_facts())
        except Exception as exc:  # a device probe must never fail a run
            facts.setdefault("device_probe_errors", []).append(str(exc))
    return facts


def fftw_facts() -> dict[str, Any]:
    """pyFFTW's FFTW build facts (imports pyfftw)."""
    try:
        pyfftw = importlib.import_module("pyfftw")
    except Exception as exc:
        return {"pyfftw": f"unavailable: {exc}"}
    return {"pyfftw_simd_alignment": getattr(pyfftw, "simd_alignment", None),
            "pyfftw_version": getattr(pyfftw, "__version__", None)}
