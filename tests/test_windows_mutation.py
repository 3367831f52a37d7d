"""The windows' contracts that the mutation check of dsp/windows.py and dsp/direct_windows.py
found untested (docs/MUTATION.md, session 13).

The kernel is checked against its definition written out here, ``k(t) = sinc(t / r) / r *
I0(8 sqrt(1 - (t / 48)**2)) / I0(8)`` (``r = D / U`` capture samples per working sample, 48
taps either side).  dsp/windows.py tabulates ``k`` every ``h = 1/512`` capture sample and
interpolates linearly: error at most ``h**2 / 8 max|k''|``, and ``k`` is band-limited to
``1 / (2 r) < 1/4`` cycle per sample, so ``max|k''| <= (2 pi / 4)**2 max|k|`` (Bernstein):
``1.2e-6 max|k|`` (the table reaches 3.8e-7); the matrix holds float32 taps (``6e-8`` more).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import dsp.windows as windows
from dsp.direct_windows import DirectBuffer
from dsp.sc16 import sc16_to_complex64
from dsp.windows import (
    FRAME_MARGIN,
    CompositeWindows,
    ResamplingBuffer,
    band_form,
    fractional_kernel,
    join_blocks,
    make_buffer,
)

N = 1024
UP, DOWN = 1536, 3125  # 62.5 MS/s -> 30.72 MS/s
R = DOWN / UP
L = 48  # the buffer's half span
LENGTH = int(np.ceil((N - 1) * R)) + 2 * L + 2  # a frame: the window's span plus the taps, 2180
TABLE_TOL = (2 * np.pi / 4) ** 2 / 512**2 / 8 + 6e-8  # relative to max|k| (module docstring)


def kernel(t: np.ndarray, ratio: float = R, half_span: int = L) -> np.ndarray:
    """The definition (module docstring)."""
    win = np.i0(8.0 * np.sqrt(np.clip(1 - (t / half_span) ** 2, 0, None))) / np.i0(8.0)
    return np.sinc(t / ratio) / ratio * win


def frame(s: int) -> int:
    """Capture index of the first sample of working window ``s``'s frame: ``floor(s D / U) - L``."""
    return s * DOWN // UP - L


def test_kernel_matrix_is_its_definition_at_every_phase():
    # row i: taps at columns floor(pos) - L + 1 .. floor(pos) + L (pos = delta + i R), none else
    # fractional phases across [0, 1), the last just below 1 (the table's last interval)
    for delta in (L + 0.0, L + 0.3, L + 511.5 / 512, L + 1 - 1e-9, L + 0.999):
        mat = fractional_kernel(delta, 64, R, L, 260).toarray()
        pos = delta + R * np.arange(64)
        off = np.arange(260)[None, :] - np.floor(pos)[:, None]
        want = np.where((off > -L) & (off <= L), kernel(pos[:, None] - np.arange(260)[None, :]), 0)
        peak = np.abs(want).max()
        assert np.abs(mat - want).max() <= TABLE_TOL * peak
    # another ratio and span in the same process get their own table (cached per ratio and span)
    other = fractional_kernel(20.25, 8, 2.5, 12, 60).toarray()
    pos = 20.25 + 2.5 * np.arange(8)
    off = np.arange(60)[None, :] - np.floor(pos)[:, None]
    want = np.where((off > -12) & (off <= 12), kernel(pos[:, None] - np.arange(60)[None, :], 2.5, 12), 0)
    assert np.abs(other - want).max() <= TABLE_TOL * np.abs(want).max()
    # the table is made once per ratio and span (the Bessel functions cost seconds otherwise)
    table = windows._TABLES[(R, L, 8.0)]
    fractional_kernel(L + 0.1, 4, R, L, 260)
    assert windows._TABLES[(R, L, 8.0)] is table


def test_kernel_support_may_fill_the_frame_exactly():
    # row 0 at delta: columns floor(delta) - L + 1 .. ; the last row's up to floor(pos) + L
    n, length = 10, 100
    lowest = L - 1 + 0.5  # first column exactly 0
    last = int(np.floor(lowest + R * (n - 1))) + L  # highest column used
    assert fractional_kernel(lowest, n, R, L, last + 1).shape == (n, last + 1)  # fills [0, length)
    with pytest.raises(ValueError, match=r"^kernel support \[-?\d+, \d+\] leaves a frame of \d+ samples$"):
        fractional_kernel(lowest - 1, n, R, L, length + 200)  # column -1 only
    with pytest.raises(ValueError, match=r"^kernel support \[-?\d+, \d+\] leaves a frame of \d+ samples$"):
        fractional_kernel(lowest, n, R, L, last)  # column == length only
    bad = fractional_kernel(lowest, n, R, L, last + 1)
    bad.indices[2 * L - 1] += 1  # row 0's last tap one column on: a gap (as many taps as the others)
    with pytest.raises(
        ValueError, match=r"^kernel rows must each hold the same number of consecutive columns$"
    ):
        band_form(bad)
    uneven = fractional_kernel(47.5, 10, 3125 / 1536, 48, 116).tolil()
    uneven[0, 115] = 1.0  # one row a column longer: refused with the same message, not numpy's
    with pytest.raises(
        ValueError, match=r"^kernel rows must each hold the same number of consecutive columns$"
    ):
        band_form(uneven.tocsr())


