"""The kernel protocol: what a convolution implementation must tell and do.

A kernel is a small stateless object (one instance per name in the registry).
It says which problems it supports, and :meth:`Kernel.prepare` turns one
problem plus its inputs into a :class:`Prepared`: every piece of set-up
(plans, compilation, aligned buffers, host-to-device copies) happens there and
is reported as ``setup_s``; ``Prepared.call`` is the timed callable and
``Prepared.result`` fetches the last result to the host, untimed.

Kernels know nothing of sweeps: they never import the runner, the store or
the CLI. Heavy or optional libraries (pyfftw, cv2, cupy, numba) are imported
inside methods, so listing kernels stays fast and a missing extra only makes
its kernels unavailable, with the reason.
"""

from __future__ import annotations

import importlib
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator

import numpy as np

from symbench.defaults import DEFAULTS, PLANNERS
from symbench.errors import ConfigError
from symbench.problem import DTYPES, MODES, Problem

METHODS = ("direct", "fft", "auto")
DEVICES = ("cpu", "gpu")


@dataclass(frozen=True)
class KernelOptions:
    """Settings a sweep passes to every kernel; kernels use the ones that apply.

    Attributes
    ----------
    planner : str
        FFTW planner effort for planned FFT kernels (``--planner``).
    flush_l2 : bool
        GPU kernels: evict the L2 cache before each call (``--flush-l2``).
    """

    planner: str = DEFAULTS["planner"]
    flush_l2: bool = DEFAULTS["flush_l2"]

    def __post_init__(self) -> None:
        if self.planner not in PLANNERS:
            raise ConfigError(f"planner {self.planner!r} is not supported; allowed: {', '.join(PLANNERS)}")


@dataclass
class Prepared:
    """A kernel made ready for one problem.

    Attributes
    ----------
    call : callable
        Computes the full result on the kernel's device. This is what is timed.
    result : callable
        Returns the last result as a host NumPy array in the canonical output
        layout ``(B, C_out, [G,] *out)``. Not timed.
    clock : Clock or None
        The clock to time ``call`` with; ``None`` means CPU wall time.
    close : callable
        Frees what ``prepare`` allocated (device memory, large buffers).
    notes : dict
        Facts about the set-up worth recording (transform size, planner, ...).
    """

    call: Callable[[], object]
    result: Callable[[], np.ndarray]
    clock: Any = None
    close: Callable[[], None] = field(default=lambda: None)
    notes: dict[str, Any] = field(default_factory=dict)


def close_quietly(prepared: Any) -> None:
    """Call ``prepared.close()``; a failing close never hides the row or error being reported."""
    try:
        prepared.close()
    except Exception:
        pass


