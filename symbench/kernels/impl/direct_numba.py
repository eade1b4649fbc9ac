"""Compiled kernels behind the ``direct`` convolution (numba, explicit SIMD).

Register-blocked kernels, each a *tile* that keeps its accumulators in
vector registers for the whole sum, and a driver that walks the output:

``plane2d``
    One 2-D signal and one filter (per batch item). A tile is 2 output rows x
    4 vectors (2 x 64 float32 or 2 x 32 float64): every vector loaded from an
    input row feeds both output rows, so the tile does 8 fused multiply-adds
    per 4 loads and 2 broadcasts. The first and last input rows of a tile feed
    only one output row and get their own loops (no multiply by zero).
``plane1d``
    One 1-D signal and one filter. A tile is 8 vectors of consecutive outputs
    (128 float32 or 64 float64): one broadcast tap feeds 8 loads and 8 FMAs.
``channels``
    The GEMM-shaped kernel for channels: ``y[b, o] = sum_i conv(x[b, i], h[o, i])``.
    The input is zero-padded once per call into rows of ``Wq = W + kb - 1``
    values, flattened, so that every output position ``p`` reads
    ``q[p + a * Wq + b]``: a GEMM over (output channel) x (position) with the
    reduction over (input channel, a, b). A tile is 4 output channels x
    4 vectors of positions (16 accumulators); every loaded vector feeds 4 FMAs
    and every broadcast weight 4, as in a GEMM micro-kernel. Outputs in the
    ``kb - 1`` padding columns of each row are computed and dropped.
``channels6``
    The channel kernel on AVX-512 CPUs for 6 or more output channels: the
    same flattened positions, a tile of 6 output channels x 4 vectors (24
    accumulators of the 32 registers) over weights packed per call
    (:func:`pack_filters6`), so every loaded vector feeds 6 FMAs.
``channels_rows``
    The channel kernel on CPUs without AVX-512 (:data:`NARROW_CHANNEL_TILE`):
    with 16 vector registers a 4 x 4 tile spills, so a tile is 6 output
    channels x 2 output rows of one vector (12 accumulators), over weights
    packed per call in reading order (:func:`pack_filters6`), storing
    straight into the output: no padding columns, no unpacking.

All kernels compute convolution in *full-output coordinates*: an output
window that starts at full index ``(m0, l0)`` (the mode's crop) reads the
input at ``m0 + i - (ka - 1) + a'`` with tap ``h[ka - 1 - a']``, so only the
outputs of the mode are computed and the filter is never copied or flipped.
Tiles read the caller's array directly. Only tiles whose window leaves the
input (the borders of ``full`` and ``same``) read a zero-padded copy: a 2-D
plane goes in strips of 16 output rows, and per strip only the columns the
border tiles read are copied into a strip buffer (the top and bottom strips
copy all of theirs); in 1-D only the few tiles at the two ends copy their
window. A last tile that
would stick out of the output is moved back to end at the edge (it recomputes
a few outputs instead of taking a slow path).

Accumulation is in the arrays' dtype (float32 for float32), within
:func:`symbench.problem.tolerance_for`. Every driver has a ``_par`` twin that
splits the tiles over numba's threads with ``prange``; the caller sets the
thread count with :func:`numba.set_num_threads`. Everything is compiled on
first use and cached on disk (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from symbench.kernels.impl.simd import VECTOR_BITS, vbroadcast, vfma, vload, vsplat, vstore, vwidth, vzero_like

#: Output rows per 2-D plane tile.
ROWS = 2
#: Vectors per row of a 2-D plane tile and per channel tile; vectors of a 1-D tile.
VECS_2D = 4
VECS_1D = 8
#: Output channels per channel tile.
OUT_CHANNELS = 4
#: With 256-bit vectors (AVX2: 16 registers) channels use the 6-channel x 2-row tile
#: (:func:`channels_rows`); with 512-bit vectors (32 registers) the 4 x 4 tile (:func:`channels`).
NARROW_CHANNEL_TILE = VECTOR_BITS < 512

_JIT = dict(cache=True, nogil=True)
_INLINE = dict(inline="always")


# -- 2-D plane ------------------------------------------------------------------------

@njit(**_INLINE)
def _tile2d(s, rs, cs, h, o0, o1, j):  # type: ignore[no-untyped-def]
    """``o0, o1[j : j + 4V]`` = two output rows from ``s[rs : rs + ka + 1, cs : ...]``."""
    V = vwidth(s)
    ka, kb = h.shape
    c00 = vzero_like(s)
    c01 = c00
    c02 = c00
    c03 = c00
    c10 = c00
    c11 = c00
    c12 = c00
    c13 = c00
    # Input row rs feeds only output row 0 (tap row ka - 1).
    x = s[rs]
    hr = h[ka - 1]
    for b in range(kb):
        p = cs + b
        w = vsplat(hr[kb - 1 - b])
        c00 = vfma(w, vload(x, p), c00)
        c01 = vfma(w, vload(x, p + V), c01)
        c02 = vfma(w, vload(x, p + 2 * V), c02)
        c03 = vfma(w, vload(x, p + 3 * V), c03)
    # Input rows rs + 1 .. rs + ka - 1 feed both output rows.
    for u in range(1, ka):
        x = s[rs + u]
        h0 = h[ka - 1 - u]
        h1 = h[ka - u]
        for b in range(kb):
            p = cs + b
            x0 = vload(x, p)
            x1 = vload(x, p + V)
            x2 = vload(x, p + 2 * V)
            x3 = vload(x, p + 3 * V)
            w0 = vsplat(h0[kb - 1 - b])
            w1 = vsplat(h1[kb - 1 - b])
            c00 = vfma(w0, x0, c00)
            c01 = vfma(w0, x1, c01)
            c02 = vfma(w0, x2, c02)
            c03 = vfma(w0, x3, c03)
            c10 = vfma(w1, x0, c10)
            c11 = vfma(w1, x1, c11)
            c12 = vfma(w1, x2, c12)
            c13 = vfma(w1, x3, c13)
    # Input row rs + ka feeds only output row 1 (tap row 0).
    x = s[rs + ka]
    hr = h[0]
    for b in range(kb):
        p = cs + b
        w = vsplat(hr[kb - 1 - b])
        c10 = vfma(w, vload(x, p), c10)
        c11 = vfma(w, vload(x, p + V), c11)
        c12 = vfma(w, vload(x, p + 2 * V), c12)
        c13 = vfma(w, vload(x, p + 3 * V), c13)
    vstore(o0, j, c00)
    vstore(o0, j + V, c01)
    vstore(o0, j + 2 * V, c02)
    vstore(o0, j + 3 * V, c03)
    vstore(o1, j, c10)
    vstore(o1, j + V, c11)
    vstore(o1, j + 2 * V, c12)
    vstore(o1, j + 3 * V, c13)


#: Output rows per strip of a 2-D plane.
STRIP_ROWS = 16


@njit(**_INLINE)
def strip_shape(ka: int, kb: int, W: int, width: int) -> tuple[int, int]:
    """Shape of the strip buffer for ``(ka, kb)`` filters, ``W`` outputs per row, ``width`` lanes."""
    T = VECS_2D * width
    tiles = -(-W // T)
    # One spare row: a strip of odd height computes its last pair into a dummy row.
    return STRIP_ROWS + ka, tiles * T + kb - 1


@njit(**_INLINE)
def _pack_cols(x, r0, c0, buf, rows, start, stop):  # type: ignore[no-untyped-def]
    """``buf[u, start:stop] = x[r0 + u, c0 + start : c0 + stop]`` for ``u < rows``, zero outside ``x``."""
    n0, n1 = x.shape
    lo = min(max(start, -c0), stop)
    hi = max(lo, min(stop, n1 - c0))
    for u in range(rows):
        r = r0 + u
        dst = buf[u]
        if r < 0 or r >= n0:
            for c in range(start, stop):
                dst[c] = 0
            continue
        for c in range(start, lo):
            dst[c] = 0
        # Indices from 0 on both sides, so the copy vectorises (no negative-index checks).
        src = x[r, c0 + lo:]
        part = dst[lo:]
        for c in range(hi - lo):
            part[c] = src[c]
        for c in range(hi, stop):
            dst[c] = 0


@njit(**_INLINE)
def _strip2d(x, h, out, m0, l0, i0, strip, obuf, spare):  # type: ignore[no-untyped-def]
    """Output rows ``i0 : i0 + STRIP_ROWS`` of one plane.

    Strip column ``c`` is input column ``c0 + c`` and strip row ``u`` input row
    ``r0 + u``. Column tiles whose window lies in ``x`` (a contiguous range
    ``[ta, tb)`` of them) read ``x`` directly; the border tiles, and every tile
    at the top and bottom of the plane, read ``strip``, where only the columns
    they need were copied, zero-padded. Tile ``t`` starts at output column
    ``min(t * T, W - T)``: the last one overlaps its neighbour rather than
    stick out of the output.
    """
    n0, n1 = x.shape
    H, W = out.shape
    ka, kb = h.shape
    T = VECS_2D * vwidth(x)
    width = strip.shape[1]
    tile_cols = T + kb - 1
    rows = min(STRIP_ROWS, H - i0)
    srows = rows + ka  # one spare input row for an odd last pair
    c0 = l0 - (kb - 1)
    r0 = m0 + i0 - (ka - 1)
    partial = W < T
    ntiles = 1 if partial else (W + T - 1) // T
    last = 0 if partial else W - T
    # Tiles reading x: c0 + j >= 0 and c0 + j + tile_cols <= n1, with j = min(t T, last).
    ta = ntiles
    tb = ntiles
    if not partial and r0 >= 0 and r0 + srows <= n0:
        for t in range(ntiles):
            j = min(t * T, last)
            if c0 + j >= 0 and c0 + j + tile_cols <= n1:
                if ta == ntiles:
                    ta = t
                tb = t + 1
    if ta == ntiles:
        _pack_cols(x, r0, c0, strip, srows, 0, width)
    else:
        left = min(ta * T, last) + kb - 1  # strip columns read by tiles before ta
        right = min(tb * T, last) if tb < ntiles else width
        if ta > 0:
            _pack_cols(x, r0, c0, strip, srows, 0, min(width, left + T))
        if tb < ntiles:
            _pack_cols(x, r0, c0, strip, srows, right, width)
    border = ntiles - (tb - ta)
    for i in range(0, rows, ROWS):
        if partial:
            o0 = obuf[0]
            o1 = obuf[1]
        else:
            o0 = out[i0 + i]
            o1 = out[i0 + i + 1] if i + 1 < rows else spare
        for q in range(border):  # border tiles, from the strip
            t = q if q < ta else q - ta + tb
            j = min(t * T, last)
            _tile2d(strip, i, j, h, o0, o1, j)
        for t in range(ta, tb):  # inner tiles, straight from x
            j = min(t * T, last)
            _tile2d(x, r0 + i, c0 + j, h, o0, o1, j)
        if partial:
            for r in range(min(ROWS, rows - i)):
                for c in range(W):
                    out[i0 + i + r, c] = obuf[r, c]


@njit(**_JIT)
def plane2d(x, h, out, m0, l0):  # type: ignore[no-untyped-def]
    """``out[b] = conv2d(x[b], h)[m0 : m0 + H, l0 : l0 + W]`` for every batch item ``b``.

    ``x`` is ``(B, n0, n1)``, ``h`` ``(ka, kb)``, ``out`` ``(B, H, W)``, all C-contiguous.
    """
    ka, kb = h.shape
    H, W = out.shape[1], out.shape[2]
    V = vwidth(x)
    s0, s1 = strip_shape(ka, kb, W, V)
    strip = np.empty((s0, s1), x.dtype)
    obuf = np.empty((ROWS, VECS_2D * V), x.dtype)
    spare = np.empty(s1, x.dtype)
    for b in range(x.shape[0]):
        for i0 in range(0, H, STRIP_ROWS):
            _strip2d(x[b], h, out[b], m0, l0, i0, strip, obuf, spare)


@njit(parallel=True, **_JIT)
def plane2d_par(x, h, out, m0, l0):  # type: ignore[no-untyped-def]
    """:func:`plane2d` with the strips of all batch items split over numba's threads."""
    ka, kb = h.shape
    H, W = out.shape[1], out.shape[2]
    V = vwidth(x)
    s0, s1 = strip_shape(ka, kb, W, V)
    strips = (H + STRIP_ROWS - 1) // STRIP_ROWS
    for t in prange(x.shape[0] * strips):
        b = t // strips
        strip = np.empty((s0, s1), x.dtype)
        obuf = np.empty((ROWS, VECS_2D * V), x.dtype)
        spare = np.empty(s1, x.dtype)
        _strip2d(x[b], h, out[b], m0, l0, (t - b * strips) * STRIP_ROWS, strip, obuf, spare)


