"""Tag demodulation over per-OFDM-symbol tag samples (SYSTEM.md section 4, steps 5-6).

Conventions: a tag sample ``z[m]`` belongs to the OFDM window starting at
sample ``s[m]`` (continuous index); tag symbol ``j`` of a packet starting at
``t0`` occupies ``[t0 + j T, t0 + (j + 1) T)``.  Overlap matrices are
``[tag_symbol, window]``; per-band arrays are ``[band, window]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_array

from dsp.phasor import cis


def _overlap_runs(
    t0: float | np.ndarray, period: float, n_symbols: int, starts: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each symbol's run of overlapped windows: their indices and overlaps ``[..., tag_symbol,
    width]`` and whether each lies inside the run (``width`` the longest run; the formula's
    windows only: ``s < a + period`` and ``s + n > a``, the starts being increasing)."""
    a = np.asarray(t0, float)[..., None] + period * np.arange(n_symbols)  # [..., tag_symbol]
    s = starts.astype(np.float64)
    m = s.size
    # the formula's own comparisons (``s + n > a``, not ``s > a - n``: at a symbol start an ulp
    # off a window end the two differ, and the formula's 5e-15 sliver was lost)
    lo = np.searchsorted(s + n, a, side="right")
    hi = np.searchsorted(s, a + period, side="left")
    width = int(np.max(hi - lo, initial=0))
    idx = lo[..., None] + np.arange(width)  # [..., tag_symbol, width]
    inside = idx < hi[..., None]
    sw = s[np.minimum(idx, max(m - 1, 0))] if m else np.zeros(idx.shape)
    a3 = a[..., None]
    val = np.clip(np.minimum(sw + n, a3 + period) - np.maximum(sw, a3), 0.0, None) / n
    return idx, inside, val


def overlap_matrix(
    t0: float | np.ndarray, period: float, n_symbols: int, starts: np.ndarray, n: int
) -> np.ndarray:
    """Fraction of each window covered by each tag symbol, ``[..., tag_symbol, window]`` (the
    leading axes those of ``t0``: several packet starts at once).  ``starts`` ``[window]`` must
    be increasing (window starts on the grid); the result equals the dense formula
    ``clip(min(s + n, a + T) - max(s, a), 0) / n`` for every symbol start ``a`` and window ``s``."""
    idx, inside, val = _overlap_runs(t0, period, n_symbols, starts, n)
    m = starts.size
    out = np.zeros((*idx.shape[:-1], m + 1))  # a spare column takes the entries past each run
    np.put_along_axis(out, np.where(inside, idx, m), np.where(inside, val, 0.0), axis=-1)
    return out[..., :m]


def overlap_csr(t0: float, period: float, n_symbols: int, starts: np.ndarray, n: int) -> csr_array:
    """:func:`overlap_matrix` for one packet start as a sparse ``[tag_symbol, window]`` matrix
    (the same values; a symbol overlaps ``period / n + 1`` windows at most, so a packet's
    products with it cost that many terms a symbol instead of one a window)."""
    idx, inside, val = _overlap_runs(float(t0), period, n_symbols, starts, n)
    indptr = np.concatenate([[0], np.cumsum(np.sum(inside, axis=1))])
    return csr_array((val[inside], idx[inside], indptr), shape=(n_symbols, starts.size))


def preamble_waves(
    t0: np.ndarray, period: float, preamble: np.ndarray, starts: np.ndarray, n: int
) -> np.ndarray:
    """The preamble's waveform on the windows for each candidate start ``t0`` ``[candidate]``,
    ``[candidate, window]``."""
    return preamble @ overlap_matrix(t0, period, len(preamble), starts, n)


