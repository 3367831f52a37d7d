"""Periodic illumination under a sample-clock offset: a per-subcarrier delay that grows with time.

A node derives its LO and its sample clock from one reference (SYSTEM.md section 3), so a
relative TX-RX offset ``delta`` stretches the illumination in RX samples.  A band's
received waveform, periodic with spectrum ``S_k`` at baseband ``f_k``, is seen at RX time
``t`` as ``s(t (1 + delta) - tau0) = s(t - d(t))`` with the delay ``d(t) = tau0 - delta t``:
a delay that shrinks by ``delta * rate`` samples per second (31 samples/s per ppm at
30.72 MS/s), i.e. the phase ramp ``exp(-j 2 pi f_k d(t))`` on every subcarrier.

Exact and fast, per run of ``R`` periods centred on ``t_c``: with ``d_c = d(t_c)`` and
``e = delta (t - t_c)``,

    s(t - d_c + e) = w_0(t) + e w_1(t) + e^2/2 w_2(t) + r(t),
    w_p = IFFT((j 2 pi f_k)^p S_k exp(-j 2 pi f_k d_c)),

whose remainder per subcarrier is ``abs(r_k) <= x^3 / 6`` with ``x = 2 pi abs(f_k e)``.
The run length is the longest whose RMS remainder, ``x_max^3 / 42`` (derived in
``max_run_periods``), stays within ``TAYLOR_TOL`` = 1e-5 relative: a tenth of the 1e-4 the
tests demand, an error power of -100 dB, 20 dB below the emulator's highest SNR.
Splitting ``e = E_m + eps_i`` (period ``m`` of the run, sample ``i`` in the period) makes
each run three fixed waveforms ``A = w0 + eps w1 + eps^2/2 w2``, ``B = w1 + eps w2``,
``C = w2 / 2`` and each period of it ``A + E_m B + E_m^2 C``: one small matrix product per
run.  Every run depends only on absolute time: any block is reproducible
on its own and continuous with its neighbours.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.fft

from sdr.emulator.drift_kernel import combine_runs, fill_spectra

TAYLOR_TOL = 1e-5


class RunPlan(NamedTuple):
    """The Taylor runs of one stretch of periods (``DriftingPeriodic.plan``)."""

    w: np.ndarray  # complex64 [run, 3, sample]: each run's w_p, normalised by (2 pi f_ref)^p
    eps: np.ndarray  # float32 [sample]: x of each sample from its period's centre
    big: np.ndarray  # float32 [period of run]: x of each period's centre from its run's centre

    @property
    def rows_per_run(self) -> int:
        return len(self.big)


class DriftingPeriodic:
    """One band's periodic waveform sampled by a drifting clock.

    ``spectrum`` ``[subcarrier]`` (complex) sits on FFT ``bins`` ``[subcarrier]`` of a
    ``period``-sample grid at ``rate_hz``, at baseband ``freqs_hz`` ``[subcarrier]``,
    normalised so that one period is ``IFFT(grid) * gain`` (``gain`` given).  ``delay0_s``
    is ``tau0``, ``clock_ppm`` is ``delta``.  Sample ``n`` (continuous, at ``rate_hz``) is
    ``s(n / rate_hz * (1 + delta) - tau0)``; every period of the grid holds an integer
    number of cycles of every subcarrier (a requirement checked here).
    """

    def __init__(
        self,
        spectrum: np.ndarray,
        bins: np.ndarray,
        freqs_hz: np.ndarray,
        period: int,
        rate_hz: float,
        gain: float,
        delay0_s: float,
        clock_ppm: float,
    ):
        cycles = freqs_hz * period / rate_hz
        if not np.allclose(cycles, np.round(cycles), atol=1e-6) or np.any(np.mod(cycles, period) != bins):
            raise ValueError("DriftingPeriodic: every subcarrier must sit on its bin of the period grid")
        self.spectrum, self.bins, self.freqs_hz = np.asarray(spectrum, complex), bins, freqs_hz
        self.period, self.rate_hz, self.gain = period, rate_hz, gain
        self.delay0_s, self.delta = delay0_s, clock_ppm * 1e-6
        self.f_ref_hz = float(np.max(np.abs(freqs_hz)))
        # exp(-j 2 pi f_k d) = exp(-j 2 pi cyc_k * (d rate / period)): cyc_k integers, exact mod 1
        self._cycles = np.round(cycles).astype(np.int64)
        self._bins = np.asarray(bins, np.int64)
        deriv = (1j * freqs_hz / self.f_ref_hz) ** np.arange(3)[:, None]  # [term, k]
        self._dspec = self.spectrum * gain * deriv  # [term, k]
        grid = np.zeros(period, complex)  # without drift: one period, in double precision
        cyc0 = np.mod(delay0_s * rate_hz / period * self._cycles, 1.0)
        grid[bins] = self._dspec[0] * np.exp(-2j * np.pi * cyc0)
        self._w0 = scipy.fft.ifft(grid)

    def max_run_periods(self) -> int:
        """Longest run (periods) whose Taylor remainder stays within ``TAYLOR_TOL`` (RMS)."""
        if self.delta == 0:
            return 1 << 30
        # remainder of subcarrier k: (x_k)^3 / 6 with x_k = 2 pi f_k e; over a run e is uniform in
        # [-e_max, e_max] and f_k uniform in [-f_ref, f_ref], so E[x_k^6] = x_max^6 / 7 / 7 and
        # the RMS relative error is x_max^3 / 42 (subcarriers of equal power, independent phases)
        x_max = (42 * TAYLOR_TOL) ** (1 / 3)
        half_s = x_max / (2 * np.pi * self.f_ref_hz * abs(self.delta))  # max |t - t_c|
        return max(1, int(2 * half_s * self.rate_hz / self.period))

    def _waveforms(self, delay_s: np.ndarray, terms: int) -> np.ndarray:
        """``[run, term, sample]`` complex64: ``w_p`` normalised by ``(2 pi f_ref)^p``.

        ``delay_s`` ``[run]`` must be evenly spaced (the runs of one block): the first run's
        ramp is computed from its absolute delay, the others by a product with the step.
        """
        per = self.rate_hz / self.period  # exp(-j 2 pi f_k d) = exp(-j 2 pi cyc_k (d per mod 1))
        frac0 = np.mod(delay_s[0] * per, 1.0)
        step = np.mod((delay_s[1] - delay_s[0]) * per, 1.0) if len(delay_s) > 1 else 0.0
        ramp0 = np.exp(-2j * np.pi * np.mod(frac0 * self._cycles, 1.0))
        ramp_step = np.exp(-2j * np.pi * np.mod(step * self._cycles, 1.0))
        grid = np.zeros((len(delay_s), terms, self.period), np.complex64)
        # run k's spectra: dspec * ramp0 * ramp_step**k, the ramp a running product
        fill_spectra(self._dspec[:terms], ramp0, ramp_step, self._bins, grid)
        return scipy.fft.ifft(grid, axis=-1, workers=1, overwrite_x=True)

    def plan(self, first_period: int, n_rows: int) -> RunPlan | None:
        """The Taylor runs of ``n_rows`` periods from ``first_period`` (``None`` without drift):
        each run's waveforms, computed once for any rows of them to be rendered."""
        if self.delta == 0:
            return None
        n = self.period
        r = min(self.max_run_periods(), n_rows)
        n_runs = -(-n_rows // r)
        start = first_period + np.arange(n_runs) * r  # first period of each run
        t_c = (start + r / 2) * n / self.rate_hz  # [run] centre time
        w = self._waveforms(self.delay0_s - self.delta * t_c, 3)  # [run, 3, sample]
        scale = 2 * np.pi * self.f_ref_hz * self.delta / self.rate_hz  # x per sample
        eps = (scale * (np.arange(n) - n / 2)).astype(np.float32)  # [sample]
        big = (scale * (np.arange(r) * n + n / 2 - r * n / 2)).astype(np.float32)  # [period of run]
        return RunPlan(w, eps, big)

    def render_rows(
        self, plan: RunPlan | None, m0: int, row_gain: np.ndarray, col_gain: np.ndarray, out: np.ndarray
    ) -> np.ndarray:
        """Periods ``m0 .. m0 + len(out)`` of a ``plan``: ``out[m - m0, i] = row_gain[m] *
        col_gain[i] * s(sample (first_period + m) * period + i)``.

        ``row_gain`` ``[period]`` (all the plan's periods), ``col_gain`` ``[sample]``; ``out``
        ``[period, sample]`` complex64, C-contiguous, filled and returned.
        """
        if plan is None:
            np.multiply(row_gain[m0 : m0 + len(out), None], (self._w0 * col_gain)[None, :], out=out)
            return out
        rows = np.asarray(row_gain, np.complex64)
        cols = np.asarray(col_gain, np.complex64)
        combine_runs(plan.w, cols, plan.eps, plan.big, rows, m0, out.view(np.float32))  # drift_kernel.py
        return out

    def render(
        self, first_period: int, row_gain: np.ndarray, col_gain: np.ndarray, out: np.ndarray
    ) -> np.ndarray:
        """``out[m, i] = row_gain[m] * col_gain[i] * s(sample (first_period + m) * period + i)``.

        ``row_gain`` ``[period]``, ``col_gain`` ``[sample]`` (length ``period``); ``out``
        ``[period, sample]`` complex64, C-contiguous, filled and returned.
        """
        return self.render_rows(self.plan(first_period, len(out)), 0, row_gain, col_gain, out)

    def direct(self, samples: np.ndarray) -> np.ndarray:
        """Reference: ``s`` at continuous ``samples`` ``[sample]`` by direct summation (slow)."""
        t = np.asarray(samples, np.float64) / self.rate_hz
        u = t * (1 + self.delta) - self.delay0_s
        arg = np.mod(np.outer(u * self.rate_hz / self.period, self._cycles), 1.0)
        return (np.exp(2j * np.pi * arg) @ self.spectrum) * self.gain / self.period
