"""Convolution kernels, one module per family, collected by :mod:`symbench.kernels.registry`.

Importing this package sets ``OMP_WAIT_POLICY=PASSIVE`` unless it is already
set, before any kernel library loads an OpenMP runtime. pyFFTW's FFTW and
numba's thread pool each bring their own libgomp, whose idle threads by
default keep spinning for milliseconds after a parallel region: timed in
turns, one kernel's spinning threads would take the cores of the next one
(with 2 threads, ``direct`` measured 1.0x instead of 1.8x its 1-thread speed
when sampled in turns with ``fft-pyfftw``). Passive threads sleep at once.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from symbench.kernels.base import Kernel, KernelOptions, Prepared  # noqa: E402
from symbench.kernels.registry import all_kernels, get, register, resolve, unregister  # noqa: E402

__all__ = ["Kernel", "KernelOptions", "Prepared", "all_kernels", "get", "register", "resolve", "unregister"]