def test_factors_must_be_positive_and_one_is_allowed():
    for up, down in ((0, 1), (1, 0), (0, 0), (-1, 2)):
        with pytest.raises(ValueError, match=r"^resampling factors must be positive, got -?\d+/\d+$"):
            ResamplingBuffer(N, up, down)
    for up, down in ((1, 2), (2, 1)):
        assert ResamplingBuffer(N, up, down).ratio == down / up
    assert isinstance(make_buffer(N), DirectBuffer) and isinstance(make_buffer(N, 5, 5), DirectBuffer)
    assert isinstance(make_buffer(N, UP, DOWN), ResamplingBuffer)
    assert ResamplingBuffer(N, UP, DOWN).length == LENGTH


def test_availability_is_exactly_the_windows_whose_frames_and_margins_have_arrived():
    # window s needs capture samples frame(s) - 3 .. frame(s) + LENGTH + 3 (FRAME_MARGIN: a
    # window may be read up to 3 capture samples off its frame)
    assert FRAME_MARGIN == 3
    buf = ResamplingBuffer(N, UP, DOWN)
    buf.push(np.zeros((1, 11_000), np.complex64))
    buf.drop_before(buf.first_index() + 2 * N)  # a nonzero first pending index
    index = buf._q.index
    first = buf.first_index()
    assert frame(first) - 3 >= index > frame(first - 1) - 3
    # ends where the frame limit's next capture index (limit + 1, limit = end - LENGTH - 3 + L) is a
    # multiple of D (the working index 6 U there has its frame one sample short) or U (limit + 1)
    # is 1 mod D: the two cases where rounding ``(limit + 1) U / D`` down can go wrong by one
    exact = 6 * DOWN - 1 + LENGTH + 3 - L
    one_over = 7 * DOWN + pow(UP, -1, DOWN) - 1 + LENGTH + 3 - L
    for end in (index + LENGTH + 5, 11_000, 11_000 + 2 * N * R, exact, one_over, 30_000):
        if end > buf._q.end:
            buf.push(np.zeros((1, int(end) - buf._q.end), np.complex64))
        last = int((buf._q.end - LENGTH - 3 + L) / R) - 3  # the last available start, found below
        while frame(last + 1) + LENGTH + 3 <= buf._q.end:
            last += 1
        # every start modulo N (each count changes somewhere), and those around the last one
        for start in [*range(first, first + N + 9), *range(last - 3, last + 4)]:
            want = 0
            while frame(start + want * N) + LENGTH + 3 <= buf._q.end:
                want += 1
            assert buf.windows_available(start) == want, (end, start)
    s = first + 5 * N + 17
    buf.drop_before(s)
    assert buf._q.index == frame(s) - 3  # kept: the frame and its margin
    buf.block(s, 1)


def _capture(n: int, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((2, n)) + 1j * rng.standard_normal((2, n))).astype(np.complex64)


