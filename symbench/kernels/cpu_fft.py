"""FFT convolution on the CPU through NumPy and SciPy (both operands transformed every call)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from symbench.kernels.base import (Kernel, KernelOptions, Prepared, fft_workspace_bytes, is_plain,
                                   result_of)
from symbench.numerics import fast_shape
from symbench.problem import Problem, crop_full


def _channel_mac(X: np.ndarray, H: np.ndarray) -> np.ndarray:
    """``Y[b, o] = sum_i X[b, i] * H[o, i]`` over spectra: channels summed in frequency."""
    return np.einsum("bi...,oi...->bo...", X, H)


class FFTNumpy(Kernel):
    requires = ("numpy",)
    name = "fft-numpy"
    method = "fft"
    library = "numpy.fft"
    description = ("numpy.fft real transforms (complex for complex input) at SciPy's fast lengths; "
                   "channels multiply-accumulate in frequency.")

    def memory_bytes(self, problem: Problem) -> int:
        return problem.memory_bytes() + fft_workspace_bytes(problem)

    def prepare(self, problem: Problem, x: np.ndarray, h: np.ndarray,
                options: KernelOptions = KernelOptions()) -> Prepared:
        x, h = np.ascontiguousarray(x), np.ascontiguousarray(h)
        sx, sh = x.shape[2:], h.shape[2:]
        real = not (np.iscomplexobj(x) or np.iscomplexobj(h))
        shape = fast_shape([a + b - 1 for a, b in zip(sx, sh)], real)
        axes = tuple(range(2, 2 + len(sx)))
        fwd, inv = (np.fft.rfftn, np.fft.irfftn) if real else (np.fft.fftn, np.fft.ifftn)
        plain = is_plain(x, h)
        mode = problem.mode
        dtype = np.result_type(x, h)
        state: dict[str, np.ndarray] = {}

        def call() -> None:
            X = fwd(x, s=shape, axes=axes)
            H = fwd(h, s=shape, axes=axes)
            Y = X * H if plain else _channel_mac(X, H)
            # numpy.fft computes in double precision; casting back keeps the
            # problem's dtype, as every other kernel does.
            y = inv(Y, s=shape, axes=axes)
            state["y"] = crop_full(y, sx, sh, mode).astype(dtype, copy=False)

        return Prepared(call, result_of(state), notes={"fft_shape": shape})


class _ScipyFFT(Kernel):
    requires = ("scipy",)
    method = "fft"
    library = "scipy.signal"

    def conv_fn(self) -> Callable[..., np.ndarray]:
        raise NotImplementedError

    def memory_bytes(self, problem: Problem) -> int:
        # Channels broadcast to a (B, C_out, C_in, ...) product before the sum.
        planes = problem.batch * problem.c_in + problem.c_out * problem.c_in
        planes += problem.batch * problem.c_out * problem.c_in
        return problem.memory_bytes() + fft_workspace_bytes(problem, planes)

    def prepare(self, problem: Problem, x: np.ndarray, h: np.ndarray,
                options: KernelOptions = KernelOptions()) -> Prepared:
        x, h = np.ascontiguousarray(x), np.ascontiguousarray(h)
        conv = self.conv_fn()
        mode = problem.mode
        state: dict[str, np.ndarray] = {}
        if is_plain(x, h):
            x0, h0 = x[0, 0], h[0, 0]

            def call() -> None:
                state["y"] = conv(x0, h0, mode=mode)[None, None]
        else:
            nd = x.ndim - 2
            xb, hb = x[:, None], h[None]  # (B, 1, C_in, ...) and (1, C_out, C_in, ...)
            axes = tuple(range(3, 3 + nd))
            sx, sh = x.shape[2:], h.shape[2:]

            def call() -> None:
                # SciPy's `same` would take the broadcast shape of x (C_out = 1),
                # so convolve in full, sum the channels, and crop as SciPy does.
                full = conv(xb, hb, mode="full", axes=axes).sum(axis=2)
                state["y"] = crop_full(full, sx, sh, mode)

        return Prepared(call, result_of(state))


class FFTScipy(_ScipyFFT):
    name = "fft-scipy"
    description = "scipy.signal.fftconvolve; channels broadcast, then summed."

    def conv_fn(self) -> Callable[..., np.ndarray]:
        import scipy.signal

        return scipy.signal.fftconvolve


class OAScipy(_ScipyFFT):
    name = "oa-scipy"
    description = "scipy.signal.oaconvolve (overlap-add); channels broadcast, then summed."

    def conv_fn(self) -> Callable[..., np.ndarray]:
        import scipy.signal

        return scipy.signal.oaconvolve


KERNELS: list[Kernel] = [FFTNumpy(), FFTScipy(), OAScipy()]
