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
