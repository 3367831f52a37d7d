"""Validating capture reader.  Every defect raises :class:`CaptureError` naming file and path."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from captures.format import (
    BAND_NAMES,
    DATATYPES,
    FORMAT_NAME,
    SUPPORTED_VERSIONS,
    CaptureError,
    ChannelInfo,
)
from captures.ingest import SlabReader
from captures.truth_io import read_truth
from dsp.config_base import ConfigError
from dsp.truth import GroundTruth
from dsp.waveform import PROFILES, WaveformConfig
from h5safe.probe import hdf5_problem
from h5safe.swmr import open_swmr_reader


def _str(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class Capture:
    """An open, validated capture.  ``read(start, stop)`` gives complex64 ``[channel, sample]``."""

    def __init__(self, path: str | os.PathLike, swmr: bool = False):
        self.path = Path(path)
        if not self.path.exists():
            raise CaptureError(self.path, "/", "no such file")
        try:
            problem = hdf5_problem(self.path)  # before HDF5 reads it here: it may crash or loop
        except OSError as exc:
            raise CaptureError(self.path, "/", f"unreadable: {exc}") from None
        if problem is not None:
            raise CaptureError(self.path, "/", problem)
        try:
            self._f = open_swmr_reader(self.path) if swmr else h5py.File(self.path, "r")
        except OSError as exc:
            if swmr or "already open for write" not in str(exc):
                raise CaptureError(
                    self.path, "/", f"not a readable HDF5 file (truncated or corrupt?): {exc}"
                ) from None
            # a recording still being written, or whose recorder was killed: read it in SWMR mode
            try:
                self._f = open_swmr_reader(self.path)
            except OSError as exc2:
                raise CaptureError(self.path, "/", f"not a readable HDF5 file: {exc2}") from None
        try:
            self._validate()
        except CaptureError:
            self._f.close()
            raise
        except Exception as exc:  # any other defect in a malformed file still names the file
            self._f.close()
            raise CaptureError(self.path, "/", f"malformed capture: {type(exc).__name__}: {exc}") from None

    # ----- validation ---------------------------------------------------
    def _err(self, where: str, problem: str) -> CaptureError:
        return CaptureError(self.path, where, problem)

    def _attr(self, obj: h5py.HLObject, name: str, where: str) -> Any:
        if name not in obj.attrs:
            raise self._err(where, f"missing attribute {name!r}")
        try:
            return obj.attrs[name]
        except OSError as exc:
            raise self._err(where, f"attribute {name!r} unreadable: {exc}") from None

    def _validate(self) -> None:
        f = self._f
        fmt = _str(self._attr(f, "format", "/"))
        if fmt != FORMAT_NAME:
            raise self._err("/", f"attribute 'format' is {fmt!r}, expected {FORMAT_NAME!r}")
        version = self._attr(f, "format_version", "/")
        try:
            version = int(version)
        except (TypeError, ValueError):
            raise self._err("/", f"attribute 'format_version' is not an integer: {version!r}") from None
        if version not in SUPPORTED_VERSIONS:
            raise self._err("/", f"unknown format_version {version}; this build reads {SUPPORTED_VERSIONS}")
        self.format_version = version
        self.datatype = _str(self._attr(f, "core:datatype", "/"))
        if self.datatype not in DATATYPES:
            raise self._err("/", f"core:datatype {self.datatype!r} is not one of {DATATYPES}")
        try:
            self.capture_rate_hz = float(self._attr(f, "core:sample_rate", "/"))
        except (TypeError, ValueError):
            raise self._err("/", "core:sample_rate is not a number") from None
        if not (np.isfinite(self.capture_rate_hz) and self.capture_rate_hz > 0):
            raise self._err("/", f"core:sample_rate must be positive, got {self.capture_rate_hz}")
        self.time_first_sample_s = float(f.attrs.get("time_first_sample_s", 0.0))
        self.datetime = _str(f.attrs.get("core:datetime", ""))
        self.description = _str(f.attrs.get("core:description", ""))
        self.waveform = self._read_waveform()
        if "iq" not in f or not isinstance(f["iq"], h5py.Dataset):
            raise self._err("/iq", "missing dataset")
        iq = self._iq = f["iq"]
        if self.datatype == "ci16_le":
            if iq.dtype != np.int16 or iq.ndim != 3 or iq.shape[2] != 2:
                raise self._err("/iq", f"ci16_le needs int16 [channel, sample, 2]; got {iq.dtype} {iq.shape}")
        elif iq.dtype != np.complex64 or iq.ndim != 2:
            raise self._err("/iq", f"cf32_le needs complex64 [channel, sample]; got {iq.dtype} {iq.shape}")
        n_ch = iq.shape[0]
        if n_ch < 1:
            raise self._err("/iq", "no channels")
        bands = [_str(b) for b in np.atleast_1d(self._attr(iq, "band", "/iq"))]
        if len(bands) != n_ch:
            raise self._err("/iq", f"attribute 'band' lists {len(bands)} bands for {n_ch} channels")
        bad = [b for b in bands if b not in BAND_NAMES]
        if bad or len(set(bands)) != len(bands):
            raise self._err(
                "/iq", f"attribute 'band' = {bands}: bands must be distinct names from {BAND_NAMES}"
            )
        freqs = np.atleast_1d(np.asarray(self._attr(iq, "core:frequency", "/iq"), np.float64))
        if freqs.shape != (n_ch,) or not np.all(np.isfinite(freqs)):
            raise self._err("/iq", f"attribute 'core:frequency' must hold {n_ch} finite values, got {freqs}")
        gains = np.atleast_1d(np.asarray(iq.attrs.get("gain_db", np.zeros(n_ch)), np.float64))
        ants = [_str(a) for a in np.atleast_1d(iq.attrs.get("antenna", [""] * n_ch))]
        if gains.shape != (n_ch,) or len(ants) != n_ch:
            raise self._err("/iq", "attributes 'gain_db' and 'antenna' need one entry per channel")
        self.channels = [
            ChannelInfo(b, float(fr), float(g), a)
            for b, fr, g, a in zip(bands, freqs, gains, ants, strict=True)
        ]
        self.gaps = np.zeros((0, 2), np.int64)
        if "gaps" in f:
            g = np.asarray(f["gaps"])
            if g.ndim != 2 or g.shape[1] != 2 or not np.issubdtype(g.dtype, np.integer):
                raise self._err("/gaps", f"must be integer [gap, 2], got {g.dtype} {g.shape}")
            if g.size and (np.any(g[:, 1] <= 0) or np.any(np.diff(g[:, 0]) < 0) or g[:, 0].min() < 0):
                raise self._err("/gaps", "gap positions must be non-decreasing and losses positive")
            if g.size and g[:, 0].max() > self.n_samples:
                raise self._err("/gaps", f"a gap lies beyond the last sample {self.n_samples}")
            self.gaps = g.astype(np.int64)
        self._slabs = SlabReader(iq, self.datatype)

    def _read_waveform(self) -> WaveformConfig:
        where = "/config/waveform"
        if where not in self._f:
            raise self._err(where, "missing group (the waveform configuration)")
        attrs = {k: v for k, v in self._f[where].attrs.items()}
        profile = _str(attrs.get("profile", "default"))
        base = PROFILES.get(profile, PROFILES["default"])
        try:
            wf = WaveformConfig.from_h5_attrs(attrs, base=base)
            return wf.replace(capture_rate_hz=self.capture_rate_hz)
        except ConfigError as exc:
            raise self._err(where, str(exc)) from None

    # ----- access -----------------------------------------------------------
    @property
    def n_channels(self) -> int:
        return int(self._iq.shape[0])

    @property
    def slab_reader(self) -> SlabReader:
        """The reader of ``/iq`` that ``read`` uses (its buffers are reused)."""
        return self._slabs

    @property
    def n_samples(self) -> int:
        return int(self._iq.shape[1])

    @property
    def bands(self) -> list[str]:
        return [c.band for c in self.channels]

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.capture_rate_hz

    def refresh(self) -> None:
        """Follow a growing SWMR file."""
        self._iq.refresh()

    def read(self, start: int = 0, stop: int | None = None, pairs: bool = False) -> np.ndarray:
        """Samples ``[start, stop)`` as complex64 ``[channel, sample]``; with ``pairs``, a
        ``ci16_le`` capture's as stored, int16 ``[channel, sample, 2]`` (32767 = 1.0; other
        formats still give complex64)."""
        stop = self.n_samples if stop is None else min(stop, self.n_samples)
        start = min(max(start, 0), stop)
        try:
            if pairs and self.datatype == "ci16_le":
                return self._slabs.read_pairs(start, stop)
            return self._slabs.read(start, stop)
        except OSError as exc:
            raise self._err(
                "/iq", f"samples {start}..{stop} unreadable (checksum or truncation): {exc}"
            ) from None

    def read_raw(self, channel: int, start: int, stop: int) -> np.ndarray:
        """Stored samples of one channel as they are on disk (int16 pairs or complex64)."""
        try:
            return np.ascontiguousarray(self._iq[channel, start:stop])
        except OSError as exc:
            raise self._err(
                "/iq", f"samples {start}..{stop} unreadable (checksum or truncation): {exc}"
            ) from None

    def iter_chunks(self, chunk_samples: int, pairs: bool = False) -> Iterator[tuple[int, np.ndarray, int]]:
        """Yield ``(start, iq[channel, sample], samples_lost_before)``, split at every gap (``iq``
        as :meth:`read` gives it, with ``pairs``)."""
        for start, stop, lost in self.chunk_ranges(chunk_samples):
            yield start, self.read(start, stop, pairs), lost

    def chunk_ranges(self, chunk_samples: int) -> Iterator[tuple[int, int, int]]:
        """``(start, stop, samples_lost_before)`` of :meth:`iter_chunks`' pieces, in order."""
        cuts = sorted({0, self.n_samples, *self.gaps[:, 0].tolist()})
        lost = dict.fromkeys(self.gaps[:, 0].tolist(), 0)
        for s, k in self.gaps:
            lost[int(s)] += int(k)
        for lo, hi in itertools.pairwise(cuts):
            for start in range(lo, hi, chunk_samples):
                yield start, min(start + chunk_samples, hi), (lost.get(lo, 0) if start == lo else 0)

    @property
    def grows(self) -> bool:
        """Whether the file was opened in SWMR mode (a recording that may still grow)."""
        return bool(self._f.swmr_mode)

    @property
    def has_truth(self) -> bool:
        return "truth" in self._f

    def truth(self) -> GroundTruth | None:
        if not self.has_truth:
            return None
        try:
            return read_truth(self._f["truth"])
        except (KeyError, ValueError, TypeError, OSError, RuntimeError) as exc:  # RuntimeError: corrupt
            raise self._err("/truth", f"malformed ground truth: {exc}") from None

    @property
    def scenario_json(self) -> str | None:
        if not self.has_truth:
            return None
        try:
            v = self._f["truth"].attrs.get("scenario")
        except (KeyError, ValueError, TypeError, OSError, RuntimeError) as exc:
            raise self._err("/truth@scenario", f"unreadable: {exc}") from None
        return None if v is None else _str(v)

    def close(self) -> None:
        if self._f.id.valid:
            self._f.close()

    def __enter__(self) -> Capture:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_capture(path: str | os.PathLike, swmr: bool = False) -> Capture:
    """Open and validate a capture; raises :class:`CaptureError` on any defect."""
    return Capture(path, swmr=swmr)
