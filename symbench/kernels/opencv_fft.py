"""``fft-opencv``: 2-D FFT convolution with OpenCV's own DFT (``cv2.dft``).

What an OpenCV user writes for FFT convolution (the recipe of OpenCV's
"convolveDFT" example): pad both operands to ``cv2.getOptimalDFTSize`` of the
full size ``n + k - 1`` per axis, forward real DFTs (packed CCS spectra),
``cv2.mulSpectrums``, one inverse ``cv2.idft(DFT_SCALE | DFT_REAL_OUTPUT)``,
and a crop to the mode. Every call transforms every input plane and every
filter plane once (``B * C_in + C_out * C_in`` forward DFTs), sums the
products over input channels in the packed spectrum (a sum of CCS arrays is
the CCS array of the sum) and inverts ``B * C_out`` spectra, with Python
loops over the planes, as OpenCV code handles channels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from symbench.kernels.base import Kernel, KernelOptions, Prepared, result_of
from symbench.problem import Problem, crop_full


def optimal_dft_shape(sx: tuple[int, ...], sh: tuple[int, ...]) -> tuple[int, ...]:
    """``cv2.getOptimalDFTSize(n + k - 1)`` per axis: the transform size fft-opencv uses."""
    import cv2

    return tuple(int(cv2.getOptimalDFTSize(a + b - 1)) for a, b in zip(sx, sh))


class FFTOpenCV(Kernel):
    """2-D FFT convolution through ``cv2.dft``/``cv2.mulSpectrums``/``cv2.idft`` (see the module docstring)."""

    name = "fft-opencv"
    method = "fft"
    library = "OpenCV (cv2.dft)"
    dims = (2,)
    dtypes = ("float32", "float64")
    requires = ("cv2",)
    description = ("cv2.dft of both operands every call at cv2.getOptimalDFTSize(n + k - 1), cv2.mulSpectrums "
                   "summed over input channels in the packed (CCS) spectrum, cv2.idft(DFT_SCALE|DFT_REAL_OUTPUT), "
                   "crop to the mode; Python loops over planes.")

    def memory_bytes(self, problem: Problem) -> int:
        shape = tuple(cv2_size(a + b - 1) for a, b in zip(problem.spatial, problem.kspatial))
        planes = problem.batch * problem.c_in + problem.c_out * problem.c_in + 2 * problem.batch * problem.c_out
        return problem.memory_bytes() + planes * math.prod(shape) * np.dtype(problem.dtype).itemsize

    def prepare(self, problem: Problem, x: np.ndarray, h: np.ndarray,
                options: KernelOptions = KernelOptions()) -> Prepared:
        import cv2

        cv2.setNumThreads(problem.threads)
        dtype = np.result_type(x, h)
        x = np.ascontiguousarray(x, dtype=dtype)
        h = np.ascontiguousarray(h, dtype=dtype)
        sx, sh = tuple(x.shape[2:]), tuple(h.shape[2:])
        M, N = optimal_dft_shape(sx, sh)
        B, ci = x.shape[:2]
        co = h.shape[0]
        mode = problem.mode
        # Zero-padded planes, allocated once: each call copies the operands into their
        # top-left corners (the zeros never change) and transforms them.
        xpad = np.zeros((B, ci, M, N), dtype=dtype)
        hpad = np.zeros((co, ci, M, N), dtype=dtype)
        n0, n1 = sx
        k0, k1 = sh
        state: dict[str, Any] = {}
        out = np.empty((B, co, M, N), dtype=dtype)
        inverse = cv2.DFT_INVERSE | cv2.DFT_SCALE | cv2.DFT_REAL_OUTPUT

        def call() -> None:
            xpad[:, :, :n0, :n1] = x
            hpad[:, :, :k0, :k1] = h
            X = [[cv2.dft(xpad[b, i]) for i in range(ci)] for b in range(B)]
            H = [[cv2.dft(hpad[o, i]) for i in range(ci)] for o in range(co)]
            for b in range(B):
                for o in range(co):
                    acc = cv2.mulSpectrums(X[b][0], H[o][0], 0)
                    for i in range(1, ci):
                        acc += cv2.mulSpectrums(X[b][i], H[o][i], 0)
                    cv2.dft(acc, out[b, o], flags=inverse)
            state["y"] = crop_full(out, sx, sh, mode)

        return Prepared(call, result_of(state), notes={"dft_shape": [M, N]})


def cv2_size(n: int) -> int:
    """``cv2.getOptimalDFTSize(n)``; SciPy's fast length (also 2,3,5-smooth) when cv2 does not import.

    Memory estimates may be asked for without OpenCV; the kernel itself never runs without it.
    """
    try:
        import cv2
    except ImportError:
        import scipy.fft

        return int(scipy.fft.next_fast_len(n, real=True))
    return int(cv2.getOptimalDFTSize(n))


KERNELS: list[Kernel] = [FFTOpenCV()]
