"""Refuse an HDF5 file whose global heap would send libhdf5 into an endless loop.

Variable-length strings (the JSON and text attributes of captures and calibration files) live in
*global heap collections*, blocks that start with the signature ``GCOL`` (HDF5 file format
specification, "Global Heap").  libhdf5 reads a collection by walking its objects, each a 16-byte
header (index, reference count, reserved, size) and its data padded to 8 bytes; the free space at
the end is an object of index 0 whose size is the rest of the collection.  The walk steps by each
object's size and never checks the step: a free-space object of size 0 (one corrupt size field
upstream is enough to land the walk on zeros) makes a step of 0 bytes, and
``H5HG__cache_heap_deserialize`` loops forever with the GIL held (HDF5 2.0.0 as bundled with
h5py 3.16; found by ``tests/test_fuzz.py`` in a calibration file with five bytes changed).  No
timeout in the same process can interrupt it.

:func:`global_heap_problem` walks every collection in the file's metadata the same way first and
describes the first one whose walk would not advance or would leave the collection.  Small files
are read whole; in a large one (a capture) the first and last :data:`EDGE_BYTES`, where HDF5 puts
the metadata our writers make (at creation and at close), so a collection elsewhere goes
unchecked.  A ``GCOL`` that is not a collection (sample data) is recognised by its header
(version 1, three zero bytes, a size of at least 4 KiB): about 2**-64 per position.
"""

from __future__ import annotations

import os
from pathlib import Path

EDGE_BYTES = 1 << 20
"""Bytes read at each end of a file larger than twice this (smaller files are read whole)."""

_SIGNATURE = b"GCOL"
_MIN_COLLECTION = 4096  # H5HG_MINSIZE: every collection HDF5 writes is at least this large
_FORMAT_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _length_size(head: bytes) -> int:
    """The file's "size of lengths" from a superblock at offset 0 (8 when there is none)."""
    if not head.startswith(_FORMAT_SIGNATURE) or len(head) < 16:
        return 8
    version = head[8]
    size = head[14] if version in (0, 1) else head[10]
    return size if size in (2, 4, 8, 16) else 8


def _walk(buf: bytes, at: int, file_offset: int, n_len: int, at_eof: bool) -> str | None:
    """The problem of the collection at ``buf[at:]`` (``None`` if it walks cleanly or is no
    collection); ``file_offset`` is where ``buf`` starts in the file, ``at_eof`` whether it
    ends where the file does (else a collection may go on beyond it)."""
    header = 8 + n_len  # signature, version, 3 reserved bytes, collection size
    if at + header > len(buf) or buf[at + 4] != 1 or buf[at + 5 : at + 8] != b"\0\0\0":
        return None  # not a collection header (or one HDF5 itself refuses by its version)
    size = int.from_bytes(buf[at + 8 : at + header], "little")
    if size < _MIN_COLLECTION:
        return None
    where = f"global heap collection at byte {file_offset + at}"
    end = at + size
    if end > len(buf):
        return f"{where}: its size {size} runs past the end of the file" if at_eof else None
    obj_header = 8 + n_len  # index (2), reference count (2), reserved (4), size
    p = at + header
    while p < end:
        if p + obj_header > end:
            return None  # a tail too short for a header is free space
        index = int.from_bytes(buf[p : p + 2], "little")
        length = int.from_bytes(buf[p + 8 : p + obj_header], "little")
        step = length if index == 0 else obj_header + -(-length // 8) * 8
        if step == 0 or p + step > end:
            what = "does not advance the walk" if step == 0 else "runs past the collection's end"
            return f"{where}: object {index} at byte {file_offset + p} has size {length}, which {what}"
        p += step
    return None


def global_heap_problem(path: str | os.PathLike) -> str | None:
    """What is wrong with a global heap collection of the HDF5 file at ``path`` that libhdf5
    would loop on, or ``None``; reads at most ``2 * EDGE_BYTES`` (see the module docstring)."""
    path = Path(path)
    with open(path, "rb") as fh:
        n = os.fstat(fh.fileno()).st_size
        if n <= 2 * EDGE_BYTES:
            parts = [(0, fh.read(), True)]
        else:
            parts = [(0, fh.read(EDGE_BYTES), False)]
            fh.seek(n - EDGE_BYTES)
            parts.append((n - EDGE_BYTES, fh.read(EDGE_BYTES), True))
    n_len = _length_size(parts[0][1])
    for offset, buf, at_eof in parts:
        at = buf.find(_SIGNATURE)
        while at >= 0:
            if problem := _walk(buf, at, offset, n_len, at_eof):
                return problem
            at = buf.find(_SIGNATURE, at + 1)
    return None
