"""The kernel registry: every built-in kernel family plus third-party entry points.

Each family module under :mod:`symbench.kernels` exposes ``KERNELS``, a list of
:class:`~symbench.kernels.base.Kernel` instances. Third parties register with
the entry-point group ``symbench.kernels`` (as pyperf's hooks do); an entry
point may name a Kernel instance, a Kernel subclass, or a callable returning
an iterable of kernels. A third-party kernel that fails to load is listed as
unavailable with the reason instead of breaking every command.
"""

from __future__ import annotations

import fnmatch
import importlib
from importlib.metadata import entry_points
from typing import Iterable

from symbench.errors import KernelError
from symbench.kernels.base import Kernel

ENTRY_POINT_GROUP = "symbench.kernels"

#: Built-in families, in the order ``symbench kernels`` lists them.
BUILTIN_MODULES = (
    "symbench.kernels.cpu_direct",
    "symbench.kernels.cpu_fft",
    "symbench.kernels.fftw",
    "symbench.kernels.auto",
    "symbench.kernels.cupy_conv",
    "symbench.kernels.gconv",
    "symbench.kernels.cupy_gconv",
    "symbench.kernels.torch_conv",
    "symbench.kernels.torch_gconv",
    "symbench.kernels.opencv_fft",
    "symbench.kernels.ndimage",
)

_REGISTRY: dict[str, Kernel] | None = None


class _BrokenKernel(Kernel):
    """Stands in for a third-party kernel whose entry point failed to load."""

    method = "direct"
    library = "third party"

    def __init__(self, name: str, reason: str) -> None:
        self._name = name
        self._reason = reason

    @property  # type: ignore[override]
    def name(self) -> str:  # noqa: D401
        return self._name

    def _check_available(self) -> str | None:
        return self._reason


def _as_kernels(obj: object) -> list[Kernel]:
    if isinstance(obj, Kernel):
        return [obj]
    if isinstance(obj, type) and issubclass(obj, Kernel):
        return [obj()]
    if callable(obj):
        return _as_kernels_iter(obj())
    return _as_kernels_iter(obj)


def _as_kernels_iter(items: object) -> list[Kernel]:
    out = []
    for item in items:  # type: ignore[attr-defined]
        if not isinstance(item, Kernel):
            raise TypeError(f"{item!r} is not a symbench Kernel")
        out.append(item)
    return out


def _load() -> dict[str, Kernel]:
    registry: dict[str, Kernel] = {}
    for module_name in BUILTIN_MODULES:
        module = importlib.import_module(module_name)
        for kernel in module.KERNELS:
            registry[kernel.name] = kernel
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            kernels = _as_kernels(ep.load())
        except Exception as exc:  # a broken plug-in must not break symbench
            kernels = [_BrokenKernel(ep.name, f"entry point {ep.value} failed to load: {exc}")]
        for kernel in kernels:
            registry.setdefault(kernel.name, kernel)  # built-ins win over plug-ins
    return registry


def all_kernels() -> dict[str, Kernel]:
    """Every registered kernel by name, built-ins first."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = _load()
    return _REGISTRY


def register(kernel: Kernel) -> None:
    """Add a kernel at run time (tests, notebooks); an existing name is replaced."""
    all_kernels()[kernel.name] = kernel


def unregister(name: str) -> None:
    all_kernels().pop(name, None)


def get(name: str) -> Kernel:
    """The kernel called ``name``; an unknown name lists the valid ones."""
    registry = all_kernels()
    try:
        return registry[name]
    except KeyError:
        raise KernelError(f"unknown kernel {name!r}; valid kernels: {', '.join(registry)}") from None


def resolve(patterns: Iterable[str]) -> list[Kernel]:
    """Kernels matching names, comma lists or globs (``'fft-*'``), in registry order, once each."""
    registry = all_kernels()
    wanted: set[str] = set()
    for raw in patterns:
        for pattern in (p.strip() for p in str(raw).split(",")):
            if not pattern:
                continue
            if any(ch in pattern for ch in "*?["):
                hits = fnmatch.filter(registry, pattern)
                if not hits:
                    raise KernelError(f"no kernel matches {pattern!r}; valid kernels: {', '.join(registry)}")
                wanted.update(hits)
            else:
                wanted.add(get(pattern).name)
    return [kernel for name, kernel in registry.items() if name in wanted]
