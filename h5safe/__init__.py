"""Reading HDF5 files that may be corrupt without letting libhdf5 crash, freeze or wait forever.

Below ``captures`` and ``calibration`` (docs/ARCHITECTURE.md), imports nothing of ours:
``swmr`` bounds a SWMR reader's metadata retries, ``heap_check`` refuses the global heaps
libhdf5 would loop on, ``probe`` reads a file's metadata in a child process first.
"""
