"""Libraries that pick direct or FFT themselves: scipy's ``method="auto"`` and OpenCV's filter2D.

These are what most users call without thinking about the method; the report
measures their *regret*, how much slower their choice is than the fastest
kernel measured on the same problem.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from symbench.kernels.base import Kernel, KernelOptions, Prepared, is_plain, pairwise, result_of
from symbench.kernels.cpu_direct import PairKernel, problem_out_shape
from symbench.problem import Problem, crop_slices


class AutoScipy(PairKernel):
    requires = ("scipy",)
    name = "auto-scipy"
    method = "auto"
    library = "scipy.signal"
    description = ('scipy.signal.convolve(method="auto"): SciPy picks direct or FFT with '
                   "choose_conv_method's cost model; a Python loop over channels.")

    def pair_fn(self, problem: Problem) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        import scipy.signal

        mode = problem.mode
        return lambda a, v: scipy.signal.convolve(a, v, mode=mode, method="auto")


class AutoOpenCV(Kernel):
    name = "auto-opencv"
    method = "auto"
    library = "cv2.filter2D"
    dims = (2,)
    dtypes = ("float32", "float64")
    requires = ("cv2",)
    description = ("cv2.filter2D with the flipped filter and a zero border: OpenCV runs its direct "
                   "path for small filters and a DFT for large ones; `full` pads the image in prepare.")

    def prepare(self, problem: Problem, x: np.ndarray, h: np.ndarray,
                options: KernelOptions = KernelOptions()) -> Prepared:
        import cv2

        cv2.setNumThreads(problem.threads)
        mode = problem.mode
        sx, sh = x.shape[2:], h.shape[2:]
        swap = mode == "valid" and not all(a >= b for a, b in zip(sx, sh))
        if swap:
            # Like SciPy, valid mode with the larger filter convolves the other way
            # round: out[o, b] = sum_i conv(h[o, i], x[b, i]), transposed back below.
            x, h = h, x
            sx, sh = sh, sx
        # filter2D correlates with its anchor at `a`; with the filter flipped and
        # a = k - 1 - (k - 1) // 2 it gives SciPy's centred `same` convolution.
        flipped = np.ascontiguousarray(h[..., ::-1, ::-1])
        anchor = tuple(int(k - 1 - (k - 1) // 2) for k in sh)[::-1]  # OpenCV wants (x, y)
        border = cv2.BORDER_CONSTANT
        if mode == "full":
            # `same` over an image padded by (k-1)//2 before and the rest after is
            # exactly the full convolution; the padding is data layout, done here.
            pads = [((k - 1) // 2, k - 1 - (k - 1) // 2) for k in sh]
            src = np.ascontiguousarray(np.pad(x, [(0, 0), (0, 0), *pads]))
            keep = (slice(None), slice(None))
        else:
            src = np.ascontiguousarray(x)
            if mode == "same":
                keep = (slice(None), slice(None))
            else:
                # valid = the part of `same` that needs no padding.
                keep = tuple(slice(k - 1 - (k - 1) // 2, k - 1 - (k - 1) // 2 + n - k + 1)
                             for n, k in zip(sx, sh))
        state: dict[str, np.ndarray] = {}

        def one(a: np.ndarray, f: np.ndarray) -> np.ndarray:
            return cv2.filter2D(a, -1, f, anchor=anchor, borderType=border)

        if is_plain(src, flipped):
            s0, f0 = src[0, 0], flipped[0, 0]

            def call() -> None:
                state["y"] = one(s0, f0)[keep][None, None]
        else:
            out = np.empty((src.shape[0], flipped.shape[0], *src.shape[2:]), dtype=src.dtype)

            def call() -> None:
                pairwise(one, src, flipped, out)
                state["y"] = out[(slice(None), slice(None), *keep)] if mode == "valid" else out

        def result() -> np.ndarray:
            y = np.array(state["y"], copy=True)
            return np.ascontiguousarray(y.swapaxes(0, 1)) if swap else y

        return Prepared(call, result, notes={"swapped": swap})


KERNELS: list[Kernel] = [AutoScipy(), AutoOpenCV()]
