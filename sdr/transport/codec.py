"""Encoding and validating decoding of pipeline messages (``sdr/MESSAGES.md``).

:func:`encode_iq` / :func:`encode_result` build frames; :func:`decode` validates every field and
raises :class:`~sdr.transport.wire.MessageError` (``reason``, ``detail``) and nothing else.  Sizes
are checked against the bounds of :mod:`sdr.transport.wire` before any array is built, and arrays
are only ever views (``numpy.frombuffer``) of the received frames.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import zmq

from dsp.waveform import WaveformConfig
from sdr.stream_truth import StreamTruth
from sdr.transport.schema import _OPTIONAL_SCHEMA, _RESULT_SCHEMA, _conforms, _is_int, _is_num
from sdr.transport.wire import (
    _ARRAY_NAME_RE,
    _BYTES_PER_SAMPLE,
    _COMMON_KEYS,
    _MAX_INDEX,
    _STREAM_ID_RE,
    BAND_NAMES,
    IQ_FORMATS,
    IQ_SOURCES,
    IQ_TOPIC,
    MAX_ARRAY_ELEMENTS,
    MAX_CHANNELS,
    MAX_CIR_FFT_SIZE,
    MAX_HEADER_BYTES,
    MAX_SAMPLES,
    MAX_TOPIC_BYTES,
    PROTOCOL_VERSION,
    RESULT_DTYPES,
    RESULT_KINDS,
    TOPICS,
    Channel,
    IQHeader,
    IQMessage,
    MessageError,
    ResultMessage,
    as_wire_array,
)


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
    capture_index: int,
    time_s: float,
    capture_rate_hz: float,
    channels: Sequence[tuple[str, float]],
    waveform: WaveformConfig | Mapping[str, Any],
    source: str,
    iq: np.ndarray,
    lost_before: int = 0,
    fmt: str = "sc16",
    truth: Mapping[str, Any] | None = None,
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
        "capture_index": int(capture_index),
        "time_s": float(time_s),
        "capture_rate_hz": float(capture_rate_hz),
        "channels": [{"band": str(b), "rf_center_hz": float(f)} for b, f in channels],
        "format": fmt,
        "shape": [int(n_ch), int(n)],
        "lost_before": int(lost_before),
        "waveform": wf,
        "source": source,
    }
    if truth is not None:  # StreamTruth.to_dict(): emulated and replayed streams only
        header["truth"] = dict(truth)
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
    for key, typ in _OPTIONAL_SCHEMA.get(kind, {}).items():
        if key in fields and not _conforms(fields[key], typ):
            raise ValueError(f"{kind} result field {key!r} of the wrong type: {fields[key]!r:.80}")
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
def _waveform_from_json(text: str, capture_rate_hz: float) -> WaveformConfig:
    wf = WaveformConfig.from_dict(json.loads(text))
    if wf.cir_fft_size > MAX_CIR_FFT_SIZE:
        raise ValueError(f"cir_fft_size {wf.cir_fft_size} exceeds {MAX_CIR_FFT_SIZE}")
    return wf.replace(capture_rate_hz=capture_rate_hz)


def _waveform(h: dict, capture_rate_hz: float) -> WaveformConfig:
    w = _get(h, "waveform", "waveform")
    if not isinstance(w, dict) or not all(
        isinstance(x, (str, int, float, bool)) or x is None for x in w.values()
    ):
        raise MessageError("waveform", "waveform must be an object of scalar fields")
    try:
        return _waveform_from_json(json.dumps(w, sort_keys=True), capture_rate_hz)
    except Exception as exc:  # any refusal by the configuration's own validation
        raise MessageError("waveform", f"{type(exc).__name__}: {exc!s:.200}") from None


OLD_IQ_KEYS = {"capture_index": "first_sample", "capture_rate_hz": "sample_rate_hz"}
"""IQ header fields renamed since protocol version 1 began: {new name: old name}."""


def _key(h: dict, name: str) -> str:
    """``name``, or its old name (``OLD_IQ_KEYS``) in a header that has only the old one."""
    old = OLD_IQ_KEYS.get(name)
    return old if old is not None and old in h and name not in h else name


def _decode_iq(h: dict, payloads: list[memoryview]) -> IQMessage:
    capture_index = _index(h, _key(h, "capture_index"))
    lost_before = _index(h, "lost_before")
    time_s = _finite(h, "time_s")
    fs = _finite(h, _key(h, "capture_rate_hz"))
    if fs <= 0:
        raise MessageError("field", f"capture_rate_hz must be positive, got {fs}")
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
    truth = None
    if h.get("truth") is not None:
        try:
            truth = StreamTruth.from_dict(h["truth"])
        except ValueError as exc:
            raise MessageError("truth", str(exc)[:200]) from None
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
        capture_index=capture_index,
        time_s=time_s,
        capture_rate_hz=fs,
        channels=tuple(channels),
        format=fmt,
        n_samples=n,
        lost_before=lost_before,
        waveform=wf,
        source=src,
        truth=truth,
    )
    return IQMessage(header, iq, lost_before)


def _decode_result(kind: str, h: dict, payloads: list[memoryview]) -> ResultMessage:
    time_s = _finite(h, "time_s")
    for key, t in _RESULT_SCHEMA[kind].items():
        if not _conforms(_get(h, key), t):
            raise MessageError("field", f"{kind}.{key} has the wrong type: {h[key]!r:.80}")
    for key, t in _OPTIONAL_SCHEMA.get(kind, {}).items():
        if key in h and not _conforms(h[key], t):
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
