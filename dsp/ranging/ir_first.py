"""IR First (eq. (80)-(83)) and its sub-grid interpolated variant."""

from __future__ import annotations

import numpy as np

from dsp.ranging.base import RangingMethod


def first_peak_index(mag: np.ndarray, threshold: float) -> int:
    """Index of the first local maximum of ``mag`` ``[K]`` above ``threshold * max(mag)``."""
    level = threshold * mag.max()
    prev = np.roll(mag, 1)
    nxt = np.roll(mag, -1)
    peaks = np.flatnonzero((mag >= prev) & (mag > nxt) & (mag >= level))
    return int(peaks[0]) if peaks.size else int(np.argmax(mag))


class IRFirst(RangingMethod):
    """First local peak of ``abs(cir)`` above ``threshold * max``; granularity one grid step."""

    name = "ir_first"

    def first_path_delay_s(self, cfr: np.ndarray, cir: np.ndarray) -> float:
        q = first_peak_index(np.abs(cir), self.params.get("threshold", 0.3))
        return q * self.wf.cir_grid_step_s


class IRFirstInterp(RangingMethod):
    """IR First refined below the grid step.

    The CIR is evaluated directly from the CFR (``h(tau) = sum_k H[k] exp(j 2 pi f_k tau)``)
    on a fine grid of ``oversample`` points per grid step within one step of the first
    peak, then a parabola through the three largest neighbours gives the maximum.
    """

    name = "ir_first_interp"

    def first_path_delay_s(self, cfr: np.ndarray, cir: np.ndarray) -> float:
        wf = self.wf
        q = first_peak_index(np.abs(cir), self.params.get("threshold", 0.3))
        over = int(self.params.get("oversample", 16))
        step = wf.cir_grid_step_s
        taus = (q + np.arange(-over, over + 1) / over) * step
        mag = np.abs(np.exp(2j * np.pi * np.outer(taus, wf.active_freqs_hz)) @ cfr)
        i = int(np.clip(np.argmax(mag), 1, 2 * over - 1))
        y0, y1, y2 = np.log(mag[i - 1 : i + 2] + 1e-300)
        den = y0 - 2 * y1 + y2
        frac = 0.5 * (y0 - y2) / den if den < 0 else 0.0
        return float(taus[i] + np.clip(frac, -1, 1) * step / over)
