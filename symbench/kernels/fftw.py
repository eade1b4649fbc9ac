"""Planned FFTW convolution through pyFFTW: batched plans, measured lengths, wisdom on disk.

``prepare`` plans everything once per problem (reported in ``setup_s``); the
timed call copies both operands into zero-padded aligned buffers, transforms
*both* every call, multiplies (and, with channels, sums over input channels)
in the frequency domain and transforms back. What makes it fast:

* **Transform lengths.** A circular convolution of length ``N`` gives the
  outputs of the mode exactly when ``N >= max(end, n + k - 1 - start)`` per
  axis (``start, end`` = the mode's window in full coordinates): ``full``
  needs ``n + k - 1``, ``same`` only ``n + k - 1 - (k - 1) // 2``, ``valid``
  only ``n``. Among the 5-, 7- and 11-smooth lengths at or above that
  minimum, the fastest is *measured* (batched 1-D transforms with an
  ``FFTW_ESTIMATE`` plan) the first time a length is needed and remembered in
  the user cache directory (the 5-smooth one is kept unless another is 10%
  faster): ``pyfftw.next_fast_len`` alone can pick lengths such as
  1029 = 3 * 7**3 that run 3x slower than 1080.
* **Batches.** One plan transforms every signal of the batch and channels
  together with every filter (with threads, FFTW can split them), one every
  output.
* **Pruned filter transforms (2-D, small planes).** A filter has ``k``
  non-zero rows of ``N``: its row transforms run on those ``k`` rows only,
  then the column transforms on the result, instead of a full 2-D transform
  of mostly zeros. Separate passes lose to FFTW's own 2-D plan once a plane
  outgrows the cache, so this is for planes up to 1 MiB (the many small
  filters of a CNN layer) only.
* **Channels.** The multiply-accumulate over input channels (Mathieu et al.,
  2013) is one small matrix product per frequency, ``(B, C_in) @ (C_in,
  C_out)``, with each filter spectrum reused across the batch; frequencies
  go in L2-sized blocks, transposed into frequency-major scratch for BLAS
  (FFTW itself writes fastest to contiguous spectra).
* **Wrapped 1-D lengths.** In 1-D a circular convolution shorter than
  ``n + k - 1`` (but at least ``max(n, k)``) is also tried: its ``A < k``
  wrapped-around outputs are computed directly (``A * k`` multiply-adds)
  and subtracted, which pays when ``n`` sits just below a fast length (a
  power of two: 2**18 points instead of 262440). Both variants are built
  and timed with the requested planner; the faster is kept and remembered.
* **No work on the hot path beyond the above:** the padding of the buffers is
  zeroed once in ``prepare`` and never written again; FFTW's ``1/N`` is
  folded into the (small) filter copy; the inverse may destroy its input (the
  product, rebuilt every call).

Planner effort comes from ``KernelOptions.planner``; FFTW wisdom is loaded
from and saved to the user's cache directory, so a second sweep on the same
machine plans in milliseconds.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from symbench.kernels.base import BufferedPlan, Kernel, KernelOptions, Prepared, buffered_plan
from symbench.paths import cache_dir
from symbench.problem import Problem, crop_slices

_FLAGS = {"estimate": "FFTW_ESTIMATE", "measure": "FFTW_MEASURE", "patient": "FFTW_PATIENT",
          "exhaustive": "FFTW_EXHAUSTIVE"}
_WISDOM_LOCK = threading.Lock()
_wisdom_loaded = False
#: The file and the wisdom last read from or written to it: a prepare that planned nothing
#: new does not write it again (writing was ~5 ms of every open in ab's workers).
_wisdom_saved: tuple[Path, tuple[bytes, ...]] | None = None


def wisdom_path() -> Path:
    import pyfftw

    # Wisdom is only valid for the FFTW build that made it.
    return cache_dir() / f"fftw-wisdom-pyfftw{pyfftw.__version__}.json"


def load_wisdom() -> int:
    """Import saved wisdom once per process; returns how many precisions were accepted."""
    global _wisdom_loaded, _wisdom_saved
    import pyfftw

    with _WISDOM_LOCK:
        if _wisdom_loaded:
            return 0
        _wisdom_loaded = True
        path = wisdom_path()
        try:
            stored = json.loads(path.read_text())
            wisdom = tuple(s.encode("latin-1") for s in stored["wisdom"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0  # no wisdom yet, or a damaged file: plan from scratch
        accepted = sum(bool(ok) for ok in pyfftw.import_wisdom(wisdom))
        _wisdom_saved = (path, tuple(pyfftw.export_wisdom()))
        return accepted


def save_wisdom() -> None:
    """Write the process's accumulated wisdom atomically (a crash never leaves half a file)."""
    global _wisdom_saved
    import pyfftw

    with _WISDOM_LOCK:
        wisdom = tuple(pyfftw.export_wisdom())
        path = wisdom_path()
        if (path, wisdom) == _wisdom_saved:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            payload = {"wisdom": [w.decode("latin-1") for w in wisdom]}
            tmp.write_text(json.dumps(payload))
            os.replace(tmp, path)
            _wisdom_saved = (path, wisdom)
        except OSError:
            pass  # a read-only cache only costs planning time next run


