"""Exports of what the monitor holds: the last results as CSV, the window as PNG."""

from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path

import numpy as np
from PyQt5.QtWidgets import QApplication, QWidget

from gui.model import ResultsModel

CSV_COLUMNS = (
    "kind", "time_s", "tag_id", "crc_ok", "bit_errors", "ebn0_db", "method", "range_m", "range_true_m"
)  # fmt: skip


def _num(x: float | None) -> str:
    return "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else repr(float(x))


def results_rows(model: ResultsModel, n: int) -> list[tuple[str, ...]]:
    """The last ``n`` packets and the last ``n`` epochs (one row per method), in time order."""
    if n < 1:
        raise ValueError(f"the number of results to export must be >= 1, got {n}")
    rows: list[tuple[float, tuple[str, ...]]] = []
    for p in list(model.log)[-n:]:
        errors = "" if p.bit_errors is None else str(int(p.bit_errors))
        cells = ("packet", _num(p.time_s), f"0x{p.tag_id:08X}", str(p.crc_ok), errors, _num(p.ebn0_db))
        rows.append((p.time_s, (*cells, "", "", "")))
    t_s, ranges, truth = model.range_series()
    first = max(0, t_s.size - n)
    for i in range(first, t_s.size):
        for method, r in ranges.items():
            if np.isfinite(r[i]):
                cells = (method, _num(r[i]), _num(truth[i]))
                rows.append((t_s[i], ("epoch", _num(t_s[i]), "", "", "", "", *cells)))
    rows.sort(key=lambda row: row[0] if math.isfinite(row[0]) else -math.inf)
    return [r for _, r in rows]


def write_results_csv(model: ResultsModel, path: Path, n: int) -> int:
    """Write :func:`results_rows` with a header to ``path``; returns the number of rows."""
    rows = results_rows(model, n)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    w.writerows(rows)
    Path(path).write_text(buf.getvalue())
    return len(rows)


def write_png(widget: QWidget, path: Path) -> None:
    """Render ``widget`` as it is on screen to ``path``; ``OSError`` if it cannot be written."""
    QApplication.processEvents()
    if not widget.grab().save(str(path)):
        raise OSError(f"cannot write {path}")


def stamped(directory: Path, stem: str, suffix: str) -> Path:
    """``directory/stem-YYYYmmdd-HHMMSS.suffix`` (a new name each second)."""
    return Path(directory) / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}{suffix}"
