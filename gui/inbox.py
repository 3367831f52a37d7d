"""Thread-safe hand-over from a source thread to the GUI thread, with the source's state.

A source thread ``put``s every result and updates :class:`SourceStatus`; the GUI's
draw timer ``drain``s everything at its own bounded rate, so a fast producer never
blocks or floods the event loop.  Each kind is queued separately with its own bound:
every packet is kept (up to a very high cap) because the packet log and the BER need
them all; a kind that overflows its bound loses its oldest entries, counted.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace

from sdr.results_wire import WireResult

QUEUE_BOUNDS = {"packet": 100_000, "epoch": 2048, "gap": 4096, "calibration": 4096}
DEFAULT_BOUND = 256


@dataclass
class SourceStatus:
    """What the GUI knows about where results come from (a copy; safe to read anywhere)."""

    description: str  # "tcp://host:port" or "replay FILE"
    mode: str  # "connect" or "replay"
    started_s: float  # time.monotonic() when the source started
    last_message_s: float | None = None  # time.monotonic() of the newest message
    messages: int = 0
    connected: bool | None = None  # socket monitor state (None: unknown / not a socket)
    finished: bool = False  # a replay reached the end of its file
    error: str | None = None  # the source stopped on this error
    note: str = ""  # free text, e.g. the replay's progress
    capture_rate_hz: float | None = None
    decode_errors: dict[str, int] = field(default_factory=dict)  # reason -> messages
    lost_in_transit: int = 0  # sequence-number jumps (messages the socket never delivered)
    overflow: dict[str, int] = field(default_factory=dict)  # kind -> messages dropped by the inbox


class Inbox:
    """Bounded per-kind queues plus a :class:`SourceStatus`, all behind one lock."""

    def __init__(self, description: str, mode: str):
        self._lock = threading.Lock()
        self._queues: dict[str, deque[WireResult]] = {}
        self._status = SourceStatus(description, mode, time.monotonic())
        self._last_seq: dict[str, int] = {}
        self._undecoded = 0  # decode errors since the last good message (their seq is unknown)

    def put(
        self, kind: str, fields: dict, arrays: dict, stream_id: str | None = None, seq: int | None = None
    ) -> None:
        """Queue one result (any thread); counts sequence gaps within a ``stream_id``."""
        with self._lock:
            q = self._queues.get(kind)
            if q is None:
                q = self._queues[kind] = deque(maxlen=QUEUE_BOUNDS.get(kind, DEFAULT_BOUND))
            if len(q) == q.maxlen:
                self._status.overflow[kind] = self._status.overflow.get(kind, 0) + 1
            q.append((kind, fields, arrays))
            st = self._status
            st.messages += 1
            st.last_message_s = time.monotonic()
            if stream_id is not None and seq is not None:
                prev = self._last_seq.get(stream_id)
                if prev is not None and seq > prev + 1:  # minus the ones that arrived but were bad
                    st.lost_in_transit += max(0, seq - prev - 1 - self._undecoded)
                self._last_seq[stream_id] = seq
            self._undecoded = 0

    def drain(self) -> list[WireResult]:
        """Everything queued, oldest first within each kind (GUI thread)."""
        with self._lock:
            out = [m for q in self._queues.values() for m in q]
            for q in self._queues.values():
                q.clear()
        return out

    def decode_error(self, reason: str) -> None:
        with self._lock:
            self._status.decode_errors[reason] = self._status.decode_errors.get(reason, 0) + 1
            self._undecoded += 1

    def update(self, **changes: object) -> None:
        """Set :class:`SourceStatus` fields (``connected``, ``finished``, ``error``, ``note``...)."""
        with self._lock:
            for k, v in changes.items():
                if not hasattr(self._status, k):
                    raise AttributeError(f"SourceStatus has no field {k!r}")
                setattr(self._status, k, v)

    def status(self) -> SourceStatus:
        with self._lock:
            st = self._status
            return replace(st, decode_errors=dict(st.decode_errors), overflow=dict(st.overflow))
