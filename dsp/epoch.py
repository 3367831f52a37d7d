"""One ranging epoch: weighted window sums, one FFT per band, calibration, CIRs, ranges, SNRs."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np

from dsp.cir import cfr_to_cir
from dsp.ranging import REGISTRY, RangingMethod, bistatic_range_m, combine_ranges
from dsp.references import cfr_from_symbol
from dsp.results import RangingEpoch
from dsp.waveform import WaveformConfig


def band_snr(cfr: np.ndarray, noise_var: float, effective_symbols: float) -> float:
    """SNR per subcarrier from an averaged CFR ``[subcarrier]`` and the per-sample noise variance."""
    noise_in_estimate = noise_var / max(effective_symbols, 1e-12)
    signal = float(np.mean(np.abs(cfr) ** 2)) - noise_in_estimate
    return max(signal, 1e-30) / max(noise_var, 1e-30)


@functools.lru_cache(maxsize=64)
def _cached_method(name: str, wf: WaveformConfig, items: tuple[tuple[str, Any], ...]) -> RangingMethod:
    cls = REGISTRY[name]
    return cls(wf, cls.Params.from_dict(dict(items)))


def method_for(
    name: str, wf: WaveformConfig, ir_threshold: float, params: Mapping[str, Any] | None = None
) -> RangingMethod:
    """Method ``name`` with ``params`` (``threshold`` defaults to ``ir_threshold`` where it has one).

    Instances are cached per (method, waveform, parameters): methods keep no state between
    calls, and some precompute dictionaries.
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown ranging method {name!r}; known: {sorted(REGISTRY)}")
    p = dict(params or {})
    if "threshold" in REGISTRY[name].Params.field_names():
        p.setdefault("threshold", ir_threshold)
    try:
        return _cached_method(name, wf, tuple(sorted(p.items())))
    except TypeError:  # an unhashable value: build it uncached (Params validates it)
        return _cached_method.__wrapped__(name, wf, tuple(sorted(p.items())))


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
    method_params: Mapping[str, Mapping[str, Any]] | None = None,
) -> RangingEpoch:
    """Build a :class:`RangingEpoch` from each band's weighted window sum ``[N]``.

    ``sums[b]`` is ``sum_m w_m r_b[m]`` with weights that undo the per-window phase
    and (side bands) the decided tag symbol; ``norms[b]`` is ``sum_m abs(w_m)**2``-type
    normalisation (the effective number of symbols averaged).  ``method_params`` maps a
    method to its parameters; by default those ``methods`` carries (``ReceiverConfig.methods``
    is a :class:`dsp.ranging.params.MethodList`).
    """
    if method_params is None:
        method_params = getattr(methods, "params", None) or {}
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
        method = method_for(name, wf, ir_threshold, method_params.get(name))
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
