"""The worker's constant-memory latency histogram against exact percentiles."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdr.latency import RATIO, LatencyHistogram


@given(
    st.lists(st.floats(1e-5, 100.0, allow_nan=False), min_size=1, max_size=400),
    st.sampled_from([0, 5, 50, 95, 99, 100]),
)
def test_percentiles_are_within_half_a_bin_of_the_exact_ones(values, q):
    h = LatencyHistogram()
    for v in values:
        h.add(v)
    exact = float(np.percentile(values, q, method="lower"))
    got = h.percentile(q)
    assert exact / RATIO**0.5 * (1 - 1e-12) <= got <= exact * RATIO**0.5 * (1 + 1e-12)
    assert h.count == len(values) and h.max_s == max(values)


def test_memory_does_not_grow_with_the_number_of_values():
    h = LatencyHistogram()
    size = h.counts.nbytes
    rng = np.random.default_rng(0)
    for v in rng.lognormal(-3, 1, 20_000):
        h.add(v)
    assert h.counts.nbytes == size and h.counts.sum() == 20_000
    s = h.summary()
    assert s["count"] == 20_000 and s["p50_s"] == pytest.approx(np.exp(-3), rel=0.05)


def test_empty_and_out_of_range():
    h = LatencyHistogram()
    assert h.summary() == {"p50_s": None, "p95_s": None, "max_s": None, "count": 0}
    with pytest.raises(ValueError, match="percentile"):
        h.percentile(101)
    h.add(0.0)  # below the first bin: clamped, still counted, the exact minimum kept
    assert h.percentile(50) == 0.0 and h.count == 1
