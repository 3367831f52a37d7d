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
Import everything from here: :class:`GnuRadioConfig` lives in :mod:`~sdr.transport.gr_config`,
:class:`GnuRadioPublisher` in :mod:`~sdr.transport.gr_publisher`.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Self

import numpy as np
import zmq

from dsp.waveform import WaveformConfig
from sdr.security import check_connect
from sdr.transport.gr_align import AlignedChunk, Aligner
from sdr.transport.gr_config import GR_HWM, GnuRadioConfig
from sdr.transport.gr_publisher import GnuRadioPublisher
from sdr.transport.gr_tags import (
    GR_HEADER_MAGIC,
    GR_HEADER_VERSION,
    GrHeaderError,
    decode_tag_header,
    rx_time_s,
)
from sdr.transport.publishers import _close_socket
from sdr.transport.subscribers import _Counters
from sdr.transport.wire import (
    MAX_SAMPLES,
    IQHeader,
    IQMessage,
    new_stream_id,
)

GR_FLUSH_AFTER_S = 0.02  # a partial chunk goes out after this long without new items
_HEADER_START = GR_HEADER_MAGIC.to_bytes(2, "little") + bytes([GR_HEADER_VERSION])
# items as one scalar each (an I/Q pair of int16 as one uint32): 1-D copies are the cheapest
_ITEM = {"fc32": np.dtype("<c8"), "sc16": np.dtype("<u4")}


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
        self.waveform = waveform.replace(capture_rate_hz=float(cfg.capture_rate_hz))
        self.endpoint = "gnuradio:" + ",".join(f"{b}={e}" for b, e in cfg.endpoints)
        self.counters = _Counters()
        self.samples_lost = self.gaps = 0
        self.stream_id: str | None = None
        self._seq = 0
        self._dtype = _ITEM[cfg.item_format]
        self._item_bytes = self._dtype.itemsize
        self.aligner = Aligner(
            len(cfg.endpoints),
            cfg.capture_rate_hz,
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
                or abs(t.value - self.cfg.capture_rate_hz) > 1e-9 * self.cfg.capture_rate_hz
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
                    frames = [s.recv(flags=zmq.NOBLOCK, copy=False)]
                    while frames[-1].more:  # a key frame first (a sink given a key)
                        frames.append(s.recv(copy=False))
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
            capture_index=c.capture_index,
            time_s=c.index / self.cfg.capture_rate_hz,
            capture_rate_hz=float(self.cfg.capture_rate_hz),
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


__all__ = ["GR_FLUSH_AFTER_S", "GR_HWM", "GnuRadioConfig", "GnuRadioPublisher", "GnuRadioSubscriber"]
