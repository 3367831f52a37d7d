"""Working-rate windows read from capture-rate input (dsp/windows.py)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.windows import DirectBuffer, ResamplingBuffer

N = 1024
UP, DOWN = 1536, 3125  # 62.5 MS/s -> 30.72 MS/s
FS_CAPTURE = 62.5e6
FS_WORK = 30.72e6


def tones(t_s: np.ndarray, freqs_hz: np.ndarray, amps: np.ndarray) -> np.ndarray:
    """Band-limited test signal ``[2, sample]`` (two channels) at times ``t_s``."""
    x = amps[:, :, None] * np.exp(2j * np.pi * freqs_hz[:, :, None] * t_s)
    return x.sum(axis=1).astype(np.complex64)


@pytest.fixture(scope="module")
def signal():
    rng = np.random.default_rng(7)
    # tones inside the active band and the guard probe (|f| < 13.2 MHz)
    freqs = rng.uniform(-13.2e6, 13.2e6, (2, 40))
    amps = (rng.standard_normal((2, 40)) + 1j * rng.standard_normal((2, 40))) / np.sqrt(80)
    n_in = 40 * 6250
    x = tones(np.arange(n_in) / FS_CAPTURE, freqs, amps)
    return x, freqs, amps


def feed(buf, x, chunks):
    edges = [0, *sorted(chunks), x.shape[1]]
    for a, b in itertools.pairwise(edges):
        buf.push(x[:, a:b])


def test_resampled_windows_equal_the_band_limited_signal_at_the_working_rate(signal):
    x, freqs, amps = signal
    buf = ResamplingBuffer(N, UP, DOWN)
    feed(buf, x, [])
    start = buf.first_index() + 5
    count = min(buf.windows_available(start), 40)
    assert count >= 30
    w = buf.block(start, count).windows(1)
    t = (start + np.arange(count * N)) / FS_WORK
    ref = tones(t, freqs, amps)[1].reshape(count, N)
    err = np.linalg.norm(w - ref) / np.linalg.norm(ref)
    assert err < 2e-3  # Kaiser beta 8 sinc kernel: about -60 dB over the active band


def test_projections_and_sums_equal_those_of_materialised_windows(signal):
    x, _, _ = signal
    rng = np.random.default_rng(1)
    buf = ResamplingBuffer(N, UP, DOWN)
    feed(buf, x, [12_345, 100_000, 100_001, 150_000])  # frames straddle chunk edges
    start = buf.first_index() + 3
    block = buf.block(start, 37)
    win = block.windows(0)
    mat = (rng.standard_normal((N, 2)) + 1j * rng.standard_normal((N, 2))).astype(np.complex64)
    np.testing.assert_allclose(block.matmul(0, mat), win @ mat, rtol=0, atol=2e-3 * np.abs(win @ mat).max())
    wts = (rng.standard_normal(20) + 1j * rng.standard_normal(20)).astype(np.complex64)
    ref = wts @ win[7:27]
    np.testing.assert_allclose(block.weighted_sum(0, 7, 27, wts), ref, atol=2e-3 * np.abs(ref).max())


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 250_000 - 1), max_size=6, unique=True))
def test_chunking_does_not_change_blocks(signal, cuts):
    x, _, _ = signal
    ref_buf, buf = ResamplingBuffer(N, UP, DOWN), ResamplingBuffer(N, UP, DOWN)
    feed(ref_buf, x, [])
    feed(buf, x, cuts)
    start = ref_buf.first_index() + 11
    mat = np.ones((N, 1), np.complex64)
    a, b = ref_buf.block(start, 60), buf.block(start, 60)
    np.testing.assert_allclose(a.matmul(1, mat), b.matmul(1, mat), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(
        a.weighted_sum(1, 4, 51, np.ones(47)), b.weighted_sum(1, 4, 51, np.ones(47)), rtol=1e-5, atol=1e-4
    )


def test_availability_drop_and_gap_bookkeeping():
    buf = ResamplingBuffer(N, UP, DOWN)
    assert buf.g == 3 and buf.period == 6250
    buf.push(np.zeros((1, 10 * 6250), np.complex64))
    first = buf.first_index()
    n_ok = buf.windows_available(first)
    assert 26 <= n_ok <= 30
    buf.block(first, n_ok)  # the last available window fits
    with pytest.raises(ValueError, match="windows"):
        buf.block(first, n_ok + 1)
    with pytest.raises(ValueError, match="windows"):
        buf.block(first - N, 2)  # its frame starts before the pending samples
    buf.drop_before(first + 10 * N)
    assert buf.windows_available(first + 10 * N) == n_ok - 10
    assert buf.gap(3125) == 1536  # lost capture samples in working samples


def test_direct_buffer_windows_are_views():
    buf = DirectBuffer(N)
    x = np.arange(4 * 5 * N, dtype=np.float32).astype(np.complex64).reshape(4, 5 * N)
    buf.push(x)
    blk = buf.block(0, 5)
    # one piece, a view of the pushed array (not a copy: a copy shares no memory with ``x``)
    assert len(blk.pieces) == 1 and np.shares_memory(blk.pieces[0], x)
    np.testing.assert_array_equal(blk.windows(2).ravel(), x[2])
    x[2, 3 * N] = -1  # what a view sees
    assert blk.pieces[0][2, 3, 0] == -1
    # over two chunks: the windows inside each chunk stay views, the one straddling both is copied
    buf2 = DirectBuffer(N)
    y = np.arange(2 * 7 * N, dtype=np.float32).astype(np.complex64).reshape(2, 7 * N)
    buf2.push(y[:, : 3 * N + N // 2])
    buf2.push(y[:, 3 * N + N // 2 :])
    blk2 = buf2.block(0, 7)
    assert [p.shape[1] for p in blk2.pieces] == [3, 1, 3]
    assert np.shares_memory(blk2.pieces[0], y) and np.shares_memory(blk2.pieces[2], y)
    assert not np.shares_memory(blk2.pieces[1], y)
    np.testing.assert_array_equal(blk2.windows(1).ravel(), y[1])
