"""Windows of input already at the working rate: reshaped views of the input chunks.

A piece of windows is complex64 ``[channel, window, N]`` or, when the input came as a radio
delivers it, int16 I/Q pairs ``[channel, window, N, 2]`` (32767 = 1.0).  The receiver's two
passes over its samples, every window against its delay level's column and the epochs'
weighted sums (:meth:`DirectWindows.dot_levels`, :meth:`DirectWindows.sum_levels`,
:meth:`DirectWindows.dot`), read int16 pieces in place through compiled loops
(:mod:`dsp.pairs_kernel`): half the bytes of complex64, and no conversion pass before them.
The rarer products (acquisition's features, the timing bootstrap) convert the windows they
need to complex64 first.  Either kind of piece gives the same results to float32 rounding.
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np

from dsp.chunks import ChunkList, as_complex64, check_block
from dsp.sc16 import SC16_SCALE

_SPLIT_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _split(table: np.ndarray) -> np.ndarray:
    """``table`` ``[level, N]`` (or one column ``[N]``) in the int16 kernels' split form with the
    sc16 scale folded in, kept while ``table`` is the same array (a band's columns live until its
    next refresh)."""
    from dsp.pairs_kernel import split_columns  # numba: imported on first use

    hit = _SPLIT_CACHE.get(id(table))
    if hit is not None and hit[0] is table:
        return hit[1]
    ab = split_columns(table.reshape(-1, table.shape[-1]), float(SC16_SCALE))
    if len(_SPLIT_CACHE) >= 16:
        _SPLIT_CACHE.pop(next(iter(_SPLIT_CACHE)))
    _SPLIT_CACHE[id(table)] = (table, ab)
    return ab


def _rows(p: np.ndarray, row: int) -> np.ndarray:
    """One channel of a piece as the kernels take it, C-contiguous ``[window, 2 N]``: complex64
    as float32, int16 pairs as int16 (a view: a piece's rows are contiguous, see
    :meth:`dsp.chunks.ChunkList.push`)."""
    x = np.ascontiguousarray(p[row])
    if p.dtype == np.int16:
        return x.reshape(x.shape[0], -1)
    return x.view(np.float32)


class DirectWindows:
    """Windows held as views ``[channel, window, N]`` (or ``[channel, window, N, 2]`` int16) into
    working-rate chunks."""

    def __init__(self, pieces: list[np.ndarray]):
        self.pieces = pieces
        self._first = np.cumsum([0] + [p.shape[1] for p in pieces]).tolist()  # piece -> first window
        self.count = self._first[-1]
        self.pairs = any(p.dtype == np.int16 for p in pieces)  # some windows are int16 pairs

    def matmul(self, row: int, mat: np.ndarray) -> np.ndarray:
        return np.concatenate([as_complex64(p[row]) @ mat for p in self.pieces])

    def weighted_sum(self, row: int, lo: int, hi: int, w: np.ndarray) -> np.ndarray:
        k = bisect_right(self._first, lo) - 1
        if hi <= self._first[k + 1]:  # inside one piece
            a = lo - self._first[k]
            return w @ as_complex64(self.pieces[k][row, a : a + hi - lo])
        acc = np.zeros((*w.shape[:-1], self.pieces[0].shape[2]), np.complex64)
        pos = 0
        for p in self.pieces:
            a, b = max(lo - pos, 0), min(hi - pos, p.shape[1])
            if a < b:
                acc += w[..., pos + a - lo : pos + b - lo] @ as_complex64(p[row, a:b])
            pos += p.shape[1]
        return acc

    def windows(self, row: int) -> np.ndarray:
        return np.concatenate([as_complex64(p[row]) for p in self.pieces])

    def dot_levels(self, row: int, table: np.ndarray, lev: np.ndarray, step: int = 1) -> np.ndarray:
        """``windows[row, i * step] @ table[lev[i]]`` for every ``i`` ``[len(range(0, count,
        step))]``: each window against its own column of ``table`` ``[level, N]`` (complex64), one
        compiled call per piece (dsp/level_kernel.py, dsp/pairs_kernel.py)."""
        from dsp.level_kernel import dot_levels  # numba: imported on first use
        from dsp.pairs_kernel import dot_levels_pairs

        out = np.empty(len(range(0, self.count, step)), np.complex64)
        tab = np.ascontiguousarray(table, np.complex64)
        res = out.view(np.float32).reshape(-1, 2)
        for p, f0, f1 in zip(self.pieces, self._first, self._first[1:], strict=False):
            i0, i1 = -(-f0 // step), -(-f1 // step)
            if i0 < i1:
                x, first = _rows(p, row), i0 * step - f0
                if p.dtype == np.int16:
                    dot_levels_pairs(x, first, step, _split(table), lev[i0:i1], res[i0:i1])
                else:
                    dot_levels(x, first, step, tab.view(np.float32), lev[i0:i1], res[i0:i1])
        return out

    def project_levels(
        self,
        row: int,
        table: np.ndarray,
        lev: np.ndarray,
        probe: np.ndarray,
        probe_step: int,
        slope: np.ndarray | None = None,
        slope_step: int = 0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Int16 windows only: in one pass per piece, ``z[m] = windows[row, m] @ table[lev[m]]``
        ``[count]``, the probe column's products on every ``probe_step``-th window
        ``[ceil(count / probe_step)]`` and (given ``slope`` ``[level, N]``) the slope columns' on
        every ``slope_step``-th ``[ceil(count / slope_step)]``, as :meth:`dot_levels` and
        :meth:`dot` would give them (dsp/pairs_kernel.py ``project_pairs``)."""
        from dsp.pairs_kernel import project_pairs

        if not all(p.dtype == np.int16 for p in self.pieces):
            raise TypeError("project_levels reads int16 pieces only")
        c = self.count
        z = np.empty(c, np.complex64)
        zp = np.empty(-(-c // probe_step), np.complex64)
        zs = np.empty(-(-c // slope_step) if slope is not None else 0, np.complex64)
        ab, pab = _split(table), _split(probe)
        sab = _split(slope) if slope is not None else pab
        f32 = [a.view(np.float32).reshape(-1, 2) for a in (z, zp, zs)]
        for p, f0, f1 in zip(self.pieces, self._first, self._first[1:], strict=False):
            project_pairs(
                _rows(p, row), f0, ab, lev[f0:f1], f32[0][f0:f1],
                pab, probe_step, f32[1], sab, slope_step if slope is not None else 0, f32[2],
            )  # fmt: skip
        return z, zp, zs if slope is not None else None

    def sum_levels(self, row: int, lo: int, hi: int, w: np.ndarray, lev: np.ndarray, acc: np.ndarray) -> None:
        """``acc[lev[m - lo]] += w[m - lo] windows[row, m]`` for windows ``lo..hi``: ``w``, ``lev``
        ``[hi - lo]``, ``acc`` ``[level, N]`` complex64 (C-contiguous), one compiled call per piece."""
        from dsp.level_kernel import sum_levels  # numba: imported on first use
        from dsp.pairs_kernel import sum_levels_pairs

        w = np.asarray(w)
        wf = np.ascontiguousarray(w, np.complex64).view(np.float32).reshape(-1, 2)
        ws = (w * SC16_SCALE).astype(np.complex64).view(np.float32).reshape(-1, 2) if self.pairs else None
        accf = acc.view(np.float32)
        for p, f0, f1 in zip(self.pieces, self._first, self._first[1:], strict=False):
            a, b = max(lo, f0), min(hi, f1)
            if a < b:
                x = _rows(p, row)[a - f0 : b - f0]
                if p.dtype == np.int16:
                    sum_levels_pairs(x, ws[a - lo : b - lo], lev[a - lo : b - lo], accf)
                else:
                    sum_levels(x, wf[a - lo : b - lo], lev[a - lo : b - lo], accf)

    def dot(self, row: int, a: int, b: int, vec: np.ndarray, step: int = 1) -> np.ndarray:
        """``windows[row, a:b:step] @ vec`` for ``vec`` ``[N]``: ``[len(range(a, b, step))]``,
        one matrix-vector product per piece (memory speed, no copy; a compiled loop for int16
        pairs).  Called once per run of windows at one delay level, so the common case (one
        complex64 piece) is kept short."""
        k = bisect_right(self._first, a) - 1
        first = self._first
        if b <= first[k + 1] and not self.pairs:  # inside one piece
            return self.pieces[k][row, a - first[k] : b - first[k] : step] @ vec
        out = np.empty(len(range(a, b, step)), np.complex64)
        i, m = 0, a
        while m < b:
            lo, hi = m - first[k], min(b, first[k + 1]) - first[k]
            part = self._piece_dot(self.pieces[k], row, lo, hi, step, vec)
            out[i : i + part.size] = part
            i += part.size
            m += part.size * step
            while k + 1 < len(self.pieces) and m >= first[k + 1]:
                k += 1
        return out

    @staticmethod
    def _piece_dot(p: np.ndarray, row: int, lo: int, hi: int, step: int, vec: np.ndarray) -> np.ndarray:
        if p.dtype != np.int16:
            return p[row, lo:hi:step] @ vec
        from dsp.pairs_kernel import dot_levels_pairs, split_columns

        count = len(range(lo, hi, step))
        out = np.empty(count, np.complex64)
        ab = split_columns(vec.reshape(1, -1), float(SC16_SCALE))  # one column: split, not cached
        res = out.view(np.float32).reshape(-1, 2)
        dot_levels_pairs(_rows(p, row), lo, step, ab, np.zeros(count, np.int64), res)
        return out


class DirectBuffer:
    """Input already at the working rate: windows are reshaped views of the chunks."""

    def __init__(self, fft_size: int):
        self.n = fft_size
        self._q = ChunkList()

    def push(self, iq: np.ndarray) -> None:
        """Keep ``iq``: complex ``[channel, sample]`` or int16 pairs ``[channel, sample, 2]``."""
        self._q.push(iq)

    def gap(self, lost: int) -> int:
        """Drop what is pending plus ``lost`` input samples; return the loss in working samples."""
        self._q.skip(lost)
        return lost

    def first_index(self) -> int:
        """Working-rate index of the first window start available."""
        return self._q.index

    def windows_available(self, start: int) -> int:
        return max(0, (self._q.end - start) // self.n)

    def block(self, start: int, count: int) -> DirectWindows:
        """``count`` windows from working index ``start``; views except where one straddles chunks."""
        check_block(start, count, self.first_index(), self.windows_available(start))
        n, q = self.n, self._q
        pieces, pos, m = [], q.index, 0
        for c in q.chunks:
            if m == count:
                break
            off = start + m * n - pos  # position of the next window inside this chunk
            if off >= c.shape[1]:
                pos += c.shape[1]
                continue
            k = min((c.shape[1] - off) // n, count - m)
            if k > 0:
                pieces.append(c[:, off : off + k * n].reshape(c.shape[0], k, n, *c.shape[2:]))
                m += k
            if m < count and off + k * n < c.shape[1]:  # a straddling window: copy it
                a = start + m * n
                pieces.append(q.take(a, a + n)[:, None])
                m += 1
            pos += c.shape[1]
        return DirectWindows(pieces)

    def drop_before(self, start: int) -> None:
        self._q.drop_before(start)
