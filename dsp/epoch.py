"""One ranging epoch: weighted window sums, one FFT per band, calibration, CIRs, ranges, SNRs."""

from __future__ import annotations

import numpy as np

from dsp.cir import cfr_to_cir
from dsp.ranging import bistatic_range_m, combine_ranges, get_method
from dsp.references import cfr_from_symbol
from dsp.results import RangingEpoch
from dsp.waveform import WaveformConfig


def band_snr(cfr: np.ndarray, noise_var: float, effective_symbols: float) -> float:
    """SNR per subcarrier from an averaged CFR ``[subcarrier]`` and the per-sample noise variance."""
    noise_in_estimate = noise_var / max(effective_symbols, 1e-12)
    signal = float(np.mean(np.abs(cfr) ** 2)) - noise_in_estimate
    return max(signal, 1e-30) / max(noise_var, 1e-30)


def ranging_epoch(
    wf: WaveformConfig,
    time_s: float,
    n_symbols: int,
    sums: dict[str, np.ndarray],
    norms: dict[str, float],
    cfo_hz: dict[str, float],
    noise_var: dict[str, float],
    methods: tuple[str, ...],
    ir_threshold: float,
    tx_rx_distance_m: float | None,
    calibration: dict[str, np.ndarray] | None = None,
    d_cal_m: dict[str, float] | None = None,
) -> RangingEpoch:
    """Build a :class:`RangingEpoch` from each band's weighted window sum ``[N]``.

    ``sums[b]`` is ``sum_m w_m r_b[m]`` with weights that undo the per-window phase
    and (side bands) the decided tag symbol; ``norms[b]`` is ``sum_m abs(w_m)**2``-type
    normalisation (the effective number of symbols averaged).
    """
    cfr, cir, snr = {}, {}, {}
    for band, s in sums.items():
        h = cfr_from_symbol(wf, s / norms[band], cfo_hz[band])
        snr[band] = 10 * np.log10(band_snr(h, noise_var[band], norms[band]))
        if calibration is not None and band in calibration:
            h = h / calibration[band]
        cfr[band] = h
        cir[band] = cfr_to_cir(h, wf)
    sides = [b for b in cfr if b != "central"]
    reliability = {b: 10 ** (snr[b] / 10) for b in sides}
    delays: dict[str, dict[str, float]] = {}
    ranges: dict[str, float] = {}
    per_band: dict[str, dict[str, float]] = {}
    d0 = tx_rx_distance_m or 0.0
    for name in methods:
        method = get_method(name, wf, threshold=ir_threshold)
        delays[name] = {b: method.first_path_delay_s(cfr[b], cir[b]) for b in cfr}
        per_band[name] = {
            b: bistatic_range_m(
                delays[name][b], delays[name]["central"], d0, (d_cal_m or {}).get(b, 0.0), wf.max_range_m
            )
            for b in sides
        }
        ranges[name] = combine_ranges(per_band[name], reliability)
    return RangingEpoch(
        time_s=time_s,
        n_symbols=n_symbols,
        cfr=cfr,
        cir=cir,
        delay_s=delays,
        range_m=ranges,
        range_band_m=per_band,
        snr_db=snr,
        cfo_hz=dict(cfo_hz),
    )
