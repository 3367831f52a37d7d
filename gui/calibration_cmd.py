"""How the GUI launches ``backscatter calibrate`` and reads what it prints (no Qt here).

The calibrate command belongs to the calibration package; the GUI only builds its
argument list from three fields and reports its progress and failure.  If the
command's flags change, :func:`calibrate_arguments` is the one place to follow them.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path


def source_arguments(source: str) -> list[str]:
    """``--source ...`` for what the form names: an IQ endpoint, a capture file, ``emulator``, ``uhd``."""
    if "://" in source:
        return ["--source", "stream", "--connect", source]
    if source in ("emulator", "uhd"):
        return ["--source", source]
    return ["--source", "replay", "--file", source]


def calibrate_arguments(source: str, known_range_m: float, out_path: str) -> list[str]:
    """``backscatter`` arguments of a CW calibration run."""
    return [
        "calibrate",
        *source_arguments(source),
        "--known-range-m",
        f"{known_range_m:g}",
        "--out",
        out_path,
        "--force",
        "--progress-json",
    ]


def backscatter_program() -> tuple[str, list[str]]:
    """The program and leading arguments that run ``backscatter`` in this environment."""
    script = Path(sys.executable).with_name("backscatter")
    if script.exists():
        return str(script), []
    found = shutil.which("backscatter")
    if found:
        return found, []
    return sys.executable, ["-m", "backscatter.cli"]


def progress_from_line(line: str) -> dict | None:
    """A ``calibration`` message's fields if the process printed one as a JSON line, else ``None``."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) and "state" in obj and "progress" in obj else None


def failure_text(exit_code: int, stderr_tail: str) -> str:
    """What the GUI shows when the process exits with an error."""
    hint = ""
    if "invalid choice" in stderr_tail and "calibrate" in stderr_tail:
        hint = " (this build has no 'backscatter calibrate' command)"
    last = stderr_tail.strip().splitlines()[-1] if stderr_tail.strip() else "no error output"
    return f"calibration failed: exit status {exit_code}{hint}: {last}"
