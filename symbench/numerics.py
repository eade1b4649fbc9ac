"""Numerical building blocks shared by the references, the group math and the kernels.

One place for what was once written several times over:

- the **fast FFT length policy**: :func:`fast_len` / :func:`fast_shape`
  (SciPy's ``next_fast_len``: 2-3-5(-7-11)-smooth lengths pocketfft and FFTW
  transform fast) and :func:`next_smooth` (lengths whose factors are in a
  given set of radices, for cuFFT); ``fft-pyfftw`` goes further and *measures*
  among smooth lengths (:mod:`symbench.kernels.fftw`);
- the **channel sum in frequency**: :func:`channel_mac`, the
  multiply-accumulate over input channels done per frequency as one small
  matrix product (Mathieu et al., 2013), for any array namespace (NumPy for
  the references' :func:`channel_fft_conv`, CuPy for the GPU kernels).
  ``fft-pyfftw`` runs the same product into preallocated frequency blocks
  split over its thread pool (:mod:`symbench.kernels.fftw`), which a
  general function cannot do without the kernel's buffers.

This module sits in the base layer: it imports nothing of symbench but the
problem's shape helpers.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from symbench.problem import conv_out_shape, crop_slices

#: The radices cuFFT has optimised kernels for (its "Accuracy and Performance" notes).
CUFFT_PRIMES = (2, 3, 5, 7)


def fast_len(n: int, real: bool = True) -> int:
    """SciPy's fast transform length ``>= n`` (good for pocketfft, FFTW and cuFFT alike)."""
    import scipy.fft

    return int(scipy.fft.next_fast_len(int(n), real=real))


def fast_shape(shape: Sequence[int], real: bool) -> tuple[int, ...]:
    """:func:`fast_len` of each axis."""
    return tuple(fast_len(s, real) for s in shape)


def next_smooth(n: int, primes: Sequence[int] = CUFFT_PRIMES, even: bool = False) -> int:
    """The smallest integer ``>= n`` whose prime factors are all in ``primes``.

    Parameters
    ----------
    n : int
        Lower bound (a positive length).
    primes : sequence of int
        Allowed prime factors; cuFFT's fast radices by default.
    even : bool
        Also require an even result. Real (R2C/C2R) transforms of even length
        run as a half-length complex transform plus a cheap post-pass, so the
        last axis of a real transform is kept even.

    Examples
    --------
    >>> next_smooth(1025), next_smooth(11), next_smooth(11, even=True)
    (1029, 12, 12)
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"a transform length must be positive, got {n}")
    if n <= 2:
        return 2 if even else n
    best = None
    # Enumerate products of the primes up to the first power of 2 >= n, which
    # always qualifies; the search space is tiny (a few hundred products).
    limit = 1 << (n - 1).bit_length()
    products = [1]
    for p in primes:
        grown = []
        for base in products:
            v = base
            while v <= limit:
                grown.append(v)
                v *= p
        products = grown
    for v in products:
        if v >= n and (not even or v % 2 == 0) and (best is None or v < best):
            best = v
    assert best is not None  # the power of two always qualifies
    return best


def channel_mac(xp: Any, X: Any, H: Any) -> Any:
    """``Y[b, o] = sum_i X[b, i] * H[o, i]`` over spectra: channels summed in frequency.

    With one signal and one filter it is a plain product. Otherwise the
    spectra are viewed frequency-major, ``(F, B, C_in) @ (F, C_in, C_out)``: one
    batched matrix product over all frequencies (cuBLAS' strided-batched GEMM
    on the GPU), never the ``(B, C_out, C_in, F)`` broadcast.
    """
    B, ci = X.shape[:2]
    co = H.shape[0]
    spec = X.shape[2:]
    if B == 1 and ci == 1 and co == 1:
        return X * H
    F = math.prod(spec)
    Xf = X.reshape(B, ci, F).transpose(2, 0, 1)   # (F, B, C_in)
    Hf = H.reshape(co, ci, F).transpose(2, 1, 0)   # (F, C_in, C_out)
    Yf = xp.matmul(Xf, Hf)                         # (F, B, C_out)
    # The inverse transform wants each output plane contiguous again.
    return xp.ascontiguousarray(Yf.transpose(1, 2, 0)).reshape(B, co, *spec)


def channel_fft_conv(x: np.ndarray, h: np.ndarray, mode: str, block_bytes: int = 2**28) -> np.ndarray:
    """``y[b, o] = sum_i conv(x[b, i], h[o, i])`` by FFT, summing channels in frequency.

    Each signal and filter is transformed once and only the ``B * C_out``
    outputs are transformed back (not ``B * C_out * C_in`` products); filters
    go in blocks of output channels so the spectra stay within
    ``block_bytes``. In double precision the error is ~1e-15 of the peak, far
    below every tolerance checked against it.
    """
    import scipy.fft

    wide = np.complex128 if (np.iscomplexobj(x) or np.iscomplexobj(h)) else np.float64
    real = wide is np.float64
    x = np.asarray(x, dtype=wide)
    h = np.asarray(h, dtype=wide)
    B, ci = x.shape[:2]
    co = h.shape[0]
    sx, sh = x.shape[2:], h.shape[2:]
    keep = crop_slices(sx, sh, mode)
    shape = fast_shape([a + b - 1 for a, b in zip(sx, sh)], real=real)
    axes = tuple(range(2, 2 + len(sx)))
    fwd, inv = (scipy.fft.rfftn, scipy.fft.irfftn) if real else (scipy.fft.fftn, scipy.fft.ifftn)
    X = fwd(x, shape, axes=axes)
    out = np.empty((B, co, *conv_out_shape(sx, sh, mode)), dtype=wide)
    block = max(1, block_bytes // (16 * ci * math.prod(X.shape[2:])))
    for o0 in range(0, co, block):
        Y = channel_mac(np, X, fwd(h[o0:o0 + block], shape, axes=axes))
        out[:, o0:o0 + block] = inv(Y, shape, axes=axes)[(slice(None), slice(None), *keep)]
    return out
