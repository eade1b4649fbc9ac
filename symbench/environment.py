"""Machine and library facts, recorded in ``run.json`` and shown by ``symbench info``.

A timing is only meaningful next to the machine and the library versions that
produced it, so every run records them. Device facts (GPU model, driver, CUDA
and cuFFT versions) are added by the GPU kernels' module when a GPU kernel is
part of the run.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import platform
import socket
import sys
from importlib import metadata
from typing import Any, Callable

#: Import name -> the distributions that may provide it, for the versions in run.json.
LIBRARIES = {
    "numpy": ("numpy",), "scipy": ("scipy",), "pandas": ("pandas",), "pyfftw": ("pyFFTW",),
    "cv2": ("opencv-python-headless", "opencv-python", "opencv-contrib-python-headless"),
    "numba": ("numba",), "threadpoolctl": ("threadpoolctl",),
    "cupy": ("cupy-cuda13x", "cupy-cuda12x", "cupy-cuda11x", "cupy"),
    "matplotlib": ("matplotlib",), "typer": ("typer",), "rich": ("rich",),
}

#: Functions that add device facts; GPU kernel modules register one.
DEVICE_PROBES: list[Callable[[], dict[str, Any]]] = []


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


def library_versions() -> dict[str, str | None]:
    """Installed versions, read from package metadata without importing (so this stays fast)."""
    out: dict[str, str | None] = {}
    for module, dists in LIBRARIES.items():
        out[module] = None
        for dist in dists:
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


def collect(planner: str | None = None, devices: bool = False) -> dict[str, Any]:
    """Everything ``run.json`` records about this machine.

    Parameters
    ----------
    planner : str, optional
        FFTW planner effort of the run.
    devices : bool
        Also ask the registered device probes (GPU facts); this touches the device.
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
        "libraries": library_versions(),
        "threads": thread_settings(),
        "fftw_planner": planner,
        "symbench_version": __version__,
    }
    facts["machine_id"] = machine_id(facts)
    facts["machine_label"] = f"{facts['hostname']} ({facts['cpu_model']}, {facts['cpu_count']} cores)"
    if devices:
        from symbench import gpu  # its probe (CuPy is imported only when the probe runs)

        gpu.register_probe()
        for probe in DEVICE_PROBES:
            try:
                facts.update(probe())
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
