"""Producers: :class:`IQPublisher` (XPUB or PUSH) and :class:`ResultPublisher` (PUB).

Payloads go out zero-copy (``send_multipart(copy=False)``): a sent array must not be modified
afterwards.  Both bind under the policy of :mod:`sdr.security` (loopback, CURVE keys or an
explicit ``insecure``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import zmq
from zmq.utils.monitor import recv_monitor_message

from dsp.waveform import WaveformConfig
from sdr.security import CurveServer, ServerKeys, check_bind
from sdr.stream_truth import StreamTruth
from sdr.transport.codec import encode_iq, encode_result
from sdr.transport.wire import (
    IQ_FORMATS,
    IQ_HWM,
    IQ_SOURCES,
    IQ_TOPIC,
    LINGER_MS,
    RESULT_HWM,
    Channel,
    IQHeader,
    as_wire_array,
    new_stream_id,
)


def _close_socket(sock: zmq.Socket, linger_ms: int) -> None:
    if not sock.closed:
        sock.close(linger=linger_ms)


@dataclass
class Unsent:
    """What a PUSH publisher with a send timeout gave up sending: no consumer took it.

    ``dropping``: the newest message was not sent (the consumer is given up until a send
    succeeds again); ``stretches``: how many times a consumer was given up, each one a gap on
    the wire (the messages' ``seq`` numbers are used, so a consumer sees the jump); ``reason``
    and ``since_s`` (``time.monotonic()``) of the newest stretch.
    """

    messages: int = 0
    samples: int = 0
    stretches: int = 0
    dropping: bool = False
    reason: str = ""
    since_s: float | None = None


class IQPublisher:
    """Sends one stream of IQ chunks: ``send(iq, capture_index, time_s, lost_before)``.

    ``mode`` ``"pub"`` (XPUB: drops whole messages for a slow subscriber) or ``"push"`` (lossless
    to one consumer: ``send`` waits while the consumer's queue is full).  In push mode
    ``send_timeout_s`` bounds that wait once a consumer has connected: when the consumer
    disconnects (seen at once, by a socket monitor) or takes no message for ``send_timeout_s``,
    ``send`` stops waiting and drops messages, counted in :attr:`unsent`, until one can be sent
    again (a restarted consumer gets the stream from there on); ``None`` waits as long as it
    takes.  Before the first consumer connects it always waits.  Binds ``endpoint``
    under the bind policy of :mod:`sdr.security`: CURVE ``server_keys`` or ``insecure=True``
    unless the endpoint is loopback.  ``endpoint`` may use port ``*``; :attr:`endpoint` then
    holds the port actually bound.  Raises ``ConfigError`` when ``waveform`` cannot be read at
    ``capture_rate_hz`` (consumers would drop every message).  With ``server_keys`` the
    publisher runs a ZAP authenticator on its context: give it a context of its own (the
    default), as ZeroMQ allows one authenticator per context.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        capture_rate_hz: float,
        channels: Sequence[tuple[str, float]],
        waveform: WaveformConfig,
        source: str,
        mode: str = "pub",
        fmt: str = "sc16",
        server_keys: ServerKeys | None = None,
        insecure: bool = False,
        sndhwm: int = IQ_HWM,
        context: zmq.Context | None = None,
        truth: StreamTruth | None = None,
        send_timeout_s: float | None = None,
    ):
        if mode not in ("pub", "push"):
            raise ValueError(f"mode must be 'pub' or 'push', got {mode!r}")
        if fmt not in IQ_FORMATS:
            raise ValueError(f"format must be one of {IQ_FORMATS}, got {fmt!r}")
        if source not in IQ_SOURCES:
            raise ValueError(f"source must be one of {IQ_SOURCES}, got {source!r}")
        # consumers read the waveform at the stream's rate: refuse a pair they would drop
        waveform = waveform.replace(capture_rate_hz=float(capture_rate_hz))
        check_bind(endpoint, curve=server_keys is not None, insecure=insecure)
        self.mode, self.fmt, self.source = mode, fmt, source
        self.capture_rate_hz = float(capture_rate_hz)
        self.channels = [Channel(str(b), float(f)) for b, f in channels]
        self.waveform = waveform
        self._wf_dict = waveform.to_dict()
        self.truth = truth
        self._truth_dict = truth.to_dict() if truth is not None else None
        self.stream_id = new_stream_id()
        self.seq = 0
        self.bytes_sent = 0
        self.send_timeout_s = send_timeout_s if mode == "push" and send_timeout_s else None
        self.unsent = Unsent()
        self._consumers = 0  # connected now, by the socket monitor's events
        self._consumer_seen = False  # a consumer has taken a message once
        self._own_ctx = context is None
        self._ctx = zmq.Context() if context is None else context
        self._curve: CurveServer | None = None
        self._monitor: zmq.Socket | None = None
        self._sock = self._ctx.socket(zmq.XPUB if mode == "pub" else zmq.PUSH)
        try:
            self._sock.setsockopt(zmq.SNDHWM, sndhwm)
            self._sock.setsockopt(zmq.LINGER, LINGER_MS)
            if self.send_timeout_s is not None:  # before bind: no connection goes unseen
                self._monitor = self._sock.get_monitor_socket(zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED)
            if server_keys is not None:
                self._curve = CurveServer(self._ctx, server_keys)
                self._curve.apply(self._sock)
            self._sock.bind(endpoint)
            self.endpoint = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        except BaseException:
            self.close(linger_s=0)
            raise

    def wait_for_subscriber(self, timeout_s: float, stop: threading.Event | None = None) -> bool:
        """PUB only: wait until a subscriber has subscribed to ``iq`` (slow-joiner guard)."""
        if self.mode != "pub":
            return True
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0 and not (stop and stop.is_set()):
            if self._sock.poll(int(min(remaining, 0.1) * 1000) + 1, zmq.POLLIN):
                msg = self._sock.recv()
                if msg[:1] == b"\x01" and IQ_TOPIC.encode().startswith(msg[1:]):
                    return True
        return False

    def send(
        self,
        iq: np.ndarray,
        capture_index: int,
        time_s: float,
        lost_before: int = 0,
        stop: threading.Event | None = None,
    ) -> IQHeader | None:
        """Send one chunk (complex ``[channel, sample]`` or sc16 ``[channel, sample, 2]``).

        The payload is sent zero-copy: do not modify ``iq`` afterwards.  In push mode this
        waits while the consumer's queue is full; it returns ``None`` if ``stop`` is set
        meanwhile (nothing was sent).  Returns the message's header: sent, or, with a
        ``send_timeout_s``, given up (then ``unsent.dropping`` is true and the message is
        counted in :attr:`unsent`; its ``seq`` is used all the same).
        """
        payload = as_wire_array(iq, self.fmt)
        frames = encode_iq(
            stream_id=self.stream_id,
            seq=self.seq,
            capture_index=capture_index,
            time_s=time_s,
            capture_rate_hz=self.capture_rate_hz,
            channels=self.channels,
            waveform=self._wf_dict,
            source=self.source,
            iq=payload,
            lost_before=lost_before,
            fmt=self.fmt,
            truth=self._truth_dict,
        )
        sent = self._send_frames(frames, stop)
        if sent is None:
            return None
        header = IQHeader(
            stream_id=self.stream_id,
            seq=self.seq,
            capture_index=int(capture_index),
            time_s=float(time_s),
            capture_rate_hz=self.capture_rate_hz,
            channels=tuple(self.channels),
            format=self.fmt,
            n_samples=payload.shape[1],
            lost_before=int(lost_before),
            waveform=self.waveform,
            source=self.source,
            truth=self.truth,
        )
        self.seq += 1
        if sent:
            self.bytes_sent += payload.nbytes
        else:
            self.unsent.messages += 1
            self.unsent.samples += payload.shape[1]
        return header

    def _send_frames(self, frames: list[Any], stop: threading.Event | None) -> bool | None:
        """``True``: sent; ``False``: given up (the consumer gone, see :attr:`unsent`); ``None``: stopped."""
        blocked_since = None
        while True:  # XPUB never blocks (it drops); PUSH waits for room, watching ``stop``
            if self._no_consumer():  # nothing goes into the pipe of one that has left
                return self._give_up("the consumer disconnected")
            if self.unsent.dropping:
                # A consumer is back: reading ZMQ_EVENTS makes libzmq apply its pending pipe
                # commands at once (a send applies them only every ~1 ms), so the departed
                # consumer's pipe is closed before this message could be written into it.
                self._sock.get(zmq.EVENTS)
            try:
                self._sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
                self._consumer_seen = True
                self.unsent.dropping = False  # a consumer takes messages (again)
                return True
            except zmq.Again:
                if stop is not None and stop.is_set():
                    return None
                if self.send_timeout_s is None or not self._consumer_seen:
                    self._sock.poll(100, zmq.POLLOUT)  # the stream waits for its first consumer
                    continue
                if self.unsent.dropping:  # given up already: no wait per message until one goes out
                    return self._give_up(self.unsent.reason)
                now = time.monotonic()
                blocked_since = now if blocked_since is None else blocked_since
                left = self.send_timeout_s - (now - blocked_since)
                if left <= 0:
                    return self._give_up(f"no consumer took a message for {self.send_timeout_s:g} s")
                self._sock.poll(int(min(left, 0.1) * 1000) + 1, zmq.POLLOUT)

    def _give_up(self, reason: str) -> bool:
        """Drop the message now (``False``), starting a stretch of them unless one is running."""
        if not self.unsent.dropping:
            self.unsent.dropping, self.unsent.reason = True, reason
            self.unsent.since_s = time.monotonic()
            self.unsent.stretches += 1
        return False

    def _no_consumer(self) -> bool:
        """A consumer has taken messages and none is connected now (the socket monitor's word)."""
        if self._monitor is None or not self._consumer_seen:
            return False
        self._count_consumers()
        return self._consumers == 0

    def _count_consumers(self) -> None:
        """Apply the socket monitor's connection events to :attr:`_consumers`."""
        while self._monitor is not None and self._monitor.poll(0):
            event = recv_monitor_message(self._monitor)["event"]
            if event == zmq.EVENT_ACCEPTED:
                self._consumers += 1
            elif event == zmq.EVENT_DISCONNECTED:
                self._consumers = max(0, self._consumers - 1)

    @property
    def consumers(self) -> int | None:
        """Consumers connected now (push mode with a send timeout; else ``None``: not watched)."""
        if self._monitor is None:
            return None
        self._count_consumers()
        return self._consumers

    def close(self, linger_s: float = LINGER_MS / 1000) -> None:
        """Close, letting queued messages go out for at most ``linger_s``."""
        if self._monitor is not None:
            if not self._sock.closed:
                self._sock.disable_monitor()
            self._monitor.close(linger=0)
            self._monitor = None
        _close_socket(self._sock, int(linger_s * 1000))
        if self._curve is not None:
            self._curve.stop()
        if self._own_ctx and not self._ctx.closed:
            self._ctx.term()

    def __enter__(self) -> IQPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ResultPublisher:
    """Publishes receiver results on PUB: ``send(kind, fields, arrays)`` (a ``results_wire`` tuple)."""

    def __init__(
        self,
        endpoint: str,
        *,
        server_keys: ServerKeys | None = None,
        insecure: bool = False,
        sndhwm: int = RESULT_HWM,
        context: zmq.Context | None = None,
    ):
        check_bind(endpoint, curve=server_keys is not None, insecure=insecure)
        self.stream_id = new_stream_id()
        self.seq = 0
        self._own_ctx = context is None
        self._ctx = zmq.Context() if context is None else context
        self._curve: CurveServer | None = None
        self._sock = self._ctx.socket(zmq.PUB)
        try:
            self._sock.setsockopt(zmq.SNDHWM, sndhwm)
            self._sock.setsockopt(zmq.LINGER, LINGER_MS)
            if server_keys is not None:
                self._curve = CurveServer(self._ctx, server_keys)
                self._curve.apply(self._sock)
            self._sock.bind(endpoint)
            self.endpoint = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        except BaseException:
            self.close()
            raise

    def send(
        self, kind: str, fields: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None
    ) -> None:
        """Publish one result; never blocks (a slow subscriber loses messages, and sees the seq gap)."""
        frames = encode_result(kind, fields, arrays or {}, stream_id=self.stream_id, seq=self.seq)
        self._sock.send_multipart(frames, copy=False)
        self.seq += 1

    def close(self) -> None:
        _close_socket(self._sock, LINGER_MS)
        if self._curve is not None:
            self._curve.stop()
        if self._own_ctx and not self._ctx.closed:
            self._ctx.term()

    def __enter__(self) -> ResultPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
