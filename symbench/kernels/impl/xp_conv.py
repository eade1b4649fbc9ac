"""Convolution logic written once against an array namespace ``xp`` (NumPy or CuPy).

The GPU kernels (:mod:`symbench.kernels.cupy_conv`) call these functions with
``xp = cupy``; the tests call the very same functions with ``xp = numpy``, so
everything but the device-specific parts (CUDA events, the cuFFT plan cache,
the raw CUDA kernel, the memory pool) is tested on any machine.

Arrays come in the canonical layouts of :mod:`symbench.problem`::

    x (B, C_in, *spatial)    h (C_out, C_in, *kspatial)    ->    y (B, C_out, *out)

with ``y[b, o] = sum_i scipy.signal.convolve(x[b, i], h[o, i], mode)``.

Nothing here imports CuPy: the namespace is passed in. Only array-API-ish
calls both libraries share are used (``xp.fft.rfftn``, ``xp.matmul``,
``reshape``/``transpose``, slicing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from symbench.numerics import CUFFT_PRIMES, channel_mac, next_smooth  # noqa: F401  (re-used by the CuPy kernels)
from symbench.problem import conv_out_shape, crop_slices

def fft_lengths(sx: Sequence[int], sh: Sequence[int], real: bool,
                primes: Sequence[int] = CUFFT_PRIMES) -> tuple[int, ...]:
    """Transform lengths for a linear convolution: ``n + k - 1`` per axis, rounded up to a smooth length.

    The last axis of a real transform is kept even (see :func:`next_smooth`).
    """
    full = [int(a) + int(b) - 1 for a, b in zip(sx, sh)]
    last = len(full) - 1
    return tuple(next_smooth(s, primes, even=real and i == last) for i, s in enumerate(full))


def is_plain_shape(x_shape: Sequence[int], h_shape: Sequence[int]) -> bool:
    """One signal and one filter (no batch, no channels)."""
    return x_shape[0] == 1 and x_shape[1] == 1 and h_shape[0] == 1


@dataclass(frozen=True)
class FFTConvPlan:
    """Everything about an FFT convolution that does not depend on the data.

    Attributes
    ----------
    shape : tuple of int
        Transform lengths per spatial axis.
    axes : tuple of int
        The spatial axes of the canonical layout (``2, 3, ...``).
    real : bool
        Real transforms (R2C/C2R) for real data; complex ones otherwise.
    crop : tuple of slice
        What the mode keeps of the full convolution (SciPy's semantics).
    """

    shape: tuple[int, ...]
    axes: tuple[int, ...]
    real: bool
    crop: tuple[slice, ...]

    @classmethod
    def make(cls, x_shape: Sequence[int], h_shape: Sequence[int], mode: str, real: bool,
             primes: Sequence[int] = CUFFT_PRIMES) -> "FFTConvPlan":
        sx, sh = tuple(x_shape[2:]), tuple(h_shape[2:])
        if len(sx) != len(sh):
            raise ValueError(f"x has {len(sx)} spatial axes and h {len(sh)}")
        shape = fft_lengths(sx, sh, real, primes)
        axes = tuple(range(2, 2 + len(sx)))
        lead = (slice(None), slice(None))
        return cls(shape, axes, real, lead + crop_slices(sx, sh, mode))

    @property
    def spectrum_shape(self) -> tuple[int, ...]:
        """Shape of one spectrum plane (the last axis halved for real transforms)."""
        if not self.real:
            return self.shape
        return (*self.shape[:-1], self.shape[-1] // 2 + 1)


def fft_conv(xp: Any, x: Any, h: Any, plan: FFTConvPlan) -> Any:
    """FFT convolution of canonical ``x`` and ``h``, cropped to the plan's mode.

    Both operands are transformed on every call; the channels are
    multiply-accumulated in frequency (:func:`channel_mac`) and one inverse
    transform per output plane follows. The result keeps the inputs' dtype
    (float32 stays float32 on both NumPy >= 2 and CuPy) and is a view of the
    full result.
    """
    s, axes = plan.shape, plan.axes
    if plan.real:
        X = xp.fft.rfftn(x, s=s, axes=axes)
        H = xp.fft.rfftn(h, s=s, axes=axes)
        y = xp.fft.irfftn(channel_mac(xp, X, H), s=s, axes=axes)
    else:
        X = xp.fft.fftn(x, s=s, axes=axes)
        H = xp.fft.fftn(h, s=s, axes=axes)
        y = xp.fft.ifftn(channel_mac(xp, X, H), s=s, axes=axes)
    dtype = xp.result_type(x.dtype, h.dtype)
    return y[plan.crop].astype(dtype, copy=False)


def fft_conv_bytes(x_shape: Sequence[int], h_shape: Sequence[int], plan: FFTConvPlan, itemsize: int) -> int:
    """Peak bytes of :func:`fft_conv`'s temporaries (padded copies, spectra, GEMM copies, full output).

    ``itemsize`` is that of the real (or complex) input dtype. cuFFT work
    areas are counted as one more spectrum of the largest operand.
    """
    B, ci = x_shape[:2]
    co = h_shape[0]
    P = math.prod(plan.shape)
    S = math.prod(plan.spectrum_shape)
    citem = 2 * itemsize if plan.real else itemsize
    px, ph, py = B * ci, co * ci, B * co
    padded = itemsize * P * (px + ph)
    spectra = citem * S * (px + ph + py)
    if not is_plain_shape(x_shape, h_shape):
        spectra *= 2  # the frequency-major copies made around the GEMM
    work = citem * S * max(px, ph, py)
    full_out = itemsize * P * py
    return int(padded + spectra + work + full_out)


# -- the direct raw kernel's launch geometry (pure arithmetic, tested on the CPU) ----------

@dataclass(frozen=True)
class DirectTiles:
    """Tile sizes of the shared-memory direct kernels; passed to the CUDA compiler as ``-D`` macros.

    1-D: a block of ``tile1`` threads computes ``tile1 * rpt1`` consecutive
    outputs of one (batch, output channel) pair; each thread keeps ``rpt1``
    accumulators for outputs ``tile1`` apart, and the filter streams through
    shared memory ``kc1`` taps at a time together with the input segment
    those taps need.

    2-D: a block of ``tx2 x ty2`` threads computes a ``(ty2*ry2) x (tx2*rx2)``
    output tile; the filter streams through shared memory in ``kc2 x kc2``
    chunks with the ``(tile + kc2 - 1)^2`` input patch they need.
    """

    tile1: int = 256
    rpt1: int = 4
    kc1: int = 256
    tx2: int = 16
    ty2: int = 16
    rx2: int = 2
    ry2: int = 2
    kc2: int = 16

    @property
    def out1(self) -> int:
        return self.tile1 * self.rpt1

    @property
    def out2(self) -> tuple[int, int]:
        """(rows, cols) of the 2-D output tile."""
        return self.ty2 * self.ry2, self.tx2 * self.rx2

    def shared_bytes(self, dim: int, itemsize: int) -> int:
        """Static shared memory of one block (what the CUDA source declares)."""
        if dim == 1:
            return itemsize * (self.out1 + self.kc1 - 1 + self.kc1)
        oy, ox = self.out2
        return itemsize * ((oy + self.kc2 - 1) * (ox + self.kc2 - 1) + self.kc2 * self.kc2)

    def defines(self) -> tuple[str, ...]:
        """Compiler options that set the tile macros of ``direct_conv.cu``."""
        return (f"-DTILE1={self.tile1}", f"-DRPT1={self.rpt1}", f"-DKC1={self.kc1}",
                f"-DTX2={self.tx2}", f"-DTY2={self.ty2}", f"-DRX2={self.rx2}", f"-DRY2={self.ry2}",
                f"-DKC2={self.kc2}")


#: CUDA caps gridDim.y and gridDim.z at 65535: they carry C_out and the batch.
MAX_GRID_YZ = 65535
INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class DirectLaunch:
    """Grid, block and integer arguments of one launch of ``conv1d`` or ``conv2d``."""

    kernel: str
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    out_shape: tuple[int, ...]  # canonical (B, C_out, *out)
    ints: tuple[int, ...]       # the kernel's int parameters after the three pointers


def direct_launch(x_shape: Sequence[int], h_shape: Sequence[int], mode: str,
                  tiles: DirectTiles = DirectTiles()) -> DirectLaunch:
    """How to launch the direct kernel for canonical shapes and a SciPy mode.

    Every output is computed in *full-convolution coordinates*: output ``m``
    of the mode is full index ``m + start`` (per axis, from
    :func:`symbench.problem.crop_slices`), so ``same`` and ``valid`` -- including
    SciPy's swap of the inputs in ``valid`` when the kernel is the larger one --
    need no special case: convolution is commutative, only the kept window moves.
    """
    B, ci = int(x_shape[0]), int(x_shape[1])
    co = int(h_shape[0])
    if int(h_shape[1]) != ci:
        raise ValueError(f"x has {ci} input channels and h {h_shape[1]}")
    sx, sh = tuple(int(v) for v in x_shape[2:]), tuple(int(v) for v in h_shape[2:])
    out = conv_out_shape(sx, sh, mode)
    starts = tuple(s.start for s in crop_slices(sx, sh, mode))
    if B > MAX_GRID_YZ or co > MAX_GRID_YZ:
        raise ValueError(f"batch {B} and c_out {co} must be <= {MAX_GRID_YZ} (CUDA grid limit)")
    if max(*sx, *sh, *out, B * ci, co * ci) > INT32_MAX:
        raise ValueError("sizes must fit the kernel's 32-bit int arguments")
    if len(sx) == 1:
        blocks = -(-out[0] // tiles.out1)
        return DirectLaunch("conv1d", (blocks, co, B), (tiles.tile1, 1, 1), (B, co, *out),
                            (B, ci, co, sx[0], sh[0], out[0], starts[0]))
    if len(sx) == 2:
        oy, ox = tiles.out2
        tiles_y, tiles_x = -(-out[0] // oy), -(-out[1] // ox)
        return DirectLaunch("conv2d", (tiles_y * tiles_x, co, B), (tiles.tx2, tiles.ty2, 1), (B, co, *out),
                            (B, ci, co, sx[0], sx[1], sh[0], sh[1], out[0], out[1], starts[0], starts[1],
                             tiles_x))
    raise ValueError(f"the direct kernel is 1-D or 2-D, not {len(sx)}-D")


def direct_conv_bytes(x_shape: Sequence[int], h_shape: Sequence[int], mode: str, itemsize: int) -> int:
    """Device bytes of the direct kernel: the inputs and the output, nothing else."""
    out = conv_out_shape(x_shape[2:], h_shape[2:], mode)
    return int(itemsize * (math.prod(x_shape) + math.prod(h_shape) + x_shape[0] * h_shape[0] * math.prod(out)))