def test_frames_read_off_their_nominal_start_are_the_input_samples_whatever_the_chunks():
    x = _capture(40_000)
    # one chunk edge from 4 samples before to 3 after the first or the one past the last sample
    # (margins included) of window 4's frame (windows from 3099 on: the start below; frames overlap,
    # so the next or the previous window crosses that edge too)
    f4 = frame(3099 + 4 * N)
    near = [[f4 + LENGTH + 3 + d] for d in range(-4, 4)] + [[f4 - 3 + d] for d in range(-4, 4)]
    for cuts in (
        [],
        [7_000, 7_001, 9_003],
        [6_997, 13_250, 13_251, 20_000],
        list(range(5_000, 40_000, 2_183)),
        *near,
    ):
        buf = ResamplingBuffer(N, UP, DOWN)
        edges = [0, *cuts, x.shape[1]]
        for a, b in itertools.pairwise(edges):
            buf.push(x[:, a:b])
        buf.drop_before(buf.first_index() + 3 * N)  # the first pending index is not 0
        start = buf.first_index() + 1
        assert start == 3099
        count = buf.windows_available(start)
        blk = buf.block(start, count)
        if not cuts:  # one chunk: one run, a view
            assert len(blk.runs) == 1 and np.shares_memory(blk.runs[0].buf, x)
        # copied: exactly the frames whose span, margins included, crosses a chunk edge
        frames = np.array([frame(start + m * N) for m in range(count)])
        edge_of = np.searchsorted(np.array(edges[1:]), [frames - 3, frames + LENGTH + 2], side="right")
        crossing = {int(m) for m in np.flatnonzero(edge_of[0] != edge_of[1])}
        assert {r.m0 for r in blk.runs if not np.shares_memory(r.buf, x)} <= crossing
        # runs: each crossing frame alone (a copy, or a view where ``take`` finds it in one chunk),
        # the others joined while they lie in one chunk
        runs, prev = 0, None
        for m in range(count):
            label = None if m in crossing else int(edge_of[0][m])
            runs += label is None or label != prev
            prev = label
        assert len(blk.runs) == runs and all(r.count == 1 for r in blk.runs if r.m0 in crossing)
        for run in blk.runs:  # every read, shifted by up to 3 samples, stays inside the run's samples
            nominal = run.nominal(blk.g, blk.period)
            assert nominal[0] - FRAME_MARGIN >= 0 and nominal[-1] + LENGTH + FRAME_MARGIN <= run.buf.shape[1]
        for run in blk.runs:
            for i0 in range(min(blk.g, run.count)):
                j1 = len(range(i0, run.count, blk.g))
                for shift in range(-FRAME_MARGIN, FRAME_MARGIN + 1):
                    got = blk.frames_at(run, i0, shift, 0, j1, 1)
                    m = run.m0 + i0 + blk.g * np.arange(j1)
                    for j, mm in enumerate(m):
                        f = frame(start + int(mm) * N) + shift
                        np.testing.assert_array_equal(got[j], x[1, f : f + LENGTH])


def test_windows_are_the_kernel_sums_of_int16_input_as_of_its_conversion():
    # windows()[m, n] = sum_c x[c] k((s + m N + n) R - c) over the 96 taps around the position;
    # error: the table (TABLE_TOL max|k| per tap) and float32 sums ((96 + 2) eps sum |x k|)
    rng = np.random.default_rng(5)
    pairs = rng.integers(-3000, 3000, (1, 16_000, 2), dtype=np.int16)
    x = sc16_to_complex64(pairs)[0].astype(complex)
    buf = ResamplingBuffer(N, UP, DOWN)
    buf.push(pairs)
    start = buf.first_index() + 2
    count = buf.windows_available(start)
    blk = buf.block(start, count)
    got = blk.windows(0)
    assert blk.windows(0) is not got and np.array_equal(blk.windows(0), got)  # converted once, the same
    pos = (start + np.arange(count * N)) * R
    taps = np.floor(pos).astype(int)[:, None] + np.arange(-L + 1, L + 1)[None, :]
    k = kernel(pos[:, None] - taps)
    want = (x[taps] * k).sum(axis=1).reshape(count, N)
    scale = (np.abs(x[taps]) * np.abs(k).max()).sum(axis=1).reshape(count, N)
    tol = (TABLE_TOL + (2 * L + 2) * 2**-24 * 4) * scale
    assert np.all(np.abs(got - want) <= tol)
    vec = (rng.standard_normal(N) + 1j * rng.standard_normal(N)).astype(np.complex64)
    np.testing.assert_allclose(blk.matmul(0, vec), got @ vec, rtol=0, atol=2e-3 * np.abs(got @ vec).max())


def test_weighted_sums_with_leading_axes_and_composite_blocks():
    x = _capture(40_000, 3)
    buf = ResamplingBuffer(N, UP, DOWN)
    buf.push(x[:, :17_000])
    buf.push(x[:, 17_000:])
    s0 = buf.first_index() + 1
    a = buf.block(s0, 6)
    b = buf.block(s0 + 6 * N + 1, 5)  # re-centred one working sample later
    c = buf.block(s0 + 11 * N + 1, 4)
    assert join_blocks([a]) is a
    joined = join_blocks([a, b, c])
    assert isinstance(joined, CompositeWindows) and joined.count == 15
    win = joined.windows(1)
    np.testing.assert_array_equal(win, np.concatenate([a.windows(1), b.windows(1), c.windows(1)]))
    rng = np.random.default_rng(4)
    mat = (rng.standard_normal((N, 2)) + 1j * rng.standard_normal((N, 2))).astype(np.complex64)
    want = win @ mat
    np.testing.assert_allclose(joined.matmul(1, mat), want, rtol=0, atol=2e-3 * np.abs(want).max())
    one = CompositeWindows([b])
    np.testing.assert_array_equal(one.matmul(1, mat), b.matmul(1, mat))
    # weights with a leading axis [2, window]; spans inside one part, across two and three parts
    for lo, hi in ((1, 5), (7, 10), (4, 9), (2, 14), (0, 15)):
        w = (rng.standard_normal((2, hi - lo)) + 1j * rng.standard_normal((2, hi - lo))).astype(np.complex64)
        want = w @ win[lo:hi]
        got = joined.weighted_sum(1, lo, hi, w)
        assert got.shape == (2, N)
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-3 * np.abs(want).max())
        if hi <= 6:
            np.testing.assert_allclose(
                a.weighted_sum(1, lo, hi, w), want, rtol=0, atol=2e-3 * np.abs(want).max()
            )
    # parts that read their weights to the length asked for (working-rate windows)
    d = DirectBuffer(N)
    d.push(x[:, : 9 * N])
    parts = CompositeWindows([d.block(0, 4), d.block(4 * N, 5)])
    w = (rng.standard_normal(6) + 1j * rng.standard_normal(6)).astype(np.complex64)
    want = w @ x[0, 2 * N : 8 * N].reshape(6, N)
    np.testing.assert_allclose(parts.weighted_sum(0, 2, 8, w), want, rtol=0, atol=1e-5 * np.abs(want).max())
    with pytest.raises(ValueError, match=r"^no windows in \[15, 15\) of a block of 15$"):
        joined.weighted_sum(1, 15, 15, np.zeros(0, np.complex64))


