"""GUI features of issue 18: redraw budget, readable range plot, truth, lab controls."""

from __future__ import annotations

import csv
import sys

import h5py
import numpy as np
import pytest
import zmq
from PyQt5.QtGui import QImage

from dsp.receiver_config import ReceiverConfig
from gui.panels.status import timing_text
from gui.series import EpochSeries, robust_range, rolling_median
from sdr.control import ControlError, ControlServer, LiveConfig, WorkerSettings, parse_settings
from sdr.stream_truth import StreamTruth
from tests.test_gui import BITS, ScriptedSource, epoch, packet

pytestmark = pytest.mark.usefixtures("gc_in_paint")  # see tests/conftest.py


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


# ----- lab features -------------------------------------------------------------------
def test_pause_freezes_the_drawing_while_the_model_keeps_counting(window, wf):
    src = ScriptedSource()
    win = window(src)
    src.inbox.put(*epoch(wf, 0.1, {"ir_first": 14.0}, None))
    win.tick()
    version = win.ranging._version
    win.lab.pause_button.click()
    assert win.paused and win.lab.pause_button.text() == "Resume display"
    for i in range(3):
        src.inbox.put(*epoch(wf, 0.2 + 0.1 * i, {"ir_first": 14.0}, None))
        src.inbox.put(*packet(0.2 + 0.1 * i, None))
    win.clock = lambda: 1e6  # every panel due: only the pause holds them back
    win.tick(force=False)
    assert len(win.model.series) == 4 and win.model.packets == 3  # nothing lost
    assert win.ranging._version == version and win.comm.table.rowCount() == 0  # nothing drawn
    assert "display paused" in win.status.labels["link"].text()
    win.lab.pause_button.click()
    win.clock = lambda: 2e6
    win.tick(force=False)
    assert win.ranging._version == win.model.ranging_version and win.comm.table.rowCount() == 3


def test_export_png_and_the_last_n_results_as_csv(window, wf, tmp_path):
    src = ScriptedSource()
    win = window(src)
    win.lab.export_dir = tmp_path
    for i in range(5):
        src.inbox.put(*packet(0.1 * i, i))
        src.inbox.put(*epoch(wf, 0.1 * i + 0.05, {"ir_first": 14.0 + i, "ir_first_interp": 14.5}, 24.0))
    win.tick()
    ticked = [m for m, box in win.lab.method_boxes.items() if box.isChecked()]
    assert ticked == ["ir_first", "ir_first_interp"]  # the methods the worker's epochs carry
    png = win.lab.export_png()
    assert png.parent == tmp_path and QImage(str(png)).width() == win.width()
    win.lab.csv_n.setValue(2)
    path = win.lab.export_csv()
    rows = list(csv.DictReader(path.read_text().splitlines()))
    assert [r["kind"] for r in rows] == ["packet", "epoch", "epoch", "packet", "epoch", "epoch"]
    assert [r["bit_errors"] for r in rows if r["kind"] == "packet"] == ["3", "4"]
    assert [float(r["range_m"]) for r in rows if r["method"] == "ir_first"] == [17.0, 18.0]
    assert {r["range_true_m"] for r in rows if r["kind"] == "epoch"} == {"24.0"}
    assert f"saved 6 rows to {path}" == win.lab.message.text()
    with pytest.raises(OSError):
        win.lab.export_csv(tmp_path / "no-such-dir" / "x.csv")


def test_export_the_last_n_results_as_hdf5(window, wf, tmp_path):
    src = ScriptedSource()
    win = window(src)
    win.lab.export_dir = tmp_path
    for i in range(5):
        src.inbox.put(*packet(0.1 * i, None if i == 4 else i))  # the newest packet without a truth
        ranges = {"ir_first": 14.0 + i} if i == 3 else {"ir_first": 14.0 + i, "ir_first_interp": 14.5}
        src.inbox.put(*epoch(wf, 0.1 * i + 0.05, ranges, None if i == 4 else 24.0))
    win.tick()
    win.lab.csv_n.setValue(2)
    path = win.lab.export_hdf5()
    assert path.parent == tmp_path and path.suffix == ".h5"
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "backscatter-monitor-export" and f.attrs["last_n"] == 2
        assert f.attrs["source"] == src.inbox.status().description
        pk, ep = f["packets"], f["epochs"]
        np.testing.assert_allclose(pk["time_s"][:], [0.3, 0.4])
        assert pk["bit_errors"][:].tolist() == [3, -1] and pk["n_bits"][:].tolist() == [BITS, BITS]
        assert list(ep.attrs["methods"]) == ["ir_first", "ir_first_interp"]
        np.testing.assert_allclose(ep["time_s"][:], [0.35, 0.45])
        r = ep["range_m"][:]
        assert r.shape == (2, 2) and r[:, 0].tolist() == [17.0, 18.0]
        assert np.isnan(r[0, 1]) and r[1, 1] == 14.5  # no interpolated range in epoch 3
        np.testing.assert_array_equal(np.isnan(ep["range_true_m"][:]), [False, True])
    assert f"saved 2 packets and 2 epochs to {path}" == win.lab.message.text()
    with pytest.raises(OSError):
        win.lab.export_hdf5(tmp_path / "no-such-dir" / "x.h5")
    assert "cannot write" in win.lab.message.text()


