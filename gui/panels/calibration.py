"""Calibration tab: start ``backscatter calibrate`` (QProcess), follow its ``calibration`` messages."""

from __future__ import annotations

from collections import deque

import pyqtgraph as pg
from PyQt5.QtCore import QProcess
from PyQt5.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui.calibration_cmd import backscatter_program, calibrate_arguments, failure_text, progress_from_line
from gui.model import ResultsModel
from gui.theme import BAND_COLORS, BANDS, Theme, plain_label, styled_plot

ERROR_STYLE = "color: #e0556a; font-weight: bold;"


class CalibrationPanel(QWidget):
    """Form and button on the left, progress and per-band group delay / ripple plots on the right."""

    def __init__(self, theme: Theme, source_default: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.source_edit = QLineEdit(source_default)
        self.source_edit.setPlaceholderText("IQ endpoint (tcp://host:port) or capture file (.h5)")
        self.range_spin = QDoubleSpinBox()
        self.range_spin.setRange(0.0, 10_000.0)
        self.range_spin.setDecimals(3)
        self.range_spin.setSuffix(" m")
        self.range_spin.setValue(1.0)
        self.out_edit = QLineEdit("calibration.h5")
        self.start_button = QPushButton("Start CW calibration")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.state_label = plain_label("idle")
        self.result_label = plain_label("")
        self.result_label.setWordWrap(True)
        self.error_label = plain_label("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(ERROR_STYLE)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(300)
        form = QFormLayout()
        form.addRow("source", self.source_edit)
        form.addRow("known range (TX-tag-RX)", self.range_spin)
        form.addRow("output file", self.out_edit)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        left = QVBoxLayout()
        left.addLayout(form)
        left.addLayout(buttons)
        for w in (self.progress, self.state_label, self.result_label, self.error_label):
            left.addWidget(w)
        left.addWidget(QLabel("process output"))
        left.addWidget(self.log, 1)
        self.glw = pg.GraphicsLayoutWidget()
        self.delay_plot = styled_plot(self.glw.addPlot(row=0, col=0), "time (s)", "group delay (ns)")
        self.ripple_plot = styled_plot(self.glw.addPlot(row=1, col=0), "time (s)", "phase ripple (deg)")
        self.delay_plot.addLegend(offset=(-10, 5))
        self.ripple_plot.setXLink(self.delay_plot)
        self.delay_curves, self.ripple_curves = {}, {}
        for band in BANDS:
            pen = pg.mkPen(BAND_COLORS[band], width=1.5)
            self.delay_curves[band] = self.delay_plot.plot(pen=pen, name=band)
            self.ripple_curves[band] = self.ripple_plot.plot(pen=pen)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 2)
        layout.addWidget(self.glw, 3)
        self.process = QProcess(self)
        self.process.readyReadStandardOutput.connect(self._read_stdout)
        self.process.readyReadStandardError.connect(self._read_stderr)
        self.process.errorOccurred.connect(self._process_error)
        self.process.finished.connect(self._process_finished)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.process.kill)
        self._stderr_tail: deque[str] = deque(maxlen=20)
        self._pending: list[dict] = []  # calibration messages printed by the process
        self._version = -1
        self.program: tuple[str, list[str]] = backscatter_program()

    def command(self) -> tuple[str, list[str]]:
        """Program and arguments for the current form values."""
        program, lead = self.program
        args = calibrate_arguments(
            self.source_edit.text().strip(), self.range_spin.value(), self.out_edit.text()
        )
        return program, lead + args

    def start(self) -> None:
        if self.process.state() != QProcess.NotRunning:
            return
        if not self.source_edit.text().strip() or not self.out_edit.text().strip():
            self.error_label.setText("give a source and an output file")
            return
        program, args = self.command()
        self.error_label.setText("")
        self.result_label.setText("")
        self._stderr_tail.clear()
        self.log.appendPlainText("$ " + " ".join([program, *args]))
        self.state_label.setText("starting")
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.process.start(program, args)

    def _read_stdout(self) -> None:
        text = bytes(self.process.readAllStandardOutput()).decode(errors="replace")
        for line in text.splitlines():
            msg = progress_from_line(line)
            if msg is not None:
                self._pending.append(msg)
            else:
                self.log.appendPlainText(line)

    def _read_stderr(self) -> None:
        text = bytes(self.process.readAllStandardError()).decode(errors="replace")
        for line in text.splitlines():
            self._stderr_tail.append(line)
            self.log.appendPlainText(line)

    def _process_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.FailedToStart:
            program = self.program[0]
            self.error_label.setText(f"calibration failed to start: {program}: {self.process.errorString()}")
            self._idle("failed to start")

    def _process_finished(self, exit_code: int, status: QProcess.ExitStatus) -> None:
        self._read_stderr()
        if status == QProcess.CrashExit:
            self.error_label.setText("calibration process was stopped or crashed")
            self._idle("stopped")
        elif exit_code:
            self.error_label.setText(failure_text(exit_code, "\n".join(self._stderr_tail)))
            self._idle("failed")
        else:
            self._idle("process finished")

    def _idle(self, state: str) -> None:
        self.state_label.setText(state)
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    def stop(self) -> None:
        """Kill a running process and wait for it (window closing)."""
        if self.process.state() != QProcess.NotRunning:
            self.process.kill()
            self.process.waitForFinished(2000)

    def refresh(self, model: ResultsModel) -> None:
        for fields in self._pending:
            model.handle("calibration", fields, {})
        self._pending.clear()
        if model.calibration_version == self._version:
            return
        self._version = model.calibration_version
        c = model.calibration
        progress = float(c.get("progress") or 0.0)
        self.progress.setValue(round(1000 * min(max(progress, 0.0), 1.0)))
        state = c.get("state", "?")
        self.state_label.setText(
            f"{state}: {100 * progress:.0f} %, {c.get('symbols', 0)} symbols  {c.get('message') or ''}"
        )
        if state == "failed":
            self.error_label.setText(f"calibration failed: {c.get('message') or 'no message'}")
        if state == "done":
            per_band = ", ".join(f"{b} d_cal {v:.3f} m" for b, v in (c.get("d_cal_m") or {}).items())
            self.result_label.setText(f"written: {c.get('file') or '(no file)'}   {per_band}")
        t_s, delay_s, ripple_deg = model.calibration_series()
        for band in BANDS:
            if band in delay_s:
                self.delay_curves[band].setData(t_s, delay_s[band] * 1e9, connect="finite")
                self.ripple_curves[band].setData(t_s, ripple_deg[band], connect="finite")
            else:
                self.delay_curves[band].setData([], [])
                self.ripple_curves[band].setData([], [])
