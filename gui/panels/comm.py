"""Communication panel: running BER and packet rate, packet log table, MRC constellation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pyqtgraph as pg
from PyQt5.QtGui import QColor
from PyQt5.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.model import PacketRow, ResultsModel
from gui.theme import Theme, clipped_label, styled_plot

COLUMNS = ("time (s)", "tag ID", "CRC", "bit errors", "Eb/N0 (dB)")
MAX_TABLE_ROWS = 500
BIT_COLORS = ("#e8a33d", "#4c9be8")  # decided bit 0, 1
BAD_COLOR = "#e0556a"  # CRC failures and bit errors in the log


def ber_text(model: ResultsModel) -> str:
    if model.ber is None and model.packets:
        return "BER: n/a (this stream has no ground truth)"
    if model.ber is None:
        return "BER: n/a (no packet yet)"
    return (
        f"BER {model.ber:.2e}  ({model.bit_errors} errors / {model.bits_checked} bits, "
        f"{model.packets_checked} packets with truth)"
    )


def packets_text(model: ResultsModel) -> str:
    rate = model.packet_rate_hz()
    crc = f"{100 * model.crc_ok / model.packets:.1f} %" if model.packets else "n/a"
    rate_txt = f"{rate:.1f} packets/s" if rate is not None else "n/a"
    return f"packets {model.packets}, CRC ok {model.crc_ok} ({crc}), rate {rate_txt}"


def row_cells(p: PacketRow) -> tuple[str, ...]:
    errors = "?" if p.bit_errors is None else str(p.bit_errors)
    ebn0 = f"{p.ebn0_db:.1f}" if math.isfinite(p.ebn0_db) else ""
    return f"{p.time_s:.4f}", f"0x{p.tag_id:08X}", "ok" if p.crc_ok else "FAIL", errors, ebn0


class CommPanel(QWidget):
    """BER/rate labels and the packet log on the left, the constellation on the right."""

    def __init__(self, theme: Theme, parent: QWidget | None = None):
        super().__init__(parent)
        self.ber_label = clipped_label(ber_text(ResultsModel()))
        self.ber_label.setStyleSheet("font-size: 12pt; font-weight: bold;")
        self.ber_label.setWordWrap(True)
        self.packets_label = clipped_label(packets_text(ResultsModel()))
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.Interactive)  # ResizeToContents re-measures every row
        header.setStretchLastSection(True)
        digits = self.table.fontMetrics().horizontalAdvance("0xB5C0FFEE00")
        for col, name in enumerate(COLUMNS[:-1]):
            width = max(self.table.fontMetrics().horizontalAdvance(name + "0000"), digits if col < 2 else 0)
            self.table.setColumnWidth(col, width)
        self.constellation_widget = pg.PlotWidget()
        self.constellation = styled_plot(
            self.constellation_widget.getPlotItem(), "in-phase (a.u.)", "quadrature (a.u.)", "MRC tag samples"
        )
        self.constellation.setAspectLocked(True)
        # one item per decided bit, each with one brush: no per-point brush list to build
        self.scatters = [pg.ScatterPlotItem(size=6, pen=None, brush=pg.mkBrush(c)) for c in BIT_COLORS]
        for item in self.scatters:
            self.constellation.addItem(item)
        self.constellation.addLegend(offset=(-10, 5))
        for bit, color in enumerate(BIT_COLORS):
            self.constellation.legend.addItem(
                pg.ScatterPlotItem(size=8, pen=None, brush=pg.mkBrush(color)), f"bit {bit}"
            )
        left = QVBoxLayout()
        left.addWidget(self.ber_label)
        left.addWidget(self.packets_label)
        left.addWidget(self.table, 1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(left, 3)
        layout.addWidget(self.constellation_widget, 2)
        self._shown_packets = 0

    def refresh(self, model: ResultsModel) -> None:
        new = model.packets - self._shown_packets
        if new > 0:
            self._shown_packets = model.packets
            self.ber_label.setText(ber_text(model))
            rows = list(itertools.islice(reversed(model.log), min(new, MAX_TABLE_ROWS)))
            self._prepend(rows[::-1])
        self.packets_label.setText(packets_text(model))  # the rate text changes as packets age
        latest = model.constellation.take()
        if latest is not None:
            soft, bits = latest
            soft = np.asarray(soft)
            one = (np.asarray(bits) & 1).astype(bool) if len(bits) == soft.size else np.ones(soft.size, bool)
            for bit, item in enumerate(self.scatters):
                sel = soft[one == bool(bit)]
                item.setData(sel.real, sel.imag)

    def constellation_points(self) -> np.ndarray:
        """The drawn constellation as complex values (bit-0 points first)."""
        parts = [item.getData() for item in self.scatters]
        return np.concatenate([np.asarray(x) + 1j * np.asarray(y) for x, y in parts])

    def _prepend(self, rows: list[PacketRow]) -> None:
        """Insert ``rows`` (oldest first) at the top: the newest packet is row 0."""
        self.table.setUpdatesEnabled(False)
        for p in rows:
            self.table.insertRow(0)
            for col, text in enumerate(row_cells(p)):
                item = QTableWidgetItem(text)
                if (col == 2 and not p.crc_ok) or (col == 3 and p.bit_errors):
                    item.setForeground(QColor(BAD_COLOR))
                self.table.setItem(0, col, item)
        while self.table.rowCount() > MAX_TABLE_ROWS:
            self.table.removeRow(self.table.rowCount() - 1)
        self.table.setUpdatesEnabled(True)
