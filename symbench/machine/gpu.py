"""CUDA through CuPy: is a GPU usable here, a CUDA-event clock, L2 flushing, device memory and facts.

Everything device-specific of the GPU kernels lives here, so that the kernel
logic itself (:mod:`symbench.kernels.impl.xp_conv`) stays array-namespace code that
the tests run with NumPy. CuPy is imported lazily: importing this module is
free, and a machine without CuPy or without a working GPU only gets a reason
string from :func:`unavailable_reason`.

This module knows nothing of sweeps; :class:`CudaEventClock` implements the
:class:`symbench.sweep.timing.Clock` protocol like any other clock.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

#: Share of the free device memory a problem may plan to use (the rest is
#: head-room for cuFFT work areas and the memory pool's rounding).
DEVICE_MEMORY_FRACTION = 0.85

_status: str | None | bool = False  # False: not probed yet
_lib_status: dict[str, str | None] = {}


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def probe() -> str | None:
    """Ask CuPy and the CUDA runtime now: why no GPU can be used, or ``None`` (not cached)."""
    try:
        import cupy  # noqa: F401
    except Exception as exc:  # ImportError, or a wheel that does not match the CUDA libraries
        return f"cannot import cupy: {_one_line(exc)}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # cudaErrorInsufficientDriver, cudaErrorNoDevice, ...
        # CUDARuntimeError's text already starts with the error name.
        return f"no CUDA device: {' '.join(str(exc).split())}"
    if count < 1:
        return "no CUDA device: cudaGetDeviceCount() found none"
    return None


def unavailable_reason() -> str | None:
    """Why CuPy cannot run on a GPU here, or ``None`` when it can.

    Probed once per process: importing CuPy and asking the runtime for its
    devices (a few hundred milliseconds at most; no CUDA context is created).
    """
    global _status
    if _status is False:
        _status = probe()
    return _status  # type: ignore[return-value]


def library_reason(name: str) -> str | None:
    """Why CuPy's binding of a CUDA library (``"cufft"``, ``"nvrtc"``, ``"cublas"``) cannot load, or ``None``.

    CuPy loads these libraries lazily, on first use; a machine without them
    would fail only inside a timed call, so the kernels that need them ask here
    first (once per process; no device work).
    """
    if name not in _lib_status:
        reason = unavailable_reason()
        if reason is None:
            try:
                module = getattr(cupy().cuda, name)  # loads the shared library
                if name in ("cufft", "nvrtc"):
                    module.getVersion()  # NVRTC's binding loads its library only here
            except Exception as exc:
                reason = f"CuPy cannot load {name}: {_one_line(exc)}"
        _lib_status[name] = reason
    return _lib_status[name]


def assume(reason: str | None | bool) -> None:
    """Set what :func:`unavailable_reason` answers, and forget the library probes.

    ``None``: a GPU is usable (the NumPy stand-in for CuPy in the tests); a
    string: why not; ``False``: probe again on the next question.
    """
    global _status
    _status = reason
    _lib_status.clear()


def cupy() -> Any:
    """The ``cupy`` module (call only after :func:`unavailable_reason` said ``None``)."""
    import cupy as cp

    return cp


# -- memory ------------------------------------------------------------------------------

def free_device_bytes() -> int:
    """Bytes a new allocation can get: the device's free memory plus CuPy's cached free blocks."""
    cp = cupy()
    free, _total = cp.cuda.runtime.memGetInfo()
    return int(free) + int(cp.get_default_memory_pool().free_bytes())


def memory_check(need: int, what: str = "this problem") -> str | None:
    """A ``skipped`` reason when ``need`` bytes do not fit in the free device memory, else ``None``."""
    if unavailable_reason() is not None:
        return None  # the runner reports the unavailability itself
    have = free_device_bytes()
    if need > DEVICE_MEMORY_FRACTION * have:
        return (f"{what} needs about {need / 2**30:.2f} GiB of device memory; "
                f"{have / 2**30:.2f} GiB free on the GPU")
    return None


def release_memory() -> None:
    """Return every cached block of CuPy's memory pools and every cached cuFFT plan to the device."""
    cp = cupy()
    cp.get_default_memory_pool().free_all_blocks()
    cp.get_default_pinned_memory_pool().free_all_blocks()


def plan_cache() -> Any:
    """CuPy's cuFFT plan cache of the current device and thread."""
    return cupy().fft.config.get_plan_cache()


def clear_fft_plans() -> None:
    """Drop the cuFFT plans cached by CuPy (their work areas hold device memory)."""
    plan_cache().clear()


@contextmanager
def freeing_on_error() -> Iterator[None]:
    """Free the memory pool when set-up fails (a CUDA out-of-memory error, say), then re-raise.

    The runner turns the exception into an ``error`` row and closes what was
    prepared; a ``prepare`` that fails half-way has nothing to close, so it
    cleans up here.
    """
    try:
        yield
    except BaseException:
        try:
            clear_fft_plans()
            release_memory()
        except Exception:
            pass
        raise


# -- timing ----------------------------------------------------------------------------------

class L2Flusher:
    """Evicts the GPU's L2 cache by writing a buffer twice its size (``cudaMemsetAsync``).

    As nvbench does: a memset over more bytes than the L2 holds leaves none of
    the timed kernel's data in it, so every call starts from DRAM.
    """

    def __init__(self, l2_bytes: int | None = None) -> None:
        cp = cupy()
        if l2_bytes is None:
            dev = cp.cuda.Device()
            l2_bytes = int(cp.cuda.runtime.deviceGetAttribute(cp.cuda.runtime.cudaDevAttrL2CacheSize, dev.id))
        self.nbytes = max(2 * int(l2_bytes), 1 << 20)
        self._buf = cp.empty(self.nbytes, dtype=cp.uint8)
        self._value = 0

    def __call__(self, stream: Any) -> None:
        self._value ^= 1  # a different value each time: no driver can skip the write
        cupy().cuda.runtime.memsetAsync(self._buf.data.ptr, self._value, self.nbytes, stream.ptr)

    def close(self) -> None:
        self._buf = None


