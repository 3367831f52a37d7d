"""Framing, validation and ZeroMQ sockets of the live pipeline (wire format: ``sdr/MESSAGES.md``).

Producers
    :class:`IQPublisher` sends IQ chunks on PUB (really XPUB, so the streamer can wait for a
    subscriber; a slow subscriber loses whole messages) or PUSH (lossless to one consumer: the
    sender blocks when the consumer falls behind).  :class:`ResultPublisher` sends receiver
    results on PUB.  Payloads go out zero-copy (``send_multipart(copy=False)``): a sent array
    must not be modified afterwards.

Consumers
    :class:`IQSubscriber` and :class:`ResultSubscriber` never raise on a bad message: every
    rejected message is counted in ``drops`` under one of :data:`DROP_REASONS` and skipped.
    They track ``seq`` per ``stream_id``, report lost messages and (IQ) the samples lost with
    them, and treat a new ``stream_id`` (streamer restart) as a new stream.

Codec
    :func:`encode_iq` / :func:`encode_result` build frames; :func:`decode` validates every
    field and raises :class:`MessageError` (``reason``, ``detail``).  Sizes are checked against
    :data:`MAX_HEADER_BYTES`, :data:`MAX_CHANNELS`, :data:`MAX_SAMPLES` and
    :data:`MAX_ARRAY_ELEMENTS` before any array is built, and arrays are only ever views
    (``numpy.frombuffer``) of the received frames.

Queue limits (high-water marks, in messages, per socket and per peer)
    * IQ: :data:`IQ_HWM` = 32 on both sides.  At the default chunk of 2**18 samples (three
      bands, sc16: 3 MiB a message) that is 96 MiB and about 0.27 s of 30.72 MS/s per side:
      enough to ride out a GC pause or a slow disk flush, small enough that a PUB streamer
      drops (and the consumer sees a sequence gap) instead of growing without bound.
    * Results: :data:`RESULT_HWM` = 200.  Results are small (an epoch with three 4096-bin CIRs
      is about 100 kB) and arrive at tens per second, so 200 is seconds of slack for a GUI.
    * ``LINGER`` = :data:`LINGER_MS` (200 ms): closing never hangs on a dead peer.  A streamer
      that finishes normally closes with a longer, explicit drain time instead
      (``IQPublisher.close(linger_s=...)``); subscribers close with 0.
    * Receivers set ``MAXMSGSIZE`` to the largest legal IQ payload, so a peer cannot make
      ZeroMQ buffer an arbitrarily large frame.

Use::

    with IQSubscriber("tcp://127.0.0.1:5555") as sub:          # mode="pull" for a PUSH streamer
        while (msg := sub.recv(timeout_s=1.0)) is not None:
            msg.header.sample_rate_hz, msg.header.bands, msg.header.waveform
            iq = msg.complex64()                                # [channel, sample]
            receiver.push(iq, msg.lost_before)

    with ResultPublisher("tcp://127.0.0.1:5556") as pub:
        pub.send(*results_wire.result_to_wire(result, wf))
"""

from __future__ import annotations

import json
import math
import re
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple, Self

import numpy as np
import zmq

from dsp.waveform import WaveformConfig
from sdr.security import ClientKeys, CurveServer, ServerKeys, apply_client_keys, check_bind

PROTOCOL_VERSION = 1
MAX_HEADER_BYTES = 64 * 1024
MAX_CHANNELS = 16
MAX_SAMPLES = 2**24
MAX_ARRAY_ELEMENTS = 2**20
MAX_TOPIC_BYTES = 32
MAX_CIR_FFT_SIZE = 2**20  # sanity bound on a streamed waveform: a consumer allocates [K] per band

IQ_TOPIC = "iq"
RESULT_KINDS = ("packet", "epoch", "stats", "gap", "health", "spectrum", "calibration")
TOPICS = (IQ_TOPIC, *RESULT_KINDS)
IQ_FORMATS = ("sc16", "fc32")
IQ_SOURCES = ("uhd", "emulator", "replay")
BAND_NAMES = ("central", "lower", "upper")
RESULT_DTYPES = ("complex64", "float32", "float64", "uint8", "int64")
SC16_FULL_SCALE = 32767.0
_BYTES_PER_SAMPLE = {"sc16": 4, "fc32": 8}
MAX_PAYLOAD_BYTES = MAX_CHANNELS * MAX_SAMPLES * 8

IQ_HWM = 32
RESULT_HWM = 200
LINGER_MS = 200

