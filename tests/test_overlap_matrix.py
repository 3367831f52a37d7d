"""``dsp.tagdemod.overlap_matrix`` (computed on each symbol's few windows) equals the dense
formula it replaced, exactly, for any grid, period and packet starts; ``overlap_csr`` (the
sparse one the burst search demodulates with) holds the same values."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dsp.tagdemod import overlap_csr, overlap_matrix


def dense(t0, period: float, n_symbols: int, starts: np.ndarray, n: int) -> np.ndarray:
    """The overlap of every symbol with every window, ``[..., tag_symbol, window]``."""
    a = np.asarray(t0, float)[..., None, None] + period * np.arange(n_symbols)[:, None]
    s = starts.astype(np.float64)
    return np.clip(np.minimum(s + n, a + period) - np.maximum(s, a), 0.0, None) / n


GRID = {  # a window grid that slips by whole samples, a tag period, a packet's symbol count
    "n": st.integers(4, 64),
    "steps": st.lists(st.integers(-2, 2), max_size=60),
    "first": st.integers(-500, 500),
    "period_windows": st.floats(0.3, 20.0),
    "n_symbols": st.integers(0, 30),
}


@settings(max_examples=200, deadline=None)
@given(
    **GRID,
    t0_windows=st.lists(st.floats(-3.0, 70.0), min_size=1, max_size=6),
    scalar=st.booleans(),
)
# a symbol start an ulp before a window's end (-250.00000000000003 against -250): the formula
# gives a 4.7e-15 sliver that a search on ``s > a - n`` missed (a - n rounds to -256.0)
@example(n=6, steps=[0, 0, 1, 2], first=-283, period_windows=0.3, n_symbols=8, t0_windows=[3.4], scalar=False)
def test_overlap_matrix_equals_the_dense_formula(
    n, steps, first, period_windows, n_symbols, t0_windows, scalar
):
    starts = first + np.cumsum(n + np.asarray(steps, np.int64))  # a grid that slips by whole samples
    period = period_windows * n
    t0 = first + n * np.asarray(t0_windows).reshape(-1, 1 if len(t0_windows) % 2 else 2)
    if scalar:
        t0 = float(t0.ravel()[0])
    got = overlap_matrix(t0, period, n_symbols, starts, n)
    want = dense(t0, period, n_symbols, starts, n)
    assert got.shape == want.shape
    assert np.array_equal(got, want)


@settings(max_examples=200, deadline=None)
@given(
    **GRID,
    t0_windows=st.floats(-3.0, 70.0),
)
@example(n=6, steps=[0, 0, 1, 2], first=-283, period_windows=0.3, n_symbols=8, t0_windows=3.4)
def test_the_sparse_overlaps_are_the_dense_formula(n, steps, first, period_windows, n_symbols, t0_windows):
    """Every entry, zeros included, exactly (the same arithmetic on the same runs)."""
    starts = first + np.cumsum(n + np.asarray(steps, np.int64))
    period = period_windows * n
    t0 = first + n * t0_windows
    got = overlap_csr(t0, period, n_symbols, starts, n)
    assert got.shape == (n_symbols, starts.size)
    assert np.array_equal(got.toarray(), dense(t0, period, n_symbols, starts, n))
