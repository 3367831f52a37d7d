"""Read a capture's ``/iq`` into complex64 at memory speed: large slabs, reused buffers, fused conversion.

Fast path (the layout ``CaptureWriter`` makes: ``ci16_le`` chunked ``[channel, chunk, 2]`` over
all channels, with no filter but fletcher32): each HDF5 chunk is read raw
(``H5Dread_chunk``) into one reused buffer, its fletcher32 checksum is verified here with
vectorised numpy (HDF5's own check is byte-serial C and costs more than the read itself), and
the int16 pairs are converted straight from that buffer into the caller's complex64 array.
Anything unusual about a chunk (not allocated, a filter skipped, a size or checksum that does
not match) sends that chunk through the ordinary HDF5 read instead, so errors, fill values and
old-style checksums behave exactly as HDF5 has them.

Any other layout: ``Dataset.read_direct`` in slabs of ``slab_samples`` into one reused int16
buffer, converted block by block (``cf32_le`` reads straight into the output).

``read_pairs`` gives a ``ci16_le`` capture's int16 pairs as stored, by the same paths without
the conversion: the receiver reads them in place (dsp/direct_windows.py).
"""

from __future__ import annotations

import os

import h5py
import numpy as np

from dsp.chunks import BufferPool
from dsp.sc16 import sc16_to_complex64

SLAB_SAMPLES = 1 << 18
"""Samples per channel per ``read_direct`` in the general path."""
_FLETCHER_ROW_WORDS = 4096
_FLETCHER_BLOCK_ROWS = 16384
_FLETCHER_PIECE_WORDS = 1 << 23


def fletcher32(data: np.ndarray) -> int:
    """HDF5's fletcher32 checksum (``H5_checksum_fletcher32``) of ``data`` (uint8, even length).

    HDF5 sums big-endian 16-bit words ``w_j`` (``j = 0..n-1``) with end-around-carry reduction:
    ``s1 = sum w_j``, ``s2 = sum (n - j) w_j``, each mod 65535 and represented in ``1..65535``
    unless all words are zero; the checksum is ``s2 << 16 | s1``.  As ``2**16 = 1 (mod 65535)``,
    a byte-swapped word is 256 times the little-endian word mod 65535, so the sums are taken over
    the native little-endian words as row and column sums of a ``[row, 4096]`` reshape:
    ``sum j v_j = 4096 sum_a a r_a + sum_b b c_b``, both from one compiled pass
    (``captures/fletcher_kernel.py``).
    """
    if data.dtype != np.uint8 or data.ndim != 1 or data.size % 2:
        raise ValueError(f"fletcher32 needs 1-D uint8 of even length, got {data.dtype} {data.shape}")
    return fletcher32_parts([data])


def fletcher32_parts(parts: list[np.ndarray]) -> int:
    """:func:`fletcher32` of the concatenated bytes of ``parts`` (C-contiguous arrays of whole
    16-bit words each, e.g. one channel's int16 pairs of a chunk read straight into the output):
    the sums of each part, its words' positions shifted by the words before it."""
    total = weighted = pos = 0
    for p in parts:
        if not p.flags.c_contiguous or p.nbytes % 2:
            raise ValueError(f"fletcher32 parts must be contiguous whole words, got {p.dtype} {p.shape}")
        v = p.reshape(-1).view("<u2")
        t, w = _word_sums(v)
        total += t
        weighted += w + pos * t
        pos += v.size
    if total == 0:  # only all-zero data sums to zero: HDF5 then keeps 0, not 65535
        return 0
    s1 = (256 * total) % 65535 or 65535
    s2 = (256 * (pos * total - weighted)) % 65535 or 65535
    return (s2 << 16) | s1


def _word_sums(v: np.ndarray) -> tuple[int, int]:
    """``(sum_j v_j, sum_j j v_j)`` of little-endian words ``v`` ``[n]`` (see :func:`fletcher32`):
    compiled sums over pieces of ``_FLETCHER_PIECE_WORDS`` (their int64 sums cannot overflow:
    ``sum j v_j < 2**46 * 65535 / 2 < 2**63``), combined as Python integers."""
    from captures.fletcher_kernel import word_sums  # numba: imported on first use

    v = np.ascontiguousarray(v)
    total = weighted = 0
    for a in range(0, v.size, _FLETCHER_PIECE_WORDS):
        t, w = word_sums(v[a : a + _FLETCHER_PIECE_WORDS], _FLETCHER_ROW_WORDS, _FLETCHER_BLOCK_ROWS)
        total += int(t)
        weighted += int(w) + a * int(t)
    return total, weighted


