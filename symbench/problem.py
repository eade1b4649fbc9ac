"""Problems: one point of a sweep, its inputs, its float64 reference and its cost.

A :class:`Problem` is a frozen dataclass so that it can be used as a key (a
row of ``measurements.csv`` is identified by its kernel and its problem). The
arrays of a problem always come in the *canonical* layout that every kernel
receives::

    conv   x (B, C_in, *[n] * dim)      h (C_out, C_in, *[k] * dim)   -> (B, C_out, *out)
    lift   x (B, C_in, n, n)            w (C_out, C_in, k, k)         -> (B, C_out, G, *out)
    gconv  x (B, C_in, G, n, n)         w (C_out, C_in, G, k, k)      -> (B, C_out, G, *out)

so a kernel never has to guess whether it got channels. The helpers here only
use NumPy and SciPy; nothing in this module measures anything.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass, fields
from typing import Any, Sequence

import numpy as np

from symbench.errors import ConfigError

OPS = ("conv", "lift", "gconv")
#: Order of each group; ``none`` is the plain translation group of ``conv``.
GROUP_ORDER = {"none": 1, "p4": 4, "p4m": 8}
MODES = ("full", "same", "valid")
#: Modes of the group ops: the cross-correlation layers of CNNs have no ``full``.
GROUP_MODES = ("valid", "same")
DTYPES = ("float32", "float64", "complex64", "complex128")
DIMS = (1, 2)

#: The columns that identify a problem, in the order of ``measurements.csv``.
KEY_FIELDS = ("op", "group", "dim", "n", "k", "batch", "c_in", "c_out", "dtype", "mode", "threads")
#: A *series*: the problem without its k, in the order reports print it. One name for what
#: ``--max-call`` cuts, what a crossover is found in, and (without n) what a dispatch table keys on.
SERIES_FIELDS = ("op", "group", "dim", "dtype", "mode", "batch", "c_in", "c_out", "threads", "n")


def _allowed(name: str, value: Any, allowed: Sequence[Any]) -> None:
    if value not in allowed:
        raise ConfigError(
            f"{name} {value!r} is not supported; allowed: {', '.join(map(str, allowed))}"
        )


@dataclass(frozen=True, order=True)
class Problem:
    """One point of a sweep.

    Parameters
    ----------
    op : {"conv", "lift", "gconv"}
        The operation.
    group : {"none", "p4", "p4m"}
        The symmetry group of ``lift``/``gconv``; ``"none"`` for ``conv``.
    dim : {1, 2}
        Spatial dimensions; 2-D signals are ``n x n`` images.
    n, k : int
        Signal length (or image side) and kernel length (or side).
    batch, c_in, c_out : int
        Batch size and channels; ``y[b, o] = sum_i conv(x[b, i], h[o, i])``.
    dtype : str
        One of :data:`DTYPES`.
    mode : {"full", "same", "valid"}
        Output size, as in :func:`scipy.signal.convolve`.
    threads : int
        Threads the kernel may use.
    """

    op: str = "conv"
    group: str = "none"
    dim: int = 1
    n: int = 1024
    k: int = 3
    batch: int = 1
    c_in: int = 1
    c_out: int = 1
    dtype: str = "float64"
    mode: str = "full"
    threads: int = 1

    def __post_init__(self) -> None:
        _allowed("op", self.op, OPS)
        _allowed("group", self.group, tuple(GROUP_ORDER))
        _allowed("dim", self.dim, DIMS)
        _allowed("dtype", self.dtype, DTYPES)
        for name in ("n", "k", "batch", "c_in", "c_out", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.op == "conv":
            _allowed("mode", self.mode, MODES)
            if self.group != "none":
                raise ConfigError(f"op conv has no group (got {self.group!r}); use --op lift|gconv with --group")
        else:
            _allowed(f"mode of op {self.op}", self.mode, GROUP_MODES)
            if self.group == "none":
                raise ConfigError(f"op {self.op} needs a group; allowed: p4, p4m")
            if self.dim != 2:
                raise ConfigError(f"op {self.op} is 2-D only (got dim {self.dim}); use --dim 2")
            if self.dtype not in ("float32", "float64"):
                raise ConfigError(f"op {self.op} supports float32 and float64, not {self.dtype}")
            if self.mode == "valid" and self.k > self.n:
                raise ConfigError(f"op {self.op} in valid mode needs k <= n (got n={self.n}, k={self.k})")

    # -- identity -----------------------------------------------------------------
    def key(self) -> tuple:
        """The tuple of :data:`KEY_FIELDS`, as used to match rows."""
        return tuple(getattr(self, f) for f in KEY_FIELDS)

    def series(self) -> tuple:
        """This problem without its k: the tuple of :data:`SERIES_FIELDS`."""
        return tuple(getattr(self, f) for f in SERIES_FIELDS)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, row: Any) -> "Problem":
        """Build a problem from a dict or a DataFrame row with the key columns."""
        kwargs = {}
        for f in fields(cls):
            value = row[f.name]
            kwargs[f.name] = int(value) if f.type in ("int", int) else str(value)
        return cls(**kwargs)

    def label(self) -> str:
        """A short human label, e.g. ``conv 1-D n=1024 k=3 float64 full``."""
        parts = [self.op if self.group == "none" else f"{self.op}/{self.group}", f"{self.dim}-D",
                 f"n={self.n}", f"k={self.k}"]
        if (self.batch, self.c_in, self.c_out) != (1, 1, 1):
            parts.append(f"b={self.batch} {self.c_in}->{self.c_out}")
        parts += [self.dtype, self.mode]
        if self.threads != 1:
            parts.append(f"threads={self.threads}")
        return " ".join(parts)

    # -- shapes ---------------------------------------------------------------------
    @property
    def group_order(self) -> int:
        return GROUP_ORDER[self.group]

    @property
    def spatial(self) -> tuple[int, ...]:
        return (self.n,) * self.dim

    @property
    def kspatial(self) -> tuple[int, ...]:
        return (self.k,) * self.dim

    @property
    def x_shape(self) -> tuple[int, ...]:
        g = (self.group_order,) if self.op == "gconv" else ()
        return (self.batch, self.c_in, *g, *self.spatial)

    @property
    def h_shape(self) -> tuple[int, ...]:
        g = (self.group_order,) if self.op == "gconv" else ()
        return (self.c_out, self.c_in, *g, *self.kspatial)

    @property
    def out_spatial(self) -> tuple[int, ...]:
        if self.op == "conv":
            return conv_out_shape(self.spatial, self.kspatial, self.mode)
        return gconv_out_shape(self.spatial, self.kspatial, self.mode)

    @property
    def out_shape(self) -> tuple[int, ...]:
        g = (self.group_order,) if self.op != "conv" else ()
        return (self.batch, self.c_out, *g, *self.out_spatial)

    @property
    def is_complex(self) -> bool:
        return self.dtype.startswith("complex")

    # -- cost -------------------------------------------------------------------------
    def flops(self) -> float:
        """Nominal flop count of the direct method.

        A real multiply-add is 2 flops, a complex one 8. The number of
        multiply-adds is ``B * C_out * C_in * |out| * |kernel|`` (times ``G`` for
        lift and ``G * G`` for gconv), except in ``full`` mode, where it is the
        exact ``|x| * |h|`` products of the direct sum, and in ``valid`` mode with
        a kernel longer than the signal, where the smaller operand is the filter.
        Every method is divided into this one count, so GFLOP/s compare on one scale.
        """
        per_mac = 8.0 if self.is_complex else 2.0
        x_el = math.prod(self.spatial)
        h_el = math.prod(self.kspatial)
        out_el = math.prod(self.out_spatial)
        if self.op == "conv":
            if self.mode == "full":
                macs = x_el * h_el
            else:
                macs = out_el * min(x_el, h_el)
        else:
            g = self.group_order
            macs = out_el * h_el * g * (g if self.op == "gconv" else 1)
        return per_mac * self.batch * self.c_out * self.c_in * macs

    def memory_bytes(self) -> int:
        """Bytes held by the inputs, the output and the float64 reference."""
        item = np.dtype(self.dtype).itemsize
        ref_item = 16 if self.is_complex else 8
        x_el, h_el, out_el = (math.prod(s) for s in (self.x_shape, self.h_shape, self.out_shape))
        return item * (x_el + h_el + out_el) + ref_item * (x_el + h_el + 2 * out_el)

    def fft_shape(self) -> tuple[int, ...]:
        """Linear-convolution size ``n + k - 1`` per axis (before a fast length is chosen)."""
        return tuple(a + b - 1 for a, b in zip(self.spatial, self.kspatial))

    def tolerance(self) -> float:
        """Largest acceptable ``rel_err`` for this problem (see :func:`tolerance_for`)."""
        terms = self.c_in * math.prod(self.kspatial) * (self.group_order if self.op == "gconv" else 1)
        return tolerance_for(self.dtype, terms, math.prod(self.fft_shape()))


def tolerance_for(dtype: str, terms: int, size: int) -> float:
    """Tolerance on ``rel_err`` for ``terms`` products summed per output and a transform of ``size``.

    Rounding error of both direct and FFT methods grows with the number of
    terms summed into each output (as a random walk, ``sqrt(terms)``) and with
    the number of FFT stages (``log2(size)``). The constant 32 leaves room for
    both, while a wrong result (``rel_err`` of order 1) stays many orders of
    magnitude away.
    """
    eps = float(np.finfo(np.dtype(dtype)).eps)
    return 32.0 * eps * math.sqrt(max(1, terms)) * max(1.0, math.log2(max(2, size)))


# -- shapes shared by every kernel --------------------------------------------------

def conv_out_shape(sx: Sequence[int], sh: Sequence[int], mode: str) -> tuple[int, ...]:
    """Output shape of ``scipy.signal.convolve`` over the given spatial shapes."""
    _allowed("mode", mode, MODES)
    if mode == "full":
        return tuple(a + b - 1 for a, b in zip(sx, sh))
    if mode == "same":
        return tuple(sx)
    _check_valid(sx, sh)
    return tuple(abs(a - b) + 1 for a, b in zip(sx, sh))


def gconv_out_shape(sx: Sequence[int], sh: Sequence[int], mode: str) -> tuple[int, ...]:
    """Output shape of a cross-correlation layer (``valid`` or ``same``)."""
    _allowed("mode", mode, GROUP_MODES)
    if mode == "same":
        return tuple(sx)
    if any(b > a for a, b in zip(sx, sh)):
        raise ConfigError(f"valid mode needs the kernel {tuple(sh)} to fit in the input {tuple(sx)}")
    return tuple(a - b + 1 for a, b in zip(sx, sh))


def _check_valid(sx: Sequence[int], sh: Sequence[int]) -> None:
    ok1 = all(a >= b for a, b in zip(sx, sh))
    ok2 = all(b >= a for a, b in zip(sx, sh))
    if not (ok1 or ok2):
        raise ConfigError(
            f"valid mode needs one input at least as large as the other in every dimension "
            f"(got {tuple(sx)} and {tuple(sh)}); use mode full or same"
        )


def crop_slices(sx: Sequence[int], sh: Sequence[int], mode: str) -> tuple[slice, ...]:
    """Slices that cut a ``full`` convolution down to ``mode``, exactly as SciPy does.

    ``same`` is centred on the full output with the size of ``x``; ``valid``
    keeps the outputs that need no zero padding, and, like SciPy, swaps the
    inputs when the kernel is the larger one.
    """
    _allowed("mode", mode, MODES)
    if mode == "full":
        return tuple(slice(0, a + b - 1) for a, b in zip(sx, sh))
    if mode == "same":
        return tuple(slice((b - 1) // 2, (b - 1) // 2 + a) for a, b in zip(sx, sh))
    _check_valid(sx, sh)
    return tuple(slice(min(a, b) - 1, max(a, b)) for a, b in zip(sx, sh))


def crop_full(full: np.ndarray, sx: Sequence[int], sh: Sequence[int], mode: str) -> np.ndarray:
    """Cut the trailing ``len(sx)`` axes of a full convolution down to ``mode`` (a view)."""
    lead = (slice(None),) * (full.ndim - len(sx))
    return full[lead + crop_slices(sx, sh, mode)]


# -- inputs, reference, error --------------------------------------------------------

def problem_seed(problem: Problem, seed: int) -> list[int]:
    """A seed for this problem's inputs that does not depend on sweep order."""
    return [int(seed), zlib.crc32(repr(problem.key()).encode())]


def make_inputs(problem: Problem, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal inputs in the canonical layout and the problem's dtype."""
    rng = np.random.default_rng(problem_seed(problem, seed))
    dtype = np.dtype(problem.dtype)

    def draw(shape: tuple[int, ...]) -> np.ndarray:
        a = rng.standard_normal(shape)
        if problem.is_complex:
            a = a + 1j * rng.standard_normal(shape)
        return a.astype(dtype)

    return draw(problem.x_shape), draw(problem.h_shape)
