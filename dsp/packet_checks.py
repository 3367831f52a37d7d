"""Is a preamble candidate a packet's start?  Tests against data that merely correlates with
the code (SYSTEM.md section 4, step 5; docs/RECEIVER.md).

A search that starts inside a packet, or passes over a preamble missed at low SNR, meets data
whose 13 bits correlate with the Barker code (the largest squared correlation over a random
packet has median 0.48; 2.7 % of packets hold an exact match).  Three tests, each where it is
reliable:

* :func:`energy_match` (per-window SNR of 0 dB and above; before demodulation, cheap);
* :func:`gain_match` (any SNR; needs the packet's fitted gains);
* :func:`tag_idle` (burst mode: the tag is idle between packets).

Per-band arrays are ``[band, window]``; ``noise_var`` ``[band]`` is the variance of ``z``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import chi2, ncx2

from dsp.phasor import cis

PREAMBLE_FALSE_REJECT = 1e-3  # probability that a true preamble fails the gain test
IDLE_FALSE_REJECT = 1e-4  # probability that noise alone fails the idle test
IDLE_NOISE_MARGIN = 1.25  # the noise variance may be underestimated by this factor
IDLE_DATA_FRACTION = 0.25  # idle holds less than this part of data's power (data: 1 + noise)


def energy_match(
    z: np.ndarray, noise_var: np.ndarray, wave: np.ndarray, min_correlation: float = 0.5
) -> bool:
    """False when the windows ``z`` of a candidate hold the tag's energy but not the preamble's
    shape: the noise-corrected normalised correlation with the preamble waveform ``wave``
    ``[window]``, ``sum (|z w|**2 - v w w) / sum (|z|**2 w**2 - v w w) (w w)``, below
    ``min_correlation``.

    With ``z = g a + noise`` it estimates ``(sum a w)**2 / ((sum a**2 w**2) (w w))``: 1 on the
    preamble, ``rho**2`` on data.  At a per-window SNR of 0 dB and above it is within about 20 %
    (the energy is then well above the noise and ``v``'s own error); below, it is a difference of
    two nearly equal numbers (at Eb/N0 7 dB the SNR is about -10 dB a window) that came out
    negative for true preambles and lost their packets, so it rejects only where the energy it
    measures is at least the noise's (True otherwise: no decision).
    """
    w2 = float(wave @ wave)
    signal = float(np.sum(np.abs(z @ wave) ** 2 - noise_var * w2))
    energy = float(np.sum(np.abs(z) ** 2 @ wave**2 - noise_var * w2))
    return not (energy >= float(np.sum(noise_var)) * w2 and signal < min_correlation * energy * w2)


def gain_match(
    z: np.ndarray, noise_var: np.ndarray, wave: np.ndarray, gains: np.ndarray, min_correlation: float = 0.5
) -> bool:
    """False when the preamble statistic ``sum |z w|**2 / (v w w)`` lies below the
    ``PREAMBLE_FALSE_REJECT`` quantile of what a preamble gives for a tag of complex gains
    ``gains`` ``[band]`` (fitted over the whole packet), ``chi2'(2 B, 2 sum |g|**2 w w / v) / 2``,
    and the squared correlation it implies, ``sum (|z w|**2 - v w w) / sum |g|**2 (w w)**2``, is
    below ``min_correlation``.

    The gain fit sees the whole packet, so at low SNR it is far more precise than the energy of
    the preamble's windows.  It is biased low when the fitted span runs past the end of the
    tag's burst (a candidate in the last bits of a packet): :func:`tag_idle` and, at high SNR,
    :func:`energy_match` catch those.
    """
    w2 = float(wave @ wave)
    corr = np.abs(z @ wave) ** 2
    signal = float(np.sum(corr - noise_var * w2))
    stat = float(np.sum(corr / (noise_var * w2)))
    nc = float(np.sum(2 * np.abs(gains) ** 2 * w2 / noise_var))
    rho2 = signal / max(float(np.sum(np.abs(gains) ** 2)) * w2 * w2, 1e-300)
    if rho2 >= min_correlation:  # (the quantile, 0.3-0.5 ms of scipy's root finding, only if needed)
        return True
    floor = float(ncx2.ppf(PREAMBLE_FALSE_REJECT, 2 * z.shape[0], nc)) / 2
    return bool(stat >= floor)


def tag_idle(
    z: np.ndarray,
    noise_var: np.ndarray,
    overlaps: np.ndarray,
    gains: np.ndarray,
    freq_offset_hz: np.ndarray,
    times_s: np.ndarray,
) -> bool:
    """Whether the tag was idle over the symbols before a packet, as a packet's start requires.

    ``z`` ``[band, window]`` are the windows before the packet's start, ``overlaps``
    ``[symbol, window]`` the tag symbols that would precede it, ``gains`` / ``freq_offset_hz``
    ``[band]`` the packet's fitted gain and residual frequency (demodulate), ``times_s``
    ``[window]``.  Between packets the tag is idle (docs/AIR_INTERFACE.md), so before a true
    preamble the side bands hold noise alone; before a data segment that merely correlates with
    the code (a missed preamble, a search started inside a packet) they hold the same packet's
    earlier symbols, with the same gain and phase.  Each symbol's MRC output
    ``u_j = Re(sum_b conj(g_b) / v_b sum_m O[j, m] z_b[m] exp(-j 2 pi f_b t_m))`` is normalised by
    its noise deviation; ``sum u_j**2`` is chi-square with ``J`` degrees of freedom when idle,
    and about ``J (1 + 2 Eb/N0)`` on data (Eb/N0 of both bands: 10.6 J at 6.8 dB).  Rejected
    above the chi-square ``IDLE_FALSE_REJECT`` quantile times ``IDLE_NOISE_MARGIN`` *and* above
    ``IDLE_DATA_FRACTION`` of the power data of these gains would give (at high SNR the first
    alone rejects any residue; at low SNR the second is below the first).  Unlike an
    energy test it needs no precise noise variance: the phase of the fitted gain makes it
    coherent, and the gap to data is a factor of ten, not ten per cent.
    """
    zc = z * cis(-2 * np.pi * np.outer(freq_offset_hz, times_s))
    u = overlaps @ np.real((np.conj(gains) / noise_var) @ zc)  # [symbol]
    # on data u_j = +-mu_j + noise, mu_j = sum_b |g_b|**2 / v_b sum_m O[j, m]**2; noise variance mu_j / 2
    mu = (overlaps**2).sum(axis=1) * float(np.sum(np.abs(gains) ** 2 / noise_var))
    var = mu / 2
    ok = var > 0
    j = int(ok.sum())
    if j == 0:
        return True
    stat = float(np.sum(u[ok] ** 2 / var[ok]))
    if stat <= IDLE_NOISE_MARGIN * float(chi2.isf(IDLE_FALSE_REJECT, j)):
        return True
    # above the noise: idle still, unless it carries a fair part of data's power (at high SNR a
    # residue far below the tag's own level, e.g. a fine-timing error of tens of samples letting
    # the preamble into the last window, is far above the noise: at 30 dB a subcarrier, 40 dB a
    # window, a -30 dB residue reads hundreds of times the noise per symbol)
    return float(np.sum(u**2)) < IDLE_DATA_FRACTION * float(np.sum(mu**2))
