"""The tag's BPSK on the periods that hold a symbol edge, in one compiled pass.

``Emulator.tag_wave`` looks every sample up by a binary search over all symbol edges; in a
period the sample times rise, so one pointer that moves forward over the edges does the same
lookup in one pass: the same comparisons (``edge <= t``, as ``searchsorted(side="right")``)
on the same float64 times, so the same values.
"""

from __future__ import annotations

import numpy as np

from dsp.jit import compiled


@compiled(error_model="numpy")
def apply_tag(
    rows: np.ndarray,
    ks: np.ndarray,
    start: np.ndarray,
    to_work: float,
    edges: np.ndarray,
    values: np.ndarray,
) -> None:
    """``rows[k, i] *= values[m - 1]``, ``m`` the number of ``edges`` ``<= (start[k] + i) * to_work``,
    for every period ``k`` in ``ks``.

    ``rows`` complex64 ``[period, sample]``; ``ks`` int64 ``[edge period]``; ``start`` int64
    ``[period]`` (each period's first sample); ``edges`` float64 ``[edge]`` rising, the first
    ``-inf``; ``values`` float64 ``[edge]`` (+1, -1 or 0: products exact in float32).
    """
    n = rows.shape[1]
    for k in ks:
        t0 = start[k] * to_work
        lo, hi = 0, edges.shape[0]  # first edge > t0: binary search, once per period
        while lo < hi:
            mid = (lo + hi) // 2
            if edges[mid] <= t0:
                lo = mid + 1
            else:
                hi = mid
        m = lo
        for i in range(n):
            t = (start[k] + i) * to_work
            while m < edges.shape[0] and edges[m] <= t:
                m += 1
            v = np.float32(values[m - 1])
            rows[k, i] = rows[k, i] * v
