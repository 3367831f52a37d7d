"""Emulation scenario: geometry or explicit paths, impairments, SNRs and tag behaviour."""

from __future__ import annotations

import math
from dataclasses import dataclass

from dsp.bands import BANDS
from dsp.config_base import ConfigBase, ConfigError
from sdr.emulator.phase_noise import check_mask

MODES = ("cw", "burst")
PathRows = tuple[tuple[float, float, float], ...]


@dataclass(frozen=True)
class ScenarioConfig(ConfigBase):
    """Everything the software channel emulator needs besides the waveform.

    Geometry (SYSTEM.md section 9) is used unless all three explicit path lists
    are given as rows ``(length_m, gain_re, gain_im)``, line of sight first.
    Values left ``None`` are drawn from ``seed``.

    Impairments of a real unsynchronised lab are ON by default (docs/RECEIVER.md,
    "Emulator impairments", gives each default and where it comes from); ``ideal=True``
    turns them all off and reproduces the emulator as it was before they existed (CFO,
    tag clock, sample offset and circuitry stay: they are the model of SYSTEM.md
    section 3, not impairments).

    * ``sample_clock_tied``: TX and RX derive LO and sample clock from one reference each
      (X410: LO and ADC clock from one 10 MHz-disciplined reference), so the TX-RX offset
      ``lo_ppm`` is both the CFO ``fc lo_ppm`` and a stretch of the illumination by
      ``lo_ppm`` in RX samples (31 samples/s per ppm at 30.72 MS/s).
    * ``phase_noise``, ``phase_noise_mask_dbc_hz``: every synthesiser (TX; each RX channel,
      its own LO at its band centre) has the SSB mask ``(offset_hz, dBc/Hz)`` given at 1 GHz,
      scaled by ``20 log10(f_LO / 1 GHz)``: a typical fractional-N PLL, -95 dBc/Hz at 10 kHz.
      TX phase noise is common to all bands; RX phase noise is independent per channel.
    * ``iq_gain_imbalance_db``, ``iq_phase_imbalance_deg``: per RX channel, drawn uniformly in
      +-the value: image rejection 32 dB at worst, about 37 dB typically (30-40 dB is what a
      factory-calibrated direct-conversion receiver keeps).
    * ``dc_offset_dbc``: residual DC / LO leakage per channel, relative to the channel's RMS
      level, random phase (``None``: none).
    * ``tag_duty_error``: the tag's square wave spends ``0.5 + error`` of its period at +1; the
      first harmonic becomes ``(2/pi) sin(pi D)`` and the mean ``2D - 1`` leaks the tag's data
      into the central band.
    * ``tag_jitter_rms_s``: the tag clock's RMS jitter, on its symbol edges and (as phase
      ``2 pi f_sh jitter``) on the side bands' shift.
    * ``retunes_s``: times (s) the radio retunes: each RX channel's phase is redrawn there
      (X410 channels come up with a random phase after every tune), at the nearest period.
    """

    seed: int = 0
    duration_s: float = 0.25
    mode: str = "burst"
    bands: tuple[str, ...] = BANDS
    # geometry
    n_nlos: int = 0
    tx_pos_m: tuple[float, float] = (0.0, 0.0)
    rx_pos_m: tuple[float, float] = (20.0, 0.0)
    tag_region_m: tuple[float, float, float, float] = (0.0, 20.0, 5.0, 15.0)
    tag_pos_m: tuple[float, float] | None = None
    scatter_region_m: float = 30.0
    # explicit paths (override geometry when all three are given)
    paths_tx_rx: PathRows | None = None
    paths_tx_tag: PathRows | None = None
    paths_tag_rx: PathRows | None = None
    # signal levels
    snr_central_db: float = 30.0
    snr_lower_db: float = 30.0
    snr_upper_db: float = 30.0
    structural_mode_gain: float = 0.3
    rms_dbfs: float = -20.0
    adc_bits: int = 16
    # impairments
    lo_ppm: float | None = None
    lo_ppm_max: float = 5.0
    tag_clock_ppm: float | None = None
    tag_clock_ppm_max: float = 100.0
    sample_offset: int | None = None
    ideal: bool = False  # True: every impairment below off (the bare model of SYSTEM.md 3)
    sample_clock_tied: bool = True
    phase_noise: bool = True
    phase_noise_mask_dbc_hz: tuple[tuple[float, float], ...] = (
        (1e3, -80.0),
        (1e4, -95.0),
        (1e5, -115.0),
        (1e6, -135.0),
    )
    iq_gain_imbalance_db: float = 0.3
    iq_phase_imbalance_deg: float = 2.0
    dc_offset_dbc: float | None = -40.0
    tag_duty_error: float = 0.02
    tag_jitter_rms_s: float = 20e-12
    retunes_s: tuple[float, ...] = ()
    circuitry: bool = True
    circuitry_seed: int | None = None  # the same radio hardware across scenarios (None: from seed)
    circuitry_delay_max_s: float = 60e-9
    circuitry_ripple_db: float = 0.5
    circuitry_ripple_deg: float = 3.0
    drops: tuple[tuple[float, int], ...] = ()
    # tag
    tag_id: int = 0xB5C0FFEE
    first_packet_s: float | None = None

    def _validate(self) -> None:
        if self.seed < 0:
            self._fail("seed", "must be non-negative")
        if not (math.isfinite(self.duration_s) and 0 < self.duration_s <= 3600):
            self._fail("duration_s", "must be in (0, 3600] s")
        if self.mode not in MODES:
            self._fail("mode", f"must be one of {MODES}")
        if not self.bands or self.bands[0] != "central" or len(set(self.bands)) != len(self.bands):
            self._fail("bands", "must start with 'central' and list each band once")
        if any(b not in BANDS for b in self.bands) or len(self.bands) < 2:
            self._fail("bands", f"must be 'central' and one or both of {BANDS[1:]}")
        if not (0 <= self.n_nlos <= 64):
            self._fail("n_nlos", "must be in [0, 64]")
        for name in ("tx_pos_m", "rx_pos_m", "tag_pos_m"):
            pos = getattr(self, name)
            if pos is not None and not all(math.isfinite(v) for v in pos):
                self._fail(name, "coordinates must be finite")
        x0, x1, y0, y1 = self.tag_region_m
        if not (all(math.isfinite(v) for v in self.tag_region_m) and x0 <= x1 and y0 <= y1):
            self._fail("tag_region_m", "must be finite (xmin, xmax, ymin, ymax) with min <= max")
        if not (math.isfinite(self.scatter_region_m) and self.scatter_region_m > 0):
            self._fail("scatter_region_m", "must be positive and finite")
        explicit = [self.paths_tx_rx, self.paths_tx_tag, self.paths_tag_rx]
        if any(p is not None for p in explicit) and not all(p is not None for p in explicit):
            self._fail("paths_tx_rx", "give all three explicit path lists or none")
        for name in ("paths_tx_rx", "paths_tx_tag", "paths_tag_rx"):
            rows = getattr(self, name)
            if rows is not None:
                if len(rows) == 0:
                    self._fail(name, "needs at least the line-of-sight path")
                if any(not (math.isfinite(r[0]) and 0 < r[0] < 1e5) for r in rows):
                    self._fail(name, "every path length must be in (0, 1e5) m")
                if any(not all(math.isfinite(v) for v in r) for r in rows):
                    self._fail(name, "gains must be finite")
                if rows[0][0] != min(r[0] for r in rows):
                    self._fail(name, "the first (line-of-sight) path must be the shortest")
        for name in ("snr_central_db", "snr_lower_db", "snr_upper_db"):
            if not (-40 <= getattr(self, name) <= 80):
                self._fail(name, "must be in [-40, 80] dB")
        if not (-60 <= self.rms_dbfs <= -3):
            self._fail("rms_dbfs", "must be in [-60, -3] dBFS")
        if self.adc_bits not in (0, 8, 12, 14, 16):
            self._fail("adc_bits", "must be 0 (no quantisation), 8, 12, 14 or 16")
        if self.lo_ppm is not None and not abs(self.lo_ppm) <= 10:  # NaN refused too
            self._fail("lo_ppm", "|lo_ppm| above 10 puts the CFO outside the estimator range")
        if not (0 <= self.lo_ppm_max <= 10):
            self._fail("lo_ppm_max", "must be in [0, 10]")
        if self.tag_clock_ppm is not None and not abs(self.tag_clock_ppm) <= 150:
            self._fail("tag_clock_ppm", "|tag_clock_ppm| must be at most 150")
        if not (0 <= self.tag_clock_ppm_max <= 150):
            self._fail("tag_clock_ppm_max", "must be in [0, 150]")
        if self.circuitry_seed is not None and self.circuitry_seed < 0:
            self._fail("circuitry_seed", "must be non-negative")
        if self.sample_offset is not None and self.sample_offset < 0:
            self._fail("sample_offset", "must be non-negative")
        if not (0 <= self.circuitry_delay_max_s <= 1e-6):
            self._fail("circuitry_delay_max_s", "must be in [0, 1e-6] s")
        if not all(
            math.isfinite(v) and v >= 0 for v in (self.circuitry_ripple_db, self.circuitry_ripple_deg)
        ):
            db = self.circuitry_ripple_db
            bad = "circuitry_ripple_db" if not (math.isfinite(db) and db >= 0) else "circuitry_ripple_deg"
            self._fail(bad, "ripples must be non-negative and finite")
        for t, n in self.drops:
            if not (0 <= t < self.duration_s) or n <= 0:
                msg = f"each drop is (time_s in [0, duration_s), n_samples > 0); got ({t}, {n})"
                self._fail("drops", msg)
        try:
            check_mask(self.phase_noise_mask_dbc_hz, "phase_noise_mask_dbc_hz")
        except ConfigError as exc:
            self._fail("phase_noise_mask_dbc_hz", str(exc).split(": ", 1)[-1])
        if not (0 <= self.iq_gain_imbalance_db <= 3):
            self._fail("iq_gain_imbalance_db", "must be in [0, 3] dB")
        if not (0 <= self.iq_phase_imbalance_deg <= 20):
            self._fail("iq_phase_imbalance_deg", "must be in [0, 20] degrees")
        if self.dc_offset_dbc is not None and not (-120 <= self.dc_offset_dbc <= 0):
            self._fail("dc_offset_dbc", "must be in [-120, 0] dBc or null")
        if not (-0.25 <= self.tag_duty_error <= 0.25):
            self._fail("tag_duty_error", "must be in [-0.25, 0.25] (duty cycle 0.25 to 0.75)")
        if not (0 <= self.tag_jitter_rms_s <= 1e-6):
            self._fail("tag_jitter_rms_s", "must be in [0, 1e-6] s")
        if any(not (0 <= t < self.duration_s) for t in self.retunes_s) or list(self.retunes_s) != sorted(
            self.retunes_s
        ):
            self._fail("retunes_s", f"must be sorted times in [0, duration_s), got {self.retunes_s}")
        if not (0 <= self.tag_id < 2**63):
            self._fail("tag_id", "must be a non-negative integer below 2**63")
        if self.first_packet_s is not None and not (
            math.isfinite(self.first_packet_s) and self.first_packet_s >= 0
        ):
            self._fail("first_packet_s", "must be non-negative and finite")

    @property
    def snr_db(self) -> dict[str, float]:
        return {b: getattr(self, f"snr_{b}_db") for b in self.bands}

    @property
    def explicit_paths(self) -> bool:
        return self.paths_tx_rx is not None
