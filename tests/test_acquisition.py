"""The tap window of blind acquisition as a denoiser of side-band CFR estimates (dsp/acquisition.py)."""

from __future__ import annotations

import numpy as np

from dsp.acquisition import TapSpace
from dsp.receiver_config import ReceiverConfig
from dsp.waveform import WaveformConfig

WF = WaveformConfig()
K = WF.active_subcarriers
CFG = ReceiverConfig()
SPACE = TapSpace(
    WF, CFG.timing_guard_samples + CFG.tag_delay_window[0], CFG.tag_delay_window[1] - CFG.tag_delay_window[0]
)


def _cfr(delays: np.ndarray, gains: np.ndarray) -> np.ndarray:
    return (gains[None, :] * np.exp(-2j * np.pi * np.outer(K, delays) / WF.fft_size)).sum(axis=1)


def test_a_channel_inside_the_window_survives_and_one_outside_does_not():
    """Paths 8 or more taps inside the 32-tap window: what the projection drops is the paths'
    band-limited sidelobes beyond the window, each below ``1 / (pi * 8)`` of the path's peak
    per tap (Dirichlet kernel), a few per cent of the energy; a path 40 taps beyond the window
    is rejected at least as well as white noise, which keeps ``L / K`` of its energy."""
    rng = np.random.default_rng(3)
    first, last = SPACE.delays[0], SPACE.delays[-1]
    for _ in range(5):
        d = rng.uniform(first + 8, last - 8, 3)
        h = _cfr(d, rng.normal(size=3) + 1j * rng.normal(size=3))
        kept = SPACE.denoise(h)
        assert np.linalg.norm(kept - h) <= 0.1 * np.linalg.norm(h)
    far = _cfr(np.array([last + 40.3]), np.array([1.0 + 0j]))
    kept_far = np.linalg.norm(SPACE.denoise(far)) ** 2 / np.linalg.norm(far) ** 2
    assert kept_far < SPACE.delays.size / K.size, kept_far


def test_noise_keeps_taps_over_subcarriers_of_its_power():
    """White noise keeps ``trace(P) / K = L / K`` of its power (P the rank-L projector).  Over
    200 draws the mean ratio has relative standard deviation ``1 / sqrt(200 L)`` (1.25 %):
    5 % is four of them."""
    rng = np.random.default_rng(4)
    n = rng.normal(size=(200, K.size)) + 1j * rng.normal(size=(200, K.size))
    ratio = np.mean([np.vdot(SPACE.denoise(x), SPACE.denoise(x)).real / np.vdot(x, x).real for x in n])
    expected = SPACE.delays.size / K.size
    assert abs(ratio / expected - 1) < 0.05, (ratio, expected)