# -- transform lengths ------------------------------------------------------------------

def smooth_at_least(n: int, primes: tuple[int, ...]) -> int:
    """The smallest integer ``>= n`` whose prime factors are all in ``primes`` (which include 2)."""
    best = 1 << max(0, int(n) - 1).bit_length()  # a power of two is always a candidate

    def walk(m: int, first: int) -> None:
        nonlocal best
        if m >= n:
            best = min(best, m)
            return
        for j in range(first, len(primes)):  # non-decreasing primes: each product once
            if m * primes[j] < best:
                walk(m * primes[j], j)

    walk(1, 0)
    return best


#: At most this many lengths are measured per transform size.
MAX_CANDIDATES = 6


def length_candidates(n: int) -> list[int]:
    """Fast FFTW lengths worth measuring for a transform of at least ``n`` points.

    The 11-smooth lengths from ``n`` up to the first 5-smooth one (FFTW has
    codelets for 2, 3, 5, 7 and 11; which is fastest depends on the length and
    the machine), at most :data:`MAX_CANDIDATES` of them, the 5-smooth one always.
    """
    five = smooth_at_least(n, (2, 3, 5))
    cands = []
    m = n
    while m < five and len(cands) < MAX_CANDIDATES - 1:
        m = smooth_at_least(m, (2, 3, 5, 7, 11))
        if m >= five:
            break
        cands.append(m)
        m += 1
    return cands + [five]


def min_lengths(sx: tuple[int, ...], sh: tuple[int, ...], mode: str) -> tuple[int, ...]:
    """Shortest circular-convolution lengths that give the outputs of ``mode`` exactly."""
    out = []
    for n, k, window in zip(sx, sh, crop_slices(sx, sh, mode)):
        full = n + k - 1
        # Output m (start <= m < end) aliases with m + N: zero once start + N >= full.
        out.append(max(window.stop, full - window.start, n, k))
    return tuple(out)


#: Largest 2-D filter spectrum (bytes) whose transform is pruned to the filter's non-zero rows.
PRUNE_MAX_PLANE_BYTES = 1 << 20

#: Another length replaces the 5-smooth one only when it is at least 10% faster.
LENGTH_MARGIN = 0.9

_LENGTH_LOCK = threading.Lock()
_lengths: dict[str, int] | None = None


def lengths_path() -> Path:
    import pyfftw

    return cache_dir() / f"fftw-lengths-pyfftw{pyfftw.__version__}.json"


