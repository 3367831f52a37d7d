"""GNU Radio's ZeroMQ tag header and the PMT serialisation it carries (gr-zeromq, GNU Radio 3.8-3.10).

A GNU Radio ZMQ sink built with ``pass_tags=True`` prefixes every message with a header, in the
same frame as the items (native byte order, little-endian on every platform we run on)::

    uint16 magic 0x5FF0 | uint8 version 1 | uint64 offset | uint64 ntags
    ntags x ( uint64 tag offset | PMT key | PMT value | PMT srcid )

``offset`` is the absolute item index (``nitems_read``) of the message's first item, tag offsets
are absolute too.  PMTs are serialised as by ``pmt::serialize`` (big-endian): a type byte, then
the value.  This module reads every PMT type that serialisation writes, and writes the few a
source needs (``rx_time`` = tuple(uint64 seconds, double fraction), ``rx_rate`` and ``rx_freq``
doubles, symbol keys).  Decoding raises :class:`GrHeaderError` for anything malformed and
nothing else.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

import numpy as np

from dsp.errors import BackscatterError

GR_HEADER_MAGIC = 0x5FF0
GR_HEADER_VERSION = 1
_HEAD = struct.Struct("<HBQQ")  # magic, version, offset, ntags (19 bytes, packed)
_U64LE = struct.Struct("<Q")
MAX_TAGS = 4096  # per message; a UHD source sets a handful at most
MAX_PMT_DEPTH = 16

# pmt_serial_tags.h
_TRUE, _FALSE, _SYMBOL, _INT32, _DOUBLE, _COMPLEX, _NULL = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
_PAIR, _VECTOR, _DICT, _UVECTOR, _UINT64, _TUPLE, _INT64 = 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D
_UVEC_DTYPES = (">u1", ">i1", ">u2", ">i2", ">u4", ">i4", ">u8", ">i8", ">f4", ">f8", ">c8", ">c16")


class GrHeaderError(BackscatterError):
    """A GNU Radio tag header or PMT that cannot be read."""


class Pair(NamedTuple):
    """A PMT pair (``pmt::cons``)."""

    car: Any
    cdr: Any


class GrTag(NamedTuple):
    """One stream tag: absolute item ``offset``, ``key`` (str for a symbol) and decoded ``value``."""

    offset: int
    key: Any
    value: Any


# ----- PMT ----------------------------------------------------------------------------------------
def _need(buf: memoryview, pos: int, n: int) -> None:
    if pos + n > len(buf):
        raise GrHeaderError(f"PMT truncated: {n} bytes needed at byte {pos} of {len(buf)}")


def pmt_decode(buf: memoryview, pos: int = 0, depth: int = 0) -> tuple[Any, int]:
    """One serialised PMT at ``buf[pos:]``: ``(value, next_pos)``.

    Symbols -> str, int32/int64/uint64 -> int, double -> float, complex -> complex, #t/#f -> bool,
    nil -> None, tuple -> tuple, vector -> list, pair -> :class:`Pair`, dict -> dict, uniform
    vector -> numpy array (native byte order).
    """
    if depth > MAX_PMT_DEPTH:
        raise GrHeaderError(f"PMT nested deeper than {MAX_PMT_DEPTH}")
    _need(buf, pos, 1)
    t = buf[pos]
    pos += 1
    if t == _TRUE or t == _FALSE:
        return t == _TRUE, pos
    if t == _NULL:
        return None, pos
    if t == _SYMBOL:
        _need(buf, pos, 2)
        n = int.from_bytes(buf[pos : pos + 2], "big")
        _need(buf, pos + 2, n)
        try:
            return bytes(buf[pos + 2 : pos + 2 + n]).decode(), pos + 2 + n
        except UnicodeDecodeError:
            raise GrHeaderError("PMT symbol is not UTF-8") from None
    fixed = {_INT32: ">i", _DOUBLE: ">d", _UINT64: ">Q", _INT64: ">q", _COMPLEX: ">dd"}.get(t)
    if fixed is not None:
        size = struct.calcsize(fixed)
        _need(buf, pos, size)
        v = struct.unpack_from(fixed, buf, pos)
        return (complex(*v) if t == _COMPLEX else v[0]), pos + size
    if t in (_PAIR, _DICT):
        car, pos = pmt_decode(buf, pos, depth + 1)
        cdr, pos = pmt_decode(buf, pos, depth + 1)
        if t == _PAIR:
            return Pair(car, cdr), pos
        if not isinstance(car, Pair) or not (cdr is None or isinstance(cdr, dict)):
            raise GrHeaderError("PMT dict entry is not a (key . value) pair")
        try:
            return {car.car: car.cdr, **(cdr or {})}, pos
        except TypeError:
            raise GrHeaderError("PMT dict key is not hashable") from None
    if t in (_VECTOR, _TUPLE):
        _need(buf, pos, 4)
        n = int.from_bytes(buf[pos : pos + 4], "big")
        pos += 4
        if n > len(buf) - pos:  # each element takes at least a byte
            raise GrHeaderError(f"PMT {'tuple' if t == _TUPLE else 'vector'} of {n} elements truncated")
        items = []
        for _ in range(n):
            v, pos = pmt_decode(buf, pos, depth + 1)
            items.append(v)
        return (tuple(items) if t == _TUPLE else items), pos
    if t == _UVECTOR:
        _need(buf, pos, 6)
        kind, n, npad = buf[pos], int.from_bytes(buf[pos + 1 : pos + 5], "big"), buf[pos + 5]
        if kind >= len(_UVEC_DTYPES):
            raise GrHeaderError(f"PMT uniform vector of unknown type {kind}")
        dt = np.dtype(_UVEC_DTYPES[kind])
        pos += 6 + npad
        _need(buf, pos, n * dt.itemsize)
        arr = np.frombuffer(buf, dt, n, pos).astype(dt.newbyteorder("="))
        return arr, pos + n * dt.itemsize
    raise GrHeaderError(f"unknown PMT type byte 0x{t:02x} at byte {pos - 1}")


def pmt_symbol(s: str) -> bytes:
    b = s.encode()
    return bytes([_SYMBOL]) + len(b).to_bytes(2, "big") + b


def pmt_double(x: float) -> bytes:
    return bytes([_DOUBLE]) + struct.pack(">d", float(x))


def pmt_uint64(x: int) -> bytes:
    return bytes([_UINT64]) + struct.pack(">Q", int(x))


def pmt_tuple(*serialised: bytes) -> bytes:
    return bytes([_TUPLE]) + len(serialised).to_bytes(4, "big") + b"".join(serialised)


def pmt_rx_time(time_s: float) -> bytes:
    """``rx_time`` as gr-uhd writes it: tuple(uint64 whole seconds, double fractional seconds)."""
    whole = int(np.floor(time_s))
    return pmt_tuple(pmt_uint64(whole), pmt_double(time_s - whole))


# ----- tag header ---------------------------------------------------------------------------------
def encode_tag_header(offset: int, tags: list[tuple[int, str, bytes]], srcid: str = "backscatter") -> bytes:
    """The header of one message whose first item is ``offset``; ``tags``: ``(offset, key, PMT value)``."""
    out = [_HEAD.pack(GR_HEADER_MAGIC, GR_HEADER_VERSION, offset, len(tags))]
    src = pmt_symbol(srcid)
    for off, key, value in tags:
        out += [_U64LE.pack(off), pmt_symbol(key), value, src]
    return b"".join(out)


def decode_tag_header(buf: memoryview) -> tuple[int, list[GrTag], int]:
    """``(offset, tags, header_bytes)`` of a message that starts with a tag header."""
    if len(buf) < _HEAD.size:
        raise GrHeaderError(f"message of {len(buf)} bytes is shorter than a tag header ({_HEAD.size})")
    magic, version, offset, ntags = _HEAD.unpack_from(buf, 0)
    if magic != GR_HEADER_MAGIC:
        raise GrHeaderError(f"tag header magic 0x{magic:04x}, expected 0x{GR_HEADER_MAGIC:04x}")
    if version != GR_HEADER_VERSION:
        raise GrHeaderError(f"tag header version {version}, expected {GR_HEADER_VERSION}")
    if ntags > MAX_TAGS:
        raise GrHeaderError(f"{ntags} tags in one message (at most {MAX_TAGS})")
    pos, tags = _HEAD.size, []
    for _ in range(ntags):
        _need(buf, pos, 8)
        (off,) = _U64LE.unpack_from(buf, pos)
        key, pos = pmt_decode(buf, pos + 8)
        value, pos = pmt_decode(buf, pos)
        _, pos = pmt_decode(buf, pos)  # srcid
        tags.append(GrTag(off, key, value))
    return offset, tags, pos


def rx_time_s(value: Any) -> tuple[int, float]:
    """``(whole_s, frac_s)`` of an ``rx_time`` value (tuple of an integer and a double)."""
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], int)
        and isinstance(value[1], float)
        and value[0] >= 0
        and 0.0 <= value[1] < 1.0
    ):
        return value[0], value[1]
    raise GrHeaderError(f"rx_time must be (uint64 seconds, double fraction in [0, 1)), got {value!r:.80}")
