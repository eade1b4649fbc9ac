"""Set-up of the ``direct`` kernel: pick a compiled path, allocate, and build the timed call.

Imported only from :meth:`symbench.kernels.cpu_direct.Direct.prepare`, so numba
loads when the kernel is first used. The paths (see
:mod:`symbench.kernels.impl.direct_numba`):

* one real signal and one real filter per batch item -> ``plane1d`` / ``plane2d``;
* channels (``C_in * C_out > 1``) -> the GEMM-shaped ``channels`` kernel over a
  zero-padded copy of the input made in every call;
* complex data -> the real ``channels`` kernel with twice the channels:
  ``[re, im]`` inputs and ``[[h_re, -h_im], [h_im, h_re]]`` filters give
  ``[re, im]`` outputs (four real convolutions, split and merged in every call).

Everything is allocated here; compilation happens on the first call (the
runner's warm-up, counted in ``setup_s``) or comes from numba's on-disk cache.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from symbench.kernels.impl import direct_numba as K
from symbench.kernels.base import Prepared
from symbench.problem import Problem, conv_out_shape, crop_slices


def _owned(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``a`` as a writeable C-contiguous array of ``dtype`` (a copy only when needed).

    Numba compiles one specialisation per array type, and read-only or strided
    arrays are different types; normalising here keeps it to one per dtype.
    """
    if a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable:
        return a
    return np.array(a, dtype=dtype, order="C", copy=True)


def _threads(threads: int) -> Callable[[], None]:
    """A function that sets numba's thread count for the calling thread (capped at its pool)."""
    import numba

    n = max(1, min(int(threads), int(numba.config.NUMBA_NUM_THREADS)))
    return lambda: numba.set_num_threads(n)


def prepare(problem: Problem, x: np.ndarray, h: np.ndarray) -> Prepared:
    """Choose the compiled path for ``problem`` and return its :class:`Prepared`."""
    sx, sh = tuple(x.shape[2:]), tuple(h.shape[2:])
    window = crop_slices(sx, sh, problem.mode)
    out_spatial = conv_out_shape(sx, sh, problem.mode)
    starts = tuple(s.start for s in window)
    notes: dict[str, Any] = {"threads": problem.threads}
    complex_data = np.iscomplexobj(x) or np.iscomplexobj(h)
    channels = x.shape[1] * h.shape[0] > 1
    if complex_data:
        call, result = _complex(x, h, sx, sh, starts, out_spatial, problem.threads)
        notes["path"] = "channels (complex as real)"
    elif channels:
        dtype = np.result_type(x, h)
        call, result = _channels(_owned(x, dtype), _owned(h, dtype), sx, sh, starts, out_spatial,
                                 problem.threads)
        notes["path"] = "channels"
    else:
        dtype = np.result_type(x, h)
        call, result = _plane(_owned(x, dtype), _owned(h, dtype), sx, sh, starts, out_spatial,
                              problem.threads)
        notes["path"] = f"plane{len(sx)}d"
    return Prepared(call, result, notes=notes)


