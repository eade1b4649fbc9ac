"""The wallpaper groups p4 and p4m of Cohen & Welling (2016), and the float64 reference of their layers.

A group element of p4 is a rotation by ``r * 90`` degrees followed by a
translation; p4m adds a mirror. Translations are what a convolution already
shares, so this module represents the *point group* (the stabiliser of the
origin), which is what the G axis of a feature map indexes:

    p4   elements (m=0, r) for r = 0..3                        G = 4
    p4m  elements (m, r) for m = 0, 1 and r = 0..3, index 4*m + r   G = 8

Element ``(m, r)`` is the 2x2 integer matrix ``F**m @ R**r`` acting on pixel
coordinates ``(row, col)`` measured from the centre of the image, with

    R = [[0, -1], [1, 0]]   (what ``numpy.rot90(f, 1)`` does to an image)
    F = [[1,  0], [0, -1]]  (what ``numpy.flip(f, -1)`` does: a left-right mirror)

Since ``R F = F R^-1``, the composition law is
``(m1, r1) (m2, r2) = (m1 + m2 mod 2, (-1)**m2 * r1 + r2 mod 4)``.
The full groups (with translations) compose as affine maps ``(M, t)``; see
:func:`compose_affine`.

Actions (both homomorphisms: acting with ``b`` and then with ``a`` is acting with ``a b``):

- on an image ``f`` (trailing two axes): ``(g.f)(p) = f(g^-1 p)``, i.e.
  ``flip**m(rot90**r(f))`` (:meth:`Group.act_image`);
- on a feature map over the group ``f (..., G, h, w)``:
  ``(g.f)[h] = g.(f[g^-1 h])`` -- every map moves in space and the G axis
  is permuted by the group law (:meth:`Group.act_gfeature`).

The layers, with the cross-correlation convention of CNNs (C&W eq. 10, 11):

    lift   y[o, g](t) = sum_i sum_p  x[i](p + t) * (g.w[o, i])(p)
    gconv  y[o, g](t) = sum_i sum_s sum_p  x[i, s](p + t) * (g.w[o, i])[s](p)

where ``g.w`` is the image action for ``lift`` and the G-feature action for
``gconv`` (rotating the filter about its own centre). Both are equivariant:
``layer(g.x) == g.layer(x)``. Filter transformations are precomputed as index
arrays (:func:`filter_indices`), the way GrouPy does it, so a layer never
re-derives them per call.

Modes: ``valid`` keeps outputs whose receptive field lies inside the input
(``n - k + 1``). ``same`` zero-pads ``(k - 1) // 2`` before and ``k // 2``
after on each axis (PyTorch's and TensorFlow's ``padding="same"``), so the
output is ``n x n``. For odd ``k`` the padding is symmetric and ``same`` is
exactly equivariant; for even ``k`` no ``n x n`` window can be centred, and
equivariance holds only up to a one-pixel shift (``valid`` is exact for every k).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from symbench.errors import SymbenchError
from symbench.numerics import channel_fft_conv

if TYPE_CHECKING:
    from symbench.problem import Problem

_R = np.array([[0, -1], [1, 0]], dtype=np.int64)
_F = np.array([[1, 0], [0, -1]], dtype=np.int64)

GROUPS = ("p4", "p4m")


@dataclass(frozen=True)
class Group:
    """A point group (p4 or p4m) with its law, its tables and its actions.

    Attributes
    ----------
    name : str
        ``"p4"`` or ``"p4m"``.
    elements : tuple of (m, r)
        Mirror flag and number of quarter turns, in G-axis order.
    """

    name: str
    elements: tuple[tuple[int, int], ...]

    @property
    def order(self) -> int:
        """|G|, the length of the G axis."""
        return len(self.elements)

    def index(self, m: int, r: int) -> int:
        """Position on the G axis of element ``(m, r)``."""
        m, r = int(m) % 2, int(r) % 4
        if m and self.name == "p4":
            raise SymbenchError("p4 has no mirrors; use p4m")
        return 4 * m + r

    # -- the law ---------------------------------------------------------------------
    def compose(self, a: int, b: int) -> int:
        """Index of the product ``a b`` (apply ``b`` first, then ``a``)."""
        m1, r1 = self.elements[a]
        m2, r2 = self.elements[b]
        return self.index(m1 + m2, (-1) ** m2 * r1 + r2)

    def inverse(self, a: int) -> int:
        """Index of ``a^-1``: a mirror is its own inverse, a rotation turns back."""
        m, r = self.elements[a]
        return self.index(m, r if m else -r)

    @functools.cached_property
    def cayley(self) -> np.ndarray:
        """``cayley[a, b]`` = index of ``a b``."""
        G = self.order
        return np.array([[self.compose(a, b) for b in range(G)] for a in range(G)], dtype=np.intp)

    @functools.cached_property
    def inverses(self) -> np.ndarray:
        return np.array([self.inverse(a) for a in range(self.order)], dtype=np.intp)

    @functools.cached_property
    def left_inverse_table(self) -> np.ndarray:
        """``table[g, h]`` = index of ``g^-1 h``: how ``g`` permutes the G axis."""
        G = self.order
        return np.array([[self.compose(self.inverse(g), h) for h in range(G)] for g in range(G)],
                        dtype=np.intp)

    # -- the action on the plane ------------------------------------------------------
    def matrix(self, a: int) -> np.ndarray:
        """The 2x2 integer matrix of element ``a`` on ``(row, col)`` coordinates."""
        m, r = self.elements[a]
        return np.linalg.matrix_power(_F, m) @ np.linalg.matrix_power(_R, r)

    @functools.cached_property
    def matrices(self) -> np.ndarray:
        """All matrices, shape ``(G, 2, 2)``."""
        return np.stack([self.matrix(a) for a in range(self.order)])

    def act_points(self, a: int, points: np.ndarray) -> np.ndarray:
        """Move points ``(..., 2)`` (row, col from the centre) by element ``a``."""
        return np.asarray(points) @ self.matrix(a).T

    def act_image(self, a: int, f: np.ndarray) -> np.ndarray:
        """``(a.f)(p) = f(a^-1 p)`` on the trailing two axes (about the image centre)."""
        m, r = self.elements[a]
        out = np.rot90(f, r, axes=(-2, -1))
        if m:
            out = np.flip(out, -1)
        return out

    def act_gfeature(self, a: int, f: np.ndarray) -> np.ndarray:
        """``(a.f)[h] = a.(f[a^-1 h])`` on a map ``(..., G, h, w)`` over the group."""
        f = np.asarray(f)
        if f.ndim < 3 or f.shape[-3] != self.order:
            raise SymbenchError(f"a {self.name} feature map needs a G axis of {self.order} before the "
                                f"two spatial axes; got shape {f.shape}")
        return self.act_image(a, np.take(f, self.left_inverse_table[a], axis=-3))


@functools.lru_cache(maxsize=None)
def get_group(name: str) -> Group:
    """The group called ``name`` (``"p4"`` or ``"p4m"``)."""
    if name == "p4":
        return Group("p4", tuple((0, r) for r in range(4)))
    if name == "p4m":
        return Group("p4m", tuple((m, r) for m in range(2) for r in range(4)))
    raise SymbenchError(f"unknown group {name!r}; allowed: {', '.join(GROUPS)}")


def compose_affine(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Product of two elements of the full group, each ``(M, t)`` acting as ``p -> M p + t``."""
    (ma, ta), (mb, tb) = a, b
    return ma @ mb, ma @ tb + ta


