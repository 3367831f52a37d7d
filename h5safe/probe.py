"""Read an HDF5 file's metadata in a child process first, so that libhdf5 crashing or looping on
a corrupt file becomes an error that names the file instead of killing or freezing the caller.

libhdf5 trusts much of what it reads.  Fuzzing (``tests/test_fuzz.py``, ``make fuzz``) found one
byte of a calibration file, the type field of a variable-length string's datatype, that makes
HDF5 2.0.0 (as bundled with h5py 3.16, the newest) die of a segmentation fault reading the
attribute, and a global heap that makes it loop forever with the GIL held (that one is also
recognised at once by :mod:`h5safe.heap_check`).  Nothing inside the process can catch a
segmentation fault or interrupt such a loop; a child can die instead.

:func:`probe_problem` asks a child process (this module, ``python -m h5safe.probe``, started at
the first request and kept for the next), which imports h5py alone, opens the file the way the
readers do (plainly, or in SWMR mode with bounded retries if a writer still has it open), and
reads every attribute of every object, each dataset's type and shape, small datasets whole and a
large one's chunk index (if it has at most :data:`MAX_CHUNKS_WALKED` chunks).  Starting the
child costs about 0.1 s once per process (interpreter and h5py start-up); a request then takes
about 5 ms for a small capture (measured, the metadata's own reading included).  A Python error
in the child is not reported here: the caller's own reading meets it again and says what is
wrong with more context.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import selectors
import signal
import subprocess
import sys
import threading
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


class _Prober:
    """One child that reads files' metadata on request (a JSON path a line in, ``ok`` or
    ``error`` a line out), started at the first request of this process and kept for the next;
    a child that dies or stops answering is reported and replaced by a new one next time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._parents: list[subprocess.Popen] = []

    def after_fork(self) -> None:
        """In a forked process: a child of its own next time, a new lock (another thread may
        have held the old one); the parent's child is kept, unused (collected, its ``Popen``
        would warn that it still runs)."""
        self._lock = threading.Lock()
        if self._proc is not None:
            self._parents.append(self._proc)
        self._proc = None

    def _start(self) -> subprocess.Popen:
        root = str(Path(__file__).resolve().parents[1])  # this package, whatever the child's path
        path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        return subprocess.Popen(
            [sys.executable, "-m", "h5safe.probe"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONPATH=path),
        )

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
            proc.stdin.close()
            proc.stdout.close()

    def check(self, path: str | os.PathLike, timeout_s: float) -> str | None:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._stop()
                self._proc = self._start()
            proc = self._proc
            try:
                proc.stdin.write(json.dumps(os.fsdecode(path)).encode() + b"\n")
                proc.stdin.flush()
            except BrokenPipeError:
                pass  # it died: read the end below
            with selectors.DefaultSelector() as sel:
                sel.register(proc.stdout, selectors.EVENT_READ)
                ready = sel.select(timeout_s)
            if not ready:
                self._stop()
                return f"libhdf5 did not return within {timeout_s:g} s reading the file's metadata (corrupt?)"
            if proc.stdout.readline():
                return None  # read, or a Python error the caller's own reading reports better
            code = proc.wait()
            self._stop()
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"exit status {code}"
            return f"libhdf5 crashed ({name}) reading the file's metadata: the file is corrupt"

    def close(self) -> None:
        with self._lock:
            if self._proc is not None:
                self._proc.stdin.close()  # the child ends at the end of its input
                self._proc.wait()
                self._proc.stdout.close()
            self._proc = None


_PROBER = _Prober()
atexit.register(_PROBER.close)
os.register_at_fork(after_in_child=_PROBER.after_fork)


def probe_problem(path: str | os.PathLike, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """What libhdf5 did wrong reading the metadata of the file at ``path`` in the child process
    (it died, or gave no answer within ``timeout_s``), or ``None``."""
    return _PROBER.check(path, timeout_s)


def _serve() -> None:
    for line in sys.stdin.buffer:
        try:
            _read_metadata(json.loads(line))
            answer = b"ok\n"
        except Exception:
            answer = b"error\n"
        sys.stdout.buffer.write(answer)
        sys.stdout.buffer.flush()


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
    _serve()
