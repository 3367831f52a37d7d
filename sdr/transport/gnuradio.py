"""GNU Radio interoperability: read the IQ of GNU Radio's ZMQ sinks, publish IQ for its ZMQ sources.

GNU Radio's ``zeromq.pub_sink`` / ``push_sink`` send one socket per stream: raw item bytes,
prefixed by a tag header (:mod:`sdr.transport.gr_tags`) when built with ``pass_tags=True``, and
preceded by a key frame when given a key.  :class:`GnuRadioSubscriber` connects one SUB or PULL
socket per band, aligns the bands exactly (:mod:`sdr.transport.gr_align`: by ``rx_time``, by
item offset, or by item count) and hands out :class:`~sdr.transport.IQMessage` objects like
:class:`~sdr.transport.IQSubscriber`, so the worker and the recorder take either.  Messages it
cannot read are counted in ``drops`` (``frames``, ``gr_header``, ``unexpected_gr_header`` for
tag headers where none were expected, ``payload``, ``rx_rate``) and skipped.
:class:`GnuRadioPublisher` sends each band of our stream on its own PUB or PUSH socket as raw
complex64 (or int16 pairs), optionally with tag headers carrying ``rx_time``,
``rx_rate`` and ``rx_freq`` on the first item and ``rx_time`` again after every gap (as
gr-uhd's source tags an overflow), which ``zeromq.sub_source`` / ``pull_source`` read.

GNU Radio's ZeroMQ blocks have no CURVE security: endpoints are loopback unless ``insecure``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Self

import numpy as np
import zmq

from dsp.config_base import ConfigBase
from dsp.waveform import WaveformConfig
from sdr.security import check_bind, check_connect
from sdr.transport.gr_align import ALIGN_MODES, AlignedChunk, Aligner
from sdr.transport.gr_tags import (
    GR_HEADER_MAGIC,
    GR_HEADER_VERSION,
    GrHeaderError,
    decode_tag_header,
    encode_tag_header,
    pmt_double,
    pmt_rx_time,
    rx_time_s,
)
from sdr.transport.publishers import _close_socket
from sdr.transport.subscribers import _Counters
from sdr.transport.wire import (
    BAND_NAMES,
    IQ_FORMATS,
    MAX_SAMPLES,
    Channel,
    IQHeader,
    IQMessage,
    as_wire_array,
    new_stream_id,
)

GR_HWM = 1000  # messages per socket: GNU Radio sends ~4-64 KiB messages, so tens of MiB
GR_FLUSH_AFTER_S = 0.02  # a partial chunk goes out after this long without new items
_HEADER_START = GR_HEADER_MAGIC.to_bytes(2, "little") + bytes([GR_HEADER_VERSION])
# items as one scalar each (an I/Q pair of int16 as one uint32): 1-D copies are the cheapest
_ITEM = {"fc32": np.dtype("<c8"), "sc16": np.dtype("<u4")}


@dataclass(frozen=True)
class GnuRadioConfig(ConfigBase):
    """GNU Radio ZMQ endpoints of one stream, one per band, and how to read them.

    ``endpoints``: ``(band, endpoint)`` rows, central first; ``rf_centers_hz``: the RF centre of
    each row (same order); ``socket``: ``sub``/``pull`` to read GNU Radio sinks, ``pub``/``push``
    to feed its sources; ``item_format``: ``fc32`` (complex float32 items) or ``sc16`` (int16
    I/Q pairs, full scale 32767); ``tags``: messages carry GNU Radio tag headers
    (``pass_tags=True``); ``align``: see :mod:`sdr.transport.gr_align`; ``chunk_samples``: the
    largest aligned chunk handed on; ``max_buffer_samples``: per socket, while another lags.
    """

    endpoints: tuple[tuple[str, str], ...] = ()
    rf_centers_hz: tuple[float, ...] = ()
    sample_rate_hz: float = 30.72e6
    socket: str = "pull"
    item_format: str = "fc32"
    tags: bool = False
    align: str = "auto"
    chunk_samples: int = 1 << 18
    max_buffer_samples: int = 1 << 24

    def _validate(self) -> None:
        bands = [b for b, _ in self.endpoints]
        if len(bands) < 2 or bands[0] != "central" or len(set(bands)) != len(bands):
            self._fail("endpoints", f"need 'central' first and one or both side bands once each, got {bands}")
        if any(b not in BAND_NAMES for b in bands):
            self._fail("endpoints", f"bands must be among {list(BAND_NAMES)}, got {bands}")
        if any(not e.strip() for _, e in self.endpoints):
            self._fail("endpoints", "every band needs an endpoint such as tcp://127.0.0.1:5601")
        if len(self.rf_centers_hz) != len(bands) or not all(f > 0 for f in self.rf_centers_hz):
            self._fail("rf_centers_hz", f"need one positive RF centre per band ({len(bands)})")
        if not (0 < self.sample_rate_hz < 1e10):
            self._fail("sample_rate_hz", "must be a positive rate in Hz")
        if self.socket not in ("sub", "pull", "pub", "push"):
            self._fail("socket", "must be sub or pull (reading GNU Radio), pub or push (feeding it)")
        if self.item_format not in IQ_FORMATS:
            self._fail("item_format", f"must be one of {list(IQ_FORMATS)}")
        if self.align not in ALIGN_MODES:
            self._fail("align", f"must be one of {list(ALIGN_MODES)}")
        if self.align in ("time", "offset") and not self.tags:
            self._fail("align", f"{self.align!r} needs tag headers: set tags (pass_tags=True in GNU Radio)")
        if not (1 <= self.chunk_samples <= MAX_SAMPLES // len(bands)):
            self._fail("chunk_samples", f"must be in [1, {MAX_SAMPLES // len(bands)}]")
        if self.max_buffer_samples < self.chunk_samples:
            self._fail("max_buffer_samples", "must be at least chunk_samples")

    @property
    def bands(self) -> list[str]:
        return [b for b, _ in self.endpoints]

    @property
    def channels(self) -> tuple[Channel, ...]:
        return tuple(Channel(b, float(f)) for b, f in zip(self.bands, self.rf_centers_hz, strict=True))


class GnuRadioSubscriber:
    """Reads GNU Radio ZMQ sinks, one per band: ``recv(timeout_s) -> IQMessage | None``.

    Duck-types :class:`~sdr.transport.IQSubscriber` for the worker and the recorder: ``counters``
    (``received`` = GNU Radio messages accepted), ``drops`` (by reason), ``samples_lost`` and
    ``gaps`` (as ``lost_before`` reports them), ``endpoint``, ``close``.  Headers carry
    ``source="gnuradio"``, the configured rate, channels and ``waveform``.
    """

    def __init__(
        self,
        cfg: GnuRadioConfig,
        waveform: WaveformConfig,
        *,
        insecure: bool = False,
        rcvhwm: int = GR_HWM,
        context: zmq.Context | None = None,
    ):
        if cfg.socket not in ("sub", "pull"):
            raise ValueError(f"a GNU Radio subscriber reads with sub or pull sockets, got {cfg.socket!r}")
        for _, e in cfg.endpoints:
            check_connect(e, curve=False, insecure=insecure)
        self.cfg = cfg
        self.waveform = waveform.replace(capture_rate_hz=float(cfg.sample_rate_hz))
        self.endpoint = "gnuradio:" + ",".join(f"{b}={e}" for b, e in cfg.endpoints)
        self.counters = _Counters()
        self.samples_lost = self.gaps = 0
        self.stream_id: str | None = None
        self._seq = 0
        self._dtype = _ITEM[cfg.item_format]
        self._item_bytes = self._dtype.itemsize
        self.aligner = Aligner(
            len(cfg.endpoints),
            cfg.sample_rate_hz,
            align=cfg.align,
            tagged=cfg.tags,
            dtype=self._dtype,
            chunk_samples=cfg.chunk_samples,
            max_buffer_samples=cfg.max_buffer_samples,
        )
        self._own_ctx = context is None
        self._ctx = zmq.Context() if context is None else context
        self._socks: list[zmq.Socket] = []
        self._poller = zmq.Poller()
        try:
            for _, e in cfg.endpoints:
                s = self._ctx.socket(zmq.SUB if cfg.socket == "sub" else zmq.PULL)
                self._socks.append(s)
                s.setsockopt(zmq.RCVHWM, rcvhwm)
                s.setsockopt(zmq.LINGER, 0)
                s.setsockopt(zmq.MAXMSGSIZE, MAX_SAMPLES * 8 + (1 << 20))
                if cfg.socket == "sub":
                    s.setsockopt(zmq.SUBSCRIBE, b"")
                s.connect(e)
                self._poller.register(s, zmq.POLLIN)
        except BaseException:
            self.close()
            raise

    @property
    def drops(self) -> Counter:
        """Rejected messages by reason (``frames``, ``gr_header``, ``payload``, ``rx_rate``, ``internal``)."""
        return self.counters.drops

    def _is_tag_header(self, buf: memoryview) -> bool:
        """Whether an untagged message really starts with a tag header followed by whole items."""
        try:
            _, _, n = decode_tag_header(buf)
        except GrHeaderError:
            return False
        return (len(buf) - n) % self._item_bytes == 0

    def _parse(self, lane: int, frames: list) -> None:
        if len(frames) not in (1, 2):  # [data] or [key, data]
            self.counters.drops["frames"] += 1
            return
        buf = frames[-1].buffer
        offset, tags, start = None, [], 0
        if self.cfg.tags:
            try:
                offset, tags, start = decode_tag_header(buf)
            except GrHeaderError:
                self.counters.drops["gr_header"] += 1
                return
        elif bytes(buf[:3]) == _HEADER_START and self._is_tag_header(buf):
            self.counters.drops["unexpected_gr_header"] += 1  # pass_tags=True: give --gnuradio-tags
            return
        n_bytes = len(buf) - start
        if n_bytes % self._item_bytes or n_bytes == 0:
            self.counters.drops["payload"] += 1
            return
        for t in tags:
            if t.key == "rx_rate" and (
                not isinstance(t.value, float)
                or abs(t.value - self.cfg.sample_rate_hz) > 1e-9 * self.cfg.sample_rate_hz
            ):
                self.counters.drops["rx_rate"] += 1
                return
            if t.key == "rx_time":
                try:
                    rx_time_s(t.value)
                except GrHeaderError:
                    self.counters.drops["gr_header"] += 1
                    return
        items = np.frombuffer(buf, self._dtype, n_bytes // self._item_bytes, start)
        self.counters.received += 1
        self.aligner.add(lane, offset, items, tags)

    def _drain(self, budget: int = 64) -> int:
        """Read what is queued, round robin over the sockets; the number of messages read."""
        got = 0
        for _ in range(budget):
            progressed = False
            for lane, s in enumerate(self._socks):
                try:
                    frames = s.recv_multipart(flags=zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    continue
                progressed = True
                got += 1
                try:
                    self._parse(lane, frames)
                except Exception:  # never let a message stop the worker: count it
                    self.counters.drops["internal"] += 1
            if not progressed:
                break
        return got

    def _message(self, c: AlignedChunk) -> IQMessage:
        if c.new_stream:
            self.stream_id, self._seq = new_stream_id(), 0
            self.counters.streams += 1
        header = IQHeader(
            stream_id=self.stream_id or new_stream_id(),
            seq=self._seq,
            first_sample=c.first_sample,
            time_s=c.index / self.cfg.sample_rate_hz,
            sample_rate_hz=float(self.cfg.sample_rate_hz),
            channels=self.cfg.channels,
            format=self.cfg.item_format,
            n_samples=c.iq.shape[1],
            lost_before=c.lost_before,
            waveform=self.waveform,
            source="gnuradio",
        )
        self._seq += 1
        self.samples_lost += c.lost_before
        self.gaps += c.lost_before > 0
        iq = c.iq if self.cfg.item_format == "fc32" else c.iq.view("<i2").reshape(*c.iq.shape, 2)
        return IQMessage(header, iq, c.lost_before, 0, c.new_stream)

    def recv(self, timeout_s: float | None = None) -> IQMessage | None:
        """The next aligned chunk, or ``None`` after ``timeout_s`` (``None``: wait forever)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            chunk = self.aligner.take()
            if chunk is not None:
                return self._message(chunk)
            if self._drain():
                continue
            remaining = GR_FLUSH_AFTER_S if deadline is None else deadline - time.monotonic()
            wait_s = min(remaining, GR_FLUSH_AFTER_S)
            if wait_s > 0 and self._poller.poll(int(wait_s * 1000) + 1):
                continue
            chunk = self.aligner.take(flush=True)  # quiet for a while: hand on what is aligned
            if chunk is not None:
                return self._message(chunk)
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def close(self) -> None:
        for s in self._socks:
            _close_socket(s, 0)
        if self._own_ctx and not self._ctx.closed:
            self._ctx.term()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class GnuRadioPublisher:
    """Sends each band of a stream on its own socket, as GNU Radio's ZMQ sources read it.

    ``send(iq, first_sample, time_s, lost_before, stop)`` takes the chunks
    :class:`~sdr.transport.IQPublisher` takes.  Items are complex64 (``item_format`` fc32) or
    int16 pairs (sc16); with ``tags`` every message starts with a tag header: ``rx_time``,
    ``rx_rate`` and ``rx_freq`` on the first item, ``rx_time`` on the first item after a gap.
    Item offsets count the items sent (as GNU Radio's ``nitems_read``).
    """

    def __init__(self, cfg: GnuRadioConfig, *, insecure: bool = False, context: zmq.Context | None = None):
        if cfg.socket not in ("pub", "push"):
            raise ValueError(f"a GNU Radio publisher sends with pub or push sockets, got {cfg.socket!r}")
        for _, e in cfg.endpoints:
            check_bind(e, curve=False, insecure=insecure)
        self.cfg = cfg
        self.items_sent = 0
        self.bytes_sent = 0
        self._next_sample: int | None = None
        self._own_ctx = context is None
        self._ctx = zmq.Context() if context is None else context
        self._socks: list[zmq.Socket] = []
        try:
            for _, e in cfg.endpoints:
                s = self._ctx.socket(zmq.XPUB if cfg.socket == "pub" else zmq.PUSH)
                self._socks.append(s)
                s.setsockopt(zmq.SNDHWM, GR_HWM)
                s.setsockopt(zmq.LINGER, 200)
                s.bind(e)
        except BaseException:
            self.close(0)
            raise
        self.endpoints = [s.getsockopt_string(zmq.LAST_ENDPOINT) for s in self._socks]

    def wait_for_subscribers(self, timeout_s: float, stop: threading.Event | None = None) -> bool:
        """PUB: wait until every band's socket has a subscriber (slow-joiner guard)."""
        if self.cfg.socket != "pub":
            return True
        waiting = set(range(len(self._socks)))
        deadline = time.monotonic() + timeout_s
        while waiting and time.monotonic() < deadline and not (stop and stop.is_set()):
            for i in list(waiting):
                if self._socks[i].poll(10, zmq.POLLIN) and self._socks[i].recv()[:1] == b"\x01":
                    waiting.discard(i)
        return not waiting

    def _tags(self, first_sample: int, time_s: float, band_index: int) -> list[tuple[int, str, bytes]]:
        if self._next_sample is None:
            return [
                (self.items_sent, "rx_time", pmt_rx_time(time_s)),
                (self.items_sent, "rx_rate", pmt_double(self.cfg.sample_rate_hz)),
                (self.items_sent, "rx_freq", pmt_double(self.cfg.rf_centers_hz[band_index])),
            ]
        if first_sample != self._next_sample:
            return [(self.items_sent, "rx_time", pmt_rx_time(time_s))]
        return []

    def send(
        self,
        iq: np.ndarray,
        first_sample: int,
        time_s: float,
        lost_before: int = 0,
        stop: threading.Event | None = None,
    ) -> bool:
        """Send one chunk (complex ``[channel, sample]`` or sc16 ``[channel, sample, 2]``).

        PUSH waits while a consumer's queue is full; returns ``False`` if ``stop`` was set
        meanwhile (the chunk may then be partly sent).
        """
        payload = as_wire_array(iq, self.cfg.item_format)
        if payload.shape[0] != len(self._socks):
            raise ValueError(f"chunk has {payload.shape[0]} channels, {len(self._socks)} GNU Radio sockets")
        n = payload.shape[1]
        for i, s in enumerate(self._socks):
            row = payload[i]
            if self.cfg.tags:
                head = encode_tag_header(self.items_sent, self._tags(first_sample, time_s, i))
                frame = head + row.tobytes()
            else:
                frame = row
            while True:
                try:
                    s.send(frame, flags=zmq.NOBLOCK, copy=False)
                    break
                except zmq.Again:
                    if stop is not None and stop.is_set():
                        return False
                    s.poll(100, zmq.POLLOUT)
            self.bytes_sent += row.nbytes
        self.items_sent += n
        self._next_sample = first_sample + n
        return True

    def close(self, linger_s: float = 0.2) -> None:
        for s in self._socks:
            _close_socket(s, int(linger_s * 1000))
        if self._own_ctx and not self._ctx.closed:
            self._ctx.term()
