"""The streamer: a source's chunks out through an IQ publisher (and into a recording), paced,
until the source ends or a signal stops it; and the signal handling every long command uses.

:func:`stream` is what ``backscatter stream`` does (source settings and :class:`StreamOptions`
in, a summary out); :func:`run_stream` is its inner loop over an open source and publisher.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import numpy as np
import zmq

from app.progress import progress_bar
from dsp.errors import BackscatterError
from sdr.recorder import Recorder, RecordingStopped
from sdr.security import ServerKeys
from sdr.source_registry import SourceError, SourceKind, SourceSettings, kind_of
from sdr.sources import ChunkLike, IQSource, Pacer, chunk_iq
from sdr.stream_truth import stream_truth_of
from sdr.transport import IQHeader, IQPublisher, as_wire_array
from sdr.transport.gr_publisher import GnuRadioPublisher

DRAIN_S = 10.0  # a stream that ends normally waits at most this long for its queue to drain
SEND_TIMEOUT_S = 10.0
"""PUSH: a consumer that takes no message for this long (or disconnects, seen at once) is given up:
messages are dropped, counted and reported until one takes them again (``--send-timeout-s``).
Long enough for a worker that loads its compiled kernels on its first message (seconds on a
loaded machine) while its queues fill; a consumer that exits is not waited for."""
BEHIND_WARNING_S = 1.0
"""A paced source this far behind the sample clock (seconds) gets one warning."""


class StreamError(BackscatterError, RuntimeError):
    """The stream cannot be sent (an endpoint that cannot be bound)."""


class StopOnSignal:
    """While active, SIGINT and SIGTERM set ``event`` (and run the ``on_stop`` callbacks, which
    must only set flags) instead of killing the process.

    A second signal raises ``KeyboardInterrupt`` (for a loop that does not look at the event).
    Outside the main thread it installs nothing and only provides the event.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.on_stop: list[Callable[[], None]] = []
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()
        for fn in self.on_stop:
            fn()

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@dataclass
class _Tally:
    """What :func:`run_stream` has sent so far."""

    messages: int = 0
    samples: int = 0
    lost: int = 0
    unsent_messages: int = 0  # given up: no consumer took them (PUSH with a send timeout)
    unsent_samples: int = 0
    consumer_gaps: int = 0
    send_wait_s: float = 0.0  # time spent in sends (PUSH: waiting for the consumer's room)
    stopped: bool = False
    behind_warned: bool = False
    record_error: dict[str, str] | None = None


def run_stream(
    source: IQSource,
    publisher: IQPublisher,
    *,
    pacer: Pacer,
    stop: threading.Event,
    recorder: Recorder | None = None,
    progress: Callable[[int], Any] | None = None,
    also: GnuRadioPublisher | None = None,
) -> dict[str, Any]:
    """Send every chunk of ``source`` through ``publisher`` (and into ``recorder``) until done or ``stop``.

    A recording that cannot go on (:class:`~sdr.recorder.RecordingStopped`: disk full, write
    error) stops, is warned about on stderr and named in ``record_error``; the stream goes on.
    A chunk no consumer takes (PUSH with a send timeout: the consumer exited or hangs) is
    dropped, counted (``unsent_*``, ``consumer_gaps``) and reported on stderr, and the stream
    goes on for the next consumer; the recording keeps every chunk, dropped or not.
    ``progress(samples)`` is called after each chunk (lost samples counted).  The summary's
    times are in seconds, its rate in samples per second.
    """
    tally = _Tally()
    t0 = time.perf_counter()
    for chunk in source:
        payload = as_wire_array(chunk_iq(chunk), publisher.fmt)
        n = payload.shape[1]
        if stop.is_set() or not pacer.wait(chunk.capture_index, n, stop):
            tally.stopped = True
            break
        _warn_once_if_behind(source, pacer, tally)
        t_send, was_dropping = time.monotonic(), publisher.unsent.dropping
        header = _send_chunk(publisher, also, payload, chunk, stop)
        if header is None:
            tally.stopped = True
            break
        tally.send_wait_s += time.monotonic() - t_send
        _report_consumer(publisher, pacer, tally, was_dropping, time.monotonic() - t_send)
        _record_chunk(recorder, header, payload, chunk.lost_before, tally)
        if publisher.unsent.dropping:
            tally.unsent_messages += 1
            tally.unsent_samples += n
        else:
            tally.messages += 1
            tally.samples += n
        tally.lost += chunk.lost_before
        if progress is not None:
            progress(n + chunk.lost_before)
    wall_s = time.perf_counter() - t0
    tally.stopped = tally.stopped or stop.is_set()  # a source told to stop ends its iteration early
    return _stream_summary(source, publisher, pacer, recorder, tally, wall_s)


