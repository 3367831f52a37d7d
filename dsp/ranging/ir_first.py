"""IR First (eq. (80)-(83)) and its sub-grid interpolated variant."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsp.ranging.base import RangingMethod
from dsp.ranging.params import MethodParams, param
from dsp.waveform import WaveformConfig


def first_peak_index(mag: np.ndarray, threshold: float) -> int:
    """Index of the first local maximum of ``mag`` ``[K]`` above ``threshold * max(mag)``."""
    level = threshold * mag.max()
    prev = np.roll(mag, 1)
    nxt = np.roll(mag, -1)
    peaks = np.flatnonzero((mag >= prev) & (mag > nxt) & (mag >= level))
    return int(peaks[0]) if peaks.size else int(np.argmax(mag))


THRESHOLD_DOC = "first peak above this fraction of the CIR maximum (eta, eq. (80)-(83))"


@dataclass(frozen=True)
class IRFirstParams(MethodParams):
    method = "ir_first"
    threshold: float = param(0.3, THRESHOLD_DOC, "(0, 1)")

    def _validate(self) -> None:
        if not 0 < self.threshold < 1:
            self._fail("threshold", "must be in (0, 1)")


@dataclass(frozen=True)
class IRFirstInterpParams(IRFirstParams):
    method = "ir_first_interp"
    oversample: int = param(16, "fine-grid points per CIR grid step around the first peak", "[2, 1024]")

    def _validate(self) -> None:
        super()._validate()
        if not 2 <= self.oversample <= 1024:
            self._fail("oversample", "must be in [2, 1024]")


class IRFirst(RangingMethod):
    """First local peak of ``abs(cir)`` above ``threshold * max``; granularity one grid step."""

    name = "ir_first"
    Params = IRFirstParams
    params: IRFirstParams

    def first_path_delay_s(self, cfr: np.ndarray, cir: np.ndarray) -> float:
        q = first_peak_index(np.abs(cir), self.params.threshold)
        return q * self.wf.cir_grid_step_s


class IRFirstInterp(RangingMethod):
    """IR First refined below the grid step.

    The CIR is evaluated directly from the CFR (``h(tau) = sum_k H[k] exp(j 2 pi f_k tau)``)
    on a fine grid of ``oversample`` points per grid step within one step of the first
    peak, then a parabola through the three largest neighbours gives the maximum.
    """

    name = "ir_first_interp"
    Params = IRFirstInterpParams
    params: IRFirstInterpParams

    def __init__(self, wf: WaveformConfig, params: IRFirstInterpParams | None = None):
        super().__init__(wf, params)
        over = self.params.oversample
        offsets_s = np.arange(-over, over + 1) / over * wf.cir_grid_step_s
        # exp(j 2 pi f (tau_q + o)) = exp(j 2 pi f tau_q) exp(j 2 pi f o): the offsets' factor
        # [2 over + 1, subcarrier] is the same for every peak q, so one row of exponentials per
        # call instead of 2 over + 1 (equal to rounding, ~1e-13 in the phase)
        self._fine = np.exp(2j * np.pi * np.outer(offsets_s, wf.active_freqs_hz))

    def first_path_delay_s(self, cfr: np.ndarray, cir: np.ndarray) -> float:
        wf = self.wf
        q = first_peak_index(np.abs(cir), self.params.threshold)
        over = self.params.oversample
        step = wf.cir_grid_step_s
        taus = (q + np.arange(-over, over + 1) / over) * step
        mag = np.abs(self._fine @ (np.exp(2j * np.pi * (q * step) * wf.active_freqs_hz) * cfr))
        i = int(np.clip(np.argmax(mag), 1, 2 * over - 1))
        y0, y1, y2 = np.log(mag[i - 1 : i + 2] + 1e-300)
        den = y0 - 2 * y1 + y2
        frac = 0.5 * (y0 - y2) / den if den < 0 else 0.0
        return float(taus[i] + np.clip(frac, -1, 1) * step / over)
