"""Fractional delays undone by the resampling kernels: input at a capture rate (``x410-62m5``).

A window of resampled input is never formed: it is ``y_m = R_m x`` with ``R_m`` a sparse
interpolation matrix, and projections are pulled back to the capture rate
(``x @ (R_m.T q)``, dsp/windows.py).  ``R_m`` already evaluates the signal at a fractional
position, so it can read window ``m`` at ``start_m + f_m`` instead of ``start_m``: the window
then holds the reference undelayed and one projection column suffices, where
:class:`dsp.alignment.PolynomialAlignment` needs a degree-4 polynomial's five columns (a
product with five or six columns costs about eight with one here, OpenBLAS's GEMM path).

The read position of window ``m`` in capture samples, counted from its nominal frame, is
``x_m = residue_m / U + f_m D / U``: its phase's fractional part plus the delay.  It is split
into a whole ``shift`` (the frame is read ``shift`` samples later, within ``FRAME_MARGIN``) and a
fraction quantised to ``1/Q`` (``Q`` = ``levels``), so every window is read through one of ``Q``
kernels fixed for the whole stream.  Their pulled-back columns are computed once per reference
(``Q`` sparse products per column, cached on the columns object) instead of per segment, and
a segment is one matrix-vector product per run of windows read alike (same phase, shift and
level), or, when a large drift makes those runs short, one compiled loop over the phase's
windows (dsp/level_kernel.py, as the delay levels do).  The applied delay
``e_m = (shift + level / Q - residue / U) U / D`` is within
``U / (2 Q D)`` working samples of ``f_m`` (half a level of ``1/Q`` capture sample: 1/32.5 for
``Q`` = 8 at 62.5 MS/s), so a projection loses at most ``(w_max U / (2 Q D))**2 / 3`` of its
power at the band edge (0.2 %, the bound of the delay levels at the working rate), and the
known ``f_m - e_m`` is removed from the timing error.  Reading a window ``e_m`` later also
advances its CFO phase by ``2 pi nu e_m / fs``
(about 1e-3 rad): projections and sum weights are counter-rotated by it.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from dsp.alignment import PROBE_STEP, SHORT_RUNS, SLOPE_STEP, LevelAlignment, SumPart
from dsp.phasor import cis
from dsp.references import ramp
from dsp.sc16 import SC16_SCALE
from dsp.waveform import WaveformConfig
from dsp.windows import (
    CompositeWindows,
    ResampledWindows,
    ResamplingBuffer,
    WindowBlock,
    band_form,
    fractional_kernel,
)


@dataclass(frozen=True)
class KernelColumns:
    """One band's working-rate columns (``[N]``: the reference at zero delay, its derivative in
    the delay for the central band, the noise probe), the CFO they were made at, and their
    pulled-back versions ``[length]`` per kernel level, filled on first use."""

    column: np.ndarray
    slope: np.ndarray | None
    probe: np.ndarray
    cfo_hz: float
    pulled: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class _Phase:
    """Windows ``first + g j`` (``j0 <= j < j1``) of one run of a block part: ``e`` ``[j1 - j0]``
    each window's applied delay (samples), ``shift_w`` and ``level_w`` how it is read (int64).
    For BLAS, the windows are cut into groups read alike: group ``k`` is ``cuts[k] <= j <
    cuts[k + 1]``, read ``shift[k]`` samples off its frames through kernel ``level[k]`` (made
    when first asked for: the compiled loops need none of it)."""

    run: object
    i0: int
    first: int
    j0: int
    j1: int
    e: np.ndarray
    shift_w: np.ndarray  # [j1 - j0] every window's shift (int64)
    level_w: np.ndarray  # [j1 - j0] every window's kernel level (int64)

    @functools.cached_property
    def cuts(self) -> list[int]:
        change = (np.diff(self.shift_w) != 0) | (np.diff(self.level_w) != 0)
        return [0, *(np.flatnonzero(change) + 1).tolist(), self.j1 - self.j0]

    @functools.cached_property
    def shift(self) -> list[int]:
        return self.shift_w[self.cuts[:-1]].tolist()

    @functools.cached_property
    def level(self) -> list[int]:
        return self.level_w[self.cuts[:-1]].tolist()

    def short(self) -> bool:
        """Whether its groups are short (a large drift): then a compiled loop over every window
        beats a BLAS call per group (dsp/alignment.py, ``SHORT_RUNS``)."""
        return self.j1 - self.j0 < SHORT_RUNS * (len(self.cuts) - 1)


def _every(m0: int, g: int, step: int) -> tuple[int | None, int]:
    """``(j, stride)``: windows ``m0 + g j`` that are multiples of ``step`` are ``j, j + stride, ...``
    (``(None, 0)`` if none is)."""
    stride = step // math.gcd(g, step)
    for j in range(stride):
        if (m0 + g * j) % step == 0:
            return j, stride
    return None, 0


class KernelAlignment:
    """Windows read at their fractional delays through ``levels`` fixed kernels (module docstring)."""

    def __init__(self, wf: WaveformConfig, buffer: ResamplingBuffer, levels: int = 8):
        if levels < 1:
            raise ValueError(f"kernel levels must be at least 1, got {levels}")
        self.wf, self.levels = wf, levels
        self.ratio = buffer.ratio  # capture samples per working sample
        self._zero = LevelAlignment(wf, 2)  # its middle level is the reference at zero delay
        self._kernels = [
            fractional_kernel(buffer.half_span + k / levels, wf.fft_size, buffer.ratio, buffer.half_span,
                              buffer.length)
            for k in range(levels)
        ]  # fmt: skip
        self._bands = [band_form(k) for k in self._kernels]  # the same, as (taps, first column)

    def install(self, reference: np.ndarray, cfo_hz: float, probe: np.ndarray, slope: bool) -> KernelColumns:
        cols = self._zero.install(reference, cfo_hz, probe, slope)
        return KernelColumns(cols.table[1], None if cols.slope is None else cols.slope[1], cols.probe, cfo_hz)

    @staticmethod
    def column0(cols: KernelColumns) -> np.ndarray:
        return cols.column

    def _pull(self, cols: KernelColumns, name: str, level: int) -> np.ndarray:
        key = (name, level)
        out = cols.pulled.get(key)
        if out is None:
            vec = {"column": cols.column, "slope": cols.slope, "probe": cols.probe}[name]
            from dsp.frames_kernel import band_pull  # numba: imported on first use

            vals, base = self._bands[level]
            out = cols.pulled[key] = np.empty(self._kernels[level].shape[1], np.complex64)
            col = np.ascontiguousarray(vec, np.complex64).view(np.float32)
            band_pull(vals, base, col, out.view(np.float32))
        return out

    def _pull_table(self, cols: KernelColumns, name: str) -> np.ndarray:
        """Every level's pulled-back column stacked, ``[level, length]`` (cached)."""
        key = (name, -1)
        out = cols.pulled.get(key)
        if out is None:
            out = cols.pulled[key] = np.ascontiguousarray(
                [self._pull(cols, name, k) for k in range(self.levels)]
            )
        return out

    @staticmethod
    def _frames(part: ResampledWindows, ph: _Phase, row: int) -> tuple[np.ndarray, int, float] | None:
        """(channel ``row`` of the run as the compiled loops read it, ``[2 sample]``: float32 pairs
        of complex64 or int16 pairs; the capture index of the phase's first nominal frame in it;
        the scale of its values), or None when the channel's samples are not contiguous."""
        buf = ph.run.buf[row]
        start = ph.run.offsets[ph.i0] + ph.j0 * part.period
        if buf.dtype == np.int16 and buf.strides == (4, 2):
            return buf.reshape(-1), start, float(SC16_SCALE)
        if buf.dtype != np.complex64 or buf.strides[0] != buf.itemsize:
            return None
        return buf.view(np.float32), start, 1.0

    def _split(self, cols: KernelColumns, name: str, scale: float) -> np.ndarray:
        """Every level's pulled-back column (the probe: kernel 0's only) split for the compiled
        loops, times ``scale``, ``[level, 2, 2 length]`` (cached)."""
        key = (f"split-{name}", scale)
        out = cols.pulled.get(key)
        if out is None:
            from dsp.pairs_kernel import split_columns

            table = self._pull(cols, name, 0)[None, :] if name == "probe" else self._pull_table(cols, name)
            out = cols.pulled[key] = split_columns(table, scale)
        return out

    def _reading(self, part: ResampledWindows, f: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, ...]:
        """How windows ``lo <= m < hi`` of ``part`` are read (``f`` ``[hi - lo]`` their delays,
        working samples): ``shift`` and kernel ``level`` (int64) and the applied delay ``e``
        (samples), each ``[hi - lo]``."""
        q = self.levels
        m = np.arange(lo, hi)
        base = np.asarray(part.residues)[m % part.g] / part.up  # [window] phase's fractional position
        x = base + np.asarray(f) * self.ratio
        shift = np.floor(x)
        level = np.rint((x - shift) * q)
        carry = level == q
        shift[carry] += 1
        level[carry] = 0
        return shift.astype(np.int64), level.astype(np.int64), (shift + level / q - base) / self.ratio

    @staticmethod
    def _pairs_rows(part: ResampledWindows, row: int) -> list[np.ndarray] | None:
        """Channel ``row`` of every run of ``part`` as int16 ``[2 sample]`` (views), or None
        unless every run holds contiguous int16 pairs (then one compiled call per run)."""
        rows = [r.buf[row] for r in part.runs]
        if all(b.dtype == np.int16 and b.strides == (4, 2) for b in rows):
            return [b.reshape(-1) for b in rows]
        return None

    def _phases(self, part: ResampledWindows, f: np.ndarray, lo: int, hi: int) -> list[_Phase]:
        """How windows ``lo <= m < hi`` of ``part`` are read, phase by phase; ``f`` ``[hi - lo]``
        are their delays (working samples).  The read positions of all of them at once, then a
        strided slice per run and phase."""
        g = part.g
        shift_all, level_all, e_all = self._reading(part, f, lo, hi)
        out = []
        for run in part.runs:
            for i0 in range(min(g, run.count)):
                first = run.m0 + i0
                j0 = max(0, -(-(lo - first) // g))
                j1 = min(len(range(i0, run.count, g)), -(-(hi - first) // g))
                if j0 >= j1:
                    continue
                sl = slice(first + g * j0 - lo, first + g * (j1 - 1) - lo + 1, g)
                out.append(_Phase(run, i0, first, j0, j1, e_all[sl], shift_all[sl], level_all[sl]))
        return out

    @staticmethod
    def _parts(block: WindowBlock) -> list[tuple[ResampledWindows, int]]:
        """``(part, index of its first window in block)`` for a resampled block or a composite."""
        parts = block.parts if isinstance(block, CompositeWindows) else [block]
        if not all(isinstance(p, ResampledWindows) for p in parts):
            raise TypeError("kernel alignment needs resampled windows (input at a capture rate)")
        firsts = np.cumsum([0] + [p.count for p in parts[:-1]]).tolist()
        return list(zip(parts, firsts, strict=True))

    def project(
        self, block: WindowBlock, row: int, cols: KernelColumns, f: np.ndarray, curvature: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, float | None]:
        """Tag samples ``[window]``, noise-probe samples and, given the reference's ``curvature``,
        the mean timing error (samples) left after ``f``.

        The noise probe and the timing slope are taken on every ``PROBE_STEP``-th and
        ``SLOPE_STEP``-th window of the block (as the delay levels do), so how the input was
        chunked changes nothing.
        """
        z = np.empty(block.count, np.complex64)
        e = np.empty(block.count)
        probe = np.zeros(-(-block.count // PROBE_STEP), np.complex64)
        want_slope = curvature is not None and cols.slope is not None
        n_s = -(-block.count // SLOPE_STEP)
        dz = np.zeros(n_s, np.complex64)
        zf, pf, dzf = (a.view(np.float32).reshape(-1, 2) for a in (z, probe, dz))
        for part, first in self._parts(block):
            g = part.g
            rows = self._pairs_rows(part, row)
            if rows is not None:  # int16 pairs: one compiled call per run (dsp/frames_kernel.py)
                from dsp.frames_kernel import project_windows

                shift, level, e[first : first + part.count] = self._reading(
                    part, f[first : first + part.count], 0, part.count
                )
                scale = float(SC16_SCALE)
                tab, ptab = self._split(cols, "column", scale), self._split(cols, "probe", scale)
                stab = self._split(cols, "slope", scale) if want_slope else tab
                for x, run in zip(rows, part.runs, strict=True):
                    a, b = run.m0, run.m0 + run.count
                    pos = run.nominal(g, part.period)
                    project_windows(
                        x, pos, shift[a:b], level[a:b], tab, zf[first + a : first + b],
                        first + a, 1, PROBE_STEP, ptab, pf, SLOPE_STEP if want_slope else 0, stab, dzf,
                    )  # fmt: skip
                continue
            for ph in self._phases(part, f[first : first + part.count], 0, part.count):
                m0 = first + ph.first + g * ph.j0  # block index of the phase's first window
                nj = ph.j1 - ph.j0
                e[m0 : m0 + g * nj : g] = ph.e
                frames = self._frames(part, ph, row)
                if frames is not None and (frames[0].dtype == np.int16 or ph.short()):
                    from dsp.frames_kernel import project_windows

                    x, start, scale = frames
                    tab, ptab = self._split(cols, "column", scale), self._split(cols, "probe", scale)
                    stab = self._split(cols, "slope", scale) if want_slope else tab
                    zph = np.empty(nj, np.complex64)
                    project_windows(
                        x, start + part.period * np.arange(nj), ph.shift_w, ph.level_w, tab,
                        zph.view(np.float32).reshape(-1, 2), m0, g, PROBE_STEP, ptab, pf,
                        SLOPE_STEP if want_slope else 0, stab, dzf,
                    )  # fmt: skip
                    z[m0 : m0 + g * nj : g] = zph
                    continue
                # the slope's windows are every SLOPE_STEP-th of the block, whatever the runs and
                # groups (so chunking changes nothing): j with m0 + g j = 0 mod SLOPE_STEP; the
                # noise probe's every PROBE_STEP-th, at its nominal frame through kernel 0 (it
                # sees only the guard band: no alignment needed)
                js, ss = _every(m0, g, SLOPE_STEP) if want_slope else (None, 0)
                jp, sp = _every(m0, g, PROBE_STEP)
                j_slope = np.arange(js, nj, ss) if js is not None else np.zeros(0, np.int64)
                j_probe = np.arange(jp, nj, sp) if jp is not None else np.zeros(0, np.int64)
                zph, dzs, pzs = self._project_blas(part, ph, row, cols, j_probe, sp, j_slope, ss)
                z[m0 : m0 + g * nj : g] = zph
                dz[(m0 + g * j_slope) // SLOPE_STEP] = dzs
                probe[(m0 + g * j_probe) // PROBE_STEP] = pzs
        if not want_slope:
            z *= cis(-2 * np.pi * cols.cfo_hz * e / self.wf.working_rate_hz).astype(np.complex64)
            return z, probe, None
        zs = z[::SLOPE_STEP].astype(complex)
        res = f[::SLOPE_STEP] - e[::SLOPE_STEP]  # the delay left after each slope window's reading
        z *= cis(-2 * np.pi * cols.cfo_hz * e / self.wf.working_rate_hz).astype(np.complex64)
        power = np.abs(zs) ** 2
        weight = float(power.sum())
        if weight <= 0 or curvature <= 0:
            return z, probe, 0.0
        measured = float(np.sum((np.conj(zs) * dz).real)) / (curvature * weight)  # vs the read delay
        return z, probe, measured - float(power @ res) / weight

    def _project_blas(
        self,
        part: ResampledWindows,
        ph: _Phase,
        row: int,
        cols: KernelColumns,
        j_probe: np.ndarray,
        sp: int,
        j_slope: np.ndarray,
        ss: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A phase's tag samples ``[j]``, slope products ``[j_slope]`` and probe products
        ``[j_probe]`` by one BLAS product per group of windows read alike (long
        groups: small drift)."""
        zph = np.empty(ph.j1 - ph.j0, np.complex64)
        dzs = np.empty(j_slope.size, np.complex64)
        views = {}
        for c, (a, b) in enumerate(itertools.pairwise(ph.cuts)):
            s = ph.shift[c]
            view = views.get(s)
            if view is None:
                view = views[s] = part.frames_at(ph.run, ph.i0, s, ph.j0, ph.j1, row)
            zph[a:b] = view[a:b] @ self._pull(cols, "column", ph.level[c])
            if j_slope.size:
                a_s = a + (int(j_slope[0]) - a) % ss
                if a_s < b:
                    k0 = (a_s - int(j_slope[0])) // ss
                    part_s = view[a_s:b:ss] @ self._pull(cols, "slope", ph.level[c])
                    dzs[k0 : k0 + part_s.size] = part_s
        pzs = np.empty(j_probe.size, np.complex64)
        if j_probe.size:
            nominal = part.frames_at(ph.run, ph.i0, 0, ph.j0 + int(j_probe[0]), ph.j1, row)
            pzs[:] = nominal[::sp] @ self._pull(cols, "probe", 0)
        return zph, dzs, pzs

    def _sum_pairs(
        self,
        part: ResampledWindows,
        first: int,
        p: SumPart,
        lo: int,
        hi: int,
        rows: list[np.ndarray],
        cfo_hz: float,
        acc: np.ndarray,
        mass: np.ndarray,
        moment: np.ndarray,
    ) -> None:
        """Block windows ``lo..hi`` of ``p`` (all in ``part``, which starts at block window
        ``first``) into the per-level sums ``acc``, ``mass`` and ``moment`` (in place), a compiled
        call per run of int16 pairs."""
        from dsp.frames_kernel import sum_windows  # numba: imported on first use

        shift, level, e = self._reading(part, p.f[lo - p.a : hi - p.a], lo - first, hi - first)
        w_in = p.w[lo - p.a : hi - p.a]
        fs = self.wf.working_rate_hz
        w = (w_in * cis(-2 * np.pi * cfo_hz * e / fs) * float(SC16_SCALE)).astype(np.complex64)
        wv = w.view(np.float32).reshape(-1, 2)
        aw = np.abs(w_in)
        mass += np.bincount(level, aw, self.levels)
        moment += np.bincount(level, aw * (p.f[lo - p.a : hi - p.a] - e), self.levels)
        accf = acc.view(np.float32)
        for x, run in zip(rows, part.runs, strict=True):
            a, b = max(lo - first, run.m0), min(hi - first, run.m0 + run.count)
            if a < b:
                k = a - (lo - first)  # index of window a in this call's arrays
                pos = run.nominal(part.g, part.period)[a - run.m0 : b - run.m0]
                sum_windows(x, pos, shift[k : k + b - a], level[k : k + b - a], wv[k : k + b - a], accf)

    def window_sum(self, parts: list[SumPart], cfo_hz: float) -> np.ndarray:
        """``sum_m w_m window_m`` with every window read at its delay, ``[N]``.

        A window read at ``e_m`` still holds the reference delayed by ``r_m = f_m - e_m`` (within
        half a level); like the delay levels, each kernel level's sum is re-aligned by its
        windows' ``|w|``-weighted mean ``r`` (a delay bias of a hundredth of a sample would move
        a range by centimetres), leaving the spread: at most ``(w_max U / (Q D))**2 / 2`` of
        the sum at the band edge.
        """
        wf = self.wf
        acc = np.zeros((self.levels, self._kernels[0].shape[1]), np.complex64)  # [level, length]
        mass = np.zeros(self.levels)
        moment = np.zeros(self.levels)
        fs = wf.working_rate_hz
        for p in parts:
            for part, first in self._parts(p.block):
                lo, hi = max(p.a, first), min(p.b, first + part.count)
                if lo >= hi:
                    continue
                f_part = p.f[lo - p.a : hi - p.a]
                rows = self._pairs_rows(part, p.row)
                if rows is not None:  # int16 pairs: one compiled call per run
                    self._sum_pairs(part, first, p, lo, hi, rows, cfo_hz, acc, mass, moment)
                    continue
                for ph in self._phases(part, f_part, lo - first, hi - first):
                    m0 = first + ph.first + part.g * ph.j0 - p.a  # index in p.w of the phase's first window
                    sl = slice(m0, m0 + part.g * (ph.j1 - ph.j0), part.g)
                    w = (p.w[sl] * cis(-2 * np.pi * cfo_hz * ph.e / fs)).astype(np.complex64)
                    aw, r = np.abs(p.w[sl]), p.f[sl] - ph.e
                    mass += np.bincount(ph.level_w, aw, self.levels)
                    moment += np.bincount(ph.level_w, aw * r, self.levels)
                    frames = self._frames(part, ph, p.row)
                    if frames is not None and (frames[0].dtype == np.int16 or ph.short()):
                        from dsp.frames_kernel import sum_windows  # numba: imported on first use

                        x, start, scale = frames
                        wv = (w * np.float32(scale)).view(np.float32).reshape(-1, 2)
                        pos = start + part.period * np.arange(ph.j1 - ph.j0)
                        sum_windows(x, pos, ph.shift_w, ph.level_w, wv, acc.view(np.float32))
                        continue
                    views = {}
                    for c, (a, b) in enumerate(itertools.pairwise(ph.cuts)):
                        s = ph.shift[c]
                        view = views.get(s)
                        if view is None:
                            view = views[s] = part.frames_at(ph.run, ph.i0, s, ph.j0, ph.j1, p.row)
                        acc[ph.level[c]] += w[a:b] @ view[a:b]
        used = np.flatnonzero(mass > 0)
        if used.size == 0:
            return np.zeros(wf.fft_size, complex)
        from dsp.frames_kernel import band_apply

        sums = np.empty((used.size, wf.fft_size), np.complex64)  # [level, N]: each level's kernel
        for i, lev in enumerate(used):
            band_apply(*self._bands[lev], acc[lev].view(np.float32), sums[i].view(np.float32))
        r_mean = moment[used] / mass[used]
        rm = ramp(wf, cfo_hz)
        spec = np.fft.fft(sums * np.conj(rm)[None, :], axis=-1)[:, wf.active_bins]
        out = np.zeros(wf.fft_size, complex)
        w_k = 2 * np.pi * wf.active_subcarriers / wf.fft_size
        out[wf.active_bins] = np.sum(cis(np.outer(r_mean, w_k)) * spec, axis=0)
        return np.fft.ifft(out) * rm
