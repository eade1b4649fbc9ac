"""The compiled ``direct`` kernel against SciPy: tile edges, strips, channels, threads, dtypes.

``symbench verify`` covers the documented edge cases; these tests aim at the
kernel's own structure: outputs just below, at and above a tile width (64
float32 / 32 float64 per 2-D tile row, 128 / 64 per 1-D tile), odd numbers
of output rows (tiles are row pairs), strips of 16 rows, fewer and more than
4 and 6 output channels (channel tiles are 4 or 6 wide), and the parallel drivers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from symbench.kernels.registry import get
from symbench.problem import MODES, Problem, tolerance_for
from symbench.reference import conv_reference, rel_err
from synth import random_inputs

pytest.importorskip("numba")

DIRECT = get("direct")


def _valid_possible(sx, sh):
    return all(a >= b for a, b in zip(sx, sh)) or all(b >= a for a, b in zip(sx, sh))


def check(x, h, mode, threads=1):
    """Run ``direct`` on canonical-layout inputs and compare with the float64 reference."""
    sx, sh = x.shape[2:], h.shape[2:]
    problem = Problem(op="conv", dim=len(sx), n=max(sx), k=max(sh), batch=x.shape[0], c_in=x.shape[1],
                      c_out=h.shape[0], dtype=np.result_type(x, h).name, mode=mode, threads=threads)
    y = DIRECT.run(problem, x, h)
    ref = conv_reference(x, h, mode)
    assert y.shape == ref.shape
    assert y.dtype == np.result_type(x, h)
    tol = tolerance_for(problem.dtype, x.shape[1] * math.prod(sh), math.prod(a + b - 1 for a, b in zip(sx, sh)))
    err = rel_err(y, ref)
    assert err <= tol, f"rel_err {err:.3g} > {tol:.3g} for x {x.shape} h {h.shape} {mode} threads={threads}"
    return y


# -- one signal, one filter ----------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [1, 7, 63, 64, 65, 127, 128, 129, 200])
@pytest.mark.parametrize("k", [1, 2, 5, 16, 70])
def test_plane1d_tile_edges(n, k, dtype):
    x, h = random_inputs((1, 1, n), (1, 1, k), dtype, seed=n * 100 + k)
    for mode in MODES:
        check(x, h, mode)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(1, 1), (1, 70), (2, 31), (3, 64), (16, 65), (17, 33), (33, 130), (40, 7)])
@pytest.mark.parametrize("kshape", [(1, 1), (3, 3), (2, 5), (6, 1), (7, 4), (11, 11)])
def test_plane2d_tile_and_strip_edges(shape, kshape, dtype):
    x, h = random_inputs((1, 1, *shape), (1, 1, *kshape), dtype, seed=sum(shape) * 31 + sum(kshape))
    for mode in MODES:
        if mode == "valid" and not _valid_possible(shape, kshape):
            continue
        check(x, h, mode)


def test_plane_batch_uses_every_item():
    x, h = random_inputs((3, 1, 50, 70), (1, 1, 5, 5), "float32")
    y = check(x, h, "same")
    assert not np.allclose(y[0], y[1])


def test_kernel_longer_than_signal_in_valid_mode_swaps_like_scipy():
    x, h = random_inputs((1, 1, 5, 9), (1, 1, 8, 20), "float64")
    y = check(x, h, "valid")
    assert y.shape == (1, 1, 4, 12)


def test_strided_and_read_only_inputs():
    big, h = random_inputs((1, 1, 40, 100), (1, 1, 3, 4), "float32")
    x = big[..., ::2]
    h = np.asfortranarray(h)
    x.setflags(write=False)
    check(x, h, "same")
    check(x, h, "full")


def test_plane_path_is_taken_for_one_channel():
    x, h = random_inputs((1, 1, 30, 30), (1, 1, 3, 3), "float32")
    problem = Problem(dim=2, n=30, k=3, dtype="float32", mode="same")
    prepared = DIRECT.prepare(problem, x, h)
    assert prepared.notes["path"] == "plane2d"


def test_repeated_calls_give_the_same_result():
    # Padding buffers are reused across calls: a second call must not see the first one's data.
    x, h = random_inputs((2, 3, 20, 20), (5, 3, 4, 4), "float32")
    problem = Problem(dim=2, n=20, k=4, batch=2, c_in=3, c_out=5, dtype="float32", mode="full")
    prepared = DIRECT.prepare(problem, x, h)
    prepared.call()
    first = prepared.result()
    prepared.call()
    np.testing.assert_array_equal(prepared.result(), first)


# -- channels (GEMM-shaped tile) ------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("b,ci,co", [(1, 1, 2), (2, 3, 5), (1, 4, 4), (3, 2, 8), (1, 5, 1), (2, 2, 9)])
def test_channels_2d(b, ci, co, dtype):
    x, h = random_inputs((b, ci, 13, 21), (co, ci, 3, 5), dtype, seed=b + 10 * ci + 100 * co)
    for mode in MODES:
        check(x, h, mode)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("b,ci,co", [(2, 3, 2), (1, 2, 6)])
@pytest.mark.parametrize("n,k", [(40, 6), (5, 12), (100, 1)])
def test_channels_1d(b, ci, co, n, k, dtype):
    x, h = random_inputs((b, ci, n), (co, ci, k), dtype, seed=n + k)
    for mode in MODES:
        check(x, h, mode)


def test_channels_path_for_a_cnn_layer_shape():
    x, h = random_inputs((2, 8, 14, 14), (8, 8, 5, 5), "float32")
    problem = Problem(dim=2, n=14, k=5, batch=2, c_in=8, c_out=8, dtype="float32", mode="same")
    prepared = DIRECT.prepare(problem, x, h)
    assert prepared.notes["path"] == "channels"
    check(x, h, "same")


# -- complex --------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("x_shape,h_shape", [((1, 1, 50), (1, 1, 7)), ((1, 1, 9, 12), (1, 1, 3, 4)),
                                             ((2, 2, 10, 10), (3, 2, 3, 3))])
def test_complex(x_shape, h_shape, dtype):
    x, h = random_inputs(x_shape, h_shape, dtype)
    for mode in MODES:
        check(x, h, mode)


# -- threads --------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("x_shape,h_shape", [
    ((1, 1, 3000), (1, 1, 9)),          # 1-D: several parallel runs of tiles
    ((2, 1, 70), (1, 1, 5)),            # 1-D batch
    ((1, 1, 37, 90), (1, 1, 5, 3)),     # 2-D: strips of 16 rows and a short last one
    ((2, 1, 20, 20), (1, 1, 4, 4)),     # 2-D batch
    ((2, 3, 15, 17), (6, 3, 3, 3)),     # channels
    ((1, 2, 50), (5, 2, 4)),            # 1-D channels
])
def test_threads_match_one_thread(x_shape, h_shape, dtype):
    x, h = random_inputs(x_shape, h_shape, dtype)
    for mode in ("full", "same"):
        one = check(x, h, mode, threads=1)
        two = check(x, h, mode, threads=2)
        # Each output is summed in the same order whatever the thread count.
        np.testing.assert_array_equal(one, two)


def test_more_threads_than_numba_has_are_capped():
    import numba

    x, h = random_inputs((1, 1, 100, 100), (1, 1, 3, 3), "float32")
    check(x, h, "same", threads=numba.config.NUMBA_NUM_THREADS + 3)


def test_memory_estimate_counts_channel_buffers():
    plain = Problem(dim=2, n=56, k=11, dtype="float32", mode="same")
    layer = Problem(dim=2, n=56, k=11, batch=8, c_in=64, c_out=64, dtype="float32", mode="same")
    assert DIRECT.memory_bytes(layer) > layer.memory_bytes() > 0
    assert DIRECT.memory_bytes(plain) >= plain.memory_bytes()


def test_channels_in_blocks_of_input_channels():
    # Enough input channels that the AVX2 row tile splits them into L1-sized blocks (other CPUs
    # take the 4 x 4 tile, where this is one more channels case); C_out = 9 makes the last
    # 6-channel group overlap, an odd H the last row pair.
    from symbench.kernels.impl.direct_plan import channel_block

    assert channel_block(40, 7, 4) < 40
    x, h = random_inputs((2, 40, 13, 21), (9, 40, 7, 5), "float32", seed=7)
    for mode in MODES:
        for threads in (1, 2):
            check(x, h, mode, threads=threads)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("co", [6, 7, 10, 11, 12, 13])
def test_six_channel_tile_and_its_overlapping_last_group(co, dtype):
    # C_out >= 6 takes the 6 x 4 tile on AVX-512 hosts (the AVX2 row tile on others). The rest
    # after full groups of 6: 1 (7, 13) and 4 (10) take the 4 x 4 tile over the last 4 channels,
    # recomputing some of the group before; 5 (11) takes a 6-channel group that overlaps the one
    # before, whose outputs must survive it.
    import numpy as np

    from symbench.kernels.impl import direct_numba as K
    from symbench.kernels.impl.direct_plan import _ChannelBuffers

    buf = _ChannelBuffers(2, 3, co, (3, 4), (1, 1), (11, 19), np.dtype(dtype))
    assert buf.wide == (not K.NARROW_CHANNEL_TILE)
    assert buf.hp is not None
    x, h = random_inputs((2, 3, 11, 19), (co, 3, 3, 4), dtype, seed=co)
    for mode in MODES:
        for threads in (1, 2):
            check(x, h, mode, threads=threads)


def test_fewer_than_six_output_channels_keep_the_narrow_tiles():
    import numpy as np

    from symbench.kernels.impl.direct_plan import _ChannelBuffers

    assert not _ChannelBuffers(1, 4, 5, (3, 3), (1, 1), (8, 8), np.dtype("float32")).wide