DROP_REASONS = (
    "frames",  # wrong number of frames for the topic / header
    "topic",  # unknown or foreign topic
    "header_size",  # header frame over MAX_HEADER_BYTES
    "header_json",  # header is not a UTF-8 JSON object
    "version",  # v missing or not PROTOCOL_VERSION
    "kind",  # kind differs from the topic
    "stream_id",  # not 32 hex characters
    "seq",  # not an integer >= 0
    "field",  # another field missing or of the wrong type / range
    "channels",  # channel list malformed
    "format",  # unknown IQ format
    "shape",  # shape malformed or inconsistent with channels
    "bounds",  # over MAX_CHANNELS / MAX_SAMPLES / MAX_ARRAY_ELEMENTS
    "payload",  # payload frame length differs from the declared shape
    "arrays",  # result array descriptors malformed
    "waveform",  # waveform object refused by WaveformConfig
    "source",  # unknown IQ source
    "stale",  # seq or first_sample went backwards within a stream (duplicate or reordered)
    "internal",  # an unexpected error while decoding (a bug: tests assert it never happens)
)

_STREAM_ID_RE = re.compile(r"[0-9a-fA-F]{32}")
_ARRAY_NAME_RE = re.compile(r"[A-Za-z0-9_]{1,64}")
_COMMON_KEYS = ("v", "kind", "stream_id", "seq")
_MAX_INDEX = 2**63 - 1


class MessageError(Exception):
    """A message failed validation.  ``reason`` is one of :data:`DROP_REASONS`."""

    def __init__(self, reason: str, detail: str):
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")


class Channel(NamedTuple):
    """One row of an IQ payload: the band and its RF centre frequency."""

    band: str
    rf_center_hz: float


def new_stream_id() -> str:
    """A fresh ``stream_id``: 32 lowercase hex characters."""
    return uuid.uuid4().hex


