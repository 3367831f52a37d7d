"""GUI features of issue 18: redraw budget, readable range plot, truth, lab controls."""

from __future__ import annotations

import numpy as np
import pytest

from gui.series import EpochSeries, robust_range, rolling_median
from gui.source import SourceThread
from gui.theme import apply_theme
from gui.window import MainWindow
from tests.test_gui import ScriptedSource, epoch


@pytest.fixture
def window(qtbot, qapp):
    theme = apply_theme(qapp, "dark")

    def make(source: SourceThread, size: tuple[int, int] = (1600, 1000)) -> MainWindow:
        win = MainWindow(source, theme)
        win.resize(*size)
        qtbot.addWidget(win)
        win.show()
        source.start()
        return win

    return make


# ----- series and robust statistics (no drawing) -------------------------------------
def test_epoch_series_keeps_the_newest_capacity_epochs_in_order():
    s = EpochSeries(4)
    for i in range(11):
        s.append(float(i), {"a": 10.0 + i} if i % 2 else {"a": 10.0 + i, "b": 1.0}, None if i < 9 else 5.0)
    t, r, truth = s.view()
    np.testing.assert_array_equal(t, [7, 8, 9, 10])
    np.testing.assert_array_equal(r["a"], [17, 18, 19, 20])
    np.testing.assert_array_equal(np.isnan(r["b"]), [True, False, True, False])
    np.testing.assert_array_equal(np.isnan(truth), [True, True, False, False])
    with pytest.raises(ValueError, match="capacity"):
        EpochSeries(0)


def test_robust_range_ignores_one_far_outlier_and_rolling_median_smooths_alternation():
    v = np.array([13.4, 14.6] * 20 + [5012.0, np.nan])
    lo, hi = robust_range(v)
    assert 10.0 < lo < 13.4 and 14.6 < hi < 18.0  # the 5 km epoch does not stretch the axis
    assert robust_range(np.array([np.nan])) is None
    assert robust_range(np.full(5, 3.0)) == (2.75, 3.25)  # no spread: the minimum half-width
    med = rolling_median(np.array([13.4, 14.6] * 10), 10)
    np.testing.assert_allclose(med[9:], 14.0)  # an even window: the alternation reads as one line
    np.testing.assert_allclose(med[:3], [13.4, 14.0, 13.4])  # fewer values at the start
    med = rolling_median(np.array([1.0, np.nan, 3.0, 100.0, 2.0]), 3)
    np.testing.assert_allclose(med, [1.0, 1.0, 2.0, 51.5, 3.0])


# ----- range panel under real data ---------------------------------------------------
def test_range_axis_follows_the_bulk_and_marks_outliers_at_its_edge(window, wf):
    src = ScriptedSource()
    win = window(src)
    for i in range(40):
        r = 13.4 if i % 2 else 14.6
        src.inbox.put(*epoch(wf, 0.1 * i, {"ir_first": 5012.0 if i == 17 else r}, None))
    win.tick()
    rp = win.ranging
    lo, hi = rp.y_range
    assert 10.0 < lo < 13.4 and 14.6 < hi < 18.0
    t_high, y_high = rp.items["ir_first"].high.getData()
    np.testing.assert_allclose(t_high, [1.7])
    assert lo < y_high[0] < hi  # drawn inside the plot, at its top edge
    assert rp.off_scale == 1 and "1 off scale" in rp.summary.text()
    assert not np.any(rp.items["ir_first"].points.getData()[1] > hi)
    assert "no ground truth" in rp.summary.text() and rp.no_truth.isVisible()

    rp.set_mode("ir_first", "rolling median")
    win.tick()
    x_pts, _ = rp.items["ir_first"].points.getData()
    _, y_med = rp.items["ir_first"].median.getData()
    assert x_pts is None or len(x_pts) == 0
    assert np.all((y_med[9:] >= 14.0 - 1e-9) & (y_med[9:] <= 14.6 + 1e-9))  # the 5 km epoch barely moves it
    with pytest.raises(ValueError, match="display mode"):
        rp.set_mode("ir_first", "bars")


def test_no_label_is_cut_off_at_the_default_window_size(window, wf, qapp):
    src = ScriptedSource()
    win = window(src)
    src.inbox.put(*epoch(wf, 0.1, {"ir_first": 14.0, "ir_first_interp": 14.2}, None))
    win.tick()
    qapp.processEvents()
    item = win.ranging.no_truth
    text_rect = item.mapRectToView(item.boundingRect())
    view = win.ranging.cdf.getViewBox().viewRect()
    assert view.contains(text_rect), (text_rect, view)
    for label in (win.ranging.summary, win.comm.ber_label, *win.status.labels.values()):
        if label.text():
            assert label.fontMetrics().horizontalAdvance(label.text().split("\n")[0]) <= max(
                label.width(), label.wordWrap() * 10**6
            ), label.text()
