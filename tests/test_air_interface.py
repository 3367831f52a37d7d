"""docs/AIR_INTERFACE.md against the code and the independent oracle (issue 13 item 4, issue 19)."""

from __future__ import annotations

import binascii
import re
from pathlib import Path

import numpy as np
import pytest

from dsp.packet import build_packet, crc16, int_to_bits
from dsp.waveform import get_profile
from tests.oracle import packet as oracle_packet
from tests.oracle.waveform import Numerology, symbol_bins

PAGE = Path(__file__).resolve().parents[1] / "docs" / "AIR_INTERFACE.md"


def worked_example() -> tuple[int, int, dict[str, str]]:
    """The page's worked example: tag ID, payload and the bit strings of each field."""
    text = PAGE.read_text()
    head = re.search(r"Tag ID `0x([0-9A-F]+)`, payload `0x([0-9A-F]+)`", text)
    block = re.search(r"```text\n(.*?)```", text, re.S)
    assert head and block, f"{PAGE}: worked example not found"
    fields = dict(re.findall(r"^(\w+):\s+([01]+)$", block.group(1), re.M))
    return int(head.group(1), 16), int(head.group(2), 16), fields


def test_worked_example_matches_the_packet_code_and_the_oracle():
    tag_id, payload, fields = worked_example()
    assert list(fields) == ["preamble", "tag_id", "payload", "crc"]
    page_bits = oracle_packet.bits_of("".join(fields.values()))
    wf = get_profile("default")
    payload_bits = np.array([int(c) for c in format(payload, "064b")], np.uint8)
    np.testing.assert_array_equal(build_packet(wf, tag_id, payload_bits), page_bits)
    np.testing.assert_array_equal(oracle_packet.packet_bits(tag_id, payload_bits), page_bits)
    # the byte-wise CRC of the page's statement, computed by the standard library
    body = (tag_id << 64 | payload).to_bytes(12, "big")
    assert int(fields["crc"], 2) == binascii.crc_hqx(body, 0xFFFF) == 0x44C7


def test_crc_check_value_of_ccitt_false():
    """The catalogue check value of CRC-16/CCITT-FALSE: ASCII ``123456789`` -> 0x29B1."""
    bits = np.unpackbits(np.frombuffer(b"123456789", np.uint8))
    assert oracle_packet.crc16_ccitt_false(bits) == 0x29B1
    np.testing.assert_array_equal(crc16(bits), int_to_bits(0x29B1, 16))


def test_bpsk_mapping_and_preamble_as_the_page_says():
    wf = get_profile("default")
    bits = build_packet(wf, 0, np.zeros(wf.payload_bits, np.uint8))
    np.testing.assert_array_equal(oracle_packet.bpsk(bits[:5]), -np.ones(5))  # 11111 -> five -1
    assert oracle_packet.bpsk(np.array([0, 1])).tolist() == [1.0, -1.0]


def test_illumination_symbol_of_the_page_equals_the_code():
    """Two implementations of the ZC mapping (the oracle's from the page, ``dsp.waveform``)."""
    wf = get_profile("default")
    x = symbol_bins(Numerology())
    np.testing.assert_allclose(x, wf.symbol_freq, atol=1e-12)
    assert x[624] == 1.0 and x[1] != 0 and x[0] == 0  # k = -400 holds X_0 = 1; DC unused
    time = np.fft.ifft(x) * np.sqrt(x.size)
    assert np.mean(np.abs(time) ** 2) == pytest.approx(800 / 1024, rel=1e-12)
