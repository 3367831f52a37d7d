"""Is the calibration still valid?  A watch on the direct path's calibrated channel.

A calibration divides out the RX channels' circuitry as it was when it was measured.  After
a retune the X410 gives each channel a new random phase (harmless to single-band ranging: a
constant phase), but a changed DSP pipeline or filter state moves a channel's timing or
response, and every range then carries the change as a bias.  In a lab the TX-RX geometry
is static, so the calibrated central-band CFR is too: this watch keeps the first epochs'
CFR as the baseline and measures each later epoch against it, after removing a constant
phase (which a retune is allowed to change):

* ``delay_change_s``: the slope of the phase of ``H_now / H_base`` over frequency (weighted
  least squares), i.e. how far the direct path moved;
* ``residual_deg``: the RMS phase left around that line (the response changed shape).

The calibration is reported stale when the delay moved by more than ``delay_limit_s``
(default 1 ns, 30 cm of range) or the shape by more than ``residual_limit_deg`` (default 3
degrees, the emulated circuitry's whole ripple).  Both limits sit far above the noise of an
epoch at the direct path's SNR (1500 symbols at 30 dB give a delay error of picoseconds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsp.waveform import WaveformConfig


@dataclass
class StaleReport:
    delay_change_s: float
    residual_deg: float
    stale: bool


class StaleWatch:
    """Feed each epoch's calibrated central CFR ``[subcarrier]``; read :attr:`report`."""

    def __init__(
        self,
        wf: WaveformConfig,
        baseline_epochs: int = 3,
        delay_limit_s: float = 1e-9,
        residual_limit_deg: float = 3.0,
    ):
        self.freqs_hz = wf.active_freqs_hz
        self.baseline_epochs = baseline_epochs
        self.delay_limit_s = delay_limit_s
        self.residual_limit_deg = residual_limit_deg
        self._base: np.ndarray | None = None
        self._count = 0
        self.report: StaleReport | None = None
        self.first_stale_s: float | None = None

    def update(self, cfr: np.ndarray, time_s: float) -> StaleReport | None:
        if self._count < self.baseline_epochs:  # baseline: phase-aligned average of the first epochs
            c = np.asarray(cfr, complex)
            if self._base is not None:
                c = c * np.exp(-1j * np.angle(np.vdot(self._base, c)))
                self._base = self._base + c
            else:
                self._base = c
            self._count += 1
            return None
        ratio = np.asarray(cfr, complex) * np.conj(self._base)
        w = np.abs(ratio)
        # the slope from adjacent-subcarrier products: no unwrapping, any delay below 1 / (2 df)
        df = np.diff(self.freqs_hz)
        step = df == df.min()  # skip the DC hole
        lag = np.sum((ratio[1:] * np.conj(ratio[:-1]))[step])
        delay = -float(np.angle(lag)) / (2 * np.pi * df.min())
        for _ in range(2):  # then a weighted least-squares line through the small residual phase
            line = ratio * np.exp(2j * np.pi * self.freqs_hz * delay)
            line = line * np.exp(-1j * np.angle(np.sum(line)))  # a constant phase is allowed
            phase = np.angle(line)
            f = self.freqs_hz - np.average(self.freqs_hz, weights=w)
            delay -= float(np.sum(w * f * phase) / max(np.sum(w * f * f), 1e-30)) / (2 * np.pi)
        line = ratio * np.exp(2j * np.pi * self.freqs_hz * delay)
        line = line * np.exp(-1j * np.angle(np.sum(line)))
        rms_deg = float(np.degrees(np.sqrt(np.average(np.angle(line) ** 2, weights=w))))
        stale = abs(delay) > self.delay_limit_s or rms_deg > self.residual_limit_deg
        self.report = StaleReport(delay, rms_deg, stale)
        if stale and self.first_stale_s is None:
            self.first_stale_s = float(time_s)
        return self.report
