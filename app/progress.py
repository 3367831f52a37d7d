"""Progress on stderr for long runs (replays, sweeps, captures); silent off a terminal."""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress_bar(total: int, desc: str, unit: str = "S", enabled: bool = True) -> tqdm:
    """A progress bar on stderr; silent when disabled or when stderr is not a terminal."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=True,
        file=sys.stderr,
        disable=(not enabled) or None,
        leave=False,
    )
