"""Channel impulse responses on the ``K``-point grid, the analytic model, NMAE and a CFR fit.

Eq. (67)-(69), (72) and (100)-(102): a CFR on the active subcarriers is placed
on its bins, zero-padded to ``K = cir_fft_size`` and inverse transformed.  The
normalisation is ``cir[q] = (1 / K_act) sum_k H[k] exp(j 2 pi k q / K)``, so a
unit-gain single path gives a peak magnitude of (nearly) one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.optimize

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


@dataclass(frozen=True)
class CfrFit:
    """An estimated CFR against a model: ``h_est[k] = gain * h_model[k] exp(-j 2 pi f_k delay_s) + w[k]``.

    NMAE compares peak-aligned magnitudes, so it cannot see a delay, a phase or a scale error;
    this fit measures each of them.  ``cov`` is the inverse Fisher information of
    ``(gain.real, gain.imag, delay_s)`` for complex Gaussian ``w[k]`` of variance ``noise_var[k]``
    (``J = 2 Re(D^H W D)``, SYSTEM.md section 7): the Cramer-Rao bound, which the least-squares
    fit attains at high SNR.  ``chi2 = 2 sum_k abs(residual[k])**2 / noise_var[k]`` is chi-square
    with ``dof = 2 K - 3`` degrees of freedom when the model and the noise level are right.
    """

    gain: complex
    delay_s: float
    cov: np.ndarray  # [3, 3]: gain.real, gain.imag, delay_s
    chi2: float
    dof: int

    @property
    def gain_std(self) -> tuple[float, float]:
        """Standard deviations of ``gain.real`` and ``gain.imag`` (Cramer-Rao)."""
        return float(np.sqrt(self.cov[0, 0])), float(np.sqrt(self.cov[1, 1]))

    @property
    def delay_std_s(self) -> float:
        return float(np.sqrt(self.cov[2, 2]))


def fit_cfr(
    h_est: np.ndarray, h_model: np.ndarray, wf: WaveformConfig, noise_var: float | np.ndarray
) -> CfrFit:
    """Least-squares complex gain and delay of ``h_est`` against ``h_model`` (both ``[subcarrier]``
    on the active subcarriers), weighted by the noise variance per subcarrier ``noise_var``.

    The delay maximises ``abs(sum_k conj(m_k) h_k exp(j 2 pi f_k tau) / v_k)`` (the gain is then
    linear): a coarse search on the ``K``-point CIR grid, refined within one grid step.  Delays
    are found in ``(-K/2, K/2]`` grid steps.
    """
    h = np.asarray(h_est, np.complex128)
    m = np.asarray(h_model, np.complex128)
    k_sub = wf.active_subcarriers
    if h.shape != m.shape or h.shape != k_sub.shape:
        raise ValueError(
            f"fit_cfr: CFRs must be [{k_sub.size}] on the active subcarriers, got {h.shape}, {m.shape}"
        )
    v = np.broadcast_to(np.asarray(noise_var, np.float64), h.shape)
    if not np.all(np.isfinite(v)) or np.any(v <= 0):  # checked before dividing (no warning first)
        raise ValueError("fit_cfr: noise_var must be positive and finite")
    w = 1.0 / v
    f = wf.active_freqs_hz
    a = w * np.conj(m) * h
    k_fft = wf.cir_fft_size
    full = np.zeros(k_fft, np.complex128)
    full[np.mod(k_sub, k_fft)] = a
    q = int(np.argmax(np.abs(scipy.fft.ifft(full))))
    step = wf.cir_grid_step_s
    tau0 = ((q + k_fft // 2) % k_fft - k_fft // 2) * step

    def neg_match(tau: float) -> float:
        return -float(np.abs(np.sum(a * np.exp(2j * np.pi * f * tau))))

    tau = float(scipy.optimize.minimize_scalar(neg_match, bounds=(tau0 - step, tau0 + step), method="bounded",
                                               options={"xatol": 1e-6 * step}).x)  # fmt: skip
    period = k_fft * step  # 1 / df: the refinement may step past an end of (-K/2, K/2]: wrap it
    tau = period / 2 - (period / 2 - tau) % period
    md = m * np.exp(-2j * np.pi * f * tau)
    gain = complex(np.sum(w * np.conj(md) * h) / np.sum(w * np.abs(md) ** 2))
    d = np.stack([md, 1j * md, -2j * np.pi * f * gain * md], axis=1)  # d mu / d (g.re, g.im, tau)
    fisher = 2 * np.real(d.conj().T @ (w[:, None] * d))
    resid = h - gain * md
    chi2 = float(2 * np.sum(w * np.abs(resid) ** 2))
    return CfrFit(gain, tau, np.linalg.inv(fisher), chi2, 2 * h.size - 3)