# -- 1-D plane ------------------------------------------------------------------------

@njit(**_INLINE)
def _tile1d(s, cs, h, o, j):  # type: ignore[no-untyped-def]
    """``o[j : j + 8V]`` from ``s[cs : cs + 8V + k - 1]``."""
    V = vwidth(s)
    k = h.shape[0]
    c0 = vzero_like(s)
    c1 = c0
    c2 = c0
    c3 = c0
    c4 = c0
    c5 = c0
    c6 = c0
    c7 = c0
    for b in range(k):
        p = cs + b
        w = vsplat(h[k - 1 - b])
        c0 = vfma(w, vload(s, p), c0)
        c1 = vfma(w, vload(s, p + V), c1)
        c2 = vfma(w, vload(s, p + 2 * V), c2)
        c3 = vfma(w, vload(s, p + 3 * V), c3)
        c4 = vfma(w, vload(s, p + 4 * V), c4)
        c5 = vfma(w, vload(s, p + 5 * V), c5)
        c6 = vfma(w, vload(s, p + 6 * V), c6)
        c7 = vfma(w, vload(s, p + 7 * V), c7)
    vstore(o, j, c0)
    vstore(o, j + V, c1)
    vstore(o, j + 2 * V, c2)
    vstore(o, j + 3 * V, c3)
    vstore(o, j + 4 * V, c4)
    vstore(o, j + 5 * V, c5)
    vstore(o, j + 6 * V, c6)
    vstore(o, j + 7 * V, c7)


