"""The overlap runs behind ``overlap_matrix`` and ``overlap_csr`` (dsp/tagdemod.py) are as wide as
the longest run: the mutation check of session 14 (docs/MUTATION.md).  Under 0.1 s.

Their values are checked against the dense formula in tests/test_overlap_matrix.py; what the
runs save is memory and time (session 13 made the burst search's overlaps sparse for it): a
symbol of period ``T`` overlaps at most ``ceil(T / n) + 1`` windows of ``n`` samples, however
long the buffer.  A width of ``hi + lo`` (the run's end plus its start, about the buffer's window
count) gave the same values on ``[tag_symbol, thousands]`` arrays, unseen by the value tests.
"""

from __future__ import annotations

import numpy as np

from dsp.tagdemod import _overlap_runs, overlap_csr


def test_each_symbol_s_run_is_at_most_its_period_in_windows_plus_one_whatever_the_buffer():
    """20,000 windows of 1024 samples, a packet of 125 symbols of 15.3 windows starting 5,000.4
    windows in: every run holds ``ceil(15.3) + 1`` = 17 windows at most, and the width is the
    longest run (``_overlap_runs``' docstring)."""
    n, period = 1024, 15.3 * 1024
    starts = np.arange(20000) * n
    idx, inside, _val = _overlap_runs(5000.4 * n, period, 125, starts, n)
    runs = inside.sum(axis=-1)
    assert idx.shape == (125, int(runs.max()))
    assert runs.max() <= np.ceil(period / n) + 1
    o = overlap_csr(5000.4 * n, period, 125, starts, n)
    assert o.nnz == runs.sum()
    np.testing.assert_array_equal(np.diff(o.indptr), runs)


def test_no_symbols_give_runs_of_no_width():
    """No symbols (``n_symbols`` 0): no run, width 0 (the longest of no runs, not 1), an empty
    sparse matrix of the buffer's window count."""
    starts = np.arange(50) * 64
    idx, inside, val = _overlap_runs(3.0, 640.0, 0, starts, 64)
    assert idx.shape == inside.shape == val.shape == (0, 0)
    o = overlap_csr(3.0, 640.0, 0, starts, 64)
    assert o.shape == (0, 50) and o.nnz == 0