# -- precomputed filter transformations ----------------------------------------------------

@functools.lru_cache(maxsize=64)
def filter_indices(group: str, k: int, gin: int) -> np.ndarray:
    """Index arrays that transform a filter by every group element, as GrouPy does.

    Parameters
    ----------
    group : {"p4", "p4m"}
    k : int
        Filter side.
    gin : int
        Length of the filter's input G axis: 1 for ``lift``, ``|G|`` for ``gconv``.

    Returns
    -------
    numpy.ndarray
        ``idx`` of shape ``(G, gin, k, k)`` such that, for a filter ``w`` of
        shape ``(gin, k, k)``, ``w.reshape(-1)[idx[g]]`` is ``g.w`` (image action
        for ``gin == 1``, G-feature action otherwise). Read-only and cached.
    """
    grp = get_group(group)
    if gin not in (1, grp.order):
        raise SymbenchError(f"a {group} filter has an input G axis of 1 or {grp.order}, not {gin}")
    c = (k - 1) / 2.0
    rows, cols = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    q = np.stack([rows - c, cols - c], axis=-1)  # target positions from the centre
    idx = np.empty((grp.order, gin, k, k), dtype=np.intp)
    for g in range(grp.order):
        minv = grp.matrix(grp.inverse(g))
        src = np.rint(q @ minv.T + c).astype(np.intp)  # (g.w)(q) = w(g^-1 q)
        spatial = src[..., 0] * k + src[..., 1]
        for s in range(gin):
            s_src = grp.left_inverse_table[g, s] if gin > 1 else 0
            idx[g, s] = s_src * k * k + spatial
    idx.setflags(write=False)
    return idx