@njit(**_INLINE)
def _span1d(x, h, out, m0, j0, j1, buf, obuf):  # type: ignore[no-untyped-def]
    """Tiles starting at ``j0, j0 + T, ... < j1`` of one 1-D output."""
    n = x.shape[0]
    W = out.shape[0]
    k = h.shape[0]
    T = VECS_1D * vwidth(x)
    for j in range(j0, j1, T):
        if j + T > W and W >= T:
            j = W - T
        cs = m0 + j - (k - 1)
        if cs >= 0 and cs + T + k - 1 <= n and j + T <= W:
            _tile1d(x, cs, h, out, j)
        else:
            lo = min(max(0, -cs), buf.shape[0])
            hi = max(lo, min(buf.shape[0], n - cs))
            buf[:lo] = 0
            for c in range(lo, hi):
                buf[c] = x[cs + c]
            buf[hi:] = 0
            _tile1d(buf, 0, h, obuf, 0)
            for c in range(min(T, W - j)):
                out[j + c] = obuf[c]


@njit(**_JIT)
def plane1d(x, h, out, m0):  # type: ignore[no-untyped-def]
    """``out[b] = conv1d(x[b], h)[m0 : m0 + W]``; ``x`` ``(B, n)``, ``h`` ``(k,)``, ``out`` ``(B, W)``."""
    T = VECS_1D * vwidth(x)
    buf = np.empty(T + h.shape[0] - 1, x.dtype)
    obuf = np.empty(T, x.dtype)
    for b in range(x.shape[0]):
        _span1d(x[b], h, out[b], m0, 0, out.shape[1], buf, obuf)


