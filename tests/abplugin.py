"""Test kernels for ``symbench ab``, loaded in workers through the hidden SYMBENCH_PLUGINS hook.

``direct-abtest`` is numpy.convolve; ``ABTEST_SLOW=1.5`` adds half as much work
again (as the acceptance check's probe does), and ``ABTEST_DIE_K=17`` makes the
worker process exit during the timed calls of problems with that k (a crash).
"""

from __future__ import annotations

import os

import numpy as np

from symbench.kernels import Kernel, Prepared


class ABTest(Kernel):
    name = "direct-abtest"
    method = "direct"
    library = "numpy (test)"
    dims = (1,)
    dtypes = ("float64",)
    modes = ("full",)
    description = "numpy.convolve; ABTEST_SLOW slows it, ABTEST_DIE_K kills the worker"

    def prepare(self, problem, x, h, options=None):
        slow = float(os.environ.get("ABTEST_SLOW", "1"))
        die = os.environ.get("ABTEST_DIE_K")
        xs, hs = np.ascontiguousarray(x[0, 0]), np.ascontiguousarray(h[0, 0])
        extra = xs[: max(1, int(len(xs) * (slow - 1)))] if slow > 1 else None
        box = {"calls": 0}

        def call():
            box["y"] = np.convolve(xs, hs)
            if extra is not None:
                np.convolve(extra, hs)
            box["calls"] += 1
            if die and int(die) == problem.k and box["calls"] > 3:  # after warm-up and verification
                os._exit(3)

        return Prepared(call=call, result=lambda: box["y"][None, None].copy())


KERNELS = [ABTest()]
