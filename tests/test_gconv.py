"""The group-convolution kernels, their xp core, symbench.gconv and the equivariance suite."""

from __future__ import annotations

import inspect
import itertools

import numpy as np
import pytest

import symbench
from symbench.groups.equivariance import element_name, suite
from symbench.errors import SymbenchError
from symbench.groups import get_group
from symbench.kernels.impl import gconv_core as core
from symbench.dispatch.costs import choose_gconv as choose
from symbench.kernels.gconv import GconvDirect, GconvFFT
from symbench.kernels.registry import all_kernels, get, register, unregister
from symbench.problem import Problem
from symbench.verify import verify

from test_groups import slow_layer

KERNELS = ("gconv-direct", "gconv-fft", "gconv-fft-unshared")


def _inputs(op: str, group: str, B: int, ci: int, co: int, n1: int, n2: int, k: int, dtype: str = "float64",
            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gax = (get_group(group).order,) if op == "gconv" else ()
    x = rng.standard_normal((B, ci, *gax, n1, n2)).astype(dtype)
    w = rng.standard_normal((co, ci, *gax, k, k)).astype(dtype)
    return x, w


def _tol(dtype: str) -> float:
    return 1e-10 if dtype == "float64" else 2e-5


# -- against the literal equations ------------------------------------------------------------

@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("group", ["p4", "p4m"])
@pytest.mark.parametrize("op", ["lift", "gconv"])
@pytest.mark.parametrize("mode", ["valid", "same"])
def test_kernels_match_slow_reference(kernel, group, op, mode):
    for k, dtype in ((3, "float64"), (4, "float32"), (1, "float64"), (2, "float32")):
        x, w = _inputs(op, group, 2, 2, 3, 7, 7, k, dtype, seed=k)
        y = symbench.gconv(x, w, group=group, mode=mode, kernel=kernel)
        ref = slow_layer(group, op, x.astype(float), w.astype(float), mode)
        assert y.shape == ref.shape
        assert y.dtype == np.dtype(dtype)
        err = np.abs(y - ref).max() / np.abs(ref).max()
        assert err < _tol(dtype), (k, dtype, err)


@pytest.mark.parametrize("strategy", core.STRATEGIES)
@pytest.mark.parametrize("fft_size", [None, 15, 18])
@pytest.mark.parametrize("group", ["p4", "p4m"])
@pytest.mark.parametrize("op", ["lift", "gconv"])
def test_core_fft_strategies_and_sizes(strategy, fft_size, group, op):
    """Both strategies, odd and even FFT sides (Nyquist or not), batch and non-square input."""
    for mode, k in (("valid", 3), ("same", 4), ("same", 5)):
        x, w = _inputs(op, group, 3, 2, 2, 8, 6, k, seed=k)
        plan = core.make_plan(group, op, x.shape, w.shape, mode, strategy=strategy, fft_size=fft_size)
        assert plan.strategy == strategy and plan.N == (fft_size or plan.N)
        y = core.gconv_fft(np, x, w, plan)
        ref = slow_layer(group, op, x, w, mode)
        np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(core.gconv_fft_unshared(np, x, w, plan), ref, rtol=1e-10, atol=1e-10)


def test_fft_size_must_cover_padded_input():
    with pytest.raises(ValueError, match="smaller than the padded input"):
        core.make_plan("p4", "lift", (1, 1, 8, 8), (1, 1, 5, 5), "same", fft_size=10)


@pytest.mark.parametrize("op", ["lift", "gconv"])
def test_core_direct_split_into_several_gemms(op):
    x, w = _inputs(op, "p4m", 2, 2, 2, 9, 9, 5)
    plan = core.make_plan("p4m", op, x.shape, w.shape, "same", fft=False, patch_budget=1)
    assert plan.tap_rows == tuple((a, a + 1) for a in range(5))  # one GEMM per filter row
    assert plan.N == 0 and plan.spec_index is None
    np.testing.assert_allclose(core.gconv_direct(np, x, w, plan), slow_layer("p4m", op, x, w, "same"),
                               rtol=1e-10, atol=1e-10)
    big = core.make_plan("p4m", op, x.shape, w.shape, "same", fft=False)
    assert big.tap_rows == ((0, 5),)  # one GEMM when the patches fit


def test_strategy_choice():
    # one image, several channels: permuting input and output moves less than |G| filter banks
    assert core.choose_strategy(4, 1, 1, 4, 8) == "input"
    # a large batch of few channels: the filter spectra are the smaller thing to permute
    assert core.choose_strategy(8, 1, 64, 1, 2) == "filter"


def test_core_keeps_to_the_array_namespace():
    """The xp contract: compute functions never call NumPy directly (so xp=cupy runs the same code)."""
    for fn in (core.gconv_direct, core.gconv_fft, core.gconv_fft_unshared, core.transform_filters,
               core.im2col, core.pad_input, core.rfft2_pruned, core._to_space, core._planes):
        src = inspect.getsource(fn)
        assert "np." not in src and "numpy" not in src, fn.__name__


def test_core_runs_on_a_minimal_namespace():
    """Only the functions named in the module contract are used from xp and fft."""
    import types

    import scipy.fft

    allowed = ("zeros", "empty", "take", "stack", "conj", "matmul", "ascontiguousarray", "asarray", "lib")
    xp = types.SimpleNamespace(**{name: getattr(np, name) for name in allowed})
    fft = types.SimpleNamespace(rfft=scipy.fft.rfft, fft=scipy.fft.fft, irfft2=scipy.fft.irfft2)
    xp.fft = fft
    for op, mode in (("lift", "same"), ("gconv", "valid")):
        x, w = _inputs(op, "p4", 2, 2, 2, 7, 7, 3)
        ref = slow_layer("p4", op, x, w, mode)
        for strategy in core.STRATEGIES:
            plan = core.make_plan("p4", op, x.shape, w.shape, mode, strategy=strategy)
            np.testing.assert_allclose(core.gconv_fft(xp, x, w, plan), ref, atol=1e-10)
            np.testing.assert_allclose(core.gconv_fft_unshared(xp, x, w, plan), ref, atol=1e-10)
            np.testing.assert_allclose(core.gconv_direct(xp, x, w, plan), ref, atol=1e-10)


def test_plan_to_numpy_is_identity():
    plan = core.make_plan("p4", "lift", (1, 1, 8, 8), (1, 1, 3, 3), "valid")
    assert plan.to(np) is plan


# -- equivariance, per kernel, op and group -----------------------------------------------------

@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("group", ["p4", "p4m"])
@pytest.mark.parametrize("op", ["lift", "gconv"])
def test_equivariance(kernel, group, op):
    grp = get_group(group)
    act_in = grp.act_image if op == "lift" else grp.act_gfeature
    for mode, k, dtype in (("valid", 3, "float64"), ("valid", 4, "float32"), ("same", 5, "float64")):
        x, w = _inputs(op, group, 1, 2, 2, 10, 10, k, dtype, seed=k)
        y = symbench.gconv(x, w, group=group, mode=mode, kernel=kernel)
        for g in range(grp.order):
            lhs = symbench.gconv(act_in(g, x), w, group=group, mode=mode, kernel=kernel)
            np.testing.assert_allclose(lhs, grp.act_gfeature(g, y), rtol=0, atol=_tol(dtype) * np.abs(y).max(),
                                       err_msg=f"{kernel} {op}/{group} k={k} {mode} element {g}")


@pytest.mark.parametrize("kernel", ["gconv-direct", "gconv-fft"])
def test_rotation_permutes_the_g_axis_cyclically(kernel):
    """Rotating the input by 90 degrees rotates every map and shifts the p4 axis by one."""
    x, w = _inputs("lift", "p4", 1, 1, 2, 9, 9, 3)
    y = symbench.gconv(x, w, group="p4", kernel=kernel)
    y_rot = symbench.gconv(np.rot90(x, 1, axes=(-2, -1)), w, group="p4", kernel=kernel)
    for r in range(4):
        np.testing.assert_allclose(y_rot[:, :, r], np.rot90(y[:, :, (r - 1) % 4], 1, axes=(-2, -1)), atol=1e-10)
    # a mirror swaps the rotation and the rotation-mirror halves of the p4m axis
    y = symbench.gconv(x, w, group="p4m", kernel=kernel)
    y_mir = symbench.gconv(np.flip(x, -1), w, group="p4m", kernel=kernel)
    for r in range(4):
        np.testing.assert_allclose(y_mir[:, :, r], np.flip(y[:, :, 4 + r], -1), atol=1e-10)


def test_kernels_agree_float32():
    x, w = _inputs("gconv", "p4m", 1, 2, 3, 16, 16, 7, "float32")
    a = symbench.gconv(x, w, group="p4m", kernel="gconv-direct")
    b = symbench.gconv(x, w, group="p4m", kernel="gconv-fft")
    assert np.abs(a - b).max() / np.abs(a).max() < 1e-5


# -- symbench.gconv ---------------------------------------------------------------------------------

def test_api_shapes_and_dtypes():
    x, w = _inputs("lift", "p4", 2, 3, 5, 13, 13, 5)
    assert symbench.gconv(x, w).shape == (2, 5, 4, 9, 9)
    assert symbench.gconv(x, w, group="p4m", mode="same").shape == (2, 5, 8, 13, 13)
    xg, wg = _inputs("gconv", "p4m", 2, 3, 4, 13, 13, 5)
    assert symbench.gconv(xg, wg, group="p4m").shape == (2, 4, 8, 9, 9)
    # non-square images are fine (the filter must be square)
    assert symbench.gconv(x[..., :11], w).shape == (2, 5, 4, 9, 7)
    # integers compute in float64; float32 stays float32; mixed goes to float64
    assert symbench.gconv(np.ones((1, 1, 5, 5), dtype=int), np.ones((1, 1, 3, 3), dtype=int)).dtype == np.float64
    assert symbench.gconv(x.astype(np.float32), w.astype(np.float32)).dtype == np.float32
    assert symbench.gconv(x.astype(np.float32), w).dtype == np.float64
    # strided views work
    big = np.random.default_rng(0).standard_normal((1, 3, 26, 26))
    np.testing.assert_allclose(symbench.gconv(big[..., ::2, ::2], w, kernel="gconv-fft"),
                               symbench.gconv(big[..., ::2, ::2].copy(), w, kernel="gconv-direct"), atol=1e-10)


def test_api_default_kernel_is_chosen_by_model():
    small = Problem(op="lift", group="p4", dim=2, n=32, k=3, c_in=4, c_out=8, dtype="float32", mode="valid")
    large = Problem(op="gconv", group="p4m", dim=2, n=64, k=31, c_in=8, c_out=8, dtype="float32", mode="valid")
    assert choose(small) == "gconv-direct"
    assert choose(large) == "gconv-fft"
    x, w = _inputs("lift", "p4", 1, 1, 1, 6, 6, 3)
    np.testing.assert_allclose(symbench.gconv(x, w), slow_layer("p4", "lift", x, w, "valid"), atol=1e-10)


@pytest.mark.parametrize("x_shape, w_shape, kwargs, match", [
    ((1, 2, 8, 8), (3, 4, 3, 3), {}, "channel mismatch: x has C_in=2"),
    ((1, 2, 4, 8, 8), (3, 2, 8, 3, 3), {"group": "p4"}, "G axis of 4"),
    ((1, 2, 8, 8, 8), (3, 2, 8, 3, 3), {"group": "p4"}, "G axis of 4"),
    ((1, 2, 4, 8, 8), (3, 2, 4, 3, 3), {"group": "p4m"}, "G axis of 8"),
    ((1, 2, 8, 8), (3, 2, 3, 3), {"group": "p6"}, "unknown group 'p6'; allowed: p4, p4m"),
    ((2, 8, 8), (3, 2, 3, 3), {}, "must be 4-D .* or 5-D"),
    ((1, 2, 8, 8), (3, 2, 4, 3, 3), {}, "got 4-D x and 5-D w"),
    ((8, 8), (3, 3), {}, "must be 4-D"),
    ((1, 2, 8, 8), (3, 2, 3, 4), {}, "must be square"),
    ((1, 2, 4, 4), (3, 2, 5, 5), {}, "valid mode needs the 5x5 filter to fit"),
    ((1, 2, 8, 8), (3, 2, 3, 3), {"mode": "full"}, "mode 'full' is not supported .* valid, same"),
    ((1, 2, 8, 8), (3, 2, 3, 3), {"kernel": "nope"}, "unknown kernel 'nope'"),
    ((1, 2, 8, 8), (3, 2, 3, 3), {"kernel": "fft-numpy"}, "cannot compute this"),
    ((0, 2, 8, 8), (3, 2, 3, 3), {}, "must not be empty"),
])
def test_api_bad_input(x_shape, w_shape, kwargs, match):
    with pytest.raises(SymbenchError, match=match):
        symbench.gconv(np.zeros(x_shape), np.zeros(w_shape), **kwargs)


def test_api_rejects_complex_and_objects():
    with pytest.raises(SymbenchError, match="real numbers"):
        symbench.gconv(np.zeros((1, 1, 5, 5), complex), np.zeros((1, 1, 3, 3)))
    with pytest.raises(SymbenchError, match="real numbers"):
        symbench.gconv(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3), dtype=object))


