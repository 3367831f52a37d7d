"""Tag packet bits (AIR_INTERFACE.md section 2): Barker preamble, ID, payload, CRC-16/CCITT-FALSE.

Bit arrays are ``uint8`` ``[bit]`` of 0/1, sent first element first.
"""

from __future__ import annotations

import numpy as np

BARKER = {
    2: "10",
    3: "110",
    4: "1101",
    5: "11101",
    7: "1110010",
    11: "11100010010",
    13: "1111100110101",
}


def bits_of(text: str) -> np.ndarray:
    """``"1011"`` -> ``[1, 0, 1, 1]``."""
    return np.frombuffer(text.encode(), np.uint8) - ord("0")


def uint_bits(value: int, width: int) -> np.ndarray:
    """``value`` as ``width`` bits, most significant first."""
    if not 0 <= value < 1 << width:
        raise ValueError(f"value {value:#x} does not fit in {width} bits")
    return bits_of(format(value, f"0{width}b")) if width else np.zeros(0, np.uint8)


def crc16_ccitt_false(bits: np.ndarray) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, xorout 0) of a bit string."""
    reg = 0xFFFF
    for b in bits.tolist():
        top = (reg >> 15) ^ int(b)
        reg = (reg << 1) & 0xFFFF
        if top:
            reg ^= 0x1021
    return reg


def packet_bits(tag_id: int, payload: np.ndarray, barker: int = 13, id_bits: int = 32) -> np.ndarray:
    """Preamble || ID || payload || CRC over (ID || payload), ``[bit]``."""
    body = np.concatenate([uint_bits(tag_id, id_bits), np.asarray(payload, np.uint8)])
    return np.concatenate([bits_of(BARKER[barker]), body, uint_bits(crc16_ccitt_false(body), 16)])


def bpsk(bits: np.ndarray) -> np.ndarray:
    """Bit 0 -> +1, bit 1 -> -1, ``[bit]`` float64."""
    return 1.0 - 2.0 * np.asarray(bits, np.float64)
