"""Tag packets: Barker preamble, tag ID, payload and CRC-16/CCITT-FALSE.

Bits are ``uint8`` arrays of 0/1, most significant bit first; the BPSK symbol of
bit ``b`` is ``1 - 2 b`` (bit 0 -> +1).
"""

from __future__ import annotations

import numpy as np

from dsp.waveform import BARKER_CODES, WaveformConfig

_CRC_POLY = 0x1021
_CRC_INIT = 0xFFFF


def crc16(bits: np.ndarray) -> np.ndarray:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of a bit array, as 16 bits."""
    reg = _CRC_INIT
    for b in np.asarray(bits, dtype=np.uint8).tolist():
        top = ((reg >> 15) & 1) ^ (b & 1)
        reg = (reg << 1) & 0xFFFF
        if top:
            reg ^= _CRC_POLY
    return int_to_bits(reg, 16)


def int_to_bits(value: int, n_bits: int) -> np.ndarray:
    """``n_bits`` of ``value``, MSB first, ``[n_bits]`` uint8."""
    if n_bits == 0:
        return np.zeros(0, np.uint8)
    shifts = np.arange(n_bits - 1, -1, -1, dtype=np.uint64)
    return ((np.uint64(value) >> shifts) & np.uint64(1)).astype(np.uint8)


def bits_to_int(bits: np.ndarray) -> int:
    out = 0
    for b in np.asarray(bits, dtype=np.uint8).tolist():
        out = (out << 1) | (b & 1)
    return out


def preamble_bits(wf: WaveformConfig) -> np.ndarray:
    return np.array(BARKER_CODES[wf.preamble_barker_length], np.uint8)


def build_packet(wf: WaveformConfig, tag_id: int, payload: np.ndarray) -> np.ndarray:
    """Full packet bits ``[packet_bits]``: preamble, ID, payload, CRC over ID + payload."""
    payload = np.asarray(payload, np.uint8)
    if payload.shape != (wf.payload_bits,):
        raise ValueError(f"payload must have {wf.payload_bits} bits, got shape {payload.shape}")
    body = np.concatenate([int_to_bits(tag_id, wf.tag_id_bits), payload])
    return np.concatenate([preamble_bits(wf), body, crc16(body)])


def parse_packet(wf: WaveformConfig, bits: np.ndarray) -> tuple[int, np.ndarray, bool]:
    """Split decided packet bits into (tag ID, payload bits, CRC ok)."""
    bits = np.asarray(bits, np.uint8)
    p = wf.preamble_barker_length
    body = bits[p : p + wf.tag_id_bits + wf.payload_bits]
    crc = bits[p + wf.tag_id_bits + wf.payload_bits :]
    tag_id = bits_to_int(body[: wf.tag_id_bits])
    return tag_id, body[wf.tag_id_bits :], bool(np.array_equal(crc16(body), crc))


def bits_to_symbols(bits: np.ndarray) -> np.ndarray:
    """BPSK symbols ``1 - 2 b`` as float64."""
    return 1.0 - 2.0 * np.asarray(bits, np.float64)
