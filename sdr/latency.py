"""A latency distribution in constant memory, for processes that run for hours.

Keeping every latency of a worker that publishes ~60 results a second grows by megabytes an
hour; a log-spaced histogram does not.  Bins are :data:`RATIO` wide (1 %), from
:data:`LOW_S` to :data:`HIGH_S`; a percentile is the geometric centre of its bin, so it is within
0.5 % of the exact value (values outside the range are clamped to its ends).  The count, the
minimum and the maximum are exact.
"""

from __future__ import annotations

import math

import numpy as np

LOW_S = 1e-6
HIGH_S = 1e4
RATIO = 1.01
_LOG_RATIO = math.log(RATIO)
N_BINS = math.ceil(math.log(HIGH_S / LOW_S) / _LOG_RATIO)


class LatencyHistogram:
    """``add(seconds)`` values; ``summary()`` gives ``p50_s``, ``p95_s``, ``max_s`` and ``count``."""

    def __init__(self) -> None:
        self.counts = np.zeros(N_BINS, np.int64)
        self.count = 0
        self.min_s = math.inf
        self.max_s = -math.inf

    def add(self, value_s: float) -> None:
        v = min(max(float(value_s), LOW_S), HIGH_S)
        self.counts[min(N_BINS - 1, int(math.log(v / LOW_S) / _LOG_RATIO))] += 1
        self.count += 1
        self.min_s = min(self.min_s, float(value_s))
        self.max_s = max(self.max_s, float(value_s))

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (0..100): the centre of the bin holding it, clamped to [min, max]."""
        if not 0 <= q <= 100:
            raise ValueError(f"percentile must be in [0, 100], got {q}")
        if self.count == 0:
            return None
        # the same rank as numpy's default (linear) percentile, rounded down to a sample
        rank = math.floor(q / 100 * (self.count - 1))
        k = int(np.searchsorted(np.cumsum(self.counts), rank, side="right"))
        centre = LOW_S * RATIO ** (k + 0.5)
        return min(max(centre, self.min_s), self.max_s)

    def summary(self) -> dict:
        if self.count == 0:
            return {"p50_s": None, "p95_s": None, "max_s": None, "count": 0}
        return {
            "p50_s": self.percentile(50),
            "p95_s": self.percentile(95),
            "max_s": self.max_s,
            "count": self.count,
        }
