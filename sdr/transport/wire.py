"""Wire-level names of the live pipeline: limits, topics, message types and sample formats.

See ``sdr/MESSAGES.md`` for the format and :mod:`sdr.transport` for an overview.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from dsp.bands import BANDS
from dsp.chunks import BufferPool
from dsp.errors import BackscatterError
from dsp.sc16 import sc16_to_complex64
from dsp.waveform import WaveformConfig
from sdr.stream_truth import StreamTruth

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
BAND_NAMES = BANDS  # dsp/bands.py
# the largest frame a valid message has: an fc32 IQ payload of one channel per (distinct) band
MAX_PAYLOAD_BYTES = len(BAND_NAMES) * MAX_SAMPLES * 8
RESULT_DTYPES = ("complex64", "float32", "float64", "uint8", "int64")
SC16_FULL_SCALE = 32767.0
_BYTES_PER_SAMPLE = {"sc16": 4, "fc32": 8}

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
    "stale",  # seq or capture_index went backwards within a stream (duplicate or reordered)
    "internal",  # an unexpected error while decoding (a bug: tests assert it never happens)
)

_STREAM_ID_RE = re.compile(r"[0-9a-fA-F]{32}")
_ARRAY_NAME_RE = re.compile(r"[A-Za-z0-9_]{1,64}")
_COMMON_KEYS = ("v", "kind", "stream_id", "seq")
_MAX_INDEX = 2**63 - 1


class MessageError(BackscatterError):
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
    """Interleaved int16 ``[..., sample, 2]`` to complex64 ``[..., sample]`` (32767 = 1.0).

    One pass in cache-sized blocks straight from ``pairs`` (a received frame is read in place).
    """
    if pairs.dtype != np.int16 or pairs.shape[-1:] != (2,):
        raise ValueError(f"sc16 needs int16 [..., sample, 2], got {pairs.dtype} {pairs.shape}")
    return sc16_to_complex64(pairs)


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
    capture_index: int
    time_s: float
    capture_rate_hz: float
    channels: tuple[Channel, ...]
    format: str
    n_samples: int
    lost_before: int
    waveform: WaveformConfig
    source: str
    truth: StreamTruth | None = None  # emulated / replayed streams: their ground truth

    @property
    def bands(self) -> list[str]:
        return [c.band for c in self.channels]

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    def same_stream_setup(self, other: IQHeader) -> bool:
        """Whether ``other`` has this header's rate, channels and waveform (what a file stores)."""
        return (
            self.capture_rate_hz == other.capture_rate_hz
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

    def complex64(self, pool: BufferPool | None = None) -> np.ndarray:
        """Samples as complex64 ``[channel, sample]`` (for sc16 a new array, or one from ``pool``)."""
        if self.header.format != "sc16":
            return self.iq
        if pool is None:
            return sc16_to_complex(self.iq)
        return sc16_to_complex64(self.iq, pool.take(self.iq.shape[:-1]))


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
