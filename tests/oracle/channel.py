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


def first_peak_delay_s(num: Numerology, h: np.ndarray, los_delay_s: float, step_s: float = 2e-12) -> float:
    """Delay of the local maximum of the noiseless band-limited CIR ``abs(sum_k H[k] e^{j 2 pi f_k tau})``
    nearest the line-of-sight delay (searched within half a resolution cell ``1 / B_occ`` of it).

    It differs from the LoS delay only through the other paths' side lobes: the bias any
    first-peak estimator has on this channel at this bandwidth, whatever its noise.
    """
    cell = 1.0 / (num.freqs_hz.max() - num.freqs_hz.min())
    taus = los_delay_s + np.arange(-cell / 2, cell / 2 + step_s, step_s)
    mag = np.abs(np.exp(2j * np.pi * np.outer(taus, num.freqs_hz)) @ h)
    i = int(np.argmax(mag))
    return float(taus[i])
