"""The K-path CRLBs of the ranging sweep: every scenario's own bound, every other path a nuisance.

:func:`dsp.crlb.range_bound` bounds the bistatic range of one scenario with its NLoS
delays and gains unknown (``c^2 (CRLB_0 + CRLB_u)``, eq. (99)).  NLoS paths a small
fraction of ``1 / B_occ`` from the line of sight make it infinite (unidentifiable at
double precision) or huge, so per path count and attenuation the sweep reports how many
scenarios have a finite bound and the median of those, beside the stochastic R-CRLB
(information averaged over the scenarios before inverting).

Two such bounds (issue 14): ``compound`` (:func:`dsp.crlb.range_bound`, the paper's: the side
band's ``L_1 L_2`` compound paths each free) and ``product``
(:func:`dsp.crlb_product.product_range_bound`: the compound channel kept as ``H_1 H_2``, so
``L_1 + L_2`` delays), which is finite and far lower where compound paths nearly coincide.

Where even the product-form bound is metres, no estimator can place the first path and an RMSE
over such scenarios measures luck as much as method; :func:`identifiable_table` gives the RMSE over
the scenarios whose product-form bound is below a tenth of a resolution cell ``c / B_occ``, where
it measures the method.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from dsp.channel import Paths
from dsp.crlb import range_bound
from dsp.crlb_product import product_range_bound
from dsp.waveform import SPEED_OF_LIGHT_M_S, WaveformConfig
from experiments.common import rmse

IDENTIFIABLE_CELLS = 0.1  # a first path is identifiable where its bound is below this many cells


def kpath_bounds_m(
    wf: WaveformConfig,
    channels: Sequence[tuple[Paths, Paths, Paths]],
    snr_central_db: float,
    snr_side_db: Sequence[float],
    n_symbols: float,
    band: str,
    structure: str = "compound",
) -> np.ndarray:
    """Bistatic K-path bound (m) ``[attenuation, scenario]``; ``inf`` where unidentifiable.

    ``structure``: ``"compound"`` (every compound path free) or ``"product"`` (``H_1 H_2``)."""
    bound = {"compound": range_bound, "product": product_range_bound}[structure]
    out = np.full((len(snr_side_db), len(channels)), math.inf)
    for j, (tx_rx, tx_tag, tag_rx) in enumerate(channels):
        for i, snr in enumerate(snr_side_db):
            try:
                b = bound(wf, tx_rx, tx_tag, tag_rx, snr_central_db, snr, n_symbols, band)
                out[i, j] = b.bistatic_rmse_m
            except ValueError:  # more unknowns than observations: unidentifiable
                out[i, j] = math.inf
    return out


def kpath_summary(bounds_m: np.ndarray | None) -> tuple[list[int], list[float]]:
    """Per attenuation: how many scenarios have a finite bound, and the median of those (m)."""
    if bounds_m is None:
        return [], []
    b = np.atleast_2d(np.asarray(bounds_m, np.float64))
    finite = np.isfinite(b)
    med = [float(np.median(row[ok])) if ok.any() else math.nan for row, ok in zip(b, finite, strict=True)]
    return [int(n) for n in finite.sum(axis=1)], med


def identifiable_limit_m(wf: WaveformConfig) -> float:
    """The bound (m) below which a scenario's first path counts as identifiable."""
    return IDENTIFIABLE_CELLS * SPEED_OF_LIGHT_M_S / wf.occupied_bandwidth_hz


def identifiable_table(
    rows: list[dict],
    arrays: dict,
    n_nlos: Sequence[int],
    attenuation_db: Sequence[float],
    methods: Sequence[str],
    limit_m: float,
) -> list[dict]:
    """Per (paths, attenuation): every method's RMSE over the scenarios whose product-form bound
    (``arrays["crlb/p{P}/product_m"]`` ``[attenuation, scenario]``) is below ``limit_m``, how many
    they are, and the median of their bounds."""
    out = []
    for p in n_nlos:
        bounds = arrays.get(f"crlb/p{p}/product_m")
        if bounds is None:
            continue
        b = np.atleast_2d(np.asarray(bounds, np.float64))
        for i, a in enumerate(attenuation_db):
            ok = {int(s) for s in np.flatnonzero(b[i] < limit_m)}
            sel = [
                r for r in rows if r["n_nlos"] == p and r["attenuation_db"] == a and int(r["scenario"]) in ok
            ]
            out.append(
                {
                    "n_nlos": p,
                    "attenuation_db": a,
                    "scenarios": len(ok),
                    "of": int(b.shape[1]),
                    "rmse_m": {m: rmse([r[f"err_{m}_m"] for r in sel]) for m in methods},
                    "bound_m": float(np.median(b[i, sorted(ok)])) if ok else math.nan,
                }
            )
    return out
