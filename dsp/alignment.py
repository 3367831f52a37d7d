"""Undoing the windows' fractional delays in projections and window sums: two strategies.

The receiver keeps its windows on the drifting symbol grid to the nearest sample
(dsp/tracking.py); each window ``m`` still holds the reference delayed by a fraction
``f_m`` in ``[-1/2, 1/2]``.  Two places must undo it: the per-window projections (tag
samples, and the central band's timing error) and the weighted window sums of an
epoch.  Both strategies share one interface (``install``, ``project``,
``window_sum``, ``column0``):

* :class:`LevelAlignment` (input at the working rate): ``f`` is quantised to
  ``1/L`` sample.  Each level has its own column, so a projection is one dot
  product per window with its level's column, and an epoch sum one weighted sum
  per level plus one FFT per level used.  Long runs of windows at one level
  (small drift) take one BLAS call each; short ones (a 10 ppm drift changes
  level every 6 windows: 15,000 calls a second) a compiled loop over every window
  (dsp/level_kernel.py, ``SHORT_RUNS``).  (A product with two
  to six columns costs three times one on this machine: OpenBLAS's GEMM path,
  figures in docs/RECEIVER.md; so one column per window, not all levels.)  The
  quantisation error ``|f - f_q| <= 1/(2L)`` costs a projection at most
  ``(w_max / 2L)**2 / 3`` of its power at the band edge (0.2 % for ``L = 16``); the
  timing error is measured against ``f_q`` and the known ``f - f_q`` removed, and
  each level's sum is re-aligned by its windows' mean ``f``, so neither is biased.
  The noise probe and the timing slope are taken on every 8th and 4th window.
* :class:`PolynomialAlignment` (input resampled from the capture rate): the
  pulled-back columns of a resampled block cost a sparse product per column and
  phase, so a column per level would cost more than it saves.  ``exp(+j w f)`` is
  fitted by a polynomial in ``f`` (:class:`dsp.tracking.DelayBasis`): ``P + 1``
  fixed columns and ``P + 1`` weighted sums, whatever the drift.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import scipy.fft

from dsp.phasor import cis32
from dsp.references import cfr_from_symbol, ramp
from dsp.tracking import DelayBasis
from dsp.waveform import WaveformConfig
from dsp.windows import DirectWindows, WindowBlock

# mean windows per run of one level below which a compiled loop over every window
# (dsp/level_kernel.py, about 2x a BLAS call's time per window) beats a BLAS call per run (about
# 8 us of call overhead, 0.2 us a window): the crossover is near 8 / (0.45 - 0.2) = 32 windows
SHORT_RUNS = 32
PROBE_STEP = 8  # noise probe on every 8th window: 60 a segment, enough for a smoothed variance
SLOPE_STEP = 4  # timing slope on every 4th window: the loop averages over a whole segment


@dataclass(frozen=True)
class SumPart:
    """Windows ``a..b`` of one block (channel ``row``), their weights and fractional delays."""

    block: WindowBlock
    row: int
    a: int
    b: int
    w: np.ndarray  # [window] complex weights of windows a..b
    f: np.ndarray  # [window] fractional delays (samples) of windows a..b


def _runs(lev: np.ndarray) -> list[tuple[int, int]] | None:
    """``(a, b)`` index ranges over which ``lev`` is constant, or None when they are shorter
    than ``SHORT_RUNS`` windows on average (the compiled per-window loop is then faster)."""
    cuts = np.flatnonzero(np.diff(lev)) + 1
    if lev.size < SHORT_RUNS * (cuts.size + 1):
        return None
    return list(itertools.pairwise([0, *cuts.tolist(), lev.size]))


@dataclass(frozen=True)
class LevelColumns:
    """One band's columns: ``table`` ``[L + 1, N]`` (the reference delayed by each level),
    ``slope`` ``[L + 1, N]`` (its derivative in ``f``, central band only) and ``probe`` ``[N]``."""

    table: np.ndarray
    slope: np.ndarray | None
    probe: np.ndarray


class LevelAlignment:
    """Fractional delays quantised to ``1 / levels`` sample (see the module docstring)."""

    def __init__(self, wf: WaveformConfig, levels: int):
        if levels < 2 or levels % 2:
            raise ValueError(f"delay levels must be an even number >= 2, got {levels}")
        self.wf = wf
        self.levels = levels
        self.f_levels = np.arange(levels + 1) / levels - 0.5  # [L + 1] samples
        self._w = 2 * np.pi * wf.active_subcarriers / wf.fft_size  # [subcarrier] rad per sample
        self._delay = np.exp(-1j * np.outer(self.f_levels, self._w))  # [L + 1, subcarrier]

    def level(self, f: np.ndarray) -> np.ndarray:
        """Level index ``[window]`` (0 .. L) of fractional delays ``f``."""
        return np.clip(np.rint((np.asarray(f) + 0.5) * self.levels), 0, self.levels).astype(np.int64)

    def install(self, reference: np.ndarray, cfo_hz: float, probe: np.ndarray, slope: bool) -> LevelColumns:
        wf = self.wf
        spec = cfr_from_symbol(wf, reference, cfo_hz) * wf.zadoff_chu  # R[k] on the active bins
        energy = max(float(np.sum(np.abs(spec) ** 2)), 1e-30)
        shifted = spec[None, :] * self._delay  # [L + 1, subcarrier]
        # the columns are complex64: their FFT and scaling in single precision too (relative
        # error ~1e-7, the columns' own rounding), at about half the cost of double
        rm = (np.conj(ramp(wf, cfo_hz)) * (np.sqrt(wf.fft_size) / energy)).astype(np.complex64)

        def columns(active: np.ndarray) -> np.ndarray:
            full = np.zeros((self.levels + 1, wf.fft_size), np.complex64)
            full[:, wf.active_bins] = np.conj(active)
            out = scipy.fft.fft(full, axis=-1, overwrite_x=True)  # conj(ifft(x)) = fft(conj(x)) / N
            out *= rm / wf.fft_size
            return out

        return LevelColumns(
            columns(shifted),
            columns(shifted * (-1j * self._w)[None, :]) if slope else None,
            np.ascontiguousarray(np.conj(probe), np.complex64),
        )

    @staticmethod
    def column0(cols: LevelColumns) -> np.ndarray:
        """The projection column at zero delay, ``[N]``."""
        return cols.table[cols.table.shape[0] // 2]

    def project(
        self, block: WindowBlock, row: int, cols: LevelColumns, f: np.ndarray, curvature: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, float | None]:
        """Tag samples ``[window]``, noise-probe samples ``[window // PROBE_STEP]`` and, given the
        reference's ``curvature``, the mean timing error (samples) left after ``f``."""
        if not isinstance(block, DirectWindows):
            raise TypeError("level alignment needs windows at the working rate (DirectWindows)")
        m = block.count
        lev = self.level(f)
        if block.pairs and all(p.dtype == np.int16 for p in block.pieces):
            return self._project_pairs(block, row, cols, f, lev, curvature)
        z = self._dot(block, row, cols.table, lev, 1)
        probe = block.dot(row, 0, m, cols.probe, PROBE_STEP)
        if curvature is None or cols.slope is None:
            return z, probe, None
        dz = self._dot(block, row, cols.slope, lev[::SLOPE_STEP], SLOPE_STEP)
        return z, probe, self._timing_error(z, dz, f, lev, curvature)

    def _project_pairs(
        self,
        block: DirectWindows,
        row: int,
        cols: LevelColumns,
        f: np.ndarray,
        lev: np.ndarray,
        curvature: float | None,
    ) -> tuple[np.ndarray, np.ndarray, float | None]:
        """:meth:`project` on int16 windows: every product in one pass over them."""
        slope = cols.slope if curvature is not None else None
        z, probe, dz = block.project_levels(row, cols.table, lev, cols.probe, PROBE_STEP, slope, SLOPE_STEP)
        if dz is None:
            return z, probe, None
        return z, probe, self._timing_error(z, dz, f, lev, curvature)

    def _timing_error(
        self, z: np.ndarray, dz: np.ndarray, f: np.ndarray, lev: np.ndarray, curvature: float
    ) -> float:
        """Mean timing error (samples) left after ``f``, from the tag samples ``z`` and the slope
        products ``dz`` of every ``SLOPE_STEP``-th window."""
        s = SLOPE_STEP
        lev_s = lev[::s]
        zs = z[::s].astype(complex)
        power = np.abs(zs) ** 2
        weight = float(power.sum())
        if weight <= 0 or curvature <= 0:
            return 0.0
        measured = float(np.sum((np.conj(zs) * dz).real)) / (curvature * weight)  # vs the levels
        quantised = float(power @ (f[::s] - self.f_levels[lev_s])) / weight  # known part of it
        return measured - quantised

    @staticmethod
    def _dot(block: DirectWindows, row: int, table: np.ndarray, lev: np.ndarray, step: int) -> np.ndarray:
        """``windows[row, i * step] @ table[lev[i]]`` ``[i]``: a BLAS product per run of one
        level, or the compiled loop over every window when the runs are short or the windows
        are int16 pairs (which BLAS cannot read)."""
        runs = None if block.pairs else _runs(lev)  # int16 pairs: always the compiled loop
        if runs is None:
            return block.dot_levels(row, table, lev, step)
        z = np.empty(lev.size, np.complex64)
        for a, b in runs:
            z[a:b] = block.dot(row, a * step, (b - 1) * step + 1, table[lev[a]], step)
        return z

    def window_sum(self, parts: list[SumPart], cfo_hz: float) -> np.ndarray:
        """``sum_m w_m window_m`` with every window aligned to the reference frame, ``[N]``."""
        wf, n_lev = self.wf, self.levels + 1
        acc = np.zeros((n_lev, wf.fft_size), np.complex64)
        mass = np.zeros(n_lev)
        moment = np.zeros(n_lev)
        for p in parts:
            lev = self.level(p.f)
            runs = None if getattr(p.block, "pairs", False) else _runs(lev)
            if runs is None:
                p.block.sum_levels(p.row, p.a, p.b, p.w, lev, acc)
            else:
                w = p.w.astype(np.complex64)  # complex128 weights would cast every window up
                for a, b in runs:
                    acc[lev[a]] += p.block.weighted_sum(p.row, p.a + a, p.a + b, w[a:b])
            aw = np.abs(p.w)
            mass += np.bincount(lev, aw, n_lev)
            moment += np.bincount(lev, aw * p.f, n_lev)
        used = np.flatnonzero(mass > 0)
        if used.size == 0:
            return np.zeros(wf.fft_size, complex)
        f_mean = moment[used] / mass[used]  # each level re-aligned by its windows' mean delay
        rm = ramp(wf, cfo_hz)
        # single precision for the per-level FFTs and phases (the sums are complex64 already)
        spec = scipy.fft.fft(acc[used] * np.conj(rm).astype(np.complex64), axis=-1, overwrite_x=True)
        phase = np.outer(f_mean, self._w).astype(np.float32)
        out = np.zeros(wf.fft_size, complex)
        out[wf.active_bins] = np.sum(cis32(phase) * spec[:, wf.active_bins], axis=0)
        return np.fft.ifft(out) * rm


class PolynomialAlignment:
    """Fractional delays undone by a polynomial in ``f`` (see the module docstring)."""

    def __init__(self, basis: DelayBasis):
        self.basis = basis

    def install(self, reference: np.ndarray, cfo_hz: float, probe: np.ndarray, slope: bool) -> np.ndarray:
        """Columns ``[N, P + 2]``: the polynomial's ``P + 1`` and the noise probe."""
        cols = self.basis.columns(reference, cfo_hz)
        return np.ascontiguousarray(np.column_stack([cols, np.conj(probe)]), np.complex64)

    @staticmethod
    def column0(cols: np.ndarray) -> np.ndarray:
        return cols[:, 0]

    def project(
        self, block: WindowBlock, row: int, cols: np.ndarray, f: np.ndarray, curvature: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, float | None]:
        p1 = self.basis.degree + 1
        zp = block.matmul(row, cols)  # [window, P + 2]: one pass for everything
        z = np.sum(zp[:, :p1] * self.basis.powers(f), axis=1).astype(np.complex64)
        err = None if curvature is None else self.basis.residual(zp[:, :p1], f, curvature)[0]
        return z, zp[:, p1], err

    def window_sum(self, parts: list[SumPart], cfo_hz: float) -> np.ndarray:
        acc = np.zeros((self.basis.degree + 1, self.basis.wf.fft_size), complex)
        for p in parts:
            wp = (p.w[None, :] * self.basis.powers(p.f).T).astype(np.complex64)  # [P + 1, window]
            acc += p.block.weighted_sum(p.row, p.a, p.b, wp)
        return self.basis.align(acc, cfo_hz)
