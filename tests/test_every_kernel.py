"""Every registered kernel, parametrised over the registry: a new kernel module is tested with no edit here.

The registry discovers the family modules under ``symbench/kernels/`` (and the
``symbench.kernels`` entry points), so the ids below grow with it. Each kernel
must describe itself, pass ``symbench verify`` (its results against the float64
reference, and equivariance for group kernels) and leave its inputs alone.
Unavailable kernels (a missing extra, no GPU) skip with their reason.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from symbench.kernels import Kernel, registry
from symbench.kernels.base import DEVICES, METHODS
from symbench.problem import OPS, Problem, make_inputs
from symbench.verify import verify

ROOT = Path(__file__).resolve().parent.parent
NAMES = list(registry.all_kernels())


def _kernel(name: str) -> Kernel:
    kernel = registry.get(name)
    if not kernel.available:
        pytest.skip(f"{name}: {kernel.unavailable_reason()}")
    return kernel


def _small_problem(kernel: Kernel) -> Problem | None:
    """A small problem the kernel supports, or None."""
    candidates = [Problem(op="conv", dim=d, n=24, k=5, batch=2, c_in=2, c_out=3, dtype=t, mode=m)
                  for d in (1, 2) for t in ("float64", "float32") for m in ("full", "same", "valid")]
    candidates += [Problem(op=op, group=g, dim=2, n=12, k=3, batch=1, c_in=2, c_out=2, dtype=t, mode="valid")
                   for op in ("lift", "gconv") for g in ("p4", "p4m") for t in ("float64", "float32")]
    return next((p for p in candidates if kernel.supports(p) is None), None)


@pytest.mark.parametrize("name", NAMES)
def test_kernel_describes_itself(name: str) -> None:
    kernel = registry.get(name)
    info = kernel.info()
    assert info["name"] == name and kernel.library and kernel.description
    assert kernel.method in METHODS and kernel.device in DEVICES
    assert kernel.ops and set(kernel.ops) <= set(OPS)
    # Unavailable is a state with a one-line reason, never an exception.
    assert info["available"] == (not info["reason"])
    assert "\n" not in info["reason"]


@pytest.mark.parametrize("name", NAMES)
def test_kernel_passes_verify(name: str) -> None:
    kernel = _kernel(name)
    checks = verify([kernel])
    ran = [c for c in checks if c.status != "skipped"]
    assert ran, f"no check ran for {name}: {[c.message for c in checks]}"
    bad = [c for c in ran if c.failed]
    assert not bad, bad[:3]


@pytest.mark.parametrize("name", NAMES)
def test_kernel_leaves_its_inputs_alone(name: str) -> None:
    kernel = _kernel(name)
    problem = _small_problem(kernel)
    if problem is None:
        pytest.skip(f"{name} supports none of the small problems")
    x, h = make_inputs(problem)
    x.setflags(write=False)  # a write would raise
    h.setflags(write=False)
    y = kernel.run(problem, x, h)
    assert y.shape[:2] == (problem.batch, problem.c_out)


def test_docs_kernel_table_matches_the_registry() -> None:
    """docs/kernels.md lists every built-in kernel once, and nothing else."""
    text = (ROOT / "docs" / "kernels.md").read_text()
    table = [line for line in text.splitlines() if re.match(r"\|\s*`[a-z0-9-]+`\s*\|", line)]
    listed = [re.match(r"\|\s*`([a-z0-9-]+)`", line).group(1) for line in table]
    builtin = [name for name, k in registry.all_kernels().items()
               if type(k).__module__.startswith("symbench.kernels.")]
    assert sorted(listed) == sorted(builtin)