class Kernel:
    """Base class of every kernel; subclasses set the class attributes and :meth:`prepare`.

    Class attributes
    ----------------
    name : str
        Stable name, e.g. ``"fft-pyfftw"``.
    method : {"direct", "fft", "auto"}
    ops : tuple of str
        Subset of ``("conv", "lift", "gconv")``.
    device : {"cpu", "gpu"}
    library : str
        What does the work, for people (``"pyFFTW"``, ``"scipy.signal"``).
    dims, dtypes, modes : tuple
        What the kernel accepts; :meth:`supports` checks them.
    requires : tuple of str
        Modules that must import for the kernel to be available.
    description : str
        One sentence: what is computed and how, including anything timed
        differently from the default of docs/methodology.md (e.g. a cached operand spectrum).
    """

    name: ClassVar[str] = ""
    method: ClassVar[str] = "direct"
    ops: ClassVar[tuple[str, ...]] = ("conv",)
    device: ClassVar[str] = "cpu"
    library: ClassVar[str] = ""
    dims: ClassVar[tuple[int, ...]] = (1, 2)
    dtypes: ClassVar[tuple[str, ...]] = DTYPES
    modes: ClassVar[tuple[str, ...]] = MODES
    groups: ClassVar[tuple[str, ...]] = ("none", "p4", "p4m")
    requires: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""

    _availability: str | None | bool = False  # False: not checked yet

    # -- availability -------------------------------------------------------------
    def unavailable_reason(self) -> str | None:
        """Why this kernel cannot run on this machine, or ``None`` when it can.

        Checked once per process: importing its libraries (and, for device
        kernels, touching the device) is not free.
        """
        if self._availability is False:
            self._availability = self._check_available()
        return self._availability  # type: ignore[return-value]

    @property
    def available(self) -> bool:
        return self.unavailable_reason() is None

    def _check_available(self) -> str | None:
        for module in self.requires:
            try:
                importlib.import_module(module)
            except Exception as exc:  # ImportError, or a broken binary wheel
                return f"cannot import {module}: {type(exc).__name__}: {exc}".strip()
        return None

    # -- capability ----------------------------------------------------------------
    def supports(self, problem: Problem) -> str | None:
        """Why this kernel cannot compute ``problem``, or ``None`` when it can."""
        if problem.op not in self.ops:
            return f"{self.name} computes op {'/'.join(self.ops)}, not {problem.op}"
        if problem.group not in self.groups:
            return f"{self.name} does not support group {problem.group}"
        if problem.dim not in self.dims:
            return f"{self.name} supports {'/'.join(map(str, self.dims))}-D, not {problem.dim}-D"
        if problem.dtype not in self.dtypes:
            return f"{self.name} supports dtypes {', '.join(self.dtypes)}, not {problem.dtype}"
        if problem.mode not in self.modes:
            return f"{self.name} supports modes {', '.join(self.modes)}, not {problem.mode}"
        return None

    def memory_bytes(self, problem: Problem) -> int:
        """Estimated peak bytes of one call (inputs, output, work space) on the kernel's device."""
        return problem.memory_bytes()

    def host_memory_bytes(self, problem: Problem) -> int:
        """Estimated host RAM the problem needs with this kernel (what the runner checks against RAM).

        The same as :meth:`memory_bytes` for CPU kernels; device kernels count
        only the host copies (inputs, reference, fetched result).
        """
        return self.memory_bytes(problem)

    def device_memory_check(self, problem: Problem) -> str | None:
        """Why ``problem`` does not fit in the device's free memory, or ``None``.

        CPU kernels have no device of their own (``None``); GPU kernels compare
        their estimate with the free device memory.
        """
        return None

    # -- work --------------------------------------------------------------------------
    def prepare(self, problem: Problem, x: np.ndarray, h: np.ndarray,
                options: KernelOptions = KernelOptions()) -> Prepared:
        """Make the kernel ready for ``problem`` with inputs ``x`` and ``h`` (canonical layout)."""
        raise NotImplementedError

    def run(self, problem: Problem, x: np.ndarray, h: np.ndarray,
            options: KernelOptions = KernelOptions()) -> np.ndarray:
        """Prepare, call once and return the result (the library API path)."""
        prepared = self.prepare(problem, x, h, options)
        try:
            prepared.call()
            return prepared.result()
        finally:
            prepared.close()

    def planned(self, problem: Problem, x_shape: tuple[int, ...], h_shape: tuple[int, ...], dtype: Any,
                options: KernelOptions = KernelOptions()) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """A reusable ``y = f(x, h)`` for inputs of these shapes and dtype (canonical layout).

        ``symbench.convolve`` keeps these in a cache keyed by shapes, dtype, mode
        and threads, so set-up (plans, compilation, buffers) is paid once per
        shape, not per call. The callable returns a new array each call and
        need not be thread-safe (the caller serialises calls to one plan); it
        may have a ``close()``, and a ``plain(x, h)`` for one signal and one
        filter without their channel axes (:class:`PlainPlan`), which the API
        prefers. The default prepares the kernel on every call,
        which is always correct; kernels whose set-up is worth keeping override
        this, e.g. with :func:`buffered_plan` when their prepared ``call`` reads
        its inputs at every call.
        """

        def run(x: np.ndarray, h: np.ndarray) -> np.ndarray:
            return self.run(problem, x, h, options)

        return run

    # -- description --------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """The facts ``symbench kernels`` lists."""
        reason = self.unavailable_reason()
        return {
            "name": self.name, "method": self.method, "ops": list(self.ops), "device": self.device,
            "library": self.library, "dims": list(self.dims), "dtypes": list(self.dtypes),
            "modes": list(self.modes), "requires": list(self.requires), "available": reason is None,
            "reason": reason or "", "description": self.description,
        }

    def __repr__(self) -> str:
        return f"<kernel {self.name} ({self.method}, {self.device})>"


