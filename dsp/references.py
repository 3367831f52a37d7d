"""Per-band projection vectors: the expected received symbol and a noise-only guard probe.

By Parseval, projecting an OFDM window on the time-domain shape of the expected
received symbol equals the frequency-domain matched combination of eq. (63)-(64),
at the cost of one inner product per window.  The in-window phase ramp of the
band's CFO is folded into the vectors, so windows are never rotated sample by
sample.
"""

from __future__ import annotations

import functools

import numpy as np

from dsp.waveform import WaveformConfig

GUARD_SUBCARRIERS = (410, 440)


def ramp(wf: WaveformConfig, cfo_hz: float) -> np.ndarray:
    """In-window CFO phase ramp ``exp(j 2 pi nu n / fs)``, ``[N]`` (read-only: the receiver asks
    for the same band's ramp several times per packet, so the last few are kept)."""
    return _ramp(wf.fft_size, wf.working_rate_hz, float(cfo_hz))


@functools.lru_cache(maxsize=16)
def _ramp(n: int, fs: float, cfo_hz: float) -> np.ndarray:
    r = np.exp(2j * np.pi * cfo_hz * np.arange(n) / fs)
    r.setflags(write=False)
    return r


def symbol_from_cfr(wf: WaveformConfig, cfr: np.ndarray, cfo_hz: float) -> np.ndarray:
    """Time-domain window ``[N]`` that a band with CFR ``cfr`` and CFO ``cfo_hz`` would show."""
    spec = np.zeros(wf.fft_size, complex)
    spec[wf.active_bins] = wf.zadoff_chu * cfr
    return (np.fft.ifft(spec) * np.sqrt(wf.fft_size) * ramp(wf, cfo_hz)).astype(np.complex64)


def cfr_from_symbol(wf: WaveformConfig, symbol: np.ndarray, cfo_hz: float) -> np.ndarray:
    """Inverse of :func:`symbol_from_cfr`: ``[subcarrier]`` from a (weighted-sum) window ``[N]``."""
    y = np.fft.fft(symbol * np.conj(ramp(wf, cfo_hz))) / np.sqrt(wf.fft_size)
    return y[wf.active_bins] / wf.zadoff_chu


def guard_probe(wf: WaveformConfig, cfo_hz: float) -> np.ndarray:
    """Unit-modulus random-phase probe on unused subcarriers, ``[N]``: its projection is noise only."""
    shape = _guard_shape(wf.fft_size, wf.subcarrier_min, wf.subcarrier_max)
    return (shape * ramp(wf, cfo_hz)).astype(np.complex64)


@functools.lru_cache(maxsize=4)
def _guard_shape(n: int, subcarrier_min: int, subcarrier_max: int) -> np.ndarray:
    """The guard probe at zero CFO, ``[N]`` complex128 (read-only; made once per numerology).

    Subcarriers ``+-GUARD_SUBCARRIERS`` (both signs), clamped below Nyquist; where the band
    reaches them on either side, from one past the band's widest subcarrier, and where it reaches
    past their end, every unused subcarrier up to Nyquist (WaveformConfig keeps one free).  Until
    session 13 only ``subcarrier_max`` was looked at: a band to -450 put half the probe on active
    subcarriers, and one to +450 left it empty (a nan noise variance)."""
    lo, hi = GUARD_SUBCARRIERS
    half = n // 2
    lo, hi = min(lo, half - 2), min(hi, half - 1)
    edge = max(subcarrier_max, -subcarrier_min)  # the band's widest subcarrier, either side
    if lo <= edge:
        lo = edge + 1
    if hi < lo:  # (never empty: WaveformConfig keeps the band within half - 2)
        hi = half - 1
    k = np.concatenate([np.arange(lo, hi + 1), -np.arange(lo, hi + 1)])
    spec = np.zeros(n, complex)
    spec[np.mod(k, n)] = np.exp(2j * np.pi * np.random.default_rng(12345).random(k.size))
    shape = np.fft.ifft(spec) * np.sqrt(n)
    shape.setflags(write=False)
    return shape
