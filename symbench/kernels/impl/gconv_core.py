"""The numerical core of the p4/p4m group convolutions, written once for NumPy and CuPy.

Contract
--------
Every compute function takes an *array namespace* ``xp`` first (``numpy`` or
``cupy``) and uses only what both provide with the same meaning:
``xp.zeros/empty/take/stack/conj/matmul/ascontiguousarray/asarray``, reshapes,
transposes, slicing, ``xp.lib.stride_tricks.as_strided``, and an FFT module
with ``rfft(a, n=, axis=)``, ``fft(a, n=, axis=)`` and ``irfft2(a, s=)``
(argument ``fft``; default ``xp.fft``; the CPU kernels pass :mod:`scipy.fft`
for its ``workers``; a GPU kernel may pass ``cupyx.scipy.fft``). No NumPy-only
function touches the arrays, so the same code runs on the device with
``xp = cupy``.

Everything that can be computed ahead is in a :class:`Plan`, built on the
host with NumPy by :func:`make_plan` (filter index arrays, frequency index
arrays, output gathers, chunking) and moved to the device once with
:meth:`Plan.to`. A plan is built per problem, outside the timed call; nothing
in it is recomputed per call.

Layouts (canonical, see :mod:`symbench.problem`)::

    lift   x (B, C_in, n1, n2)      w (C_out, C_in, k, k)
    gconv  x (B, C_in, G, n1, n2)   w (C_out, C_in, G, k, k)
    out      (B, C_out, G, n1', n2')

``x`` and ``w`` must be arrays of ``xp`` of one real dtype (float32 or
float64); results have that dtype. Semantics and modes are those of
:mod:`symbench.groups` (cross-correlation; ``same`` pads ``(k-1)//2`` before
and ``k//2`` after each axis).

Methods
-------
:func:`gconv_direct`
    Transform the filters with one gather (the precomputed index array), then
    one large correlation: im2col patches of the (padded) input times the
    stacked ``C_out * |G|`` filters in one GEMM (split by filter rows when the
    patch matrix would exceed :data:`PATCH_BUDGET`).
:func:`gconv_fft`
    The shared-spectrum method. The input is transformed once and its
    spectrum is shared by all ``|G|`` transformed filters; the filter bank is
    transformed once, and no rotated filter is ever transformed: rotating a
    signal about the origin of the periodic ``N x N`` grid rotates its DFT the
    same way (``F[w(g^-1 .)](omega) = W(g^-1 omega)``, the matrices being
    orthogonal), an index permutation in frequency. Two equivalent ways to use it:

    ``filter`` strategy (the literal one): gather the spectra of all rotated
    filters ``W(g^-1 omega)`` from the one filter spectrum, multiply with the
    shared input spectrum.

    ``input`` strategy: since ``sum X(omega) conj(W(g^-1 omega))`` is, at
    ``omega = g omega'``, ``sum X(g omega') conj(W(omega'))``, gather the
    (shared) input spectrum at ``g omega'`` instead, multiply with the one
    filter spectrum, and rotate the result back in space while cropping. It
    moves ``|G| * B * (C_in + C_out)`` values per frequency instead of
    ``|G| * C_in * C_out``, and every element uses the same filter matrix, so
    the product is one well-shaped batched GEMM. :func:`make_plan` picks the
    cheaper strategy (``input`` unless the batch outweighs the channels).

    On the real-FFT half spectrum a source frequency in the missing half is
    read as the conjugate of its mirror (Hermitian symmetry): the gathers read
    from ``[A, conj(A)]`` stacks. Rotating a filter about its *centre* rather
    than the grid origin is a translation by ``d_g = c - g c`` (``c = (k-1)/2``;
    ``d_g`` is 0 or ``k-1`` per axis, for odd and even ``k`` alike); it is
    folded, with ``same``'s padding, into the index array that crops the
    output (``Plan.out_index``), not applied as a phase multiply. Channels and
    the input G axis are summed in frequency by a batched matmul with
    frequency as the batch axis. Transforms are real (``rfft``) and pruned:
    the rows of zero padding below a small filter are not transformed.
:func:`gconv_fft_unshared`
    The ablation: ``|G|`` independent FFT correlations, each transforming the
    input and its own transformed filter bank, with the same building blocks.
    It exists to measure what :func:`gconv_fft` shares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from symbench.groups import filter_indices, get_group, same_padding
from symbench.numerics import fast_len

#: Largest im2col patch matrix of the direct method before it is split (bytes).
PATCH_BUDGET = 64 * 2**20
STRATEGIES = ("filter", "input")


@dataclass(frozen=True)
class Plan:
    """What a p4/p4m layer precomputes for one problem (see :func:`make_plan`).

    Attributes
    ----------
    group, op, mode : str
    G, gin, batch, c_in, k : int
        Group order, input G axis (1 for lift), batch, input channels, filter side.
    in_hw, padded_hw, out_hw : tuple of int
        Spatial sizes of the input, the zero-padded input and the output.
    pad : int
        Zeros before each spatial axis in ``same`` mode (0 in ``valid``).
    filter_index : array
        ``(G, c_in, gin, k, k)`` indices into ``w.reshape(C_out, -1)``: the
        transformed filter bank ``(C_out, G, c_in, gin, k, k)`` is one gather.
    tap_rows : tuple of (int, int)
        Filter rows per GEMM of the direct method.
    N : int
        FFT side (0 when the plan has no FFT part).
    strategy : {"filter", "input"}
        Which spectrum the FFT method permutes (see the module docstring).
    spec_index : array or None
        ``(F, G, gin)`` with ``F = N * (N//2+1)``. ``filter``: indices into the
        stacked filter half spectra ``[conj(W), W]`` ``(2 * gin * F, c_in, C_out)``;
        ``input``: into the stacked input half spectra ``[X, conj(X)]``
        ``(2 * gin * F, B, c_in)``.
    out_index : array or None
        ``(G, n1', n2')`` indices into the ``(G * N * N)`` circular correlation
        planes of one ``(b, o)``: rotation back (``input``), the centre
        translation ``d_g`` and the ``same`` padding, all in one gather.
    plain_index : array or None
        ``(n1', n2')``: the same for an unrotated filter (the ablation).
    """

    group: str
    op: str
    mode: str
    G: int
    gin: int
    batch: int
    c_in: int
    k: int
    in_hw: tuple[int, int]
    padded_hw: tuple[int, int]
    out_hw: tuple[int, int]
    pad: int
    filter_index: Any
    tap_rows: tuple[tuple[int, int], ...]
    N: int = 0
    strategy: str = "input"
    spec_index: Any = None
    out_index: Any = None
    plain_index: Any = None

    def to(self, xp: Any) -> "Plan":
        """The same plan with its index arrays on ``xp``'s device (``numpy`` returns self)."""
        if xp is np:
            return self
        moved = {name: (None if getattr(self, name) is None else xp.asarray(getattr(self, name)))
                 for name in ("filter_index", "spec_index", "out_index", "plain_index")}
        return replace(self, **moved)

    @property
    def spectrum_size(self) -> int:
        """Complex entries of one half spectrum, ``N * (N // 2 + 1)``."""
        return self.N * (self.N // 2 + 1)


def choose_strategy(G: int, gin: int, batch: int, c_in: int, c_out: int) -> str:
    """``filter`` when gathering ``|G|`` filter spectra moves fewer values than permuting inputs and outputs."""
    filter_cost = G * gin * c_in * c_out
    input_cost = G * batch * (gin * c_in + c_out)
    return "filter" if filter_cost < input_cost else "input"


def make_plan(group: str, op: str, x_shape: tuple[int, ...], w_shape: tuple[int, ...], mode: str,
              *, fft: bool = True, itemsize: int = 8, patch_budget: int = PATCH_BUDGET,
              fft_size: int | None = None, strategy: str | None = None) -> Plan:
    """Precompute everything a layer needs for these shapes (host NumPy).

    Parameters
    ----------
    group : {"p4", "p4m"}
    op : {"lift", "gconv"}
    x_shape, w_shape : tuple
        Canonical shapes (see the module docstring), assumed valid
        (:func:`symbench.dispatch.api.gconv` checks user input).
    mode : {"valid", "same"}
    fft : bool
        Also build the frequency-domain part.
    itemsize : int
        Bytes per real element, for the direct method's chunking.
    patch_budget : int
        Largest im2col matrix in bytes before the GEMM is split by filter rows.
    fft_size : int, optional
        Force the FFT side (tests); default the next fast length of the padded input.
    strategy : {"filter", "input"}, optional
        Force the FFT strategy; default :func:`choose_strategy`.
    """
    grp = get_group(group)
    G = grp.order
    gin = 1 if op == "lift" else G
    B, c_in = x_shape[0], x_shape[1]
    c_out = w_shape[0]
    n1, n2 = x_shape[-2:]
    k = w_shape[-1]
    before, after = same_padding(k) if mode == "same" else (0, 0)
    p1, p2 = n1 + before + after, n2 + before + after
    out_hw = (p1 - k + 1, p2 - k + 1)

    base = filter_indices(group, k, gin)  # (G, gin, k, k) into one channel's (gin, k, k)
    findex = np.arange(c_in)[None, :, None, None, None] * (gin * k * k) + base[:, None]

    row_bytes = max(1, B * c_in * gin * k * out_hw[0] * out_hw[1] * itemsize)
    rows = max(1, min(k, patch_budget // row_bytes))
    tap_rows = tuple((a, min(k, a + rows)) for a in range(0, k, rows))

    plan = Plan(group=group, op=op, mode=mode, G=G, gin=gin, batch=B, c_in=c_in, k=k, in_hw=(n1, n2),
                padded_hw=(p1, p2), out_hw=out_hw, pad=before, filter_index=findex, tap_rows=tap_rows)
    if not fft:
        return plan
    N = fft_size or fast_len(max(p1, p2))
    if N < max(p1, p2):
        raise ValueError(f"FFT side {N} is smaller than the padded input {p1}x{p2}")
    strategy = strategy or choose_strategy(G, gin, B, c_in, c_out)
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r}; allowed: {', '.join(STRATEGIES)}")
    return replace(plan, N=N, strategy=strategy,
                   spec_index=spectrum_indices(group, gin, N, strategy),
                   out_index=output_indices(group, k, N, out_hw, before, rotate_back=strategy == "input"),
                   plain_index=output_indices(group, k, N, out_hw, before, rotate_back=False, plain=True))


def spectrum_indices(group: str, gin: int, N: int, strategy: str) -> np.ndarray:
    """The frequency permutations of the FFT method, as one gather per call.

    ``filter``: target ``(omega, g, s)`` reads ``conj(W[g^-1 s](g^-1 omega))``,
    the conjugated spectrum of the filter ``(g.w)[s]`` rotated about the grid
    origin. ``input``: target ``(omega', g, s')`` reads ``X[g s'](g omega')``.
    The target runs over the half spectrum ``(o1 in [0, N), o2 in [0, N//2])``;
    a source outside that half is read as the conjugate of its mirror
    ``-omega``, from the other block of the stack (``[conj(W), W]`` or
    ``[X, conj(X)]``; blocks, then input G index, then frequency).

    Returns
    -------
    numpy.ndarray
        ``(N * (N//2+1), G, gin)`` integer indices.
    """
    grp = get_group(group)
    G = grp.order
    Nh = N // 2 + 1
    F = N * Nh
    o1, o2 = np.meshgrid(np.arange(N), np.arange(Nh), indexing="ij")
    omega = np.stack([o1.ravel(), o2.ravel()], axis=-1)  # (F, 2)
    out = np.empty((F, G, gin), dtype=np.intp)
    for g in range(G):
        src_el = grp.inverse(g) if strategy == "filter" else g
        src = (omega @ grp.matrix(src_el).T) % N
        s1, s2 = src[:, 0], src[:, 1]
        in_half = s2 < Nh
        flat = np.where(in_half, s1 * Nh + s2, ((-s1) % N) * Nh + ((-s2) % N))
        block = np.where(in_half, 0, 1)
        for s in range(gin):
            if gin == 1:
                s_src = 0
            elif strategy == "filter":
                s_src = grp.left_inverse_table[g, s]  # g^-1 s
            else:
                s_src = grp.cayley[g, s]  # g s
            out[:, g, s] = (block * gin + s_src) * F + flat
    return out


def output_indices(group: str, k: int, N: int, out_hw: tuple[int, int], pad: int, *,
                   rotate_back: bool, plain: bool = False) -> np.ndarray:
    """Where output ``(g, t)`` sits in the circular correlation planes ``(G, N, N)``.

    The correlation with the filter rotated about the origin, at shift ``s``,
    is the layer's output at ``t = s - d_g + pad`` (``d_g = c - g c``: the
    filter rotates about its centre ``c``; ``pad``: the ``same`` zeros, which
    the transform does not store). With ``rotate_back`` (``input`` strategy)
    plane ``g`` holds that correlation at ``g^-1 s``. ``plain``: one plane, no
    rotation (the ablation's unrotated copies). Indices are taken mod ``N``
    (negative shifts wrap; ``N`` covers the padded input, so nothing aliases).
    """
    grp = get_group(group)
    c = np.full(2, (k - 1) / 2.0)
    t1, t2 = np.meshgrid(np.arange(out_hw[0]), np.arange(out_hw[1]), indexing="ij")
    t = np.stack([t1, t2], axis=-1) - pad
    if plain:
        s = t % N
        return s[..., 0] * N + s[..., 1]
    out = np.empty((grp.order, *out_hw), dtype=np.intp)
    for g in range(grp.order):
        d = np.rint(c - grp.matrix(g) @ c).astype(np.intp)
        s = t + d
        if rotate_back:
            s = s @ grp.matrix(grp.inverse(g)).T
        s = s % N
        out[g] = g * N * N + s[..., 0] * N + s[..., 1]
    return out


# -- shared pieces -------------------------------------------------------------------------------

def _planes(xp: Any, x: Any, plan: Plan) -> Any:
    """``x`` as ``(B, c_in * gin, n1, n2)`` (a view when ``x`` is contiguous)."""
    return xp.ascontiguousarray(x).reshape(x.shape[0], plan.c_in * plan.gin, *plan.in_hw)


def pad_input(xp: Any, x: Any, plan: Plan) -> Any:
    """The input planes zero-padded for the mode (the planes themselves in ``valid``)."""
    planes = _planes(xp, x, plan)
    if plan.pad == 0 and tuple(plan.padded_hw) == tuple(plan.in_hw):
        return planes
    buf = xp.zeros((planes.shape[0], planes.shape[1], *plan.padded_hw), dtype=planes.dtype)
    p = plan.pad
    buf[:, :, p:p + plan.in_hw[0], p:p + plan.in_hw[1]] = planes
    return buf


def transform_filters(xp: Any, w: Any, plan: Plan) -> Any:
    """The stacked filter bank ``(C_out, G, c_in, gin, k, k)``: every ``g.w``, by one gather."""
    co = w.shape[0]
    flat = xp.ascontiguousarray(w).reshape(co, -1)
    bank = xp.take(flat, plan.filter_index.reshape(-1), axis=1)
    return bank.reshape(co, plan.G, plan.c_in, plan.gin, plan.k, plan.k)


# -- direct -------------------------------------------------------------------------------------

def im2col(xp: Any, xpad: Any, k: int, rows: tuple[int, int], out_hw: tuple[int, int]) -> Any:
    """Patches ``(B, K * (a1 - a0) * k, n1' * n2')`` of filter rows ``a0:a1`` (one copy of a strided view)."""
    B, K = xpad.shape[:2]
    a0, a1 = rows
    o1, o2 = out_hw
    sB, sK, sH, sW = xpad.strides
    view = xp.lib.stride_tricks.as_strided(xpad[:, :, a0:], shape=(B, K, a1 - a0, k, o1, o2),
                                           strides=(sB, sK, sH, sW, sH, sW))
    return view.reshape(B, K * (a1 - a0) * k, o1 * o2)


def gconv_direct(xp: Any, x: Any, w: Any, plan: Plan) -> Any:
    """The layer as one correlation over the stacked filters (im2col + GEMM)."""
    B, co = x.shape[0], w.shape[0]
    K = plan.c_in * plan.gin
    k = plan.k
    xpad = pad_input(xp, x, plan)
    bank = transform_filters(xp, w, plan).reshape(co * plan.G, K, k, k)
    y = None
    for rows in plan.tap_rows:
        cols = im2col(xp, xpad, k, rows, plan.out_hw)
        wm = bank[:, :, rows[0]:rows[1]].reshape(co * plan.G, -1)
        part = xp.matmul(wm, cols)  # (B, C_out * G, n1' * n2')
        if y is None:
            y = part
        else:
            y += part
    return y.reshape(B, co, plan.G, *plan.out_hw)


# -- FFT ----------------------------------------------------------------------------------------

def rfft2_pruned(fft: Any, a: Any, N: int) -> Any:
    """``rfft2(a, s=(N, N))`` of small planes: the all-zero padding rows are never transformed.

    Rows first (``rfft`` of the ``h`` stored rows to length ``N``), then
    columns (``fft`` of length ``N``, which pads the ``h`` rows with zeros).
    """
    return fft.fft(fft.rfft(a, n=N, axis=-1), n=N, axis=-2)


def _to_space(xp: Any, fft: Any, Y: Any, plan: Plan, B: int, co: int, G: int) -> Any:
    """Frequency-major products ``(F, G, B, C_out)`` to circular correlation planes ``(B, C_out, G*N*N)``."""
    N = plan.N
    Yt = xp.ascontiguousarray(Y.transpose(2, 3, 1, 0)).reshape(B, co, G, N, N // 2 + 1)
    return fft.irfft2(Yt, s=(N, N)).reshape(B, co, G * N * N)


def gconv_fft(xp: Any, x: Any, w: Any, plan: Plan, fft: Any = None) -> Any:
    """The shared-spectrum layer (see the module docstring)."""
    fft = fft if fft is not None else xp.fft
    B, co = x.shape[0], w.shape[0]
    N, F, G, gin, ci = plan.N, plan.spectrum_size, plan.G, plan.gin, plan.c_in
    K = gin * ci
    X = rfft2_pruned(fft, _planes(xp, x, plan), N)  # once, shared by every element
    W = rfft2_pruned(fft, xp.ascontiguousarray(w).reshape(co, K, plan.k, plan.k), N)  # once
    idx = plan.spec_index.reshape(-1)
    if plan.strategy == "filter":
        Xf = xp.ascontiguousarray(X.reshape(B, ci, gin, F).transpose(3, 0, 2, 1)).reshape(F, 1, B, K)
        Wf = W.reshape(co, ci, gin, F).transpose(2, 3, 1, 0)  # (gin, F, c_in, C_out), a view
        source = xp.stack([xp.conj(Wf), Wf]).reshape(2 * gin * F, ci, co)
        bank = xp.take(source, idx, axis=0).reshape(F, G, K, co)  # every rotated filter spectrum
        Y = xp.matmul(Xf, bank)  # (F, G, B, C_out)
    else:
        Xf = X.reshape(B, ci, gin, F).transpose(2, 3, 0, 1)  # (gin, F, B, c_in), a view
        source = xp.stack([Xf, xp.conj(Xf)]).reshape(2 * gin * F, B, ci)
        Xg = xp.take(source, idx, axis=0).reshape(F, G, gin, B, ci)  # X[g s'](g omega')
        if gin > 1 and B > 1:
            Xg = xp.ascontiguousarray(Xg.transpose(0, 1, 3, 2, 4))
        Xg = Xg.reshape(F, G * B, K)
        Wc = xp.ascontiguousarray(W.reshape(co, ci, gin, F).transpose(3, 2, 1, 0)).reshape(F, K, co)
        xp.conj(Wc, out=Wc)  # K ordered (gin, c_in), as Xg
        Y = xp.matmul(Xg, Wc).reshape(F, G, B, co)  # one filter matrix per frequency for all g
    Z = _to_space(xp, fft, Y, plan, B, co, G)
    out = xp.take(Z, plan.out_index.reshape(-1), axis=2)
    return out.reshape(B, co, G, *plan.out_hw)


def gconv_fft_unshared(xp: Any, x: Any, w: Any, plan: Plan, fft: Any = None) -> Any:
    """|G| independent FFT correlations of the transformed filters (the ablation of :func:`gconv_fft`)."""
    fft = fft if fft is not None else xp.fft
    B, co = x.shape[0], w.shape[0]
    N, F, G, gin, ci, k = plan.N, plan.spectrum_size, plan.G, plan.gin, plan.c_in, plan.k
    K = gin * ci
    bank = transform_filters(xp, w, plan)  # (C_out, G, c_in, gin, k, k)
    out = xp.empty((B, co, G, *plan.out_hw), dtype=x.dtype)
    idx = plan.plain_index.reshape(-1)
    for g in range(G):
        X = rfft2_pruned(fft, _planes(xp, x, plan), N)  # recomputed for every g: nothing shared
        Xf = xp.ascontiguousarray(X.reshape(B, K, F).transpose(2, 0, 1))  # (F, B, K)
        W = rfft2_pruned(fft, xp.ascontiguousarray(bank[:, g]).reshape(co, K, k, k), N)
        Wc = xp.ascontiguousarray(W.reshape(co, K, F).transpose(2, 1, 0))
        xp.conj(Wc, out=Wc)
        Y = xp.matmul(Xf, Wc)  # (F, B, C_out)
        Z = _to_space(xp, fft, Y[:, None], plan, B, co, 1)
        out[:, :, g] = xp.take(Z, idx, axis=2).reshape(B, co, *plan.out_hw)
    return out


# -- sizes --------------------------------------------------------------------------------------

def direct_workspace_bytes(plan: Plan, B: int, co: int, itemsize: int) -> int:
    """Peak extra bytes of :func:`gconv_direct`: padded input, filter bank, patches, output."""
    K = plan.c_in * plan.gin
    rows = max(b - a for a, b in plan.tap_rows)
    patches = B * K * rows * plan.k * math.prod(plan.out_hw)
    padded = B * K * math.prod(plan.padded_hw)
    bank = co * plan.G * K * plan.k ** 2
    out = 2 * B * co * plan.G * math.prod(plan.out_hw)
    return int(itemsize * (patches + padded + bank + out))


def fft_workspace_bytes(G: int, gin: int, B: int, c_in: int, co: int, N: int, out_el: int,
                        itemsize: int, shared: bool = True) -> int:
    """Peak extra bytes of the FFT methods: spectra (complex), products and full planes (an upper bound)."""
    K = c_in * gin
    F = N * (N // 2 + 1)
    planes = G if shared else 1
    complex_el = F * (3 * B * K + 3 * co * K + planes * K * max(B, co) * 2 + 2 * planes * B * co)
    real_el = B * co * planes * N * N + out_el
    return int(itemsize * (2 * complex_el + real_el))
