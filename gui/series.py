"""Preallocated per-epoch series for the range plot, and the robust statistics that scale it.

:class:`EpochSeries` keeps the newest ``capacity`` epochs in arrays allocated once (twice the
capacity, shifted down by half when full, so appending costs O(1) amortised and reading is a
slice without a copy).  :func:`robust_range` gives the y range the plot follows (a widened
percentile span of recent values), so one estimate thousands of metres off does not squash every
other point onto a line.  :func:`rolling_median` smooths a method that alternates between peaks.
"""

from __future__ import annotations

import math

import numpy as np


class EpochSeries:
    """Time, truth and one range per method for the newest ``capacity`` epochs (NaN where absent)."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"EpochSeries capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._size = 2 * capacity
        self._n = 0
        self._t = np.full(self._size, np.nan)
        self._truth = np.full(self._size, np.nan)
        self._ranges: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return self._n

    def append(self, time_s: float, ranges_m: dict[str, float], truth_m: float | None) -> None:
        if self._n == self._size:  # drop the oldest half in one move
            keep = self.capacity
            for a in (self._t, self._truth, *self._ranges.values()):
                a[:keep] = a[self._n - keep : self._n]
                a[keep:] = np.nan
            self._n = keep
        i = self._n
        self._t[i] = time_s
        self._truth[i] = math.nan if truth_m is None else truth_m
        for method, r in ranges_m.items():
            if method not in self._ranges:
                self._ranges[method] = np.full(self._size, np.nan)
            self._ranges[method][i] = r
        self._n += 1

    @property
    def methods(self) -> list[str]:
        return list(self._ranges)

    def view(self) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """``time_s``, ``{method: range_m}``, ``range_true_m`` of at most ``capacity`` epochs (views)."""
        lo = max(0, self._n - self.capacity)
        s = slice(lo, self._n)
        return self._t[s], {m: a[s] for m, a in self._ranges.items()}, self._truth[s]


def robust_range(
    values: np.ndarray, tail_pct: float = 5.0, widen: float = 0.5, min_half_m: float = 0.25
) -> tuple[float, float] | None:
    """The ``[tail_pct, 100 - tail_pct]`` percentile span of the finite ``values``, widened by
    ``widen`` times its width on each side and at least ``2 min_half_m`` wide; ``None`` if none.

    Percentiles rather than median -+ k MAD: a method alternating between two peaks has a MAD as
    wide as the gap, which the percentiles follow without a factor ``k`` on top (for Gaussian
    values the default spans about -+3.3 sigma).
    """
    v = values[np.isfinite(values)]
    if v.size == 0:
        return None
    lo, hi = (float(x) for x in np.percentile(v, [tail_pct, 100.0 - tail_pct]))
    pad = widen * (hi - lo)
    lo, hi = lo - pad, hi + pad
    if hi - lo < 2 * min_half_m:
        mid = 0.5 * (lo + hi)
        lo, hi = mid - min_half_m, mid + min_half_m
    return lo, hi


def rolling_median(values: np.ndarray, window: int) -> np.ndarray:
    """Median of the last ``window`` values at each index (fewer at the start), NaNs ignored."""
    n = values.size
    if n == 0 or window <= 1:
        return values.copy()
    padded = np.concatenate([np.full(window - 1, np.nan), values])
    frames = np.lib.stride_tricks.sliding_window_view(padded, window)
    out = np.full(n, np.nan)
    ok = np.isfinite(frames).any(axis=1)
    if ok.any():
        out[ok] = np.nanmedian(frames[ok], axis=1)
    return out