# ----- sample formats -----------------------------------------------------------------------------
def complex_to_sc16(iq: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """complex ``[channel, sample]`` to interleaved int16 ``[channel, sample, 2]`` (32767 = 1.0).

    Rounded to nearest and clipped to the int16 range; ``out`` (int16, C-contiguous) is reused
    when given.
    """
    x = np.ascontiguousarray(iq, np.complex64)
    v = x.view(np.float32) * np.float32(SC16_FULL_SCALE)
    np.rint(v, out=v)
    np.clip(v, -32768, 32767, out=v)
    if out is None:
        out = np.empty((*x.shape, 2), np.int16)
    np.copyto(out.reshape(v.shape), v, casting="unsafe")
    return out


def sc16_to_complex(pairs: np.ndarray) -> np.ndarray:
    """Interleaved int16 ``[..., sample, 2]`` to complex64 ``[..., sample]`` (32767 = 1.0)."""
    p = np.ascontiguousarray(pairs)
    if p.dtype != np.int16 or p.shape[-1:] != (2,):
        raise ValueError(f"sc16 needs int16 [..., sample, 2], got {p.dtype} {p.shape}")
    out = p.astype(np.float32).view(np.complex64)[..., 0]
    out *= np.float32(1.0 / SC16_FULL_SCALE)
    return out


def as_wire_array(iq: np.ndarray, fmt: str) -> np.ndarray:
    """``iq`` as the C-contiguous little-endian payload array of format ``fmt``.

    Accepts complex ``[channel, sample]`` or sc16 int16 ``[channel, sample, 2]``; converts only
    when the array is not already in ``fmt``.  Returns int16 ``[channel, sample, 2]`` for sc16,
    complex64 ``[channel, sample]`` for fc32.
    """
    if fmt not in IQ_FORMATS:
        raise ValueError(f"IQ format must be one of {IQ_FORMATS}, got {fmt!r}")
    is_sc16 = iq.dtype == np.int16
    if is_sc16 and (iq.ndim != 3 or iq.shape[2] != 2):
        raise ValueError(f"int16 IQ must be sc16 pairs [channel, sample, 2], got shape {iq.shape}")
    if not is_sc16 and (iq.ndim != 2 or not np.iscomplexobj(iq)):
        raise ValueError(
            f"IQ must be complex [channel, sample] or int16 [channel, sample, 2], got {iq.dtype}"
        )
    if fmt == "sc16":
        return np.ascontiguousarray(iq, "<i2") if is_sc16 else complex_to_sc16(iq)
    return sc16_to_complex(iq) if is_sc16 else np.ascontiguousarray(iq, "<c8")


# ----- messages -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class IQHeader:
    """The validated header of one IQ message (see ``sdr/MESSAGES.md``)."""

    stream_id: str
    seq: int
    first_sample: int
    time_s: float
    sample_rate_hz: float
    channels: tuple[Channel, ...]
    format: str
    n_samples: int
    lost_before: int
    waveform: WaveformConfig
    source: str

    @property
    def bands(self) -> list[str]:
        return [c.band for c in self.channels]

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    def same_stream_setup(self, other: IQHeader) -> bool:
        """Whether ``other`` has this header's rate, channels and waveform (what a file stores)."""
        return (
            self.sample_rate_hz == other.sample_rate_hz
            and self.channels == other.channels
            and self.waveform == other.waveform
        )


@dataclass(frozen=True)
class IQMessage:
    """A received IQ chunk.

    ``iq`` is a read-only view of the received frame: int16 ``[channel, sample, 2]`` for sc16,
    complex64 ``[channel, sample]`` for fc32; :meth:`complex64` converts.  ``lost_before`` is the
    total number of samples lost just before this chunk as the consumer saw it: the header's
    ``lost_before`` plus the samples of messages lost in transport (``messages_missed``).
    ``new_stream`` is true on the first message of a ``stream_id`` seen by this consumer.
    """

    header: IQHeader
    iq: np.ndarray
    lost_before: int
    messages_missed: int = 0
    new_stream: bool = False

    def complex64(self) -> np.ndarray:
        """Samples as complex64 ``[channel, sample]`` (a new array for sc16)."""
        return sc16_to_complex(self.iq) if self.header.format == "sc16" else self.iq


@dataclass(frozen=True)
class ResultMessage:
    """A received result: ``fields`` is the header less ``v``, ``kind``, ``stream_id``, ``seq``
    and ``arrays``; ``arrays`` maps names to read-only views of the payload frames."""

    kind: str
    stream_id: str
    seq: int
    time_s: float
    fields: dict[str, Any]
    arrays: dict[str, np.ndarray]
    messages_missed: int = 0
    new_stream: bool = False


# ----- encoding -----------------------------------------------------------------------------------
def _json_bytes(header: Mapping[str, Any]) -> bytes:
    b = json.dumps(header, separators=(",", ":")).encode()
    if len(b) > MAX_HEADER_BYTES:
        raise ValueError(f"header of {len(b)} bytes exceeds the {MAX_HEADER_BYTES}-byte limit")
    return b


def encode_iq(
    *,
    stream_id: str,
    seq: int,
    first_sample: int,
    time_s: float,
    sample_rate_hz: float,
    channels: Sequence[tuple[str, float]],
    waveform: WaveformConfig | Mapping[str, Any],
    source: str,
    iq: np.ndarray,
    lost_before: int = 0,
    fmt: str = "sc16",
) -> list[Any]:
    """Frames ``[topic, header, payload]`` of one IQ message; ``payload`` is a numpy array.

    ``iq`` is complex ``[channel, sample]`` or sc16 int16 ``[channel, sample, 2]``; it is
    converted to ``fmt`` only when needed.  Send with ``send_multipart(frames, copy=False)``.
    """
    payload = as_wire_array(iq, fmt)
    n_ch, n = payload.shape[0], payload.shape[1]
    if len(channels) != n_ch:
        raise ValueError(f"{len(channels)} channels described for IQ with {n_ch} rows")
    if not (1 <= n_ch <= MAX_CHANNELS and 1 <= n <= MAX_SAMPLES):
        raise ValueError(f"IQ shape {[n_ch, n]} outside [1..{MAX_CHANNELS}, 1..{MAX_SAMPLES}]")
    wf = waveform.to_dict() if isinstance(waveform, WaveformConfig) else dict(waveform)
    header = {
        "v": PROTOCOL_VERSION,
        "kind": IQ_TOPIC,
        "stream_id": stream_id,
        "seq": int(seq),
        "first_sample": int(first_sample),
        "time_s": float(time_s),
        "sample_rate_hz": float(sample_rate_hz),
        "channels": [{"band": str(b), "rf_center_hz": float(f)} for b, f in channels],
        "format": fmt,
        "shape": [int(n_ch), int(n)],
        "lost_before": int(lost_before),
        "waveform": wf,
        "source": source,
    }
    return [IQ_TOPIC.encode(), _json_bytes(header), payload]


def encode_result(
    kind: str, fields: Mapping[str, Any], arrays: Mapping[str, np.ndarray], *, stream_id: str, seq: int
) -> list[Any]:
    """Frames ``[topic, header, array...]`` of one result (``results_wire``'s ``(kind, fields, arrays)``)."""
    if kind not in RESULT_KINDS:
        raise ValueError(f"result kind must be one of {RESULT_KINDS}, got {kind!r}")
    clash = sorted({*_COMMON_KEYS, "arrays"} & set(fields))
    if clash:
        raise ValueError(f"result fields may not use the reserved names {clash}")
    # refuse here what every consumer would drop, naming the field
    t = fields.get("time_s")
    if not _is_num(t) or not math.isfinite(t):
        raise ValueError(f"{kind} result needs a finite time_s, got {t!r}")
    for key, typ in _RESULT_SCHEMA[kind].items():
        if key not in fields or not _conforms(fields[key], typ):
            raise ValueError(
                f"{kind} result field {key!r} missing or of the wrong type: {fields.get(key)!r:.80}"
            )
    descs, payloads = [], []
    for name, a in arrays.items():
        arr = np.ascontiguousarray(a)
        if arr.dtype.name not in RESULT_DTYPES:
            raise ValueError(f"array {name!r}: dtype {arr.dtype} is not one of {RESULT_DTYPES}")
        if not _ARRAY_NAME_RE.fullmatch(name) or arr.size > MAX_ARRAY_ELEMENTS:
            raise ValueError(f"array {name!r}: bad name or more than {MAX_ARRAY_ELEMENTS} elements")
        arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        descs.append({"name": name, "dtype": arr.dtype.name, "shape": list(arr.shape)})
        payloads.append(arr)
    header = {"v": PROTOCOL_VERSION, "kind": kind, "stream_id": stream_id, "seq": int(seq)}
    header.update(fields)
    header["arrays"] = descs
    return [kind.encode(), _json_bytes(header), *payloads]


# ----- decoding -----------------------------------------------------------------------------------
def _view(frame: Any) -> memoryview:
    if isinstance(frame, zmq.Frame):
        return frame.buffer
    return memoryview(frame)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _get(h: dict, key: str, reason: str = "field") -> Any:
    if key not in h:
        raise MessageError(reason, f"missing field {key!r}")
    return h[key]


def _index(h: dict, key: str, reason: str = "field") -> int:
    v = _get(h, key, reason)
    if not _is_int(v) or not (0 <= v <= _MAX_INDEX):
        raise MessageError(reason, f"{key} must be an integer in [0, 2**63), got {v!r:.80}")
    return v


def _finite(h: dict, key: str) -> float:
    v = _get(h, key)
    if not _is_num(v) or not math.isfinite(v):
        raise MessageError("field", f"{key} must be a finite number, got {v!r:.80}")
    return float(v)


def _parse_header(frames: Sequence[Any]) -> tuple[str, dict, list[memoryview]]:
    if len(frames) < 2:
        raise MessageError("frames", f"{len(frames)} frame(s); need topic, header and payload")
    topic_buf = _view(frames[0])
    if topic_buf.nbytes > MAX_TOPIC_BYTES:
        raise MessageError("topic", f"topic frame of {topic_buf.nbytes} bytes")
    try:
        topic = bytes(topic_buf).decode("ascii")
    except UnicodeDecodeError:
        raise MessageError("topic", "topic is not ASCII") from None
    if topic not in TOPICS:
        raise MessageError("topic", f"unknown topic {topic!r}")
    hbuf = _view(frames[1])
    if hbuf.nbytes > MAX_HEADER_BYTES:
        raise MessageError("header_size", f"header of {hbuf.nbytes} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        header = json.loads(bytes(hbuf).decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise MessageError("header_json", f"header is not UTF-8 JSON: {exc!s:.120}") from None
    if not isinstance(header, dict):
        raise MessageError("header_json", f"header is a JSON {type(header).__name__}, not an object")
    v = header.get("v")
    if not _is_int(v) or v != PROTOCOL_VERSION:
        raise MessageError("version", f"protocol version {v!r:.40}; this build reads {PROTOCOL_VERSION}")
    if header.get("kind") != topic:
        raise MessageError("kind", f"kind {header.get('kind')!r:.40} differs from topic {topic!r}")
    sid = header.get("stream_id")
    if not isinstance(sid, str) or not _STREAM_ID_RE.fullmatch(sid):
        raise MessageError("stream_id", f"stream_id must be 32 hex characters, got {sid!r:.80}")
    _index(header, "seq", "seq")
    return topic, header, [_view(f) for f in frames[2:]]


@lru_cache(maxsize=16)
def _waveform_from_json(text: str, sample_rate_hz: float) -> WaveformConfig:
    wf = WaveformConfig.from_dict(json.loads(text))
    if wf.cir_fft_size > MAX_CIR_FFT_SIZE:
        raise ValueError(f"cir_fft_size {wf.cir_fft_size} exceeds {MAX_CIR_FFT_SIZE}")
    return wf.replace(capture_rate_hz=sample_rate_hz)


def _waveform(h: dict, sample_rate_hz: float) -> WaveformConfig:
    w = _get(h, "waveform", "waveform")
    if not isinstance(w, dict) or not all(
        isinstance(x, (str, int, float, bool)) or x is None for x in w.values()
    ):
        raise MessageError("waveform", "waveform must be an object of scalar fields")
    try:
        return _waveform_from_json(json.dumps(w, sort_keys=True), sample_rate_hz)
    except Exception as exc:  # any refusal by the configuration's own validation
        raise MessageError("waveform", f"{type(exc).__name__}: {exc!s:.200}") from None


def _decode_iq(h: dict, payloads: list[memoryview]) -> IQMessage:
    first_sample = _index(h, "first_sample")
    lost_before = _index(h, "lost_before")
    time_s = _finite(h, "time_s")
    fs = _finite(h, "sample_rate_hz")
    if fs <= 0:
        raise MessageError("field", f"sample_rate_hz must be positive, got {fs}")
    chans = _get(h, "channels", "channels")
    if not isinstance(chans, list) or not chans:
        raise MessageError("channels", "channels must be a non-empty list")
    if len(chans) > MAX_CHANNELS:
        raise MessageError("bounds", f"{len(chans)} channels exceed MAX_CHANNELS = {MAX_CHANNELS}")
    channels = []
    for c in chans:
        if not isinstance(c, dict) or c.get("band") not in BAND_NAMES:
            raise MessageError("channels", f"each channel needs a band from {BAND_NAMES}: {c!r:.80}")
        f = c.get("rf_center_hz")
        if not _is_num(f) or not math.isfinite(f):
            raise MessageError("channels", f"rf_center_hz must be a finite number: {c!r:.80}")
        channels.append(Channel(c["band"], float(f)))
    if len({c.band for c in channels}) != len(channels):
        raise MessageError("channels", f"bands repeat: {[c.band for c in channels]}")
    fmt = _get(h, "format", "format")
    if fmt not in IQ_FORMATS:
        raise MessageError("format", f"format must be one of {IQ_FORMATS}, got {fmt!r:.40}")
    shape = _get(h, "shape", "shape")
    if not isinstance(shape, list) or len(shape) != 2 or not all(_is_int(s) for s in shape):
        raise MessageError("shape", f"shape must be [channels, samples], got {shape!r:.80}")
    n_ch, n = shape
    if n_ch != len(channels):
        raise MessageError("shape", f"shape {shape} does not match {len(channels)} channels")
    if not (1 <= n <= MAX_SAMPLES):
        raise MessageError("bounds", f"{n} samples outside [1, MAX_SAMPLES = {MAX_SAMPLES}]")
    src = _get(h, "source", "source")
    if src not in IQ_SOURCES:
        raise MessageError("source", f"source must be one of {IQ_SOURCES}, got {src!r:.40}")
    wf = _waveform(h, fs)
    if len(payloads) != 1:
        raise MessageError("frames", f"IQ message with {len(payloads)} payload frames; need 1")
    expected = n_ch * n * _BYTES_PER_SAMPLE[fmt]
    if payloads[0].nbytes != expected:
        raise MessageError(
            "payload", f"payload of {payloads[0].nbytes} bytes; shape {shape} {fmt} needs {expected}"
        )
    if fmt == "sc16":
        iq = np.frombuffer(payloads[0], "<i2").reshape(n_ch, n, 2)
    else:
        iq = np.frombuffer(payloads[0], "<c8").reshape(n_ch, n)
    iq.flags.writeable = False
    header = IQHeader(
        stream_id=h["stream_id"],
        seq=h["seq"],
        first_sample=first_sample,
        time_s=time_s,
        sample_rate_hz=fs,
        channels=tuple(channels),
        format=fmt,
        n_samples=n,
        lost_before=lost_before,
        waveform=wf,
        source=src,
    )
    return IQMessage(header, iq, lost_before)


# A tiny schema language for result fields: "num", "int", "bool", "str", "bits", a tuple of
# alternatives, ("list", T), ("dict", T) (string keys), ("pair", T) (a list of two T).
_NUM_OR_NULL = ("num", None)
_PER_BAND = ("dict", _NUM_OR_NULL)
_RESULT_SCHEMA: dict[str, dict[str, Any]] = {
    "packet": {
        "start_sample": "num",
        "tag_id": "int",
        "bits": "bits",
        "crc_ok": "bool",
        "detection": "num",
        "ebn0_db": "num",
        "bit_errors": ("int", None),
    },
    "epoch": {
        "n_symbols": "int",
        "bands": ("list", "str"),
        "range_m": _PER_BAND,
        "range_band_m": ("dict", _PER_BAND),
        "delay_s": ("dict", _PER_BAND),
        "snr_db": _PER_BAND,
        "cfo_hz": _PER_BAND,
        "range_true_m": _NUM_OR_NULL,
        "cir_step_m": "num",
    },
    "stats": {
        "symbols": "int",
        "timing_offset": "int",
        "cfo_hz": _PER_BAND,
        "noise_var": _PER_BAND,
        "acquired": ("dict", "bool"),
    },
    "gap": {"index": "int", "samples_lost": "int"},
    "health": {
        "throughput_sps": "num",
        "realtime_factor": "num",
        "queue_depth": "int",
        "messages_received": "int",
        "messages_dropped": ("dict", "int"),
        "samples_lost": "int",
        "gaps": "int",
        "stream_state": ("enum", ("waiting", "live", "stalled")),
    },
    "spectrum": {"bands": ("list", "str"), "freq_hz": ("dict", ("pair", "num"))},
    "calibration": {
        "state": ("enum", ("running", "done", "failed")),
        "progress": "num",
        "symbols": "int",
        "group_delay_s": _PER_BAND,
        "ripple_deg": _PER_BAND,
        "snr_db": _PER_BAND,
        "d_cal_m": _PER_BAND,
        "file": ("str", None),
        "message": "str",
    },
}


def _conforms(v: Any, t: Any) -> bool:
    if t is None:
        return v is None
    if isinstance(t, str):
        if t == "num":
            return _is_num(v)
        if t == "int":
            return _is_int(v)
        if t == "bool":
            return isinstance(v, bool)
        if t == "str":
            return isinstance(v, str)
        if t == "bits":
            return isinstance(v, list) and all(_is_int(b) and b in (0, 1) for b in v)
        raise AssertionError(t)
    head = t[0]
    if head == "list":
        return isinstance(v, list) and all(_conforms(e, t[1]) for e in v)
    if head == "dict":
        return isinstance(v, dict) and all(_conforms(e, t[1]) for e in v.values())
    if head == "pair":
        return isinstance(v, list) and len(v) == 2 and all(_conforms(e, t[1]) for e in v)
    if head == "enum":
        return isinstance(v, str) and v in t[1]
    return any(_conforms(v, alt) for alt in t)


def _decode_result(kind: str, h: dict, payloads: list[memoryview]) -> ResultMessage:
    time_s = _finite(h, "time_s")
    for key, t in _RESULT_SCHEMA[kind].items():
        if not _conforms(_get(h, key), t):
            raise MessageError("field", f"{kind}.{key} has the wrong type: {h[key]!r:.80}")
    descs = _get(h, "arrays", "arrays")
    if not isinstance(descs, list):
        raise MessageError("arrays", "arrays must be a list of {name, dtype, shape}")
    if len(descs) != len(payloads):
        raise MessageError("frames", f"{len(descs)} arrays declared, {len(payloads)} payload frames")
    arrays: dict[str, np.ndarray] = {}
    for d, buf in zip(descs, payloads, strict=True):
        if not isinstance(d, dict):
            raise MessageError("arrays", f"array descriptor is not an object: {d!r:.80}")
        name, dtype, shape = d.get("name"), d.get("dtype"), d.get("shape")
        if not isinstance(name, str) or not _ARRAY_NAME_RE.fullmatch(name) or name in arrays:
            raise MessageError("arrays", f"array name must be a new [A-Za-z0-9_]{{1,64}}: {name!r:.80}")
        if dtype not in RESULT_DTYPES:
            raise MessageError("arrays", f"array {name}: dtype {dtype!r:.40} not one of {RESULT_DTYPES}")
        if not isinstance(shape, list) or len(shape) > 4 or not all(_is_int(s) and s >= 0 for s in shape):
            raise MessageError("arrays", f"array {name}: shape must be up to 4 integers >= 0: {shape!r:.80}")
        # at most 4 dimensions of at most MAX_ARRAY_ELEMENTS each: the product is a small int
        size = math.prod(shape)
        if max(shape, default=0) > MAX_ARRAY_ELEMENTS or size > MAX_ARRAY_ELEMENTS:
            raise MessageError("bounds", f"array {name}: shape {shape} exceeds {MAX_ARRAY_ELEMENTS} elements")
        dt = np.dtype(dtype).newbyteorder("<")
        if buf.nbytes != size * dt.itemsize:
            raise MessageError("payload", f"array {name}: {buf.nbytes} bytes for {dtype} {shape}")
        arr = np.frombuffer(buf, dt).reshape(shape)
        arr.flags.writeable = False
        arrays[name] = arr
    fields = {k: v for k, v in h.items() if k not in _COMMON_KEYS and k != "arrays"}
    return ResultMessage(kind, h["stream_id"], h["seq"], float(time_s), fields, arrays)


def decode(frames: Sequence[Any]) -> IQMessage | ResultMessage:
    """Validate and decode one multipart message (``bytes``, ``memoryview`` or ``zmq.Frame`` parts).

    Raises :class:`MessageError` on any defect; never anything else for any input frames.
    """
    topic, header, payloads = _parse_header(frames)
    if topic == IQ_TOPIC:
        return _decode_iq(header, payloads)
    return _decode_result(topic, header, payloads)


# ----- sockets ------------------------------------------------------------------------------------
def _close_socket(sock: zmq.Socket, linger_ms: int) -> None:
    if not sock.closed:
        sock.close(linger=linger_ms)


class IQPublisher:
    """Sends one stream of IQ chunks: ``send(iq, first_sample, time_s, lost_before)``.

    ``mode`` ``"pub"`` (XPUB: drops whole messages for a slow subscriber) or ``"push"`` (lossless
    to one consumer: ``send`` waits while the consumer's queue is full).  Binds ``endpoint``
    under the bind policy of :mod:`sdr.security`: CURVE ``server_keys`` or ``insecure=True``
    unless the endpoint is loopback.  ``endpoint`` may use port ``*``; :attr:`endpoint` then
    holds the port actually bound.  Raises ``ConfigError`` when ``waveform`` cannot be read at
    ``sample_rate_hz`` (consumers would drop every message).  With ``server_keys`` the
    publisher runs a ZAP authenticator on its context: give it a context of its own (the
    default), as ZeroMQ allows one authenticator per context.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        sample_rate_hz: float,
        channels: Sequence[tuple[str, float]],
        waveform: WaveformConfig,
        source: str,
        mode: str = "pub",
        fmt: str = "sc16",
        server_keys: ServerKeys | None = None,
        insecure: bool = False,
        sndhwm: int = IQ_HWM,
        context: zmq.Context | None = None,
    ):
        if mode not in ("pub", "push"):
            raise ValueError(f"mode must be 'pub' or 'push', got {mode!r}")
        if fmt not in IQ_FORMATS:
            raise ValueError(f"format must be one of {IQ_FORMATS}, got {fmt!r}")
        if source not in IQ_SOURCES:
            raise ValueError(f"source must be one of {IQ_SOURCES}, got {source!r}")
        # consumers read the waveform at the stream's rate: refuse a pair they would drop
        waveform = waveform.replace(capture_rate_hz=float(sample_rate_hz))
        check_bind(endpoint, curve=server_keys is not None, insecure=insecure)
        self.mode, self.fmt, self.source = mode, fmt, source
        self.sample_rate_hz = float(sample_rate_hz)
        self.channels = [Channel(str(b), float(f)) for b, f in channels]
        self.waveform = waveform
        self._wf_dict = waveform.to_dict()
        self.stream_id = new_stream_id()
        self.seq = 0
        self.bytes_sent = 0
        self._own_ctx = context is None
        self._ctx = zmq.Context() if context is None else context
        self._curve: CurveServer | None = None
        self._sock = self._ctx.socket(zmq.XPUB if mode == "pub" else zmq.PUSH)
        try:
            self._sock.setsockopt(zmq.SNDHWM, sndhwm)
            self._sock.setsockopt(zmq.LINGER, LINGER_MS)
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
        first_sample: int,
        time_s: float,
        lost_before: int = 0,
        stop: threading.Event | None = None,
    ) -> IQHeader | None:
        """Send one chunk (complex ``[channel, sample]`` or sc16 ``[channel, sample, 2]``).

        The payload is sent zero-copy: do not modify ``iq`` afterwards.  In push mode this
        waits while the consumer's queue is full; it returns ``None`` if ``stop`` is set
        meanwhile (nothing was sent).  Returns the header sent.
        """
        payload = as_wire_array(iq, self.fmt)
        frames = encode_iq(
            stream_id=self.stream_id,
            seq=self.seq,
            first_sample=first_sample,
            time_s=time_s,
            sample_rate_hz=self.sample_rate_hz,
            channels=self.channels,
            waveform=self._wf_dict,
            source=self.source,
            iq=payload,
            lost_before=lost_before,
            fmt=self.fmt,
        )
        while True:  # XPUB never blocks (it drops); PUSH waits for room, watching ``stop``
            try:
                self._sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
                break
            except zmq.Again:
                if stop is not None and stop.is_set():
                    return None
                self._sock.poll(100, zmq.POLLOUT)
        header = IQHeader(
            stream_id=self.stream_id,
            seq=self.seq,
            first_sample=int(first_sample),
            time_s=float(time_s),
            sample_rate_hz=self.sample_rate_hz,
            channels=tuple(self.channels),
            format=self.fmt,
            n_samples=payload.shape[1],
            lost_before=int(lost_before),
            waveform=self.waveform,
            source=self.source,
        )
        self.seq += 1
        self.bytes_sent += payload.nbytes
        return header

    def close(self, linger_s: float = LINGER_MS / 1000) -> None:
        """Close, letting queued messages go out for at most ``linger_s``."""
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


@dataclass
class _StreamState:
    next_seq: int
    next_sample: int = 0


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
            if h.first_sample < st.next_sample:
                raise MessageError(
                    "stale", f"first_sample {h.first_sample} before the expected {st.next_sample}"
                )
            lost = h.first_sample - st.next_sample  # includes the header's own lost_before
        st.next_seq = h.seq + 1
        st.next_sample = h.first_sample + h.n_samples
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


# ----- benchmark ----------------------------------------------------------------------------------
def _timed_transfer(send_all: Callable[[], None], recv_one: Callable[[], None], n: int) -> float:
    """Seconds from the first send until ``n`` messages were received (receiver in a thread)."""
    errors: list[BaseException] = []

    def receiver() -> None:
        try:
            for _ in range(n):
                recv_one()
        except BaseException as exc:  # re-raised in the caller
            errors.append(exc)

    th = threading.Thread(target=receiver, daemon=True)
    th.start()
    t0 = time.perf_counter()
    send_all()
    th.join()
    t = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return t


def _check_buffers(buffers: Sequence[np.ndarray]) -> int:
    if not buffers:
        raise ValueError("no buffers to send")
    for b in buffers:
        if not (b.dtype == np.complex64 and b.ndim == 2) and not (b.dtype == np.int16 and b.ndim == 3):
            raise ValueError(
                "buffers must be complex64 [channel, sample] or sc16 int16 [channel, sample, 2], "
                f"got {b.dtype} {b.shape}"
            )
    if buffers[0].shape[0] > len(BAND_NAMES):
        raise ValueError(f"the pipeline benchmark sends at most {len(BAND_NAMES)} channels (bands)")
    return sum(b.nbytes for b in buffers)


class _BareLink:
    """PUSH -> PULL over tcp loopback, one zero-copy frame per buffer."""

    def __init__(self, ctx: zmq.Context):
        self.push, self.pull = ctx.socket(zmq.PUSH), ctx.socket(zmq.PULL)
        for sock in (self.push, self.pull):
            sock.setsockopt(zmq.LINGER, 0)
        self.push.setsockopt(zmq.SNDHWM, IQ_HWM)
        self.pull.setsockopt(zmq.RCVHWM, IQ_HWM)
        self.push.bind("tcp://127.0.0.1:*")
        self.pull.connect(self.push.getsockopt_string(zmq.LAST_ENDPOINT))

    def seconds(self, buffers: Sequence[np.ndarray]) -> float:
        def send_all() -> None:
            for b in buffers:
                self.push.send(np.ascontiguousarray(b), copy=False)

        return _timed_transfer(send_all, lambda: self.pull.recv(copy=False), len(buffers))

    def close(self) -> None:
        self.push.close()
        self.pull.close()


class _PipelineLink:
    """:class:`IQPublisher` (push) -> :class:`IQSubscriber` (pull) over tcp loopback."""

    def __init__(self, ctx: zmq.Context, buffers: Sequence[np.ndarray]):
        wf = WaveformConfig()
        bands = BAND_NAMES[: buffers[0].shape[0]]
        self.pub = IQPublisher(
            "tcp://127.0.0.1:*",
            sample_rate_hz=wf.sample_rate_hz,
            channels=[(b, wf.band_centers_hz[b]) for b in bands],
            waveform=wf,
            source="replay",
            mode="push",
            fmt="sc16" if buffers[0].dtype == np.int16 else "fc32",
            context=ctx,
        )
        self.sub = IQSubscriber(self.pub.endpoint, mode="pull", context=ctx)
        self.next_sample = 0

    def seconds(self, buffers: Sequence[np.ndarray]) -> float:
        def send_all() -> None:
            for b in buffers:
                self.pub.send(b, self.next_sample, self.next_sample / self.pub.sample_rate_hz)
                self.next_sample += b.shape[1]

        def recv_one() -> None:
            if self.sub.recv(timeout_s=30.0) is None:
                raise TimeoutError(f"pipeline benchmark: message lost (drops {dict(self.sub.drops)})")

        return _timed_transfer(send_all, recv_one, len(buffers))

    def close(self) -> None:
        self.pub.close(linger_s=0)
        self.sub.close()


def _median_seconds(
    links: Sequence[_BareLink | _PipelineLink], buffers: Sequence[np.ndarray], repeats: int
) -> list[float]:
    """Median seconds per link over ``repeats`` passes, links interleaved, after one warm-up each."""
    times: list[list[float]] = [[] for _ in links]
    for r in range(repeats + 1):
        for i, link in enumerate(links):
            t = link.seconds(buffers)
            if r:
                times[i].append(t)
    return [statistics.median(t) for t in times]


def bare_pushpull_throughput(buffers: Sequence[np.ndarray], repeats: int = 5) -> float:
    """Bytes/s of ``buffers`` sent as single zero-copy frames PUSH -> PULL over tcp loopback.

    ``buffers``: complex64 ``[channel, sample]`` or sc16 int16 ``[channel, sample, 2]`` arrays
    (at most 3 channels).  The median of ``repeats`` passes, after a warm-up pass.
    """
    total = _check_buffers(buffers)
    with zmq.Context() as ctx:
        link = _BareLink(ctx)
        try:
            (t,) = _median_seconds([link], buffers, repeats)
        finally:
            link.close()
    return total / t


def pipeline_pushpull_throughput(buffers: Sequence[np.ndarray], repeats: int = 5) -> float:
    """Bytes/s of ``buffers`` through ``IQPublisher`` (encode, PUSH) and ``IQSubscriber`` (PULL,
    validate, decode) over tcp loopback.

    complex64 buffers travel as fc32 and int16 ones as sc16, so the payload bytes equal
    :func:`bare_pushpull_throughput`'s.  The median of ``repeats`` passes after a warm-up.
    """
    total = _check_buffers(buffers)
    with zmq.Context() as ctx:
        link = _PipelineLink(ctx, buffers)
        try:
            (t,) = _median_seconds([link], buffers, repeats)
        finally:
            link.close()
    return total / t


def compare_pushpull_throughput(buffers: Sequence[np.ndarray], repeats: int = 5) -> dict[str, float]:
    """Bare ZeroMQ against the full pipeline path on the same buffers, passes interleaved.

    Returns ``bare_bytes_per_s``, ``pipeline_bytes_per_s`` and ``ratio`` (pipeline / bare; 1.0
    means the framing and validation cost nothing measurable).
    """
    total = _check_buffers(buffers)
    with zmq.Context() as ctx:
        links: list[_BareLink | _PipelineLink] = []
        try:
            links.append(_BareLink(ctx))
            links.append(_PipelineLink(ctx, buffers))
            t_bare, t_pipe = _median_seconds(links, buffers, repeats)
        finally:
            for link in links:
                link.close()
    return {
        "bare_bytes_per_s": total / t_bare,
        "pipeline_bytes_per_s": total / t_pipe,
        "ratio": t_bare / t_pipe,
    }
