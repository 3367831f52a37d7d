"""One ranging epoch: weighted window sums, one FFT per band, calibration, CIRs, ranges, SNRs."""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dsp.cir import cfr_to_cir
from dsp.phasor import cis
from dsp.ranging import REGISTRY, RangingMethod, bistatic_range_m, combine_ranges, implausibility
from dsp.references import cfr_from_symbol
from dsp.results import RangingEpoch
from dsp.waveform import SPEED_OF_LIGHT_M_S, WaveformConfig


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


@dataclass(frozen=True)
class RangingJob:
    """What the ranging methods need of one epoch; picklable, so another process may run it
    (:func:`range_methods`).

    ``cfr`` ``{band: [subcarrier]}`` and ``cir`` ``{band: [K]}`` are the epoch's (calibrated);
    ``reliability`` weighs the side bands (linear SNR); ``d_cal_m`` per side band;
    ``tx_rx_known``: whether ``tx_rx_distance_m`` was given (else 0: excess path lengths).
    """

    wf: WaveformConfig
    cfr: dict[str, np.ndarray]
    cir: dict[str, np.ndarray]
    reliability: dict[str, float]
    methods: tuple[str, ...]
    ir_threshold: float
    tx_rx_distance_m: float
    d_cal_m: dict[str, float]
    method_params: Mapping[str, Mapping[str, Any]]
    tx_rx_known: bool = True


@dataclass(frozen=True)
class RangingOutcome:
    """The ranging methods' answers for one epoch (the fields of :class:`RangingEpoch` they fill)
    and the seconds (wall clock) they took."""

    delay_s: dict[str, dict[str, float]]
    range_m: dict[str, float]
    range_band_m: dict[str, dict[str, float]]
    range_std_m: dict[str, float]
    busy_s: float = 0.0
    implausible: dict[str, str] = field(default_factory=dict)

    def fill(self, epoch: RangingEpoch) -> RangingEpoch:
        """``epoch`` with these answers and no ``job`` left (in place; returned)."""
        epoch.delay_s, epoch.range_m = self.delay_s, self.range_m
        epoch.range_band_m, epoch.range_std_m = self.range_band_m, self.range_std_m
        epoch.implausible = self.implausible
        epoch.job = None
        return epoch


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
    defer: bool = False,
) -> RangingEpoch:
    """Build a :class:`RangingEpoch` from each band's weighted window sum ``[N]``.

    ``sums[b]`` is ``sum_m w_m r_b[m]`` with weights that undo the per-window phase
    and (side bands) the decided tag symbol; ``norms[b]`` is ``sum_m abs(w_m)**2``-type
    normalisation (the effective number of symbols averaged).  ``method_params`` maps a
    method to its parameters (``ReceiverConfig.method_params``; defaults when absent).

    ``defer``: the epoch comes back with its CFRs, CIRs and SNRs but no method's answer yet, and
    ``job`` set: :func:`range_methods` of it (anywhere, e.g. in another process) and
    :meth:`RangingOutcome.fill` complete it.
    """
    method_params = method_params or {}
    cfr, cir, snr = {}, {}, {}
    for band, s in sums.items():
        h = cfr_from_symbol(wf, s / norms[band], cfo_hz[band])
        snr[band] = 10 * np.log10(band_snr(h, noise_var[band], norms[band]))
        if calibration is not None and band in calibration:
            h = h / calibration[band]
        cfr[band] = h
        cir[band] = cfr_to_cir(h, wf)
    sides = [b for b in cfr if b != "central"]
    job = RangingJob(
        wf=wf,
        cfr=cfr,
        cir=cir,
        reliability={b: 10 ** (snr[b] / 10) for b in sides},
        methods=tuple(methods),
        ir_threshold=ir_threshold,
        tx_rx_distance_m=tx_rx_distance_m or 0.0,
        d_cal_m={b: (d_cal_m or {}).get(b, 0.0) for b in sides},
        method_params={k: dict(v) for k, v in method_params.items()},
        tx_rx_known=tx_rx_distance_m is not None,
    )
    epoch = RangingEpoch(
        time_s=time_s,
        n_symbols=n_symbols,
        cfr=cfr,
        cir=cir,
        delay_s={},
        range_m={},
        range_band_m={},
        snr_db=snr,
        cfo_hz=dict(cfo_hz),
    )
    if defer:
        epoch.job = job
        return epoch
    return range_methods(job).fill(epoch)


