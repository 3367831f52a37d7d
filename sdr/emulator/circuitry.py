"""Static circuitry responses of TX, tag and per-band RX chains.

Each is a group delay of tens of nanoseconds with a sinusoidal gain and phase
ripple across the band, drawn from the scenario seed: different per band so
that calibration has something real to remove.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsp.bands import BANDS
from sdr.emulator.scenario import ScenarioConfig


@dataclass(frozen=True)
class Circuit:
    """One circuitry response: group delay plus gain/phase ripple."""

    delay_s: float
    ripple_db: float
    ripple_rad: float
    gain_period_hz: float
    phase_period_hz: float
    gain_offset_rad: float
    phase_offset_rad: float

    def response(self, freqs_hz: np.ndarray) -> np.ndarray:
        """``C(f)`` at baseband ``freqs_hz`` (any shape)."""
        f = np.asarray(freqs_hz, np.float64)
        gain_db = self.ripple_db * np.sin(2 * np.pi * f / self.gain_period_hz + self.gain_offset_rad)
        phase = self.ripple_rad * np.sin(2 * np.pi * f / self.phase_period_hz + self.phase_offset_rad)
        return 10 ** (gain_db / 20) * np.exp(1j * (phase - 2 * np.pi * f * self.delay_s))


IDEAL = Circuit(0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0)


def draw_circuit(sc: ScenarioConfig, rng: np.random.Generator, min_delay_s: float) -> Circuit:
    if not sc.circuitry:
        return IDEAL
    return Circuit(
        delay_s=float(rng.uniform(min(min_delay_s, sc.circuitry_delay_max_s), sc.circuitry_delay_max_s)),
        ripple_db=sc.circuitry_ripple_db,
        ripple_rad=np.deg2rad(sc.circuitry_ripple_deg),
        gain_period_hz=float(rng.uniform(4e6, 12e6)),
        phase_period_hz=float(rng.uniform(4e6, 12e6)),
        gain_offset_rad=float(rng.uniform(0, 2 * np.pi)),
        phase_offset_rad=float(rng.uniform(0, 2 * np.pi)),
    )


def draw_circuits(sc: ScenarioConfig, rng: np.random.Generator) -> dict[str, Circuit]:
    """Circuits ``tx``, ``tag`` and ``rx_<band>`` for every band of the scenario."""
    out = {"tx": draw_circuit(sc, rng, 10e-9), "tag": draw_circuit(sc, rng, 5e-9)}
    for band in BANDS:  # drawn for all bands: same draws for any band subset
        out[f"rx_{band}"] = draw_circuit(sc, rng, 10e-9)
    return out


def band_response(circuits: dict[str, Circuit], band: str, freqs_hz: np.ndarray) -> np.ndarray:
    """Total circuitry response seen in ``band``: TX x RX, and x tag in the side bands."""
    c = circuits["tx"].response(freqs_hz) * circuits[f"rx_{band}"].response(freqs_hz)
    if band != "central":
        c = c * circuits["tag"].response(freqs_hz)
    return c


def band_delay_s(circuits: dict[str, Circuit], band: str) -> float:
    d = circuits["tx"].delay_s + circuits[f"rx_{band}"].delay_s
    return d + (circuits["tag"].delay_s if band != "central" else 0.0)
