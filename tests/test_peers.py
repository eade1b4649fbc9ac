"""The peer kernels: PyTorch (direct-torch, fft-torch, gconv-torch and the CUDA twins), fft-opencv, direct-ndimage.

Every kernel against the float64 reference (:func:`symbench.problem.reference`)
over modes, dtypes and dims, including the shapes where mode conventions
bite (even k in ``same``, k > n in ``valid``). PyTorch tests are marked
``torch`` and skip without it (``make test`` has no PyTorch; ``make test-peers``
installs it); the OpenCV and ndimage tests run everywhere.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from symbench.kernels.registry import all_kernels, get
from symbench.problem import Problem
from symbench.reference import conv_reference, reference, rel_err
from synth import random_inputs

CONV_SHAPES = [
    # (x shape, h shape): channels, even k, k > n, non-square
    ((2, 3, 20), (2, 3, 5)),
    ((1, 1, 16), (1, 1, 4)),
    ((1, 1, 5), (1, 1, 12)),
    ((2, 2, 9, 9), (3, 2, 3, 3)),
    ((1, 2, 10, 10), (2, 2, 4, 4)),
    ((1, 1, 7, 12), (1, 1, 3, 4)),
    ((1, 1, 4, 4), (1, 1, 7, 7)),
]


def _problem(x: np.ndarray, h: np.ndarray, mode: str, dtype: str, threads: int = 1) -> Problem:
    sx, sh = x.shape[2:], h.shape[2:]
    return Problem(op="conv", dim=len(sx), n=max(sx), k=max(sh), batch=x.shape[0], c_in=x.shape[1],
                   c_out=h.shape[0], dtype=dtype, mode=mode, threads=threads)


def _check_conv(name: str, dtypes: tuple[str, ...], dims: tuple[int, ...] = (1, 2)) -> int:
    kernel = get(name)
    checked = 0
    for x_shape, h_shape in CONV_SHAPES:
        if len(x_shape) - 2 not in dims:
            continue
        for dtype in dtypes:
            x, h = random_inputs(x_shape, h_shape, dtype, seed=len(x_shape) + h_shape[-1])
            for mode in ("full", "same", "valid"):
                problem = _problem(x, h, mode, dtype)
                assert kernel.supports(problem) is None, (name, problem.label())
                y = kernel.run(problem, x, h)
                assert y.dtype == np.dtype(dtype)
                err = rel_err(y, conv_reference(x, h, mode))
                assert err <= problem.tolerance(), (name, x_shape, h_shape, dtype, mode, err)
                checked += 1
    return checked


def test_peer_modules_are_registered():
    names = set(all_kernels())
    assert {"direct-torch", "fft-torch", "gconv-torch", "direct-torch-cuda", "auto-torch-cuda",
            "fft-torch-cuda", "fft-opencv", "direct-ndimage"} <= names


# -- PyTorch ----------------------------------------------------------------------------------

@pytest.mark.torch
def test_direct_torch_matches_reference():
    pytest.importorskip("torch")
    assert _check_conv("direct-torch", ("float32", "float64")) == 42


@pytest.mark.torch
def test_direct_torch_skips_complex_with_a_reason():
    pytest.importorskip("torch")
    reason = get("direct-torch").supports(Problem(dim=2, n=8, k=3, dtype="complex64", mode="same"))
    assert reason and "complex64" in reason


@pytest.mark.torch
def test_fft_torch_matches_reference_real_and_complex():
    pytest.importorskip("torch")
    assert _check_conv("fft-torch", ("float32", "float64", "complex64", "complex128")) == 84


@pytest.mark.torch
def test_mode_padding_reproduces_scipy():
    from symbench.kernels.torch_conv import mode_padding

    assert mode_padding((10,), (4,), "full") == [(3, 3)]
    assert mode_padding((10,), (4,), "same") == [(2, 1)]  # k//2 before, (k-1)//2 after
    assert mode_padding((10,), (4,), "valid") == [(0, 0)]
    assert mode_padding((5,), (12,), "valid") == [(7, 7)]  # SciPy's swap: k - n on both sides


@pytest.mark.torch
@pytest.mark.parametrize("name", ["direct-torch", "fft-torch", "gconv-torch"])
def test_torch_threads_are_set_in_the_call_and_restored(name, monkeypatch):
    torch = pytest.importorskip("torch")
    seen: list[int] = []
    F = torch.nn.functional
    for fn in ("conv2d", "pad"):
        original = getattr(F, fn)
        monkeypatch.setattr(F, fn, lambda *a, _o=original, **kw: (seen.append(torch.get_num_threads()), _o(*a, **kw))[1])
    original_rfftn = torch.fft.rfftn
    monkeypatch.setattr(torch.fft, "rfftn",
                        lambda *a, **kw: (seen.append(torch.get_num_threads()), original_rfftn(*a, **kw))[1])
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    if name == "gconv-torch":
        problem = Problem(op="lift", group="p4", dim=2, n=8, k=3, c_in=2, c_out=2, dtype="float32",
                          mode="valid", threads=wanted)
    else:
        problem = Problem(dim=2, n=8, k=3, c_in=2, c_out=2, dtype="float32", mode="same", threads=wanted)
    x, h = random_inputs(problem.x_shape, problem.h_shape, "float32")
    prepared = get(name).prepare(problem, x, h)
    torch.set_num_threads(before)  # whatever happened since, the call itself must set it
    prepared.call()
    assert seen and set(seen) == {wanted}
    assert prepared.notes["threads"] == wanted
    prepared.close()
    assert torch.get_num_threads() == before


@pytest.mark.torch
@pytest.mark.parametrize("group", ["p4", "p4m"])
@pytest.mark.parametrize("op", ["lift", "gconv"])
@pytest.mark.parametrize("mode,n,k", [("valid", 9, 3), ("valid", 10, 4), ("same", 9, 5), ("same", 8, 2)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gconv_torch_matches_reference_and_gconv_direct(group, op, mode, n, k, dtype):
    pytest.importorskip("torch")
    problem = Problem(op=op, group=group, dim=2, n=n, k=k, batch=2, c_in=2, c_out=3, dtype=dtype, mode=mode)
    x, w = random_inputs(problem.x_shape, problem.h_shape, dtype, seed=n * k)
    y = get("gconv-torch").run(problem, x, w)
    assert y.shape == problem.out_shape and y.dtype == np.dtype(dtype)
    assert rel_err(y, reference(problem, x, w)) <= problem.tolerance()
    assert rel_err(y, get("gconv-direct").run(problem, x, w).astype(np.float64)) <= 2 * problem.tolerance()


@pytest.mark.torch
def test_gconv_torch_is_verified_for_equivariance():
    pytest.importorskip("torch")
    from symbench.verify import verify

    checks = verify([get("gconv-torch")])
    assert checks and all(c.status == "ok" for c in checks), [c for c in checks if c.status != "ok"][:3]
    assert any("equivariance under mirror*rot90" in c.case for c in checks)


@pytest.mark.torch
@pytest.mark.parametrize("name", ["direct-torch-cuda", "auto-torch-cuda", "fft-torch-cuda"])
def test_cuda_twins_unavailable_without_a_gpu(name):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    kernel = type(get(name))()  # a fresh instance: availability is cached per instance
    assert kernel.device == "gpu"
    assert "torch.cuda sees no GPU" in kernel.unavailable_reason()


@pytest.mark.parametrize("name", ["direct-torch", "fft-torch", "gconv-torch", "direct-torch-cuda",
                                  "auto-torch-cuda", "fft-torch-cuda"])
def test_torch_kernels_say_torch_is_missing(name, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    kernel = type(get(name))()
    reason = kernel.unavailable_reason()
    assert reason and "torch" in reason


def test_cuda_twins_methods():
    assert get("direct-torch-cuda").method == "direct"
    assert get("auto-torch-cuda").method == "auto"
    assert get("fft-torch-cuda").method == "fft"


# -- OpenCV DFT -------------------------------------------------------------------------------

def test_fft_opencv_matches_reference():
    pytest.importorskip("cv2")
    assert _check_conv("fft-opencv", ("float32", "float64"), dims=(2,)) == 24


def test_fft_opencv_uses_get_optimal_dft_size():
    cv2 = pytest.importorskip("cv2")
    problem = Problem(dim=2, n=50, k=9, c_in=2, c_out=2, dtype="float32", mode="same")
    x, h = random_inputs(problem.x_shape, problem.h_shape, "float32")
    prepared = get("fft-opencv").prepare(problem, x, h)
    expected = cv2.getOptimalDFTSize(50 + 9 - 1)
    assert prepared.notes["dft_shape"] == [expected, expected]
    assert expected >= 58 and expected == 60  # 58 is not 2,3,5-smooth; 60 is
    prepared.close()


def test_fft_opencv_rejects_1d_and_complex():
    kernel = get("fft-opencv")
    assert "2-D" in kernel.supports(Problem(dim=1, n=64, k=3))
    assert "complex64" in kernel.supports(Problem(dim=2, n=16, k=3, dtype="complex64"))


# -- scipy.ndimage ----------------------------------------------------------------------------

def test_direct_ndimage_matches_reference():
    assert _check_conv("direct-ndimage", ("float32", "float64", "complex64", "complex128")) == 84


def test_ndimage_origin_centres_even_filters_as_scipy_signal():
    import scipy.ndimage as ndi
    import scipy.signal

    from symbench.kernels.ndimage import ndimage_origin

    x = np.arange(12.0) ** 1.5
    for k in range(1, 8):
        v = np.linspace(1.0, 2.0, k)
        y = ndi.convolve1d(x, v, mode="constant", cval=0.0, origin=ndimage_origin(k))
        np.testing.assert_allclose(y, scipy.signal.convolve(x, v, "same"))
    # The default origin (0) is off by one for even k: that is what the origin corrects.
    v = np.array([1.0, 2.0, 3.0, 4.0])
    assert not np.allclose(ndi.convolve1d(x, v, mode="constant"), scipy.signal.convolve(x, v, "same"))


def test_direct_ndimage_skips_nothing_it_can_express_exactly():
    # Every mode is exact (full by padding, valid by cropping same or full), so no problem of
    # op conv gets a skip reason; other ops are declined with one.
    kernel = get("direct-ndimage")
    for mode in ("full", "same", "valid"):
        for dim, n, k in ((1, 16, 4), (1, 5, 12), (2, 10, 4), (2, 4, 7)):
            assert kernel.supports(Problem(dim=dim, n=n, k=k, mode=mode)) is None
    reason = kernel.supports(Problem(op="lift", group="p4", dim=2, n=8, k=3, dtype="float32", mode="valid"))
    assert reason and "conv" in reason