def range_methods(job: RangingJob) -> RangingOutcome:
    """Every method of ``job``: per-band first-path delays, per-band and combined ranges (eq.
    (77)-(79)) and the combined range's standard deviation where the method gives one."""
    t0 = time.perf_counter()
    wf, sides = job.wf, [b for b in job.cfr if b != "central"]
    delays: dict[str, dict[str, float]] = {}
    ranges: dict[str, float] = {}
    per_band: dict[str, dict[str, float]] = {}
    range_std: dict[str, float] = {}
    d0, d_cal = job.tx_rx_distance_m, job.d_cal_m
    for name in job.methods:
        method = method_for(name, wf, job.ir_threshold, job.method_params.get(name))
        delays[name], std_s = _delays(method, wf, job.cfr, job.cir, sides, d_cal)
        per_band[name] = {
            b: bistatic_range_m(delays[name][b], delays[name]["central"], d0, d_cal[b], wf.max_range_m)
            for b in sides
        }
        ranges[name] = combine_ranges(per_band[name], job.reliability)
        std = _range_std_m(std_s, sides, job.reliability, joint=getattr(method, "joint_bands", False))
        if np.isfinite(std):
            range_std[name] = std
    known = job.tx_rx_distance_m if job.tx_rx_known else None
    flags = {m: why for m, r in ranges.items() if (why := implausibility(r, known, wf)) is not None}
    return RangingOutcome(delays, ranges, per_band, range_std, time.perf_counter() - t0, flags)


def _delays(
    method: RangingMethod,
    wf: WaveformConfig,
    cfr: dict[str, np.ndarray],
    cir: dict[str, np.ndarray],
    sides: list[str],
    d_cal_m: dict[str, float],
) -> tuple[dict[str, float], dict[str, float]]:
    """First-path delay and its standard deviation (s) per band.

    A method with ``joint_bands`` fits the side bands together (common delays, per-band
    gains), and one with ``product_sides`` fits them (one or two) in the product form
    ``H_1 H_2u`` (:mod:`dsp.ranging.nomp_product`), after moving each band's calibration
    distance ``d_cal`` out of its CFR, so the
    delay common to the bands is the propagation delay; each side band then gets that delay
    plus its own ``d_cal / c`` back, which :func:`bistatic_range_m` removes again.
    """
    delays, std = {}, {}
    product = getattr(method, "product_sides", False) and len(sides) > 0
    joint = product or (getattr(method, "joint_bands", False) and len(sides) > 1)
    for b in cfr if not joint else ["central"]:
        delays[b], std[b] = method.delay_and_std_s(cfr[b], cir[b])
    if joint:
        f = wf.active_freqs_hz
        shift_s = {b: d_cal_m[b] / SPEED_OF_LIGHT_M_S for b in sides}
        aligned = np.stack([cfr[b] * cis(2 * np.pi * np.mod(f * shift_s[b], 1.0)) for b in sides])
        fit = method.side_delay_and_std_s if product else method.joint_delay_and_std_s
        t, s = fit(aligned)
        for b in sides:
            delays[b], std[b] = t + shift_s[b], s
    return delays, std


def _range_std_m(
    std_s: dict[str, float], sides: list[str], reliability: dict[str, float], joint: bool
) -> float:
    """Standard deviation (m) of the combined range from the per-band delay deviations.

    ``range = d_0 + c (sum_u rho_u t_u / sum_u rho_u - t_0)``, the bands' errors independent
    (a joint fit gives every side band the same delay: its deviation counts once).
    """
    s0 = std_s.get("central", np.nan)
    if joint and len(sides) > 1:
        side_var = std_s[sides[0]] ** 2
    else:
        w = np.array([max(reliability.get(b, 0.0), 0.0) for b in sides])
        w = w if w.sum() > 0 else np.ones(len(sides))
        side_var = float(np.sum((w * np.array([std_s[b] for b in sides])) ** 2) / w.sum() ** 2)
    return float(SPEED_OF_LIGHT_M_S * np.sqrt(side_var + s0**2))
