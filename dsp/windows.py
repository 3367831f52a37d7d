"""OFDM windows on the working-rate grid, read from input at the working or at the capture rate.

The receiver only ever applies *linear* maps to its ``N``-sample windows: products
with ``[N, c]`` matrices (projections, acquisition features) and weighted sums
over windows (channel estimates).  So a capture at another rate never has to be
resampled as a whole.  Working-rate sample ``n`` of window ``m`` is a short
kernel sum over the capture-rate samples around position ``(s_m + n) D / U``
(``U/D`` = ``WaveformConfig.resample_ratio``), ``y_m = R_m x``.  Instead of
forming ``y_m``, each map is pulled back to the capture rate once
(``x @ (R_m.T @ mat)``, ``R_m.T (sum_m w_m x_m)``).  ``R_m`` depends only on the
fractional part of the window's capture-rate position, which repeats every
``g`` windows (``g = U / gcd(U, N)``; 3 for 62.5 MS/s, where 6250 capture
samples hold exactly 3 symbols), so windows of one phase are rows of a strided
view and every product is one BLAS call.

The kernel is a Kaiser-windowed sinc with its cut-off at the working rate's
Nyquist frequency (``half_span`` capture samples either side, beta 8): flat to
within 1e-3 over the active subcarriers and the guard probe, zero phase, so
delays are preserved exactly.

Buffers take chunks ``[channel, sample]`` of any size and hand out
:class:`WindowBlock` objects; a block never depends on how the input was chunked.  Input at
the working rate needs none of this: :mod:`dsp.direct_windows` (views of the chunks, which may
be int16 I/Q pairs read in place); the pending chunks of both are :mod:`dsp.chunks`.
"""

from __future__ import annotations

from collections.abc import Callable
from math import gcd
from typing import Protocol

import numpy as np
import scipy.sparse
from numpy.lib.stride_tricks import as_strided

from dsp.chunks import ChunkList, as_complex64, check_block
from dsp.direct_windows import DirectBuffer, DirectWindows


class WindowBlock(Protocol):
    """``count`` consecutive working-rate windows ``[channel, window, N]`` (possibly implicit)."""

    count: int

    def matmul(self, row: int, mat: np.ndarray) -> np.ndarray:
        """``windows[row] @ mat`` for ``mat`` ``[N, c]`` (or ``[N]``): ``[window, c]`` (or ``[window]``)."""
        ...

    def weighted_sum(self, row: int, lo: int, hi: int, w: np.ndarray) -> np.ndarray:
        """``sum_m w[..., m - lo] windows[row, m]`` over windows ``lo <= m < hi``: ``[..., N]``."""
        ...

    def windows(self, row: int) -> np.ndarray:
        """The windows of one channel, materialised: ``[window, N]``."""
        ...


def join_blocks(parts: list[WindowBlock]) -> WindowBlock:
    """Consecutive blocks as one: working-rate pieces merged into one :class:`DirectWindows`
    (its pieces need not be evenly spaced), others wrapped in a :class:`CompositeWindows`."""
    if len(parts) == 1:
        return parts[0]
    if all(isinstance(p, DirectWindows) for p in parts):
        return DirectWindows([piece for p in parts for piece in p.pieces])
    return CompositeWindows(parts)


# capture samples kept either side of every resampled frame: a window may be read up to this far
# off its nominal frame (a fractional delay of up to 1/2 working sample at 2.03 capture samples
# per working sample, plus rounding: at most 3)
FRAME_MARGIN = 3

KERNEL_OVERSAMPLING = 512  # table points per capture sample: linear interpolation error < 1e-6


def _kernel_shape(t: np.ndarray, ratio: float, half_span: int, beta: float) -> np.ndarray:
    win = np.i0(beta * np.sqrt(np.clip(1 - (t / half_span) ** 2, 0, None))) / np.i0(beta)
    return np.sinc(t / ratio) / ratio * win


