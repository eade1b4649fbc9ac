"""``gconv-torch``: p4/p4m lift and group convolution the way GrouPy and escnn run them in PyTorch.

A G-CNN layer in PyTorch expands its filter bank into the ``|G|`` transformed
copies of every filter by one index gather (GrouPy's ``trans_filter``; escnn
expands its basis the same way), stacks them as ``C_out * |G|`` ordinary
filters over ``C_in * G_in`` channels and calls ``F.conv2d`` once. The gather
index (:func:`symbench.groups.filter_indices`, through
:func:`symbench.kernels.impl.gconv_core.make_plan`) is precomputed in ``prepare``;
the expansion itself runs in every timed call, as in training, where the
weights change at every step.

Conventions are those of :mod:`symbench.groups` and ``gconv-direct``:
cross-correlation (``F.conv2d`` correlates, so the filters are not flipped),
``valid``, and ``same`` with ``(k - 1) // 2`` zeros before and ``k // 2`` after
(what PyTorch's ``padding="same"`` does).

Importing this module registers the equivariance suite of ``symbench verify``
(:mod:`symbench.equivariance`) for lift/gconv kernels, as :mod:`symbench.kernels.gconv` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symbench.groups import same_padding
from symbench.kernels.impl import gconv_core as core
from symbench.kernels.base import Kernel, KernelOptions, Prepared
from symbench.kernels.torch_conv import ThreadSetting, padded_conv, tensor, torch_module
from symbench.problem import GROUP_MODES, Problem


class GconvTorch(Kernel):
    """p4/p4m ``lift`` and ``gconv`` layers: one gather expands the filters, one ``F.conv2d`` applies them."""

    name = "gconv-torch"
    method = "direct"
    ops = ("lift", "gconv")
    groups = ("p4", "p4m")
    dims = (2,)
    dtypes = ("float32", "float64")
    modes = GROUP_MODES
    library = "PyTorch (F.conv2d)"
    requires = ("torch",)
    description = ("p4/p4m lift and group conv as GrouPy/escnn run them: the filter bank expanded to its |G| "
                   "transformed copies by an index gather inside the timed call (index precomputed), then one "
                   "F.conv2d over the stacked C_out*|G| filters; inference_mode, set_num_threads(threads).")

    def memory_bytes(self, problem: Problem) -> int:
        item = np.dtype(problem.dtype).itemsize
        bank = problem.c_out * problem.group_order * int(np.prod(problem.h_shape[1:]))
        return problem.memory_bytes() + item * bank

    def prepare(self, problem: Problem, x: np.ndarray, w: np.ndarray,
                options: KernelOptions = KernelOptions()) -> Prepared:
        torch = torch_module()
        dtype = np.result_type(x, w)
        plan = core.make_plan(problem.group, problem.op, x.shape, w.shape, problem.mode, fft=False,
                              itemsize=dtype.itemsize)
        B, co, k, G = x.shape[0], w.shape[0], plan.k, plan.G
        K = plan.c_in * plan.gin
        xt = tensor(torch, x, dtype).reshape(B, K, *plan.in_hw)  # the input G axis joins the channels
        wt = tensor(torch, w, dtype).reshape(co, -1)
        # filter_index is (G, c_in, gin, k, k) into each output channel's flattened filter.
        index = torch.from_numpy(np.ascontiguousarray(plan.filter_index.reshape(-1), dtype=np.int64))
        pad = same_padding(k) if problem.mode == "same" else (0, 0)
        # Symmetric padding (odd k) is the conv's own; for even k (PyTorch's padding="same" would
        # also copy the input) one F.pad in the call.
        conv = padded_conv(torch, 2, [pad, pad])
        threads = ThreadSetting(torch, problem.threads)
        state: dict[str, Any] = {}
        out_shape = (B, co, G, *plan.out_hw)

        def call() -> None:
            threads.apply()
            with torch.inference_mode():
                bank = torch.index_select(wt, 1, index).reshape(co * G, K, k, k)
                state["y"] = conv(xt, bank).reshape(out_shape)

        def result() -> np.ndarray:
            return np.array(state["y"].numpy(), copy=True)

        def close() -> None:
            state.clear()
            threads.restore()

        return Prepared(call, result, close=close,
                        notes={"filters": co * G, "channels": K, "threads": problem.threads})


KERNELS: list[Kernel] = [GconvTorch()]

from symbench.groups import equivariance as _equivariance  # noqa: E402  registers the verify suite

_equivariance.register()