def _warn_once_if_behind(source: IQSource, pacer: Pacer, tally: _Tally) -> None:
    """One warning on stderr when a paced stream falls ``BEHIND_WARNING_S`` behind its clock: the
    source is slow, or (most of the lag spent in sends) a PUSH consumer that holds it back."""
    if not pacer.realtime or pacer.lag_s <= BEHIND_WARNING_S or tally.behind_warned:
        return
    tally.behind_warned = True
    if tally.send_wait_s >= pacer.lag_s / 2:
        why = (
            f"the stream is {pacer.lag_s:.1f} s behind the sample clock: its consumer takes messages "
            f"slower than real time (the streamer waited {tally.send_wait_s:.1f} s for it)"
        )
    else:
        hint = getattr(source, "behind_hint", "")
        why = (
            f"the {source.name} source is {pacer.lag_s:.1f} s behind the sample clock: it produces "
            f"samples slower than real time{hint}"
        )
    print(f"backscatter stream: warning: {why}", file=sys.stderr, flush=True)


def _report_consumer(
    publisher: IQPublisher, pacer: Pacer, tally: _Tally, was_dropping: bool, send_s: float
) -> None:
    """On stderr, when the consumer is given up (the chunk just sent was dropped) and when one
    takes messages again; the wait before giving up held the streamer back, not the source, so
    the pacer's schedule moves by it (no catch-up burst, no warning that the source is slow)."""
    u = publisher.unsent
    if u.dropping and not was_dropping:
        tally.consumer_gaps += 1
        pacer.hold(send_s)
        print(
            f"backscatter stream: warning: {u.reason}: dropping messages, counted as not sent, "
            "until a consumer takes them again (the stream and any recording go on)",
            file=sys.stderr,
            flush=True,
        )
    elif was_dropping and not u.dropping:
        gone_s = time.monotonic() - (u.since_s or time.monotonic())
        print(
            f"backscatter stream: a consumer takes messages again after {gone_s:.1f} s "
            f"({tally.unsent_samples} samples in {tally.unsent_messages} messages not sent so far)",
            file=sys.stderr,
            flush=True,
        )


def _send_chunk(
    publisher: IQPublisher,
    also: GnuRadioPublisher | None,
    payload: np.ndarray,
    chunk: ChunkLike,
    stop: threading.Event,
) -> IQHeader | None:
    """Send one chunk on ``publisher`` and ``also`` (GNU Radio's sockets); ``None``: stopped."""
    header = publisher.send(payload, chunk.capture_index, chunk.time_s, chunk.lost_before, stop=stop)
    if also is not None and header is not None:  # GNU Radio sockets (--gnuradio-bind)
        if not also.send(payload, chunk.capture_index, chunk.time_s, chunk.lost_before, stop=stop):
            return None
    return header


def _record_chunk(
    recorder: Recorder | None, header: IQHeader, payload: np.ndarray, lost_before: int, tally: _Tally
) -> None:
    """Append a sent chunk to the recording, unless it has stopped (then warn once and say why)."""
    if recorder is None or tally.record_error is not None:
        return
    try:
        recorder.append(header, payload, lost_before)
    except RecordingStopped as exc:
        tally.record_error = {"reason": exc.reason, "message": str(exc)}
        print(f"backscatter stream: warning: recording stopped: {exc}", file=sys.stderr, flush=True)


def _stream_summary(
    source: IQSource,
    publisher: IQPublisher,
    pacer: Pacer,
    recorder: Recorder | None,
    tally: _Tally,
    wall_s: float,
) -> dict[str, Any]:
    stream_s = (tally.samples + tally.unsent_samples + tally.lost) / publisher.capture_rate_hz
    return {
        "source": source.name,
        "endpoint": publisher.endpoint,
        "mode": publisher.mode,
        "format": publisher.fmt,
        "stream_id": publisher.stream_id,
        "capture_rate_hz": publisher.capture_rate_hz,
        "bands": [b for b, _ in source.channels],
        "messages": tally.messages,
        "samples_sent": tally.samples,
        "samples_lost": tally.lost,
        "unsent_messages": tally.unsent_messages,
        "unsent_samples": tally.unsent_samples,
        "consumer_gaps": tally.consumer_gaps,
        "bytes_sent": publisher.bytes_sent,
        "stream_s": stream_s,
        "wall_s": wall_s,
        "realtime_factor": stream_s / wall_s if wall_s > 0 else float("inf"),
        "max_lag_s": pacer.lag_s,
        "paced": pacer.realtime,
        "interrupted": tally.stopped,
        "record": None if recorder is None else str(recorder.path),
        "record_error": tally.record_error,
    }


