"""h5safe/probe.py: a file that crashes or freezes libhdf5 is refused with an error naming
it, in the caller's process, which goes on.

The crash: a variable-length datatype (class 9, version 1: the byte ``0x19`` of the HDF5 format
specification's "Datatype Message") whose type field (the low four bits of the next byte: 0 a
sequence, 1 a string) holds 2; HDF5 2.0.0 dies of SIGSEGV reading such an attribute (measured:
types 2, 13 and 15 all do; 0x0D was the fuzzer's byte).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from calibration.store import CalibrationError, load_calibration
from captures.format import CaptureError
from captures.reader import open_capture
from dsp.waveform import WaveformConfig
from h5safe import probe
from h5safe.probe import probe_problem
from sdr.emulator.capture import write_emulated_capture
from tests.test_heap_check import SMALL, free_space_zeroed, write


def vlen_type_broken(data: bytes, attribute: bytes) -> bytes:
    """``data`` with the type field of ``attribute``'s variable-length datatype set to 2."""
    at = data.index(b"\x19", data.index(attribute + b"\0"))
    assert data[at + 1] & 0x0F == 1  # a variable-length string
    return data[: at + 1] + bytes([(data[at + 1] & 0xF0) | 2]) + data[at + 2 :]


@pytest.fixture(scope="module")
def capture_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("probe") / "cap.h5"
    write_emulated_capture(path, WaveformConfig(), SMALL)
    return path


@pytest.fixture(scope="module")
def plain_file(tmp_path_factory) -> Path:
    """An HDF5 file as another program may write a capture: h5py's default format (no metadata
    checksums: our captures' SWMR format would catch the corrupt byte by its checksum)."""
    path = tmp_path_factory.mktemp("probe") / "plain.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "backscatter-capture"
        f.attrs["core:recorder"] = "another program"
    return path


def test_the_corruption_kills_hdf5_in_a_process_of_its_own(tmp_path, plain_file):
    """The premise, measured: h5py reading the attribute dies of SIGSEGV (so no ``except`` in
    the reader could report it)."""
    bad = write(tmp_path, vlen_type_broken(plain_file.read_bytes(), b"core:recorder"))
    code = "import sys, h5py; h5py.File(sys.argv[1], 'r').attrs['core:recorder']"
    proc = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True, timeout=30)
    assert proc.returncode == -11


def test_a_capture_that_crashes_hdf5_is_refused_and_the_caller_goes_on(tmp_path, plain_file, capture_file):
    bad = write(tmp_path, vlen_type_broken(plain_file.read_bytes(), b"core:recorder"), name="bad.h5")
    with pytest.raises(CaptureError) as err:
        open_capture(bad)
    want = "libhdf5 crashed (SIGSEGV) reading the file's metadata: the file is corrupt"
    assert str(err.value) == f"{bad}:/: {want}"
    with open_capture(capture_file) as cap:  # this process is unharmed
        assert cap.n_samples > 0


def test_a_calibration_that_crashes_hdf5_is_refused(tmp_path, calibration_file):
    bad = write(tmp_path, vlen_type_broken(calibration_file.read_bytes(), b"waveform"), name="bad.h5")
    with pytest.raises(CalibrationError, match=r"crashed \(SIGSEGV\)") as err:
        load_calibration(bad)
    assert str(err.value).startswith(f"{bad}: libhdf5 crashed")
    load_calibration(calibration_file)


def test_a_child_that_does_not_answer_is_reported_after_the_limit(tmp_path, capture_file):
    """The free space of the global heap zeroed: the child loops in libhdf5 (the readers catch
    this file earlier, by h5safe/heap_check.py); the probe alone reports it at its limit."""
    bad = write(tmp_path, free_space_zeroed(capture_file.read_bytes()), name="loop.h5")
    assert probe_problem(bad, timeout_s=2) == (
        "libhdf5 did not return within 2 s reading the file's metadata (corrupt?)"
    )


def test_sound_files_and_python_errors_are_left_to_the_reader(tmp_path, capture_file):
    """A sound file: nothing to report; a file that is not HDF5 at all: the child's Python error
    is not a crash, and the reader's own message says what is wrong."""
    assert probe_problem(capture_file) is None
    text = write(tmp_path, b"not an HDF5 file\n" * 100, name="text.h5")
    assert probe_problem(text) is None
    with pytest.raises(CaptureError, match="not a readable HDF5 file"):
        open_capture(text)


def test_one_child_answers_many_requests_and_a_dead_one_is_replaced(tmp_path, plain_file):
    bad = write(tmp_path, vlen_type_broken(plain_file.read_bytes(), b"core:recorder"), name="bad.h5")
    assert probe_problem(plain_file) is None
    first = probe._PROBER._proc.pid
    assert probe_problem(plain_file) is None and probe._PROBER._proc.pid == first
    assert "SIGSEGV" in probe_problem(bad)
    assert probe._PROBER._proc is None  # the dead child is let go
    assert probe_problem(plain_file) is None and probe._PROBER._proc.pid != first


def test_a_forked_process_asks_a_child_of_its_own(plain_file):
    """After ``fork`` (replay's read-ahead) the child process must not write into its parent's
    pipe: it starts its own prober; the parent's is untouched."""
    assert probe_problem(plain_file) is None
    parent_child = probe._PROBER._proc.pid
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the forked child reports through the pipe
        ok = probe._PROBER._proc is None and probe_problem(plain_file) is None
        os.write(w, b"%d %d" % (ok, probe._PROBER._proc.pid))
        probe._PROBER.close()
        os._exit(0)
    os.close(w)
    assert os.waitpid(pid, 0)[1] == 0
    ok, its_child = map(int, os.read(r, 64).split())
    os.close(r)
    assert ok == 1 and its_child != parent_child
    assert probe._PROBER._proc.pid == parent_child and probe_problem(plain_file) is None