class CudaEventClock:
    """GPU time from CUDA events, in the :class:`symbench.sweep.timing.Clock` protocol.

    ``measure(fn, loops)`` records an event on the current stream, enqueues
    ``loops`` calls, records a second event and waits for it: the sample is
    the GPU time between the two events. Kernel launches are asynchronous, so
    this is the device's throughput for back-to-back calls (a call that is
    bound by host launch overhead shows that overhead, as a user would see it).
    The host wall time of the same measure, from before the first launch to
    the end of the synchronisation, is kept in ``last_host_s``.

    With ``flush`` (an :class:`L2Flusher`) each call is preceded by an L2
    flush, and every call gets its own pair of events so that the flushes are
    *not* in the sample: the sample is the sum of the per-call GPU times. The
    host time is then not meaningful (it contains the flushes), and
    ``last_host_s`` is ``None``.
    """

    name = "cuda_event"
    #: CUDA documents an event resolution of about half a microsecond.
    resolution_s = 5e-7

    def __init__(self, flush: L2Flusher | None = None) -> None:
        cp = cupy()
        self._cp = cp
        self._flush = flush
        self._start = cp.cuda.Event()
        self._end = cp.cuda.Event()
        self._pairs: list[tuple[Any, Any]] = []
        self.last_host_s: float | None = None

    def _events(self, loops: int) -> list[tuple[Any, Any]]:
        Event = self._cp.cuda.Event
        while len(self._pairs) < loops:
            self._pairs.append((Event(), Event()))
        return self._pairs[:loops]

    def measure(self, fn: Callable[[], object], loops: int) -> float:
        cp = self._cp
        stream = cp.cuda.get_current_stream()
        stream.synchronize()  # nothing queued before this measure counts in it
        if self._flush is None:
            rng = range(loops)
            t0 = time.perf_counter()
            self._start.record(stream)
            for _ in rng:
                fn()
            self._end.record(stream)
            self._end.synchronize()
            self.last_host_s = time.perf_counter() - t0
            return cp.cuda.get_elapsed_time(self._start, self._end) * 1e-3
        pairs = self._events(loops)
        flush = self._flush
        for start, end in pairs:
            flush(stream)
            start.record(stream)
            fn()
            end.record(stream)
        pairs[-1][1].synchronize()
        self.last_host_s = None
        return math.fsum(cp.cuda.get_elapsed_time(s, e) for s, e in pairs) * 1e-3

    def close(self) -> None:
        if self._flush is not None:
            self._flush.close()
        self._pairs.clear()


def synchronize() -> None:
    """Wait for everything queued on the current stream."""
    cupy().cuda.get_current_stream().synchronize()


# -- facts for run.json ------------------------------------------------------------------------

def _cuda_version(v: int) -> str:
    """CUDA's ``1000 * major + 10 * minor`` encoding as ``"major.minor"``."""
    return f"{v // 1000}.{(v % 1000) // 10}"


def _cufft_version(v: int) -> str:
    """cuFFT's ``1000 * major + 100 * minor + patch`` encoding as ``"major.minor.patch"``."""
    return f"{v // 1000}.{(v % 1000) // 100}.{v % 100}"


def device_facts() -> dict[str, Any]:
    """GPU facts for ``run.json`` and ``symbench info``, under the key ``"gpu"``.

    Model, compute capability, memory, L2 size, SM count, driver and CUDA
    runtime versions, cuFFT, NVRTC and CuPy versions. Without a usable GPU,
    ``{"gpu": {"available": False, "reason": ...}}``; never raises.
    """
    reason = unavailable_reason()
    if reason is not None:
        return {"gpu": {"available": False, "reason": reason}}
    cp = cupy()
    rt = cp.cuda.runtime
    dev = cp.cuda.Device()
    props = rt.getDeviceProperties(dev.id)
    name = props.get("name", b"")
    facts: dict[str, Any] = {
        "available": True,
        "device_id": dev.id,
        "device_count": rt.getDeviceCount(),
        "model": name.decode(errors="replace") if isinstance(name, bytes) else str(name),
        "compute_capability": f"{props.get('major')}.{props.get('minor')}",
        "memory_total": props.get("totalGlobalMem"),
        "l2_cache_bytes": props.get("l2CacheSize"),
        "multiprocessors": props.get("multiProcessorCount"),
        "cupy": cp.__version__,
    }
    for key, fn in (("cuda_driver", rt.driverGetVersion), ("cuda_runtime", rt.runtimeGetVersion)):
        try:
            facts[key] = _cuda_version(int(fn()))
        except Exception as exc:
            facts[key] = f"unavailable: {_one_line(exc)}"
    try:
        v = int(cp.cuda.cufft.getVersion())
        facts["cufft"] = _cufft_version(v)
        facts["cufft_raw"] = v
    except Exception as exc:
        facts["cufft"] = f"unavailable: {_one_line(exc)}"
    try:
        facts["nvrtc"] = ".".join(map(str, cp.cuda.nvrtc.getVersion()))
    except Exception as exc:
        facts["nvrtc"] = f"unavailable: {_one_line(exc)}"
    return {"gpu": facts}
