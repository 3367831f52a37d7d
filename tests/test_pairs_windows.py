"""The receiver's windows read from int16 I/Q pairs in place (dsp/direct_windows.py,
dsp/pairs_kernel.py) give what their complex64 conversion gives.

Both sides compute the same float32 sums of products in different orders with the scale
``1 / 32767`` applied at different places, so they are not bit-identical.  Bound: each side's
float32 result for ``sum_j x_j c_j`` (``n`` real products) is within ``(n + 2) eps sum_j |x_j
c_j|`` of the exact sum (recursive summation in any order, ``eps = 2**-24``, plus one rounding of
each product and one of the scale), so the two differ by at most twice that.  ``n`` is the
number of real multiply-adds, ``2 N`` per complex product of ``N`` samples (4 N real products).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.chunks import ChunkList, as_complex64, is_pairs
from dsp.direct_windows import DirectBuffer
from dsp.sc16 import sc16_to_complex64

N = 64
EPS32 = float(np.finfo(np.float32).eps) / 2  # unit roundoff 2**-24


def bound(x_abs: np.ndarray, c_abs: np.ndarray, n_terms: int) -> np.ndarray:
    """Twice the float32 error bound of a sum of products (module docstring): ``x_abs @ c_abs``
    is ``sum |x_j c_j|`` over complex samples (|re| + |im| for each part, so a bound for both)."""
    return 2 * (n_terms + 2) * EPS32 * 2 * (x_abs @ c_abs)


def feed(buf, pieces):
    for p in pieces:
        buf.push(p)


def chunks_of(x, cuts):
    edges = [0, *sorted(set(cuts)), x.shape[1]]
    return [x[:, a:b] for a, b in itertools.pairwise(edges) if b > a]


@st.composite
def cases(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    n_win = draw(st.integers(4, 40))
    rng = np.random.default_rng(seed)
    total = n_win * N + draw(st.integers(0, N - 1))
    pairs = rng.integers(-32768, 32768, (2, total, 2), dtype=np.int16)
    cuts = draw(st.lists(st.integers(1, total - 1), max_size=6))
    start = draw(st.integers(0, N))
    mixed = draw(st.booleans())  # every other chunk handed over as complex64
    return rng, pairs, cuts, start, mixed


def buffers(pairs, cuts, mixed):
    """The same input twice: as int16 pairs (some chunks complex64 when ``mixed``) and converted."""
    a, b = DirectBuffer(N), DirectBuffer(N)
    for i, c in enumerate(chunks_of(pairs, cuts)):
        a.push(sc16_to_complex64(c) if mixed and i % 2 else c)
        b.push(sc16_to_complex64(c))
    return a, b


@settings(max_examples=40, deadline=None)
@given(cases())
def test_every_product_of_pair_windows_equals_that_of_their_conversion(case):
    rng, pairs, cuts, start, mixed = case
    a, b = buffers(pairs, cuts, mixed)
    count = a.windows_available(start)
    assert count == b.windows_available(start) and count >= 2
    wa, wb = a.block(start, count), b.block(start, count)
    assert (wa.pairs or mixed) and not wb.pairs
    xb = wb.windows(1)  # [window, N] complex64, the reference
    np.testing.assert_array_equal(wa.windows(1), xb)  # conversion is exact: same bits
    x_abs = np.abs(xb.real) + np.abs(xb.imag)

    levels = 5
    table = (rng.standard_normal((levels, N)) + 1j * rng.standard_normal((levels, N))).astype(np.complex64)
    t_abs = np.abs(table.real) + np.abs(table.imag)
    lev = rng.integers(0, levels, count)
    for step in (1, 3):
        got = wa.dot_levels(1, table, lev[::step], step)
        want = wb.dot_levels(1, table, lev[::step], step)
        tol = bound(x_abs[::step], t_abs.T, 2 * N)[np.arange(got.size), lev[::step]]
        assert np.all(np.abs(got - want) <= tol)
        lo = int(rng.integers(0, count - 1))
        got = wa.dot(1, lo, count, table[2], step)
        want = xb[lo:count:step] @ table[2]
        assert np.all(np.abs(got - want) <= bound(x_abs[lo:count:step], t_abs[2], 2 * N))

    # the fused projection: tag samples, every 4th window's probe, every 2nd window's slope
    if all(p.dtype == np.int16 for p in wa.pieces):
        probe, slope = table[0], table[::-1].copy()
        z, zp, zs = wa.project_levels(1, table, lev, probe, 4, slope, 2)
        assert np.all(
            np.abs(z - wb.dot_levels(1, table, lev)) <= bound(x_abs, t_abs.T, 2 * N)[np.arange(count), lev]
        )
        assert np.all(np.abs(zp - xb[::4] @ probe) <= bound(x_abs[::4], t_abs[0], 2 * N))
        want = np.einsum("wn,wn->w", xb[::2], slope[lev[::2]])
        s_abs = np.abs(slope.real) + np.abs(slope.imag)
        assert np.all(np.abs(zs - want) <= bound(x_abs[::2], s_abs.T, 2 * N)[np.arange(zs.size), lev[::2]])
        assert wa.project_levels(1, table, lev, probe, 4)[2] is None

    # weighted sums: per level (compiled) and plain (converted, BLAS)
    lo, hi = sorted(int(v) for v in rng.choice(count + 1, 2, replace=False))
    w = (rng.standard_normal(hi - lo) + 1j * rng.standard_normal(hi - lo)).astype(np.complex64)
    w_abs = np.abs(w.real) + np.abs(w.imag)
    acc_a = np.zeros((levels, N), np.complex64)
    acc_b = np.zeros((levels, N), np.complex64)
    wa.sum_levels(1, lo, hi, w, lev[lo:hi], acc_a)
    wb.sum_levels(1, lo, hi, w, lev[lo:hi], acc_b)
    per_level = np.zeros((levels, N))
    np.add.at(per_level, lev[lo:hi], w_abs[:, None] * x_abs[lo:hi])
    assert np.all(np.abs(acc_a - acc_b) <= 2 * (2 * (hi - lo) + 2) * EPS32 * 2 * per_level)
    got, want = wa.weighted_sum(1, lo, hi, w), wb.weighted_sum(1, lo, hi, w)
    np.testing.assert_allclose(got, want, rtol=0, atol=float(bound(w_abs, x_abs[lo:hi], 2 * (hi - lo)).max()))
    mat = table[:3].T
    got, want = wa.matmul(0, mat), wb.matmul(0, mat)
    assert np.all(
        np.abs(got - want)
        <= bound(np.abs(wb.windows(0).real) + np.abs(wb.windows(0).imag), t_abs[:3].T, 2 * N)
    )


def test_pairs_are_kept_as_views_and_only_straddling_windows_are_copied():
    rng = np.random.default_rng(3)
    pairs = rng.integers(-100, 100, (3, 10 * N + 5, 2), dtype=np.int16)
    buf = DirectBuffer(N)
    buf.push(pairs[:, : 4 * N + 7])
    buf.push(pairs[:, 4 * N + 7 :])
    blk = buf.block(0, 10)
    assert [p.shape[1] for p in blk.pieces] == [4, 1, 5]  # views, the straddling window, views
    assert np.shares_memory(blk.pieces[0], pairs) and np.shares_memory(blk.pieces[2], pairs)
    assert not np.shares_memory(blk.pieces[1], pairs)
    np.testing.assert_array_equal(blk.windows(2).reshape(-1), sc16_to_complex64(pairs[2, : 10 * N]))


def test_chunk_list_keeps_dtypes_and_converts_only_a_mixed_span():
    q = ChunkList()
    p = np.arange(2 * 10 * 2, dtype=np.int16).reshape(2, 10, 2)
    q.push(p)
    q.push(sc16_to_complex64(p))
    assert q.take(0, 10).dtype == np.int16 and q.take(0, 10).base is not None
    span = q.take(5, 15)
    assert span.dtype == np.complex64 and span.shape == (2, 10)
    np.testing.assert_array_equal(
        span, np.concatenate([sc16_to_complex64(p[:, 5:]), sc16_to_complex64(p[:, :5])], 1)
    )
    swapped = p.astype(">i2")  # another byte order: copied to native int16, same values
    q2 = ChunkList()
    q2.push(swapped)
    assert q2.chunks[0].dtype == np.int16 and np.array_equal(q2.chunks[0], p)
    assert is_pairs(p) and not is_pairs(sc16_to_complex64(p)) and not is_pairs(p[..., :1])
    np.testing.assert_array_equal(as_complex64(p), sc16_to_complex64(p))


def test_project_levels_refuses_complex64_pieces():
    buf = DirectBuffer(N)
    buf.push(np.zeros((1, 4 * N), np.complex64))
    with pytest.raises(TypeError, match="int16"):
        buf.block(0, 4).project_levels(0, np.zeros((1, N), np.complex64), np.zeros(4, int), np.zeros(N), 2)
