"""A live IQ stream (another process's ``backscatter stream`` or a worker's input) as a source.

:class:`StreamSource` subscribes to an IQ endpoint (``sdr/MESSAGES.md``) and takes the stream's
settings (capture rate, channels, waveform) from its first message; every message becomes one
:class:`~sdr.sources.Chunk` of complex64 samples.  Registered as the source kind ``stream``
(``calibrate --source stream --connect ENDPOINT``); ``backscatter stream`` does not offer it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import zmq

from dsp.waveform import WaveformConfig
from sdr.security import ClientKeys, check_connect
from sdr.source_registry import SourceError, SourceKind, SourceSettings
from sdr.sources import Chunk
from sdr.transport import IQMessage, IQSubscriber

FIRST_TIMEOUT_S = 10.0  # no first message within this long: the stream is not there
IDLE_TIMEOUT_S = 5.0  # the stream has ended after this long without a message
POLL_S = 0.5  # a blocking receive returns at least this often to notice stop()


class StreamSource:
    """IQ messages from ``endpoint`` (``mode`` ``sub`` or ``pull``) as chunks, until the stream
    is silent for ``idle_timeout_s`` seconds or :meth:`stop`.

    Raises :class:`~sdr.source_registry.SourceError` when no message arrives within
    ``first_timeout_s`` seconds.  ``capture_index``, ``time_s`` and ``lost_before`` are the
    messages' own (the first chunk's ``lost_before`` is 0).
    """

    name = "stream"
    is_live = True

    def __init__(
        self,
        endpoint: str,
        *,
        mode: str = "sub",
        client_keys: ClientKeys | None = None,
        first_timeout_s: float = FIRST_TIMEOUT_S,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
    ):
        self.path = endpoint
        try:
            self._sub = IQSubscriber(endpoint, mode=mode, client_keys=client_keys)
        except zmq.ZMQError as exc:  # malformed endpoint
            raise SourceError(f"cannot connect {endpoint}: {exc}") from None
        self._stop = False
        self._idle_timeout_s = float(idle_timeout_s)
        first = self._sub.recv(timeout_s=first_timeout_s)
        if first is None:
            self._sub.close()
            raise SourceError(f"no IQ from {endpoint} within {first_timeout_s:g} s")
        self._first: IQMessage | None = first
        h = first.header
        self.waveform: WaveformConfig = h.waveform
        self.capture_rate_hz = float(h.capture_rate_hz)
        self.channels = [(c.band, float(c.rf_center_hz)) for c in h.channels]

    def _next(self) -> IQMessage | None:
        waited = 0.0
        while not self._stop and waited < self._idle_timeout_s:
            msg = self._sub.recv(timeout_s=POLL_S)
            if msg is not None:
                return msg
            waited += POLL_S
        return None

    def __iter__(self) -> Iterator[Chunk]:
        msg, lost = self._first, 0
        self._first = None
        while msg is not None and not self._stop:
            h = msg.header
            yield Chunk(msg.complex64(), int(h.capture_index), float(h.time_s), lost)
            msg = self._next()
            lost = 0 if msg is None else int(msg.lost_before)

    def stop(self) -> None:
        self._stop = True

    def close(self) -> None:
        self._stop = True
        self._sub.close()


@dataclass(frozen=True, kw_only=True)
class StreamSettings(SourceSettings):
    """A live stream at ``endpoint`` (``mode`` ``sub`` or ``pull``), with the client key pair of
    the directory ``keys`` (``None``: no CURVE) or ``insecure`` consent to a plain connection off
    the loopback interface."""

    kind: ClassVar[str] = "stream"
    endpoint: str
    mode: str = "sub"
    keys: Path | None = None
    insecure: bool = False


class StreamKind(SourceKind):
    """``--source stream --connect ENDPOINT [--socket sub|pull]`` (flags of the command)."""

    name = "stream"
    Settings = StreamSettings
    live = True
    restreamable = False

    @classmethod
    def settings_from_args(
        cls, args: Any, *, scenario_defaults: Mapping[str, object] | None = None
    ) -> StreamSettings:
        if not getattr(args, "connect", None):
            raise SourceError("--source stream needs --connect ENDPOINT")
        return StreamSettings(
            endpoint=args.connect,
            mode=getattr(args, "socket", None) or "sub",
            keys=getattr(args, "keys", None),
            insecure=bool(getattr(args, "insecure", False)),
        )

    @classmethod
    def open(cls, settings: StreamSettings, stop: threading.Event | None = None) -> StreamSource:
        check_connect(settings.endpoint, curve=settings.keys is not None, insecure=settings.insecure)
        keys = None if settings.keys is None else ClientKeys.from_dir(settings.keys)
        return StreamSource(settings.endpoint, mode=settings.mode, client_keys=keys)
