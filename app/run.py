"""A receiver run: feed chunks through a receiver, keep what came out, summarise it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from calibration.stale import StaleWatch
from dsp.ranging import implausibility
from dsp.receiver import Receiver, Result
from dsp.results import BlockStats, GapEvent, PacketResult, RangingEpoch
from dsp.truth import GroundTruth
from dsp.waveform import WaveformConfig


@dataclass
class Run:
    """Everything a receiver run produced."""

    wf: WaveformConfig
    bands: list[str]
    duration_s: float
    truth: GroundTruth | None
    packets: list[PacketResult] = field(default_factory=list)
    epochs: list[RangingEpoch] = field(default_factory=list)
    gaps: list[GapEvent] = field(default_factory=list)
    last_block: BlockStats | None = None
    processing_s: float = 0.0
    tx_rx_distance_m: float | None = None  # d_0: no TX-tag-RX path is shorter

    def add(self, results: Iterable[Result]) -> None:
        for r in results:
            if isinstance(r, PacketResult):
                self.packets.append(r)
            elif isinstance(r, RangingEpoch):
                self.epochs.append(r)
            elif isinstance(r, GapEvent):
                self.gaps.append(r)
            else:
                self.last_block = r


def receive(
    rx: Receiver,
    chunks: Iterable[tuple[np.ndarray, int]],
    wf: WaveformConfig,
    duration_s: float,
    truth: GroundTruth | None,
    progress: Callable[[int], None] | None = None,
) -> Run:
    """Run ``rx`` over ``(iq[channel, sample], samples_lost_before)`` chunks."""
    run = Run(wf, list(rx.bands), duration_s, truth, tx_rx_distance_m=rx.cfg.tx_rx_distance_m)
    t0 = time.perf_counter()
    for iq, lost in chunks:
        run.add(rx.push(iq, lost))
        if progress:
            progress(iq.shape[1])
    run.add(rx.flush())
    run.processing_s = time.perf_counter() - t0
    return run


def _median(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


def direct_path_watch(run: Run) -> dict | None:
    """How far the direct path's channel moved over the run (calibration/stale.py): a static
    TX-RX link whose central CFR moves means the radio changed (a retune) and a calibration
    made before is stale.  ``None`` with too few epochs to tell."""
    watch = StaleWatch(run.wf)
    worst = None
    for e in run.epochs:
        r = watch.update(e.cfr["central"], e.time_s)
        if r is not None and (worst is None or abs(r.delay_change_s) > abs(worst.delay_change_s)):
            worst = r
    if worst is None:
        return None
    return {
        "delay_change_s": worst.delay_change_s,
        "residual_deg": watch.report.residual_deg,
        "stale": watch.first_stale_s is not None,
        "first_stale_s": watch.first_stale_s,
    }


def implausible_ranges(run: Run, range_m: dict[str, float | None]) -> dict[str, str]:
    """Method -> why its median range cannot be a TX-tag-RX path
    (:func:`dsp.ranging.implausibility`)."""
    return {
        m: why
        for m, v in range_m.items()
        if v is not None and (why := implausibility(v, run.tx_rx_distance_m, run.wf)) is not None
    }


def implausible_epochs(run: Run) -> dict[str, int]:
    """Method -> how many of the run's epochs carry an implausible range (``RangingEpoch.implausible``)."""
    counts: dict[str, int] = {}
    for e in run.epochs:
        for m in e.implausible:
            counts[m] = counts.get(m, 0) + 1
    return counts


def timing_drift(run: Run) -> dict[str, float | bool | None]:
    """The sample-clock drift at the end of the run (issue 13: both reported): ``prior`` (the
    shared-reference model, central CFO / carrier), ``measured`` (the central band's timing),
    ``locked``; ``None`` where the receiver has not formed one (no tracking, or no segment)."""
    s = run.last_block
    return {
        "prior": None if s is None else s.timing_drift_ppm,
        "measured": None if s is None else s.timing_drift_measured_ppm,
        "locked": None if s is None else s.timing_locked,
    }


def summarise(run: Run) -> dict:
    """The JSON summary of ``replay`` and ``demo`` (see README for the fields)."""
    wf, truth = run.wf, run.truth
    matched = [p for p in run.packets if p.bit_errors is not None]
    bits = len(matched) * wf.packet_bits
    errors = int(sum(p.bit_errors for p in matched))
    methods = list(run.epochs[0].range_m) if run.epochs else []
    range_m = {m: _median([e.range_m[m] for e in run.epochs]) for m in methods}
    bands = run.bands
    snr = {b: _median([e.snr_db[b] for e in run.epochs if b in e.snr_db]) for b in bands}
    cfo = run.last_block.cfo_hz if run.last_block else {}
    side_snr = [
        sum(10 ** (e.snr_db[b] / 10) for b in bands if b != "central" and b in e.snr_db) for e in run.epochs
    ]
    # eq. (103) with the coherent gain of the K_act subcarriers (see docs/RECEIVER.md)
    gain = len(wf.active_subcarriers) * wf.ofdm_symbols_per_tag_symbol
    ebn0 = 10 * np.log10(np.mean(side_snr) * gain) if side_snr else None
    out = {
        "duration_s": run.duration_s,
        "processing_s": run.processing_s,
        "realtime_factor": run.duration_s / run.processing_s if run.processing_s else None,
        "bands": bands,
        "packets_sent": None,
        "packets_detected": len(run.packets),
        "crc_ok": sum(p.crc_ok for p in run.packets),
        "bits": bits,
        "bit_errors": errors,
        "ber": errors / bits if bits else None,
        "ranging_epochs": len(run.epochs),
        "range_m": range_m,
        "range_true_m": None,
        "range_error_m": None,
        "snr_db": snr,
        "cfo_hz": cfo,
        "ebn0_db": ebn0,
        "gaps": [{"index": g.index, "samples_lost": g.samples_lost} for g in run.gaps],
        "direct_path": direct_path_watch(run),
        "implausible": implausible_ranges(run, range_m),
        "implausible_epochs": implausible_epochs(run),
        "timing_drift_ppm": timing_drift(run),
    }
    if truth is not None:
        n_total = run.duration_s * wf.working_rate_hz
        end = truth.packet_start_sample + wf.packet_bits * truth.tag_symbol_samples
        out["packets_sent"] = int(np.sum(end <= n_total))
        out["range_true_m"] = truth.range_true_m
        out["range_error_m"] = {
            m: (v - truth.range_true_m if v is not None else None) for m, v in range_m.items()
        }
        out["range_rmse_m"] = {
            m: float(np.sqrt(np.mean([(e.range_m[m] - truth.range_true_m) ** 2 for e in run.epochs])))
            for m in methods
        }
    return out
