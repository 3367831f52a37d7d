"""Shared CLI output helpers: JSON printing, progress bars, errors."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import numpy as np

from app.progress import progress_bar
from dsp.errors import BackscatterError

__all__ = [
    "CliError",
    "exit_leaving_broken_file",
    "print_json",
    "progress_bar",
]  # progress_bar lives in app.progress


class CliError(BackscatterError):
    """An error the CLI reports as ``error: ...`` with exit status 2."""


def _default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (complex, np.complexfloating)):
        return [o.real, o.imag]
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=_default, allow_nan=True)
    sys.stdout.write("\n")


def exit_leaving_broken_file(command: str, message: str) -> None:
    """Report a failed write and end the process without HDF5's exit-time close of the file."""
    sys.stdout.flush()
    print(f"backscatter {command}: error: {message}", file=sys.stderr, flush=True)
    os._exit(2)
