"""Zadoff-Chu symbol timing (dsp/timing.py ``symbol_timing``, eq. (53)) on windows built here.

The illumination is the independent oracle's symbol (tests/oracle/waveform.py, from
AIR_INTERFACE.md), not the receiver's, so a convention error shared by the receiver's
``symbol_freq`` and the emulator cannot pass.  About 0.3 s in all.
"""

from __future__ import annotations

import numpy as np
import pytest

from dsp.timing import coarse_cfo_hz, symbol_timing
from dsp.waveform import WaveformConfig
from tests.oracle.waveform import Numerology, symbol_bins

WF = WaveformConfig()
NUM = Numerology()
N = NUM.fft_size
K_ACT = NUM.subcarriers.size


def illumination(n_windows: int, paths: list[tuple[float, complex]], cfo_hz: float = 0.0) -> np.ndarray:
    """Periodic symbol through paths ``(delay in samples, gain)``; a delay ``d`` multiplies bin
    ``k`` by ``exp(-j 2 pi k d / N)`` (a fractional ``d`` is a band-limited delay)."""
    spec = symbol_bins(NUM)
    k = np.fft.fftfreq(N, 1 / N)
    h = sum(g * np.exp(-2j * np.pi * k * d / N) for d, g in paths)
    one = np.fft.ifft(spec * h) * np.sqrt(N)  # unit power per active bin
    x = np.tile(one, n_windows)
    t = np.arange(x.size)
    return x * np.exp(2j * np.pi * cfo_hz * t / NUM.working_rate_hz)


def test_the_oracle_symbol_is_the_receivers():
    np.testing.assert_allclose(np.abs(WF.symbol_freq) > 0, np.abs(symbol_bins(NUM)) > 0)
    ratio = WF.symbol_freq[np.abs(WF.symbol_freq) > 0] / symbol_bins(NUM)[np.abs(symbol_bins(NUM)) > 0]
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-9)  # the same symbol up to one scale


@pytest.mark.parametrize("delay", [0, 1, 37, 511, 1023])
def test_a_single_path_is_found_at_its_delay_with_peak_to_mean_k_active(delay):
    """Noiseless single path at an integer delay: the circular correlation with a unit-modulus
    ZC on ``K`` of ``N`` bins is ``d[n] = (1/N) sum_k exp(j 2 pi k (n - delay) / N)``; its peak
    is ``(K/N)**2`` (in power) and by Parseval its mean power is ``K / N**2``: peak to mean ``K``
    (800), whatever the number of windows and the gain."""
    x = illumination(9, [(delay, 0.3 - 2j)])
    n_hat, q = symbol_timing(x, WF)
    assert n_hat == delay
    assert q == pytest.approx(K_ACT, rel=1e-9)
    assert symbol_timing(x[3 * N + 5 :], WF)[0] == (delay - 3 * N - 5) % N  # counted from x[0]


def test_the_strongest_path_wins_and_a_carrier_offset_does_not_move_it():
    """Magnitudes are summed over windows (non-coherently), so a CFO of 2.3 subcarriers' phase
    rotation per window cannot cancel the peak; with a CFO of ``c`` subcarriers the ZC's
    time/frequency coupling moves the peak by a whole number of samples, so a fraction of a
    subcarrier (here 0.05) must leave it in place.  The weaker path 6 dB down and earlier."""
    paths = [(100, 0.5 + 0j), (140, 1j)]
    cfo = 0.05 * NUM.spacing_hz
    assert symbol_timing(illumination(8, paths, cfo), WF)[0] == 140


def test_noise_at_minus_ten_db_per_sample_keeps_the_peak_and_lowers_the_figure():
    """Per window the correlation gain is ``K`` (29 dB): at -10 dB per sample the peak stands
    19 dB above the noise of each lag.  With ``r = |a|**2 / sigma_f**2 = snr N / K`` per bin, the
    peak power is ``(r K**2 + K)`` and the mean over lags ``(r K + K)`` (times ``sigma_f**2 /
    N**2``): the figure falls from ``K`` to ``(r K + 1) / (r + 1)`` = 92 at ``snr`` 0.1 (85-97
    over five noise seeds), well inside [40, 120]."""
    rng = np.random.default_rng(5)
    x = illumination(8, [(250, 1.0)])
    p = np.mean(np.abs(x) ** 2)
    x = x + np.sqrt(p * 10 / 2) * (rng.normal(size=x.size) + 1j * rng.normal(size=x.size))
    n_hat, q = symbol_timing(x, WF)
    assert n_hat == 250 and 40 < q < 120


def test_windows_used_and_too_short_input():
    """Only ``n_windows`` windows count (a later burst cannot move the estimate) and fewer than
    ``N`` samples are refused."""
    x = np.concatenate([illumination(4, [(10, 1.0)]), illumination(20, [(700, 10.0)])])
    assert symbol_timing(x, WF, n_windows=4)[0] == 10
    assert symbol_timing(x, WF, n_windows=24)[0] == 700
    assert symbol_timing(x[:N], WF)[0] == 10  # one window is enough
    with pytest.raises(ValueError, match=f"at least {N} samples"):
        symbol_timing(x[: N - 1], WF)


def test_the_default_is_eight_windows():
    """``n_windows`` defaults to 8: a 20 dB stronger path from the ninth window on is not seen."""
    x = np.concatenate([illumination(8, [(10, 1.0)]), illumination(20, [(700, 10.0)])])
    assert symbol_timing(x, WF)[0] == 10


def test_coarse_cfo_windows_used_and_too_short_input():
    """``coarse_cfo_hz`` (dsp/timing.py) reads ``n_windows + 1`` windows (the lag-``N`` products
    of ``n_windows`` pairs; 8 by default): a burst of strong noise from the tenth window on does
    not move it, two windows are enough, fewer are refused naming the length.  Noiseless, the
    lag product's angle is exact: 0.3 subcarriers (9 kHz) within 1e-6 Hz."""
    cfo = 0.3 * NUM.spacing_hz
    clean = illumination(9, [(40, 1.0)], cfo)
    rng = np.random.default_rng(1)
    junk = 10 * (rng.normal(size=3 * N) + 1j * rng.normal(size=3 * N))
    assert coarse_cfo_hz(np.concatenate([clean, junk]), WF, 20e3) == pytest.approx(cfo, abs=1e-6)
    assert coarse_cfo_hz(clean[: 2 * N], WF, 20e3) == pytest.approx(cfo, abs=1e-6)
    with pytest.raises(ValueError, match=rf"^coarse_cfo_hz needs at least {2 * N} samples, got {2 * N - 1}$"):
        coarse_cfo_hz(clean[: 2 * N - 1], WF, 20e3)


def test_coarse_cfo_keeps_to_its_search_range():
    """Candidates beyond ``max_cfo_hz`` plus half a subcarrier are never returned: a carrier 2
    subcarriers off searched over +-0.6 subcarrier gives the allowed candidate whose band mask
    holds the most power, +1 subcarrier (its mask overlaps the shifted band on 799 of 800
    subcarriers, 0's on 798)."""
    x = illumination(9, [(40, 1.0)], 2.0 * NUM.spacing_hz)
    assert coarse_cfo_hz(x, WF, 0.6 * NUM.spacing_hz) == pytest.approx(NUM.spacing_hz, abs=1e-3)
