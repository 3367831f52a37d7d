"""Pending input chunks ``[channel, sample]`` with a continuous sample index.

A chunk is complex64 ``[channel, sample]`` or, as a radio or a ``ci16_le`` capture delivers
it, int16 I/Q pairs ``[channel, sample, 2]`` (32767 = 1.0, :mod:`dsp.sc16`); either is kept as
a view where its layout allows.  Both buffers of :mod:`dsp.windows` hold their input here.
:class:`BufferPool` hands arrays out again once nobody holds them (a capture's int16 chunks
for replay: no page faults on fresh memory per chunk).
"""

from __future__ import annotations

import sys
import threading

import numpy as np

from dsp.sc16 import sc16_to_complex64


def is_pairs(iq: np.ndarray) -> bool:
    """Whether ``iq`` is int16 I/Q pairs ``[..., sample, 2]`` (any byte order)."""
    return iq.dtype.kind == "i" and iq.dtype.itemsize == 2 and iq.ndim >= 2 and iq.shape[-1] == 2


def as_complex64(x: np.ndarray) -> np.ndarray:
    """``x`` as complex64 ``[..., sample]``: itself when complex64, int16 pairs
    ``[..., sample, 2]`` converted (:func:`dsp.sc16.sc16_to_complex64`, one pass when contiguous)."""
    if not is_pairs(x):
        return x if x.dtype == np.complex64 else x.astype(np.complex64)
    if x.flags.c_contiguous and x.ndim > 2:  # one compiled call over all of it
        return sc16_to_complex64(x.reshape(-1, 2)).reshape(x.shape[:-1])
    return sc16_to_complex64(x)


class ChunkList:
    """Pending input chunks ``[channel, sample]`` (complex64) or ``[channel, sample, 2]`` (int16
    pairs), with a continuous index of their first sample."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []
        self.index = 0  # continuous index of chunks[0][:, 0]

    @property
    def n_pending(self) -> int:
        return sum(c.shape[1] for c in self.chunks)

    @property
    def end(self) -> int:
        return self.index + self.n_pending

    def push(self, iq: np.ndarray) -> None:
        """Keep ``iq``: a view when it is complex64 with contiguous rows, or native int16 pairs
        with each channel's samples contiguous; else a copy (complex64 for other dtypes)."""
        if not iq.shape[1]:
            return
        if is_pairs(iq):
            if iq.dtype != np.int16 or iq.strides[2] != 2 or iq.strides[1] != 4:
                iq = np.ascontiguousarray(iq, np.int16)
        elif iq.dtype != np.complex64 or iq.strides[1] != iq.itemsize:
            iq = np.ascontiguousarray(iq, np.complex64)
        self.chunks.append(iq)

    def skip(self, lost: int) -> None:
        """Forget everything pending and ``lost`` samples after it."""
        self.index = self.end + lost
        self.chunks.clear()

    def take(self, a: int, b: int) -> np.ndarray:
        """Continuous samples ``[a, b)`` as one array: a view when they lie in one chunk; int16
        pairs when every chunk they span holds pairs, else complex64."""
        pieces, pos = [], self.index
        for c in self.chunks:
            lo, hi = max(a - pos, 0), min(b - pos, c.shape[1])
            if lo < hi:
                pieces.append(c[:, lo:hi])
            pos += c.shape[1]
        if len(pieces) == 1:
            return pieces[0]
        if len({p.dtype for p in pieces}) > 1:
            pieces = [as_complex64(p) for p in pieces]
        return np.concatenate(pieces, axis=1)

    def drop_before(self, index: int) -> None:
        count = max(0, min(index - self.index, self.n_pending))
        self.index += count
        while count and self.chunks:
            k = self.chunks[0].shape[1]
            if count >= k:
                self.chunks.pop(0)
                count -= k
            else:
                self.chunks[0] = self.chunks[0][:, count:]
                count = 0


def check_block(start: int, count: int, first: int, available: int) -> None:
    """Raise ``ValueError`` unless ``count`` windows from ``start`` lie in the buffer."""
    if start < first or not 0 < count <= available:
        raise ValueError(
            f"cannot take {count} windows from sample {start}: the buffer holds {available} windows "
            f"there and starts at {first}"
        )


class BufferPool:
    """Arrays handed out again once nothing refers to them any more (complex64 unless asked).

    A fresh array per message costs a page fault per 4 KiB page on first touch: converting a
    3 x 262144-sample sc16 message took 1.27 ms into new arrays against 0.85 ms into a reused
    one (median of 50, this machine), a third of the worker's conversion time.  An array is
    free when its CPython reference count is the pool's own (the list, the loop variable and
    ``getrefcount``'s argument): a consumer holding the array or any view of it (the receiver
    keeps views of recent chunks) keeps it out of the pool.  At most ``capacity`` arrays are
    kept (32 default messages: 0.27 s of signal, above the receiver's working set of a packet
    and a segment); beyond that the oldest is forgotten (and freed once its holders let go).
    """

    _FREE_REFS = 3

    def __init__(self, capacity: int = 32):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._arrays: list[np.ndarray] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._arrays)

    def take(self, shape: tuple[int, ...], dtype: np.dtype | type = np.complex64) -> np.ndarray:
        """An array of ``shape`` and ``dtype`` that nobody else holds (reused, else new)."""
        shape, dtype = tuple(shape), np.dtype(dtype)
        with self._lock:
            for a in self._arrays:
                if a.shape == shape and a.dtype == dtype and sys.getrefcount(a) <= self._FREE_REFS:
                    return a
            new = np.empty(shape, dtype)
            self._arrays.append(new)
            if len(self._arrays) > self.capacity:
                del self._arrays[0]
            return new
