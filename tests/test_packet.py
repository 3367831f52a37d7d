import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.packet import bits_to_int, build_packet, crc16, int_to_bits, parse_packet, preamble_bits


def _bytes_to_bits(data: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, np.uint8))


def test_crc16_ccitt_false_check_value():
    # the catalogue check value of CRC-16/CCITT-FALSE over ASCII "123456789"
    assert bits_to_int(crc16(_bytes_to_bits(b"123456789"))) == 0x29B1


def test_preamble_is_barker_13(wf):
    sym = 1 - 2.0 * preamble_bits(wf)
    ac = np.correlate(sym, sym, "full")
    assert ac.max() == 13 and np.max(np.abs(ac[:12])) <= 1


@settings(max_examples=50, deadline=None)
@given(tag_id=st.integers(0, 2**32 - 1), seed=st.integers(0, 2**31), flip=st.integers(13, 124))
def test_packet_round_trip_and_crc_catches_a_flip(wf, tag_id, seed, flip):
    payload = np.random.default_rng(seed).integers(0, 2, 64).astype(np.uint8)
    bits = build_packet(wf, tag_id, payload)
    assert bits.shape == (125,)
    got_id, got_payload, ok = parse_packet(wf, bits)
    assert ok and got_id == tag_id and np.array_equal(got_payload, payload)
    bad = bits.copy()
    bad[flip] ^= 1
    assert not parse_packet(wf, bad)[2]


def test_int_bits_round_trip():
    assert bits_to_int(int_to_bits(0xB5C0FFEE, 32)) == 0xB5C0FFEE


def test_int_bits_at_the_edges():
    """Widths 0 and 1 (a profile may set ``tag_id_bits`` that small): killed mutants of
    ``int_to_bits`` (docs/MUTATION.md)."""
    assert int_to_bits(5, 0).shape == (0,) and int_to_bits(5, 0).dtype == np.uint8
    assert int_to_bits(1, 1).tolist() == [1] and int_to_bits(0, 1).tolist() == [0]
    assert int_to_bits(6, 3).tolist() == [1, 1, 0]  # most significant bit first
    assert bits_to_int(np.zeros(0, np.uint8)) == 0


def test_a_payload_of_the_wrong_length_is_refused_with_its_shape(wf):
    with pytest.raises(ValueError, match=r"^payload must have 64 bits, got shape \(63,\)$"):
        build_packet(wf, 1, np.zeros(63, np.uint8))


def test_bits_to_symbols_is_the_air_interfaces_bpsk():
    """Bit 0 -> +1, bit 1 -> -1 (AIR_INTERFACE.md), as the independent oracle writes it
    (tests/oracle/packet.py); kills the surviving mapping mutants (docs/MUTATION.md)."""
    from dsp.packet import bits_to_symbols
    from tests.oracle.packet import bpsk

    bits = np.array([0, 1, 1, 0, 1], np.uint8)
    assert bits_to_symbols(bits).tolist() == [1.0, -1.0, -1.0, 1.0, -1.0]
    np.testing.assert_array_equal(bits_to_symbols(bits), bpsk(bits))
