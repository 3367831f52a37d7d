"""The receiver's timing start-up: where the window grid starts, the first central reference,
the fine CFO and the sample-clock drift rate (SYSTEM.md section 4, steps 1-2; docs/RECEIVER.md).

:class:`TimingStartup` is the part of :class:`dsp.receiver.Receiver` that places the window grid
at the start of a stream and after a gap.  It reads the receiver's buffer and configuration and
sets its timing model, central CFO and central reference.
"""

from __future__ import annotations

import numpy as np

from dsp.references import ramp
from dsp.timing import coarse_cfo_hz, symbol_timing
from dsp.tracking import TimingModel
from dsp.windows import WindowBlock

BOOT_WINDOWS = 32  # central windows averaged into the first reference (0.33 samples of drift at 10 ppm)
CHECK_WINDOWS = 48  # windows over which the drift is measured at start-up (0.49 samples at 10 ppm)
DRIFT_CHECK_FLOOR = 0.05e-6  # the start-up drift check never tightens below 0.05 ppm (1.5 samples/s)
STARTUP_WINDOWS = 9 + BOOT_WINDOWS + CHECK_WINDOWS + 2  # what timing acquisition needs at start


class TimingStartup:
    """Grid placement, first central reference and drift rate (mixed into the receiver)."""

    def _start_timing(self) -> bool:
        """Place the window grid (at start, or after a gap); False while too few samples wait.

        At start: the carrier offset over +-``cfo_max_ppm`` (whole subcarriers included,
        :func:`dsp.timing.coarse_cfo_hz`), symbol timing on the de-rotated central band, the
        first central reference and the drift rate (:meth:`_bootstrap_central`).  After a gap
        the timing model continues across the lost samples when the symbol timing agrees with
        it (within 3 samples); otherwise (a jump in the sample count) the grid is placed anew.
        """
        n, wf, buf = self.n, self.wf, self._buf
        first = buf.first_index()
        boot = self._ref["central"] is None
        need = STARTUP_WINDOWS if boot else 9
        if buf.windows_available(first) < need:
            return False
        x = buf.block(first, 9).windows(self.c0).reshape(-1)
        cfo = self.cfo_hz["central"]
        if cfo is None:
            cfo = coarse_cfo_hz(x, wf, self.cfg.cfo_max_ppm * 1e-6 * wf.carrier_freq_hz)
        t = np.arange(x.size)
        n_hat, _ = symbol_timing(x * np.exp(-2j * np.pi * cfo * t / self.fs), wf)
        cand = first + (n_hat - self.cfg.timing_guard_samples) % n
        if boot:
            self._next_nom = cand
            self._timing = TimingModel(anchor=cand)
            self.reference_index = cand
            self._bootstrap_central(cand, cfo)
            return True
        tm = self._timing
        x = cand - (round(float(tm.at(cand))) if self.cfg.timing_tracking else 0)
        nom = x + (tm.anchor - x + n // 2) % n - n // 2  # the nominal grid point whose window is near cand
        g = float(tm.at(nom)) if self.cfg.timing_tracking else 0.0
        if abs((nom + g - cand + n / 2) % n - n / 2) <= 3:
            self._next_nom = nom if nom + round(g) >= first else nom + n
        else:  # the sample count jumped: keep the rate, restart the offset on the new grid
            self._timing.move_anchor(cand)
            self._timing.offset = 0.0
            self._next_nom = cand
        return True

    def _bootstrap_central(self, start: int, cfo_coarse: float) -> None:
        """First central reference, fine CFO and drift rate from the windows at ``start``.

        The known symbol (strongest path at the guard) gives per-window samples whose lag
        products refine the CFO.  The drift is then measured over ``CHECK_WINDOWS`` windows
        and compared with the shared-reference prior ``cfo / fc``: the prior is kept when they
        agree within ``drift_check_ppm`` (real radios), else the measurement is used (radios
        whose sample clocks are not tied to their LOs, or an emulation without drift).
        """
        wf, n, c0 = self.wf, self.n, self.c0
        count = BOOT_WINDOWS + CHECK_WINDOWS
        block = self._buf.block(start, count)
        known = np.roll(wf.symbol_time, self.cfg.timing_guard_samples) * ramp(wf, cfo_coarse)
        zz = block.matmul(c0, np.conj(known).astype(np.complex64))
        frac = float(np.angle(np.vdot(zz[:-1], zz[1:]))) * self.fs / (2 * np.pi * n)
        spacing = self.fs / n
        cfo = frac + spacing * round((cfo_coarse - frac) / spacing)
        self.cfo_hz["central"] = cfo
        prior = -cfo / wf.carrier_freq_hz  # g rate: the symbol grid moves by -delta per sample
        rate, self._tied = prior, True
        if self.cfg.timing_tracking:
            got = self._measure_rate(block, zz)
            if got is not None:
                measured, sigma = got
                # the prior stands unless the measurement differs by more than its own noise
                # allows (4 standard errors; at least 0.05 ppm or 1 % of the prior, the
                # measurement's own bias: -0.05 ppm at 10 ppm) or by drift_check_ppm: a clock
                # untied from the LO with a CFO under drift_check_ppm is then caught too
                floor = max(DRIFT_CHECK_FLOOR, 0.01 * abs(prior))
                limit = min(self.cfg.drift_check_ppm * 1e-6, max(4 * sigma, floor))
                if abs(measured - prior) > limit:
                    rate, self._tied = measured, False
        else:
            rate, self._tied = 0.0, False
        self._timing.prior_rate = rate
        f = rate * n * np.arange(BOOT_WINDOWS)
        w = np.conj(zz[:BOOT_WINDOWS]) / np.maximum(np.abs(zz[:BOOT_WINDOWS]), 1e-30)
        sums = block.weighted_sum(c0, 0, BOOT_WINDOWS, w[None, :] * self._basis.powers(f).T)
        self._install("central", self._basis.align(sums, cfo) / BOOT_WINDOWS)

    def _measure_rate(self, block: WindowBlock, zz: np.ndarray) -> tuple[float, float] | None:
        """Drift rate (samples per sample) measured on the first windows, with no prior, and
        its standard error (from the scatter of the residuals about the last fit).

        A reference from the first 8 windows (at most 0.08 samples of drift at 10 ppm), then
        three passes of the delay residual of every window against it, each pass with the
        delays predicted by the previous rate, so that the residuals stay in the estimator's
        linear range (a single pass overestimated 10 ppm by 14 %).
        """
        n, c0, cfo = self.n, self.c0, self.cfo_hz["central"]
        head = 8
        w = np.conj(zz[:head]) / np.maximum(np.abs(zz[:head]), 1e-30)
        ref = block.weighted_sum(c0, 0, head, w) / head
        cols = self._basis.columns(ref, cfo)
        curv = self._basis.curvature(ref, cfo)
        zp = block.matmul(c0, cols)  # [window, P + 1]
        m = np.arange(len(zz), dtype=float) - (head - 1) / 2  # windows from the reference's centre
        rate, sigma = 0.0, np.inf
        for _ in range(3):
            f = np.clip(rate * n * m, -0.5, 0.5)
            e = self._basis.residuals(zp, f, curv)
            good = np.abs(rate * n * m) <= 0.5
            if good.sum() < 8:
                return None
            coef, cov = np.polyfit(m[good], e[good], 1, cov=True)
            rate += float(coef[0]) / n
            sigma = float(np.sqrt(max(cov[0, 0], 0.0))) / n
        return rate, sigma