def _file_descriptor(ds: h5py.Dataset) -> int | None:
    """The operating-system descriptor of the dataset's file (HDF5's default ``sec2`` driver),
    or ``None`` (another driver: only HDF5 reads it)."""
    try:
        fd = ds.file.id.get_vfd_handle()
    except (OSError, RuntimeError, ValueError, TypeError):
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


def _filter_ids(ds: h5py.Dataset) -> list[int]:
    dcpl = ds.id.get_create_plist()
    return [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())]


class SlabReader:
    """Reads samples ``[start, stop)`` of a capture's ``/iq`` into complex64 ``[channel, sample]``.

    ``ds``: the validated ``/iq`` dataset (int16 ``[channel, sample, 2]`` for ``ci16_le``,
    complex64 ``[channel, sample]`` for ``cf32_le``).  Buffers are allocated once and reused;
    the output belongs to the caller.  HDF5 errors propagate as HDF5 raises them (``OSError``
    for a failed checksum or a truncated file).
    """

    def __init__(self, ds: h5py.Dataset, datatype: str, slab_samples: int = SLAB_SAMPLES):
        if slab_samples < 1:
            raise ValueError(f"slab_samples must be positive, got {slab_samples}")
        self.ds, self.datatype, self.slab_samples = ds, datatype, int(slab_samples)
        self.n_channels = int(ds.shape[0])
        self._slab: np.ndarray | None = None
        self.chunk_samples = 0  # > 0: the raw-chunk fast path applies
        self._fd: int | None = None  # the file's descriptor, for reads without the GIL
        self._infos: dict[int, object] | None = None  # stored chunk index -> HDF5 StoreInfo
        self._pool = BufferPool()  # read_pairs' outputs, reused once nobody holds them
        self._checksum = False
        chunks = ds.chunks
        if (
            datatype == "ci16_le"
            and ds.dtype == np.dtype("<i2")
            and chunks is not None
            and chunks[0] == self.n_channels
            and chunks[2] == 2
        ):
            filters = _filter_ids(ds)
            if set(filters) <= {h5py.h5z.FILTER_FLETCHER32} and len(filters) <= 1:
                self.chunk_samples = int(chunks[1])
                self._checksum = bool(filters)
                self._chunk_bytes = self.n_channels * self.chunk_samples * 4
                self._raw = np.empty(self._chunk_bytes + 4 * self._checksum, np.uint8)
                self._fd = _file_descriptor(ds)

    @property
    def fast(self) -> bool:
        """Whether whole HDF5 chunks are read raw and checked here."""
        return self.chunk_samples > 0

    def read(self, start: int, stop: int) -> np.ndarray:
        """A new complex64 ``[channel, stop - start]`` holding samples ``[start, stop)``."""
        out = np.empty((self.n_channels, max(stop - start, 0)), np.complex64)
        return self.read_into(start, stop, out)

    def read_into(self, start: int, stop: int, out: np.ndarray) -> np.ndarray:
        """Fill ``out`` (complex64 ``[channel, stop - start]``) with samples ``[start, stop)``."""
        n = stop - start
        if not 0 <= start <= stop <= self.ds.shape[1]:
            raise ValueError(f"samples {start}..{stop} outside 0..{self.ds.shape[1]}")
        if out.shape != (self.n_channels, n) or out.dtype != np.complex64:
            raise ValueError(f"out must be complex64 {(self.n_channels, n)}, got {out.dtype} {out.shape}")
        if n == 0:
            return out
        if self.datatype == "cf32_le":
            if out.flags.c_contiguous:
                self.ds.read_direct(out, np.s_[:, start:stop], np.s_[:, :])
            else:
                out[...] = self.ds[:, start:stop]
        elif self.fast:
            self._read_chunks(start, stop, out)
        else:
            self._read_slabs(start, stop, out)
        return out

    def read_pairs(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` as stored (``ci16_le`` only), int16 ``[channel, stop - start,
        2]``: what the receiver reads in place, 4 bytes a sample, no conversion.  The array is one
        nobody else holds: new, or one handed out before and let go since (held by reference or
        by a view, never by a raw pointer).  Same checks and fallbacks as :meth:`read_into`."""
        n = stop - start
        if self.datatype != "ci16_le":
            raise ValueError(f"int16 pairs need a ci16_le capture, this one is {self.datatype}")
        if not 0 <= start <= stop <= self.ds.shape[1]:
            raise ValueError(f"samples {start}..{stop} outside 0..{self.ds.shape[1]}")
        # a pooled array nobody holds any more (the receiver keeps views of recent chunks, which
        # keep theirs out): a fresh one per chunk cost a page fault per 4 KiB on first touch
        out = self._pool.take((self.n_channels, n, 2), np.int16)
        if n == 0:
            return out
        c = self.chunk_samples
        if not self.fast:
            self.ds.read_direct(out, np.s_[:, start:stop], np.s_[:, :])
            return out
        for k in range(start // c, (stop - 1) // c + 1):
            lo, hi = max(start, k * c), min(stop, (k + 1) * c)
            if hi - lo == c and self._scatter_chunk(k, list(out[:, lo - start : hi - start])):
                continue  # a whole chunk, read straight into the output
            pairs = self.raw_chunk(k)
            if pairs is None:
                self.ds.read_direct(out, np.s_[:, lo:hi], np.s_[:, lo - start : hi - start])
            else:
                out[:, lo - start : hi - start] = pairs[:, lo - k * c : hi - k * c]
        return out

    def _chunk_info(self, index: int, lookup: bool = True):
        """HDF5's ``StoreInfo`` of stored chunk ``index`` (None if it has none): all chunks'
        listed once by ``H5Dchunk_iter`` (4 us a chunk, where a lookup per chunk took 20-130
        us here), looked up one by one for chunks written since (a growing SWMR file).  Only
        complete chunks are kept: the last one of a growing file may still be rewritten
        elsewhere, and its old bytes would pass their old checksum."""
        c = self.chunk_samples
        complete = self.ds.shape[1] // c  # chunks 0 .. complete - 1 are never written again
        if self._infos is None:
            infos: dict[int, object] = {}

            def keep(si: object) -> None:
                k = si.chunk_offset[1] // c
                if k < complete:
                    infos[k] = si

            try:
                self.ds.id.chunk_iter(keep)
            except (AttributeError, OSError, RuntimeError, ValueError, KeyError):
                pass  # no chunk_iter (older HDF5): one lookup per chunk
            self._infos = infos
        info = self._infos.get(index)
        if info is None and lookup:
            try:
                info = self.ds.id.get_chunk_info_by_coord((0, index * c, 0))
            except (OSError, RuntimeError, ValueError, KeyError):
                return None
            if info.byte_offset is not None and index < complete:
                self._infos[index] = info
        return info

    def _pread_chunk(self, index: int, buffers: list[np.ndarray], lookup: bool = True) -> bool:
        """Stored chunk ``index`` (its bytes, then its checksum) read with one ``preadv`` into
        ``buffers`` (writable, C-contiguous, their sizes summing to the stored size): a chunk
        lands straight in the caller's rows (no copy out of a staging buffer), and the system
        call releases the GIL where h5py's read holds it.  ``False`` (nothing to trust in
        ``buffers``) where the chunk is not stored plainly where HDF5 says or the file has no
        descriptor; the checksum is the caller's to verify."""
        if self._fd is None:
            return False
        info = self._chunk_info(index, lookup)
        if info is None or info.byte_offset is None or info.filter_mask != 0 or info.size != self._raw.size:
            return False
        views = [b.reshape(-1).view(np.uint8) for b in buffers]
        if sum(v.size for v in views) != info.size:
            return False
        try:
            return os.preadv(self._fd, views, info.byte_offset) == info.size
        except OSError:
            return False

    def _scatter_chunk(self, index: int, rows: list[np.ndarray], lookup: bool = True) -> bool:
        """Chunk ``index`` straight into ``rows`` (one int16 ``[chunk_samples, 2]`` contiguous
        array per channel, e.g. the output's): no copy; ``False`` unless read and verified."""
        tail = self._raw[self._chunk_bytes :]  # the stored checksum, when there is one
        if not self._pread_chunk(index, [*rows, tail], lookup):
            return False
        return not self._checksum or fletcher32_parts(rows) == int(tail.view("<u4")[0])

    def index_all_chunks(self) -> bool:
        """List the place of every stored chunk now, the last partial one included, so that
        :meth:`fill_pairs_raw` makes no HDF5 call (``captures/read_ahead.py`` runs it in a
        forked process).  Only for a capture that no longer grows (not opened SWMR): a growing
        file's last chunk may still be rewritten elsewhere.  ``False`` where the raw path does
        not apply (another layout or driver)."""
        if not self.fast or self._fd is None:
            return False
        c = self.chunk_samples
        for k in range(-(-int(self.ds.shape[1]) // c)):
            info = self._chunk_info(k)
            if info is not None and self._infos is not None:
                self._infos[k] = info
        return True

    def fill_pairs_raw(self, start: int, stop: int, out: np.ndarray) -> bool:
        """Samples ``[start, stop)`` into ``out`` (int16 ``[channel, stop - start, 2]``, each
        channel's row contiguous) by raw reads and this module's checksum alone, chunk places
        from :meth:`index_all_chunks`: no HDF5 call, so a forked process may run it.  ``False``
        (``out`` partly written) where any chunk needs HDF5: unlisted, filtered, or failing its
        checksum; :meth:`read_pairs` then decides, and raises what HDF5 raises."""
        c = self.chunk_samples
        if not self.fast or stop <= start:
            return self.fast
        for k in range(start // c, (stop - 1) // c + 1):
            lo, hi = max(start, k * c), min(stop, (k + 1) * c)
            dst = out[:, lo - start : hi - start]
            if hi - lo == c:
                if not self._scatter_chunk(k, list(dst), lookup=False):
                    return False
                continue
            if not self._pread_chunk(k, [self._raw], lookup=False):
                return False
            pairs = self._checked_raw()
            if pairs is None:
                return False
            dst[...] = pairs[:, lo - k * c : hi - k * c]
        return True

    def raw_chunk(self, index: int) -> np.ndarray | None:
        """Chunk ``index`` as int16 ``[channel, chunk_samples, 2]`` (a view of the reused buffer,
        valid until the next call), checksum verified; ``None`` when only HDF5 can read it."""
        if not self._pread_chunk(index, [self._raw]):
            try:
                mask, mv = self.ds.id.read_direct_chunk((0, index * self.chunk_samples, 0), out=self._raw)
            except (OSError, RuntimeError, ValueError, KeyError):
                return None
            if mask != 0 or len(mv) != self._raw.size:
                return None
        return self._checked_raw()

    def _checked_raw(self) -> np.ndarray | None:
        """The chunk in the reused buffer as int16 ``[channel, chunk_samples, 2]``, or ``None``
        if its checksum fails."""
        data = self._raw[: self._chunk_bytes]
        if self._checksum:
            stored = int(self._raw[self._chunk_bytes :].view("<u4")[0])
            if fletcher32(data) != stored:
                return None  # HDF5 decides: a corrupt chunk, or a pre-1.6.3 byte order
        return data.view("<i2").reshape(self.n_channels, self.chunk_samples, 2)

    def _read_chunks(self, start: int, stop: int, out: np.ndarray) -> None:
        c = self.chunk_samples
        for k in range(start // c, (stop - 1) // c + 1):
            lo, hi = max(start, k * c), min(stop, (k + 1) * c)
            pairs = self.raw_chunk(k)
            dst = out[:, lo - start : hi - start]
            if pairs is None:
                self._read_slabs(lo, hi, dst)
            else:
                sc16_to_complex64(pairs[:, lo - k * c : hi - k * c], dst)

    def _read_slabs(self, start: int, stop: int, out: np.ndarray) -> None:
        if self._slab is None:
            self._slab = np.empty((self.n_channels, self.slab_samples, 2), np.int16)
        for a in range(start, stop, self.slab_samples):
            b = min(a + self.slab_samples, stop)
            self.ds.read_direct(self._slab, np.s_[:, a:b], np.s_[:, : b - a])
            sc16_to_complex64(self._slab[:, : b - a], out[:, a - start : b - start])
