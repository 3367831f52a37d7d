"""A range physics forbids is flagged, not published silently (app/run.py)."""

from __future__ import annotations

import numpy as np

from app.run import Run, summarise
from dsp.results import RangingEpoch
from dsp.waveform import WaveformConfig


def _run(range_m: float, d0: float | None) -> dict:
    wf = WaveformConfig()
    k = len(wf.active_subcarriers)
    cfr = {b: np.ones(k, complex) for b in ("central", "upper")}
    ep = RangingEpoch(
        0.0, 1500, cfr, {}, {}, {"ir_first_interp": range_m}, {}, {"central": 30.0, "upper": 0.0}, {}
    )
    run = Run(wf, ["central", "upper"], 0.1, None, epochs=[ep], tx_rx_distance_m=d0)
    return summarise(run)["implausible"]


def test_a_range_below_the_tx_rx_distance_is_flagged():
    """TX-tag-RX >= TX-RX (triangle inequality); 15 m against a 20 m baseline is impossible."""
    flags = _run(15.0, 20.0)
    assert "ir_first_interp" in flags and "below the TX-RX distance" in flags["ir_first_interp"]


def test_a_range_on_the_baseline_within_the_noise_margin_is_not_flagged():
    """A tag on the TX-RX line gives exactly d0; noise may put it a little below (margin c/B/10)."""
    assert _run(19.9, 20.0) == {}
    assert _run(35.0, 20.0) == {}
    assert _run(5.0, None) == {}  # no d0 known: excess path lengths, nothing to check