@dataclass(frozen=True, kw_only=True)
class StreamOptions:
    """How a stream is sent.

    ``bind``: the endpoint; ``socket``: ``pub`` or ``push``; ``fmt``: the wire sample format;
    ``server_keys`` (``None``: no CURVE) and ``insecure`` (consent to a plain endpoint off the
    loopback interface); ``wait_subscriber_s``: seconds to wait for a subscriber first (0: not);
    ``as_fast_as_possible``: never pace; ``record``: also record to this capture file, replacing
    it when ``overwrite``; ``show_progress``: a progress bar on stderr; ``send_timeout_s``: push
    only, give up a consumer that disconnects or takes nothing for this long (``None``: wait for
    it however long it takes).
    """

    bind: str
    socket: str = "pub"
    fmt: str = "sc16"
    server_keys: ServerKeys | None = None
    insecure: bool = False
    wait_subscriber_s: float = 0.0
    as_fast_as_possible: bool = False
    record: Path | None = None
    overwrite: bool = False
    show_progress: bool = True
    send_timeout_s: float | None = SEND_TIMEOUT_S


@dataclass(frozen=True)
class StreamOutcome:
    """``summary`` of :func:`run_stream` plus ``subscriber_seen``, ``gnuradio`` and the source's
    own sections; ``record_broken``: the recording's file failed mid-write (the process should
    end without closing it, see ``sdr.recorder``)."""

    summary: dict[str, Any]
    record_broken: bool


# ``also(source)`` -> the GNU Radio publisher for the source's rate and channels, or ``None``
AlsoFactory = Callable[[IQSource], GnuRadioPublisher | None]


def stream(
    settings: SourceSettings, options: StreamOptions, *, also: AlsoFactory | None = None
) -> StreamOutcome:
    """Open the source ``settings`` describe and send it as :class:`StreamOptions` say, until
    it ends or SIGINT/SIGTERM; the source, sockets and recording are closed on the way out."""
    kind = kind_of(settings)
    with StopOnSignal() as signals:
        stop = signals.event
        source = kind.open(settings, stop)
        signals.on_stop.append(source.stop)
        try:
            return _send_source(source, kind, options, stop, also)
        finally:
            source.close()


def _bind(source: IQSource, options: StreamOptions) -> IQPublisher:
    try:
        return IQPublisher(
            options.bind,
            capture_rate_hz=source.capture_rate_hz,
            channels=source.channels,
            waveform=source.waveform,
            source=source.name,
            mode=options.socket,
            fmt=options.fmt,
            server_keys=options.server_keys,
            insecure=options.insecure,
            truth=stream_truth_of(source),  # emulator / replay: the answer travels along
            send_timeout_s=options.send_timeout_s,
        )
    except zmq.ZMQError as exc:  # address in use, malformed endpoint
        raise StreamError(f"cannot bind {options.bind}: {exc}") from None


def _send_source(
    source: IQSource,
    kind: type[SourceKind],
    options: StreamOptions,
    stop: threading.Event,
    also: AlsoFactory | None,
) -> StreamOutcome:
    pub = _bind(source, options)
    completed = False
    gr_pub = None
    try:
        gr_pub = None if also is None else also(source)
        subscriber_seen = None
        if options.wait_subscriber_s > 0 and gr_pub is not None:  # a GNU Radio watcher, then
            subscriber_seen = gr_pub.wait_for_subscribers(options.wait_subscriber_s, stop)
        elif options.wait_subscriber_s > 0:
            subscriber_seen = pub.wait_for_subscriber(options.wait_subscriber_s, stop)
        live = bool(getattr(source, "is_live", kind.live))
        pacer = Pacer(source.capture_rate_hz, realtime=not (live or options.as_fast_as_possible))
        summary, broken = _run_recorded(source, kind, pub, gr_pub, pacer, stop, options)
        summary["subscriber_seen"] = subscriber_seen
        summary["gnuradio"] = gr_pub and {"endpoints": gr_pub.endpoints, "items_sent": gr_pub.items_sent}
        report = getattr(source, "stream_report", None)
        if report is not None:
            summary.update(report())
        completed = not summary["interrupted"]
    finally:
        # a stream that ended normally lets its queue drain to the consumers (none if given up)
        pub.close(linger_s=DRAIN_S if completed and not pub.unsent.dropping else 0.2)
        if gr_pub is not None:
            gr_pub.close(linger_s=DRAIN_S if completed else 0.2)
    return StreamOutcome(summary, broken)


def _run_recorded(
    source: IQSource,
    kind: type[SourceKind],
    pub: IQPublisher,
    gr_pub: GnuRadioPublisher | None,
    pacer: Pacer,
    stop: threading.Event,
    options: StreamOptions,
) -> tuple[dict[str, Any], bool]:
    rec = None
    if options.record is not None:
        rec = Recorder(
            options.record, overwrite=options.overwrite, origin=pub.endpoint, recorder="backscatter stream"
        )
    total = getattr(source, "total_samples", None)
    try:
        with progress_bar(total or 0, "stream", enabled=bool(total) and options.show_progress) as bar:
            summary = run_stream(
                source, pub, pacer=pacer, stop=stop, recorder=rec, progress=bar.update, also=gr_pub
            )
    except kind.wrap_errors as exc:  # e.g. the radio's set-up and stream errors
        raise SourceError(f"--source {kind.name}: {exc}") from None
    finally:
        if rec is not None:
            rec.close()
    return summary, rec is not None and rec.broken
