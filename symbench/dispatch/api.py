"""The Python entry points: ``symbench.convolve`` and ``symbench.gconv``.

The hot path
------------
A call with NumPy arrays looks its (shapes, dtypes, mode, kernel, threads) up
in a small LRU cache of *plans* (:meth:`symbench.kernels.base.Kernel.planned`:
FFTW plans, aligned buffers, compiled code, made once per shape) and calls the
plan: no validation, no table lookup and no allocation beyond the result. Only
the first call of a shape validates its inputs, asks the dispatcher
(:func:`symbench.dispatch.selector.select`: the tuned table, else the cost model) and
builds the plan. ``kernel=None`` and ``kernel=K`` share one plan when the
dispatcher picks ``K``, so a dispatched call costs what a call of the chosen
kernel costs.
"""

from __future__ import annotations

import itertools
import math
import threading
from typing import Any, Callable

import numpy as np

from symbench.errors import SymbenchError
from symbench.kernels.base import thread_limits
from symbench.kernels.registry import get
from symbench.problem import MODES, Problem, conv_out_shape

_SUPPORTED = (np.float32, np.float64, np.complex64, np.complex128)
#: Plans kept (the least recently used go first) and the bytes they may hold together.
CACHE_ENTRIES = 64
CACHE_BYTES = 1 << 30

_ndarray = np.ndarray