class _KernelTable:
    """The kernel ``k(t)`` tabulated once; rows of any fractional phase are looked up.

    Windows re-centred on a drifting clock (dsp/tracking.py) start at every fractional phase of
    the capture grid in turn, so per-phase kernels cannot be cached; evaluating Bessel functions
    for each took 7.6 s of an 18.7 s x410 replay.  The table costs one evaluation; a lookup is
    linear interpolation between points ``1/512`` capture samples apart, whose error is below
    ``h**2/8 max|k''|`` = 1e-6 of the peak (``k`` is band-limited to 1/4 cycle per sample).
    A row's taps sit at ``t = frac + half_span - 1 - j`` (``j`` = 0 .. ``2 half_span - 1``), so
    ``by_phase[m, j]`` holds the table at ``frac = m / 512`` for every tap: a row is two gathers.
    """

    def __init__(self, ratio: float, half_span: int, beta: float):
        over = KERNEL_OVERSAMPLING
        taps = 2 * half_span
        t = (np.arange(over + 1)[:, None] / over) + (half_span - 1 - np.arange(taps))[None, :]
        self.by_phase = _kernel_shape(t, ratio, half_span, beta)  # [over + 1, taps]

    def rows(self, frac: np.ndarray) -> np.ndarray:
        """Kernel taps ``[row, 2 half_span]`` for fractional positions ``frac`` in ``[0, 1)``."""
        x = frac * KERNEL_OVERSAMPLING
        m = np.minimum(np.floor(x).astype(np.int64), KERNEL_OVERSAMPLING - 1)
        w = (x - m)[:, None]
        return self.by_phase[m] * (1 - w) + self.by_phase[m + 1] * w


_TABLES: dict[tuple[float, int, float], _KernelTable] = {}


def fractional_kernel(
    delta: float, n: int, ratio: float, half_span: int, length: int, beta: float = 8.0
) -> scipy.sparse.csr_array:
    """Sparse ``[n, length]`` interpolation matrix: row ``i`` evaluates the band-limited signal at
    capture-rate position ``delta + i * ratio`` of a frame (``ratio`` = capture / working rate).

    Kaiser-windowed sinc, cut-off at the working rate's Nyquist (``0.5 / ratio`` cycles per
    capture sample), support ``|t| < half_span`` (values from a :class:`_KernelTable`).
    """
    pos = delta + ratio * np.arange(n)
    base = np.floor(pos)
    cols = base.astype(np.int64)[:, None] + np.arange(-half_span + 1, half_span + 1)
    key = (ratio, half_span, beta)
    table = _TABLES.get(key)
    if table is None:
        table = _TABLES[key] = _KernelTable(ratio, half_span, beta)
    vals = table.rows(pos - base)
    if cols.min() < 0 or cols.max() >= length:
        raise ValueError(f"kernel support [{cols.min()}, {cols.max()}] leaves a frame of {length} samples")
    indptr = np.arange(0, n * cols.shape[1] + 1, cols.shape[1])  # sorted columns, no duplicates
    # float32 taps (relative error 6e-8, below complex64 data's): a product with complex64
    # stays complex64, where float64 taps cast both operands up to complex128 (1.4x slower pulls)
    vals32 = vals.astype(np.float32).ravel()
    return scipy.sparse.csr_array((vals32, cols.ravel(), indptr), shape=(n, length))


def band_form(kernel: scipy.sparse.csr_array) -> tuple[np.ndarray, np.ndarray]:
    """A :func:`fractional_kernel` matrix ``[N, length]`` as ``(vals [N, taps], first column
    [N])``: every row holds ``taps`` consecutive columns (for dsp/frames_kernel.py's banded
    products, 10x scipy's sparse ones here)."""
    n = kernel.shape[0]
    taps = int(kernel.indptr[1] - kernel.indptr[0])
    if np.any(np.diff(kernel.indptr) != taps):  # before the reshape, which would fail on its own
        raise ValueError("kernel rows must each hold the same number of consecutive columns")
    cols = kernel.indices.reshape(n, taps)
    if np.any(np.diff(cols, axis=1) != 1):
        raise ValueError("kernel rows must each hold the same number of consecutive columns")
    return np.ascontiguousarray(kernel.data.reshape(n, taps), np.float32), cols[:, 0].astype(np.int64)