#: Tiles per parallel work item of the 1-D kernel (keeps scheduling overhead small).
_TILES_PER_ITEM_1D = 16


@njit(parallel=True, **_JIT)
def plane1d_par(x, h, out, m0):  # type: ignore[no-untyped-def]
    """:func:`plane1d` with runs of tiles split over numba's threads."""
    T = VECS_1D * vwidth(x)
    W = out.shape[1]
    span = T * _TILES_PER_ITEM_1D
    items = (W + span - 1) // span
    for t in prange(x.shape[0] * items):
        b = t // items
        j0 = (t - b * items) * span
        buf = np.empty(T + h.shape[0] - 1, x.dtype)
        obuf = np.empty(T, x.dtype)
        _span1d(x[b], h, out[b], m0, j0, min(W, j0 + span), buf, obuf)


# -- channels: the GEMM-shaped kernel --------------------------------------------------

@njit(**_INLINE)
def _pack_plane(src, dst, r0, c0, Hq, Wq):  # type: ignore[no-untyped-def]
    n0, n1 = src.shape
    u0 = max(0, -r0)
    u1 = min(Hq, n0 - r0)
    v0 = max(0, -c0)
    v1 = min(Wq, n1 - c0)
    for u in range(u0, u1):
        row = src[r0 + u, c0 + v0:]
        out = dst[u * Wq + v0:]
        for v in range(v1 - v0):
            out[v] = row[v]


@njit(**_JIT)
def pack_channels(x, q, r0, c0, Hq, Wq):  # type: ignore[no-untyped-def]
    """Copy ``x[b, i, r0 : r0 + Hq, c0 : c0 + Wq]`` into the rows of ``q[b, i]`` (``Wq`` apart).

    ``x`` is ``(B, C, n0, n1)``; ``q`` ``(B, C, L)`` was zeroed once, and only
    the part that overlaps ``x`` is written, so the zero padding stays.
    """
    for b in range(x.shape[0]):
        for i in range(x.shape[1]):
            _pack_plane(x[b, i], q[b, i], r0, c0, Hq, Wq)


