"""Record a live IQ stream into a capture file (``captures/FORMAT.md``) that can be read while it grows.

The file is written with :class:`~captures.writer.CaptureWriter` in SWMR mode and flushed after
every chunk, so a reader (``open_capture(path, swmr=True)``) can follow it and a recorder that is
killed leaves every flushed chunk readable.  Such a file stays flagged as open for writing:
open it with ``swmr=True`` (``sdr.sources.ReplaySource`` does so by itself).

Gaps: a chunk's ``lost_before`` (the streamer's drops plus the samples of messages lost in
transport, as :class:`~sdr.transport.IQSubscriber` reports them) becomes a ``/gaps`` row.  The
waveform, sample rate and channels come from the first header.  A streamer restart (new
``stream_id``) with the same rate, channels and waveform continues the file after a gap
estimated from the stream times (at least one sample, so a receiver resynchronises); a restart
with a different setup stops the recording with :class:`StreamChanged` instead of mixing.

A full disk: before each chunk the recorder checks that the chunks it would allocate, plus a
metadata margin, fit in the free space and under the process's file-size limit; if not it stops
with :class:`RecordingStopped` (``disk_full``) and the file closes cleanly with every chunk so far.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from captures.format import ChannelInfo
from captures.writer import CaptureWriter
from dsp.errors import OutputExistsError
from sdr.transport import IQHeader, IQMessage, IQSubscriber, sc16_to_complex

WRITEBACK_BYTES = 64 * 2**20
"""The recorder syncs its file and drops it from the page cache every this many bytes."""


class StreamChanged(Exception):
    """The stream's rate, channels or waveform changed under a recording."""


class RecordingStopped(Exception):
    """The recording cannot go on; ``reason`` is ``disk_full`` or ``write_error``.

    ``disk_full``: the next chunk would not fit (free space on the file system, or the process's
    file-size limit); nothing of it was written and the file is intact and closable.
    ``write_error``: a write failed anyway (a disk filled by someone else, an I/O error); every
    chunk flushed before it is readable, but HDF5 may crash closing the broken file, so
    :meth:`Recorder.close` leaves it alone (a command then ends with ``os._exit``).
    """

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class _ReleaseErrors:
    """Within ``with``: h5py's failures to release an HDF5 object (``ObjectID.__dealloc__``,
    which Cython prints through ``sys.excepthook``, then as "Exception ignored" through
    ``sys.unraisablehook``) are counted instead.

    A write that fails half-way (EFBIG, ENOSPC in a flush) leaves h5py's temporaries of that
    call to be released while the file cannot grow, and each release fails the same way: the
    recorder reports the write failure once, clearly, and counts these.  Any other unraisable
    exception goes to the previous hook.  :meth:`keep` leaves the hook in place for good (after
    a failed write, until the process's ``os._exit``)."""

    def __init__(self) -> None:
        self.count = 0
        self._prev: tuple[Any, Any] = (None, None)
        self._kept = False

    def _unraisable(self, unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, RuntimeError) and "h5py" in str(unraisable.object):
            self.count += 1
        else:
            (self._prev[0] or sys.__unraisablehook__)(unraisable)

    def _except(self, kind: type, value: BaseException, tb: Any) -> None:
        last = tb
        while last is not None and last.tb_next is not None:
            last = last.tb_next
        where = "" if last is None else last.tb_frame.f_code.co_filename
        if isinstance(value, RuntimeError) and "h5py" in where:
            return  # the same release, counted by _unraisable right after
        (self._prev[1] or sys.__excepthook__)(kind, value, tb)

    def __enter__(self) -> _ReleaseErrors:
        if not self._kept:
            self._prev = (sys.unraisablehook, sys.excepthook)
            sys.unraisablehook, sys.excepthook = self._unraisable, self._except
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._kept:
            sys.unraisablehook, sys.excepthook = self._prev

    def keep(self) -> None:
        sys.unraisablehook, sys.excepthook = self._unraisable, self._except
        self._kept = True