# -- the kernels as kernels --------------------------------------------------------------------------

def test_registered_with_methods_for_report_pairing():
    reg = all_kernels()
    for name, method in (("gconv-direct", "direct"), ("gconv-fft", "fft"), ("gconv-fft-unshared", "fft")):
        kern = reg[name]
        assert kern.method == method and set(kern.ops) == {"lift", "gconv"} and kern.available
    p = Problem(op="conv", dim=2, n=8, k=3)
    assert "not conv" in reg["gconv-fft"].supports(p)
    p = Problem(op="lift", group="p4", dim=2, n=8, k=3, dtype="float32", mode="same")
    assert reg["gconv-direct"].supports(p) is None


def test_memory_estimates_grow_with_the_problem():
    small = Problem(op="gconv", group="p4", dim=2, n=32, k=3, c_in=2, c_out=2, mode="valid")
    large = Problem(op="gconv", group="p4m", dim=2, n=128, k=9, c_in=8, c_out=8, mode="valid")
    for kern in (GconvDirect(), GconvFFT()):
        assert small.memory_bytes() < kern.memory_bytes(small) < kern.memory_bytes(large)


def test_prepare_notes():
    p = Problem(op="lift", group="p4", dim=2, n=16, k=5, c_in=1, c_out=2, mode="valid")
    x, w = _inputs("lift", "p4", 1, 1, 2, 16, 16, 5)
    prepared = get("gconv-fft").prepare(p, x, w)
    prepared.call()
    assert prepared.notes["fft_shape"] == [16, 16] and prepared.notes["strategy"] in core.STRATEGIES
    assert prepared.result().shape == p.out_shape