def plain(problem: Problem, sx: tuple[int, ...], sh: tuple[int, ...], dtype: np.dtype
          ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``y = f(x, h)`` for one real signal and filter of these shapes: ``symbench.convolve``'s plan.

    The plane kernels of :func:`_plane` on the caller's arrays (copied only when
    they are not C-contiguous and writeable), into a new output per call.
    """
    window = crop_slices(sx, sh, problem.mode)
    out_spatial = conv_out_shape(sx, sh, problem.mode)
    starts = tuple(s.start for s in window)
    parallel = problem.threads > 1
    set_threads = _threads(problem.threads) if parallel else (lambda: None)
    if len(sx) == 1:
        fn1 = K.plane1d_par if parallel else K.plane1d
        m0 = starts[0]

        def run(x: np.ndarray, h: np.ndarray) -> np.ndarray:
            out = np.empty((1, *out_spatial), dtype=dtype)
            set_threads()
            fn1(_owned(x, dtype)[None], _owned(h, dtype), out, m0)
            return out[0]
    else:
        fn2 = K.plane2d_par if parallel else K.plane2d
        m0, l0 = starts

        def run(x: np.ndarray, h: np.ndarray) -> np.ndarray:
            out = np.empty((1, *out_spatial), dtype=dtype)
            set_threads()
            fn2(_owned(x, dtype)[None], _owned(h, dtype), out, m0, l0)
            return out[0]

    return run


def _plane(x: np.ndarray, h: np.ndarray, sx: tuple[int, ...], sh: tuple[int, ...],
           starts: tuple[int, ...], out_spatial: tuple[int, ...], threads: int
           ) -> tuple[Callable[[], None], Callable[[], np.ndarray]]:
    B = x.shape[0]
    xs = x.reshape((B, *sx))
    hs = h.reshape(sh)
    out = np.empty((B, *out_spatial), dtype=x.dtype)
    parallel = threads > 1
    if len(sx) == 1:
        fn = K.plane1d_par if parallel else K.plane1d
        m0 = starts[0]
        if parallel:
            set_threads = _threads(threads)

            def call() -> None:
                set_threads()
                fn(xs, hs, out, m0)
        else:
            def call() -> None:
                fn(xs, hs, out, m0)
    else:
        fn = K.plane2d_par if parallel else K.plane2d
        m0, l0 = starts
        if parallel:
            set_threads = _threads(threads)

            def call() -> None:
                set_threads()
                fn(xs, hs, out, m0, l0)
        else:
            def call() -> None:
                fn(xs, hs, out, m0, l0)

    def result() -> np.ndarray:
        return out.reshape((B, 1, *out_spatial)).copy()

    return call, result


class _ChannelBuffers:
    """Padded input, padded-width output (or packed weights) and final output of the ``channels`` path."""

    def __init__(self, B: int, ci: int, co: int, sh: tuple[int, ...], starts: tuple[int, ...],
                 out_spatial: tuple[int, ...], dtype: np.dtype) -> None:
        if len(sh) == 1:  # 1-D is 2-D with one row
            sh, starts, out_spatial = (1, *sh), (0, *starts), (1, *out_spatial)
        ka, kb = sh
        H, W = out_spatial
        self.Wq = W + kb - 1
        self.Hq = H + ka - 1
        # Top-left of the padded input window, in input coordinates.
        self.r0 = starts[0] - (ka - 1)
        self.c0 = starts[1] - (kb - 1)
        item = np.dtype(dtype).itemsize
        # A multiple of both channel tiles' widths (4 and 2 vectors of the widest registers).
        tile = K.VECS_2D * (64 // item)
        positions = -(-H * self.Wq // tile) * tile
        length = positions + (ka - 1) * self.Wq + kb - 1
        self.q = np.zeros((B, ci, length), dtype=dtype)
        self.out = np.empty((B, co, H, W), dtype=dtype)
        self.shape2d = (ka, kb)
        # AVX2 hosts: the 6-channel x 2-row tile writes the output itself, over weights packed in
        # every call (_direct_numba.channels_rows); otherwise the flattened 4 x 4 tile into y.
        lanes = K.VECTOR_BITS // 8 // item
        self.rows = K.NARROW_CHANNEL_TILE and co >= K.ROW_TILE_CHANNELS and H >= 2 and W >= lanes
        # AVX-512 hosts with at least 6 output channels: the 6 x 4 tile over weights packed per call
        # (_direct_numba.channels6); fewer channels keep the 4 x 4 (or one-channel) tile.
        self.wide = not K.NARROW_CHANNEL_TILE and co >= K.ROW_TILE_CHANNELS
        self.block = ci
        if self.rows or self.wide:
            self.hp = np.empty(K.ROW_TILE_CHANNELS * -(-co // K.ROW_TILE_CHANNELS) * ci * ka * kb, dtype=dtype)
        else:
            self.hp = None
        if self.rows:
            self.y = self.out
            self.block = channel_block(ci, ka, item)
        else:
            self.y = np.empty((B, co, positions), dtype=dtype)


#: Bytes of input rows a row tile may read: all channels when they fit the 32 KiB L1d, else blocks
#: of 24 KiB (the rest of L1 for the weights streaming through).
L1_BYTES = 32 * 1024
L1_BLOCK_BYTES = 24 * 1024


def channel_block(ci: int, ka: int, item: int) -> int:
    """Input channels per block of ``channels_rows``: all of them when their rows fit L1, else balanced blocks.

    A 2-row tile reads ``ka + 1`` input rows of two 64-byte lines per channel
    (float32; twice that in float64). Measured on the 64 -> 64 layer (thread
    CPU time, same process): k = 5: 87 ms in blocks of 22 or 32 channels,
    99 ms unblocked; k = 7: 145 ms in blocks of 16, 163 ms unblocked; k = 3
    (all rows fit L1): blocks of 32 no faster.
    """
    per_channel = (ka + 1) * 2 * 64 * max(1, item // 4)
    if ci * per_channel <= L1_BYTES:
        return ci
    most = max(1, L1_BLOCK_BYTES // per_channel)
    blocks = -(-ci // most)
    return -(-ci // blocks)


def _channels(x: np.ndarray, h: np.ndarray, sx: tuple[int, ...], sh: tuple[int, ...],
              starts: tuple[int, ...], out_spatial: tuple[int, ...], threads: int
              ) -> tuple[Callable[[], None], Callable[[], np.ndarray]]:
    B, ci = x.shape[:2]
    co = h.shape[0]
    buf = _ChannelBuffers(B, ci, co, sh, starts, out_spatial, x.dtype)
    x4 = x.reshape((B, ci, *((1,) if len(sx) == 1 else ()), *sx))
    h4 = h.reshape((co, ci, *buf.shape2d))
    run = _channel_runner(buf, threads)

    def call() -> None:
        run(x4, h4)

    def result() -> np.ndarray:
        return buf.out.reshape((B, co, *out_spatial)).copy()

    return call, result


def _channel_runner(buf: _ChannelBuffers, threads: int) -> Callable[[np.ndarray, np.ndarray], None]:
    """pack -> channels -> unpack over ``buf`` for 4-D ``x`` and ``h`` (6 x 4 tile on AVX-512, row tiles on AVX2)."""
    q, y, out, Wq, Hq, r0, c0 = buf.q, buf.y, buf.out, buf.Wq, buf.Hq, buf.r0, buf.c0
    hp = buf.hp
    ka, kb = buf.shape2d
    cb = buf.block
    if buf.rows and threads > 1:
        set_threads = _threads(threads)
        if out.shape[2] % 2:
            cb = q.shape[1]  # overlapping row pairs on two threads must not accumulate (see channels_rows_par)

        def run(x4: np.ndarray, h4: np.ndarray) -> None:
            set_threads()
            K.pack_channels_par(x4, q, r0, c0, Hq, Wq)
            K.pack_filters6(h4, hp, cb)
            K.channels_rows_par(q, hp, out, Wq, ka, kb, cb)
    elif buf.rows:
        def run(x4: np.ndarray, h4: np.ndarray) -> None:
            K.pack_channels(x4, q, r0, c0, Hq, Wq)
            K.pack_filters6(h4, hp, cb)
            K.channels_rows(q, hp, out, Wq, ka, kb, cb)
    elif buf.wide and threads > 1:
        set_threads = _threads(threads)

        def run(x4: np.ndarray, h4: np.ndarray) -> None:
            set_threads()
            K.pack_channels_par(x4, q, r0, c0, Hq, Wq)
            K.pack_filters6(h4, hp, cb)
            K.channels6_par(q, hp, h4, y, Wq, ka, kb)
            K.unpack_channels_par(y, out, Wq)
    elif buf.wide:
        def run(x4: np.ndarray, h4: np.ndarray) -> None:
            K.pack_channels(x4, q, r0, c0, Hq, Wq)
            K.pack_filters6(h4, hp, cb)
            K.channels6(q, hp, h4, y, Wq, ka, kb)
            K.unpack_channels(y, out, Wq)
    elif threads > 1:
        set_threads = _threads(threads)

        def run(x4: np.ndarray, h4: np.ndarray) -> None:
            set_threads()
            K.pack_channels_par(x4, q, r0, c0, Hq, Wq)
            K.channels_par(q, h4, y, Wq)
            K.unpack_channels_par(y, out, Wq)
    else:
        def run(x4: np.ndarray, h4: np.ndarray) -> None:
            K.pack_channels(x4, q, r0, c0, Hq, Wq)
            K.channels(q, h4, y, Wq)
            K.unpack_channels(y, out, Wq)
    return run


def _complex(x: np.ndarray, h: np.ndarray, sx: tuple[int, ...], sh: tuple[int, ...],
             starts: tuple[int, ...], out_spatial: tuple[int, ...], threads: int
             ) -> tuple[Callable[[], None], Callable[[], np.ndarray]]:
    cdtype = np.result_type(x, h, np.complex64)
    rdtype = np.finfo(cdtype).dtype
    B, ci = x.shape[:2]
    co = h.shape[0]
    buf = _ChannelBuffers(B, 2 * ci, 2 * co, sh, starts, out_spatial, rdtype)
    lead = (1,) if len(sx) == 1 else ()
    xr = np.empty((B, 2 * ci, *lead, *sx), dtype=rdtype)
    hr = np.empty((2 * co, 2 * ci, *buf.shape2d), dtype=rdtype)
    xv = x.reshape((B, ci, *lead, *sx))
    hv = h.reshape((co, ci, *buf.shape2d))
    run = _channel_runner(buf, threads)
    y = np.empty((B, co, *out_spatial), dtype=cdtype)

    def call() -> None:
        # [re, im] * [[h_re, -h_im], [h_im, h_re]]: rows give the real and imaginary parts.
        xr[:, :ci] = xv.real
        xr[:, ci:] = xv.imag
        hr[:co, :ci] = hv.real
        np.negative(hv.imag, out=hr[:co, ci:])
        hr[co:, :ci] = hv.imag
        hr[co:, ci:] = hv.real
        run(xr, hr)
        res = buf.out.reshape((B, 2 * co, *out_spatial))
        y.real = res[:, :co]
        y.imag = res[:, co:]

    def result() -> np.ndarray:
        return y.copy()

    return call, result

