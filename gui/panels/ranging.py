"""Range panel: range per method over time with the truth, and the CDF of the absolute error."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QHBoxLayout, QVBoxLayout, QWidget

from gui.model import ResultsModel
from gui.theme import Theme, clipped_label, styled_plot


def error_cdf(errors_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Empirical CDF of ``|error|``: sorted values (m) and fractions in (0, 1]."""
    x = np.sort(np.abs(errors_m))
    return x, np.arange(1, x.size + 1) / max(x.size, 1)


class RangePanel(QWidget):
    """Time series of ``range_m`` per method (and ``range_true_m``); error CDF when the truth is known."""

    def __init__(self, theme: Theme, parent: QWidget | None = None):
        super().__init__(parent)
        self.theme = theme
        self.series_widget = pg.PlotWidget()
        self.cdf_widget = pg.PlotWidget()
        self.summary = clipped_label()
        self.summary.setWordWrap(True)
        plots = QHBoxLayout()
        plots.addWidget(self.series_widget, 3)
        plots.addWidget(self.cdf_widget, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(plots, 1)
        layout.addWidget(self.summary)
        self.series = styled_plot(self.series_widget.getPlotItem(), "stream time (s)", "range (m)")
        self.series.addLegend(offset=(-10, 5))
        self.cdf = styled_plot(self.cdf_widget.getPlotItem(), "|range error| (m)", "CDF", "range error CDF")
        self.cdf.setYRange(0, 1.02, padding=0)
        self.cdf.addLegend(offset=(-10, -10))
        self.truth_curve = self.series.plot(
            pen=pg.mkPen(theme.truth, width=1.5, style=Qt.DashLine), name="true"
        )
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.cdf_curves: dict[str, pg.PlotDataItem] = {}
        self.no_truth = pg.TextItem(
            "no ground truth: error CDF unavailable", color=theme.foreground, anchor=(0.5, 0.5)
        )
        self.cdf.addItem(self.no_truth)
        self.no_truth.setPos(0.5, 0.5)
        self.cdf.setXRange(0, 1)
        self._version = -1

    def _curve(self, method: str) -> tuple[pg.PlotDataItem, pg.PlotDataItem]:
        if method not in self.curves:
            i = len(self.curves)
            color = self.theme.method_color(i)
            self.curves[method] = self.series.plot(
                pen=pg.mkPen(color, width=1.5),
                symbol=self.theme.method_symbol(i),
                symbolSize=5,
                symbolBrush=color,
                symbolPen=None,
                name=method,
            )
            self.cdf_curves[method] = self.cdf.plot(pen=pg.mkPen(color, width=2), name=method)
        return self.curves[method], self.cdf_curves[method]

    def refresh(self, model: ResultsModel) -> None:
        if model.ranging_version == self._version:
            return
        self._version = model.ranging_version
        t_s, ranges, truth = model.range_series()
        for method, r in ranges.items():
            self._curve(method)[0].setData(t_s, r, connect="finite")
        known = np.isfinite(truth)
        self.truth_curve.setData(t_s[known], truth[known])
        errors = model.range_errors()
        have_truth = any(e.size for e in errors.values())
        self.no_truth.setVisible(not have_truth)
        if not have_truth:
            self.summary.setText(f"{t_s.size} epochs, no ground truth")
            return
        summary, largest_m = [], 0.0
        for method, e in errors.items():
            x, y = error_cdf(e)
            self._curve(method)[1].setData(x, y)
            if e.size:
                largest_m = max(largest_m, float(x[-1]))
                rmse = np.sqrt(np.mean(e**2))
                summary.append(f"{method}: median |error| {np.median(np.abs(e)):.2f} m, RMSE {rmse:.2f} m")
        self.cdf.setXRange(0, max(largest_m, 1e-3) * 1.1, padding=0)
        self.summary.setText(f"{t_s.size} epochs · " + " · ".join(summary))