# -- the verify suite ---------------------------------------------------------------------------------

def test_suite_passes_and_covers_every_element():
    checks = list(suite(get("gconv-fft")))
    assert checks and not [c for c in checks if c.failed]
    labels = [c.case for c in checks]
    for group, G in (("p4", 4), ("p4m", 8)):
        for op in ("lift", "gconv"):
            for g in range(G):
                name = element_name(group, g)
                assert any(f"{op}/{group}" in lab and f"under {name}" in lab for lab in labels), (op, group, name)
    assert any("(even k) valid" in lab and "equivariance" in lab for lab in labels)
    assert any("(odd k) same" in lab and "equivariance" in lab for lab in labels)
    assert any("agrees with gconv-direct" in lab for lab in labels)
    assert any("vs float64 reference" in lab for lab in labels)


def test_element_names():
    assert [element_name("p4m", g) for g in range(8)] == [
        "e", "rot90", "rot180", "rot270", "mirror", "mirror*rot90", "mirror*rot180", "mirror*rot270"]


class _Misrotating(GconvDirect):
    """A broken kernel: it rotates its filters the wrong way round (the G axis is reversed)."""

    name = "gconv-test-misrotating"

    def compute(self, x, h, plan):
        y = super().compute(x, h, plan)
        G = plan.G
        order = [(-g) % 4 + 4 * (g // 4) for g in range(G)]
        return np.ascontiguousarray(y[:, :, order])


@pytest.fixture
def broken_kernel():
    kern = _Misrotating()
    register(kern)
    yield kern
    unregister(kern.name)


def test_suite_catches_a_broken_kernel(broken_kernel):
    checks = verify([broken_kernel])
    failed = [c for c in checks if c.failed]
    assert failed
    msgs = " | ".join(c.message for c in failed)
    assert "not equivariant under element rot90 (index 1)" in msgs
    assert "lift/p4" in msgs and "rel_err" in msgs
    # it is also caught against the reference and the other kernel
    assert any("differs from the float64 reference" in c.message for c in failed)
    assert any("disagrees with gconv-direct" in c.message for c in failed)


def test_cli_verify(cli, broken_kernel):
    ok = cli("verify", "--kernel", "gconv-direct,gconv-fft")
    assert ok.code == 0, ok.err
    bad = cli("verify", "--kernel", "gconv-test-*")
    assert bad.code == 1
    assert "not equivariant under element" in bad.err


def test_cli_sweep_lift_rows_ok(cli, tmp_path):
    import pandas as pd

    run = tmp_path / "run"
    res = cli("sweep", "--kernel", "gconv-direct,gconv-fft", "--op", "lift", "--group", "p4", "--dim", "2",
              "--n", "16", "--k", "3,5", "--c-in", "2", "--c-out", "2", "--dtype", "float32", "--repeat", "2",
              "--min-time", "0.0005", "--quiet", "--out", str(run))
    assert res.code == 0, res.err
    m = pd.read_csv(run / "measurements.csv")
    assert len(m) == 4 and (m.status == "ok").all()
    assert set(m.method) == {"direct", "fft"} and set(m.op) == {"lift"} and set(m.group) == {"p4"}
    assert (m["mode"] == "valid").all()


def test_bundled_config_is_valid():
    from pathlib import Path

    from symbench.config import load_config

    cfg = load_config(Path(__file__).resolve().parent.parent / "configs" / "gconv.toml")
    problems = [p for grid in cfg.grids for p in grid.problems()]
    assert {p.op for p in problems} == {"lift", "gconv"} and {p.group for p in problems} == {"p4", "p4m"}
    assert all(itertools.chain(g.kernel for g in cfg.grids))
