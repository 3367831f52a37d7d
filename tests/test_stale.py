"""The direct-path watch that tells a stale calibration (calibration/stale.py)."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.stale import StaleWatch
from dsp.waveform import WaveformConfig

WF = WaveformConfig()
F = WF.active_freqs_hz


def _cfr(rng: np.random.Generator) -> np.ndarray:
    """A static direct channel: LoS at 66.7 ns plus two scatterers, estimated over an epoch:
    30 dB per symbol and 1500 symbols leave 61.8 dB per subcarrier; 50 dB here."""
    d = np.array([66.7e-9, 120e-9, 190e-9])
    a = np.array([1.0, 0.3 * np.exp(1j), 0.2 * np.exp(2j)])
    h = (a[None, :] * np.exp(-2j * np.pi * np.outer(F, d))).sum(axis=1)
    return h + 10**-2.5 / np.sqrt(2) * (rng.normal(size=F.size) + 1j * rng.normal(size=F.size))


def _watch(change) -> StaleWatch:
    rng = np.random.default_rng(1)
    w = StaleWatch(WF)
    for t in range(3):
        assert w.update(_cfr(rng), t) is None  # baseline
    for t in range(3, 6):
        w.update(change(_cfr(rng)), t)
    return w


def test_a_new_channel_phase_after_a_retune_is_not_stale():
    """X410 channels take a random phase at each retune: a constant phase, harmless."""
    w = _watch(lambda h: h * np.exp(2.1j))
    assert not w.report.stale and w.first_stale_s is None
    # noise: 50 dB per subcarrier (on both the epoch and the baseline) over 800 subcarriers gives
    # a delay error of about 1 / (2 pi B_rms sqrt(SNR K)) = 0.2 ps; 5 sigma, with fades, 5 ps
    b_rms = np.sqrt(np.mean(F**2))
    assert abs(w.report.delay_change_s) < 5 * 5 / (2 * np.pi * b_rms * np.sqrt(1e5 * F.size))


@pytest.mark.parametrize("delay_s", [2e-9, -5e-9, 32.55e-9])
def test_a_moved_direct_path_is_stale_and_measured(delay_s):
    """A channel whose timing moved (up to a whole sample, 32.55 ns) is flagged, with the move."""
    w = _watch(lambda h: h * np.exp(-2j * np.pi * F * delay_s) * np.exp(0.5j))
    assert w.report.stale and w.first_stale_s == 3
    assert w.report.delay_change_s == pytest.approx(delay_s, abs=0.05e-9)


def test_a_changed_response_shape_is_stale():
    """A 6 degree ripple across the band (twice the limit): stale without any delay."""
    w = _watch(lambda h: h * np.exp(1j * np.radians(6 * np.sqrt(2)) * np.sin(2 * np.pi * F / 8e6)))
    assert w.report.stale and abs(w.report.delay_change_s) < 1e-9
    assert w.report.residual_deg == pytest.approx(6.0, rel=0.15)
