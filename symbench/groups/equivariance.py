"""``symbench verify`` for the group kernels: equivariance, the float64 reference, and agreement.

For every lift/gconv kernel, both groups it supports, float32 and float64,
odd and even k, ``valid`` and ``same``:

- **reference**: the kernel's output against :func:`symbench.groups.reference`
  (float64, built with ``rot90``/``flip`` and SciPy, independent of the index
  arrays the kernels use);
- **equivariance**: for every group element ``g``, ``layer(g.x) == g.layer(x)``
  where ``g`` acts on images by rotation/mirror and on feature maps over the
  group by rotation/mirror plus the permutation of the G axis. ``same`` with
  an even k is not exactly equivariant (no centred window exists; see
  :mod:`symbench.groups`), so it is checked against the reference only;
- **agreement**: ``gconv-direct`` against ``gconv-fft`` (and every other group
  kernel against ``gconv-direct``).

A failure names the op, group, case, element and the error against its tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from symbench.groups import get_group, reference
from symbench.kernels.base import Kernel, thread_limits
from symbench.problem import Problem
from symbench.reference import rel_err
from symbench.verify import Check, register_suite

DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class GroupCase:
    """One input shape: spatial side ``n``, filter side ``k``, mode, and channels."""

    n: int
    k: int
    mode: str
    batch: int = 1
    c_in: int = 2
    c_out: int = 2

    @property
    def label(self) -> str:
        parity = "even" if self.k % 2 == 0 else "odd"
        extra = f" b={self.batch} {self.c_in}->{self.c_out}"
        return f"n={self.n} k={self.k} ({parity} k) {self.mode}{extra}"


CASES = (
    GroupCase(9, 3, "valid", batch=2),
    GroupCase(10, 4, "valid"),
    GroupCase(7, 1, "valid"),
    GroupCase(8, 8, "valid"),
    GroupCase(11, 5, "same", c_in=3),
    GroupCase(8, 2, "same"),  # even k in same: reference only
)


def element_name(group: str, g: int) -> str:
    """``e``, ``rot90``, ..., ``mirror``, ``mirror*rot90``, ...: the element as a user reads it."""
    m, r = get_group(group).elements[g]
    rot = f"rot{90 * r}" if r else ""
    if not m:
        return rot or "e"
    return "mirror" + (f"*{rot}" if rot else "")


def _inputs(problem: Problem, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(problem.x_shape).astype(problem.dtype)
    w = rng.standard_normal(problem.h_shape).astype(problem.dtype)
    return x, w


def _run(kernel: Kernel, problem: Problem, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    with thread_limits(problem.threads):
        return kernel.run(problem, x, w)


def _check(kernel: Kernel, label: str, y: np.ndarray, y_ref: np.ndarray, tol: float, what: str) -> Check:
    err = rel_err(y, y_ref)
    if err <= tol:
        return Check(kernel.name, label, "ok", err, tol)
    size = f"rel_err {err:.3g} > {tol:.3g}" if math.isfinite(err) else f"shape {np.shape(y)} vs {y_ref.shape} or non-finite"
    return Check(kernel.name, label, "fail", err, tol, f"{what}: {size}")


def _partner(kernel: Kernel) -> Kernel | None:
    """The kernel this one must agree with: gconv-direct, or gconv-fft for gconv-direct itself."""
    from symbench.kernels.registry import all_kernels

    name = "gconv-fft" if kernel.name == "gconv-direct" else "gconv-direct"
    other = all_kernels().get(name)
    if other is None or other.unavailable_reason():
        return None
    return other


def suite(kernel: Kernel) -> Iterator[Check]:
    """Every check of one lift/gconv kernel (see the module docstring)."""
    partner = _partner(kernel)
    seed = 0
    for group in ("p4", "p4m"):
        grp = get_group(group)
        for op in ("lift", "gconv"):
            act_in = grp.act_image if op == "lift" else grp.act_gfeature
            for case in CASES:
                for dtype in DTYPES:
                    seed += 1
                    problem = Problem(op=op, group=group, dim=2, n=case.n, k=case.k, batch=case.batch,
                                      c_in=case.c_in, c_out=case.c_out, dtype=dtype, mode=case.mode)
                    if op not in kernel.ops or kernel.supports(problem):
                        continue
                    base = f"{op}/{group} {case.label} {dtype}"
                    x, w = _inputs(problem, seed)
                    tol = problem.tolerance()
                    try:
                        y = _run(kernel, problem, x, w)
                    except Exception as exc:  # report and go on: other cases still say something
                        yield Check(kernel.name, base, "error", message=f"{type(exc).__name__}: {exc}")
                        continue
                    yield _check(kernel, f"{base}: vs float64 reference", y, reference(problem, x, w), tol,
                                 f"{op}/{group} differs from the float64 reference")
                    if partner is not None and partner.supports(problem) is None:
                        y_other = _run(partner, problem, x, w)
                        yield _check(kernel, f"{base}: agrees with {partner.name}", y, y_other.astype(np.float64),
                                     2 * tol, f"{op}/{group} disagrees with {partner.name}")
                    if case.mode == "same" and case.k % 2 == 0:
                        continue  # not exactly equivariant by construction (see groups.py)
                    y64 = y.astype(np.float64)
                    for g in range(grp.order):
                        name = element_name(group, g)
                        label = f"{base}: equivariance under {name}"
                        try:
                            y_g = _run(kernel, problem, act_in(g, x), w)
                        except Exception as exc:
                            yield Check(kernel.name, label, "error", message=f"{type(exc).__name__}: {exc}")
                            continue
                        yield _check(kernel, label, y_g, grp.act_gfeature(g, y64), 2 * tol,
                                     f"{op}/{group} not equivariant under element {name} (index {g})")


_REGISTERED = False


def register() -> None:
    """Add :func:`suite` to ``symbench verify`` for ops lift and gconv (once)."""
    global _REGISTERED
    if not _REGISTERED:
        register_suite(("lift", "gconv"), suite)
        _REGISTERED = True
