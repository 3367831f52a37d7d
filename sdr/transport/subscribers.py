"""Consumers: :class:`IQSubscriber` (SUB or PULL) and :class:`ResultSubscriber` (SUB).

They never raise on a bad message: every rejected message is counted in ``drops`` under one of
:data:`~sdr.transport.wire.DROP_REASONS` and skipped.  They track ``seq`` per ``stream_id``,
report lost messages and (IQ) the samples lost with them, and treat a new ``stream_id``
(streamer restart) as a new stream.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import zmq

from sdr.security import ClientKeys, apply_client_keys
from sdr.transport.codec import decode
from sdr.transport.publishers import _close_socket
from sdr.transport.wire import (
    IQ_HWM,
    IQ_TOPIC,
    MAX_PAYLOAD_BYTES,
    RESULT_HWM,
    RESULT_KINDS,
    IQMessage,
    MessageError,
    ResultMessage,
)


@dataclass
class _StreamState:
    next_seq: int
    next_capture_index: int = 0


@dataclass
class _Counters:
    received: int = 0
    drops: Counter = field(default_factory=Counter)
    messages_missed: int = 0
    streams: int = 0


class _Subscriber:
    """Shared socket handling, drop counting and per-stream sequence tracking."""

    _MAX_TRACKED_STREAMS = 8

    def __init__(
        self,
        endpoint: str,
        socket_type: int,
        topics: Sequence[str],
        rcvhwm: int,
        client_keys: ClientKeys | None,
        context: zmq.Context | None,
    ):
        self._own_ctx = context is None
        self._ctx = zmq.Context() if context is None else context
        self._sock = self._ctx.socket(socket_type)
        self.counters = _Counters()
        self._streams: dict[str, _StreamState] = {}
        self.stream_id: str | None = None
        self.last_error: MessageError | None = None
        try:
            self._sock.setsockopt(zmq.RCVHWM, rcvhwm)
            self._sock.setsockopt(zmq.LINGER, 0)
            self._sock.setsockopt(zmq.MAXMSGSIZE, MAX_PAYLOAD_BYTES)
            if client_keys is not None:
                apply_client_keys(self._sock, client_keys)
            if socket_type == zmq.SUB:
                for t in topics:
                    self._sock.setsockopt(zmq.SUBSCRIBE, t.encode())
            self._sock.connect(endpoint)
        except BaseException:
            self.close()
            raise
        self.endpoint = endpoint

    @property
    def drops(self) -> Counter:
        """Rejected messages by reason (keys from :data:`DROP_REASONS`)."""
        return self.counters.drops

    def _track(self, stream_id: str, seq: int) -> tuple[_StreamState, int, bool]:
        """``(state, messages_missed, new_stream)``; raises ``MessageError('stale')`` on replays."""
        st = self._streams.get(stream_id)
        if st is None:
            if len(self._streams) >= self._MAX_TRACKED_STREAMS:
                self._streams.pop(next(iter(self._streams)))
            st = self._streams[stream_id] = _StreamState(seq)
            self.counters.streams += 1
            self.stream_id = stream_id
            return st, 0, True
        if seq < st.next_seq:
            raise MessageError("stale", f"seq {seq} after {st.next_seq - 1} in stream {stream_id}")
        return st, seq - st.next_seq, False

    def _accept(self, msg: IQMessage | ResultMessage) -> IQMessage | ResultMessage:
        raise NotImplementedError

    def accept(self, frames: Sequence[Any]) -> IQMessage | ResultMessage | None:
        """Decode, validate and account for one received message; ``None`` if it was dropped.

        Never raises for any content of ``frames``.
        """
        try:
            msg = self._accept(decode(frames))
        except MessageError as exc:
            self.counters.drops[exc.reason] += 1
            self.last_error = exc
            return None
        except Exception as exc:  # the consumer must keep running whatever arrives
            self.counters.drops["internal"] += 1
            self.last_error = MessageError("internal", f"{type(exc).__name__}: {exc}")
            return None
        self.counters.received += 1
        return msg

    def _recv(self, timeout_s: float | None) -> IQMessage | ResultMessage | None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            try:  # a queued message is taken without a poll
                frames = self._sock.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                remaining = 0.1 if deadline is None else deadline - time.monotonic()
                if remaining < 0:
                    return None
                self._sock.poll(int(min(remaining, 0.1) * 1000) + 1, zmq.POLLIN)
                continue
            msg = self.accept(frames)
            if msg is not None:
                return msg

    def close(self) -> None:
        _close_socket(self._sock, 0)
        if self._own_ctx and not self._ctx.closed:
            self._ctx.term()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class IQSubscriber(_Subscriber):
    """Receives IQ: ``recv(timeout_s) -> IQMessage | None``; connects SUB (default) or PULL.

    Counters: ``counters.received``, ``drops`` (by reason), ``counters.messages_missed``,
    ``samples_lost`` (all ``lost_before``, including samples of lost messages), ``gaps``
    (messages with ``lost_before > 0``), ``counters.streams`` (distinct stream ids).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        mode: str = "sub",
        client_keys: ClientKeys | None = None,
        rcvhwm: int = IQ_HWM,
        context: zmq.Context | None = None,
    ):
        if mode not in ("sub", "pull"):
            raise ValueError(f"mode must be 'sub' or 'pull', got {mode!r}")
        self.samples_lost = 0
        self.gaps = 0
        super().__init__(
            endpoint, zmq.SUB if mode == "sub" else zmq.PULL, [IQ_TOPIC], rcvhwm, client_keys, context
        )

    def _accept(self, msg: IQMessage | ResultMessage) -> IQMessage:
        if not isinstance(msg, IQMessage):
            raise MessageError("topic", f"result message {msg.kind!r} on an IQ socket")
        h = msg.header
        st, missed, new = self._track(h.stream_id, h.seq)
        lost = h.lost_before
        if not new:
            if h.capture_index < st.next_capture_index:
                raise MessageError(
                    "stale", f"capture_index {h.capture_index} before the expected {st.next_capture_index}"
                )
            lost = h.capture_index - st.next_capture_index  # includes the header's own lost_before
        st.next_seq = h.seq + 1
        st.next_capture_index = h.capture_index + h.n_samples
        self.counters.messages_missed += missed
        self.samples_lost += lost
        self.gaps += lost > 0
        return IQMessage(h, msg.iq, lost, missed, new)

    def recv(self, timeout_s: float | None = None) -> IQMessage | None:
        """The next valid IQ message, or ``None`` after ``timeout_s`` (``None``: wait forever)."""
        return self._recv(timeout_s)  # type: ignore[return-value]


