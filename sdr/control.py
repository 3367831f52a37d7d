"""A small control channel to a running worker: settings for its next epochs.

The worker binds a ZeroMQ PULL socket (``backscatter worker --control ENDPOINT``, loopback
unless ``--insecure``); a client (the GUI) PUSHes one JSON object per message::

    {"v": 1, "kind": "settings", "tx_rx_distance_m": 12.5, "methods": ["ir_first", "music"]}

Both keys are optional (``tx_rx_distance_m`` null: estimate it).  Every message is validated
by :func:`parse_settings`; a malformed one (not JSON, unknown kind or key, a distance out of
range, an unknown method, over :data:`MAX_CONTROL_BYTES`) is counted by reason and dropped.
An accepted one replaces the worker's settings: its receiver is rebuilt with them at the next
IQ message (it re-acquires within about a packet).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import zmq

from dsp.config_base import ConfigError
from dsp.errors import BackscatterError
from dsp.ranging import REGISTRY
from dsp.receiver_config import ReceiverConfig
from sdr.security import check_bind
from sdr.stream_truth import StreamTruth

CONTROL_VERSION = 1
MAX_CONTROL_BYTES = 4096
MAX_DISTANCE_M = 1e5  # ReceiverConfig's bound on tx_rx_distance_m
_KEYS = {"v", "kind", "tx_rx_distance_m", "methods"}


class ControlError(BackscatterError, ValueError):
    """A malformed control message; ``reason`` is the counter key."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class WorkerSettings:
    """What the GUI may change; ``None`` fields leave the worker's own setting."""

    tx_rx_distance_m: float | None = None
    methods: tuple[str, ...] | None = None
    set_distance: bool = False  # the message named tx_rx_distance_m (null: estimate it)

    def to_message(self) -> bytes:
        d: dict[str, Any] = {"v": CONTROL_VERSION, "kind": "settings"}
        if self.set_distance:
            d["tx_rx_distance_m"] = self.tx_rx_distance_m
        if self.methods is not None:
            d["methods"] = list(self.methods)
        return json.dumps(d).encode()


def parse_settings(frame: bytes) -> WorkerSettings:
    """Validate one control message; raises :class:`ControlError` naming the field."""
    if len(frame) > MAX_CONTROL_BYTES:
        raise ControlError("size", f"{len(frame)} bytes > {MAX_CONTROL_BYTES}")
    try:
        d = json.loads(frame)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ControlError("json", str(exc)[:80]) from None
    if not isinstance(d, dict):
        raise ControlError("json", "not a JSON object")
    if d.get("v") != CONTROL_VERSION:
        raise ControlError("version", f"v must be {CONTROL_VERSION}, got {d.get('v')!r:.20}")
    if d.get("kind") != "settings":
        raise ControlError("kind", f"kind must be 'settings', got {d.get('kind')!r:.20}")
    unknown = sorted(set(d) - _KEYS)
    if unknown:
        raise ControlError("field", f"unknown fields {unknown[:5]}")
    dist = d.get("tx_rx_distance_m")
    if dist is not None and (
        isinstance(dist, bool)
        or not isinstance(dist, (int, float))
        or not math.isfinite(dist)
        or not 0 <= dist < MAX_DISTANCE_M
    ):
        raise ControlError(
            "tx_rx_distance_m", f"must be a number in [0, {MAX_DISTANCE_M:g}) or null, got {dist!r:.20}"
        )
    methods = d.get("methods")
    if methods is not None:
        if not isinstance(methods, list) or not methods or not all(isinstance(m, str) for m in methods):
            raise ControlError("methods", "must be a non-empty list of method names")
        bad = sorted(set(methods) - set(REGISTRY))
        if bad:
            raise ControlError("methods", f"unknown {bad[:5]}; known: {sorted(REGISTRY)}")
        methods = tuple(dict.fromkeys(methods))
    return WorkerSettings(
        None if dist is None else float(dist), methods, set_distance="tx_rx_distance_m" in d
    )


class ControlServer:
    """The worker's end: a bound PULL socket polled without blocking."""

    def __init__(self, endpoint: str, insecure: bool = False, context: zmq.Context | None = None):
        check_bind(endpoint, curve=False, insecure=insecure)
        self._own = context is None
        self._ctx = context or zmq.Context()
        self._sock = self._ctx.socket(zmq.PULL)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.MAXMSGSIZE, MAX_CONTROL_BYTES)
        self._sock.setsockopt(zmq.RCVHWM, 64)
        self._sock.bind(endpoint)
        self.endpoint = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.applied = 0
        self.dropped: Counter = Counter()

    def poll(self) -> WorkerSettings | None:
        """The newest valid settings waiting, if any (malformed ones counted and dropped)."""
        newest = None
        for _ in range(64):
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            if len(frames) != 1:
                self.dropped["frames"] += 1
                continue
            try:
                newest = parse_settings(frames[0])
            except ControlError as exc:
                self.dropped[exc.reason] += 1
                continue
            self.applied += 1
        return newest

    def close(self) -> None:
        self._sock.close(linger=0)
        if self._own:
            self._ctx.term()


class ControlClient:
    """The GUI's end: a PUSH socket that never blocks (a settings message is dropped when the
    worker is not there: ``send`` returns ``False``)."""

    def __init__(self, endpoint: str, context: zmq.Context | None = None):
        self._own = context is None
        self._ctx = context or zmq.Context()
        self._sock = self._ctx.socket(zmq.PUSH)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.SNDHWM, 4)
        self._sock.setsockopt(zmq.IMMEDIATE, 1)  # queue only on a live connection
        self._sock.connect(endpoint)
        self.endpoint = endpoint

    def send(self, settings: WorkerSettings) -> bool:
        try:
            self._sock.send(settings.to_message(), zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True

    def close(self) -> None:
        self._sock.close(linger=0)
        if self._own:
            self._ctx.term()


class LiveConfig:
    """The worker's receiver configuration as control messages change it.

    ``cfg`` comes from the command line; ``distance_given`` says whether ``tx_rx_distance_m``
    was given there (else a stream's truth supplies it, and a control message overrides both).
    """

    def __init__(self, cfg: ReceiverConfig, distance_given: bool):
        self.cfg = cfg
        self.distance_fixed = distance_given

    def for_stream(self, truth: StreamTruth | None) -> ReceiverConfig:
        """The configuration for a new receiver on a stream with ``truth`` (or none)."""
        if truth is not None and not self.distance_fixed:
            return self.cfg.replace(tx_rx_distance_m=truth.tx_rx_distance_m)
        return self.cfg

    def apply(self, s: WorkerSettings) -> bool:
        """Take ``s`` for the next receivers; ``False`` (nothing changed) if the receiver refuses it."""
        changes: dict[str, Any] = {}
        if s.set_distance:
            changes["tx_rx_distance_m"] = s.tx_rx_distance_m
        if s.methods is not None:
            changes["methods"] = s.methods
        try:
            cfg = self.cfg.replace(**changes)
        except ConfigError:
            return False
        self.cfg = cfg
        self.distance_fixed = self.distance_fixed or s.set_distance
        return True
