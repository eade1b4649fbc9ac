"""PyTorch as a peer: ``direct-torch``, ``fft-torch`` and their CUDA twins.

What a PyTorch user would write for ``y[b, o] = sum_i conv(x[b, i], h[o, i])``:

``direct-torch``
    ``torch.nn.functional.conv1d``/``conv2d`` (oneDNN or PyTorch's own CPU
    convolution, whichever PyTorch dispatches to). Channels are native to the
    call: the weight is ``h`` flipped (a CNN layer correlates), and the
    padding reproduces SciPy's modes exactly, asymmetric padding (``same``
    with an even ``k``) going through one ``F.pad`` in the timed call.
``fft-torch``
    ``torch.fft.rfftn`` of both operands every call at SciPy's fast lengths,
    channels summed in frequency by one batched matmul over ``C_in``,
    ``irfftn`` and a crop to the mode (complex transforms for complex data).
``direct-torch-cuda`` / ``auto-torch-cuda`` / ``fft-torch-cuda``
    The same calls on a CUDA device, timed with CUDA events
    (:class:`TorchCudaEventClock`). ``direct-torch-cuda`` runs cuDNN with
    ``cudnn.benchmark = False`` (cuDNN's heuristic algorithm);
    ``auto-torch-cuda`` with ``cudnn.benchmark = True``, so cuDNN times its
    algorithms (implicit GEMM, Winograd, FFT) on the warm-up call and keeps the
    fastest: method ``auto``. TF32 is switched off while these kernels run, so
    float32 means float32.

Inputs become tensors in ``prepare`` (``torch.from_numpy``, and a copy to
the device for the CUDA twins), which is set-up, not timed. Every call runs
under :func:`torch.inference_mode` with ``torch.set_num_threads`` at the
problem's thread count (set in the call when it differs: a cheap check; the
previous count is restored by ``close``).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import numpy as np

from symbench.kernels.base import Kernel, KernelOptions, Prepared, fft_workspace_bytes
from symbench.numerics import fast_shape
from symbench.problem import Problem, crop_slices

#: Dtypes the direct kernels accept; complex convolution in PyTorch is not what CNNs use.
REAL_DTYPES = ("float32", "float64")


def torch_module() -> Any:
    """The ``torch`` module (imported lazily: listing kernels must not load PyTorch)."""
    import torch

    return torch


def mode_padding(sx: Sequence[int], sh: Sequence[int], mode: str) -> list[tuple[int, int]]:
    """Zeros ``(before, after)`` per spatial axis so that a *correlation* with the flipped filter is SciPy's ``mode``.

    A full convolution is the correlation of the input padded by ``k - 1`` on
    both sides with the flipped filter; the mode's window
    ``full[start:stop]`` (:func:`symbench.problem.crop_slices`) then needs
    ``k - 1 - start`` zeros before and ``stop - n`` after. Every mode gives
    non-negative padding, including ``valid`` with the kernel larger than the
    input (SciPy's swap), where both are ``k - n``.
    """
    return [(k - 1 - w.start, w.stop - n) for n, k, w in zip(sx, sh, crop_slices(sx, sh, mode))]


def padded_conv(torch: Any, dim: int, pads: list[tuple[int, int]]) -> Callable[[Any, Any], Any]:
    """``f(x, weight)``: ``conv{dim}d`` with ``pads``, through the conv's own padding when symmetric."""
    F = torch.nn.functional
    conv = F.conv1d if dim == 1 else F.conv2d
    if all(a == b for a, b in pads):
        padding = tuple(a for a, _ in pads)
        return lambda x, w: conv(x, w, padding=padding)
    # F.pad lists the last axis first.
    flat = [p for pair in reversed(pads) for p in pair]
    return lambda x, w: conv(F.pad(x, flat), w)


def tensor(torch: Any, a: np.ndarray, dtype: Any = None) -> Any:
    """A tensor sharing a C-contiguous, writeable copy of ``a`` only when ``a`` is not one already."""
    a = np.asarray(a, dtype=dtype)
    if not (a.flags.c_contiguous and a.flags.writeable):
        a = np.array(a, order="C", copy=True)
    return torch.from_numpy(a)


class ThreadSetting:
    """Holds PyTorch's intra-op thread count at ``threads`` during calls; ``restore`` puts back the old one."""

    def __init__(self, torch: Any, threads: int) -> None:
        self._torch = torch
        self.threads = int(threads)
        self.previous = torch.get_num_threads()

    def apply(self) -> None:
        # get_num_threads is a plain read; set_num_threads resizes the pool, so only when needed.
        if self._torch.get_num_threads() != self.threads:
            self._torch.set_num_threads(self.threads)

    def restore(self) -> None:
        if self._torch.get_num_threads() != self.previous:
            self._torch.set_num_threads(self.previous)


# -- kernels ---------------------------------------------------------------------------------------

class TorchKernel(Kernel):
    """What the PyTorch kernels share: the library, the device, availability and the call wrapper.

    Subclasses implement :meth:`build`, which returns ``compute(x, h) -> y``
    over tensors already on the device and the notes to record.
    """

    library = "PyTorch"
    requires = ("torch",)
    #: ``"cpu"`` or ``"cuda"``: where the tensors live.
    torch_device = "cpu"

    def _check_available(self) -> str | None:
        try:
            torch = torch_module()
        except Exception as exc:  # ImportError, or a wheel that does not load
            return f"torch is not installed: {type(exc).__name__}: {exc}" if isinstance(exc, ImportError) \
                else f"cannot import torch: {type(exc).__name__}: {exc}"
        if self.torch_device == "cuda" and not torch.cuda.is_available():
            return f"torch.cuda sees no GPU (torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'})"
        return None

    def build(self, torch: Any, problem: Problem, x: Any, h: Any) -> tuple[Callable[[Any, Any], Any], dict[str, Any]]:
        raise NotImplementedError

    def host_memory_bytes(self, problem: Problem) -> int:
        if self.torch_device == "cpu":
            return self.memory_bytes(problem)
        return problem.memory_bytes() + np.dtype(problem.dtype).itemsize * math.prod(problem.out_shape)

    def device_memory_check(self, problem: Problem) -> str | None:
        if self.torch_device == "cpu" or self.unavailable_reason():
            return None
        free, _total = torch_module().cuda.mem_get_info()
        need = self.memory_bytes(problem)
        if need > 0.85 * free:
            return (f"this problem needs about {need / 2**30:.2f} GiB of device memory; "
                    f"{free / 2**30:.2f} GiB free on the GPU")
        return None

    def flags(self, torch: Any) -> Callable[[], None]:
        """Set any global flag the call relies on; returns a function that restores them (CPU: nothing)."""
        return lambda: None

    def prepare(self, problem: Problem, x: np.ndarray, h: np.ndarray,
                options: KernelOptions = KernelOptions()) -> Prepared:
        torch = torch_module()
        dtype = np.result_type(x, h)
        xt = tensor(torch, x, dtype)
        ht = tensor(torch, h, dtype)
        cuda = self.torch_device == "cuda"
        if cuda:
            xt, ht = xt.to("cuda"), ht.to("cuda")
        threads = ThreadSetting(torch, problem.threads)
        restore_flags = self.flags(torch)
        compute, notes = self.build(torch, problem, xt, ht)
        state: dict[str, Any] = {}
        inference = torch.inference_mode

        def call() -> None:
            threads.apply()
            with inference():
                state["y"] = compute(xt, ht)

        def result() -> np.ndarray:
            y = state["y"]
            return np.array(y.cpu().numpy() if cuda else y.numpy(), copy=True)

        clock = None
        if cuda:
            call()  # first-call costs (cuDNN handles, plans, benchmark) go to set-up
            torch.cuda.synchronize()
            clock = TorchCudaEventClock(torch, flush_l2=options.flush_l2)

        def close() -> None:
            state.clear()
            threads.restore()
            restore_flags()
            if cuda:
                clock.close()
                torch.cuda.empty_cache()

        notes = {**notes, "threads": problem.threads, "torch": torch.__version__}
        return Prepared(call, result, clock=clock, close=close, notes=notes)


class DirectTorch(TorchKernel):
    """``torch.nn.functional.conv1d``/``conv2d`` with SciPy's modes (see the module docstring)."""

    name = "direct-torch"
    method = "direct"
    library = "PyTorch (F.conv1d/conv2d)"
    dtypes = REAL_DTYPES
    description = ("torch.nn.functional.conv1d/conv2d, channels native (weight = flipped h, flipped in set-up), "
                   "padding chosen to give SciPy's full/same/valid exactly (F.pad in the call when asymmetric); "
                   "inference_mode, torch.set_num_threads(threads).")

    def build(self, torch: Any, problem: Problem, x: Any, h: Any) -> tuple[Callable[[Any, Any], Any], dict[str, Any]]:
        nd = x.dim() - 2
        sx, sh = tuple(x.shape[2:]), tuple(h.shape[2:])
        pads = mode_padding(sx, sh, problem.mode)
        conv = padded_conv(torch, nd, pads)
        # A CNN layer correlates: flipping h once makes it a convolution. Layout, not work: set-up.
        weight = torch.flip(h, dims=tuple(range(2, 2 + nd))).contiguous()
        return (lambda xt, _ht: conv(xt, weight)), {"padding": pads}


class FFTTorch(TorchKernel):
    """Real (or complex) FFT convolution with ``torch.fft``; channels summed in frequency."""

    name = "fft-torch"
    method = "fft"
    library = "PyTorch (torch.fft)"
    description = ("torch.fft.rfftn of both operands every call (fftn for complex data) at SciPy's fast lengths, "
                   "channels summed in frequency by one batched matmul over C_in, irfftn, crop to the mode.")

    def memory_bytes(self, problem: Problem) -> int:
        return problem.memory_bytes() + fft_workspace_bytes(problem)

    def build(self, torch: Any, problem: Problem, x: Any, h: Any) -> tuple[Callable[[Any, Any], Any], dict[str, Any]]:
        nd = x.dim() - 2
        sx, sh = tuple(x.shape[2:]), tuple(h.shape[2:])
        real = not (x.is_complex() or h.is_complex())
        shape = fast_shape(tuple(a + b - 1 for a, b in zip(sx, sh)), real)
        dims = tuple(range(2, 2 + nd))
        fwd, inv = (torch.fft.rfftn, torch.fft.irfftn) if real else (torch.fft.fftn, torch.fft.ifftn)
        keep = (slice(None), slice(None), *crop_slices(sx, sh, problem.mode))
        B, ci = x.shape[:2]
        co = h.shape[0]
        plain = ci == 1 and co == 1

        def compute(xt: Any, ht: Any) -> Any:
            X = fwd(xt, s=shape, dim=dims)
            H = fwd(ht, s=shape, dim=dims)
            spec = X.shape[2:]
            if plain:  # one channel pair: a product, no sum
                Y = X * H
            else:
                # Frequency-major (F, B, C_in) @ (F, C_in, C_out): one batched matmul does the channel sum.
                Xf = X.reshape(B, ci, -1).permute(2, 0, 1)
                Hf = H.reshape(co, ci, -1).permute(2, 1, 0)
                Y = torch.matmul(Xf, Hf).permute(1, 2, 0).reshape(B, co, *spec)
            return inv(Y, s=shape, dim=dims)[keep]

        return compute, {"fft_shape": list(shape), "real": real}


# -- CUDA ------------------------------------------------------------------------------------------

class TorchCudaEventClock:
    """GPU time from ``torch.cuda.Event`` pairs, in the :class:`symbench.sweep.timing.Clock` protocol.

    As :class:`symbench.machine.gpu.CudaEventClock` (CuPy's events): ``measure``
    records an event, enqueues ``loops`` calls, records a second event and
    waits; the sample is the GPU time between them, the host wall time is kept
    in ``last_host_s``. With ``flush_l2`` every call is preceded by a write
    over twice the L2 cache and gets its own pair of events, so the flushes are
    not in the sample (``last_host_s`` is then ``None``).
    """

    name = "torch_cuda_event"
    #: CUDA documents an event resolution of about half a microsecond.
    resolution_s = 5e-7

    def __init__(self, torch: Any, flush_l2: bool = False) -> None:
        self._torch = torch
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)
        self._pairs: list[tuple[Any, Any]] = []
        self._flush_buf = None
        if flush_l2:
            l2 = int(getattr(torch.cuda.get_device_properties(torch.cuda.current_device()), "L2_cache_size", 0))
            self._flush_buf = torch.empty(max(2 * l2, 1 << 20), dtype=torch.uint8, device="cuda")
        self.last_host_s: float | None = None

    def measure(self, fn: Callable[[], object], loops: int) -> float:
        torch = self._torch
        torch.cuda.current_stream().synchronize()  # nothing queued before counts
        if self._flush_buf is None:
            t0 = time.perf_counter()
            self._start.record()
            for _ in range(loops):
                fn()
            self._end.record()
            self._end.synchronize()
            self.last_host_s = time.perf_counter() - t0
            return self._start.elapsed_time(self._end) * 1e-3
        while len(self._pairs) < loops:
            self._pairs.append((torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)))
        pairs = self._pairs[:loops]
        for i, (start, end) in enumerate(pairs):
            self._flush_buf.fill_(i & 1)  # a different value each time: no write can be skipped
            start.record()
            fn()
            end.record()
        pairs[-1][1].synchronize()
        self.last_host_s = None
        return math.fsum(s.elapsed_time(e) for s, e in pairs) * 1e-3

    def close(self) -> None:
        self._flush_buf = None
        self._pairs.clear()


