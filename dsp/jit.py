"""``compiled``: ``numba.njit`` with its on-disk cache where one can be written.

numba keeps compiled code beside the source (``__pycache__``), in ``NUMBA_CACHE_DIR`` or in
the user's cache folder; where none is writable (a read-only install run by a user without a
home, as in the Docker images) ``njit(cache=True)`` raises at import.  There the function is
compiled without the cache instead: once per process, on its first call.

Every kernel here is a loop over arrays, so it runs without the GIL (``nogil=True``, unless a
caller says otherwise): the worker converts samples on its reader thread while the receiver's
kernels run on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba as nb


def compiled(**options: Any) -> Callable[[Callable], Callable]:
    """Decorator: ``numba.njit(cache=True, nogil=True, **options)``, or without the cache where
    numba finds no writable place for it."""

    options.setdefault("nogil", True)

    def wrap(fn: Callable) -> Callable:
        try:
            return nb.njit(cache=True, **options)(fn)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return nb.njit(cache=False, **options)(fn)

    return wrap