class PlainPlan:
    """A plan for one signal and one filter around a function of the plain (1-D or 2-D) arrays.

    ``symbench.convolve`` calls :attr:`plain` directly, without the channel axes.
    """

    def __init__(self, plain: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
        self.plain = plain

    def __call__(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        return self.plain(x[0, 0], h[0, 0])[None, None]


class BufferedPlan:
    """A kernel prepared once over input buffers it owns; each call copies the inputs in.

    Right for kernels whose prepared ``call`` reads ``x`` and ``h`` at every call
    (rather than copying or transforming them in ``prepare``): the set-up is
    kept, and only the copies are added to the call.
    """

    def __init__(self, kernel: Kernel, problem: Problem, x_shape: tuple[int, ...], h_shape: tuple[int, ...],
                 dtype: Any, options: KernelOptions = KernelOptions()) -> None:
        self.x = np.zeros(x_shape, dtype=dtype)
        self.h = np.zeros(h_shape, dtype=dtype)
        self.prepared = kernel.prepare(problem, self.x, self.h, options)

    def __call__(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        np.copyto(self.x, x)
        np.copyto(self.h, h)
        self.prepared.call()
        return self.prepared.result()

    def close(self) -> None:
        self.prepared.close()


def buffered_plan(kernel: Kernel, problem: Problem, x_shape: tuple[int, ...], h_shape: tuple[int, ...],
                  dtype: Any, options: KernelOptions = KernelOptions()) -> BufferedPlan:
    """:meth:`Kernel.planned` for kernels whose prepared call reads its inputs at every call."""
    return BufferedPlan(kernel, problem, x_shape, h_shape, dtype, options)


# -- helpers shared by the CPU kernels --------------------------------------------------

def is_plain(x: np.ndarray, h: np.ndarray) -> bool:
    """True for one signal and one filter (no batch, no channels)."""
    return x.shape[0] == 1 and x.shape[1] == 1 and h.shape[0] == 1


def pairwise(fn: Callable[[np.ndarray, np.ndarray], np.ndarray], x: np.ndarray, h: np.ndarray,
             out: np.ndarray) -> None:
    """``out[b, o] = sum_i fn(x[b, i], h[o, i])``: channels for libraries that convolve one pair.

    A Python loop over pairs is how a user of such a library handles
    channels, so that is what gets timed.
    """
    B, ci = x.shape[:2]
    co = h.shape[0]
    for b in range(B):
        for o in range(co):
            acc = fn(x[b, 0], h[o, 0])
            for i in range(1, ci):
                acc = acc + fn(x[b, i], h[o, i])
            out[b, o] = acc


def result_of(holder: dict[str, Any]) -> Callable[[], np.ndarray]:
    """A ``Prepared.result`` that returns a host copy of ``holder["y"]``."""

    def result() -> np.ndarray:
        return np.array(holder["y"], copy=True)

    return result


@contextmanager
def thread_limits(threads: int) -> Iterator[None]:
    """Hold BLAS/OpenMP pools (threadpoolctl) and ``scipy.fft`` workers at ``threads``.

    Entering this costs about a hundred microseconds, so the runner enters it
    once around each problem, not around each call. Libraries with their own
    thread setting (FFTW plans, OpenCV, numba) take ``problem.threads`` in
    their kernel's ``prepare``.
    """
    import scipy.fft

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # a minimal image without it: BLAS keeps its own default
        with scipy.fft.set_workers(threads):
            yield
        return
    with threadpool_limits(limits=threads), scipy.fft.set_workers(threads):
        yield


def fft_workspace_bytes(problem: Problem, planes: int | None = None) -> int:
    """Bytes of the spectra an FFT kernel keeps: one complex plane per signal, filter and output."""
    if planes is None:
        planes = problem.batch * problem.c_in + problem.c_out * problem.c_in + problem.batch * problem.c_out
    item = 16 if problem.dtype in ("float64", "complex128") else 8
    return int(planes * math.prod(problem.fft_shape()) * item)
