"""Blind acquisition of a side band's tag channel and its carrier offset.

Before any packet is decoded the receiver knows neither the tag-observed
channel nor the tag's clock error.  Per OFDM window the side band is
``b[m] exp(j phi[m]) q + noise`` with a fixed shape ``q``: the data and the
phase vanish from the covariance, whose principal eigenvector is ``q``.  In
the full ``N``-dimensional space the spike is buried at low SNR, so each
window is first reduced to the few delay taps where the tag channel can be
(its CFR projected on ``L`` taps around the direct path), whitened, and the
covariance accumulated over many windows.  The spike is declared when its
eigenvalue clears the Marchenko-Pastur edge of noise alone.

The carrier offset then comes from the spectrum of squared (BPSK removed)
tag samples: ``z_u**2`` carries a tone at ``2 (nu_u - nu_0)``, and with both
side bands ``conj(z_lower) z_upper`` carries ``2 eps f_sh`` without squaring
loss in the data.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from dsp.references import ramp
from dsp.waveform import WaveformConfig


class TapSpace:
    """Delay-tap projection ``[K, L]`` and its whitening for one waveform and tap window."""

    def __init__(self, wf: WaveformConfig, first_tap: int, n_taps: int):
        self.wf = wf
        k = wf.active_subcarriers
        self.delays = first_tap + np.arange(n_taps)  # samples from the window start
        self.E = np.exp(2j * np.pi * np.outer(k, self.delays) / wf.fft_size) / len(k)  # [K, L]
        gram = self.E.conj().T @ self.E  # noise covariance of taps per unit noise, [L, L]
        w, v = np.linalg.eigh(gram)
        self.whiten = (v / np.sqrt(w)) @ v.conj().T  # gram^-1/2
        # [N, L]: DFT(window)[active] / X @ E @ whiten, i.e. sum_b exp(-2j pi n b / N) Y[b, l] with
        # Y the active rows of (E @ whiten) / X and zeros elsewhere: one FFT per tap, not an
        # [N, K] matrix of exponentials (80 ms of the receiver's start-up).
        rows = np.zeros((wf.fft_size, n_taps), complex)
        rows[wf.active_bins] = (self.E @ self.whiten) / wf.zadoff_chu[:, None]
        self._taps_from_window = scipy.fft.fft(rows, axis=0)
        self._cfr_basis = np.exp(-2j * np.pi * np.outer(k, self.delays) / wf.fft_size)  # [K, L]
        self._cfr_pinv = np.linalg.pinv(self._cfr_basis)  # [L, K]

    def feature_matrix(self, derotate: np.ndarray) -> np.ndarray:
        """``[N, L]`` matrix whose product with windows ``[window, N]`` gives whitened tap features.

        Features are ``DFT(window * derotate)[active] / X @ E @ whiten``; one matrix product
        (about 2.5x faster here than an FFT per window, and it applies unchanged to windows
        defined at the capture rate, see :mod:`dsp.windows`).
        """
        return (derotate[:, None] * self._taps_from_window).astype(np.complex64)

    def cfr_from_taps(self, taps_white: np.ndarray, offset_hz: float = 0.0) -> np.ndarray:
        """CFR ``[subcarrier]`` of the window whose features are ``taps_white`` ``[L]``, its
        content ``offset_hz`` above the CFO the features' derotation removed.

        A window holding ``r = ramp(offset) * symbol_from_cfr(H, 0)`` with ``H = B h`` in the
        span of the taps (``B`` = ``self._cfr_basis``) has features ``t = h @ Q``, ``Q[d]`` the
        features of tap ``d``'s own window (:meth:`tap_response`), hence ``h = t Q^-1``.  With no
        offset ``Q = K sqrt(N) conj(gram^(1/2))`` (``K`` active subcarriers).  Blind acquisition
        takes features at the central band's CFO before the tag's offset is known, so a side
        band sits ``eps f_sh`` away (up to 4.5 kHz at 100 ppm, 0.15 subcarrier): read as if it
        were not, the CFR came out smeared, a reference 0.3 dB short of the channel at 100 ppm.
        (Until session 12 this also multiplied by ``gram^(1/2)`` instead of inverting ``Q``,
        smoothing the CFR by the tap Gram matrix.)
        """
        h = np.linalg.solve(self.tap_response(offset_hz).T, taps_white)
        return self._cfr_basis @ h

    def tap_response(self, offset_hz: float) -> np.ndarray:
        """``[L, L]``: row ``d`` holds the features of the window ``ramp(offset_hz) *
        symbol_from_cfr(B[:, d], 0)`` (one delay tap), taken without derotation."""
        wf = self.wf
        spec = np.zeros((len(self.delays), wf.fft_size), complex)
        spec[:, wf.active_bins] = self._cfr_basis.T * wf.zadoff_chu
        windows = scipy.fft.ifft(spec, axis=-1) * np.sqrt(wf.fft_size) * ramp(wf, offset_hz)
        return windows @ self._taps_from_window

    def denoise(self, cfr: np.ndarray) -> np.ndarray:
        """``cfr`` ``[subcarrier]`` projected (least squares) on the CFRs of the tap window.

        A channel whose paths lie in the window keeps all but its far sidelobes; the noise of
        an estimate keeps ``L / K`` of its power (32 / 800 for the default profile).  At -36 dB
        per subcarrier one packet's estimate (about 1900 windows) has a per-subcarrier SNR near
        0.5, so an undenoised reference cost about 1 dB of the tag samples' SNR.
        """
        return self._cfr_basis @ (self._cfr_pinv @ cfr)


class SubspaceAcquirer:
    """Accumulates tap-feature covariance of one band until the tag's spike is clear."""

    def __init__(self, space: TapSpace, margin: float):
        self.space = space
        self.margin = margin
        n = len(space.delays)
        self.cov = np.zeros((n, n), complex)
        self.count = 0
        self.features: list[np.ndarray] = []
        self.starts: list[np.ndarray] = []

    def add(self, feats: np.ndarray, starts: np.ndarray) -> None:
        """Add features ``[window, L]`` of windows starting at ``starts`` ``[window]``."""
        self.cov += feats.conj().T @ feats.astype(complex)
        self.count += feats.shape[0]
        self.features.append(feats)
        self.starts.append(starts)

    def spike(self) -> tuple[float, float, np.ndarray]:
        """(largest eigenvalue over the noise level, Marchenko-Pastur edge, whitened taps ``[L]``).

        A feature row is ``f_m = b_m t^T + noise`` (``t`` the tag's whitened taps), so the
        covariance ``F^H F / M = conj(t) t^T + noise`` has ``conj(t)`` as its top eigenvector:
        the taps are its conjugate (unit norm, arbitrary phase).
        """
        w, v = np.linalg.eigh(self.cov / max(self.count, 1))
        noise = float(np.median(w))
        n = len(w)
        edge = (1 + np.sqrt(n / max(self.count, 1))) ** 2
        return float(w[-1] / noise), float(edge * self.margin), np.conj(v[:, -1])

    def tag_samples(self, taps_white: np.ndarray) -> np.ndarray:
        """Tag samples ``[window]``: the stored features matched to the taps, ``F conj(t)``
        (``b_m |t|^2`` plus noise for ``f_m = b_m t^T + noise``)."""
        return np.concatenate(self.features) @ taps_white.conj()


