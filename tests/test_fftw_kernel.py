"""``fft-pyfftw``: transform lengths, the length cache, and results with batches, channels and threads."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from symbench.kernels.base import KernelOptions
from symbench.problem import MODES, Problem, tolerance_for
from symbench.reference import conv_reference, rel_err
from synth import random_inputs

pytest.importorskip("pyfftw")

from symbench.kernels import fftw  # noqa: E402
from symbench.kernels.registry import get  # noqa: E402

FFTW = get("fft-pyfftw")


def _is_smooth(m: int, primes: tuple[int, ...]) -> bool:
    for p in primes:
        while m % p == 0:
            m //= p
    return m == 1


@pytest.mark.parametrize("primes", [(2, 3, 5), (2, 3, 5, 7), (2, 3, 5, 7, 11)])
def test_smooth_at_least_is_the_smallest_smooth_number(primes):
    for n in range(1, 400):
        m = fftw.smooth_at_least(n, primes)
        assert m >= n and _is_smooth(m, primes)
        assert not any(_is_smooth(c, primes) for c in range(n, m))


def test_smooth_at_least_known_values():
    assert fftw.smooth_at_least(1026, (2, 3, 5)) == 1080
    assert fftw.smooth_at_least(1026, (2, 3, 5, 7)) == 1029  # 3 * 7**3: the slow one
    assert fftw.smooth_at_least(262146, (2, 3, 5)) == 262440
    assert fftw.smooth_at_least(1024, (2, 3, 5)) == 1024


def test_length_candidates_run_up_to_the_five_smooth_length():
    cands = fftw.length_candidates(1026)
    assert cands == sorted(cands) and cands[-1] == 1080 and cands[0] == 1029
    assert all(c >= 1026 and _is_smooth(c, (2, 3, 5, 7, 11)) for c in cands)
    assert len(cands) <= fftw.MAX_CANDIDATES
    assert fftw.length_candidates(1024) == [1024]
    assert fftw.length_candidates(1) == [1]


def test_min_lengths_are_the_shortest_exact_circular_convolutions():
    # full needs n + k - 1; same drops the (k - 1) // 2 outputs cut at the start; valid needs n.
    assert fftw.min_lengths((100,), (7,), "full") == (106,)
    assert fftw.min_lengths((100,), (7,), "same") == (103,)
    assert fftw.min_lengths((100,), (7,), "valid") == (100,)
    assert fftw.min_lengths((5,), (12,), "valid") == (12,)   # SciPy's swap: the filter must fit
    assert fftw.min_lengths((1,), (12,), "same") == (12,)
    assert fftw.min_lengths((30, 20), (3, 4), "same") == (31, 22)


@pytest.mark.parametrize("n,k", [(37, 5), (64, 10), (10, 25)])
@pytest.mark.parametrize("mode", MODES)
def test_circular_convolution_at_min_length_is_exact(n, k, mode):
    # The claim behind min_lengths, checked with numpy's FFT independently of FFTW.
    rng = np.random.default_rng(n + k)
    x, h = rng.standard_normal(n), rng.standard_normal(k)
    (N,) = fftw.min_lengths((n,), (k,), mode)
    circ = np.fft.irfft(np.fft.rfft(x, N) * np.fft.rfft(h, N), N)
    from symbench.problem import crop_slices

    want = conv_reference(x[None, None], h[None, None], mode)[0, 0]
    np.testing.assert_allclose(circ[crop_slices((n,), (k,), mode)[0]], want, atol=1e-12)


@pytest.fixture
def fresh_lengths(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMBENCH_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(fftw, "_lengths", None)
    return tmp_path


def test_choose_length_measures_once_and_remembers(fresh_lengths, monkeypatch):
    timed = []

    def fake_time(length, real, double):
        timed.append(length)
        return {1029: 3.0, 1050: 1.0, 1056: 1.5, 1078: 2.0, 1080: 1.2}[length]  # 1050: > 10% faster

    monkeypatch.setattr(fftw, "_time_length", fake_time)
    assert fftw.choose_length(1026, real=True, double=False) == 1050
    assert sorted(timed) == [1029, 1050, 1056, 1078, 1080]
    assert fftw.choose_length(1026, real=True, double=False) == 1050
    assert len(timed) == 5  # remembered in the process
    stored = json.loads(fftw.lengths_path().read_text())["lengths"]
    assert stored == {"rf1026": 1050}
    # ... and on disk: a new process (simulated) does not measure again.
    monkeypatch.setattr(fftw, "_lengths", None)
    assert fftw.choose_length(1026, real=True, double=False) == 1050
    assert len(timed) == 5
    # Other kinds of transform are measured separately.
    fftw.choose_length(1026, real=False, double=True)
    assert len(timed) == 10


def test_the_five_smooth_length_stays_unless_another_is_clearly_faster(fresh_lengths, monkeypatch):
    monkeypatch.setattr(fftw, "_time_length", lambda length, real, double: 0.95 if length == 1050 else 1.0)
    assert fftw.choose_length(1026, real=True, double=False) == 1080


def test_a_damaged_length_cache_is_ignored(fresh_lengths, monkeypatch):
    fresh_lengths.mkdir(parents=True, exist_ok=True)
    fftw.lengths_path().write_text("{not json")
    monkeypatch.setattr(fftw, "_time_length", lambda length, real, double: 1.0 if length == 1029 else 2.0)
    assert fftw.choose_length(1026, real=True, double=True) == 1029


def test_time_length_really_times():
    assert 0 < fftw._time_length(64, real=True, double=True) < 1


# -- results ------------------------------------------------------------------------------

def check(x, h, mode, threads=1, planner="estimate"):
    sx, sh = x.shape[2:], h.shape[2:]
    problem = Problem(dim=len(sx), n=max(sx), k=max(sh), batch=x.shape[0], c_in=x.shape[1], c_out=h.shape[0],
                      dtype=np.result_type(x, h).name, mode=mode, threads=threads)
    y = FFTW.run(problem, x, h, KernelOptions(planner=planner))
    ref = conv_reference(x, h, mode)
    tol = tolerance_for(problem.dtype, x.shape[1] * math.prod(sh), math.prod(a + b - 1 for a, b in zip(sx, sh)))
    err = rel_err(y, ref)
    assert err <= tol, f"rel_err {err:.3g} > {tol:.3g} for x {x.shape} h {h.shape} {mode} threads={threads}"
    return y


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "complex128"])
@pytest.mark.parametrize("x_shape,h_shape", [
    ((1, 1, 50), (1, 1, 7)),
    ((3, 1, 40), (1, 1, 5)),            # batch: one filter spectrum for every item
    ((2, 3, 30), (4, 3, 6)),            # 1-D channels
    ((1, 1, 20, 17), (1, 1, 5, 3)),     # 2-D, pruned filter transform
    ((2, 3, 12, 12), (5, 3, 3, 3)),     # 2-D channels
])
def test_results_match_scipy(x_shape, h_shape, dtype):
    x, h = random_inputs(x_shape, h_shape, dtype)
    for mode in MODES:
        check(x, h, mode)


def test_filter_as_tall_as_the_transform_is_not_pruned():
    x, h = random_inputs((1, 1, 4, 4), (1, 1, 9, 9), "float64")
    problem = Problem(dim=2, n=4, k=9, dtype="float64", mode="valid")
    prepared = FFTW.prepare(problem, x, h, KernelOptions(planner="estimate"))
    assert prepared.notes["pruned_filter"] is False
    check(x, h, "valid")
    x, h = random_inputs((1, 1, 40, 40), (1, 1, 3, 3), "float64")
    prepared = FFTW.prepare(Problem(dim=2, n=40, k=3, mode="same"), x, h, KernelOptions(planner="estimate"))
    assert prepared.notes["pruned_filter"] is True


@pytest.mark.parametrize("x_shape,h_shape", [((1, 1, 3000), (1, 1, 31)), ((2, 4, 20, 20), (6, 4, 5, 5)),
                                             ((1, 1, 64, 64), (1, 1, 7, 7))])
def test_threads_split_the_work_and_agree(x_shape, h_shape):
    x, h = random_inputs(x_shape, h_shape, "float64")
    for mode in ("full", "same"):
        one = check(x, h, mode, threads=1)
        two = check(x, h, mode, threads=2)
        np.testing.assert_allclose(two, one, rtol=0, atol=1e-12 * np.abs(one).max())


def test_channel_mac_blocks_cover_every_frequency(monkeypatch):
    # Tiny blocks: many steps, split over three parts; the sum must not change.
    monkeypatch.setattr(fftw, "MAC_BLOCK_BYTES", 64)
    rng = np.random.default_rng(1)
    X = (rng.standard_normal((2, 3, 7, 5)) + 1j * rng.standard_normal((2, 3, 7, 5))).astype(np.complex128)
    H = (rng.standard_normal((4, 3, 7, 5)) + 1j * rng.standard_normal((4, 3, 7, 5))).astype(np.complex128)
    Y = np.zeros((2, 4, 7, 5), np.complex128)
    fns = fftw._channel_mac(X, H, Y, parts=3)
    assert len(fns) == 3
    for fn in fns:
        fn()
    np.testing.assert_allclose(Y, np.einsum("bi...,oi...->bo...", X, H), atol=1e-12)


def test_repeated_calls_and_close():
    x, h = random_inputs((2, 2, 16, 16), (3, 2, 3, 3), "float32")
    problem = Problem(dim=2, n=16, k=3, batch=2, c_in=2, c_out=3, dtype="float32", mode="same", threads=2)
    prepared = FFTW.prepare(problem, x, h, KernelOptions(planner="estimate"))
    prepared.call()
    first = prepared.result()
    prepared.call()
    np.testing.assert_array_equal(prepared.result(), first)
    prepared.close()
    prepared.close()  # twice is harmless


# -- wrapped 1-D lengths ---------------------------------------------------------------------

def test_wrapped_length_candidates():
    assert fftw.wrapped_length((262144,), (63,), (262206,)) == 262144
    assert fftw.wrapped_length((1000,), (7,), (1006,)) == 1000  # 1000 = 2**3 * 5**3
    assert fftw.wrapped_length((1000,), (7,), (1000,)) is None  # valid: nothing to gain
    assert fftw.wrapped_length((5,), (12,), (16,)) == 12
    assert fftw.wrapped_length((64, 64), (3, 3), (66, 66)) is None  # 1-D only


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128"])
@pytest.mark.parametrize("x_shape,h_shape", [((1, 1, 64), (1, 1, 9)), ((2, 3, 100), (4, 3, 31)),
                                             ((1, 1, 9), (1, 1, 16)), ((1, 1, 128), (1, 1, 128))])
@pytest.mark.parametrize("threads", [1, 2])
def test_wrapped_plans_are_exact(x_shape, h_shape, dtype, threads):
    x, h = random_inputs(x_shape, h_shape, dtype, seed=sum(x_shape))
    n, k = x_shape[-1], h_shape[-1]
    for mode in MODES:
        mins = fftw.min_lengths((n,), (k,), mode)
        wrapped = fftw.wrapped_length((n,), (k,), mins)
        if wrapped is None:
            continue
        problem = Problem(dim=1, n=n, k=k, batch=x_shape[0], c_in=x_shape[1], c_out=h_shape[0], dtype=dtype,
                          mode=mode, threads=threads)
        plan = fftw._Plan(problem, x, h, KernelOptions(planner="estimate"), wrapped)
        assert plan.notes["wrapped_outputs"] == n + k - 1 - wrapped > 0
        for _ in range(2):  # the buffers are reused: a second call must give the same
            plan.call()
            y = plan.result()
            ref = conv_reference(x, h, mode)
            tol = tolerance_for(dtype, x_shape[1] * k, n + k - 1)
            assert rel_err(y, ref) <= tol, (mode, rel_err(y, ref))
        plan.close()


def test_build_times_both_lengths_and_remembers(fresh_lengths, monkeypatch):
    problem = Problem(dim=1, n=1000, k=7, mode="full")
    x, h = random_inputs((1, 1, 1000), (1, 1, 7), "float64")
    times = iter([1.0, 0.5])  # exact, then wrapped: the wrapped one is faster
    monkeypatch.setattr(fftw, "_call_time", lambda call, budget=0.05: next(times))
    plan = fftw.build(problem, x, h, KernelOptions(planner="estimate"))
    assert plan.notes["fft_shape"] == (1000,) and plan.notes["wrapped_outputs"] == 6
    plan.close()
    # Remembered: no timing the second time (the iterator is exhausted).
    plan = fftw.build(problem, x, h, KernelOptions(planner="estimate"))
    assert plan.notes["fft_shape"] == (1000,)
    plan.close()
    # Not faster by 10%: the exact length stays.
    other = Problem(dim=1, n=1000, k=9, mode="full")
    x, h = random_inputs((1, 1, 1000), (1, 1, 9), "float64")
    times = iter([1.0, 0.95])
    monkeypatch.setattr(fftw, "_call_time", lambda call, budget=0.05: next(times))
    plan = fftw.build(other, x, h, KernelOptions(planner="estimate"))
    assert plan.notes["wrapped_outputs"] == 0 and plan.notes["fft_shape"][0] >= 1008
    plan.close()
