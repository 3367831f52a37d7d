"""The compiled pass of ``captures.ingest.fletcher32``: row and column sums in one read.

numpy needs two reductions (``[row, 4096]`` along each axis, each through a uint32 cast
buffer) for what one loop does reading each word once: 0.11 ms against 0.29 ms for a stored
chunk of 786 KB here (2.7x; a copy of it takes 0.045 ms).  Imported on first use (numba).
"""

from __future__ import annotations

import numpy as np

from dsp.jit import compiled


@compiled(error_model="numpy")
def row_col_sums(body: np.ndarray, cols: np.ndarray) -> tuple[int, int]:
    """``cols[j] += sum_r body[r, j]``; returns ``(sum_r s_r, sum_r r s_r)`` with ``s_r`` the sum of
    row ``r``.  ``body`` uint16 ``[row, width]`` (C-contiguous), ``cols`` uint32 ``[width]``.  No
    overflow for ``row * 65535 < 2**32`` (16384 rows) and ``width * 65535 < 2**32``."""
    total = np.int64(0)
    weighted = np.int64(0)
    for r in range(body.shape[0]):
        row = body[r]
        s = np.uint32(0)
        for j in range(row.shape[0]):
            x = np.uint32(row[j])
            cols[j] += x
            s += x
        total += np.int64(s)
        weighted += np.int64(r) * np.int64(s)
    return total, weighted


@compiled(error_model="numpy")
def word_sums(v: np.ndarray, width: int, block_rows: int) -> tuple[int, int]:
    """``(sum_j v_j, sum_j j v_j)`` of little-endian words ``v`` ``[n]`` (C-contiguous, uint16)
    as int64: the body as ``[row, width]`` blocks of ``block_rows`` rows through
    :func:`row_col_sums` (``sum j v_j = width sum_a a r_a + sum_b b c_b``), the tail word by word.
    One call per part of a chunk (the Python around four calls per part was as long as the
    sums themselves)."""
    n = v.shape[0]
    m = n // width
    total = np.int64(0)
    weighted = np.int64(0)
    cols = np.empty(width, np.uint32)
    for r0 in range(0, m, block_rows):
        r1 = min(r0 + block_rows, m)
        cols[:] = 0
        body = v[r0 * width : r1 * width].reshape(r1 - r0, width)
        t, w = row_col_sums(body, cols)
        total += t
        weighted += np.int64(width) * (np.int64(r0) * t + w)
        for b in range(width):
            weighted += np.int64(b) * np.int64(cols[b])
    for j in range(m * width, n):
        total += np.int64(v[j])
        weighted += np.int64(j) * np.int64(v[j])
    return total, weighted
