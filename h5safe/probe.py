"""Read an HDF5 file's metadata in a child process first, so that libhdf5 crashing or looping on
a corrupt file becomes an error that names the file instead of killing or freezing the caller.

libhdf5 trusts much of what it reads.  Fuzzing (``tests/test_fuzz.py``, ``make fuzz``) found one
byte of a calibration file, the type field of a variable-length string's datatype, that makes
HDF5 2.0.0 (as bundled with h5py 3.16, the newest) die of a segmentation fault reading the
attribute, and a global heap that makes it loop forever with the GIL held (that one is also
recognised at once by :mod:`h5safe.heap_check`).  Nothing inside the process can catch a
segmentation fault or interrupt such a loop; a child can die instead.

:func:`probe_problem` runs this module in a child (``python -m h5safe.probe PATH``),
which imports h5py alone, opens the file the way the readers do (plainly, or in SWMR mode with
bounded retries if a writer still has it open), and reads every attribute of every object, each
dataset's type and shape, small datasets whole and a large one's chunk index (if it has at most
:data:`MAX_CHUNKS_WALKED` chunks).  The child costs
about 0.1 s (measured: interpreter and h5py start-up; a capture's metadata is read in
milliseconds).  A Python error in the child is not reported here: the caller's own reading
meets it again and says what is wrong with more context.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from pathlib import Path

from h5safe.heap_check import global_heap_problem

PROBE_TIMEOUT_S = 20.0
"""The child's limit; a sound file's metadata is read in well under a second."""

SMALL_DATASET_BYTES = 1 << 20
"""Datasets up to this size are read whole by the probe (a calibration's, a capture's gap list)."""

MAX_CHUNKS_WALKED = 2_000_000
"""A large dataset's chunk index is walked if it has at most this many chunks (0.8 us each, measured:
1.6 s; an hour at 62.5 MS/s in 65,536-sample chunks is 3.4 million, so not walked)."""


def hdf5_problem(path: str | os.PathLike) -> str | None:
    """Why libhdf5 cannot be trusted with the file at ``path`` (a global heap it would loop on,
    or a crash or no answer in the child), or ``None``; ``OSError`` if the file cannot be read."""
    if (heap := global_heap_problem(path)) is not None:
        return f"corrupt HDF5 metadata (libhdf5 would never return): {heap}"
    return probe_problem(path)


def probe_problem(path: str | os.PathLike, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """What libhdf5 did wrong reading the metadata of the file at ``path`` in a child process
    (a signal, or no answer within ``timeout_s``), or ``None``."""
    root = str(Path(__file__).resolve().parents[1])  # this package, whatever the child's path
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "h5safe.probe", os.fspath(path)],
            capture_output=True,
            timeout=timeout_s,
            check=False,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return f"libhdf5 did not return within {timeout_s:g} s reading the file's metadata (corrupt?)"
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        return f"libhdf5 crashed ({name}) reading the file's metadata: the file is corrupt"
    return None


def _read_metadata(path: str) -> None:
    """Everything the readers touch but the samples' chunks (see the module docstring)."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        if "already open for write" not in str(exc):
            raise
        from h5safe.swmr import open_swmr_reader

        f = open_swmr_reader(path)

    def visit(obj: h5py.HLObject) -> None:
        for key in obj.attrs:
            obj.attrs[key]
        if isinstance(obj, h5py.Dataset):
            _ = obj.dtype, obj.shape, obj.chunks
            if obj.size * obj.dtype.itemsize <= SMALL_DATASET_BYTES:
                obj[()]
            elif obj.chunks is not None and obj.size <= MAX_CHUNKS_WALKED * math.prod(obj.chunks):
                obj.id.chunk_iter(lambda info: None)

    with f:
        visit(f)
        f.visititems(lambda name, obj: visit(obj))


if __name__ == "__main__":
    _read_metadata(sys.argv[1])
