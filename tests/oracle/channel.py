"""Multipath path lists and their frequency responses (SYSTEM.md section 1).

A link is a tuple of ``(length_m, gain)`` rows, line of sight first.  Seen in a
band of RF centre ``F`` its CFR at baseband ``f`` is
``H(f) = sum_l a_l exp(-j 2 pi (F + f) d_l / c)``: every path a fractional delay
applied exactly, per subcarrier.
"""

from __future__ import annotations

import numpy as np

from tests.oracle.waveform import SPEED_OF_LIGHT_M_S, Numerology

Link = tuple[tuple[float, complex], ...]


def cfr(link: Link, freqs_hz: np.ndarray, center_hz: float) -> np.ndarray:
    """``H(f)`` ``[subcarrier]`` of a link at baseband ``freqs_hz`` in a band centred on ``center_hz``."""
    d = np.array([r[0] for r in link], np.float64)
    a = np.array([r[1] for r in link], np.complex128)
    tau = d / SPEED_OF_LIGHT_M_S
    carrier = a * np.exp(-2j * np.pi * np.mod(center_hz * tau, 1.0))
    return np.exp(-2j * np.pi * np.outer(freqs_hz, tau)) @ carrier


def band_cfr(num: Numerology, band: str, tx_rx: Link, tx_tag: Link, tag_rx: Link) -> np.ndarray:
    """Propagation CFR ``[subcarrier]`` of a band on the active subcarriers.

    Central: the direct link at ``fc``.  Side band: TX->tag at ``fc`` (the tag sees
    the illumination at the carrier) times tag->RX at the side band's centre.
    """
    f = num.freqs_hz
    if band == "central":
        return cfr(tx_rx, f, num.carrier_freq_hz)
    return cfr(tx_tag, f, num.carrier_freq_hz) * cfr(tag_rx, f, num.band_center_hz(band))


def first_peak_delay_s(num: Numerology, h: np.ndarray, los_delay_s: float, threshold: float) -> float:
    """IR First (SYSTEM.md section 5) on the noiseless band-limited CIR
    ``abs(sum_k H[k] exp(j 2 pi f_k tau))``: the first local maximum above ``threshold`` times
    the maximum, searched from two resolution cells ``1 / B_occ`` before the LoS delay.

    It differs from the LoS delay only through the other paths' side lobes and merged
    main lobes: the bias of the method on this channel at this bandwidth, whatever the noise.
    """
    f = num.freqs_hz
    cell = 1.0 / (f.max() - f.min())
    over = 64 * num.fft_size  # one period of the CIR at a step of about cell / 50, by one FFT
    spec = np.zeros(over, complex)
    spec[num.subcarriers % over] = h
    coarse_mag = np.abs(np.fft.ifft(spec))  # tau_q = q / (over df)
    step = 1.0 / (over * num.spacing_hz)
    first = int(np.floor((los_delay_s - 2 * cell) / step))
    m = np.roll(coarse_mag, -first)  # from two cells before the LoS onwards
    peaks = np.flatnonzero((m[1:-1] >= m[:-2]) & (m[1:-1] > m[2:]) & (m[1:-1] >= threshold * m.max())) + 1
    fine = (first + peaks[0]) * step + np.arange(-step, step, 1e-12)
    return float(fine[np.argmax(np.abs(np.exp(2j * np.pi * np.outer(fine, f)) @ h))])
