"""Problems: shapes, SciPy's modes, flops, tolerance and the reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal

from symbench.errors import ConfigError
from symbench.problem import Problem, conv_out_shape, crop_full, make_inputs, tolerance_for
from symbench.reference import conv_reference, rel_err


@pytest.mark.parametrize("n, k", [(10, 4), (10, 3), (4, 10), (5, 12), (1, 1), (1, 6), (7, 7)])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_crop_matches_scipy_1d(n, k, mode):
    rng = np.random.default_rng(0)
    x, h = rng.standard_normal(n), rng.standard_normal(k)
    full = np.convolve(x, h, "full")
    expect = scipy.signal.convolve(x, h, mode)
    got = crop_full(full, (n,), (k,), mode)
    assert got.shape == expect.shape == conv_out_shape((n,), (k,), mode)
    np.testing.assert_allclose(got, expect, atol=1e-12)


@pytest.mark.parametrize("sx, sh", [((7, 12), (3, 4)), ((3, 3), (5, 6)), ((8, 8), (8, 8))])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_crop_matches_scipy_2d(sx, sh, mode):
    rng = np.random.default_rng(1)
    x, h = rng.standard_normal(sx), rng.standard_normal(sh)
    full = scipy.signal.convolve(x, h, "full")
    np.testing.assert_allclose(crop_full(full, sx, sh, mode), scipy.signal.convolve(x, h, mode), atol=1e-12)


def test_valid_mixed_shapes_is_an_error():
    with pytest.raises(ConfigError, match="valid mode"):
        conv_out_shape((7, 3), (3, 7), "valid")


def test_problem_validation():
    with pytest.raises(ConfigError, match="n must be a positive integer"):
        Problem(n=0)
    with pytest.raises(ConfigError, match="dtype"):
        Problem(dtype="float16")
    with pytest.raises(ConfigError, match="needs a group"):
        Problem(op="lift", dim=2, mode="valid")
    with pytest.raises(ConfigError, match="2-D only"):
        Problem(op="lift", group="p4", dim=1, mode="valid")
    with pytest.raises(ConfigError, match="no group"):
        Problem(op="conv", group="p4")


def test_shapes_and_flops():
    p = Problem(dim=2, n=32, k=5, batch=2, c_in=3, c_out=4, dtype="float32", mode="same")
    assert p.x_shape == (2, 3, 32, 32) and p.h_shape == (4, 3, 5, 5) and p.out_shape == (2, 4, 32, 32)
    assert p.flops() == 2 * 2 * 4 * 3 * 32 * 32 * 25
    full = Problem(n=100, k=10, mode="full")
    assert full.flops() == 2 * 100 * 10
    swapped = Problem(n=10, k=100, mode="valid")
    assert swapped.out_spatial == (91,) and swapped.flops() == 2 * 91 * 10
    cplx = Problem(n=100, k=10, mode="valid", dtype="complex128")
    assert cplx.flops() == 8 * 91 * 10
    g = Problem(op="gconv", group="p4m", dim=2, n=16, k=3, mode="valid")
    assert g.x_shape == (1, 1, 8, 16, 16) and g.out_shape == (1, 1, 8, 14, 14)
    assert g.flops() == 2 * 14 * 14 * 9 * 8 * 8


def test_inputs_are_reproducible_and_order_independent():
    p, q = Problem(n=64, k=3), Problem(n=64, k=5)
    a1, _ = make_inputs(p, seed=3)
    make_inputs(q, seed=3)
    a2, _ = make_inputs(p, seed=3)
    np.testing.assert_array_equal(a1, a2)
    b, _ = make_inputs(p, seed=4)
    assert not np.array_equal(a1, b)
    x, h = make_inputs(Problem(n=8, k=2, dtype="complex64"))
    assert x.dtype == np.complex64 and np.abs(x.imag).sum() > 0


def test_reference_with_channels():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 20))
    h = rng.standard_normal((4, 3, 5))
    y = conv_reference(x, h, "same")
    for b in range(2):
        for o in range(4):
            expect = sum(scipy.signal.convolve(x[b, i], h[o, i], "same") for i in range(3))
            np.testing.assert_allclose(y[b, o], expect, atol=1e-12)


def test_rel_err_and_tolerance():
    ref = np.array([1.0, -2.0, 4.0])
    assert rel_err(ref, ref) == 0
    assert rel_err(ref + [0, 0, 0.4], ref) == pytest.approx(0.1)
    assert rel_err(ref[:2], ref) == math.inf
    assert rel_err(np.array([1.0, np.nan, 4.0]), ref) == math.inf
    assert tolerance_for("float32", 9, 1024) > tolerance_for("float64", 9, 1024) * 1e6
    assert tolerance_for("float64", 100, 1024) > tolerance_for("float64", 1, 1024)
    assert tolerance_for("float64", 513, 16896) < 1e-9