def _load_lengths() -> dict[str, int]:
    global _lengths
    if _lengths is None:
        try:
            stored = json.loads(lengths_path().read_text())
            _lengths = {str(k): int(v) for k, v in stored["lengths"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            _lengths = {}
    return _lengths


def _save_lengths(lengths: dict[str, int]) -> None:
    path = lengths_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"lengths": lengths}, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass


def _time_length(length: int, real: bool, double: bool) -> float:
    """Seconds of a forward and inverse transform of ``length`` points, batched to ~64K points."""
    import pyfftw

    howmany = max(1, min(64, 65536 // length))
    rdt, cdt = (np.float64, np.complex128) if double else (np.float32, np.complex64)
    a = pyfftw.empty_aligned((howmany, length), dtype=rdt if real else cdt)
    spec = length // 2 + 1 if real else length
    b = pyfftw.empty_aligned((howmany, spec), dtype=cdt)
    fwd = pyfftw.FFTW(a, b, axes=(1,), flags=("FFTW_ESTIMATE",))
    inv = pyfftw.FFTW(b, a, axes=(1,), direction="FFTW_BACKWARD", flags=("FFTW_ESTIMATE", "FFTW_DESTROY_INPUT"))
    a[...] = 1.0
    best = math.inf
    budget = time.perf_counter() + 0.05
    for i in range(20):
        t0 = time.perf_counter()
        fwd.execute()
        inv.execute()
        best = min(best, time.perf_counter() - t0)
        if i >= 2 and time.perf_counter() > budget:
            break
    return best


def choose_length(n: int, real: bool, double: bool) -> int:
    """The fastest measured FFTW length ``>= n`` (cached per machine in the user cache)."""
    cands = length_candidates(n)
    if len(cands) == 1:
        return cands[0]
    key = f"{'r' if real else 'c'}{'d' if double else 'f'}{n}"
    with _LENGTH_LOCK:
        lengths = _load_lengths()
        if key in lengths and lengths[key] >= n:
            return lengths[key]
        times = {c: _time_length(c, real, double) for c in cands}
        five = cands[-1]
        best = min(cands, key=lambda c: (times[c], c))
        # The 5-smooth length unless another is clearly faster: timings are noisy, and
        # lengths with factors 7 and 11 take FFTW_MEASURE much longer to plan.
        if times[best] > LENGTH_MARGIN * times[five]:
            best = five
        lengths[key] = best
        _save_lengths(lengths)
        return best


def fast_shape(min_shape: tuple[int, ...], real: bool, double: bool) -> tuple[int, ...]:
    """A fast transform shape: the last axis is real-to-complex for real data."""
    last = len(min_shape) - 1
    return tuple(choose_length(int(n), real and i == last, double) for i, n in enumerate(min_shape))


def wrapped_length(sx: tuple[int, ...], sh: tuple[int, ...], mins: tuple[int, ...]) -> int | None:
    """A 1-D length below the exact minimum whose wrapped-around outputs are cheap to fix, or ``None``.

    A circular convolution of length ``N >= max(n, k)`` wraps the last
    ``A = n + k - 1 - N`` outputs of the full convolution onto its first
    ``A`` (``A < k``); computing those directly costs ``A * k`` multiply-adds
    (:class:`_Tail`), which can be far cheaper than the FFTs of a longer
    transform: ``n = 262144`` needs 262146 to 262398 points, whose next fast
    length is 262440 = 2**3 * 3**8 * 5, while 2**18 transforms 20% faster
    here with FFTW_MEASURE plans. The candidate is the 5-smooth length at or
    above ``max(n, k)``; :func:`build` times both and keeps the faster.
    """
    if len(sx) != 1:
        return None
    n, k = sx[0], sh[0]
    wrapped = smooth_at_least(max(n, k), (2, 3, 5))
    return wrapped if wrapped < mins[0] else None


class _Tail:
    """The outputs ``N .. n + k - 2`` of a 1-D full convolution, computed directly (see :func:`wrapped_length`).

    ``tail[b, o, j] = sum_i sum_t h[o, i, t] x[b, i, N + j - t]``: the last
    ``A`` inputs, zero-padded on both sides, seen through length-``k``
    windows and contracted with the reversed filters in one ``einsum``.
    """

    def __init__(self, x: np.ndarray, h: np.ndarray, N: int, dtype: np.dtype) -> None:
        B, ci, n = x.shape
        co, _, k = h.shape
        self.A = A = n + k - 1 - N
        self.src = x[:, :, N - k + 1:]  # the inputs that reach the wrapped outputs (A of them)
        self.xp = np.zeros((B, ci, 2 * (k - 1) + A), dtype=dtype)
        self.dst = self.xp[:, :, k - 1:k - 1 + A]
        from numpy.lib.stride_tricks import sliding_window_view

        self.windows = sliding_window_view(self.xp, k, axis=-1)[:, :, k - 1:k - 1 + A, :]
        self.h = h
        self.out = np.empty((B, co, A), dtype=dtype)
        self.path = np.einsum_path("biav,oiv->boa", self.windows, h[..., ::-1], optimize="optimal")[0]

    def __call__(self) -> np.ndarray:
        np.copyto(self.dst, self.src)
        return np.einsum("biav,oiv->boa", self.windows, self.h[..., ::-1], out=self.out, optimize=self.path)



# -- the kernel ---------------------------------------------------------------------------

class FFTW(Kernel):
    name = "fft-pyfftw"
    method = "fft"
    library = "pyFFTW"
    requires = ("pyfftw",)
    description = ("pyFFTW: planned FFTW (real-to-complex for real data) at measured fast lengths of the "
                   "shortest exact circular convolution (in 1-D also a shorter one whose few wrapped outputs "
                   "are computed directly, when timed faster), batched plans over signals and filters, pruned "
                   "transforms of small 2-D filters, channels summed in frequency; both operands transformed "
                   "every call.")

    def memory_bytes(self, problem: Problem) -> int:
        item = 8 if problem.dtype in ("float64", "complex128") else 4
        shape = [s + s // 4 + 16 for s in problem.fft_shape()]  # lengths may grow by a few percent
        points = math.prod(shape)
        planes_x = problem.batch * problem.c_in
        planes_h = problem.c_out * problem.c_in
        planes_y = problem.batch * problem.c_out
        # Real buffers and complex spectra of every plane, plus the pruned filter rows.
        per_plane = points * item * (1 if not problem.is_complex else 2) + points * 2 * item
        return problem.memory_bytes() + (planes_x + 2 * planes_h + planes_y) * per_plane

    def prepare(self, problem: Problem, x: np.ndarray, h: np.ndarray,
                options: KernelOptions = KernelOptions()) -> Prepared:
        load_wisdom()
        plan = build(problem, x, h, options)
        save_wisdom()
        return Prepared(plan.call, plan.result, close=plan.close, notes=plan.notes)

    def planned(self, problem: Problem, x_shape: tuple[int, ...], h_shape: tuple[int, ...], dtype: Any,
                options: KernelOptions = KernelOptions()) -> BufferedPlan:
        """symbench.convolve's plan cache: the plans and buffers of ``prepare``, made once per shape."""
        return buffered_plan(self, problem, x_shape, h_shape, dtype, options)


#: Bytes of the frequency-major blocks of the channel multiply-accumulate (about L2-sized).
MAC_BLOCK_BYTES = 1 << 20


def _chunks(n: int, parts: int) -> list[slice]:
    """``parts`` (or fewer) contiguous slices that cover ``range(n)`` evenly."""
    parts = max(1, min(parts, n))
    edges = [n * i // parts for i in range(parts + 1)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


def _channel_mac(X: np.ndarray, H: np.ndarray, Y: np.ndarray, parts: int = 1) -> list[Callable[[], None]]:
    """``Y[b, o, f] = sum_i X[b, i, f] H[o, i, f]`` as one small matrix product per frequency.

    FFTW writes each spectrum contiguously (its fastest layout); BLAS needs
    each frequency's ``(B, C_in)`` and ``(C_out, C_in)`` matrices contiguous.
    So the frequencies go in blocks that fit in L2: each block is transposed
    into frequency-major scratch, multiplied with one batched ``matmul``
    (``(F, B, C_in) @ (F, C_in, C_out)``), and transposed back. Every filter
    spectrum is used by the whole batch. Returns ``parts`` functions that
    split the frequencies between them (for threads), each with its own scratch.
    """
    B, ci = X.shape[:2]
    co = H.shape[0]
    F = math.prod(X.shape[2:])
    Xv, Hv, Yv = X.reshape(B, ci, F), H.reshape(co, ci, F), Y.reshape(B, co, F)
    per_freq = (B * ci + co * ci + B * co) * X.itemsize
    block = int(min(F, max(8, MAC_BLOCK_BYTES // per_freq)))
    copyto, matmul = np.copyto, np.matmul
    fns = []
    for part in _chunks(F, parts):
        xs = np.empty((block, B, ci), dtype=X.dtype)
        hs = np.empty((block, co, ci), dtype=X.dtype)
        ys = np.empty((block, B, co), dtype=X.dtype)
        steps = []
        for f0 in range(part.start, part.stop, block):
            m = min(block, part.stop - f0)
            sl = slice(f0, f0 + m)
            steps.append((xs[:m], Xv[:, :, sl].transpose(2, 0, 1), hs[:m], Hv[:, :, sl].transpose(2, 0, 1),
                          hs[:m].transpose(0, 2, 1), ys[:m], Yv[:, :, sl], ys[:m].transpose(1, 2, 0)))

        def mac(steps: list = steps) -> None:
            for xd, xsrc, hd, hsrc, hT, yd, ydst, ysrc in steps:
                copyto(xd, xsrc)
                copyto(hd, hsrc)
                matmul(xd, hT, out=yd)
                copyto(ydst, ysrc)

        fns.append(mac)
    return fns


def _blas_single_threaded(fn: Callable[[], None]) -> Callable[[], None]:
    """``fn`` with BLAS held at one thread while it runs.

    The channel MAC splits the frequencies between pool workers that each call
    ``matmul``; an OpenBLAS allowed two threads, called from two threads at
    once, serialised them (measured: 60 ms with two workers vs 59 ms with one,
    31 ms once BLAS ran one thread per worker). The limit costs ~13 us a call.
    """
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # a minimal image without it: BLAS keeps its own setting
        return fn
    blas = ThreadpoolController().select(user_api="blas")

    def go() -> None:
        with blas.limit(limits=1):
            fn()

    return go


class _Plan:
    """Buffers, FFTW plans and the timed call of one problem."""

    def __init__(self, problem: Problem, x: np.ndarray, h: np.ndarray, options: KernelOptions,
                 wrapped: int | None = None) -> None:
        import pyfftw

        sx, sh = tuple(x.shape[2:]), tuple(h.shape[2:])
        nd = len(sx)
        B, ci, co = x.shape[0], x.shape[1], h.shape[0]
        complex_data = np.iscomplexobj(x) or np.iscomplexobj(h)
        dtype = np.result_type(x, h)
        cdtype = np.result_type(dtype, np.complex64)
        double = cdtype == np.complex128
        tail = None
        if wrapped is None:
            shape = fast_shape(min_lengths(sx, sh, problem.mode), not complex_data, double)
        else:  # a 1-D length below n + k - 1, its wrapped outputs fixed directly
            shape = (wrapped,)
            tail = _Tail(x, h, wrapped, dtype)
        spec = shape if complex_data else (*shape[:-1], shape[-1] // 2 + 1)
        flags = (_FLAGS[options.planner],)
        threads = problem.threads
        channels = ci * co > 1
        # Plans see every operand as a stack of planes (one "howmany" axis).
        axes = tuple(range(1, 1 + nd))

        def fftw(a: np.ndarray, b: np.ndarray, ax: tuple[int, ...], inverse: bool = False) -> Any:
            direction = "FFTW_BACKWARD" if inverse else "FFTW_FORWARD"
            extra = ("FFTW_DESTROY_INPUT",) if inverse else ()
            return pyfftw.FFTW(a, b, axes=ax, direction=direction, flags=flags + extra, threads=threads)

        # Real (or complex) padded operands and the output, and their spectra. Signals and
        # filters share one buffer (signals first) so that one plan can transform both.
        nx, nh = B * ci, co * ci
        self.ab = pyfftw.zeros_aligned((nx + nh, *shape), dtype=dtype)
        self.xb, self.hb = self.ab[:nx], self.ab[nx:]
        # With a wrapped 1-D length, the A outputs past N go right after the transform's.
        extra = tail.A if tail is not None else 0
        self.yb = pyfftw.empty_aligned((B * co, *shape[:-1], shape[-1] + extra), dtype=dtype)
        y_fft = self.yb[..., :shape[-1]]
        AB = pyfftw.empty_aligned((nx + nh, *spec), dtype=cdtype)
        X = AB[:nx].reshape(B, ci, *spec)
        H = AB[nx:].reshape(co, ci, *spec)
        Y = pyfftw.empty_aligned((B, co, *spec), dtype=cdtype)
        fi = fftw(Y.reshape(B * co, *spec), y_fft, axes, inverse=True)
        # A 2-D filter has k0 non-zero rows of N0: transform those rows only, then the
        # columns. Separate row and column passes lose to FFTW's own 2-D plan once a plane
        # outgrows the cache, so prune small planes (the many filters of a layer) only.
        plane_bytes = math.prod(spec) * np.dtype(cdtype).itemsize
        prune = nd == 2 and sh[0] < shape[0] and plane_bytes <= PRUNE_MAX_PLANE_BYTES
        if prune:
            fx = fftw(self.xb, X.reshape(nx, *spec), axes)
            self.hr = pyfftw.zeros_aligned((nh, shape[0], spec[-1]), dtype=cdtype)
            k0 = sh[0]
            fh_rows = fftw(self.hb[:, :k0, :], self.hr[:, :k0, :], (2,))
            fh_cols = fftw(self.hr, H.reshape(nh, *spec), (1,))
            x_exec, rows_exec, cols_exec = fx.execute, fh_rows.execute, fh_cols.execute

            def forward() -> None:
                x_exec()
                rows_exec()
                cols_exec()
        else:
            # One plan over signals and filters: with threads, FFTW can split the pair.
            forward = fftw(self.ab, AB, axes).execute
        # Planning with FFTW_MEASURE scribbles over the buffers: zero the padding again.
        self.xb[...] = 0
        self.hb[...] = 0
        if prune:
            self.hr[...] = 0

        lead = (slice(None), slice(None))
        x_in = self.xb.reshape(B, ci, *shape)[lead + tuple(slice(0, s) for s in sx)]
        h_in = self.hb.reshape(co, ci, *shape)[lead + tuple(slice(0, s) for s in sh)]
        scale = 1.0 / math.prod(shape)
        self.y_view = self.yb.reshape(B, co, *self.yb.shape[1:])[lead + crop_slices(sx, sh, problem.mode)]

        # The steps around the transforms (copy in, multiply-accumulate) are split
        # between `threads` pool workers; numpy releases the GIL for them.
        parts = threads if threads > 1 else 1
        rows = _chunks(sx[0], parts)
        copies = [(x_in[lead + (r,)], x[lead + (r,)]) for r in rows]
        if channels:
            macs = _channel_mac(X, H, Y, parts)
        else:
            macs = []
            for r in _chunks(spec[0], parts):
                sl = lead + (r,)
                macs.append(lambda a=X[sl], b=H[sl], c=Y[sl]: np.multiply(a, b, out=c))
        copy_fns = [lambda d=d, s_=s_: np.copyto(d, s_) for d, s_ in copies]
        if tail is None:
            fi_exec = fi.execute
        else:
            N, A = shape[0], tail.A
            yv = self.yb.reshape(B, co, N + A)
            y_tail, y_head = yv[..., N:], yv[..., :A]
            c2r = fi.execute

            def fi_exec() -> None:
                c2r()
                t = tail()
                np.copyto(y_tail, t)
                np.subtract(y_head, t, out=y_head)  # the circular result's first A outputs hold both
        self.pool = None
        if parts > 1:
            from concurrent.futures import ThreadPoolExecutor

            pool = self.pool = ThreadPoolExecutor(max_workers=parts, thread_name_prefix="symbench-fftw")

            def parallel(fns: list[Callable[[], None]]) -> Callable[[], None]:
                if len(fns) == 1:
                    return fns[0]
                first, rest = fns[0], fns[1:]

                def go() -> None:
                    futures = [pool.submit(fn) for fn in rest]
                    first()  # the calling thread does a share too
                    for future in futures:
                        future.result()

                return go

            copy_in, mac = parallel(copy_fns), parallel(macs)
            if channels:
                mac = _blas_single_threaded(mac)
        else:
            copy_in, mac = copy_fns[0], macs[0]

        def call() -> None:
            copy_in()
            np.multiply(h, scale, out=h_in)
            forward()
            mac()
            fi_exec()

        self.call: Callable[[], None] = call
        self.notes: dict[str, Any] = {"fft_shape": shape, "planner": options.planner,
                                      "pruned_filter": prune, "threads": threads,
                                      "wrapped_outputs": tail.A if tail is not None else 0}

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None

    def result(self) -> np.ndarray:
        return np.array(self.y_view, copy=True)


def _call_time(call: Callable[[], None], budget: float = 0.05) -> float:
    """Best of a few timed calls (within about ``budget`` seconds)."""
    best = math.inf
    end = time.perf_counter() + budget
    for i in range(50):
        t0 = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t0)
        if i >= 2 and time.perf_counter() > end:
            break
    return best


def build(problem: Problem, x: np.ndarray, h: np.ndarray, options: KernelOptions) -> _Plan:
    """The :class:`_Plan` of ``problem``; in 1-D, the faster of the exact and the wrapped length.

    When :func:`wrapped_length` offers a shorter 1-D transform, both plans are
    built with the requested planner effort and their real calls timed; the
    wrapped one is kept when it is at least 10% faster. The choice is
    remembered in the user cache (per problem shape, planner and threads), so
    later sweeps build only the winner (and FFTW wisdom makes that instant).
    """
    sx, sh = tuple(x.shape[2:]), tuple(h.shape[2:])
    wrapped = wrapped_length(sx, sh, min_lengths(sx, sh, problem.mode))
    if wrapped is None:
        return _Plan(problem, x, h, options)
    key = (f"wrap:{problem.dtype}:{problem.mode}:{sx[0]}:{sh[0]}:{x.shape[0]}x{x.shape[1]}x{h.shape[0]}"
           f":{options.planner}:{problem.threads}")
    with _LENGTH_LOCK:
        decided = _load_lengths().get(key)
    if decided is not None:
        return _Plan(problem, x, h, options, wrapped if decided == wrapped else None)
    exact = _Plan(problem, x, h, options)
    short = _Plan(problem, x, h, options, wrapped)
    try:
        exact.call()
        short.call()
        t_exact, t_short = _call_time(exact.call), _call_time(short.call)
    except BaseException:
        exact.close()
        short.close()
        raise
    keep, drop = (short, exact) if t_short < LENGTH_MARGIN * t_exact else (exact, short)
    drop.close()
    with _LENGTH_LOCK:
        lengths = _load_lengths()
        lengths[key] = keep.notes["fft_shape"][0]
        _save_lengths(lengths)
    return keep


KERNELS: list[Kernel] = [FFTW()]
