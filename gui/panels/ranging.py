"""Range panel: range per method over time with the truth, and the CDF of the absolute error.

The y axis follows a robust range of the epochs in view (:func:`gui.series.robust_range`), so an
estimate far off (a MUSIC epoch at thousands of metres) is drawn as a triangle at the plot's
edge, pointing where it lies, instead of rescaling the axis.  Each method is drawn as points or
as a rolling median (a method that alternates between two peaks then reads as one line).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from gui.model import ResultsModel
from gui.series import robust_range, rolling_median
from gui.theme import Theme, clipped_label, styled_plot

WINDOW_S = 60.0  # stream time in view
MEDIAN_EPOCHS = 10  # rolling-median length (even: a method alternating between two values reads as one line)
DISPLAY_MODES = ("points", "rolling median")
EDGE_FRACTION = 0.03  # outlier markers sit this far inside the plot's edge
NO_TRUTH = "no ground truth\nin this stream\n(a radio stream has none)"


def error_cdf(errors_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Empirical CDF of ``|error|``: sorted values (m) and fractions in (0, 1]."""
    x = np.sort(np.abs(errors_m))
    return x, np.arange(1, x.size + 1) / max(x.size, 1)


def split_outliers(
    t_s: np.ndarray, r_m: np.ndarray, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(r_in, t_low, t_high, r_in_mask)``: values inside ``[lo, hi]`` (NaN elsewhere) and the
    times of the values below and above it."""
    below, above = r_m < lo, r_m > hi
    r_in = np.where(below | above, np.nan, r_m)
    return r_in, t_s[below], t_s[above], ~(below | above)


class MethodItems:
    """The plot items of one method: points, rolling median, outlier markers, CDF curve."""

    def __init__(self, series: pg.PlotItem, cdf: pg.PlotItem, name: str, color: str, symbol: str):
        self.points = series.plot(
            pen=None, symbol=symbol, symbolSize=5, symbolBrush=color, symbolPen=None, name=name
        )
        self.points.setClipToView(True)
        self.median = series.plot(pen=pg.mkPen(color, width=2))
        self.median.setClipToView(True)
        self.low = pg.ScatterPlotItem(symbol="t", size=11, pen=pg.mkPen(color), brush=pg.mkBrush(color))
        self.high = pg.ScatterPlotItem(symbol="t1", size=11, pen=pg.mkPen(color), brush=pg.mkBrush(color))
        series.addItem(self.low)
        series.addItem(self.high)
        self.cdf = cdf.plot(pen=pg.mkPen(color, width=2), name=name)


class RangePanel(QWidget):
    """Time series of ``range_m`` per method (and ``range_true_m``); error CDF when the truth is known."""

    def __init__(self, theme: Theme, parent: QWidget | None = None):
        super().__init__(parent)
        self.theme = theme
        self.series_widget = pg.PlotWidget()
        self.cdf_widget = pg.PlotWidget()
        self.summary = clipped_label()
        self.summary.setWordWrap(True)
        self.modes_row = QHBoxLayout()
        self.modes_row.addWidget(QLabel("show:"))
        self.modes_row.addStretch(1)
        self.mode_boxes: dict[str, QComboBox] = {}
        plots = QHBoxLayout()
        plots.addWidget(self.series_widget, 3)
        plots.addWidget(self.cdf_widget, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(self.modes_row)
        layout.addLayout(plots, 1)
        layout.addWidget(self.summary)
        self.series = styled_plot(self.series_widget.getPlotItem(), "stream time (s)", "range (m)")
        legend = self.series.addLegend(offset=(-10, 5), brush=pg.mkBrush(theme.background + "c8"))
        legend.setColumnCount(2)
        self.series.disableAutoRange()
        self.cdf = styled_plot(self.cdf_widget.getPlotItem(), "|range error| (m)", "CDF", "range error CDF")
        self.cdf.setYRange(0, 1.02, padding=0)
        self.cdf.addLegend(offset=(-10, -10))
        self.truth_curve = self.series.plot(
            pen=pg.mkPen(theme.truth, width=1.5, style=Qt.DashLine), name="true"
        )
        self.items: dict[str, MethodItems] = {}
        self.no_truth = pg.TextItem(NO_TRUTH, color=theme.foreground, anchor=(0.5, 0.5))
        self.cdf.addItem(self.no_truth)
        self.no_truth.setPos(0.5, 0.5)
        self.cdf.setXRange(0, 1)
        self.y_range: tuple[float, float] | None = None
        self.off_scale = 0  # epochs in view drawn as edge markers
        self._version = -1

    # kept for callers that look curves up by method
    @property
    def curves(self) -> dict[str, pg.PlotDataItem]:
        return {m: it.points for m, it in self.items.items()}

    @property
    def cdf_curves(self) -> dict[str, pg.PlotDataItem]:
        return {m: it.cdf for m, it in self.items.items()}

    def _items(self, method: str) -> MethodItems:
        if method not in self.items:
            i = len(self.items)
            color, symbol = self.theme.method_color(i), self.theme.method_symbol(i)
            self.items[method] = MethodItems(self.series, self.cdf, method, color, symbol)
            box = QComboBox()
            box.addItems(DISPLAY_MODES)
            box.setToolTip(f"how {method} is drawn: each epoch, or the median of the last {MEDIAN_EPOCHS}")
            box.currentIndexChanged.connect(self._mode_changed)
            self.mode_boxes[method] = box
            self.modes_row.insertWidget(self.modes_row.count() - 1, QLabel(method))
            self.modes_row.insertWidget(self.modes_row.count() - 1, box)
        return self.items[method]

    def set_mode(self, method: str, mode: str) -> None:
        """Draw ``method`` as ``"points"`` or ``"rolling median"`` (raises ``ValueError`` otherwise)."""
        if mode not in DISPLAY_MODES:
            raise ValueError(f"display mode must be one of {DISPLAY_MODES}, got {mode!r}")
        self._items(method)
        self.mode_boxes[method].setCurrentText(mode)

    def mode(self, method: str) -> str:
        return self.mode_boxes[method].currentText() if method in self.mode_boxes else DISPLAY_MODES[0]

    def _mode_changed(self) -> None:
        self._version = -1  # redraw at the next refresh

    def refresh(self, model: ResultsModel) -> None:
        if model.ranging_version == self._version:
            return
        self._version = model.ranging_version
        t_all, ranges_all, truth_all = model.range_series()
        if t_all.size == 0:
            return
        t_end = float(np.nanmax(t_all)) if np.isfinite(t_all).any() else 0.0
        first = int(np.searchsorted(t_all, t_end - WINDOW_S)) if np.all(np.diff(t_all) >= 0) else 0
        t_s, truth = t_all[first:], truth_all[first:]
        shown: dict[str, np.ndarray] = {}
        for method, r in ranges_all.items():
            r = r[first:]
            shown[method] = rolling_median(r, MEDIAN_EPOCHS) if self.mode(method) != "points" else r
        self._scale_y(np.concatenate([*shown.values(), truth]))
        lo, hi = self.y_range or (0.0, 1.0)
        edge = EDGE_FRACTION * (hi - lo)
        self.off_scale = 0
        for method, r in shown.items():
            it = self._items(method)
            r_in, t_low, t_high, _ = split_outliers(t_s, r, lo, hi)
            self.off_scale += t_low.size + t_high.size
            points = self.mode(method) == "points"
            it.points.setData(t_s if points else [], r_in if points else [], connect="finite")
            it.median.setData([] if points else t_s, [] if points else r_in, connect="finite")
            it.low.setData(t_low, np.full(t_low.size, lo + edge))
            it.high.setData(t_high, np.full(t_high.size, hi - edge))
        known = np.isfinite(truth)
        self.truth_curve.setData(t_s[known], truth[known])
        self.series.setXRange(max(t_end - WINDOW_S, float(np.nanmin(t_s))), t_end, padding=0.02)
        self._draw_cdf(model, t_all.size)

    def _scale_y(self, values: np.ndarray) -> None:
        """Follow the robust range; move the axis only when it no longer fits (fewer axis redraws)."""
        rr = robust_range(values)
        if rr is None:
            return
        lo, hi = rr
        pad = 0.1 * (hi - lo)
        cur = self.y_range
        if cur is None or lo < cur[0] or hi > cur[1] or (cur[1] - cur[0]) > 2.5 * (hi - lo + 2 * pad):
            self.y_range = (lo - pad, hi + pad)
            self.series.setYRange(*self.y_range, padding=0)

    def _draw_cdf(self, model: ResultsModel, n_epochs: int) -> None:
        errors = model.range_errors()
        have_truth = any(e.size for e in errors.values())
        self.no_truth.setVisible(not have_truth)
        off = f", {self.off_scale} off scale (edge triangles)" if self.off_scale else ""
        if not have_truth:
            self.summary.setText(f"{n_epochs} epochs{off}; no ground truth in this stream")
            return
        summary, largest_m = [], 0.0
        for method, e in errors.items():
            x, y = error_cdf(e)
            self._items(method).cdf.setData(x, y)
            if e.size:
                largest_m = max(largest_m, float(np.percentile(x, 95)))
                rmse = np.sqrt(np.mean(e**2))
                summary.append(f"{method}: median |error| {np.median(np.abs(e)):.2f} m, RMSE {rmse:.2f} m")
        self.cdf.setXRange(0, max(largest_m, 1e-3) * 1.2, padding=0)
        self.summary.setText(f"{n_epochs} epochs{off} · " + " · ".join(summary))
