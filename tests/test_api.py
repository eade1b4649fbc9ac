"""symbench.convolve: SciPy's semantics through any kernel; load()."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

import symbench
from symbench.errors import SymbenchError


@pytest.mark.parametrize("kernel", [None, "direct", "direct-numpy", "fft-scipy", "fft-pyfftw", "auto-scipy"])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_convolve_1d_matches_scipy(kernel, mode):
    rng = np.random.default_rng(0)
    for n, k in [(100, 7), (7, 100), (1000, 64), (5, 5)]:
        x, h = rng.standard_normal(n), rng.standard_normal(k)
        y = symbench.convolve(x, h, mode=mode, kernel=kernel)
        ref = scipy.signal.convolve(x, h, mode=mode)
        assert y.shape == ref.shape and y.dtype == ref.dtype
        np.testing.assert_allclose(y, ref, atol=1e-10)


@pytest.mark.parametrize("kernel", [None, "direct", "fft-pyfftw", "auto-opencv"])
def test_convolve_2d_non_square(kernel):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((30, 17)).astype(np.float32)
    h = rng.standard_normal((5, 4)).astype(np.float32)
    for mode in ("full", "same", "valid"):
        y = symbench.convolve(x, h, mode=mode, kernel=kernel)
        ref = scipy.signal.convolve(x.astype(np.float64), h.astype(np.float64), mode=mode)
        assert y.shape == ref.shape and y.dtype == np.float32
        np.testing.assert_allclose(y, ref, atol=1e-4)


def test_convolve_integers_follow_scipy():
    y = symbench.convolve([1, 2, 3], [0, 1, 0.5])
    np.testing.assert_allclose(y, scipy.signal.convolve([1, 2, 3], [0, 1, 0.5]))
    yi = symbench.convolve(np.array([1, 2, 3]), np.array([1, 1]))
    assert yi.dtype == scipy.signal.convolve(np.array([1, 2, 3]), np.array([1, 1])).dtype


def test_convolve_complex_and_mixed_precision():
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(50) + 1j * rng.standard_normal(50))
    h = rng.standard_normal(9).astype(np.float32)
    y = symbench.convolve(x, h, mode="same")
    np.testing.assert_allclose(y, scipy.signal.convolve(x, h, mode="same"), atol=1e-12)


@pytest.mark.parametrize("args, kwargs, fragment", [
    (([1.0, 2.0], [1.0]), {"mode": "middle"}, "mode"),
    ((np.ones((3, 3)), np.ones(3)), {}, "1-D or both 2-D"),
    ((np.ones(3), np.ones(3)), {"kernel": "nope"}, "valid kernels"),
    ((np.ones((4, 4)), np.ones((4, 4))), {"kernel": "direct-numpy"}, "1-D"),
    ((np.ones((7, 3)), np.ones((3, 7))), {"mode": "valid"}, "valid mode"),
    ((np.ones(0), np.ones(3)), {}, "empty"),
    ((np.ones(3), np.ones(3)), {"kernel": ["direct"]}, "kernel name"),
    ((np.ones(3), np.ones(3)), {"mode": ["full"]}, "mode"),
    ((np.ones(3), np.ones(3)), {"threads": 0}, "threads"),
])
def test_convolve_errors(args, kwargs, fragment):
    with pytest.raises(SymbenchError, match=fragment):
        symbench.convolve(*args, **kwargs)


def test_cost_model_choice():
    from symbench.dispatch.selector import choose, model_times
    from symbench.problem import Problem

    small, big = Problem(n=100_000, k=3), Problem(n=100_000, k=4000)
    assert model_times(small)[0] < model_times(small)[1]
    assert model_times(big)[0] > model_times(big)[1]
    assert choose(small).startswith("direct") and choose(big).startswith("fft")


def test_lazy_import_keeps_help_fast():
    import subprocess
    import sys

    code = "import sys, symbench.cli; print(sorted(m for m in ('numpy','pandas','pyfftw','cv2','cupy') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
