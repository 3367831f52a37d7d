"""Cramer-Rao bound on the backscatter first path when the compound channel keeps its product form.

:func:`dsp.crlb.backscatter_crlb_s2` treats the ``L_1 L_2`` compound paths of a side band as
independent (every delay and gain free), as the paper does.  The physics says more (SYSTEM.md
section 1, eq. (91)): the side band ``u`` observes the **product**

    Y_u[k] = H_1(f_k) H_2u(f_k) + w_u[k],
    H_1(f) = sum_i g_1i exp(-j 2 pi f tau_1i),   H_2u(f) = sum_j g_2uj exp(-j 2 pi f tau_2j),

with ``L_1 + L_2`` delays instead of ``L_1 L_2``.  ``H_1`` (TX-tag) is seen at the carrier in
every side band, so with both side bands its gains are common too; ``H_2u`` (tag-RX) has common
delays and the band's own gains.

**Gauge.**  The product is unchanged by ``tau_1 -> tau_1 + d``, ``tau_2 -> tau_2 - d`` (every
path of a factor at once) and by ``g_1 -> c g_1``, ``g_2u -> g_2u / c``: the Fisher information
is singular in those three real directions.  The first path ``tau_10 + tau_20`` is invariant
under both, so its bound does not depend on how the gauge is fixed; fixing ``tau_10`` and
``g_10`` (dropping their columns) leaves a regular model in which ``tau_10 + tau_20`` moves
with ``tau_20`` alone, and the bound on the first path is ``[J^-1]`` of ``tau_20``.

**Why it matters.**  With scatterers around the nodes, compound paths ``(i, j)`` and ``(i', j')``
often lie millimetres apart, which leaves the compound model's first delay unidentifiable
(its bound is kilometres or infinite).  The product ties those paths together; the bound is then
centimetres to decimetres for the same channels (``docs/RESULTS.md``, issue 14): the information
is in the observation, and an estimator that keeps the product form could reach it.

Same SNR convention, shapes and numerics as :mod:`dsp.crlb` (QR on the square root of ``J``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from dsp.bands import SIDE_BANDS
from dsp.channel import Paths
from dsp.crlb import (
    RangeBound,
    _freqs,
    _los_delay_bound,
    _merge_tol_s,
    _noise,
    _paths,
    baseband_gains,
    direct_crlb_s2,
    merge_coincident,
    scenario_noise_vars,
)
from dsp.waveform import WaveformConfig


def product_information_sqrt(
    freqs_hz: np.ndarray,
    delays1_s: np.ndarray,
    gains1: np.ndarray,
    delays2_s: np.ndarray,
    gains2_by_band: np.ndarray,
    noise_var_by_band: Sequence[float],
    n_symbols: float = 1,
) -> np.ndarray:
    """Real square root ``W`` ``[2 B N, P]`` of the gauge-fixed Fisher information of the product model.

    ``freqs_hz`` ``[subcarrier]`` (baseband, the same in every band); ``delays1_s``, ``gains1``
    ``[path]`` of ``H_1`` (path 0 its first); ``delays2_s`` ``[path]`` and ``gains2_by_band``
    ``[band, path]`` of ``H_2u`` (path 0 its first); ``noise_var_by_band`` ``[band]`` per
    subcarrier of one symbol.  Columns: ``tau_20`` first (the parameter of interest), then
    ``tau_11..``, ``tau_21..``, ``Re/Im g_11..``, then each band's ``Re/Im g_2u..``
    (``tau_10`` and ``g_10`` fixed: the gauge).
    """
    f = _freqs(freqs_hz)
    tau1, g1 = _paths(delays1_s, gains1)
    g2s = np.atleast_2d(np.asarray(gains2_by_band, np.complex128))
    tau2 = np.atleast_1d(np.asarray(delays2_s, np.float64))
    for g2 in g2s:
        _paths(tau2, g2)
    variances = [float(v) for v in np.atleast_1d(noise_var_by_band)]
    if len(variances) != g2s.shape[0]:
        raise ValueError(f"{g2s.shape[0]} bands of gains but {len(variances)} noise variances")
    l1, l2, n_bands = tau1.size, tau2.size, g2s.shape[0]
    n_par = (l1 - 1) + l2 + 2 * (l1 - 1) + 2 * l2 * n_bands
    if n_par > 2 * f.size * n_bands:
        raise ValueError(
            f"{n_par} real unknowns but {2 * f.size * n_bands} real observations: unidentifiable"
        )
    e1 = np.exp(-2j * np.pi * np.mod(np.outer(f, tau1), 1.0))  # [subcarrier, path]
    e2 = np.exp(-2j * np.pi * np.mod(np.outer(f, tau2), 1.0))
    slope = (-2j * np.pi * f)[:, None]
    h1 = e1 @ g1
    blocks = []
    for b, (g2, var) in enumerate(zip(g2s, variances, strict=True)):
        h2 = e2 @ g2
        own = np.zeros((f.size, 2 * l2 * n_bands), np.complex128)
        own[:, 2 * l2 * b : 2 * l2 * (b + 1)] = np.concatenate(
            [h1[:, None] * e2, 1j * h1[:, None] * e2], axis=1
        )
        d = np.concatenate(
            [
                h1[:, None] * slope * e2 * g2,  # tau_2j (tau_20 first)
                (h2[:, None] * slope * e1 * g1)[:, 1:],  # tau_1i, i >= 1
                (h2[:, None] * e1)[:, 1:],  # Re g_1i
                (1j * h2[:, None] * e1)[:, 1:],  # Im g_1i
                own,  # this band's g_2uj
            ],
            axis=1,
        )
        blocks.append(math.sqrt(2.0 / _noise(var, n_symbols)) * np.concatenate([d.real, d.imag]))
    w = np.vstack(blocks)
    # tau_20 first, then the other delays (tau_1i, tau_2j for j >= 1), then the gains
    order = np.r_[0, l2 : l2 + l1 - 1, 1:l2, l2 + l1 - 1 : w.shape[1]]
    return w[:, order]


def product_crlb_s2(
    freqs_hz: np.ndarray,
    delays1_s: np.ndarray,
    gains1: np.ndarray,
    delays2_s: np.ndarray,
    gains2_by_band: np.ndarray,
    noise_var_by_band: Sequence[float],
    n_symbols: float = 1,
) -> float:
    """CRLB (s^2) of the first path ``tau_10 + tau_20`` of the product model, every other delay and
    every gain unknown (arguments as :func:`product_information_sqrt`); ``inf`` if unidentifiable."""
    return _los_delay_bound(
        product_information_sqrt(
            freqs_hz, delays1_s, gains1, delays2_s, gains2_by_band, noise_var_by_band, n_symbols
        )
    )


def backscatter_product_crlb_s2(
    tx_tag: Paths,
    tag_rx: Paths,
    wf: WaveformConfig,
    noise_var_by_band: Sequence[float] | float,
    n_symbols: float = 1,
    bands: Sequence[str] = ("upper",),
) -> float:
    """CRLB (s^2) of the TX-tag-RX LoS delay from side ``bands`` jointly, the product form kept.

    ``H_1`` at the carrier (common to the bands), ``H_2`` at each band's centre; coincident paths
    within one factor merge first (:func:`dsp.crlb.merge_coincident`).  ``noise_var_by_band``
    ``[band]`` (a float for one band).
    """
    unknown = [b for b in bands if b not in SIDE_BANDS]
    if unknown or not bands:
        raise ValueError(f"bands must be a non-empty subset of {SIDE_BANDS}, got {tuple(bands)!r}")
    centers = wf.band_centers_hz
    tol = _merge_tol_s(wf)
    tau1, g1 = merge_coincident(tx_tag.delays_s, baseband_gains(tx_tag, centers["central"]), tol)
    # the tag-RX delays merge once (the same in every band); each band's gains sum over each group
    tau2, _ = merge_coincident(tag_rx.delays_s, np.ones(len(tag_rx)), tol)
    group = np.argmin(np.abs(tag_rx.delays_s[:, None] - tau2[None, :]), axis=1)
    g2 = np.zeros((len(bands), tau2.size), np.complex128)
    for b, band in enumerate(bands):
        np.add.at(g2[b], group, baseband_gains(tag_rx, centers[band]))
    return product_crlb_s2(
        wf.active_freqs_hz, tau1, g1, tau2, g2, np.broadcast_to(noise_var_by_band, len(bands)), n_symbols
    )


def product_range_bound(
    wf: WaveformConfig,
    tx_rx: Paths,
    tx_tag: Paths,
    tag_rx: Paths,
    snr_central_db: float,
    snr_side_db: float,
    n_symbols: float = 1,
    band: str = "upper",
) -> RangeBound:
    """:func:`dsp.crlb.range_bound` with the side band's compound channel kept in its product form.

    The direct (central) bound is the same K-path bound: the TX-RX channel has no product form.
    """
    var0, var_u = scenario_noise_vars(wf, tx_rx, tx_tag, tag_rx, snr_central_db, snr_side_db, band)
    return RangeBound(
        direct_crlb_s2(tx_rx, wf, var0, n_symbols),
        backscatter_product_crlb_s2(tx_tag, tag_rx, wf, var_u, n_symbols, (band,)),
    )