def test_worker_settings_reach_the_control_endpoint_validated(window, qtbot):
    server = ControlServer("tcp://127.0.0.1:*")
    try:
        win = window(ScriptedSource(), show=False, control_endpoint=server.endpoint)
        win.lab.distance.setValue(12.5)
        for m, box in win.lab.method_boxes.items():
            box.setChecked(m in ("ir_first", "music"))
        settings = None

        def arrived() -> bool:
            nonlocal settings
            win.lab.apply_settings()
            settings = settings or server.poll()
            return settings is not None

        qtbot.waitUntil(arrived, timeout=5_000)
        assert settings == WorkerSettings(12.5, ("ir_first", "music"), set_distance=True)
        for box in win.lab.method_boxes.values():
            box.setChecked(False)
        assert not win.lab.apply_settings() and "at least one" in win.lab.message.text()
        # malformed messages from anyone: counted by reason, dropped
        ctx = zmq.Context.instance()
        push = ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        push.connect(server.endpoint)
        bad = [b"{not json", b'{"v": 1, "kind": "settings", "methods": ["magic"]}',
               b'{"v": 1, "kind": "settings", "tx_rx_distance_m": -3}', b'{"v": 2, "kind": "settings"}',
               b'{"v": 1, "kind": "settings", "rm": 1}']  # fmt: skip
        for b in bad:
            push.send(b)
        qtbot.waitUntil(
            lambda: server.poll() is None and sum(server.dropped.values()) == len(bad), timeout=5_000
        )
        assert dict(server.dropped) == {
            "json": 1,
            "methods": 1,
            "tx_rx_distance_m": 1,
            "version": 1,
            "field": 1,
        }
        push.close()
        win.close()
    finally:
        server.close()


def test_live_config_applies_settings_and_refuses_what_the_receiver_refuses():
    live = LiveConfig(ReceiverConfig(), distance_given=False)
    truth = StreamTruth(20.0, 7.5)
    assert live.for_stream(truth).tx_rx_distance_m == 7.5  # the stream's truth, until told otherwise
    assert live.apply(WorkerSettings(None, ("music",), set_distance=False))
    assert live.cfg.methods == ("music",) and live.for_stream(truth).tx_rx_distance_m == 7.5
    assert live.apply(WorkerSettings(3.25, None, set_distance=True))
    assert live.for_stream(truth).tx_rx_distance_m == 3.25
    assert live.apply(WorkerSettings(None, None, set_distance=True))  # null: estimate it
    assert live.for_stream(truth).tx_rx_distance_m is None
    assert not live.apply(WorkerSettings(1e9, None, set_distance=True)) and live.cfg.tx_rx_distance_m is None
    with pytest.raises(ControlError, match="methods"):
        parse_settings(b'{"v": 1, "kind": "settings", "methods": []}')
    with pytest.raises(ControlError, match="size"):
        parse_settings(b" " * 5000)


def test_recording_starts_and_stops_from_the_gui(window, qtbot, tmp_path):
    win = window(ScriptedSource(), show=False, iq_endpoint="tcp://127.0.0.1:5555", export_dir=tmp_path)
    log = tmp_path / "argv.txt"
    script = (
        "import signal, sys, time, pathlib; "
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)); "  # like `record`: a clean stop
        f"pathlib.Path({str(log)!r}).write_text(' '.join(sys.argv[1:])); time.sleep(30)"
    )
    win.lab.program = (sys.executable, ["-c", script])
    win.lab.record_button.click()
    # the file exists before the child has written it (seen once under load): wait for the text
    qtbot.waitUntil(lambda: log.exists() and log.read_text() != "", timeout=10_000)
    assert log.read_text() == f"record --connect tcp://127.0.0.1:5555 --out {tmp_path / 'recording.h5'}"
    assert win.lab.record_button.text() == "Stop recording"
    win.lab.record_button.click()

    def saved() -> bool:
        win.lab._record_poll()  # what its timer does every 250 ms
        return "recording saved" in win.lab.message.text()

    qtbot.waitUntil(saved, timeout=10_000)
    assert not win.lab.recording
    assert not win.lab.record_button.isChecked() and win.lab.record_button.text() == "Record"
    disabled = window(ScriptedSource(), show=False)
    assert not disabled.lab.record_button.isEnabled() and not disabled.lab.apply_button.isEnabled()


def test_timing_status_shows_the_stats_fields_or_n_a():
    assert timing_text({}) == "timing: n/a (no stats messages)"
    old = {"acquired": {"central": True, "lower": False}}  # a worker without timing tracking
    assert timing_text(old) == (
        "timing: n/a, drift n/a (measured n/a), error n/a; lower searching, central acq"
    )
    new = {
        **old,
        "timing_drift_ppm": 2.0,
        "timing_drift_measured_ppm": 1.9876,
        "timing_error_samples": -0.25,
        "timing_locked": True,
    }
    assert timing_text(new).startswith(
        "timing: locked, drift +2.000 ppm (measured +1.988 ppm), error -0.25 samples"
    )
    assert "NOT locked" in timing_text({**new, "timing_locked": False})
