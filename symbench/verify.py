"""Correctness checks of kernels on small edge cases (``symbench verify``).

Each *suite* is a function ``suite(kernel) -> iterable of Check`` for the
kernels of some op; this module holds the ``conv`` suite, and the group
kernels add their equivariance suite with :func:`register_suite`. A check
compares a kernel's result with a float64 reference (``rel_err`` against a
tolerance that depends on dtype and size) or checks a property such as
equivariance; a failure says which case and how large the error was.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from symbench.errors import SymbenchError
from symbench.kernels.base import Kernel, thread_limits
from symbench.problem import MODES, Problem, tolerance_for
from symbench.reference import conv_reference, rel_err


@dataclass(frozen=True)
class Check:
    """The outcome of one check of one kernel."""

    kernel: str
    case: str
    status: str  # ok | fail | skipped | error
    rel_err: float = math.nan
    tolerance: float = math.nan
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.status in ("fail", "error")


Suite = Callable[[Kernel], Iterable[Check]]
_SUITES: list[tuple[tuple[str, ...], Suite]] = []


def register_suite(ops: Sequence[str], suite: Suite) -> None:
    """Run ``suite`` on every kernel that computes one of ``ops``."""
    _SUITES.append((tuple(ops), suite))


# -- the conv suite ----------------------------------------------------------------------

@dataclass(frozen=True)
class ConvCase:
    name: str
    x_shape: tuple[int, ...]  # canonical (B, C_in, *spatial)
    h_shape: tuple[int, ...]  # canonical (C_out, C_in, *kspatial)
    strided: bool = False


def conv_cases() -> list[ConvCase]:
    """Edge cases every conv kernel must get right, in 1-D and 2-D."""
    cases = [
        ConvCase("1-D n=1 k=1", (1, 1, 1), (1, 1, 1)),
        ConvCase("1-D n=1 k=4", (1, 1, 1), (1, 1, 4)),
        ConvCase("1-D n=9 k=1", (1, 1, 9), (1, 1, 1)),
        ConvCase("1-D n=16 k=4 (even k)", (1, 1, 16), (1, 1, 4)),
        ConvCase("1-D n=33 k=7", (1, 1, 33), (1, 1, 7)),
        ConvCase("1-D n=5 k=12 (k > n)", (1, 1, 5), (1, 1, 12)),
        ConvCase("1-D n=40 k=6 strided", (1, 1, 40), (1, 1, 6), strided=True),
        ConvCase("1-D batch 2, 3->2 channels", (2, 3, 20), (2, 3, 5)),
        ConvCase("2-D 1x1 * 1x1", (1, 1, 1, 1), (1, 1, 1, 1)),
        ConvCase("2-D 9x9 k=3", (1, 1, 9, 9), (1, 1, 3, 3)),
        ConvCase("2-D 10x10 k=4 (even k)", (1, 1, 10, 10), (1, 1, 4, 4)),
        ConvCase("2-D 7x12 * 3x4 (non-square)", (1, 1, 7, 12), (1, 1, 3, 4)),
        ConvCase("2-D 4x4 k=7 (k > n)", (1, 1, 4, 4), (1, 1, 7, 7)),
        ConvCase("2-D 12x10 * 3x3 strided", (1, 1, 12, 10), (1, 1, 3, 3), strided=True),
        ConvCase("2-D batch 2, 2->3 channels", (2, 2, 8, 8), (3, 2, 3, 3)),
    ]
    return cases


def _valid_possible(sx: Sequence[int], sh: Sequence[int]) -> bool:
    return all(a >= b for a, b in zip(sx, sh)) or all(b >= a for a, b in zip(sx, sh))


def case_inputs(case: ConvCase, dtype: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs of a case; ``strided`` ones are non-contiguous views."""
    rng = np.random.default_rng(seed)

    def draw(shape: tuple[int, ...]) -> np.ndarray:
        a = rng.standard_normal(shape)
        if dtype.startswith("complex"):
            a = a + 1j * rng.standard_normal(shape)
        return a.astype(dtype)

    if case.strided:
        big = draw(case.x_shape[:-1] + (2 * case.x_shape[-1],))
        x = big[..., ::2]
    else:
        x = draw(case.x_shape)
    return x, draw(case.h_shape)


def conv_suite(kernel: Kernel) -> Iterator[Check]:
    """Every conv edge case, mode and dtype the kernel supports, against SciPy in float64."""
    for case, mode, dtype in itertools.product(conv_cases(), MODES, ("float32", "float64", "complex64", "complex128")):
        sx, sh = case.x_shape[2:], case.h_shape[2:]
        label = f"{case.name} {mode} {dtype}"
        if mode == "valid" and not _valid_possible(sx, sh):
            continue
        problem = Problem(op="conv", dim=len(sx), n=max(sx), k=max(sh), batch=case.x_shape[0],
                          c_in=case.x_shape[1], c_out=case.h_shape[0], dtype=dtype, mode=mode)
        reason = kernel.supports(problem)
        if reason:
            continue
        x, h = case_inputs(case, dtype)
        y_ref = conv_reference(x, h, mode)
        tol = tolerance_for(dtype, case.x_shape[1] * math.prod(sh),
                            math.prod(a + b - 1 for a, b in zip(sx, sh)))
        yield compare(kernel, problem, x, h, y_ref, tol, label)


def compare(kernel: Kernel, problem: Problem, x: np.ndarray, h: np.ndarray, y_ref: np.ndarray,
            tol: float, label: str) -> Check:
    """Run ``kernel`` once and compare with ``y_ref``; a crash is an ``error`` check."""
    try:
        with thread_limits(problem.threads):
            y = kernel.run(problem, x, h)
    except Exception as exc:  # report, don't crash: the next kernel still gets checked
        return Check(kernel.name, label, "error", message=f"{type(exc).__name__}: {exc}")
    err = rel_err(y, y_ref)
    if err <= tol:
        return Check(kernel.name, label, "ok", err, tol)
    msg = (f"rel_err {err:.3g} > {tol:.3g}" if math.isfinite(err)
           else f"shape {np.shape(y)} != {y_ref.shape} or non-finite output")
    return Check(kernel.name, label, "fail", err, tol, msg)


register_suite(("conv",), conv_suite)


def verify(kernels: Iterable[Kernel]) -> list[Check]:
    """Run every applicable suite on every kernel; unavailable kernels give one ``skipped`` check."""
    checks: list[Check] = []
    for kernel in kernels:
        reason = kernel.unavailable_reason()
        if reason:
            checks.append(Check(kernel.name, "availability", "skipped", message=reason))
            continue
        ran = False
        for ops, suite in _SUITES:
            if set(ops) & set(kernel.ops):
                ran = True
                checks.extend(suite(kernel))
        if not ran:
            checks.append(Check(kernel.name, "suites", "skipped", message="no check applies to its ops"))
    return checks


def require_kernels(kernels: Sequence[Kernel]) -> None:
    if not kernels:
        raise SymbenchError("no kernel to verify; see symbench kernels")
