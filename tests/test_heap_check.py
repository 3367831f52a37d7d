"""h5safe/heap_check.py: refuse the global heap collections libhdf5 would loop on, pass every
collection HDF5 writes.

Collections are built here byte by byte from the HDF5 file format specification ("Global Heap
Collection": signature ``GCOL``, version 1, three reserved bytes, the collection size; objects
of index, reference count, four reserved bytes, size and data padded to 8 bytes; the free space
an object of index 0 whose size is the rest of the collection), not with the module's code.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from captures.format import CaptureError
from captures.reader import open_capture
from dsp.waveform import WaveformConfig
from h5safe import heap_check
from h5safe.heap_check import global_heap_problem
from sdr.emulator.capture import write_emulated_capture
from sdr.emulator.scenario import ScenarioConfig

SMALL = ScenarioConfig(duration_s=0.001, seed=1, bands=("central", "upper"))


def collection(sizes: list[int], total: int = 4096, free_size: int | None = None) -> bytes:
    """A collection of ``total`` bytes holding objects of ``sizes`` bytes (index 1, 2, ...) and
    the free space (size ``free_size``, by default the true rest)."""
    body = b""
    for i, n in enumerate(sizes, start=1):
        body += struct.pack("<HH4xQ", i, 1, n) + b"x" * n
        body += b"\0" * (-n % 8)
    rest = total - 16 - len(body)
    assert rest >= 16
    body += struct.pack("<HH4xQ", 0, 0, rest if free_size is None else free_size)
    return (b"GCOL\x01\0\0\0" + struct.pack("<Q", total) + body).ljust(total, b"\0")


def write(tmp_path: Path, *parts: bytes, name: str = "f.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join(parts))
    return path


def free_space_zeroed(data: bytes) -> bytes:
    """``data`` (an HDF5 file) with the size of its first collection's free space set to 0: the
    walk that libhdf5 makes stops advancing there (measured: ``h5py`` never returns)."""
    b = bytearray(data)
    at = b.find(b"GCOL")
    p = at + 16
    while (index := struct.unpack_from("<H", b, p)[0]) != 0:
        p += 16 + -(-struct.unpack_from("<Q", b, p + 8)[0] // 8) * 8
    assert index == 0 and p < at + struct.unpack_from("<Q", b, at + 8)[0]
    b[p + 8 : p + 16] = bytes(8)
    return bytes(b)


def test_a_collection_of_objects_and_free_space_walks_cleanly(tmp_path):
    assert global_heap_problem(write(tmp_path, b"pad" * 100, collection([23, 416, 1, 0, 7]))) is None


def test_free_space_of_size_zero_is_refused_with_its_place(tmp_path):
    """The case the fuzzer met: the walk lands on an index-0 object of size 0."""
    path = write(tmp_path, bytes(512), collection([23, 416], free_size=0))
    problem = global_heap_problem(path)
    assert problem is not None
    assert "at byte 512" in problem and "object 0 at byte 1000" in problem and "does not advance" in problem


@pytest.mark.parametrize(("sizes", "free"), [([5000], None), ([10], 5000)])
def test_an_object_that_runs_past_its_collection_is_refused(tmp_path, sizes, free):
    if free is None:  # an object's own size corrupted upward (the fuzzer's first byte edit)
        data = bytearray(collection([16]))
        struct.pack_into("<Q", data, 24, sizes[0])
    else:
        data = collection(sizes, free_size=free)
    problem = global_heap_problem(write(tmp_path, bytes(data)))
    assert problem is not None and "runs past the collection's end" in problem


@pytest.mark.parametrize(
    "header",
    [b"GCOL\x02\0\0\0", b"GCOL\x01\0\x07\0"],  # another version; reserved bytes not zero
)
def test_gcol_bytes_without_a_collection_header_are_not_read_as_one(tmp_path, header):
    """Sample data can hold the four bytes ``GCOL``: without version 1 and zero reserved bytes
    it is no collection (and HDF5 itself refuses such a header when it reads one)."""
    bad = bytearray(collection([8], free_size=0))
    bad[:8] = header
    assert global_heap_problem(write(tmp_path, bytes(bad))) is None
    small = collection([8]).replace(struct.pack("<Q", 4096), struct.pack("<Q", 100), 1)
    assert global_heap_problem(write(tmp_path, small, name="small.bin")) is None  # under 4 KiB


def test_in_a_large_file_only_the_edges_are_read_and_a_collection_may_cross_the_head(tmp_path, monkeypatch):
    """``EDGE_BYTES`` at each end of a file over twice that: a sound collection that crosses the
    end of the head is not refused (it goes on in the unread middle); a corrupt one in the tail
    is; one wholly in the middle is not read (the documented limit)."""
    monkeypatch.setattr(heap_check, "EDGE_BYTES", 8192)
    crossing = bytes(6000) + collection([100])  # 6000..10096 crosses the head's end at 8192
    middle = bytes(2000) + collection([8], free_size=0)
    tail = collection([40], free_size=0)
    gap = bytes(12_000)  # the middle collection ends at 16192, the tail window starts after it
    assert global_heap_problem(write(tmp_path, crossing, middle, gap)) is None
    problem = global_heap_problem(write(tmp_path, crossing, middle, gap, tail, name="t.bin"))
    assert problem is not None and f"at byte {10_096 + 6096 + 12_000}:" in problem
    # the whole of a small file is read, and a collection past its end is refused
    cut = write(tmp_path, collection([8])[:3000], name="c.bin")
    assert "past the end of the file" in global_heap_problem(cut)


@given(st.lists(st.integers(0, 300), max_size=10), st.sampled_from([4096, 8192, 12288]))
def test_every_sound_collection_walks_cleanly(sizes, total):
    """Property: any objects that fit, with the free space the rest: never refused."""
    if 16 + sum(16 + n + (-n % 8) for n in sizes) + 16 > total:
        return
    data = b"\0" * 24 + collection(sizes, total) + b"\0" * 40
    assert heap_check._walk(data, 24, 0, 8, True) is None


def test_the_files_hdf5_writes_walk_cleanly_and_the_check_reaches_their_collections(tmp_path):
    """Many variable-length strings (several collections), a small capture and the property that
    the check is not vacuous: each file, its free space zeroed, is refused."""
    many = tmp_path / "many.h5"
    with h5py.File(many, "w") as f:
        for i in range(300):
            f.attrs[f"a{i}"] = "x" * (i * 7 % 500)
        f.create_dataset("v", data=np.array(["y" * i for i in range(200)], dtype=h5py.string_dtype()))
    cap = tmp_path / "cap.h5"
    write_emulated_capture(
        cap, WaveformConfig(), ScenarioConfig(duration_s=0.001, seed=1, bands=("central", "upper"))
    )
    for path in (many, cap):
        data = path.read_bytes()
        assert data.count(b"GCOL") >= (2 if path is many else 1)
        assert global_heap_problem(path) is None
        assert global_heap_problem(write(tmp_path, free_space_zeroed(data), name="z.h5")) is not None


_LOAD = """
import sys
from calibration.store import CalibrationError, load_calibration
from captures.format import CaptureError
from captures.reader import open_capture
from dsp.waveform import WaveformConfig
kind, path = sys.argv[1], sys.argv[2]
try:
    if kind == "calibration":
        load_calibration(path)
    else:
        open_capture(path, swmr=kind == "swmr").close()
except (CalibrationError, CaptureError) as exc:
    print(type(exc).__name__, exc)
"""


def load_in_a_child(kind: str, path: Path) -> str:
    """Load in a child process (a regression would hang libhdf5 with the GIL held: no timeout in
    this process could stop it); the child's first output line, or a failure after 20 s."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _LOAD, kind, str(path)], capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"loading {path} as {kind} did not return within 20 s")
    return proc.stdout + proc.stderr


@pytest.mark.parametrize("kind", ["capture", "swmr"])
def test_a_capture_whose_heap_would_hang_hdf5_is_refused_at_once(tmp_path, kind):
    good = tmp_path / "good.h5"
    write_emulated_capture(
        good, WaveformConfig(), ScenarioConfig(duration_s=0.001, seed=1, bands=("central", "upper"))
    )
    bad = write(tmp_path, free_space_zeroed(good.read_bytes()), name="bad.h5")
    out = load_in_a_child(kind, bad)
    want = "corrupt HDF5 metadata (libhdf5 would never return): global heap collection at byte"
    assert out.startswith(f"CaptureError {bad}:/: {want}"), out
    with pytest.raises(CaptureError, match="does not advance"):
        open_capture(bad)
    open_capture(good).close()
