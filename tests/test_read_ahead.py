"""Replay's reader process (captures/read_ahead.py): the same pieces as reading in process, slots
never overwritten while held, failures read again by the parent, the child always reaped."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

from captures.emulated import channels_for
from captures.format import CHUNK_SAMPLES
from captures.read_ahead import ReadAhead
from captures.reader import CaptureError, open_capture
from captures.writer import CaptureWriter

PIECE = 3 * CHUNK_SAMPLES // 2  # pieces straddle chunk edges: whole chunks and parts of them
N_SAMPLES = 7 * CHUNK_SAMPLES + 1234  # a partial last chunk


@pytest.fixture(scope="module")
def capture(tmp_path_factory, wf):
    """A three-channel ci16 capture with a gap, and the samples it holds."""
    path = tmp_path_factory.mktemp("read_ahead") / "c.h5"
    rng = np.random.default_rng(5)
    pairs = rng.integers(-32768, 32768, (3, N_SAMPLES, 2), dtype=np.int16)
    cut = 4 * CHUNK_SAMPLES + 99  # the gap's place: a piece ends there
    with CaptureWriter(path, wf, channels_for(wf, ["central", "lower", "upper"]), 30.72e6) as w:
        w.append(pairs[:, :cut])
        w.add_gap(777)
        w.append(pairs[:, cut:])
    return path, pairs


def _expected(path, piece: int) -> list[tuple[int, np.ndarray, int]]:
    with open_capture(path) as cap:
        return [(s, iq.copy(), lost) for s, iq, lost in cap.iter_chunks(piece, pairs=True)]


def _reaped(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_pieces_are_those_of_reading_in_process_and_the_child_is_reaped(capture):
    path, pairs = capture
    want = _expected(path, PIECE)
    assert len(want) >= 6 and any(lost for _, _, lost in want)  # the gap is there
    cpus = os.sched_getaffinity(0)
    with open_capture(path) as cap, ReadAhead(cap, PIECE) as ra:
        if len(cpus) < 2:
            pytest.skip("one CPU: no reader process")
        assert ra.active and os.sched_getaffinity(0) == cpus - {max(cpus)}
        got = [(s, iq.copy(), lost) for s, iq, lost in ra]
        pid = ra.pid
    assert _reaped(pid) and os.sched_getaffinity(0) == cpus
    assert ra.read_here == 0  # the child read every piece
    assert [(s, lost) for s, _, lost in got] == [(s, lost) for s, _, lost in want]
    for (_, a, _), (_, b, _) in zip(got, want, strict=True):
        assert a.dtype == np.int16 and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.concatenate([g[1] for g in got], axis=1), pairs)


def test_a_held_slot_is_never_overwritten(capture):
    """The consumer keeps every piece (views of the slots): with fewer slots than pieces the
    parent reads the rest itself, and every held piece still holds its own samples at the end."""
    path, _ = capture
    want = _expected(path, PIECE)
    with open_capture(path) as cap, ReadAhead(cap, PIECE, depth=1, slots=3) as ra:
        if not ra.active:
            pytest.skip("no reader process here")
        held = list(ra)
    assert ra.read_here == len(want) - 3  # three slots, each held: the parent read the others
    for (_, a, _), (_, b, _) in zip(held, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_pieces_let_go_free_their_slots_for_the_child(capture):
    path, _ = capture
    with open_capture(path) as cap, ReadAhead(cap, PIECE, depth=1, slots=2) as ra:
        if not ra.active:
            pytest.skip("no reader process here")
        n = sum(1 for _ in ra)
    assert ra.read_here == 0 and n == len(_expected(path, PIECE))


def test_a_corrupt_chunk_is_read_again_in_process_and_reported_with_the_file(capture, tmp_path):
    path, _ = capture
    bad = tmp_path / "bad.h5"
    raw = bytearray(path.read_bytes())
    with h5py.File(path, "r") as f:
        offset = f["iq"].id.get_chunk_info(5).byte_offset
    raw[offset + 100] ^= 0x5A
    bad.write_bytes(bytes(raw))
    with open_capture(bad) as cap, ReadAhead(cap, PIECE) as ra:
        active = ra.active
        seen = []
        with pytest.raises(CaptureError, match=r"bad\.h5") as exc:
            for s, _, _ in ra:
                seen.append(s)
        pid = ra.pid
    assert "checksum" in str(exc.value)
    assert seen and max(seen) < 6 * CHUNK_SAMPLES  # everything before the bad chunk came through
    if active:
        assert ra.read_here == 1 and _reaped(pid)


def test_leaving_early_reaps_the_child(capture):
    path, _ = capture
    with open_capture(path) as cap, ReadAhead(cap, PIECE) as ra:
        pid = ra.pid
        for _ in ra:
            break
    assert pid == 0 or _reaped(pid)


def test_no_reader_process_for_a_growing_file_or_a_single_piece(capture, wf, tmp_path):
    path, pairs = capture
    with open_capture(path, swmr=True) as cap, ReadAhead(cap, PIECE) as ra:
        assert not ra.active
        np.testing.assert_array_equal(np.concatenate([iq for _, iq, _ in ra], axis=1), pairs)
    one = tmp_path / "one.h5"
    with CaptureWriter(one, wf, channels_for(wf, ["central", "upper"]), 30.72e6) as w:
        w.append(pairs[:2, :5000])
    with open_capture(one) as cap, ReadAhead(cap, PIECE) as ra:
        assert not ra.active
        (piece,) = list(ra)
        np.testing.assert_array_equal(piece[1], pairs[:2, :5000])


def test_depth_and_slots_are_checked(capture):
    path, _ = capture
    with open_capture(path) as cap:
        with pytest.raises(ValueError, match="slots > depth"):
            ReadAhead(cap, PIECE, depth=4, slots=4)
        with pytest.raises(ValueError, match="depth >= 1"):
            ReadAhead(cap, PIECE, depth=0)
