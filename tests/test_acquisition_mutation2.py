"""How ``tag_offset_hz`` (dsp/acquisition.py) combines its spectra: the mutation check of session
14 (docs/MUTATION.md).  Under 1 s.

The tag's offset is the peak of a sum of periodograms (powers ``|FFT|**2``): in burst mode the
upper band squared, the lower band conjugated and squared, and their cross product; in CW mode
the two bands themselves.  Session 7's statistical test of the sum (300 draws at -12 dB) was
dropped in session 12 (``5b20bbb``) and 22 mutants of the sum survived again (a band's spectrum
dropped or replacing the sum, the cross product dropped or subtracted, a spectrum's power law).
These tests are deterministic instead: a band carrying noise only must leave the estimate to the
other band, a phase common to both bands must leave it to the cross product, and the parabola
through the three largest bins must stay within the bias derived below for a power spectrum.

The parabola's bias.  A tone of ``n`` samples in an ``nfft``-point FFT has the periodogram
``n**2 sinc(x)**2`` near its peak (``x`` in bins of ``1 / n``; the Dirichlet kernel differs by
``O(1 / n**2)``), sampled every ``d = n / nfft`` of those bins.  With ``sinc(x)**2 = 1 - a x**2 +
b x**4 - ...``, ``a = pi**2 / 3``, ``b = 2 pi**4 / 45``, the vertex of the parabola through the
three samples around the peak, the true peak ``u`` fine bins from the middle one, is ``u + r u (4
u**2 - 1) + O(r**2)`` with ``r = b d**2 / a = (2 pi**2 / 15) d**2``: largest at ``u = 1 /
sqrt(12)``, ``2 r / (3 sqrt(12)) = 0.1925 r``.  For ``n`` = 4000, ``nfft`` = 16384: ``r`` =
0.0784, 0.0151 fine bins (0.028 Hz of the 1.83 Hz bin; measured 0.0283 Hz at ``u = 1 / sqrt(12)``,
the ``O(r**2)`` rest 2.5 %).  Limit: 1.1 times the first-order bound.  The cube ``|FFT|**3`` has
``a = pi**2 / 2``, ``b = 13 pi**4 / 120``, ``r`` = 0.127: 0.0245 fine bins, outside it.

A noise band's bins shift the vertex: ``(y0 - y2) / (2 |den|)`` with ``den = -2 a d**2 n**2``
(0.39 ``n**2``); a bin of white noise of mean ``mu`` exceeds ``20 mu`` with probability
``exp(-20)`` (2e-9), so the shift is below ``20 mu / (0.78 n**2)`` fine bins.
"""

from __future__ import annotations

import numpy as np
import pytest

from dsp.acquisition import tag_offset_hz
from dsp.waveform import WaveformConfig

WF = WaveformConfig()
RATE = WF.working_rate_hz / WF.fft_size  # OFDM symbols per second, 30 kHz
N = 4000
NFFT = 16384  # 2 ** ceil(log2(4 N)): tag_offset_hz's grid for the default pad 4
BIN_HZ = RATE / NFFT
D = N / NFFT
R_POWER = 2 * np.pi**2 / 15 * D**2
BIAS_BINS = 1.1 * 2 * R_POWER / (3 * np.sqrt(12))  # 0.0166 fine bins (see the module doc)
WORST_U = 1 / np.sqrt(12)  # where the bias is largest


def _tone_hz(k: int, modulated: bool) -> float:
    """The offset whose tone (``2 eps f_sh`` in burst mode, ``eps f_sh`` in CW) lies ``WORST_U``
    fine bins above bin ``k``."""
    f = (k + WORST_U) * BIN_HZ
    return f / 2 if modulated else f


