"""Open a capture for SWMR reading without HDF5's unbounded wait on corrupt metadata.

A SWMR reader retries a metadata read whose checksum fails, because a writer may be halfway
through rewriting it.  HDF5 retries 100 times with a back-off that doubles from a nanosecond, so
on a file that is simply corrupt the open blocks for hours (measured: over 15 minutes for one
flipped byte).  A real race with the writer clears within microseconds, so here the attempts are
limited to :data:`METADATA_READ_ATTEMPTS` (about 20 ms of back-off in all, measured) through
``H5Pset_metadata_read_attempts``, which h5py does not wrap: it is called with ctypes on the
HDF5 library h5py itself loaded.  Where that library or symbol cannot be found the file is opened
the plain way (HDF5's default retries).
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
from collections.abc import Callable

import h5py

METADATA_READ_ATTEMPTS = 24
"""Attempts per metadata read in SWMR mode (HDF5's default is 100, which never ends in practice)."""


@functools.cache
def _set_read_attempts() -> Callable[[int, int], int] | None:
    """``H5Pset_metadata_read_attempts`` of the libhdf5 mapped into this process, or ``None``."""
    h5py.h5p.create(h5py.h5p.FILE_ACCESS)  # make sure h5py has loaded its library
    try:
        with open("/proc/self/maps") as maps:
            paths = {m.group(1) for line in maps if (m := re.search(r"(/\S*/libhdf5[-.]\S*\.so\S*)$", line))}
    except OSError:
        return None
    for path in sorted(paths):
        if "_hl" in os.path.basename(path):
            continue
        try:
            fn = ctypes.CDLL(path).H5Pset_metadata_read_attempts
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_int64, ctypes.c_uint]  # hid_t is 64-bit since HDF5 1.10
        fn.restype = ctypes.c_int
        return fn
    return None


def open_swmr_reader(path: str | os.PathLike) -> h5py.File:
    """``h5py.File(path, "r", swmr=True, libver="latest")`` with bounded metadata retries.

    Raises what h5py raises (``OSError`` for an unreadable file; a corrupt object found later
    raises ``KeyError``/``OSError`` when it is read).
    """
    fn = _set_read_attempts()
    if fn is None:
        return h5py.File(path, "r", swmr=True, libver="latest")
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
    if fn(fapl.id, METADATA_READ_ATTEMPTS) < 0:
        return h5py.File(path, "r", swmr=True, libver="latest")
    fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ, fapl=fapl)
    return h5py.File(fid)
