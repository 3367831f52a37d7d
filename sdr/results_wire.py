"""The receiver's typed results as wire messages (``sdr/MESSAGES.md``): ``(kind, fields, arrays)``.

Framing, validation and sockets live in :mod:`sdr.transport`; this module only maps
:mod:`dsp.results` objects to JSON-safe fields and named numpy arrays.
"""

from __future__ import annotations

import numpy as np

from dsp.results import BlockStats, GapEvent, PacketResult, RangingEpoch
from dsp.waveform import WaveformConfig

WireResult = tuple[str, dict, dict[str, np.ndarray]]


def _floats(d: dict) -> dict:
    return {k: (_floats(v) if isinstance(v, dict) else float(v)) for k, v in d.items()}


def packet_to_wire(p: PacketResult) -> WireResult:
    fields = {
        "time_s": float(p.time_s),
        "start_sample": float(p.start_sample),
        "tag_id": int(p.tag_id),
        "bits": [int(b) for b in p.bits],
        "crc_ok": bool(p.crc_ok),
        "detection": float(p.detection),
        "ebn0_db": float(p.ebn0_db),
        "bit_errors": None if p.bit_errors is None else int(p.bit_errors),
    }
    arrays = {} if p.soft is None else {"soft": np.asarray(p.soft, np.complex64)}
    return "packet", fields, arrays


def epoch_to_wire(e: RangingEpoch, wf: WaveformConfig, range_true_m: float | None = None) -> WireResult:
    fields = {
        "time_s": float(e.time_s),
        "n_symbols": int(e.n_symbols),
        "bands": list(e.cir),
        "range_m": _floats(e.range_m),
        "range_band_m": _floats(e.range_band_m),
        "range_std_m": _floats(e.range_std_m),  # optional on the wire (older senders lack it)
        "implausible": {m: str(why) for m, why in e.implausible.items()},  # optional, likewise
        "delay_s": _floats(e.delay_s),
        "snr_db": _floats(e.snr_db),
        "cfo_hz": _floats(e.cfo_hz),
        "range_true_m": None if range_true_m is None else float(range_true_m),
        "cir_step_m": float(wf.cir_grid_step_m),
    }
    arrays = {f"cir_{b}": np.asarray(c, np.complex64) for b, c in e.cir.items()}
    return "epoch", fields, arrays


def stats_to_wire(s: BlockStats) -> WireResult:
    fields = {
        "time_s": float(s.time_s),
        "symbols": int(s.symbols),
        "timing_offset": int(s.timing_offset),
        "cfo_hz": _floats(s.cfo_hz),
        "noise_var": _floats(s.noise_var),
        "acquired": {b: bool(v) for b, v in s.acquired.items()},
    }
    for name in ("timing_drift_ppm", "timing_drift_measured_ppm", "timing_error_samples"):
        v = getattr(s, name)
        fields[name] = None if v is None else float(v)
    fields["timing_locked"] = None if s.timing_locked is None else bool(s.timing_locked)
    return "stats", fields, {}


def gap_to_wire(g: GapEvent, fs_hz: float) -> WireResult:
    fields = {"time_s": g.index / fs_hz, "index": int(g.index), "samples_lost": int(g.samples_lost)}
    return "gap", fields, {}


def result_to_wire(
    r: PacketResult | RangingEpoch | BlockStats | GapEvent,
    wf: WaveformConfig,
    range_true_m: float | None = None,
) -> WireResult:
    """Any receiver result as ``(kind, fields, arrays)``; ``range_true_m`` goes on epochs when known."""
    if isinstance(r, PacketResult):
        return packet_to_wire(r)
    if isinstance(r, RangingEpoch):
        return epoch_to_wire(r, wf, range_true_m)
    if isinstance(r, GapEvent):
        return gap_to_wire(r, wf.working_rate_hz)
    if isinstance(r, BlockStats):
        return stats_to_wire(r)
    raise TypeError(f"not a receiver result: {type(r).__name__}")


def spectrum_to_wire(
    time_s: float, psd_db: dict[str, np.ndarray], freq_first_hz: dict[str, float], freq_step_hz: float
) -> WireResult:
    """Power spectral density per band, ``psd_db[band]`` ``[bins]`` in dB."""
    fields = {
        "time_s": float(time_s),
        "bands": list(psd_db),
        "freq_hz": {b: [float(freq_first_hz[b]), float(freq_step_hz)] for b in psd_db},
    }
    return "spectrum", fields, {f"psd_db_{b}": np.asarray(p, np.float32) for b, p in psd_db.items()}
