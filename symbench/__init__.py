"""symbench: measure where FFT convolution starts beating direct convolution, and use it.

Public API
----------
convolve(x, h, mode="full", kernel=None)
    ``scipy.signal.convolve`` semantics, dispatched to the fastest kernel.
use_table(path)
    Dispatch ``convolve`` on a table written by ``symbench tune``.
dispatch_info()
    Which table (or the cost model) ``convolve`` dispatches on now, and where it came from.
gconv(x, w, group="p4", mode="valid", kernel=None)
    A p4/p4m lifting or group-convolution layer (Cohen & Welling 2016).
load(path)
    A run's measurements as a pandas DataFrame.
SymbenchError
    Raised for bad usage or bad input, with a message that says what is allowed.

The heavy modules (NumPy, pandas, kernels) load on first use, so that
``import symbench`` and ``symbench --help`` stay fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from symbench.errors import SymbenchError

__version__ = "0.1.0"

_LAZY = {
    "convolve": "symbench.dispatch.api",
    "gconv": "symbench.dispatch.api",
    "load": "symbench.store",
    "use_table": "symbench.dispatch.selector",
    "dispatch_info": "symbench.dispatch.selector",
}

__all__ = ["SymbenchError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'symbench' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
