"""A scenario and the capture it makes (AIR_INTERFACE.md section 4), with its ground truth.

Per band ``b`` at ``t = n / fs``:
``r_b = A_b g_b(t) exp(j (2 pi nu_b t + theta_b)) s_b(t (1 + delta) - tau0) + w_b`` with
``nu_0 = cfo_hz + fc delta`` (the LO offset tied to the sample clock, plus an untied part),
``nu_lower/upper = nu_0 -/+ eps f_sh``, ``g_side = (2/pi) d(t)`` (0 between packets),
``w_b`` white complex Gaussian at the band's SNR per active subcarrier.  No circuitry
and no structural mode: the truth needs no calibration.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.oracle.channel import Link, band_cfr
from tests.oracle.packet import bpsk, packet_bits
from tests.oracle.synth import stretched, tag_levels
from tests.oracle.waveform import Numerology, symbol_bins
from tests.oracle.writer import CaptureWriter

BATCH_SAMPLES = 1 << 18
DEFAULT = Numerology()
HARMONIC = 2 / np.pi
# line of sight: TX (0, 0), RX (20, 0), tag (8, 9) m
LOS_TX_RX: Link = ((20.0, 1.0 + 0j),)
LOS_TX_TAG: Link = ((math.hypot(8, 9), 1.0 + 0j),)
LOS_TAG_RX: Link = ((math.hypot(12, 9), 1.0 + 0j),)


@dataclass(frozen=True)
class Scenario:
    """Everything the oracle draws a capture from (SI units, ``*_ppm`` in parts per million)."""

    tx_rx: Link = LOS_TX_RX
    tx_tag: Link = LOS_TX_TAG
    tag_rx: Link = LOS_TAG_RX
    duration_s: float = 0.3  # three packets (the third ends at 0.2725 s)
    mode: str = "burst"  # or "cw"
    bands: tuple[str, ...] = ("central", "lower", "upper")
    snr_db: tuple[float, float, float] = (30.0, -20.0, -20.0)  # central, lower, upper
    cfo_hz: float = 0.0  # LO offset not tied to the sample clock
    clock_offset_ppm: float = 0.0  # delta: TX-RX offset of the shared reference (CFO and stretch)
    tag_clock_ppm: float = 0.0  # eps, relative to the RX clock
    timing_offset_samples: float = 300.0  # tau0
    first_packet_s: float = 0.01
    tag_id: int = 0xB5C0FFEE
    rms_dbfs: float = -20.0
    datatype: str = "ci16_le"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("tx_rx", "tx_tag", "tag_rx"):
            link = getattr(self, name)
            if not link or link[0][0] != min(r[0] for r in link):
                raise ValueError(f"Scenario.{name}: needs paths with the line of sight (shortest) first")
        if self.mode not in ("burst", "cw"):
            raise ValueError(f"Scenario.mode = {self.mode!r}: use 'burst' or 'cw'")
        if self.bands[0] != "central" or len(self.bands) < 2:
            raise ValueError(f"Scenario.bands = {self.bands}: central first, then one or two side bands")

    def snr(self, band: str) -> float:
        return self.snr_db[("central", "lower", "upper").index(band)]


@dataclass
class Truth:
    """What the oracle put in the capture.  Per-band dicts are keyed by band name."""

    range_true_m: float
    tx_rx_distance_m: float
    cfo_hz: dict[str, float]
    phase_rad: dict[str, float]
    scale: dict[str, float]
    noise_var: dict[str, float]
    cfr: dict[str, np.ndarray]  # [subcarrier], propagation only (no circuitry)
    packet_start_sample: np.ndarray  # [packet]
    packet_bits: np.ndarray  # [packet, bit]
    tag_symbol_samples: float
    spectrum: dict[str, np.ndarray]  # [N] bins X[k] H_b[k] (before A_b and the tag's 2/pi)


def plan(sc: Scenario, num: Numerology = DEFAULT) -> Truth:
    """Draw phases and payloads and compute every level; no samples yet."""
    rng = np.random.default_rng([sc.seed, 0x0AC1E])
    fs, n_total = num.working_rate_hz, round(sc.duration_s * num.working_rate_hz)
    eps, delta = sc.tag_clock_ppm * 1e-6, sc.clock_offset_ppm * 1e-6
    nu0 = sc.cfo_hz + num.carrier_freq_hz * delta
    side = {"central": 0.0, "lower": -1.0, "upper": 1.0}
    cfo = {b: nu0 + side[b] * eps * num.tag_shift_hz for b in sc.bands}
    phase = {b: float(rng.uniform(0, 2 * np.pi)) for b in sc.bands}
    x = symbol_bins(num)
    bins = num.subcarriers % num.fft_size
    cfr, spectrum, scale, noise_var = {}, {}, {}, {}
    for b in sc.bands:
        cfr[b] = band_cfr(num, b, sc.tx_rx, sc.tx_tag, sc.tag_rx)
        spectrum[b] = np.zeros(num.fft_size, complex)
        spectrum[b][bins] = x[bins] * cfr[b]
        g = 1.0 if b == "central" else HARMONIC
        p = float(np.mean(np.abs(g * cfr[b]) ** 2))  # received power per active subcarrier
        snr = 10 ** (sc.snr(b) / 10)
        # rms of the band (tag on) at rms_dbfs: signal L/N * p plus noise p / snr, times A_b^2
        scale[b] = math.sqrt(10 ** (sc.rms_dbfs / 10) / (p * bins.size / num.fft_size + p / snr))
        noise_var[b] = scale[b] ** 2 * p / snr
    symbol_samples = fs / (num.tag_symbol_rate_baud * (1 + eps))
    packet_len = num.packet_bits * symbol_samples
    starts, bits = [], []
    t = sc.first_packet_s
    while sc.mode == "burst" and t * fs + packet_len < n_total:
        starts.append(t * fs)
        bits.append(packet_bits(sc.tag_id, rng.integers(0, 2, num.payload_bits), num.preamble_barker_length))
        t += num.burst_period_s
    return Truth(
        range_true_m=sc.tx_tag[0][0] + sc.tag_rx[0][0],
        tx_rx_distance_m=sc.tx_rx[0][0],
        cfo_hz=cfo,
        phase_rad=phase,
        scale=scale,
        noise_var=noise_var,
        cfr=cfr,
        packet_start_sample=np.asarray(starts, np.float64),
        packet_bits=np.asarray(bits, np.uint8).reshape(len(starts), num.packet_bits),
        tag_symbol_samples=symbol_samples,
        spectrum=spectrum,
    )


def samples(
    sc: Scenario,
    tr: Truth,
    start: int,
    count: int,
    rng: np.random.Generator | None,
    num: Numerology = DEFAULT,
) -> np.ndarray:
    """Samples ``start .. start + count - 1`` of every band, ``[channel, sample]`` complex128
    (noiseless when ``rng`` is None)."""
    fs, delta = num.working_rate_hz, sc.clock_offset_ppm * 1e-6
    n = start + np.arange(count, dtype=np.int64)
    if sc.mode == "cw":
        tag = np.ones(count)
    else:
        tag = tag_levels(n, tr.packet_start_sample, bpsk(tr.packet_bits), tr.tag_symbol_samples)
    out = np.empty((len(sc.bands), count), complex)
    for c, b in enumerate(sc.bands):
        s = stretched(tr.spectrum[b], start, count, delta, sc.timing_offset_samples)
        rot = tr.scale[b] * np.exp(1j * tr.phase_rad[b]) * _carrier(tr.cfo_hz[b] / fs, start, count)
        np.multiply(s, rot, out=out[c])
        if b != "central":
            out[c] *= HARMONIC * tag
        if rng is not None:
            noise = rng.standard_normal((count, 2), np.float32)
            noise *= np.float32(math.sqrt(tr.noise_var[b] / 2))
            out[c] += noise.view(np.complex64)[:, 0]
    return out


def _carrier(cycles_per_sample: float, start: int, count: int) -> np.ndarray:
    """``exp(j 2 pi nu n / fs)`` for ``n = start .. start + count - 1`` as an outer product of
    per-block and within-block phasors (each reduced modulo one cycle in float64)."""
    block = 1024
    rows = -(-count // block)
    head = np.mod(cycles_per_sample * (start + block * np.arange(rows, dtype=np.int64)), 1.0)
    within = np.mod(cycles_per_sample * np.arange(block), 1.0)
    out = np.outer(np.exp(2j * np.pi * head), np.exp(2j * np.pi * within))
    return out.reshape(-1)[:count]


def write_capture(sc: Scenario, path: str | Path, num: Numerology = DEFAULT) -> Truth:
    """Synthesise the scenario into ``path`` (FORMAT.md, with ``/truth``); return the truth."""
    tr = plan(sc, num)
    n_total = round(sc.duration_s * num.working_rate_hz)
    freqs = [num.band_center_hz(b) for b in sc.bands]
    w = CaptureWriter(path, list(sc.bands), freqs, num.working_rate_hz, n_total, num.h5_attrs(), sc.datatype)
    try:
        rng = np.random.default_rng([sc.seed, 0x0015E])
        for start in range(0, n_total, BATCH_SAMPLES):
            w.write(start, samples(sc, tr, start, min(BATCH_SAMPLES, n_total - start), rng, num))
        w.truth(*_truth_fields(sc, tr))
    finally:
        w.close()
    return tr


def _truth_fields(sc: Scenario, tr: Truth) -> tuple[dict, dict, dict]:
    """``/truth`` as FORMAT.md lists it (no circuitry: its CFR is 1, its delay 0)."""
    num = DEFAULT
    scenario = {
        k: ([[d, [g.real, g.imag]] for d, g in v] if k in ("tx_rx", "tx_tag", "tag_rx") else v)
        for k, v in dataclasses.asdict(sc).items()
    }
    attrs = {
        "range_true_m": tr.range_true_m,
        "tx_rx_distance_m": tr.tx_rx_distance_m,
        "sample_offset": round(sc.timing_offset_samples),
        "lo_ppm": tr.cfo_hz["central"] / num.carrier_freq_hz * 1e6,
        "tag_clock_ppm": sc.tag_clock_ppm,
        "sample_clock_ppm": sc.clock_offset_ppm,  # delay at sample n: sample_offset - delta n
        "tag_id": sc.tag_id,
        "tag_symbol_samples": tr.tag_symbol_samples,
        "tag_pos_m": json.dumps(None),
        "scenario": json.dumps(scenario),
        "bands": list(sc.bands),
    }
    band_attrs = {
        "cfo_hz": tr.cfo_hz,
        "snr_db": {b: sc.snr(b) for b in sc.bands},
        "phase_rad": tr.phase_rad,
        "noise_var": tr.noise_var,
        "scale": tr.scale,
        "circuitry_delay_s": dict.fromkeys(sc.bands, 0.0),
    }
    cfr = np.stack([tr.cfr[b] for b in sc.bands])
    datasets = {
        "cfr_propagation": cfr,
        "cfr_circuitry": np.ones_like(cfr),
        "packet_start_sample": tr.packet_start_sample,
        "packet_bits": tr.packet_bits,
    }
    return attrs, band_attrs, datasets
