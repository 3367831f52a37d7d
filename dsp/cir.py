"""Channel impulse responses on the ``K``-point grid, the analytic model and NMAE.

Eq. (67)-(69), (72) and (100)-(102): a CFR on the active subcarriers is placed
on its bins, zero-padded to ``K = cir_fft_size`` and inverse transformed.  The
normalisation is ``cir[q] = (1 / K_act) sum_k H[k] exp(j 2 pi k q / K)``, so a
unit-gain single path gives a peak magnitude of (nearly) one.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from dsp.channel import Paths
from dsp.waveform import WaveformConfig


def cfr_to_cir(cfr: np.ndarray, wf: WaveformConfig) -> np.ndarray:
    """CIR ``[..., K]`` from a CFR ``[..., subcarrier]`` on the active subcarriers."""
    cfr = np.asarray(cfr)
    k_fft = wf.cir_fft_size
    full = np.zeros((*cfr.shape[:-1], k_fft), np.complex128)
    full[..., np.mod(wf.active_subcarriers, k_fft)] = cfr
    return scipy.fft.ifft(full, axis=-1) * (k_fft / cfr.shape[-1])


def cir_delay_axis_s(wf: WaveformConfig) -> np.ndarray:
    """Delay of each CIR bin, ``[K]``, in seconds."""
    return np.arange(wf.cir_fft_size) * wf.cir_grid_step_s


def analytic_cfr(paths: Paths, wf: WaveformConfig, center_hz: float) -> np.ndarray:
    """Model CFR on the active subcarriers, ``[subcarrier]``."""
    return paths.cfr(wf.active_freqs_hz, center_hz)


def analytic_cir(paths: Paths, wf: WaveformConfig, center_hz: float) -> np.ndarray:
    """Band-limited ("blurred") model CIR, eq. (69), ``[K]``."""
    return cfr_to_cir(analytic_cfr(paths, wf, center_hz), wf)


def analytic_compound_cfr(tx_tag: Paths, tag_rx: Paths, wf: WaveformConfig, band: str) -> np.ndarray:
    """Compound backscatter CFR ``H_1(f) H_2u(f)`` of a side band, eq. (72), ``[subcarrier]``.

    ``H_1`` is observed at the carrier, ``H_2u`` at the side-band carrier.
    """
    centers = wf.band_centers_hz
    return analytic_cfr(tx_tag, wf, centers["central"]) * analytic_cfr(tag_rx, wf, centers[band])


def nmae(h_model: np.ndarray, h_est: np.ndarray) -> float:
    """Normalised mean absolute error of two CIRs ``[K]`` (eq. (100)-(102)).

    Both magnitudes are normalised by their maxima and the estimate is circularly
    shifted so that the maxima align.
    """
    a = np.abs(np.asarray(h_model))
    b = np.abs(np.asarray(h_est))
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"nmae: CIRs must be 1-D of equal length, got {a.shape} and {b.shape}")
    if a.max() <= 0 or b.max() <= 0:
        raise ValueError("nmae: a CIR is identically zero")
    a = a / a.max()
    b = np.roll(b / b.max(), int(np.argmax(a)) - int(np.argmax(b)))
    return float(np.mean(np.abs(a - b)))
