"""``direct-ndimage``: direct convolution with ``scipy.ndimage.convolve`` (zero border).

``scipy.ndimage.convolve(a, v, mode="constant", cval=0)`` returns an output of
``a``'s size, centred on the filter's centre ``k // 2``. SciPy's signal
``same`` is centred on ``(k - 1) // 2`` of the full output, which for an even
``k`` is one sample earlier: ``origin=-1`` on the even axes moves ndimage's
window there (checked against ``scipy.signal.convolve`` for k = 2..7, 1-D and
2-D). The other modes are exact rearrangements of that ``same`` output:

``full``
    ``same`` of the input zero-padded by ``(k - 1) // 2`` before and
    ``k - 1 - (k - 1) // 2`` after each axis (a padded copy in every call).
``valid`` with ``k <= n``
    a crop of ``same`` (the border outputs are computed and dropped, as an
    ndimage user would).
``valid`` with ``k > n`` (SciPy swaps the operands)
    a crop of ``full``.

1-D signals go through ``scipy.ndimage.convolve1d``, 2-D through
``scipy.ndimage.convolve``; channels through a Python loop over pairs.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from symbench.kernels.base import Kernel, KernelOptions, Prepared, pairwise, result_of
from symbench.problem import Problem, conv_out_shape, crop_slices


def ndimage_origin(k: int) -> int:
    """ndimage ``origin`` that centres a length-``k`` filter as ``scipy.signal``'s ``same`` does."""
    return 0 if k % 2 else -1


class DirectNdimage(Kernel):
    """``scipy.ndimage.convolve``/``convolve1d`` with a zero border, modes as in the module docstring."""

    name = "direct-ndimage"
    method = "direct"
    library = "scipy.ndimage"
    description = ("scipy.ndimage.convolve (convolve1d in 1-D), mode='constant', cval=0, origin -1 on even-k axes "
                   "to match scipy.signal's same; full by a zero-padded copy of the input, valid by cropping "
                   "same (or full when k > n); a Python loop over channel pairs.")

    def prepare(self, problem: Problem, x: np.ndarray, h: np.ndarray,
                options: KernelOptions = KernelOptions()) -> Prepared:
        import scipy.ndimage as ndi

        dtype = np.result_type(x, h)
        x = np.ascontiguousarray(x, dtype=dtype)
        h = np.ascontiguousarray(h, dtype=dtype)
        sx, sh = tuple(x.shape[2:]), tuple(h.shape[2:])
        mode = problem.mode
        origins = [ndimage_origin(k) for k in sh]
        if len(sx) == 1:
            o1 = origins[0]

            def same(a: np.ndarray, v: np.ndarray) -> np.ndarray:
                return ndi.convolve1d(a, v, mode="constant", cval=0.0, origin=o1)
        else:
            def same(a: np.ndarray, v: np.ndarray) -> np.ndarray:
                return ndi.convolve(a, v, mode="constant", cval=0.0, origin=origins)

        from_full = mode == "full" or (mode == "valid" and not all(a >= b for a, b in zip(sx, sh)))
        if from_full:
            # `same` over the padded input is the whole full convolution (see the module docstring).
            pads = [((k - 1) // 2, k - 1 - (k - 1) // 2) for k in sh]
            keep = crop_slices(sx, sh, mode)

            def fn(a: np.ndarray, v: np.ndarray) -> np.ndarray:
                return same(np.pad(a, pads), v)[keep]
        elif mode == "valid":
            # valid = the outputs of `same` that need no zero padding: full[k-1 : n] shifted by (k-1)//2.
            keep = tuple(slice(k - 1 - (k - 1) // 2, n - (k - 1) // 2) for n, k in zip(sx, sh))

            def fn(a: np.ndarray, v: np.ndarray) -> np.ndarray:
                return same(a, v)[keep]
        else:
            fn = same
        out = np.empty((x.shape[0], h.shape[0], *conv_out_shape(sx, sh, mode)), dtype=dtype)
        state = {"y": out}
        run: Callable[[np.ndarray, np.ndarray], np.ndarray] = fn

        def call() -> None:
            pairwise(run, x, h, out)

        return Prepared(call, result_of(state), notes={"origin": origins, "from_full": from_full})


KERNELS: list[Kernel] = [DirectNdimage()]