class _Plan:
    """One kernel ready for one shape: casts the inputs, adds the channel axes, serialises calls."""

    __slots__ = ("kernel", "fn", "plain", "dtype", "mode", "threads", "nbytes", "lock", "used")

    def __init__(self, kernel: Any, fn: Callable[[np.ndarray, np.ndarray], np.ndarray], dtype: np.dtype,
                 mode: str, threads: int, nbytes: int) -> None:
        self.kernel = kernel
        self.fn = fn
        self.plain = getattr(fn, "plain", None)
        self.dtype = dtype
        self.mode = mode
        self.threads = threads
        self.nbytes = nbytes
        self.lock = threading.Lock()
        self.used = next(_ticks)

    def __call__(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        self.used = next(_ticks)
        dt = self.dtype
        if x.dtype != dt:
            x = x.astype(dt)
        if h.dtype != dt:
            h = h.astype(dt)
        if not self.lock.acquire(blocking=False):
            # Another thread is inside this plan (whose buffers are shared): run unplanned.
            problem = _problem(x, h, self.mode, self.threads)
            return self.kernel.run(problem, x[None, None], h[None, None])[0, 0]
        try:
            if self.threads == 1:
                if self.plain is not None:
                    return self.plain(x, h)
                return self.fn(x[None, None], h[None, None])[0, 0]
            import scipy.fft

            with scipy.fft.set_workers(self.threads):
                return self.fn(x[None, None], h[None, None])[0, 0]
        finally:
            self.lock.release()

    def close(self) -> None:
        close = getattr(self.fn, "close", None)
        if close is not None and self.lock.acquire(blocking=False):
            try:
                close()
            finally:
                self.lock.release()


_ticks = itertools.count()
#: (x.shape, h.shape, x.dtype, h.dtype, mode, kernel, threads) -> plan; kernel=None entries too.
_fast: dict[tuple, _Plan] = {}
#: (kernel name, x.shape, h.shape, dtype, mode, threads) -> plan, shared by every key that resolves to it.
_plans: dict[tuple, _Plan] = {}
_cache_lock = threading.Lock()


def cached_plan(x: np.ndarray, h: np.ndarray, mode: str = "full", kernel: str | None = None,
                threads: int = 1) -> Any:
    """The plan :func:`convolve` reuses for arrays like ``x`` and ``h`` (``None`` when none is cached)."""
    x, h = np.asarray(x), np.asarray(h)
    with _cache_lock:
        return _fast.get((x.shape, h.shape, x.dtype, h.dtype, mode, kernel, threads))


def _forget_dispatched() -> None:
    """Another dispatch table: the kernel=None entries may now choose differently."""
    with _cache_lock:
        for key in [key for key in _fast if key[5] is None]:
            del _fast[key]


def _listen() -> None:
    from symbench.dispatch import selector as dispatch

    if _forget_dispatched not in dispatch.listeners:
        dispatch.listeners.append(_forget_dispatched)


_listen()


def clear_cache() -> None:
    """Drop every cached plan (they are rebuilt on the next call)."""
    with _cache_lock:
        plans = list(_plans.values())
        _fast.clear()
        _plans.clear()
    for p in plans:
        p.close()


def convolve(x: Any, h: Any, mode: str = "full", kernel: str | None = None, *, threads: int = 1) -> np.ndarray:
    """Convolve two 1-D or 2-D arrays, exactly as ``scipy.signal.convolve`` does.

    Parameters
    ----------
    x, h : array_like
        Signal and filter, both 1-D or both 2-D.
    mode : {"full", "same", "valid"}
        Output size, as in SciPy (``valid`` swaps the inputs when ``h`` is larger).
    kernel : str, optional
        A kernel name (see ``symbench kernels``). ``None`` dispatches on the
        tuned table (:func:`symbench.use_table`, ``SYMBENCH_TABLE``, or the last
        table ``symbench tune`` wrote on this machine), else on the cost model
        of :mod:`symbench.dispatch`.
    threads : int
        Threads the kernel may use (FFTW plans, numba, OpenCV, ``scipy.fft``
        workers). BLAS pools are left as the caller set them (threadpoolctl):
        a single-channel convolution does not use them.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as SciPy's result (a new array).

    Raises
    ------
    SymbenchError
        Unknown mode or kernel, mismatched dimensions, or a kernel that cannot
        compute this problem; a dispatch table that cannot be read.

    Notes
    -----
    Set-up (FFTW plans, buffers, compiled code) is kept per (shapes, dtypes,
    mode, kernel, threads) in a small LRU cache (:data:`CACHE_ENTRIES` plans,
    :data:`CACHE_BYTES` bytes); :func:`clear_cache` empties it.
    """
    if type(x) is _ndarray and type(h) is _ndarray:
        try:
            plan = _fast.get((x.shape, h.shape, x.dtype, h.dtype, mode, kernel, threads))
        except TypeError:  # an unhashable mode or kernel: the slow path says what is wrong
            plan = None
        if plan is not None:
            return plan(x, h)
    return _convolve(x, h, mode, kernel, threads)


def _problem(x: np.ndarray, h: np.ndarray, mode: str, threads: int) -> Problem:
    return Problem(op="conv", dim=x.ndim, n=max(x.shape), k=max(h.shape), dtype=np.result_type(x, h).name,
                   mode=mode, threads=threads)


def _convolve(x: Any, h: Any, mode: str, kernel: str | None, threads: int) -> np.ndarray:
    """The first call of a shape: validate, choose, plan, cache, call."""
    if not isinstance(mode, str) or mode not in MODES:
        raise SymbenchError(f"mode {mode!r} is not supported; allowed: {', '.join(MODES)}")
    if kernel is not None and not isinstance(kernel, str):
        raise SymbenchError(f"kernel must be a kernel name (see symbench kernels) or None, got {kernel!r}")
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise SymbenchError(f"threads must be a whole number >= 1, got {threads!r}")
    threads = int(threads)
    cacheable = type(x) is _ndarray and type(h) is _ndarray
    x_in, h_in = x, h
    try:
        x = np.asarray(x)
        h = np.asarray(h)
    except (TypeError, ValueError) as exc:  # ragged lists and the like
        raise SymbenchError(f"x and h must be numeric arrays: {exc}") from None
    for name, a in (("x", x), ("h", h)):
        if a.dtype.kind not in "biufc":
            # Objects and strings reach SciPy's TypeError deep in a kernel otherwise.
            raise SymbenchError(f"{name} has dtype {a.dtype}; allowed: numeric arrays (bool, integer, "
                                "float32, float64, complex64, complex128)")
    if x.ndim != h.ndim or x.ndim not in (1, 2):
        raise SymbenchError(f"x and h must both be 1-D or both 2-D; got {x.ndim}-D and {h.ndim}-D")
    if x.size == 0 or h.size == 0:
        raise SymbenchError("x and h must not be empty")
    dtype = np.result_type(x, h)
    if dtype.type not in _SUPPORTED:
        # Integers and booleans: SciPy's own semantics (and dtype) are the contract.
        import scipy.signal

        return scipy.signal.convolve(x, h, mode=mode)
    conv_out_shape(x.shape, h.shape, mode)  # SciPy's valid-mode rule, with its message
    problem = _problem(x, h, mode, threads)
    from symbench.dispatch import selector as dispatch

    if kernel is None:
        # A non-square 2-D problem is looked up at the geometric mean of its sides.
        n = math.prod(x.shape) ** (1 / x.ndim)
        k = math.prod(h.shape) ** (1 / h.ndim)
        name = dispatch.select(problem, n, k).kernel
    else:
        name = kernel
    kern = get(name)
    reason = kern.unavailable_reason() or kern.supports(problem)
    if reason:
        raise SymbenchError(f"kernel {name} cannot compute this: {reason}")
    plan = _plan_for(kern, problem, x.shape, h.shape, dtype)
    if cacheable and plan.nbytes <= CACHE_BYTES:
        with _cache_lock:
            if any(p is plan for p in _plans.values()):
                _fast[(x_in.shape, h_in.shape, x_in.dtype, h_in.dtype, mode, kernel, threads)] = plan
    return plan(x.astype(dtype, copy=False), h.astype(dtype, copy=False))


def _plan_for(kern: Any, problem: Problem, x_shape: tuple[int, ...], h_shape: tuple[int, ...],
              dtype: np.dtype) -> _Plan:
    """The cached plan of ``kern`` for these shapes, made (and the least recently used evicted) if need be."""
    key = (kern.name, x_shape, h_shape, dtype, problem.mode, problem.threads)
    with _cache_lock:
        plan = _plans.get(key)
        if plan is not None:
            plan.used = next(_ticks)
            return plan
    from symbench.kernels.base import KernelOptions

    fn = kern.planned(problem, (1, 1, *x_shape), (1, 1, *h_shape), dtype, KernelOptions())
    try:
        nbytes = int(kern.memory_bytes(problem))
    except Exception:
        nbytes = 0
    plan = _Plan(kern, fn, dtype, problem.mode, problem.threads, nbytes)
    evicted = []
    with _cache_lock:
        if nbytes <= CACHE_BYTES:  # a larger one is used once and not kept
            _plans[key] = plan
            total = sum(p.nbytes for p in _plans.values())
            while len(_plans) > CACHE_ENTRIES or total > CACHE_BYTES:
                old_key = min((k_ for k_ in _plans if _plans[k_] is not plan), key=lambda k_: _plans[k_].used)
                old = _plans.pop(old_key)
                total -= old.nbytes
                evicted.append(old)
            for k_ in [k_ for k_, p in _fast.items() if any(p is o for o in evicted)]:
                del _fast[k_]
    for old in evicted:
        old.close()
    return plan


def gconv(x: Any, w: Any, group: str = "p4", mode: str = "valid", kernel: str | None = None, *,
          threads: int = 1) -> np.ndarray:
    """A p4/p4m group-convolution layer (Cohen & Welling 2016), cross-correlation convention.

    Parameters
    ----------
    x : array_like
        ``(B, C_in, n1, n2)`` images for a lifting layer (Z2 -> G), or
        ``(B, C_in, G, n1, n2)`` feature maps over the group for a group layer
        (G -> G). ``G`` is 4 for p4 and 8 for p4m.
    w : array_like
        ``(C_out, C_in, k, k)`` for lifting, ``(C_out, C_in, G, k, k)`` for a
        group layer; ``k x k`` must be square (it is rotated).
    group : {"p4", "p4m"}
        Rotations by multiples of 90 degrees, or those and mirrors.
    mode : {"valid", "same"}
        ``valid``: outputs whose window lies in the input, ``n - k + 1``.
        ``same``: ``n x n`` outputs, zero-padding ``(k-1)//2`` before and
        ``k//2`` after each axis (PyTorch/TensorFlow ``padding="same"``; exactly
        equivariant for odd k).
    kernel : str, optional
        ``gconv-direct`` or ``gconv-fft`` (or another lift/gconv kernel);
        ``None`` picks one with a rough cost model.
    threads : int
        Threads the kernel may use.

    Returns
    -------
    numpy.ndarray
        ``(B, C_out, G, n1', n2')`` in float32 when both inputs are float32,
        else float64. ``y[:, :, g]`` is the response to the filters transformed
        by element ``g`` (see :mod:`symbench.groups` for the order).

    Raises
    ------
    SymbenchError
        Unknown group, mode or kernel; wrong number of dimensions; channel or
        G-axis mismatch; a non-square filter; a filter larger than the input
        in ``valid`` mode; complex or empty input.
    """
    from symbench.groups import GROUPS
    from symbench.problem import GROUP_MODES, GROUP_ORDER

    if group not in GROUPS:
        raise SymbenchError(f"unknown group {group!r}; allowed: {', '.join(GROUPS)}")
    if mode not in GROUP_MODES:
        raise SymbenchError(f"mode {mode!r} is not supported for group convolutions; allowed: {', '.join(GROUP_MODES)}")
    x = np.asarray(x)
    w = np.asarray(w)
    G = GROUP_ORDER[group]
    if x.ndim == 4 and w.ndim == 4:
        op = "lift"
    elif x.ndim == 5 and w.ndim == 5:
        op = "gconv"
        if x.shape[2] != G or w.shape[2] != G:
            raise SymbenchError(f"a {group} group layer needs a G axis of {G} (axis 2) in x and w; "
                                f"got x {x.shape} and w {w.shape}")
    else:
        raise SymbenchError(
            f"x and w must be 4-D (lift: x (B, C_in, n, n), w (C_out, C_in, k, k)) or 5-D (gconv: "
            f"x (B, C_in, G, n, n), w (C_out, C_in, G, k, k)); got {x.ndim}-D x and {w.ndim}-D w")
    if x.size == 0 or w.size == 0:
        raise SymbenchError(f"x and w must not be empty; got x {x.shape} and w {w.shape}")
    if x.shape[1] != w.shape[1]:
        raise SymbenchError(f"channel mismatch: x has C_in={x.shape[1]} (axis 1) but w has {w.shape[1]} (axis 1)")
    if w.shape[-1] != w.shape[-2]:
        raise SymbenchError(f"filters must be square to be rotated; got {w.shape[-2]}x{w.shape[-1]}")
    k = w.shape[-1]
    if mode == "valid" and k > min(x.shape[-2:]):
        raise SymbenchError(f"valid mode needs the {k}x{k} filter to fit in the {x.shape[-2]}x{x.shape[-1]} "
                            "input; use mode same")
    for name, a in (("x", x), ("w", w)):
        if a.dtype.kind not in "biuf":
            raise SymbenchError(f"group convolutions take real numbers (float32 or float64); {name} has dtype {a.dtype}")
    dtype = np.float32 if (x.dtype == np.float32 and w.dtype == np.float32) else np.float64
    x = x.astype(dtype, copy=False)
    w = w.astype(dtype, copy=False)
    problem = Problem(op=op, group=group, dim=2, n=max(x.shape[-2:]), k=k, batch=x.shape[0],
                      c_in=x.shape[1], c_out=w.shape[0], dtype=np.dtype(dtype).name, mode=mode,
                      threads=threads)
    if kernel is None:
        from symbench.dispatch.costs import choose_gconv as choose

        kernel = choose(problem)
    kern = get(kernel)
    reason = kern.unavailable_reason() or kern.supports(problem)
    if reason:
        raise SymbenchError(f"kernel {kernel} cannot compute this: {reason}")
    with thread_limits(threads):
        return kern.run(problem, x, w)
