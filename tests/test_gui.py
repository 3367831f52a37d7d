"""GUI monitor: model, wire codec, panels fed a scripted stream, dead and live endpoints, replay."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import zmq
from PyQt5.QtGui import QImage

from backscatter.commands import gui_cmd
from backscatter.output import CliError
from dsp.results import BlockStats, PacketResult, RangingEpoch
from dsp.waveform import SPEED_OF_LIGHT_M_S
from gui.inbox import Inbox, SourceStatus
from gui.model import ResultsModel
from gui.replay import ReplaySource
from gui.source import SourceThread, ZmqSource
from sdr.emulator.capture import write_emulated_capture
from sdr.emulator.scenario import ScenarioConfig
from sdr.results_wire import epoch_to_wire, packet_to_wire, spectrum_to_wire, stats_to_wire
from sdr.transport import encode_result

pytestmark = pytest.mark.usefixtures("gc_in_paint")  # see tests/conftest.py
BITS = 125
TAG = 0xB5C0FFEE
PEAKS = {"central": 120, "lower": 122, "upper": 123}  # CIR index of each band's first path


class ScriptedSource(SourceThread):
    """A source whose inbox the test fills by hand."""

    def __init__(self) -> None:
        super().__init__(Inbox("scripted", "connect"))

    def _run(self) -> None:
        pass


def packet(time_s: float, errors: int | None, crc_ok: bool = True) -> tuple:
    rng = np.random.default_rng(round(time_s * 1000))
    bits = rng.integers(0, 2, BITS).astype(np.uint8)
    soft = ((2.0 * bits - 1) + 0.1 * rng.standard_normal(BITS)).astype(np.complex64)
    p = PacketResult(time_s, time_s * 30.72e6, TAG, bits, crc_ok, 100.0, 12.0, soft, errors)
    return packet_to_wire(p)


def epoch(wf, time_s: float, ranges_m: dict[str, float], range_true_m: float | None = 24.0) -> tuple:
    k_fft = wf.cir_fft_size
    cir = {}
    for band, k in PEAKS.items():
        h = np.full(k_fft, 1e-3, np.complex64)
        h[k] = 3.0 + 4.0j
        cir[band] = h
    delays = {m: {b: k * wf.cir_grid_step_s for b, k in PEAKS.items()} for m in ranges_m}
    per_band = {m: {"lower": r, "upper": r} for m, r in ranges_m.items()}
    snr_db = {"central": 30.0, "lower": -20.0, "upper": -19.5}
    cfo_hz = {"central": -2441.5, "lower": 1635.2, "upper": -6518.3}
    e = RangingEpoch(time_s, 1500, {}, cir, delays, ranges_m, per_band, snr_db, cfo_hz)
    return epoch_to_wire(e, wf, range_true_m)


def spectrum(time_s: float) -> tuple:
    psd = {b: np.linspace(-100, -90, 64) for b in ("central", "lower", "upper")}
    first = {"central": 900e6, "lower": 855e6, "upper": 945e6}
    return spectrum_to_wire(time_s, psd, first, 0.5e6)


# ----- model and codec (no drawing) ------------------------------------------------
def test_model_ber_rate_skips_and_link_states():
    m = ResultsModel()
    for i, errors in enumerate([0, 3, None, 1]):
        m.handle(*packet(0.1 * i, errors, crc_ok=errors != 3))
    assert (m.packets, m.crc_ok, m.packets_checked) == (4, 3, 3)
    assert m.bits_checked == 3 * BITS and m.bit_errors == 4
    assert m.ber == pytest.approx(4 / (3 * BITS))
    assert m.packet_rate_hz() == pytest.approx(10.0)
    assert m.constellation.skipped == 3 and m.constellation.take() is not None
    assert m.constellation.take() is None  # drawn once
    m.handle("packet", {"bits": "x", "bit_errors": "nope"}, {})  # malformed: counted, not fatal
    assert m.bad_messages == 1

    st = SourceStatus("tcp://h:1", "connect", started_s=100.0)
    m.source = st
    assert m.link_state(101.0, 5.0) == ("waiting", "waiting for tcp://h:1")
    st.connected = False
    assert m.link_state(106.0, 5.0) == ("no-data", "no data from tcp://h:1 for 6 s (not connected)")
    st.last_message_s, st.messages = 106.0, 1
    assert m.link_state(107.0, 5.0)[0] == "live"
    m.handle("health", {"stream_state": "stalled"}, {})
    assert m.link_state(107.0, 5.0)[0] == "stalled"
    assert m.link_state(112.0, 5.0)[1].startswith("no data from tcp://h:1 for 6 s")


# ----- panels fed a scripted stream ---------------------------------------------------
def test_panels_show_a_scripted_stream(window, wf):
    src = ScriptedSource()
    win = window(src)
    assert not win.spectrum.showing_plots and "No spectrum" in win.spectrum.note.text()
    sent = [(0.1, 24.9, 24.55), (0.2, 24.8, 24.6), (0.3, 24.7, 24.5)]
    errors = [0, 2, 5]
    for (t, r1, r2), e in zip(sent, errors, strict=True):
        src.inbox.put(*packet(t, e))
        src.inbox.put(*epoch(wf, t, {"ir_first": r1, "ir_first_interp": r2}))
    src.inbox.put(*stats_to_wire(BlockStats(0.3, 480, 12, {"central": -2441.5}, {"central": 1e-5}, {})))
    src.inbox.put(*spectrum(0.3))
    win.tick()

    # communication: BER = errors / bits, newest packet first in the log
    ber = sum(errors) / (len(errors) * BITS)
    assert win.comm.ber_label.text().startswith(f"BER {ber:.2e}")
    assert f"({sum(errors)} errors / {len(errors) * BITS} bits" in win.comm.ber_label.text()
    assert win.comm.table.rowCount() == 3
    assert [win.comm.table.item(r, 3).text() for r in range(3)] == ["5", "2", "0"]
    assert win.comm.table.item(0, 1).text() == "0xB5C0FFEE"
    assert "rate 10.0 packets/s" in win.comm.packets_label.text()
    x = win.comm.constellation_points().real
    assert x.size == BITS and np.all(np.abs(np.abs(x) - 1) < 0.5)

    # range: curves hold exactly the sent ranges, truth known, error CDF drawn
    t, r = win.ranging.curves["ir_first"].getData()
    np.testing.assert_allclose(t, [s[0] for s in sent])
    np.testing.assert_allclose(r, [s[1] for s in sent])
    np.testing.assert_allclose(win.ranging.curves["ir_first_interp"].getData()[1], [s[2] for s in sent])
    np.testing.assert_allclose(win.ranging.truth_curve.getData()[1], 24.0)
    ex, ey = win.ranging.cdf_curves["ir_first"].getData()
    np.testing.assert_allclose(ex, [0.7, 0.8, 0.9])
    np.testing.assert_allclose(ey, [1 / 3, 2 / 3, 1])
    assert not win.ranging.no_truth.isVisible()

    # CIRs: 0 dB peak at index * cir_step_m, first-path markers there, truth shifted by the error
    step = wf.cir_grid_step_m
    for band, k in PEAKS.items():
        xm, db = win.cir.curves[band].getData()
        assert db.max() == pytest.approx(0.0) and xm[np.argmax(db)] == pytest.approx(k * step)
        mx, my = win.cir.markers[band]["ir_first"].getData()
        assert mx[0] == pytest.approx(SPEED_OF_LIGHT_M_S * k * wf.cir_grid_step_s)
        assert my[0] == pytest.approx(0.0, abs=1e-6)
    assert win.cir.truth_lines["lower"].value() == pytest.approx(PEAKS["lower"] * step + 24.0 - 24.7)
    assert not win.cir.truth_lines["central"].isVisible()
    assert win.model.skipped["CIR"] == 2  # three epochs arrived within one draw: two never drawn

    # spectrum and status bar
    assert win.spectrum.showing_plots
    fx, fy = win.spectrum.curves["upper"].getData()
    assert fx[0] == pytest.approx(945.0) and fx[1] - fx[0] == pytest.approx(0.5) and fy.size == 64
    labels = win.status.labels
    assert "central: CFO -2441.5 Hz, SNR 30.0 dB" in labels["bands"].text()
    assert "upper: CFO -6518.3 Hz, SNR -19.5 dB" in labels["bands"].text()
    assert "CIR 2" in labels["skipped"].text()
    assert win.status.state == "live"


def test_calibration_tab_progress_and_process_failures(window, qtbot, tmp_path):
    src = ScriptedSource()
    win = window(src)
    cal = win.calibration
    cal.source_edit.setText("tcp://127.0.0.1:5555")
    cal.range_spin.setValue(12.5)
    cal.out_edit.setText(str(tmp_path / "cal.h5"))
    _, args = cal.command()
    assert args[-11:] == [
        "calibrate",
        "--source",
        "stream",
        "--connect",
        "tcp://127.0.0.1:5555",
        "--known-range-m",
        "12.5",
        "--out",
        str(tmp_path / "cal.h5"),
        "--force",
        "--progress-json",
    ]

    for i, state in enumerate(["running", "running", "done"]):
        fields = {
            "time_s": float(i),
            "state": state,
            "progress": (i + 1) / 3,
            "symbols": 1000 * (i + 1),
            "group_delay_s": {"lower": 20e-9 + i * 1e-9, "upper": 30e-9},
            "ripple_deg": {"lower": 2.0, "upper": 3.0},
            "snr_db": {},
            "d_cal_m": {"lower": 6.0, "upper": 9.0},
            "file": str(tmp_path / "cal.h5") if state == "done" else None,
            "message": "",
        }
        src.inbox.put("calibration", fields, {})
    win.tick()
    assert cal.progress.value() == 1000
    assert str(tmp_path / "cal.h5") in cal.result_label.text()
    np.testing.assert_allclose(cal.delay_curves["lower"].getData()[1], [20, 21, 22])

    # a process that fails: its exit status and last stderr line are shown
    cal.program = (sys.executable, ["-c", "import sys; sys.stderr.write('no radio here\\n'); sys.exit(3)"])
    cal.start_button.click()
    qtbot.waitUntil(lambda: "exit status 3" in cal.error_label.text(), timeout=10_000)
    assert "no radio here" in cal.error_label.text() and cal.start_button.isEnabled()
    # a program that does not exist
    cal.program = (str(tmp_path / "no-such-backscatter"), [])
    cal.start_button.click()
    qtbot.waitUntil(lambda: "failed to start" in cal.error_label.text(), timeout=5_000)


# ----- endpoints ----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dead_endpoint_shows_no_data_and_stays_responsive(window, qtbot):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    src = ZmqSource(endpoint)
    win = window(src, no_data_after_s=0.5)
    link = win.status.labels["link"]
    qtbot.waitUntil(lambda: f"no data from {endpoint} for" in link.text(), timeout=3_000)
    assert "(not connected)" in link.text() and win.status.state == "no-data"
    fired: list[float] = []
    t0 = time.monotonic()
    from PyQt5.QtCore import QTimer

    QTimer.singleShot(0, lambda: fired.append(time.monotonic() - t0))
    qtbot.waitUntil(lambda: bool(fired), timeout=500)  # the event loop is not blocked
    ticks = win.ticks
    qtbot.waitUntil(lambda: win.ticks >= ticks + 2, timeout=2_000)  # still ticking at its own rate
    t0 = time.monotonic()
    win.close()
    assert time.monotonic() - t0 < 1.5 and not src._thread.is_alive()


def test_silent_endpoint_shows_no_data_while_connected(window, qtbot):
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    try:
        win = window(ZmqSource(f"tcp://127.0.0.1:{port}"), no_data_after_s=0.5)
        link = win.status.labels["link"]
        qtbot.waitUntil(lambda: link.text().endswith("s (connected)"), timeout=3_000)
        assert link.text().startswith(f"no data from tcp://127.0.0.1:{port} for")
    finally:
        pub.close(linger=0)
        ctx.term()


def test_live_pub_socket_reaches_the_panels(window, qtbot, wf):
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    stream = "cd" * 16
    seq = iter(range(1_000_000))
    try:
        src = ZmqSource(f"tcp://127.0.0.1:{port}")
        win = window(src)
        health = {
            "time_s": 1.0,
            "throughput_sps": 3.2e7,
            "realtime_factor": 1.04,
            "queue_depth": 1,
            "messages_received": 5,
            "messages_dropped": {"version": 2},
            "samples_lost": 300,
            "gaps": 1,
            "stream_state": "live",
        }

        def hello() -> bool:  # PUB drops until the subscription has propagated: repeat until heard
            pub.send_multipart(encode_result("health", health, {}, stream_id=stream, seq=next(seq)))
            return src.inbox.status().messages > 0 or win.model.received.get("health", 0) > 0

        qtbot.waitUntil(hello, timeout=5_000)
        for i in range(4):
            pub.send_multipart(encode_result(*packet(0.1 * i, i), stream_id=stream, seq=next(seq)))
        pub.send_multipart(
            encode_result(*epoch(wf, 0.3, {"ir_first": 24.6}), stream_id=stream, seq=next(seq))
        )
        next(seq)  # one message "lost in transit"
        bad = encode_result(
            "gap", {"time_s": 0.3, "index": 1, "samples_lost": 2}, {}, stream_id=stream, seq=next(seq)
        )
        pub.send_multipart([bad[0], bad[1].replace(b'"v":1', b'"v":9')])
        pub.send_multipart(encode_result("health", health, {}, stream_id=stream, seq=next(seq)))
        qtbot.waitUntil(lambda: win.model.packets == 4 and bool(win.ranging.curves), timeout=5_000)
        qtbot.waitUntil(lambda: src.inbox.status().decode_errors.get("version") == 1, timeout=5_000)
        qtbot.waitUntil(lambda: src.inbox.status().lost_in_transit == 1, timeout=5_000)
        win.tick()
        assert win.comm.table.rowCount() == 4
        assert win.comm.ber_label.text().startswith(f"BER {6 / (4 * BITS):.2e}")
        np.testing.assert_allclose(win.ranging.curves["ir_first"].getData()[1], [24.6])
        labels = win.status.labels
        assert win.status.state == "live" and labels["link"].text() == "live"
        assert win.model.source.connected is True
        assert "1.04x real time" in labels["throughput"].text()
        assert "samples lost 300 (1 gaps)" in labels["lost"].text()
        assert "worker 2, GUI 2" in labels["dropped"].text()  # 1 decode error + 1 sequence jump
    finally:
        pub.close(linger=0)
        ctx.term()


# ----- replay and the command line ------------------------------------------------------
@pytest.fixture(scope="module")
def capture(tmp_path_factory, wf):
    path = tmp_path_factory.mktemp("gui") / "emu.h5"
    write_emulated_capture(
        path, wf, ScenarioConfig(duration_s=0.3, seed=1, snr_lower_db=-20, snr_upper_db=-20)
    )
    return path


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command")
    gui_cmd.register(sub)
    return p


def test_replay_source_produces_results_health_and_spectrum(capture):
    src = ReplaySource(capture, speed=0, use_truth_calibration=True)
    src.start()
    deadline = time.monotonic() + 20
    while not src.inbox.status().finished and time.monotonic() < deadline:
        assert src.inbox.status().error is None
        time.sleep(0.02)
    src.stop()
    kinds = [k for k, _, _ in src.inbox.drain()]
    assert {"packet", "epoch", "stats", "health", "spectrum"} <= set(kinds)
    assert kinds.count("packet") == 3


def test_replay_command_writes_a_screenshot(capture, tmp_path, qapp):
    png = tmp_path / "shot.png"
    args = parser().parse_args(
        [
            "gui",
            "--replay",
            str(capture),
            "--speed",
            "0",
            "--truth-calibration",
            "--theme",
            "light",
            "--size",
            "1200x800",
            "--screenshot",
            str(png),
        ]
    )
    assert args.func(args) == {"screenshot": str(png)}
    img = QImage(str(png))
    assert (img.width(), img.height()) == (1200, 800)
    assert png.stat().st_size > 30_000
    small = img.scaled(120, 80)
    colours = {small.pixel(x, y) for x in range(120) for y in range(80)}
    assert len(colours) > 50  # plots, not a blank window


def test_connect_command_on_a_dead_endpoint_exits_on_time(tmp_path, qapp):
    png = tmp_path / "dead.png"
    argv = ["gui", "--connect", f"tcp://127.0.0.1:{free_port()}", "--no-data-after-s", "0.3"]
    args = parser().parse_args([*argv, "--exit-after-s", "0.8", "--screenshot", str(png)])
    t0 = time.monotonic()
    args.func(args)
    assert time.monotonic() - t0 < 5 and png.stat().st_size > 10_000


def test_command_line_errors_and_lazy_qt(capture):
    p = parser()
    with pytest.raises(CliError, match="ZeroMQ endpoint"):
        a = p.parse_args(["gui", "--connect", "localhost:5556"])
        a.func(a)
    with pytest.raises(CliError, match="exit-after-s"):
        a = p.parse_args(["gui", "--replay", str(capture), "--exit-after-s", "0"])
        a.func(a)
    with pytest.raises(CliError, match="key file not found"):
        a = p.parse_args(["gui", "--connect", "tcp://127.0.0.1:1", "--keys", str(capture.parent / "nokeys")])
        a.func(a)
    with pytest.raises(SystemExit):
        p.parse_args(["gui", "--connect", "tcp://a:1", "--replay", str(capture)])
    code = (
        "import sys, backscatter.commands.gui_cmd; sys.exit(bool({'PyQt5', 'pyqtgraph'} & set(sys.modules)))"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
