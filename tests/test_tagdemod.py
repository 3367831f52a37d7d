"""Tag demodulation helpers (dsp/tagdemod.py) against their definitions."""

from __future__ import annotations

import numpy as np

from dsp.tagdemod import overlap_matrix, preamble_waves


def test_preamble_waves_are_the_preamble_on_each_candidate_s_overlaps():
    rng = np.random.default_rng(3)
    pre = rng.choice([-1.0, 1.0], 13)
    starts = np.arange(40) * 1024 + 7
    cand = 3000.5 + 1024 * np.linspace(-1, 1, 9)
    got = preamble_waves(cand, 2500.25, pre, starts, 1024)
    want = np.array([pre @ overlap_matrix(c, 2500.25, 13, starts, 1024) for c in cand])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
