"""The kernel registry: every built-in kernel family plus third-party entry points.

Each family module directly under :mod:`symbench.kernels` exposes ``KERNELS``,
a list of :class:`~symbench.kernels.base.Kernel` instances. The modules are
*discovered*, as asv discovers its plug-ins: a new module that defines
``KERNELS`` is listed, verified and tested with no other edit. Modules whose
name starts with ``_``, the subpackage :mod:`symbench.kernels.impl` (shared
building blocks) and the protocol and registry modules are not families. The
registry is also the one source of kernel facts that other places once listed
by hand: the libraries a run records (:func:`required_modules`) and the
kernels the test suite parametrises over. Third parties register with
the entry-point group ``symbench.kernels`` (as pyperf's hooks do); an entry
point may name a Kernel instance, a Kernel subclass, or a callable returning
an iterable of kernels. A third-party kernel that fails to load is listed as
unavailable with the reason instead of breaking every command.
"""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
from contextlib import contextmanager
from importlib.metadata import entry_points
from typing import Iterable, Iterator

from symbench.errors import KernelError, did_you_mean
from symbench.kernels.base import Kernel

ENTRY_POINT_GROUP = "symbench.kernels"

#: Modules of the package that are not kernel families.
NOT_FAMILIES = frozenset({"base", "registry", "impl"})
#: The families that come first in ``symbench kernels`` (the order users know);
#: any other discovered module follows, by name. A new module needs no entry here.
LISTED_FIRST = ("cpu_direct", "cpu_fft", "fftw", "auto", "cupy_conv", "gconv", "cupy_gconv", "torch_conv",
                "torch_gconv", "opencv_fft", "ndimage")


def family_modules() -> list[str]:
    """The full names of the kernel family modules under :mod:`symbench.kernels`, in listing order."""
    import symbench.kernels as package

    names = [m.name for m in pkgutil.iter_modules(package.__path__)
             if not m.ispkg and not m.name.startswith("_") and m.name not in NOT_FAMILIES]
    rank = {name: i for i, name in enumerate(LISTED_FIRST)}
    names.sort(key=lambda name: (rank.get(name, len(rank)), name))
    return [f"{package.__name__}.{name}" for name in names]


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
    for module_name in family_modules():
        module = importlib.import_module(module_name)
        for kernel in getattr(module, "KERNELS", ()):
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


def reload() -> dict[str, Kernel]:
    """Discover the kernels again, in place (a plug-in installed into a running process)."""
    registry = all_kernels()
    fresh = _load()
    registry.clear()
    registry.update(fresh)
    return registry


def register(kernel: Kernel) -> None:
    """Add a kernel at run time (tests, notebooks); an existing name is replaced."""
    all_kernels()[kernel.name] = kernel


def unregister(name: str) -> None:
    """Remove a kernel added with :func:`register` (a missing name is ignored)."""
    all_kernels().pop(name, None)


@contextmanager
def temporary(*kernels: Kernel) -> Iterator[dict[str, Kernel]]:
    """Register ``kernels`` for the duration of a ``with`` block, then restore the registry as it was.

    Tests and notebooks use this instead of reaching into the registry's state::

        with registry.temporary(MyKernel()):
            run_sweep(...)
    """
    registry = all_kernels()
    saved = dict(registry)
    for kernel in kernels:
        registry[kernel.name] = kernel
    try:
        yield registry
    finally:
        registry.clear()
        registry.update(saved)


def required_modules() -> list[str]:
    """Every module some registered kernel needs, in registry order, once each.

    What a run records the versions of (with the core libraries), and what a
    dispatch table compares between the machine it was tuned on and this one.
    """
    seen: dict[str, None] = {}
    for kernel in all_kernels().values():
        for module in kernel.requires:
            seen.setdefault(module.split(".")[0], None)
    return list(seen)


def get(name: str) -> Kernel:
    """The kernel called ``name``; an unknown name lists the valid ones."""
    registry = all_kernels()
    try:
        return registry[name]
    except KeyError:
        raise KernelError(f"unknown kernel {name!r}{did_you_mean(name, registry)}; "
                          f"valid kernels: {', '.join(registry)}") from None


def resolve(patterns: Iterable[str]) -> list[Kernel]:
    """Kernels matching names, comma lists or globs (``'fft-*'``), in registry order, once each."""
    registry = all_kernels()
    wanted: set[str] = set()
    unknown: list[str] = []  # every bad name at once, not one per run
    for raw in patterns:
        for pattern in (p.strip() for p in str(raw).split(",")):
            if not pattern:
                continue
            if any(ch in pattern for ch in "*?["):
                hits = fnmatch.filter(registry, pattern)
                if not hits:
                    unknown.append(f"no kernel matches {pattern!r}")
                wanted.update(hits)
            elif pattern in registry:
                wanted.add(pattern)
            else:
                unknown.append(f"unknown kernel {pattern!r}{did_you_mean(pattern, registry)}")
    if unknown:
        raise KernelError(f"{'; '.join(unknown)}; valid kernels: {', '.join(registry)}")
    return [kernel for name, kernel in registry.items() if name in wanted]