def transform_filters(group: str, w: np.ndarray, op: str) -> np.ndarray:
    """Every transformed copy of a filter bank, with the obvious array operations.

    ``w`` is ``(C_out, C_in, k, k)`` (lift) or ``(C_out, C_in, G, k, k)``
    (gconv); the result is ``(C_out, G, C_in, [G,] k, k)`` with ``[:, g]``
    equal to ``g.w``. Uses :meth:`Group.act_image`/:meth:`Group.act_gfeature`
    (``rot90``/``flip``), not the index arrays, so the reference is independent
    of the kernels.
    """
    grp = get_group(group)
    act = grp.act_image if op == "lift" else grp.act_gfeature
    return np.stack([act(g, w) for g in range(grp.order)], axis=1)


# -- the float64 reference ------------------------------------------------------------------

def same_padding(k: int) -> tuple[int, int]:
    """Zeros before and after each axis in ``same`` mode (PyTorch/TensorFlow convention)."""
    return (k - 1) // 2, k // 2


def correlate_valid(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``y[b, o] = sum_i scipy.signal.correlate(x[b, i], w[o, i], "valid")`` in float64.

    ``x (B, C, H, W)``, ``w (O, C, kh, kw)``: a correlation is a convolution
    with the flipped filter; channels are summed in frequency
    (:func:`symbench.numerics.channel_fft_conv`).
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    return channel_fft_conv(x, w[:, :, ::-1, ::-1], "valid")


def reference(problem: "Problem", x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The exact lift/gconv layer in float64, canonical output ``(B, C_out, G, n', n')``.

    Straightforward by design: rotate (and mirror) the filters with
    ``rot90``/``flip``, stack them as ``C_out * G`` ordinary filters over
    ``C_in * G_in`` channels, and correlate with SciPy.
    """
    return layer_reference(problem.group, problem.op, x, w, problem.mode)


def layer_reference(group: str, op: str, x: np.ndarray, w: np.ndarray, mode: str = "valid") -> np.ndarray:
    """:func:`reference` without a Problem (see it)."""
    grp = get_group(group)
    G = grp.order
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    B, ci = x.shape[:2]
    co, k = w.shape[0], w.shape[-1]
    bank = transform_filters(group, w, op)  # (C_out, G, C_in, [G,] k, k)
    bank = bank.reshape(co * G, -1, k, k)
    planes = x.reshape(B, -1, *x.shape[-2:])  # (B, C_in * G_in, H, W)
    if mode == "same":
        before, after = same_padding(k)
        planes = np.pad(planes, ((0, 0), (0, 0), (before, after), (before, after)))
    elif mode != "valid":
        raise SymbenchError(f"mode {mode!r} is not supported for group layers; allowed: valid, same")
    y = correlate_valid(planes, bank)
    return y.reshape(B, co, G, *y.shape[-2:])

