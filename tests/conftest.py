"""Shared fixtures: an isolated cache directory and a way to run the CLI in-process."""

from __future__ import annotations

import io
import os
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # FFTW wisdom and tuned tables go to a per-session temp dir, never the user's cache.
    cache = tmp_path_factory.getbasetemp() / "symbench-cache"
    monkeypatch.setenv("SYMBENCH_CACHE_DIR", str(cache))
    # Text written to a pipe follows $COLUMNS; pytest-xdist workers set it to 80, which
    # would make in-process output depend on how the suite was started.
    monkeypatch.delenv("COLUMNS", raising=False)
    # The pre-flight's steal sample sleeps 0.2 s per run; tests that make many runs skip the wait.
    monkeypatch.setattr("symbench.sweep.runner.PREFLIGHT_STEAL_S", 0.0)


@pytest.fixture(autouse=True)
def _fresh_gpu_probe():
    # A test that fakes the GPU's presence or absence must not leak it into the next one.
    yield
    from symbench.machine import gpu

    gpu.assume(False)


@pytest.fixture
def kernel_registry():
    """The kernel registry, restored as it was after the test (register test kernels freely)."""
    from symbench.kernels import registry

    with registry.temporary() as kernels:
        yield kernels


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli():
    """Run ``symbench ARGS`` in-process; returns exit code, stdout and stderr."""
    from symbench.cli import main

    def run(*args: str) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main([str(a) for a in args])
        return CliResult(code, out.getvalue(), err.getvalue())

    return run


def gpu_available() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if gpu_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
