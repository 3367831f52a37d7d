"""CIR panel: normalised CIR magnitude (dB) per band against distance, detected first paths, truth."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QVBoxLayout, QWidget

from dsp.waveform import SPEED_OF_LIGHT_M_S
from gui.model import ResultsModel
from gui.theme import BAND_COLORS, BANDS, Theme, clipped_label, styled_plot

FLOOR_DB = -60.0


def normalised_db(cir: np.ndarray) -> np.ndarray:
    """``20 log10(|h| / max|h|)``: 0 dB at the strongest tap, floored at :data:`FLOOR_DB`."""
    mag = np.abs(np.asarray(cir))
    peak = float(mag.max()) if mag.size else 0.0
    if peak <= 0:
        return np.full(mag.shape, FLOOR_DB)
    return np.maximum(20 * np.log10(np.maximum(mag / peak, 1e-12)), FLOOR_DB)


def true_path_m(fields: dict, band: str) -> float | None:
    """Where the true tag path lies on a side band's CIR axis (m), if the truth is known.

    The range of a band is ``d0 + c (t_band - t_central) - d_cal``, so the true path sits
    at ``c t_band + (range_true - range_band)`` on the CIR axis (first method that has it).
    """
    truth = fields.get("range_true_m")
    if truth is None:
        return None
    for method, per_band in fields.get("range_band_m", {}).items():
        delay = fields.get("delay_s", {}).get(method, {}).get(band)
        if band in per_band and delay is not None:
            return SPEED_OF_LIGHT_M_S * delay + truth - per_band[band]
    return None


class CirPanel(QWidget):
    """One plot per band (linked x axes): CIR curve, a marker per ranging method, true tag path."""

    def __init__(self, theme: Theme, parent: QWidget | None = None):
        super().__init__(parent)
        self.theme = theme
        self.info = clipped_label("waiting for a ranging epoch")
        self.info.setWordWrap(True)
        self.glw = pg.GraphicsLayoutWidget()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.info)
        layout.addWidget(self.glw, 1)
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.markers: dict[str, dict[str, pg.ScatterPlotItem]] = {b: {} for b in BANDS}
        self.truth_lines: dict[str, pg.InfiniteLine] = {}
        for row, band in enumerate(BANDS):
            plot = self.glw.addPlot(row=row, col=0)
            styled_plot(
                plot, "distance c·τ in the CIR window (m)" if row == len(BANDS) - 1 else "", f"{band} (dB)"
            )
            plot.setYRange(-40, 3, padding=0)
            plot.setMouseEnabled(x=True, y=False)
            if row:
                plot.setXLink(self.plots[BANDS[0]])
            self.plots[band] = plot
            curve = plot.plot(pen=pg.mkPen(BAND_COLORS[band], width=1), name=band)
            curve.setClipToView(True)  # a few dozen of the thousands of taps are in view
            curve.setDownsampling(auto=True, method="peak")
            self.curves[band] = curve
            line = pg.InfiniteLine(angle=90, pen=pg.mkPen(theme.truth, width=1.2, style=Qt.DashLine))
            line.hide()
            plot.addItem(line)
            self.truth_lines[band] = line
        self.legend = self.plots[BANDS[0]].addLegend(
            offset=(-10, 5), brush=pg.mkBrush(theme.background + "c8")
        )
        self.legend.addItem(pg.PlotDataItem(pen=pg.mkPen(theme.truth, style=Qt.DashLine)), "true tag path")
        self.legend.setColumnCount(2)  # four or more entries stay inside the short top plot
        self._x_range_set = False

    def _marker(self, band: str, method: str, index: int) -> pg.ScatterPlotItem:
        items = self.markers[band]
        if method not in items:
            color = self.theme.method_color(index)
            item = pg.ScatterPlotItem(
                symbol=self.theme.method_symbol(index),
                size=11,
                pen=pg.mkPen(self.theme.foreground),
                brush=pg.mkBrush(color),
            )
            self.plots[band].addItem(item)
            items[method] = item
            if band == BANDS[0]:
                self.legend.addItem(item, f"first path: {method}")
        return items[method]

    def refresh(self, model: ResultsModel) -> None:
        """Draw the newest epoch, if a new one arrived since the last draw."""
        latest = model.cir.take()
        if latest is None:
            return
        fields, arrays = latest
        step_m = float(fields.get("cir_step_m", 1.0))
        delays = fields.get("delay_s", {})
        marks: list[float] = []
        for band in BANDS:
            cir = arrays.get(f"cir_{band}")
            if cir is None:
                self.curves[band].setData([], [])
                self.truth_lines[band].hide()
                for item in self.markers[band].values():
                    item.setData([], [])
                continue
            db = normalised_db(cir)
            x_m = np.arange(db.size) * step_m
            self.curves[band].setData(x_m, db)
            for i, (method, per_band) in enumerate(delays.items()):
                d = per_band.get(band)
                pos = [] if d is None else [SPEED_OF_LIGHT_M_S * d]
                marks += pos
                self._marker(band, method, i).setData(pos, [float(np.interp(p, x_m, db)) for p in pos])
            t = true_path_m(fields, band)
            if t is not None:
                self.truth_lines[band].setValue(float(np.mod(t, db.size * step_m)))
            self.truth_lines[band].setVisible(t is not None)
        if marks and not self._x_range_set:
            self.plots[BANDS[0]].setXRange(min(marks) - 40, max(marks) + 110, padding=0)
            self._x_range_set = True
        self.info.setText(self._summary(fields))

    @staticmethod
    def _summary(fields: dict) -> str:
        parts = [f"epoch at {fields.get('time_s', math.nan):.3f} s, {fields.get('n_symbols', 0)} symbols"]
        std, bad = fields.get("range_std_m", {}), fields.get("implausible", {})
        parts += [
            f"{m} {r:.2f}" + (f" ± {std[m]:.2f}" if m in std else "") + " m" + (" IMPLAUSIBLE" * (m in bad))
            for m, r in fields.get("range_m", {}).items()
        ]
        if fields.get("range_true_m") is not None:
            parts.append(f"true {fields['range_true_m']:.2f} m")
        return " · ".join(parts) + "   (each CIR normalised to its peak)"