def room_bytes(path: Path) -> tuple[int, str]:
    """Bytes ``path`` can still grow by, and what limits it (free space or ``RLIMIT_FSIZE``)."""
    st = os.statvfs(path.parent if not path.exists() else path)
    size = path.stat().st_size if path.exists() else 0
    room, what = st.f_bavail * st.f_frsize, f"free space on the file system of {path}"
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and limit - size < room:
        room, what = limit - size, f"the process's file-size limit (RLIMIT_FSIZE {limit} bytes)"
    return max(0, room), what


def _describe(h: IQHeader) -> str:
    bands = ", ".join(f"{c.band} {c.rf_center_hz / 1e6:g} MHz" for c in h.channels)
    return f"{h.capture_rate_hz / 1e6:g} MS/s, [{bands}], waveform profile {h.waveform.profile!r}"


class Recorder:
    """Appends IQ chunks of one stream setup to ``path``: ``write(msg)`` or ``append(header, iq, lost)``."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        overwrite: bool = False,
        origin: str = "",
        recorder: str = "backscatter record",
    ):
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise OutputExistsError(f"{self.path} exists; refusing to overwrite (use --force)")
        self.overwrite, self.origin, self.recorder = overwrite, origin, recorder
        self._w: CaptureWriter | None = None
        self.first_header: IQHeader | None = None
        self._last: IQHeader | None = None
        self.messages = 0
        self.gaps = 0
        self.samples_lost = 0
        self.stream_ids: list[str] = []
        self.broken = False
        self._failure: BaseException | None = None
        self._release_errors = _ReleaseErrors()

    @property
    def n_samples(self) -> int:
        """Samples stored so far."""
        return 0 if self._w is None else self._w.n_samples

    def _open(self, h: IQHeader, lost_before: int) -> CaptureWriter:
        start = h.capture_index - lost_before
        desc = (
            f"recorded {h.source} stream {h.stream_id}{f' from {self.origin}' if self.origin else ''}; "
            f"stored sample 0 is stream sample {start}"
        )
        return CaptureWriter(
            self.path,
            h.waveform,
            [ChannelInfo(c.band, c.rf_center_hz) for c in h.channels],
            h.capture_rate_hz,
            datatype="ci16_le" if h.format == "sc16" else "cf32_le",
            overwrite=self.overwrite,
            swmr=True,
            time_first_sample_s=h.time_s,
            description=desc,
            recorder=self.recorder,
            writeback_bytes=WRITEBACK_BYTES,
        )

    def append(self, header: IQHeader, iq: np.ndarray, lost_before: int) -> None:
        """Store one chunk (``iq`` complex64 ``[channel, sample]`` or sc16 ``[channel, sample, 2]``).

        ``lost_before``: samples lost just before it.  Raises :class:`StreamChanged` (writing
        nothing) when ``header`` belongs to a new stream with another setup.
        """
        h = header
        if self._w is None:
            try:
                self._w = self._open(h, lost_before)
            except OSError as exc:  # no room even for the file's header, or not writable
                msg = f"{self.path}: cannot create the capture ({exc})"
                raise RecordingStopped("write_error", msg) from None
            self.first_header = h
            self.stream_ids.append(h.stream_id)
            # samples lost before the very start of the stream are a gap at stored sample 0;
            # a recorder joining late simply starts at its first message
            if not (lost_before > 0 and h.capture_index == lost_before):
                lost_before = 0
        elif h.stream_id != self._last.stream_id:  # type: ignore[union-attr]
            first = self.first_header
            assert first is not None and self._last is not None
            if not first.same_stream_setup(h):
                raise StreamChanged(
                    f"the stream changed under the recording: new stream {h.stream_id} has "
                    f"{_describe(h)}; {self.path} holds {_describe(first)}. Stopped; record the new "
                    "stream into another file"
                )
            self.stream_ids.append(h.stream_id)
            expected_s = self._last.time_s + self._last.n_samples / h.capture_rate_hz
            lost_before = max(1, round((h.time_s - expected_s) * h.capture_rate_hz))
        w = self._w
        need = w.bytes_to_append(iq.shape[1])
        room, what = room_bytes(self.path)
        if need > room:
            raise RecordingStopped(
                "disk_full",
                f"{self.path}: disk full: the next chunk needs up to {need} bytes but {what} leaves "
                f"{room}; stopped after {w.n_samples} samples, every one of them readable",
            )
        try:
            with self._release_errors:
                if lost_before > 0:
                    w.add_gap(lost_before)
                    self.gaps += 1
                    self.samples_lost += lost_before
                if w.datatype == "cf32_le" and iq.dtype == np.int16:
                    iq = sc16_to_complex(iq)
                w.append(iq)  # flushed by the SWMR writer
        except (OSError, RuntimeError) as exc:  # h5py reports failed writes as either
            self.broken = True
            # releasing the HDF5 objects of the failed write makes HDF5 write again (and fail
            # noisily): the exception, its traceback and their frames stay alive with the recorder
            self._failure = exc
            self._release_errors.keep()  # the process ends with os._exit: no more to say
            also = self._release_errors.count
            raise RecordingStopped(
                "write_error",
                f"{self.path}: write failed after {self.n_samples} samples ({exc}); the chunks "
                "flushed before it are readable with open_capture(path, swmr=True)"
                + (f" (HDF5 failed to release {also} objects of the failed write too)" if also else ""),
            ) from None
        self.messages += 1
        self._last = h

    def write(self, msg: IQMessage) -> None:
        """Store a received message (its ``lost_before`` includes transport losses)."""
        self.append(msg.header, msg.iq, msg.lost_before)

    def close(self) -> None:
        """Close the file; a broken one (see :class:`RecordingStopped`) is left to the process's end."""
        if self._w is not None and not self.broken:
            self._w.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def record(
    subscriber: IQSubscriber,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    stop: threading.Event | None = None,
    idle_timeout_s: float | None = None,
    max_messages: int | None = None,
) -> dict[str, Any]:
    """Record ``subscriber``'s stream into ``path`` until ``stop``, idleness, a count or a stream change.

    Returns a summary: ``file`` (``None`` if nothing arrived), ``messages``, ``samples``,
    ``gaps``, ``samples_lost``, ``messages_missed``, ``drops`` (by reason), ``stream_ids``,
    ``stop_reason`` (``stopped``, ``idle``, ``count``, ``stream_changed``, ``disk_full`` or
    ``write_error``, see :class:`RecordingStopped`), ``message`` and ``broken`` (the file could
    not be closed: end the process with ``os._exit``, since HDF5 may crash closing it).
    """
    rec = Recorder(path, overwrite=overwrite, origin=subscriber.endpoint)
    reason, message = "stopped", ""
    last_s = time.monotonic()
    try:
        while not (stop is not None and stop.is_set()):
            if max_messages is not None and rec.messages >= max_messages:
                reason = "count"
                break
            msg = subscriber.recv(timeout_s=0.1)  # short slices: ``stop`` is seen promptly
            if msg is None:
                if idle_timeout_s is not None and time.monotonic() - last_s >= idle_timeout_s:
                    reason = "idle"
                    break
                continue
            last_s = time.monotonic()
            try:
                rec.write(msg)
            except StreamChanged as exc:
                reason, message = "stream_changed", str(exc)
                break
            except RecordingStopped as exc:
                reason, message = exc.reason, str(exc)
                break
    finally:
        rec.close()
    return {
        "file": str(rec.path) if rec.first_header is not None else None,
        "messages": rec.messages,
        "samples": rec.n_samples,
        "gaps": rec.gaps,
        "samples_lost": rec.samples_lost,
        "messages_missed": subscriber.counters.messages_missed,
        "drops": dict(subscriber.drops),
        "stream_ids": rec.stream_ids,
        "stop_reason": reason,
        "message": message,
        "broken": rec.broken,
    }