class ResultSubscriber(_Subscriber):
    """Receives results on SUB: ``recv(timeout_s) -> ResultMessage | None``.

    ``kinds`` limits the subscription (default: every result kind).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        kinds: Sequence[str] = RESULT_KINDS,
        client_keys: ClientKeys | None = None,
        rcvhwm: int = RESULT_HWM,
        context: zmq.Context | None = None,
    ):
        bad = sorted(set(kinds) - set(RESULT_KINDS))
        if bad:
            raise ValueError(f"unknown result kinds {bad}; known: {RESULT_KINDS}")
        self.kinds = tuple(kinds)
        super().__init__(endpoint, zmq.SUB, self.kinds, rcvhwm, client_keys, context)

    def _accept(self, msg: IQMessage | ResultMessage) -> ResultMessage:
        if not isinstance(msg, ResultMessage):
            raise MessageError("topic", "IQ message on a result socket")
        if msg.kind not in self.kinds:
            raise MessageError("topic", f"result kind {msg.kind!r} not subscribed")
        st, missed, new = self._track(msg.stream_id, msg.seq)
        st.next_seq = msg.seq + 1
        self.counters.messages_missed += missed
        return ResultMessage(
            msg.kind, msg.stream_id, msg.seq, msg.time_s, msg.fields, msg.arrays, missed, new
        )

    def recv(self, timeout_s: float | None = None) -> ResultMessage | None:
        """The next valid result, or ``None`` after ``timeout_s`` (``None``: wait forever)."""
        return self._recv(timeout_s)  # type: ignore[return-value]
