"""Publishing our stream for GNU Radio's ZMQ sources (``sdr.transport.gnuradio``)."""

from __future__ import annotations

import threading
import time

import numpy as np
import zmq

from sdr.security import check_bind
from sdr.transport.gr_config import GR_HWM, GnuRadioConfig
from sdr.transport.gr_tags import encode_tag_header, pmt_double, pmt_rx_time
from sdr.transport.publishers import _close_socket
from sdr.transport.wire import as_wire_array


class GnuRadioPublisher:
    """Sends each band of a stream on its own socket, as GNU Radio's ZMQ sources read it.

    ``send(iq, capture_index, time_s, lost_before, stop)`` takes the chunks
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
        self._next_capture_index: int | None = None
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

    def _tags(self, capture_index: int, time_s: float, band_index: int) -> list[tuple[int, str, bytes]]:
        if self._next_capture_index is None:
            return [
                (self.items_sent, "rx_time", pmt_rx_time(time_s)),
                (self.items_sent, "rx_rate", pmt_double(self.cfg.capture_rate_hz)),
                (self.items_sent, "rx_freq", pmt_double(self.cfg.rf_centers_hz[band_index])),
            ]
        if capture_index != self._next_capture_index:
            return [(self.items_sent, "rx_time", pmt_rx_time(time_s))]
        return []

    def send(
        self,
        iq: np.ndarray,
        capture_index: int,
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
                head = encode_tag_header(self.items_sent, self._tags(capture_index, time_s, i))
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
        self._next_capture_index = capture_index + n
        return True

    def close(self, linger_s: float = 0.2) -> None:
        for s in self._socks:
            _close_socket(s, int(linger_s * 1000))
        if self._own_ctx and not self._ctx.closed:
            self._ctx.term()