def test_split_columns_are_cached_per_array_and_never_for_a_recycled_id():
    import dsp.direct_windows as direct
    from dsp.pairs_kernel import split_columns
    from dsp.sc16 import SC16_SCALE

    table = np.arange(12, dtype=np.float32).reshape(2, 6).astype(np.complex64) * (1 + 2j)
    want = split_columns(table, float(SC16_SCALE))
    first = direct._split(table)
    np.testing.assert_array_equal(first, want)
    assert direct._split(table) is first  # kept while the array is the same
    # an entry left under this id by another array (freed, its id reused): not handed out
    direct._SPLIT_CACHE[id(table)] = (table.copy(), np.zeros_like(want))
    np.testing.assert_array_equal(direct._split(table), want)


def test_project_levels_refusal_names_itself():
    buf = DirectBuffer(64)
    buf.push(np.zeros((1, 4 * 64), np.complex64))
    lev = np.zeros(4, np.int64)
    with pytest.raises(TypeError, match=r"^project_levels reads int16 pieces only$"):
        buf.block(0, 4).project_levels(0, np.zeros((1, 64), np.complex64), lev, np.zeros(64), 2)


def test_dot_steps_one_window_at_a_time_by_default():
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((1, 9 * 64)) + 1j * rng.standard_normal((1, 9 * 64))).astype(np.complex64)
    buf = DirectBuffer(64)
    buf.push(x)
    blk = buf.block(0, 9)
    vec = (rng.standard_normal(64) + 1j * rng.standard_normal(64)).astype(np.complex64)
    win = blk.windows(0)[2:7]
    # two float32 sums of 2 N real products each: within 2 (2 N + 2) 2**-24 sum |x| |v| (x 2: parts)
    absum = (np.abs(win.real) + np.abs(win.imag)) @ (np.abs(vec.real) + np.abs(vec.imag))
    tol = 2 * (2 * 64 + 2) * 2**-24 * 2 * absum
    assert np.all(np.abs(blk.dot(0, 2, 7, vec) - win @ vec) <= tol)  # windows 2..6, not every other


def test_direct_blocks_hold_exactly_the_windows_asked_for_as_views_where_chunks_allow():
    n = 64
    x = np.arange(2 * 20 * n, dtype=np.float32).astype(np.complex64).reshape(2, 20 * n)
    buf = DirectBuffer(n)
    buf.push(x[:, : 3 * n])  # a chunk edge on a window edge: nothing straddles it
    buf.push(x[:, 3 * n :])
    blk = buf.block(0, 7)
    assert [p.shape[1] for p in blk.pieces] == [3, 4] and all(np.shares_memory(p, x) for p in blk.pieces)
    np.testing.assert_array_equal(blk.windows(1).ravel(), x[1, : 7 * n])
    # a first chunk of 2.5 windows, then more than asked for: exactly the count, from the right place
    buf2 = DirectBuffer(n)
    buf2.push(x[:, : 5 * n // 2])
    buf2.push(x[:, 5 * n // 2 :])
    blk2 = buf2.block(n, 6)
    assert blk2.count == 6 and [p.shape[1] for p in blk2.pieces] == [1, 1, 4]
    np.testing.assert_array_equal(blk2.windows(0).ravel(), x[0, n : 7 * n])
    # fewer samples than one window after the start: none available
    assert buf2.windows_available(20 * n - n + 1) == 0 and buf2.windows_available(20 * n - n) == 1