def tag_offset_hz(
    z: dict[str, np.ndarray], symbol_rate_hz: float, pad: int = 4, modulated: bool = True
) -> float:
    """Tag frequency offset ``eps f_sh`` from side-band tag samples with ``nu_0`` removed.

    ``z`` maps ``lower``/``upper`` to ``[window]`` samples at the OFDM symbol rate.
    The lower band sits at ``-eps f_sh``, the upper at ``+eps f_sh``.  With BPSK data on them
    (``modulated``, burst mode) the squared samples and the cross product all put a tone at
    ``2 eps f_sh`` (lower mirrored): unambiguous for ``abs(eps f_sh) < symbol_rate_hz / 4``.
    An unmodulated tag (CW mode) needs no squaring: the samples themselves (the lower band
    conjugated) are the tone at ``eps f_sh``, unambiguous up to ``symbol_rate_hz / 2``, without
    the squaring loss ``s**2 / (1 + 2 s)`` that at -7 dB per window (side bands at -36 dB per
    subcarrier) buries the squared tone under the periodogram's noise peaks.
    """
    n = min(len(v) for v in z.values())
    nfft = int(2 ** np.ceil(np.log2(n * pad)))
    power = np.zeros(nfft)
    if not modulated:
        if "upper" in z:
            power += np.abs(scipy.fft.fft(z["upper"][:n], nfft)) ** 2
        if "lower" in z:
            power += np.abs(scipy.fft.fft(np.conj(z["lower"][:n]), nfft)) ** 2
    else:
        if "upper" in z:
            power += np.abs(scipy.fft.fft(z["upper"][:n] ** 2, nfft)) ** 2
        if "lower" in z:
            power += np.abs(scipy.fft.fft(np.conj(z["lower"][:n]) ** 2, nfft)) ** 2
        if "upper" in z and "lower" in z:
            power += np.abs(scipy.fft.fft(np.conj(z["lower"][:n]) * z["upper"][:n], nfft)) ** 2
    k = int(np.argmax(power))
    y0, y1, y2 = power[(k - 1) % nfft], power[k], power[(k + 1) % nfft]
    den = y0 - 2 * y1 + y2
    frac = 0.5 * (y0 - y2) / den if den < 0 else 0.0
    f = ((k + frac + nfft / 2) % nfft - nfft / 2) * symbol_rate_hz / nfft
    return f / 2 if modulated else f