class _Kernel:
    """One phase's interpolation matrix ``[N, length]`` and its pulled-back projections."""

    def __init__(self, matrix: scipy.sparse.csr_array):
        self.matrix = matrix
        self._band: tuple[np.ndarray, np.ndarray] | None = None
        self._pulled: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def pull(self, mat: np.ndarray) -> np.ndarray:
        """``matrix.T @ mat`` ``[length, c]`` as complex64 (``mat`` ``[N, c]``), cached while
        ``mat`` is the same array: the banded compiled product (dsp/frames_kernel.py)."""
        from dsp.frames_kernel import band_pull_cols  # numba: imported on first use

        hit = self._pulled.get(id(mat))
        if hit is not None and hit[0] is mat:
            return hit[1]
        if self._band is None:
            self._band = band_form(self.matrix)
        vals, base = self._band
        x = np.ascontiguousarray(mat, np.complex64).reshape(mat.shape[0], -1)
        pulled = np.empty((self.matrix.shape[1], x.shape[1]), np.complex64)
        band_pull_cols(vals, base, x.view(np.float32), pulled.view(np.float32))
        pulled = pulled.reshape(self.matrix.shape[1], *mat.shape[1:])
        if len(self._pulled) >= 8:
            self._pulled.pop(next(iter(self._pulled)))
        self._pulled[id(mat)] = (mat, pulled)
        return pulled


