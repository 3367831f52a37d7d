"""CW calibration maths (SYSTEM.md section 6): circuitry responses, their group delays, ``d_cal``.

With the tag in CW mode and line-of-sight links of known length, each band's measured CFR is
``H_b[k] = C_b[k] P_b[k] exp(-j 2 pi f_k tau_w)``: the circuitry response ``C_b``, the known
propagation ``P_b`` (TX-RX at ``d_0`` for the central band, TX-tag-RX at ``D`` for the side
bands) and the window offset ``tau_w`` that every band shares (simultaneous sampling).  So
``H_b / P_b`` is the circuitry response up to that shared delay, which cancels in

    d_cal_u = c (gd(C_u) - gd(C_0))      (eq. (77): (t_u - t_0) c - d_cal_u = D - d_0)

The stored response is ``C_b`` with its group delay removed and its mean gain and phase
normalised: dividing a CFR by it removes the ripple without moving the paths, and ``d_cal``
removes the delays.  Arrays: CFRs ``[subcarrier]`` over the active subcarriers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dsp.waveform import SPEED_OF_LIGHT_M_S, WaveformConfig


def propagation(wf: WaveformConfig, length_m: float) -> np.ndarray:
    """Line-of-sight response ``exp(-j 2 pi f_k L / c)`` over the active subcarriers, ``[subcarrier]``."""
    return np.exp(-2j * np.pi * wf.active_freqs_hz * length_m / SPEED_OF_LIGHT_M_S)


def group_delay_s(response: np.ndarray, freqs_hz: np.ndarray) -> float:
    """Least-squares group delay of ``response`` ``[subcarrier]`` (weighted by magnitude).

    A coarse delay from the phase of adjacent-subcarrier products (no unwrapping, robust over a
    DC hole), then a weighted linear fit of the small residual phase.
    """
    df = np.diff(freqs_hz)
    step = float(np.median(df))
    adj = np.abs(df - step) < 1e-6 * step
    lag = np.sum((response[1:] * np.conj(response[:-1]))[adj])
    tau0 = -float(np.angle(lag)) / (2 * np.pi * step)
    resid = response * np.exp(2j * np.pi * freqs_hz * tau0)
    resid = resid * np.exp(-1j * np.angle(np.sum(resid)))
    w = np.abs(resid)
    phase = np.angle(resid)
    f = freqs_hz - np.average(freqs_hz, weights=w)
    slope = float(np.sum(w * f * phase) / max(np.sum(w * f * f), 1e-300))
    return tau0 - slope / (2 * np.pi)


def flatten(response: np.ndarray, freqs_hz: np.ndarray, delay_s: float) -> np.ndarray:
    """``response`` with ``delay_s`` removed and unit mean gain at zero mean phase."""
    r = response * np.exp(2j * np.pi * freqs_hz * delay_s)
    mean = np.mean(r)
    return r / mean if abs(mean) > 0 else r


def ripple(response: np.ndarray) -> tuple[float, float]:
    """RMS phase (degrees) and magnitude (dB) ripple of a flattened response."""
    phase_deg = float(np.degrees(np.sqrt(np.mean(np.angle(response) ** 2))))
    mag_db = 20 * np.log10(np.maximum(np.abs(response), 1e-30))
    return phase_deg, float(np.sqrt(np.mean((mag_db - mag_db.mean()) ** 2)))


@dataclass
class CalibrationAccumulator:
    """Averages per-epoch circuitry responses of each band and tracks their group delay.

    ``add(cfr, snr_db, symbols)`` per ranging epoch (uncalibrated CFRs ``band -> [subcarrier]``).
    """

    wf: WaveformConfig
    tx_rx_distance_m: float
    known_range_m: float
    sums: dict[str, np.ndarray] = field(default_factory=dict)
    delays: dict[str, list[float]] = field(default_factory=dict)
    snrs: dict[str, list[float]] = field(default_factory=dict)
    symbols: int = 0
    epochs: int = 0

    def _known(self, band: str) -> np.ndarray:
        length = self.tx_rx_distance_m if band == "central" else self.known_range_m
        return propagation(self.wf, length)

    def add(self, cfr: dict[str, np.ndarray], snr_db: dict[str, float], symbols: int) -> dict[str, float]:
        """Accumulate one epoch; returns this epoch's group delay per band (seconds)."""
        f = self.wf.active_freqs_hz
        out = {}
        for band, h in cfr.items():
            c = h / self._known(band)
            out[band] = group_delay_s(c, f)
            if band in self.sums:  # align the phase before averaging
                c = c * np.exp(-1j * np.angle(np.vdot(self.sums[band], c)))
                self.sums[band] = self.sums[band] + c
            else:
                self.sums[band] = c.astype(complex)
            self.delays.setdefault(band, []).append(out[band])
            self.snrs.setdefault(band, []).append(float(snr_db.get(band, np.nan)))
        self.symbols += symbols
        self.epochs += 1
        return out

    def result(self) -> dict:
        """Responses (flattened), group delays, ``d_cal_m`` and quality figures so far."""
        if "central" not in self.sums or len(self.sums) < 2:
            raise ValueError("calibration needs epochs with the central band and at least one side band")
        f = self.wf.active_freqs_hz
        response, gd, ripple_deg, ripple_db, gd_std = {}, {}, {}, {}, {}
        for band, s in self.sums.items():
            gd[band] = group_delay_s(s, f)
            response[band] = flatten(s, f, gd[band])
            ripple_deg[band], ripple_db[band] = ripple(response[band])
            gd_std[band] = float(np.std(self.delays[band])) if len(self.delays[band]) > 1 else None
        d_cal = {b: (gd[b] - gd["central"]) * SPEED_OF_LIGHT_M_S for b in gd if b != "central"}
        d_cal_std = {}
        for b in d_cal:
            per_epoch = (np.array(self.delays[b]) - np.array(self.delays["central"])) * SPEED_OF_LIGHT_M_S
            d_cal_std[b] = float(np.std(per_epoch)) if per_epoch.size > 1 else None
        return {
            "response": response,
            "group_delay_s": gd,
            "d_cal_m": d_cal,
            "quality": {
                "epochs": self.epochs,
                "symbols": self.symbols,
                "ripple_deg": ripple_deg,
                "ripple_db": ripple_db,
                "snr_db": {b: float(np.nanmean(v)) for b, v in self.snrs.items()},
                "group_delay_std_s": gd_std,
                "d_cal_std_m": d_cal_std,
            },
        }
