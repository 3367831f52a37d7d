"""Typed results the receiver emits: packets, ranging epochs, block statistics, gaps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class PacketResult:
    """One detected tag packet."""

    time_s: float  # start of the packet, s from the first sample
    start_sample: float  # continuous working-rate sample index of the packet start
    tag_id: int
    bits: np.ndarray  # [packet_bits] uint8
    crc_ok: bool
    detection: float  # preamble statistic
    ebn0_db: float  # demodulator's estimate after MRC
    soft: np.ndarray | None = None  # [packet_bits] complex MRC matched-filter outputs (constellation)
    bit_errors: int | None = None  # against the truth, when known
    truth_index: int | None = None


@dataclass
class RangingEpoch:
    """Per-band CFRs/CIRs and ranges of one epoch (a packet in burst mode)."""

    time_s: float
    n_symbols: int
    cfr: dict[str, np.ndarray]  # band -> [subcarrier]
    cir: dict[str, np.ndarray]  # band -> [K]
    delay_s: dict[str, dict[str, float]]  # method -> band -> first-path delay
    range_m: dict[str, float]  # method -> combined range
    range_band_m: dict[str, dict[str, float]]  # method -> side band -> range
    snr_db: dict[str, float]  # band -> SNR per subcarrier
    cfo_hz: dict[str, float]
    # method -> standard deviation of range_m (m), from the method's fitted model (Fisher
    # information); methods that give none are absent
    range_std_m: dict[str, float] = field(default_factory=dict)
    # method -> why its range_m cannot be a TX-tag-RX path (dsp.ranging.base.implausibility);
    # plausible ranges are absent
    implausible: dict[str, str] = field(default_factory=dict)
    # the ranging still to run (dsp.epoch.RangingJob) when the receiver deferred it; None once
    # the method fields above are filled
    job: Any = field(default=None, repr=False, compare=False)


@dataclass
class BlockStats:
    """Per segment: timing, CFO, noise and throughput bookkeeping."""

    time_s: float
    symbols: int
    timing_offset: int
    cfo_hz: dict[str, float]
    noise_var: dict[str, float]
    acquired: dict[str, bool]
    # sample-clock drift (dsp/tracking.py): the prior cfo/fc of a shared reference, the drift
    # measured from the central band's timing, the last residual timing error and the lock
    timing_drift_ppm: float | None = None
    timing_drift_measured_ppm: float | None = None
    timing_error_samples: float | None = None
    timing_locked: bool | None = None


@dataclass
class GapEvent:
    """Samples lost before ``index`` (continuous index); the receiver resynchronised."""

    index: int
    samples_lost: int
