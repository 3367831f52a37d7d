"""Capture writer: creates a capture and appends IQ chunks (also used by the live recorder)."""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from types import TracebackType

import h5py
import numpy as np

from captures.format import (
    BAND_NAMES,
    CHUNK_SAMPLES,
    DATATYPES,
    FORMAT_NAME,
    FORMAT_VERSION,
    ChannelInfo,
    complex_to_ci16,
)
from captures.ingest import fletcher32
from captures.truth_io import write_truth
from dsp.errors import OutputExistsError
from dsp.truth import GroundTruth
from dsp.waveform import WaveformConfig

METADATA_MARGIN_BYTES = 256 * 1024
"""Room kept for metadata on top of the data chunks an append allocates."""


class CaptureWriter:
    """Write a capture: ``append`` chunks ``[channel, sample]``, mark gaps, close.

    With ``swmr=True`` the file is switched to single-writer/multiple-reader mode
    and flushed after every append, so readers can follow it while it grows and a
    killed writer leaves every flushed chunk readable.  ``writeback_bytes > 0`` also
    syncs the file to disk and drops it from the page cache after that many bytes
    (see :meth:`_write_back`).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        waveform: WaveformConfig,
        channels: list[ChannelInfo],
        capture_rate_hz: float,
        datatype: str = "ci16_le",
        overwrite: bool = False,
        swmr: bool = False,
        time_first_sample_s: float = 0.0,
        description: str = "",
        recorder: str = "backscatter",
        writeback_bytes: int = 0,
    ):
        self.path = Path(path)
        if datatype not in DATATYPES:
            raise ValueError(f"datatype must be one of {DATATYPES}, got {datatype!r}")
        bands = [c.band for c in channels]
        if not channels or any(b not in BAND_NAMES for b in bands) or len(set(bands)) != len(bands):
            raise ValueError(f"channels must name distinct bands from {BAND_NAMES}, got {bands}")
        if self.path.exists() and not overwrite:
            raise OutputExistsError(f"{self.path} exists; refusing to overwrite (use --force)")
        self.datatype = datatype
        self.n_channels = len(channels)
        self._f = h5py.File(self.path, "w", libver="latest")
        f = self._f
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["core:datatype"] = datatype
        f.attrs["core:sample_rate"] = float(capture_rate_hz)
        f.attrs["core:datetime"] = _dt.datetime.fromtimestamp(time_first_sample_s or 0, _dt.UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ"
        )
        f.attrs["time_first_sample_s"] = float(time_first_sample_s)
        f.attrs["core:description"] = description
        f.attrs["core:recorder"] = recorder
        waveform.to_h5_attrs(f.create_group("config/waveform").attrs)
        n = self.n_channels
        if datatype == "ci16_le":
            shape, maxshape, chunks, dtype = (n, 0, 2), (n, None, 2), (n, CHUNK_SAMPLES, 2), np.int16
        else:
            shape, maxshape, chunks, dtype = (n, 0), (n, None), (n, CHUNK_SAMPLES), np.complex64
        self._iq = f.create_dataset("iq", shape, dtype, maxshape=maxshape, chunks=chunks, fletcher32=True)
        self._iq.attrs["band"] = bands
        self._iq.attrs["core:frequency"] = np.array([c.center_freq_hz for c in channels], np.float64)
        self._iq.attrs["gain_db"] = np.array([c.gain_db for c in channels], np.float64)
        self._iq.attrs["antenna"] = [c.antenna for c in channels]
        self._gaps = f.create_dataset("gaps", (0, 2), np.int64, maxshape=(None, 2), chunks=(256, 2))
        self._chunk_bytes = int(np.prod(chunks)) * np.dtype(dtype).itemsize
        self._chunk_buf: np.ndarray | None = None
        self.writeback_bytes = writeback_bytes
        self._unsynced_bytes = 0
        self._fd = os.open(self.path, os.O_RDONLY) if writeback_bytes > 0 else None
        self.n_samples = 0
        self.swmr = swmr
        if swmr:
            f.swmr_mode = True

    def append(self, iq: np.ndarray) -> None:
        """Append ``[channel, sample]`` complex samples (or int16 pairs ``[channel, sample, 2]``)."""
        if iq.shape[0] != self.n_channels:
            raise ValueError(f"expected {self.n_channels} channels, got array of shape {iq.shape}")
        if self.datatype == "ci16_le":
            data = iq if iq.dtype == np.int16 else complex_to_ci16(iq)
        else:
            data = iq.astype(np.complex64, copy=False)
        k = data.shape[1]
        self._iq.resize(self.n_samples + k, axis=1)
        try:
            if self.datatype == "ci16_le":
                self._write_pairs(data, self.n_samples)
            else:
                self._iq[:, self.n_samples : self.n_samples + k] = data
            if self.swmr:
                self._iq.flush()
        except BaseException:
            self._shrink_back()
            raise
        self.n_samples += k
        if self._fd is not None:
            self._unsynced_bytes += data.nbytes
            if self._unsynced_bytes >= self.writeback_bytes:
                self._write_back()

    def _write_pairs(self, data: np.ndarray, start: int) -> None:
        """int16 pairs ``[channel, sample, 2]`` at sample ``start``: every whole chunk raw, with
        its fletcher32 computed here (HDF5's byte-serial check halves the write speed, see
        FORMAT.md), the ragged ends through HDF5."""
        c, end = CHUNK_SAMPLES, start + data.shape[1]
        first, last = -(-start // c) * c, end // c * c  # the whole chunks: [first, last)
        if first >= last:
            self._iq[:, start:end] = data
            return
        if start < first:
            self._iq[:, start:first] = data[:, : first - start]
        if self._chunk_buf is None:
            self._chunk_buf = np.empty(self._chunk_bytes + 4, np.uint8)
        buf = self._chunk_buf
        pairs = buf[:-4].view(np.int16).reshape(self.n_channels, c, 2)
        for a in range(first, last, c):
            np.copyto(pairs, data[:, a - start : a - start + c])
            buf[-4:].view("<u4")[0] = fletcher32(buf[:-4])
            self._iq.id.write_direct_chunk((0, a, 0), buf)
        if last < end:
            self._iq[:, last:end] = data[:, last - start :]

    def _write_back(self) -> None:
        """Put what was written on the disk and drop it from the page cache.

        A recorder writing hundreds of MB/s otherwise piles up gigabytes of dirty pages; once the
        kernel's background writeback starts, every further write costs several times the CPU
        (measured on the development VM: 2.6 s instead of 0.85 s per 786 MB, enough to fall
        behind a 368 MB/s stream).  Writing back every ``writeback_bytes`` keeps the cost flat
        and bounds what a power cut can take.  Raises ``OSError`` (``EIO``, or ``ENOSPC`` that
        delayed allocation only reports here).
        """
        assert self._fd is not None
        self._unsynced_bytes = 0
        os.fdatasync(self._fd)
        os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_DONTNEED)

    def _shrink_back(self) -> None:
        """After a failed write, return the extent to the samples really written (best effort:
        a reader must not see samples that never reached the file)."""
        try:
            self._iq.resize(self.n_samples, axis=1)
            if self.swmr:
                self._iq.flush()
        except (OSError, RuntimeError):
            pass

    def bytes_to_append(self, n_samples: int) -> int:
        """Upper bound of the bytes the file grows by when ``n_samples`` more are appended.

        Chunks are allocated whole, so this counts every chunk the append starts, plus a margin
        for the metadata that grows with them (chunk index, gap rows, superblock).
        """
        c = CHUNK_SAMPLES
        new_chunks = -(-(self.n_samples + n_samples) // c) - (-(-self.n_samples // c))
        return new_chunks * self._chunk_bytes + METADATA_MARGIN_BYTES

    def add_gap(self, samples_lost: int) -> None:
        """Record that ``samples_lost`` samples are missing before the next appended sample."""
        g = self._gaps
        g.resize(g.shape[0] + 1, axis=0)
        g[-1] = (self.n_samples, int(samples_lost))
        if self.swmr:
            g.flush()

    def write_truth(self, truth: GroundTruth, scenario_json: str | None = None) -> None:
        if self.swmr:
            raise RuntimeError("ground truth must be written before SWMR mode (emulated captures only)")
        write_truth(self._f.create_group("truth"), truth, scenario_json)

    def close(self) -> None:
        if self._f.id.valid:
            self._f.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
