"""Spectrum panel: PSD of each band from ``spectrum`` messages, or a note that none arrived."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QLabel, QStackedWidget, QVBoxLayout, QWidget

from gui.model import ResultsModel
from gui.theme import BAND_COLORS, BANDS, Theme, clipped_label, styled_plot

NO_SPECTRUM = "No spectrum messages received: the results stream carries no 'spectrum' topic."


def frequency_axis_hz(first_step: list[float], bins: int) -> np.ndarray:
    """Bin frequencies from the message's ``[first, step]``."""
    first, step = float(first_step[0]), float(first_step[1])
    return first + step * np.arange(bins)


class SpectrumPanel(QWidget):
    """One PSD plot per band side by side (x in MHz), shown once the first spectrum arrives."""

    def __init__(self, theme: Theme, parent: QWidget | None = None):
        super().__init__(parent)
        self.note = QLabel(NO_SPECTRUM)
        self.note.setAlignment(Qt.AlignCenter)
        self.note.setWordWrap(True)
        self.glw = pg.GraphicsLayoutWidget()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.note)
        self.stack.addWidget(self.glw)
        self.info = clipped_label()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.info)
        layout.addWidget(self.stack, 1)
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        for col, band in enumerate(BANDS):
            plot = styled_plot(
                self.glw.addPlot(row=0, col=col), "frequency (MHz)", "PSD (dB/Hz)" if col == 0 else "", band
            )
            self.plots[band] = plot
            self.curves[band] = plot.plot(pen=pg.mkPen(BAND_COLORS[band], width=1))
            self.curves[band].setDownsampling(auto=True, method="peak")

    @property
    def showing_plots(self) -> bool:
        return self.stack.currentWidget() is self.glw

    def refresh(self, model: ResultsModel) -> None:
        latest = model.spectrum.take()
        if latest is None:
            return
        fields, arrays = latest
        self.stack.setCurrentWidget(self.glw)
        freq = fields.get("freq_hz", {})
        for band in BANDS:
            psd = arrays.get(f"psd_db_{band}")
            if psd is None or band not in freq:
                self.curves[band].setData([], [])
                continue
            self.curves[band].setData(frequency_axis_hz(freq[band], psd.size) / 1e6, psd)
        self.info.setText(f"spectrum at {fields.get('time_s', math.nan):.2f} s")