def detection_statistic(z: np.ndarray, noise_var: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Non-coherent preamble statistic over all start windows, ``[window]``.

    ``z`` ``[band, window]``, ``noise_var`` ``[band]`` (variance of ``z``), ``template``
    ``[lag]`` the preamble stretched onto windows.  Each band contributes
    ``abs(sum_i template[i] z[m + i])**2 / (noise_var * sum template**2)``, which is
    Exp(1) under noise alone, so the sum over ``B`` bands is Gamma(B, 1).
    """
    n_valid = z.shape[1] - template.size + 1
    if n_valid <= 0:
        return np.zeros(0)
    energy = float(np.sum(template**2))
    stat = np.zeros(n_valid)
    for b in range(z.shape[0]):
        c = np.correlate(z[b], template.astype(z.dtype), mode="valid")  # sum_i z[m + i] conj(t[i])
        stat += np.abs(c) ** 2 / (noise_var[b] * energy)
    return stat


def preamble_template(preamble: np.ndarray, samples_per_symbol: float, n: int) -> np.ndarray:
    """The +-1 preamble stretched onto windows for a packet starting at window 0, ``[lag]``."""
    j = len(preamble)
    n_win = int(np.ceil(j * samples_per_symbol / n)) + 1
    o = overlap_matrix(0.0, samples_per_symbol, j, np.arange(n_win) * n, n)
    return preamble @ o


@dataclass
class Demodulated:
    """Outcome of one packet's demodulation."""

    soft: np.ndarray  # [tag_symbol] MRC matched-filter outputs
    decisions: np.ndarray  # [tag_symbol] +-1
    gains: np.ndarray  # [band] complex gain of z per band (phase reference)
    freq_offset_hz: np.ndarray  # [band] residual frequency removed
    snr_per_bit: np.ndarray  # [band] estimated Eb/N0 (linear) per band


def _times_real(a: np.ndarray, b: np.ndarray | csr_array) -> np.ndarray:
    """``a @ b`` for complex ``a`` and real ``b`` (dense or sparse) without casting ``b`` to
    complex (a copy)."""
    return a.real @ b + 1j * (a.imag @ b)


def demodulate(
    z: np.ndarray,
    noise_var: np.ndarray,
    overlaps: np.ndarray | csr_array,
    preamble: np.ndarray,
    times_s: np.ndarray,
    max_offset_hz: float = 4.0,
    iterations: int = 2,
) -> Demodulated:
    """Coherent MRC demodulation of one packet.

    ``z`` ``[band, window]`` tag samples with the nominal CFO removed, ``noise_var``
    ``[band]`` their noise variance; ``overlaps`` ``[tag_symbol, window]`` (dense or
    :func:`overlap_csr`'s sparse matrix: the same products);
    ``preamble`` ``[p]`` the known first symbols (+-1); ``times_s`` ``[window]``.
    The model is ``z[b, m] = g_b exp(j 2 pi f_b t_m) sum_j s_j O[j, m] + noise``.
    The gains ``g_b`` start from the preamble; decision-directed iterations then
    estimate a small residual frequency ``f_b`` (grid search within
    ``max_offset_hz`` at each iteration, so at most ``iterations * max_offset_hz`` in all;
    parabolic refinement) and re-estimate ``g_b`` by least
    squares over the whole packet, so the phase is tracked across long packets.
    """
    n_bands = z.shape[0]
    p = len(preamble)
    wave = preamble @ overlaps[:p]  # [window] the preamble's waveform
    gains = (z @ wave) / max(wave @ wave, 1e-12)
    freq = np.zeros(n_bands)
    zc = z.copy()
    grid = np.linspace(-max_offset_hz, max_offset_hz, 33)
    weight = overlaps.sum(1)
    t_sym = overlaps @ times_s / np.maximum(weight, 1e-12)  # [tag_symbol] centre times
    steer = cis(-2 * np.pi * np.outer(grid, t_sym))  # [grid, tag_symbol]
    for it in range(iterations + 1):
        soft = overlaps @ np.real((np.conj(gains) / noise_var) @ zc)  # MRC, then matched filter
        decisions = np.where(soft >= 0, 1.0, -1.0)
        decisions[:p] = preamble
        if it == iterations:
            break
        wave = decisions @ overlaps  # [window] re-modulated tag waveform
        per_symbol = _times_real(zc, overlaps.T) * decisions  # [band, tag_symbol], data removed
        for b in range(n_bands):
            spectrum = np.abs(steer @ per_symbol[b])
            k = int(np.argmax(spectrum))
            f = grid[k]
            if 0 < k < len(grid) - 1:
                y0, y1, y2 = spectrum[k - 1 : k + 2]
                den = y0 - 2 * y1 + y2
                f += 0.5 * (y0 - y2) / den * (grid[1] - grid[0]) if den < 0 else 0.0
            freq[b] += f
            zc[b] *= cis(-2 * np.pi * f * times_s)
        gains = (zc @ wave) / max(wave @ wave, 1e-12)
    s1 = overlaps.sum(1)
    s2 = (overlaps**2).sum(1)
    ebn0 = np.abs(gains) ** 2 * float(np.mean(s1**2 / np.maximum(s2, 1e-12))) / noise_var
    return Demodulated(soft, decisions, gains, freq, ebn0)
