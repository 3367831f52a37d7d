"""Oscillator phase noise with a PSD mask, generated block by block, reproducible per block.

``L(f)`` (dBc/Hz, single sideband) is given at offsets ``(f_i, L_i)`` and interpolated
linearly in dB against log frequency, flat below the first offset (inside the PLL's loop
bandwidth) and flat beyond the last (the floor).  The phase ``phi(t)`` is a real stationary
Gaussian process with two-sided PSD ``S_phi(f) = L(|f|)`` (rad^2/Hz; small-angle: the
carrier's SSB noise equals the phase PSD), so its variance is ``2 int_0^inf L(f) df``.

Generation (no state carried, so any block is reproducible on its own):

* the phase is made on a coarse grid of ``decim`` samples (``rate / decim`` >= 1.5 MHz:
  1.92 MS/s at 30.72 MS/s, 2.5 MS/s at 62.5 MS/s) and held for ``decim`` samples at the
  sample rate (the hold's ``sinc`` response pre-compensated; a hold, not an interpolation:
  one multiply per sample, 6x cheaper): the mask is honoured up to
  ``rate / (2 decim)`` (0.96 MHz by default); beyond, only the hold's images remain
  instead of the default floor of -135 dBc/Hz, whose 7.6e-7 rad^2 per oscillator (-61 dBc)
  would lie 31 dB under the default 30 dB SNR;
* on the coarse grid, overlapping segments of ``2 S`` samples (``S`` = one block) with hop
  ``S``, each an independent circular Gaussian process shaped in frequency by the mask and
  seeded by (seed, segment) (``noise_kernel.stream_key``), are windowed by ``sin(pi m / 2S)``
  and added.  A segment's white noise is drawn directly as its spectrum (the rfft of ``2S``
  white samples: Gaussian bins of power ``2S``, real at 0 and ``S``), with the AWGN's
  generator (noise_kernel.py), in float32 (the phase's relative rounding, 6e-8, is far below
  any effect measured).  Since ``sin^2 + cos^2 = 1`` the variance is stationary; the PSD is
  the mask smoothed by the window's kernel (``1 / 2S`` wide: 59 Hz at 30.72 MS/s).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import scipy.fft

from dsp.config_base import ConfigError
from sdr.emulator.noise_kernel import fill_complex_gaussian, stream_key

MIN_COARSE_RATE_HZ = 1.5e6


def coarse_decimation(period: int, rate_hz: float) -> int:
    """Largest divisor ``D`` of ``period`` with ``rate_hz / D >= MIN_COARSE_RATE_HZ`` (at least 1)."""
    best = 1
    for d in range(1, period + 1):
        if period % d == 0 and rate_hz / d >= MIN_COARSE_RATE_HZ:
            best = d
    return best


def mask_dbc_hz(mask: tuple[tuple[float, float], ...], freqs_hz: np.ndarray) -> np.ndarray:
    """``L(f)`` in dBc/Hz at ``freqs_hz`` (any shape, absolute value taken) from ``mask`` rows."""
    f_pts = np.log10([row[0] for row in mask])
    l_pts = np.array([row[1] for row in mask], np.float64)
    f = np.log10(np.maximum(np.abs(np.asarray(freqs_hz, np.float64)), 1e-3))
    return np.interp(f, f_pts, l_pts)  # flat outside the given offsets


def check_mask(mask: tuple[tuple[float, float], ...], where: str) -> None:
    """Raise ``ConfigError`` naming ``where`` unless offsets rise strictly and levels are sane."""
    if len(mask) < 1 or any(len(row) != 2 for row in mask):
        raise ConfigError(f"{where}: give rows (offset_hz, dbc_hz), at least one")
    offsets = [row[0] for row in mask]
    if any(not (np.isfinite(f) and f > 0) for f in offsets) or any(b <= a for a, b in pairwise(offsets)):
        raise ConfigError(f"{where}: offsets must be positive and strictly increasing, got {offsets}")
    if any(not (np.isfinite(v) and -200 <= v <= -20) for _, v in mask):
        raise ConfigError(f"{where}: levels must be in [-200, -20] dBc/Hz")


class PhaseNoise:
    """One oscillator's phase, ``[sample]`` float64 rad, block by block.

    ``mask`` rows ``(offset_hz, dbc_hz)`` at the oscillator's own frequency (already scaled);
    ``block_samples`` a multiple of ``decim``; ``seed`` a ``SeedSequence`` entropy tuple.
    """

    def __init__(
        self,
        mask: tuple[tuple[float, float], ...],
        rate_hz: float,
        block_samples: int,
        decim: int,
        seed: tuple[int, ...],
    ):
        if block_samples % decim:
            raise ValueError(f"block_samples {block_samples} is not a multiple of decim {decim}")
        self.rate_hz, self.decim, self.seed = rate_hz, decim, seed
        self.seg = block_samples // decim  # S: coarse samples per block (and hop)
        coarse_hz = rate_hz / decim
        f = np.fft.rfftfreq(2 * self.seg, 1 / coarse_hz)
        psd = 10 ** (mask_dbc_hz(mask, f) / 10)  # rad^2/Hz, two-sided
        psd[0] = 0.0  # no DC: the absolute phase is the band's own random phase
        # held for decim samples at the full rate, frequency f passes with gain sinc(f / coarse_hz)
        # (power sinc^2): pre-compensated, so the output follows the mask across the coarse band
        self._psd = psd / np.sinc(f / coarse_hz) ** 2
        self._cache: dict[int, np.ndarray] = {}
        self._key = int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0])
        # white unit-variance noise -> rfft has E|W_k|^2 = 2S; scale to PSD * coarse_hz per bin power
        self._shape = np.sqrt(self._psd * coarse_hz).astype(np.float32)
        self._win = np.sin(np.pi * np.arange(2 * self.seg) / (2 * self.seg)).astype(np.float32)

    def variance_rad2(self) -> float:
        """Phase variance of the output (full rate): the coarse process's own (a held sample
        keeps its value: the hold's images beyond the coarse band, ``sum_m sinc^2(x + m) = 1``,
        carry exactly what the pre-compensation added)."""
        n = 2 * self.seg
        weight = np.where(np.arange(len(self._psd)) == n // 2, 1.0, 2.0)  # the Nyquist bin once
        return float(np.sum(self._psd * weight) * self.rate_hz / self.decim / n)

    def spectrum(self, j: int) -> np.ndarray:
        """Segment ``j``'s spectrum, complex64 ``[S + 1]``: the rfft of ``2S`` white unit-variance
        samples, drawn directly (bins 1 .. S-1 circular Gaussian with ``E|W_k|^2 = 2S``, bins 0
        and S real with variance 2S; noise_kernel.py), shaped by the mask.  A pure function of
        ``j``; the last two are kept (each band of a block asks for them)."""
        if j in self._cache:
            return self._cache[j]
        key = stream_key(self._key, j)
        w = np.empty(self.seg + 1, np.complex64)
        fill_complex_gaussian(key, np.float32(np.sqrt(2 * self.seg)), w.view(np.float32))
        w[[0, -1]] = w[[0, -1]].real * np.float32(np.sqrt(2))
        w *= self._shape
        self._cache = {k: v for k, v in self._cache.items() if k == j - 1}
        self._cache[j] = w
        return w

    def segment(self, spectrum: np.ndarray) -> np.ndarray:
        """The windowed segment ``[2S]`` (float32) of a spectrum ``[S + 1]``: segment ``j``
        covers coarse samples ``[(j - 1) S, (j + 1) S)``; linear, so the segment of a sum of
        oscillators' spectra is the sum of their segments."""
        return scipy.fft.irfft(spectrum, 2 * self.seg, workers=1) * self._win
