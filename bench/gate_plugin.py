"""The gate bench's plug-in kernel, loaded in workers and sweeps through the SYMBENCH_PLUGINS hook.

``direct-gate`` is numpy.convolve; ``GATE_SLOW=1.25`` adds a quarter as much work
again (as the acceptance check's probe does).
"""

from __future__ import annotations

import os

import numpy as np

from symbench.kernels import Kernel, Prepared


class Gate(Kernel):
    name = "direct-gate"
    method = "direct"
    library = "numpy (gate bench)"
    dims = (1,)
    dtypes = ("float64",)
    modes = ("full",)
    description = "numpy.convolve; GATE_SLOW slows it"

    def prepare(self, problem, x, h, options=None):
        slow = float(os.environ.get("GATE_SLOW", "1"))
        xs, hs = np.ascontiguousarray(x[0, 0]), np.ascontiguousarray(h[0, 0])
        extra = xs[: max(1, int(len(xs) * (slow - 1)))] if slow > 1 else None
        box = {"calls": 0}

        def call():
            box["y"] = np.convolve(xs, hs)
            if extra is not None:
                np.convolve(extra, hs)

        return Prepared(call=call, result=lambda: box["y"][None, None].copy())


KERNELS = [Gate()]