def _bands(offset_hz: float, modulated: bool, seed: int) -> dict[str, np.ndarray]:
    """Noise-free side bands of unit amplitude: BPSK data of 15 windows a bit in burst mode (the
    same on both bands), none in CW; each band its own carrier phase."""
    rng = np.random.default_rng(seed)
    data = np.repeat(1 - 2 * rng.integers(0, 2, N // 15 + 1), 15)[:N] if modulated else np.ones(N)
    t = np.arange(N) / RATE
    return {
        "upper": data * np.exp(1j * (2 * np.pi * offset_hz * t + rng.uniform(0, 2 * np.pi))),
        "lower": data * np.exp(1j * (-2 * np.pi * offset_hz * t + rng.uniform(0, 2 * np.pi))),
    }


def _limit_hz(modulated: bool, noise_mean_over_n: float = 0.0) -> float:
    """The bias bound plus the vertex's shift by noise bins of mean ``noise_mean_over_n * N``
    (module doc), in Hz of the offset (halved in burst mode, whose tone is at twice it)."""
    shift = 20 * noise_mean_over_n * N / (4 * np.pi**2 / 3 * D**2 * N**2)
    hz = (BIAS_BINS + shift) * BIN_HZ
    return hz / 2 if modulated else hz


@pytest.mark.parametrize("modulated", [True, False])
@pytest.mark.parametrize("bands", [("upper",), ("lower",), ("upper", "lower")])
def test_the_parabola_on_the_periodogram_is_within_its_bias(modulated, bands):
    """Noise-free bands at the offset where the parabola's bias is largest (module doc): within
    1.1 times the first-order bound, 0.030 Hz in CW and 0.015 Hz in burst mode.  A spectrum
    cubed instead of squared (any of the three) errs by 0.045 and 0.023 Hz there."""
    offset = _tone_hz(3000 if not modulated else 7000, modulated)
    z = _bands(offset, modulated, seed=len(bands) + 10 * modulated)
    est = tag_offset_hz({b: z[b] for b in bands}, RATE, modulated=modulated)
    assert est == pytest.approx(offset, abs=_limit_hz(modulated))


@pytest.mark.parametrize("modulated", [True, False])
@pytest.mark.parametrize("tone", ["upper", "lower"])
def test_a_band_of_noise_alone_leaves_the_offset_to_the_other(modulated, tone):
    """One band carries the tag (noise-free, unit amplitude), the other noise alone of unit
    variance: a side band in a deep fade.  The tag band's spectrum peaks at ``N**2`` (1.6e7),
    its sidelobes at 4.7 % of that; the other spectra are white: in CW the noise band's mean is
    ``N`` a bin, in burst mode its square's ``2 N`` and the cross product's ``N``, so their sum
    passes ``N**2 / 2`` nowhere (over 600 times its mean).  The estimate is the
    tag band's, within the bias bound plus the vertex's shift by bins of mean ``3 N``.

    A spectrum taken as ``2 |FFT|`` (``2 N`` at the tone, 8,000) sinks under the noise's peaks
    (about ``ln(16384) N``, 40,000), and a noise spectrum that replaces the sum (``power =``)
    loses the tone: both err by kHz."""
    rng = np.random.default_rng(3 + 2 * modulated + (tone == "lower"))
    offset = _tone_hz(5000, modulated)
    z = _bands(offset, modulated, seed=20 + 2 * modulated + (tone == "lower"))
    other = "lower" if tone == "upper" else "upper"
    z[other] = (rng.normal(size=N) + 1j * rng.normal(size=N)) / np.sqrt(2)
    est = tag_offset_hz(z, RATE, modulated=modulated)
    assert est == pytest.approx(offset, abs=_limit_hz(modulated, noise_mean_over_n=3.0))


def test_a_phase_common_to_both_bands_is_left_to_the_cross_product():
    """Burst mode: both bands multiplied by the same unit phasor ``exp(j theta_m)``, ``theta_m``
    uniform and independent (data that is not +-1, or a phase the central band's correction
    left: it is common to both bands, as the tag's data is).  Squaring keeps ``exp(2j theta)``:
    each square's spectrum is white, mean ``N`` a bin; ``conj(lower) upper`` removes it and keeps
    the tone, ``N**2`` at ``2 eps f_sh`` (the docstring's cross product "without squaring
    loss").  The squares' sum passes ``N**2 / 2`` nowhere (1,000 times its mean); the estimate is the
    cross product's, within the bias bound plus the shift by bins of mean ``2 N``.  Without the
    cross product, with it subtracted, or as ``2 |FFT|`` (8,000 under the squares' peaks of
    about 80,000) the peak is the squares' noise: kHz off."""
    rng = np.random.default_rng(31)
    offset = _tone_hz(6000, True)
    z = _bands(offset, True, seed=32)
    common = np.exp(1j * rng.uniform(0, 2 * np.pi, N))
    z = {b: v * common for b, v in z.items()}
    est = tag_offset_hz(z, RATE)
    assert est == pytest.approx(offset, abs=_limit_hz(True, noise_mean_over_n=2.0))