class _CudaTwin(TorchKernel):
    device = "gpu"
    torch_device = "cuda"
    #: cudnn.benchmark during the calls.
    benchmark = False

    def memory_bytes(self, problem: Problem) -> int:
        item = np.dtype(problem.dtype).itemsize
        io = item * (math.prod(problem.x_shape) + math.prod(problem.h_shape) + math.prod(problem.out_shape))
        return io + (fft_workspace_bytes(problem) if self.method == "fft" else io)

    def flags(self, torch: Any) -> Callable[[], None]:
        cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
        saved = (cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32)
        # TF32 would round float32 operands to 10-bit mantissas: not float32 any more.
        cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32 = self.benchmark, False, False

        def restore() -> None:
            cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32 = saved

        return restore


class DirectTorchCuda(_CudaTwin, DirectTorch):
    name = "direct-torch-cuda"
    library = "PyTorch cuDNN"
    description = ("direct-torch on a CUDA device: cuDNN convolution with cudnn.benchmark=False (its heuristic "
                   "algorithm, usually implicit GEMM), TF32 off, timed with CUDA events.")


class AutoTorchCuda(_CudaTwin, DirectTorch):
    name = "auto-torch-cuda"
    method = "auto"
    library = "PyTorch cuDNN"
    benchmark = True
    description = ("direct-torch on a CUDA device with cudnn.benchmark=True: cuDNN times its algorithms (implicit "
                   "GEMM, Winograd, FFT) in the warm-up call (set-up) and keeps the fastest; TF32 off.")


class FFTTorchCuda(_CudaTwin, FFTTorch):
    name = "fft-torch-cuda"
    library = "PyTorch cuFFT"
    description = ("fft-torch on a CUDA device (cuFFT through torch.fft, cuBLAS batched matmul for the channel "
                   "sum), both operands transformed every call, timed with CUDA events.")


KERNELS: list[Kernel] = [DirectTorch(), FFTTorch(), DirectTorchCuda(), AutoTorchCuda(), FFTTorchCuda()]
