"""The groups p4 and p4m: axioms, actions, precomputed filter indices and the float64 reference."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.signal

from symbench.errors import SymbenchError
from symbench.groups import (GROUPS, compose_affine, filter_indices, get_group, layer_reference, reference,
                             same_padding, transform_filters)
from symbench.problem import Problem


@pytest.fixture(params=GROUPS)
def group(request):
    return get_group(request.param)


def test_orders_and_identity(group):
    assert group.order == {"p4": 4, "p4m": 8}[group.name]
    assert group.elements[0] == (0, 0)
    np.testing.assert_array_equal(group.matrix(0), np.eye(2, dtype=int))
    for a in range(group.order):
        assert group.compose(0, a) == a == group.compose(a, 0)


def test_closure_inverse_associativity(group):
    G = group.order
    table = group.cayley
    assert table.shape == (G, G)
    for a in range(G):  # closure, and a Latin square: every row and column is a permutation
        assert sorted(table[a]) == list(range(G))
        assert sorted(table[:, a]) == list(range(G))
    for a in range(G):
        assert group.compose(a, group.inverse(a)) == 0 == group.compose(group.inverse(a), a)
    for a, b, c in itertools.product(range(G), repeat=3):
        assert group.compose(group.compose(a, b), c) == group.compose(a, group.compose(b, c))


def test_law_matches_matrices(group):
    """The composition law is the matrix product: the map to GL(2, Z) is a homomorphism."""
    for a, b in itertools.product(range(group.order), repeat=2):
        np.testing.assert_array_equal(group.matrix(a) @ group.matrix(b), group.matrix(group.compose(a, b)))
    for a in range(group.order):
        m = group.matrix(a)
        assert abs(round(np.linalg.det(m))) == 1
        np.testing.assert_array_equal(m @ m.T, np.eye(2, dtype=int))  # orthogonal: maps the grid to itself


def test_p4_is_abelian_and_p4m_is_not():
    p4, p4m = get_group("p4"), get_group("p4m")
    assert all(p4.compose(a, b) == p4.compose(b, a) for a, b in itertools.product(range(4), repeat=2))
    mirror, rot = p4m.index(1, 0), p4m.index(0, 1)
    assert p4m.compose(mirror, rot) != p4m.compose(rot, mirror)
    # p4 is the rotation subgroup of p4m, with the same law.
    for a, b in itertools.product(range(4), repeat=2):
        assert p4m.compose(a, b) == p4.compose(a, b)
    with pytest.raises(SymbenchError, match="no mirrors"):
        p4.index(1, 0)


def test_generators_are_numpy_rot90_and_flip():
    grp = get_group("p4m")
    f = np.arange(20.0).reshape(4, 5)
    np.testing.assert_array_equal(grp.act_image(grp.index(0, 1), f), np.rot90(f))
    np.testing.assert_array_equal(grp.act_image(grp.index(1, 0), f), np.fliplr(f))
    # and the point action agrees: rot90 moves the pixel at (row, col) = (0, 1) from the centre to (-1, 0)
    np.testing.assert_array_equal(grp.act_points(grp.index(0, 1), np.array([0, 1])), [-1, 0])


def test_image_action_is_a_homomorphism(group):
    rng = np.random.default_rng(0)
    f = rng.standard_normal((2, 5, 5))
    np.testing.assert_array_equal(group.act_image(0, f), f)
    for a, b in itertools.product(range(group.order), repeat=2):
        np.testing.assert_array_equal(group.act_image(a, group.act_image(b, f)),
                                      group.act_image(group.compose(a, b), f))


def test_image_action_agrees_with_points(group):
    """(g.f)(p) = f(g^-1 p): the value at p after acting came from g^-1 p."""
    k = 5
    c = (k - 1) / 2
    f = np.arange(k * k, dtype=float).reshape(k, k)
    for a in range(group.order):
        moved = group.act_image(a, f)
        for i, j in itertools.product(range(k), repeat=2):
            src = np.rint(group.act_points(group.inverse(a), np.array([i - c, j - c])) + c).astype(int)
            assert moved[i, j] == f[src[0], src[1]]


def test_gfeature_action_is_a_homomorphism(group):
    rng = np.random.default_rng(1)
    f = rng.standard_normal((3, group.order, 4, 4))
    for a, b in itertools.product(range(group.order), repeat=2):
        np.testing.assert_array_equal(group.act_gfeature(a, group.act_gfeature(b, f)),
                                      group.act_gfeature(group.compose(a, b), f))
    with pytest.raises(SymbenchError, match="G axis"):
        group.act_gfeature(1, f[:, :2])


def test_affine_law_is_associative_and_acts_on_points(group):
    rng = np.random.default_rng(2)
    elems = [(group.matrix(a), rng.integers(-3, 4, size=2)) for a in range(group.order)]
    for a, b, c in itertools.product(elems[:4], repeat=3):
        left = compose_affine(compose_affine(a, b), c)
        right = compose_affine(a, compose_affine(b, c))
        np.testing.assert_array_equal(left[0], right[0])
        np.testing.assert_array_equal(left[1], right[1])
    p = np.array([2, -1])
    for a, b in itertools.product(elems, repeat=2):
        m, t = compose_affine(a, b)
        np.testing.assert_array_equal(m @ p + t, a[0] @ (b[0] @ p + b[1]) + a[1])


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_filter_indices_are_the_actions(group, k):
    rng = np.random.default_rng(k)
    w = rng.standard_normal((k, k))
    idx = filter_indices(group.name, k, 1)
    assert idx.shape == (group.order, 1, k, k)
    assert not idx.flags.writeable  # cached and shared: nobody may change it
    wg = rng.standard_normal((group.order, k, k))
    idx_g = filter_indices(group.name, k, group.order)
    for a in range(group.order):
        np.testing.assert_array_equal(w.reshape(-1)[idx[a, 0]], group.act_image(a, w))
        np.testing.assert_array_equal(wg.reshape(-1)[idx_g[a]], group.act_gfeature(a, wg))
    assert filter_indices(group.name, k, 1) is idx  # precomputed once
    with pytest.raises(SymbenchError):
        filter_indices(group.name, k, 3)


def test_unknown_group():
    with pytest.raises(SymbenchError, match="unknown group 'p6'.*p4, p4m"):
        get_group("p6")


def test_transform_filters_layout(group):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((2, 3, 4, 4))
    bank = transform_filters(group.name, w, "lift")
    assert bank.shape == (2, group.order, 3, 4, 4)
    np.testing.assert_array_equal(bank[1, 1, 2], group.act_image(1, w[1, 2]))


# -- the reference against a literal reading of Cohen & Welling's equations --------------------

def slow_layer(group: str, op: str, x: np.ndarray, w: np.ndarray, mode: str) -> np.ndarray:
    """C&W (2016) eq. 10/11 read literally, with rotation matrices built from angles.

    ``y[o, (t, M)] = sum_i sum_{(q, S)} x[i, (S)](t + c + M (q - c)) * w[o, i, (M^-1 S)](q)``,
    the filter centre ``c`` placed at ``t + c`` of the padded input.
    """
    rot = [np.rint([[np.cos(r * np.pi / 2), -np.sin(r * np.pi / 2)],
                    [np.sin(r * np.pi / 2), np.cos(r * np.pi / 2)]]).astype(int) for r in range(4)]
    mirror = np.array([[1, 0], [0, -1]])
    mats = [rot[r] for r in range(4)] + ([mirror @ rot[r] for r in range(4)] if group == "p4m" else [])
    G = len(mats)

    def index_of(m: np.ndarray) -> int:
        return next(i for i, mm in enumerate(mats) if np.array_equal(mm, m))

    k = w.shape[-1]
    if mode == "same":
        before, after = (k - 1) // 2, k // 2
        pad = [(0, 0)] * (x.ndim - 2) + [(before, after)] * 2
        x = np.pad(x, pad)
    B, ci = x.shape[:2]
    co = w.shape[0]
    n1, n2 = x.shape[-2] - k + 1, x.shape[-1] - k + 1
    c = (k - 1) / 2
    y = np.zeros((B, co, G, n1, n2))
    for g, M in enumerate(mats):
        Minv = np.rint(np.linalg.inv(M)).astype(int)
        for q1, q2 in itertools.product(range(k), repeat=2):
            d = np.rint(c + M @ np.array([q1 - c, q2 - c])).astype(int)  # input offset of tap q
            window = x[..., d[0]:d[0] + n1, d[1]:d[1] + n2]
            if op == "lift":
                y[:, :, g] += np.einsum("bixy,oi->boxy", window, w[:, :, q1, q2])
            else:
                for s, S in enumerate(mats):
                    src = index_of(Minv @ S)
                    y[:, :, g] += np.einsum("bixy,oi->boxy", window[:, :, s], w[:, :, src, q1, q2])
    return y


@pytest.mark.parametrize("op", ["lift", "gconv"])
@pytest.mark.parametrize("mode", ["valid", "same"])
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_reference_matches_the_equations(group, op, mode, k):
    rng = np.random.default_rng(10 * k + len(op))
    G = group.order
    gax = (G,) if op == "gconv" else ()
    x = rng.standard_normal((2, 2, *gax, 7, 6))
    w = rng.standard_normal((3, 2, *gax, k, k))
    got = layer_reference(group.name, op, x, w, mode)
    np.testing.assert_allclose(got, slow_layer(group.name, op, x, w, mode), rtol=1e-10, atol=1e-10)


def test_reference_through_problem():
    p = Problem(op="lift", group="p4", dim=2, n=8, k=3, c_in=2, c_out=3, mode="valid")
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(p.x_shape), rng.standard_normal(p.h_shape)
    y = reference(p, x, w)
    assert y.shape == p.out_shape == (1, 3, 4, 6, 6)
    assert y.dtype == np.float64


def test_same_mode_convention():
    """``same`` is PyTorch's padding='same': SciPy's correlate 'same' for odd k, one pixel apart for even k."""
    assert same_padding(3) == (1, 1) and same_padding(4) == (1, 2) and same_padding(1) == (0, 0)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 1, 9, 9))
    for k in (3, 5):
        w = rng.standard_normal((1, 1, k, k))
        y = layer_reference("p4", "lift", x, w, "same")
        np.testing.assert_allclose(y[0, 0, 0], scipy.signal.correlate(x[0, 0], w[0, 0], mode="same"), atol=1e-12)
    w = rng.standard_normal((1, 1, 4, 4))
    y = layer_reference("p4", "lift", x, w, "same")
    padded = np.pad(x[0, 0], (1, 2))
    np.testing.assert_allclose(y[0, 0, 0], scipy.signal.correlate(padded, w[0, 0], mode="valid"), atol=1e-12)
