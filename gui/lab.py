"""The lab bar above the tabs: pause, exports, the worker's settings and a recording.

* **Pause** freezes the drawing; the window keeps draining results into its model (counts,
  BER and history stay complete), and the worker is untouched.
* **PNG** saves the window as shown; **CSV** and **HDF5** the last N packets and epochs
  (``gui/export.py``), all as time-stamped files in the export directory.
* **Worker**: TX-RX distance (0 = let the receiver estimate it) and ranging methods, sent over
  the worker's control endpoint (``backscatter worker --control``, ``sdr/control.py``); its
  next receiver uses them.
* **Record**: runs ``backscatter record --connect IQ_ENDPOINT --out FILE`` as a child process
  (watched by a timer, not by Qt's child-process signals) and stops it with SIGTERM: the
  recorder closes its file cleanly.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolBar,
    QWidget,
)

from dsp.ranging import REGISTRY
from gui.calibration_cmd import backscatter_program
from gui.export import stamped, write_png, write_results_csv, write_results_hdf5
from gui.theme import clipped_label
from sdr.control import ControlClient, WorkerSettings

DEFAULT_CSV_RESULTS = 1000


class LabBar(QToolBar):
    """A tool bar of controls (what does not fit goes behind its extension button);
    ``window`` is the :class:`gui.window.MainWindow` it acts on."""

    def __init__(
        self,
        window: QWidget,
        control_endpoint: str | None = None,
        iq_endpoint: str | None = None,
        export_dir: Path = Path("."),
        methods: tuple[str, ...] = ("ir_first", "ir_first_interp"),
    ):
        super().__init__("lab", window)
        self.setMovable(False)
        self.window_ = window
        self.export_dir = Path(export_dir)
        self.iq_endpoint = iq_endpoint
        self.control = ControlClient(control_endpoint) if control_endpoint else None
        self.pause_button = QPushButton("Pause display")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self._paused)
        self.png_button = QPushButton("Save PNG")
        self.png_button.clicked.connect(lambda: self.export_png())
        self.csv_n = QSpinBox()
        self.csv_n.setRange(1, 1_000_000)
        self.csv_n.setValue(DEFAULT_CSV_RESULTS)
        self.csv_n.setToolTip("how many of the newest packets and epochs to export")
        self.csv_button = QPushButton("Save CSV")
        self.csv_button.clicked.connect(lambda: self.export_csv())
        self.hdf5_button = QPushButton("Save HDF5")
        self.hdf5_button.clicked.connect(lambda: self.export_hdf5())
        self.distance = QDoubleSpinBox()
        self.distance.setRange(0.0, 99_999.0)
        self.distance.setDecimals(2)
        self.distance.setSuffix(" m")
        self.distance.setSpecialValueText("estimate")  # 0: the receiver estimates d_0
        self.distance.setToolTip("TX-RX distance d_0 for the worker's next epochs (0: estimate)")
        self.method_boxes = {m: QCheckBox(m) for m in sorted(REGISTRY)}
        for m, box in self.method_boxes.items():
            box.setChecked(m in methods)
        self.apply_button = QPushButton("Apply to worker")
        self.apply_button.clicked.connect(self.apply_settings)
        self.record_path = QLineEdit(str(self.export_dir / "recording.h5"))
        self.record_path.setMaximumWidth(180)
        self.record_button = QPushButton("Record")
        self.record_button.setCheckable(True)
        self.record_button.toggled.connect(self._record_toggled)
        self.message = clipped_label("")
        for w in (self.pause_button, self.png_button, QLabel(" last "), self.csv_n):
            self.addWidget(w)
        for w in (self.csv_button, self.hdf5_button):
            self.addWidget(w)
        self.addSeparator()
        self.addWidget(QLabel(" d0 "))
        self.addWidget(self.distance)
        for box in self.method_boxes.values():
            self.addWidget(box)
        self.addWidget(self.apply_button)
        self.addSeparator()
        self.addWidget(self.record_path)
        self.addWidget(self.record_button)
        self.addSeparator()
        self.addWidget(self.message)
        if self.control is None:
            for w in (self.distance, self.apply_button, *self.method_boxes.values()):
                w.setEnabled(False)
                w.setToolTip("start the GUI with --control ENDPOINT (the worker's --control)")
        if iq_endpoint is None:
            for w in (self.record_path, self.record_button):
                w.setEnabled(False)
                w.setToolTip("start the GUI with --iq ENDPOINT (the streamer's) to record from it")
        self.process: subprocess.Popen | None = None
        self._stderr = None
        self._watch = QTimer(self)
        self._watch.setInterval(250)
        self._watch.timeout.connect(self._record_poll)
        self.program = backscatter_program()

    # ----- pause and exports -----------------------------------------------------------------
    def _paused(self, on: bool) -> None:
        self.window_.paused = on
        self.pause_button.setText("Resume display" if on else "Pause display")

    def export_png(self, path: Path | None = None) -> Path:
        path = path or stamped(self.export_dir, "monitor", ".png")
        try:
            write_png(self.window_, path)
        except OSError as exc:
            self.message.setText(str(exc))
            raise
        self.message.setText(f"saved {path}")
        return path

    def export_csv(self, path: Path | None = None) -> Path:
        path = path or stamped(self.export_dir, "results", ".csv")
        try:
            rows = write_results_csv(self.window_.model, path, self.csv_n.value())
        except OSError as exc:
            self.message.setText(f"cannot write {path}: {exc}")
            raise
        self.message.setText(f"saved {rows} rows to {path}")
        return path

    def export_hdf5(self, path: Path | None = None) -> Path:
        path = path or stamped(self.export_dir, "results", ".h5")
        source = self.window_.source.inbox.status().description
        try:
            packets, epochs = write_results_hdf5(self.window_.model, path, self.csv_n.value(), source)
        except OSError as exc:
            self.message.setText(f"cannot write {path}: {exc}")
            raise
        self.message.setText(f"saved {packets} packets and {epochs} epochs to {path}")
        return path

    # ----- worker settings -------------------------------------------------------------------
    def settings(self) -> WorkerSettings:
        methods = tuple(m for m, box in self.method_boxes.items() if box.isChecked())
        d0 = self.distance.value()
        return WorkerSettings(d0 if d0 > 0 else None, methods or None, set_distance=True)

    def show_methods(self, methods: list[str]) -> None:
        """Tick the methods the worker is running (as its epochs say), so Apply keeps them."""
        for m, box in self.method_boxes.items():
            box.setChecked(m in methods)

    def apply_settings(self) -> bool:
        if self.control is None:
            return False
        s = self.settings()
        if s.methods is None:
            self.message.setText("choose at least one ranging method")
            return False
        sent = self.control.send(s)
        self.message.setText(
            "sent: the worker's next epochs use them" if sent else "worker control endpoint not reachable"
        )
        return sent

    # ----- recording ---------------------------------------------------------------------------
    def record_arguments(self) -> list[str]:
        return ["record", "--connect", str(self.iq_endpoint), "--out", self.record_path.text().strip()]

    @property
    def recording(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _record_toggled(self, on: bool) -> None:
        if on and not self.recording:
            program, lead = self.program
            self._stderr = tempfile.TemporaryFile()
            try:
                self.process = subprocess.Popen(
                    [program, *lead, *self.record_arguments()],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=self._stderr,
                )
            except OSError as exc:
                self.message.setText(f"cannot start the recorder: {exc}")
                self._record_finished()
                return
            self._watch.start()
            self.record_button.setText("Stop recording")
            self.message.setText(f"recording to {self.record_path.text()}")
        elif not on and self.recording:
            self.process.terminate()  # SIGTERM: the recorder closes its file

    def _record_poll(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            code = self.process.returncode
            self._stderr.seek(0)
            err = self._stderr.read().decode(errors="replace").strip().splitlines()
            self._stderr.close()
            self.process = None
            self.message.setText(
                f"recording saved: {self.record_path.text()}"
                if code == 0
                else f"recording ended (exit {code}): {err[-1] if err else 'no message'}"
            )
            self._record_finished()

    def _record_finished(self) -> None:
        self._watch.stop()
        self.record_button.blockSignals(True)
        self.record_button.setChecked(False)
        self.record_button.setText("Record")
        self.record_button.blockSignals(False)

    def stop(self) -> None:
        if self.recording:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.control is not None:
            self.control.close()
