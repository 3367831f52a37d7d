"""Exports of what the monitor holds: the last results as CSV or HDF5, the window as PNG.

The HDF5 export (``format`` attribute ``backscatter-monitor-export``, version 1) holds the
same results as the CSV, as arrays:

* ``/packets``: ``time_s``, ``tag_id``, ``crc_ok``, ``bit_errors`` (-1 where the stream has no
  truth), ``ebn0_db``, ``n_bits``, one row per packet ``[packet]``;
* ``/epochs``: ``time_s [epoch]``, ``range_m [epoch, method]`` (NaN where a method gave no
  range), ``range_true_m [epoch]`` (NaN without a truth); its ``methods`` attribute names
  the columns;
* root attributes: ``source`` (what the monitor was watching), ``exported_unix_s``, ``last_n``.

It is what the monitor holds, not a receiver run: for every field of every packet and epoch
record the stream (``backscatter record``) or the worker's results (``worker --results``).
"""

from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path

import h5py
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


EXPORT_FORMAT = "backscatter-monitor-export"
EXPORT_VERSION = 1


def write_results_hdf5(model: ResultsModel, path: Path, n: int, source: str = "") -> tuple[int, int]:
    """The last ``n`` packets and the last ``n`` epochs of ``model`` as HDF5 (layout in the
    module docstring); returns ``(packets, epochs)`` written.  ``OSError`` if it cannot be written."""
    if n < 1:
        raise ValueError(f"the number of results to export must be >= 1, got {n}")
    packets = list(model.log)[-n:]
    t_s, ranges, truth = model.range_series()
    first = max(0, t_s.size - n)
    methods = sorted(ranges)
    with h5py.File(path, "w") as f:
        f.attrs["format"] = EXPORT_FORMAT
        f.attrs["format_version"] = EXPORT_VERSION
        f.attrs["source"] = source
        f.attrs["exported_unix_s"] = time.time()
        f.attrs["last_n"] = n
        pk = f.create_group("packets")
        pk["time_s"] = np.array([p.time_s for p in packets], np.float64)
        pk["tag_id"] = np.array([p.tag_id for p in packets], np.int64)
        pk["crc_ok"] = np.array([p.crc_ok for p in packets], bool)
        pk["bit_errors"] = np.array([-1 if p.bit_errors is None else p.bit_errors for p in packets], np.int64)
        pk["ebn0_db"] = np.array([p.ebn0_db for p in packets], np.float64)
        pk["n_bits"] = np.array([p.n_bits for p in packets], np.int64)
        ep = f.create_group("epochs")
        ep.attrs["methods"] = methods
        ep["time_s"] = np.array(t_s[first:], np.float64)
        ep["range_m"] = np.array([ranges[m][first:] for m in methods], np.float64).T.reshape(-1, len(methods))
        ep["range_true_m"] = np.array(truth[first:], np.float64)
    return len(packets), t_s.size - first


def write_png(widget: QWidget, path: Path) -> None:
    """Render ``widget`` as it is on screen to ``path``; ``OSError`` if it cannot be written."""
    QApplication.processEvents()
    if not widget.grab().save(str(path)):
        raise OSError(f"cannot write {path}")


def stamped(directory: Path, stem: str, suffix: str) -> Path:
    """``directory/stem-YYYYmmdd-HHMMSS.suffix`` (a new name each second)."""
    return Path(directory) / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}{suffix}"
