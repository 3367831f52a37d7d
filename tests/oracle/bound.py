"""Cramer-Rao bound on the first-path delay (SYSTEM.md section 7), written independently.

Observation ``H_hat[k] = sum_l g_l exp(-j 2 pi f_k tau_l) + w[k]``, ``w ~ CN(0, sigma^2 / M)``
after averaging ``M`` OFDM symbols whose single-symbol noise per subcarrier is ``sigma^2``.
Parameters: every delay and the real and imaginary part of every gain;
``J = (2 M / sigma^2) Re(D^H D)``, bound ``[J^-1]_00``.
"""

from __future__ import annotations

import numpy as np


def delay_crlb_s2(
    freqs_hz: np.ndarray, delays_s: np.ndarray, gains: np.ndarray, noise_var: float, n_symbols: float
) -> float:
    """``var(tau_0)`` bound, s^2, with all other delays and all gains unknown."""
    f = np.asarray(freqs_hz, np.float64)[:, None]  # [subcarrier, 1]
    tau = np.asarray(delays_s, np.float64)[None, :]
    g = np.asarray(gains, np.complex128)[None, :]
    e = np.exp(-2j * np.pi * f * tau)  # [subcarrier, path]
    d = np.concatenate([-2j * np.pi * f * g * e, e, 1j * e], axis=1)  # d mu / d (tau, Re g, Im g)
    fisher = 2 * n_symbols / noise_var * np.real(d.conj().T @ d)
    return float(np.linalg.inv(fisher)[0, 0])


def single_path_crlb_s2(freqs_hz: np.ndarray, snr: float, n_symbols: float) -> float:
    """Closed form of SYSTEM.md section 7: ``1 / (8 pi^2 M snr sum_k (f_k - f_mean)^2)``."""
    f = np.asarray(freqs_hz, np.float64)
    return float(1.0 / (8 * np.pi**2 * n_symbols * snr * np.sum((f - f.mean()) ** 2)))


def compound_paths(link_a, center_a_hz: float, link_b, center_b_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Delays ``[path]`` and baseband gains ``[path]`` of the cascade of two links (``L_a L_b``
    paths, LoS first), each link's carrier phase taken at its own band centre."""
    c = 299_792_458.0
    da = np.array([r[0] for r in link_a]) / c
    db = np.array([r[0] for r in link_b]) / c
    ga = np.array([r[1] for r in link_a]) * np.exp(-2j * np.pi * np.mod(center_a_hz * da, 1.0))
    gb = np.array([r[1] for r in link_b]) * np.exp(-2j * np.pi * np.mod(center_b_hz * db, 1.0))
    return (da[:, None] + db[None, :]).ravel(), (ga[:, None] * gb[None, :]).ravel()
