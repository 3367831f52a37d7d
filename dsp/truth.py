"""Ground truth of an emulated capture: what every test and sweep compares against.

Produced by the emulator (`sdr.emulator`), stored and read back with a capture (`captures`), used
by the application layer (`app.session`): it lives on the ground floor so that none of those
needs another for it.  Plain data, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class GroundTruth:
    """The true answer of an emulation.

    Per-band arrays are keyed by band name; CFRs are ``[subcarrier]`` on the active
    subcarriers.  ``packet_start_sample`` is in the receiver's continuous sample
    index (before any injected drop); ``packet_bits`` is ``[packet, bit]``.
    """

    range_true_m: float
    tx_rx_distance_m: float
    tag_pos_m: tuple[float, float] | None
    sample_offset: int
    lo_ppm: float
    tag_clock_ppm: float
    cfo_hz: dict[str, float]
    snr_db: dict[str, float]
    phase_rad: dict[str, float]
    noise_var: dict[str, float]
    scale: dict[str, float]
    circuitry_delay_s: dict[str, float]
    cfr_propagation: dict[str, np.ndarray]
    cfr_circuitry: dict[str, np.ndarray]
    tag_id: int
    packet_start_sample: np.ndarray
    packet_bits: np.ndarray
    tag_symbol_samples: float
    gaps: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    sample_clock_ppm: float = 0.0
    impairments: dict = field(default_factory=dict)  # Impairments.summary(); empty: none recorded

    def first_harmonic(self, band: str) -> complex:
        """The tag square wave's complex first-harmonic amplitude seen in side ``band``
        (``2/pi`` for an ideal 50 % duty cycle)."""
        h = self.impairments.get("tag_first_harmonic", {}).get(band)
        return complex(h[0], h[1]) if h else 2 / np.pi

    def illumination_delay_samples(self, n: np.ndarray | float) -> np.ndarray:
        """Delay of the illumination (working-rate samples) at continuous RX sample ``n``.

        ``n0 - delta n`` with ``delta = sample_clock_ppm * 1e-6``: RX sample ``n`` sees the
        periodic received symbol at ``n (1 + delta) - n0`` (SYSTEM.md section 3).
        """
        return self.sample_offset - self.sample_clock_ppm * 1e-6 * np.asarray(n, np.float64)

    @property
    def cfr(self) -> dict[str, np.ndarray]:
        """Full CFR per band as the receiver sees it (propagation x circuitry), unscaled."""
        return {b: self.cfr_propagation[b] * self.cfr_circuitry[b] for b in self.cfr_propagation}

    @property
    def calibration_distance_m(self) -> dict[str, float]:
        """``d_cal_u``: circuitry group delay of each side band relative to the central band."""
        from dsp.waveform import SPEED_OF_LIGHT_M_S

        d0 = self.circuitry_delay_s["central"]
        return {b: (d - d0) * SPEED_OF_LIGHT_M_S for b, d in self.circuitry_delay_s.items()}

    def scalars(self) -> dict:
        """JSON-friendly scalar summary."""
        return {
            "range_true_m": self.range_true_m,
            "tx_rx_distance_m": self.tx_rx_distance_m,
            "tag_pos_m": list(self.tag_pos_m) if self.tag_pos_m else None,
            "sample_offset": self.sample_offset,
            "lo_ppm": self.lo_ppm,
            "sample_clock_ppm": self.sample_clock_ppm,
            "impairments": self.impairments,
            "tag_clock_ppm": self.tag_clock_ppm,
            "cfo_hz": self.cfo_hz,
            "snr_db": self.snr_db,
            "circuitry_delay_s": self.circuitry_delay_s,
            "tag_id": self.tag_id,
            "packets": len(self.packet_start_sample),
            "tag_symbol_samples": self.tag_symbol_samples,
        }