@njit(parallel=True, **_JIT)
def pack_channels_par(x, q, r0, c0, Hq, Wq):  # type: ignore[no-untyped-def]
    """:func:`pack_channels` with the planes split over numba's threads."""
    C = x.shape[1]
    for t in prange(x.shape[0] * C):
        _pack_plane(x[t // C, t % C], q[t // C, t % C], r0, c0, Hq, Wq)


@njit(**_INLINE)
def _unpack_plane(src, dst, Wq):  # type: ignore[no-untyped-def]
    H, W = dst.shape
    for i in range(H):
        row = src[i * Wq:]
        out = dst[i]
        for j in range(W):
            out[j] = row[j]


@njit(**_JIT)
def unpack_channels(y, out, Wq):  # type: ignore[no-untyped-def]
    """``out[b, o, i, j] = y[b, o, i * Wq + j]``: drop the padding columns."""
    for b in range(out.shape[0]):
        for o in range(out.shape[1]):
            _unpack_plane(y[b, o], out[b, o], Wq)


@njit(parallel=True, **_JIT)
def unpack_channels_par(y, out, Wq):  # type: ignore[no-untyped-def]
    """:func:`unpack_channels` with the planes split over numba's threads."""
    C = out.shape[1]
    for t in prange(out.shape[0] * C):
        _unpack_plane(y[t // C, t % C], out[t // C, t % C], Wq)


@njit(**_INLINE)
def _tile_ch4(q, h, y, b, o0, p, Wq):  # type: ignore[no-untyped-def]
    """``y[b, o0 : o0 + 4, p : p + 4V]``: 4 output channels x 4 vectors of positions."""
    V = vwidth(q)
    C, ka, kb = h.shape[1], h.shape[2], h.shape[3]
    a00 = vzero_like(q)
    a01 = a00
    a02 = a00
    a03 = a00
    a10 = a00
    a11 = a00
    a12 = a00
    a13 = a00
    a20 = a00
    a21 = a00
    a22 = a00
    a23 = a00
    a30 = a00
    a31 = a00
    a32 = a00
    a33 = a00
    for i in range(C):
        qi = q[b, i]
        for a in range(ka):
            g0 = h[o0, i, ka - 1 - a]
            g1 = h[o0 + 1, i, ka - 1 - a]
            g2 = h[o0 + 2, i, ka - 1 - a]
            g3 = h[o0 + 3, i, ka - 1 - a]
            base = p + a * Wq
            for bb in range(kb):
                s = base + bb
                x0 = vload(qi, s)
                x1 = vload(qi, s + V)
                x2 = vload(qi, s + 2 * V)
                x3 = vload(qi, s + 3 * V)
                t = kb - 1 - bb
                w = vsplat(g0[t])
                a00 = vfma(w, x0, a00)
                a01 = vfma(w, x1, a01)
                a02 = vfma(w, x2, a02)
                a03 = vfma(w, x3, a03)
                w = vsplat(g1[t])
                a10 = vfma(w, x0, a10)
                a11 = vfma(w, x1, a11)
                a12 = vfma(w, x2, a12)
                a13 = vfma(w, x3, a13)
                w = vsplat(g2[t])
                a20 = vfma(w, x0, a20)
                a21 = vfma(w, x1, a21)
                a22 = vfma(w, x2, a22)
                a23 = vfma(w, x3, a23)
                w = vsplat(g3[t])
                a30 = vfma(w, x0, a30)
                a31 = vfma(w, x1, a31)
                a32 = vfma(w, x2, a32)
                a33 = vfma(w, x3, a33)
    r = y[b, o0]
    vstore(r, p, a00)
    vstore(r, p + V, a01)
    vstore(r, p + 2 * V, a02)
    vstore(r, p + 3 * V, a03)
    r = y[b, o0 + 1]
    vstore(r, p, a10)
    vstore(r, p + V, a11)
    vstore(r, p + 2 * V, a12)
    vstore(r, p + 3 * V, a13)
    r = y[b, o0 + 2]
    vstore(r, p, a20)
    vstore(r, p + V, a21)
    vstore(r, p + 2 * V, a22)
    vstore(r, p + 3 * V, a23)
    r = y[b, o0 + 3]
    vstore(r, p, a30)
    vstore(r, p + V, a31)
    vstore(r, p + 2 * V, a32)
    vstore(r, p + 3 * V, a33)


@njit(**_INLINE)
def _tile_ch1(q, h, y, b, o, p, Wq):  # type: ignore[no-untyped-def]
    """``y[b, o, p : p + 4V]``: one output channel (fewer than 4 in all)."""
    V = vwidth(q)
    C, ka, kb = h.shape[1], h.shape[2], h.shape[3]
    a0 = vzero_like(q)
    a1 = a0
    a2 = a0
    a3 = a0
    for i in range(C):
        qi = q[b, i]
        for a in range(ka):
            g = h[o, i, ka - 1 - a]
            base = p + a * Wq
            for bb in range(kb):
                s = base + bb
                w = vsplat(g[kb - 1 - bb])
                a0 = vfma(w, vload(qi, s), a0)
                a1 = vfma(w, vload(qi, s + V), a1)
                a2 = vfma(w, vload(qi, s + 2 * V), a2)
                a3 = vfma(w, vload(qi, s + 3 * V), a3)
    r = y[b, o]
    vstore(r, p, a0)
    vstore(r, p + V, a1)
    vstore(r, p + 2 * V, a2)
    vstore(r, p + 3 * V, a3)


@njit(**_INLINE)
def _positions(q, h, y, b, p, Wq):  # type: ignore[no-untyped-def]
    """Every output channel of positions ``p : p + 4V`` of batch item ``b``."""
    O = h.shape[0]
    if O < OUT_CHANNELS:
        for o in range(O):
            _tile_ch1(q, h, y, b, o, p, Wq)
        return
    for o in range(0, O, OUT_CHANNELS):
        if o + OUT_CHANNELS > O:
            o = O - OUT_CHANNELS  # overlap the previous tile rather than leave the fast path
        _tile_ch4(q, h, y, b, o, p, Wq)


@njit(**_JIT)
def channels(q, h, y, Wq):  # type: ignore[no-untyped-def]
    """``y[b, o, p] = sum_{i, a, b'} h[o, i, ka-1-a, kb-1-b'] q[b, i, p + a Wq + b']``.

    ``q`` ``(B, C_in, L)`` from :func:`pack_channels`, ``h`` ``(C_out, C_in, ka, kb)``,
    ``y`` ``(B, C_out, P)`` with ``P`` a multiple of ``4V`` and ``L >= P + (ka - 1) Wq + kb - 1``.
    """
    T = VECS_2D * vwidth(q)
    for b in range(q.shape[0]):
        for p in range(0, y.shape[2], T):
            _positions(q, h, y, b, p, Wq)


@njit(parallel=True, **_JIT)
def channels_par(q, h, y, Wq):  # type: ignore[no-untyped-def]
    """:func:`channels` with (batch item, position tile) pairs split over numba's threads."""
    T = VECS_2D * vwidth(q)
    tiles = y.shape[2] // T
    for t in prange(q.shape[0] * tiles):
        b = t // tiles
        _positions(q, h, y, b, (t - b * tiles) * T, Wq)


# -- channels, AVX-512: 6 output channels x 4 vectors over packed weights ---------------------

@njit(**_INLINE)
def _tile_ch6(q, hp, y, b, o0, r, p, Wq, C, ka, kb):  # type: ignore[no-untyped-def]
    """``y[b, o0 : o0 + 6, p : p + 4V]`` from weights ``hp[r:]`` (:func:`pack_filters6`, one block).

    24 accumulators, 4 loaded vectors and a broadcast: 29 of AVX-512's 32
    registers. Every loaded vector feeds 6 FMAs (4 in the 4 x 4 tile), and the
    6 weights of a tap are consecutive in ``hp``, read in order with no index
    arithmetic. Measured on the 64 -> 64 layer (B = 8, 56 x 56, float32, one
    thread, interleaved with torch's conv2d): 14 % faster than the 4 x 4 tile
    at k = 3, 9-11 % at k = 5 and 7, 5 % at k = 11.
    """
    V = vwidth(q)
    a00 = vzero_like(q)
    a01 = a00
    a02 = a00
    a03 = a00
    a10 = a00
    a11 = a00
    a12 = a00
    a13 = a00
    a20 = a00
    a21 = a00
    a22 = a00
    a23 = a00
    a30 = a00
    a31 = a00
    a32 = a00
    a33 = a00
    a40 = a00
    a41 = a00
    a42 = a00
    a43 = a00
    a50 = a00
    a51 = a00
    a52 = a00
    a53 = a00
    for i in range(C):
        qi = q[b, i]
        for a in range(ka):
            base = p + a * Wq
            for bb in range(kb):
                s = base + bb
                x0 = vload(qi, s)
                x1 = vload(qi, s + V)
                x2 = vload(qi, s + 2 * V)
                x3 = vload(qi, s + 3 * V)
                w = vbroadcast(hp, r)
                a00 = vfma(w, x0, a00)
                a01 = vfma(w, x1, a01)
                a02 = vfma(w, x2, a02)
                a03 = vfma(w, x3, a03)
                w = vbroadcast(hp, r + 1)
                a10 = vfma(w, x0, a10)
                a11 = vfma(w, x1, a11)
                a12 = vfma(w, x2, a12)
                a13 = vfma(w, x3, a13)
                w = vbroadcast(hp, r + 2)
                a20 = vfma(w, x0, a20)
                a21 = vfma(w, x1, a21)
                a22 = vfma(w, x2, a22)
                a23 = vfma(w, x3, a23)
                w = vbroadcast(hp, r + 3)
                a30 = vfma(w, x0, a30)
                a31 = vfma(w, x1, a31)
                a32 = vfma(w, x2, a32)
                a33 = vfma(w, x3, a33)
                w = vbroadcast(hp, r + 4)
                a40 = vfma(w, x0, a40)
                a41 = vfma(w, x1, a41)
                a42 = vfma(w, x2, a42)
                a43 = vfma(w, x3, a43)
                w = vbroadcast(hp, r + 5)
                a50 = vfma(w, x0, a50)
                a51 = vfma(w, x1, a51)
                a52 = vfma(w, x2, a52)
                a53 = vfma(w, x3, a53)
                r += 6
    t = y[b, o0]
    vstore(t, p, a00)
    vstore(t, p + V, a01)
    vstore(t, p + 2 * V, a02)
    vstore(t, p + 3 * V, a03)
    t = y[b, o0 + 1]
    vstore(t, p, a10)
    vstore(t, p + V, a11)
    vstore(t, p + 2 * V, a12)
    vstore(t, p + 3 * V, a13)
    t = y[b, o0 + 2]
    vstore(t, p, a20)
    vstore(t, p + V, a21)
    vstore(t, p + 2 * V, a22)
    vstore(t, p + 3 * V, a23)
    t = y[b, o0 + 3]
    vstore(t, p, a30)
    vstore(t, p + V, a31)
    vstore(t, p + 2 * V, a32)
    vstore(t, p + 3 * V, a33)
    t = y[b, o0 + 4]
    vstore(t, p, a40)
    vstore(t, p + V, a41)
    vstore(t, p + 2 * V, a42)
    vstore(t, p + 3 * V, a43)
    t = y[b, o0 + 5]
    vstore(t, p, a50)
    vstore(t, p + V, a51)
    vstore(t, p + 2 * V, a52)
    vstore(t, p + 3 * V, a53)


@njit(**_INLINE)
def _positions6(q, hp, h, y, b, p, Wq, ka, kb):  # type: ignore[no-untyped-def]
    """Every output channel (at least 6) of positions ``p : p + 4V`` of batch item ``b``.

    ``C_out = 6 g + rest``: ``g`` full groups of 6, then the last ``rest``
    channels. Up to 4 of them take the 4 x 4 tile (:func:`_tile_ch4`, reading
    ``h``) over the last 4 channels, recomputing a few of the group before
    (64 channels: 10 x 6 + 4 rather than 11 x 6, 3 % less work). Five take a
    6-channel group that overlaps the one before, whose weights of the
    overlapped channels :func:`pack_filters6` zeroes: it runs first, so the
    group that owns them overwrites its zeros.
    """
    O, C = y.shape[1], q.shape[1]
    full = O // 6
    rest = O - 6 * full
    step = 6 * C * ka * kb
    if rest == 5:
        _tile_ch6(q, hp, y, b, O - 6, full * step, p, Wq, C, ka, kb)
    for g in range(full):
        _tile_ch6(q, hp, y, b, 6 * g, g * step, p, Wq, C, ka, kb)
    if 0 < rest < 5:
        _tile_ch4(q, h, y, b, O - 4, p, Wq)


@njit(**_JIT)
def channels6(q, hp, h, y, Wq, ka, kb):  # type: ignore[no-untyped-def]
    """:func:`channels` with the 6 x 4 tile (``C_out >= 6``) over ``hp`` from ``pack_filters6(h, hp, C_in)``."""
    T = VECS_2D * vwidth(q)
    for b in range(q.shape[0]):
        for p in range(0, y.shape[2], T):
            _positions6(q, hp, h, y, b, p, Wq, ka, kb)


@njit(parallel=True, **_JIT)
def channels6_par(q, hp, h, y, Wq, ka, kb):  # type: ignore[no-untyped-def]
    """:func:`channels6` with (batch item, position tile) pairs split over numba's threads."""
    T = VECS_2D * vwidth(q)
    tiles = y.shape[2] // T
    for t in prange(q.shape[0] * tiles):
        b = t // tiles
        _positions6(q, hp, h, y, b, (t - b * tiles) * T, Wq, ka, kb)


# -- channels, AVX2: 6 output channels x 2 output rows, straight into the output ---------------

#: Output channels of the AVX2 channel tile (:func:`channels_rows`); its rows are 2.
ROW_TILE_CHANNELS = 6


@njit(**_JIT)
def pack_filters6(h, hp, cb):  # type: ignore[no-untyped-def]
    """Weights in the order :func:`channels_rows` reads them, 6 consecutive values per tap.

    ``hp[blk, g, i, a, b', j] = h[o_g + j, blk cb + i, ka-1-a, kb-1-b']`` for
    blocks of ``cb`` input channels (the last may be shorter) and 6-channel
    groups starting at ``o_g = min(6 g, C_out - 6)``. The last group overlaps
    the previous one rather than leave the fast tile; its overlapped channels
    get zero weights, so that, run first, it adds nothing to them (see
    :func:`_row_pair`). Packed in every call: a layer's weights change between calls.
    """
    O, C, ka, kb = h.shape
    groups = -(-O // 6)
    r = 0
    for i0 in range(0, C, cb):
        for g in range(groups):
            o0 = min(6 * g, O - 6)
            for i in range(i0, min(C, i0 + cb)):
                for a in range(ka):
                    for bb in range(kb):
                        for j in range(6):
                            o = o0 + j
                            hp[r] = h[o, i, ka - 1 - a, kb - 1 - bb] if o >= 6 * g else 0
                            r += 1


@njit(**_INLINE)
def _tile_rows(q, hp, out, b, o0, r, i0, c, Wq, ca, cz, ka, kb, first):  # type: ignore[no-untyped-def]
    """``out[b, o0 : o0 + 6, i0 : i0 + 2, c : c + V]`` (+)= input channels ``ca : cz`` of ``q[b]`` (rows ``Wq`` apart).

    6 output channels x 2 output rows of one vector: 12 accumulators, 2
    loaded vectors and a broadcast fit the 16 registers of AVX2 (the 4 x 4
    tile of 512-bit vectors needs 32 and spills). A vector is a run of ``V``
    outputs of one row, so, unlike the flattened tile of :func:`channels`, no
    output in the ``kb - 1`` padding columns is computed and the tile stores
    straight into the output (no unpacking). Weights come from ``hp[r:]``
    (:func:`pack_filters6`), read in order. ``first`` starts from zero, else
    the tile adds to what the output holds (the earlier channel blocks).
    """
    if first:
        a00 = vzero_like(q)
        a01 = a00
        a10 = a00
        a11 = a00
        a20 = a00
        a21 = a00
        a30 = a00
        a31 = a00
        a40 = a00
        a41 = a00
        a50 = a00
        a51 = a00
    else:
        o = out[b, o0]
        a00 = vload(o[i0], c)
        a01 = vload(o[i0 + 1], c)
        o = out[b, o0 + 1]
        a10 = vload(o[i0], c)
        a11 = vload(o[i0 + 1], c)
        o = out[b, o0 + 2]
        a20 = vload(o[i0], c)
        a21 = vload(o[i0 + 1], c)
        o = out[b, o0 + 3]
        a30 = vload(o[i0], c)
        a31 = vload(o[i0 + 1], c)
        o = out[b, o0 + 4]
        a40 = vload(o[i0], c)
        a41 = vload(o[i0 + 1], c)
        o = out[b, o0 + 5]
        a50 = vload(o[i0], c)
        a51 = vload(o[i0 + 1], c)
    for i in range(ca, cz):
        qi = q[b, i]
        for a in range(ka):
            base = (i0 + a) * Wq + c
            for bb in range(kb):
                s = base + bb
                x0 = vload(qi, s)
                x1 = vload(qi, s + Wq)
                w = vbroadcast(hp, r)
                a00 = vfma(w, x0, a00)
                a01 = vfma(w, x1, a01)
                w = vbroadcast(hp, r + 1)
                a10 = vfma(w, x0, a10)
                a11 = vfma(w, x1, a11)
                w = vbroadcast(hp, r + 2)
                a20 = vfma(w, x0, a20)
                a21 = vfma(w, x1, a21)
                w = vbroadcast(hp, r + 3)
                a30 = vfma(w, x0, a30)
                a31 = vfma(w, x1, a31)
                w = vbroadcast(hp, r + 4)
                a40 = vfma(w, x0, a40)
                a41 = vfma(w, x1, a41)
                w = vbroadcast(hp, r + 5)
                a50 = vfma(w, x0, a50)
                a51 = vfma(w, x1, a51)
                r += 6
    o = out[b, o0]
    vstore(o[i0], c, a00)
    vstore(o[i0 + 1], c, a01)
    o = out[b, o0 + 1]
    vstore(o[i0], c, a10)
    vstore(o[i0 + 1], c, a11)
    o = out[b, o0 + 2]
    vstore(o[i0], c, a20)
    vstore(o[i0 + 1], c, a21)
    o = out[b, o0 + 3]
    vstore(o[i0], c, a30)
    vstore(o[i0 + 1], c, a31)
    o = out[b, o0 + 4]
    vstore(o[i0], c, a40)
    vstore(o[i0 + 1], c, a41)
    o = out[b, o0 + 5]
    vstore(o[i0], c, a50)
    vstore(o[i0 + 1], c, a51)


@njit(**_INLINE)
def _row_pair(q, hp, out, b, i0, Wq, ka, kb, cb):  # type: ignore[no-untyped-def]
    """Output rows ``i0, i0 + 1`` of batch item ``b``: every column vector and channel group, ``cb`` input channels at a time.

    Groups innermost: a column tile's input rows (``cb x (ka + 1)`` short
    rows, ``cb`` chosen by the caller so they stay in L1) serve every group,
    while the packed weights stream from L2 in order. Groups run last to
    first, so that the overlapping last group (zero weights on the channels
    it shares) is overwritten, or added to, by the group that owns them.
    The last column vector moves back to end at the edge (a few outputs
    computed twice).
    """
    O, W = out.shape[1], out.shape[3]
    C = q.shape[1]
    V = vwidth(q)
    groups = -(-O // 6)
    for c in range(0, W, V):
        c = min(c, W - V)
        # Every block of a column tile before the next tile: the last tile, moved back to overlap
        # its neighbour, then starts from zero again instead of adding to finished outputs.
        for ca in range(0, C, cb):
            cz = min(C, ca + cb)
            R = (cz - ca) * ka * kb * 6  # weights of one group in this block
            base = ca * groups * ka * kb * 6  # the blocks before this one are full
            first = ca == 0
            for g in range(groups - 1, -1, -1):
                _tile_rows(q, hp, out, b, min(6 * g, O - 6), base + g * R, i0, c, Wq, ca, cz, ka, kb, first)


@njit(**_JIT)
def channels_rows(q, hp, out, Wq, ka, kb, cb):  # type: ignore[no-untyped-def]
    """``out[b, o] = sum_i conv(x[b, i], h[o, i])`` (the mode's window) by 6-channel x 2-row tiles.

    ``q`` ``(B, C_in, L)`` from :func:`pack_channels` (rows ``Wq`` apart),
    ``hp`` from :func:`pack_filters6` with the same ``cb``, ``out``
    ``(B, C_out, H, W)`` with ``C_out >= 6``, ``H >= 2`` and ``W >= V``. An
    odd last row is computed with its predecessor again.
    """
    H = out.shape[2]
    for b in range(q.shape[0]):
        for i0 in range(0, H, 2):
            _row_pair(q, hp, out, b, min(i0, H - 2), Wq, ka, kb, cb)


@njit(parallel=True, **_JIT)
def channels_rows_par(q, hp, out, Wq, ka, kb, cb):  # type: ignore[no-untyped-def]
    """:func:`channels_rows` with (batch item, row pair) items split over numba's threads.

    An odd ``H`` makes the last two items overlap by a row; both write the
    same values there. (Not with channel blocks: there the overlap would
    add twice, so :func:`symbench.kernels.impl.direct_plan` passes ``cb = C_in``
    when ``H`` is odd and threads > 1.)
    """
    H = out.shape[2]
    pairs = -(-H // 2)
    for t in prange(q.shape[0] * pairs):
        b = t // pairs
        _row_pair(q, hp, out, b, min(2 * (t - b * pairs), H - 2), Wq, ka, kb, cb)
