"""The base of every error this package raises for a user to act on.

``except BackscatterError`` catches them all (the console script does, and prints the message);
each class keeps its own name, message and built-in base (``ValueError``, ``RuntimeError``,
``FileExistsError``), so code that catches those still does.  It lives in ``dsp`` because that
is the ground floor every other package may import (docs/ARCHITECTURE.md).  Exceptions used as
signals inside a loop (``sdr.recorder.StreamChanged``, ``RecordingStopped``,
``sdr.transport.gr_align.Restart``) are not errors and do not derive from it.
"""

from __future__ import annotations


class BackscatterError(Exception):
    """An error of this package: the message says what went wrong and where."""


class OutputExistsError(BackscatterError, FileExistsError):
    """A writer would overwrite a file it was not told to (``--force``)."""