class _Run:
    """Windows ``m0 .. m0 + count`` of a block whose frames lie in one array ``buf``: complex64
    ``[channel, sample]`` or int16 pairs ``[channel, sample, 2]``."""

    def __init__(self, m0: int, count: int, buf: np.ndarray, offsets: list[int]):
        self.m0, self.count, self.buf, self.offsets = m0, count, buf, offsets
        self._converted: dict[int, np.ndarray] = {}
        self._nominal: np.ndarray | None = None

    def nominal(self, g: int, period: int) -> np.ndarray:
        """Each window's nominal frame start in ``buf`` (capture samples) ``[count]``: window ``i``
        at ``offsets[i % g] + (i // g) period`` (kept)."""
        if self._nominal is None:
            i = np.arange(self.count)
            self._nominal = np.asarray(self.offsets, np.int64)[i % g] + (i // g) * period
        return self._nominal

    def samples(self, row: int) -> np.ndarray:
        """Channel ``row`` of ``buf`` as complex64 ``[sample]`` (int16 pairs converted once, kept
        for the run's products that BLAS makes: acquisition's features, the bootstrap)."""
        if self.buf.dtype == np.complex64:
            return self.buf[row]
        x = self._converted.get(row)
        if x is None:
            x = self._converted[row] = as_complex64(self.buf[row])
        return x


class ResampledWindows:
    """Working-rate windows defined implicitly on capture-rate samples (see the module docstring).

    The block is cut into runs whose frames lie inside one input chunk (views, no copy);
    a frame straddling two chunks is a run of its own (copied).  In a run, window ``i``
    of phase ``p = i % g`` reads ``buf[:, offsets[p] + (i // g) * period :][:, :length]``
    through the kernel of its phase in the block, ``kernels[(m0 + i) % g]``.  Every run's
    ``buf`` also holds ``FRAME_MARGIN`` samples before and after its frames, so a window may be
    read a few capture samples off its nominal frame (:class:`dsp.kernel_alignment.KernelAlignment`).
    ``residues[p]`` is phase ``p``'s fractional capture position, ``residues[p] / up`` samples
    after its frame's ``half_span``-th sample; the kernels are built on first use.
    """

    def __init__(
        self,
        runs: list[_Run],
        kernel_for: Callable[[int], _Kernel],
        residues: list[int],
        up: int,
        n: int,
        period: int,
        length: int,
    ):
        self.runs, self.residues, self.up = runs, residues, up
        self._kernel_for = kernel_for
        self._kernels: list[_Kernel] | None = None
        self.g, self.period, self.length, self.n = len(residues), period, length, n
        self.count = sum(r.count for r in runs)
        self._views: dict[tuple[int, int], list] | None = None

    @property
    def kernels(self) -> list[_Kernel]:
        """Each phase's interpolation matrix (built when first asked for)."""
        if self._kernels is None:
            self._kernels = [self._kernel_for(r) for r in self.residues]
        return self._kernels

    def _phases(self, run_index: int, row: int) -> list:
        """``(i0, kernel, frames[window, length])`` for each phase of a run, channel ``row``
        (complex64 strided views, made once)."""
        if self._views is None:
            self._views = {}
        key = (run_index, row)
        views = self._views.get(key)
        if views is None:
            run, g = self.runs[run_index], self.g
            views = self._views[key] = [
                (i0, self.kernels[(run.m0 + i0) % g],
                 self.frames_at(run, i0, 0, 0, len(range(i0, run.count, g)), row))
                for i0 in range(min(g, run.count))
            ]  # fmt: skip
        return views

    def frames_at(self, run: _Run, i0: int, shift: int, j0: int, j1: int, row: int) -> np.ndarray:
        """Frames ``[j1 - j0, length]`` (complex64) of channel ``row`` of the run's windows
        ``i0 + g j`` (``j0 <= j < j1``), each read ``shift`` capture samples after its nominal
        frame (``|shift| <= FRAME_MARGIN``): strided views (of the converted samples where the
        run holds int16 pairs)."""
        x = run.samples(row)[run.offsets[i0] + shift + j0 * self.period :]
        step = x.strides[0]
        return as_strided(x, (j1 - j0, self.length), (self.period * step, step), writeable=False)

    def matmul(self, row: int, mat: np.ndarray) -> np.ndarray:
        if mat.ndim == 1:
            return self.matmul(row, mat[:, None])[:, 0]
        out = np.empty((self.count, mat.shape[1]), np.complex64)
        for k, run in enumerate(self.runs):
            part = out[run.m0 : run.m0 + run.count]
            for i0, kernel, frames in self._phases(k, row):
                part[i0 :: self.g] = frames @ kernel.pull(mat)
        return out

    def weighted_sum(self, row: int, lo: int, hi: int, w: np.ndarray) -> np.ndarray:
        lead = w.shape[:-1]
        per_phase = np.zeros((self.g, *lead, self.length), np.complex64)  # frame sums before the kernels
        for k, run in enumerate(self.runs):
            a, b = max(lo, run.m0), min(hi, run.m0 + run.count)
            if a >= b:
                continue
            for i0, _, frames in self._phases(k, row):
                first = a + (run.m0 + i0 - a) % self.g  # first window of this phase at or after a
                if first >= b:
                    continue
                j0, j1 = (first - run.m0) // self.g, (b - 1 - run.m0 - i0) // self.g + 1
                per_phase[(run.m0 + i0) % self.g] += w[..., first - lo : b - lo : self.g] @ frames[j0:j1]
        acc = np.zeros((*lead, self.n), np.complex64)
        for p, kernel in enumerate(self.kernels):
            acc += (kernel.matrix @ per_phase[p].reshape(-1, self.length).T).T.reshape(acc.shape)
        return acc

    def windows(self, row: int) -> np.ndarray:
        out = np.empty((self.count, self.n), np.complex64)
        for k, run in enumerate(self.runs):
            part = out[run.m0 : run.m0 + run.count]
            for i0, kernel, frames in self._phases(k, row):
                part[i0 :: self.g] = (kernel.matrix @ frames.T).T
        return out


class ResamplingBuffer:
    """Input at a capture rate ``D/U`` times the working rate (``U/D`` = ``resample_ratio``)."""

    def __init__(self, fft_size: int, up: int, down: int, half_span: int = 48):
        if up < 1 or down < 1:
            raise ValueError(f"resampling factors must be positive, got {up}/{down}")
        self.n, self.up, self.down, self.half_span = fft_size, up, down, half_span
        self.ratio = down / up
        self.g = up // gcd(up, fft_size)  # windows per exact period of capture samples
        self.period = self.g * fft_size * down // up
        self.length = int(np.ceil((fft_size - 1) * self.ratio)) + 2 * half_span + 2
        self._q = ChunkList()
        self._kernels: dict[int, scipy.sparse.csr_array] = {}

    def push(self, iq: np.ndarray) -> None:
        """Keep ``iq``: complex ``[channel, sample]`` or int16 pairs ``[channel, sample, 2]``
        (read in place by :class:`dsp.kernel_alignment.KernelAlignment`'s compiled loops)."""
        self._q.push(iq)

    def gap(self, lost: int) -> int:
        self._q.skip(lost)
        return round(lost * self.up / self.down)

    def _frame_start(self, start: int) -> int:
        """Capture index of the frame of the window at working index ``start``."""
        return start * self.down // self.up - self.half_span

    def first_index(self) -> int:
        # smallest working index whose frame, margin included, starts at or after the first
        # pending sample
        return -(-(self._q.index + self.half_span + FRAME_MARGIN) * self.up // self.down)

    def windows_available(self, start: int) -> int:
        # window m fits when floor((start + m N) D / U) - P + length + margin <= end
        limit = self._q.end - self.length - FRAME_MARGIN + self.half_span  # highest allowed floor(...)
        top = ((limit + 1) * self.up - 1) // self.down  # highest (start + m N) with floor(...) <= limit
        return max(0, (top - start) // self.n + 1) if top >= start else 0

    def _kernel(self, residue: int) -> _Kernel:
        k = self._kernels.get(residue)
        if k is None:
            if len(self._kernels) > 4 * self.g:
                self._kernels.clear()
            delta = self.half_span + residue / self.up
            k = self._kernels[residue] = _Kernel(
                fractional_kernel(delta, self.n, self.ratio, self.half_span, self.length)
            )
        return k

    def block(self, start: int, count: int) -> ResampledWindows:
        """``count`` windows from working index ``start``: runs of views, copies only across chunks.
        Each run's buffer holds ``FRAME_MARGIN`` samples either side of its frames."""
        check_block(start, count, self.first_index(), self.windows_available(start))
        n, g, mg = self.n, self.g, FRAME_MARGIN
        residues = [(start + p * n) * self.down % self.up for p in range(g)]
        frame = (start + n * np.arange(count, dtype=np.int64)) * self.down // self.up - self.half_span
        # chunk of each frame's first and last sample, margins included
        edges = np.cumsum([0] + [c.shape[1] for c in self._q.chunks]) + self._q.index
        c_first = np.searchsorted(edges, frame - mg, side="right") - 1
        c_last = np.searchsorted(edges, frame + self.length - 1 + mg, side="right") - 1
        runs, m = [], 0
        while m < count:
            c = c_first[m]
            if c_last[m] != c:  # straddles chunks: copy this one frame
                runs.append(_Run(m, 1, self._q.take(frame[m] - mg, frame[m] + self.length + mg), [mg]))
                m += 1
                continue
            e = m
            while e < count and c_first[e] == c and c_last[e] == c:
                e += 1
            base = frame[m] - mg - edges[c]
            buf = self._q.chunks[c][:, base : frame[e - 1] - edges[c] + self.length + mg]
            runs.append(_Run(m, e - m, buf, [int(x - frame[m]) + mg for x in frame[m : min(m + g, e)]]))
            m = e
        return ResampledWindows(runs, self._kernel, residues, self.up, n, self.period, self.length)

    def drop_before(self, start: int) -> None:
        self._q.drop_before(self._frame_start(start) - FRAME_MARGIN)


class CompositeWindows:
    """Consecutive blocks as one block: windows whose starts are not evenly spaced.

    The receiver re-centres its window grid on the drifting symbol boundaries (one sample
    at a time, :mod:`dsp.tracking`), so a segment is a few evenly spaced runs.
    """

    def __init__(self, parts: list[WindowBlock]):
        self.parts = parts
        self.count = sum(p.count for p in parts)

    def matmul(self, row: int, mat: np.ndarray) -> np.ndarray:
        if len(self.parts) == 1:
            return self.parts[0].matmul(row, mat)
        return np.concatenate([p.matmul(row, mat) for p in self.parts])

    def weighted_sum(self, row: int, lo: int, hi: int, w: np.ndarray) -> np.ndarray:
        acc = None
        pos = 0
        for p in self.parts:
            a, b = max(lo, pos), min(hi, pos + p.count)
            if a < b:
                part = p.weighted_sum(row, a - pos, b - pos, w[..., a - lo : b - lo])
                acc = part if acc is None else acc + part
            pos += p.count
        if acc is None:
            raise ValueError(f"no windows in [{lo}, {hi}) of a block of {self.count}")
        return acc

    def windows(self, row: int) -> np.ndarray:
        return np.concatenate([p.windows(row) for p in self.parts])


def make_buffer(fft_size: int, up: int = 1, down: int = 1) -> DirectBuffer | ResamplingBuffer:
    """Working-rate buffer when ``up == down``, else a resampling one."""
    return DirectBuffer(fft_size) if up == down else ResamplingBuffer(fft_size, up, down)
