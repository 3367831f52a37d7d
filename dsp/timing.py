"""Zadoff-Chu symbol timing (eq. (53)) on the central band.

The illumination is periodic in ``N``, so timing is only needed modulo ``N``.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from dsp.waveform import WaveformConfig


def symbol_timing(central: np.ndarray, wf: WaveformConfig, n_windows: int = 8) -> tuple[int, float]:
    """Strongest-path position modulo ``N`` in ``central`` ``[sample]``, and a quality figure.

    Circular correlation of ``n_windows`` consecutive windows with the known symbol
    (one FFT each), magnitudes summed non-coherently so that no CFO is needed.
    Returns ``(n_hat, peak_to_mean)``; ``n_hat`` is the sample, counted from
    ``central[0]``, at which a symbol period of the strongest path starts.
    """
    n = wf.fft_size
    m = min(n_windows, central.shape[-1] // n)
    if m < 1:
        raise ValueError(f"symbol_timing needs at least {n} samples, got {central.shape[-1]}")
    windows = central[: m * n].reshape(m, n)
    spec = scipy.fft.fft(windows, axis=-1) * np.conj(wf.symbol_freq)
    power = (np.abs(scipy.fft.ifft(spec, axis=-1)) ** 2).sum(axis=0)
    n_hat = int(np.argmax(power))
    return n_hat, float(power[n_hat] / power.mean())


def coarse_cfo_hz(central: np.ndarray, wf: WaveformConfig, max_cfo_hz: float, n_windows: int = 8) -> float:
    """Carrier offset of the central band over ``+-max_cfo_hz``, whole subcarriers included.

    The fractional part comes from the lag-``N`` products of the periodic illumination
    (eq. (47), unambiguous within half a subcarrier).  The whole-subcarrier part is the
    shift of the occupied band: after removing the fractional part the spectrum sits on
    the bins, and the shift whose active-subcarrier mask holds the most power wins.  The
    Zadoff-Chu symbol is not used for that step, so its time/frequency ambiguity (a
    shifted ZC is almost a delayed ZC) cannot alias a frequency offset into a delay.
    ``central`` ``[sample]`` holds at least ``n_windows + 1`` windows.
    """
    n = wf.fft_size
    m = min(n_windows, central.shape[-1] // n - 1)
    if m < 1:
        raise ValueError(f"coarse_cfo_hz needs at least {2 * n} samples, got {central.shape[-1]}")
    x = central[: (m + 1) * n]
    frac = float(np.angle(np.vdot(x[:-n], x[n:]))) * wf.working_rate_hz / (2 * np.pi * n)
    spacing = wf.subcarrier_spacing_hz
    q_max = int(np.ceil(max_cfo_hz / spacing + 0.5))
    t = np.arange(m * n)
    y = central[: m * n] * np.exp(-2j * np.pi * frac * t / wf.working_rate_hz)
    power = (np.abs(scipy.fft.fft(y.reshape(m, n), axis=-1)) ** 2).sum(axis=0)
    shifts = np.arange(-q_max, q_max + 1)
    score = [power[np.mod(wf.active_subcarriers + q, n)].sum() for q in shifts]
    cands = frac + shifts * spacing
    ok = np.abs(cands) <= max_cfo_hz + spacing / 2
    best = int(np.argmax(np.where(ok, score, -np.inf)))
    return float(cands[best])
