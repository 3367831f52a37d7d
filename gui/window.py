"""Main window: the live dashboard and the calibration tab, redrawn by a bounded-rate timer."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from PyQt5.QtCore import Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QCloseEvent
from PyQt5.QtWidgets import QGroupBox, QMainWindow, QSplitter, QTabWidget, QVBoxLayout, QWidget

from gui.lab import LabBar
from gui.model import ResultsModel
from gui.panels.calibration import CalibrationPanel
from gui.panels.cir import CirPanel
from gui.panels.comm import CommPanel
from gui.panels.ranging import RangePanel
from gui.panels.spectrum import SpectrumPanel
from gui.panels.status import StatusPanel
from gui.source import SourceThread
from gui.theme import Theme

log = logging.getLogger(__name__)
DRAW_HZ = 10.0  # the inbox is drained, and due panels redrawn, this often
# each panel's own redraw rate (Hz): the heavy plots need not follow every message (a newer CIR
# or spectrum simply replaces one not yet drawn; "not drawn" in the status bar counts them)
PANEL_HZ = {
    "cir": 3.0,
    "ranging": 1.0,
    "comm": 1.0,
    "spectrum": 1.0,
    "calibration": 4.0,
    "status": 2.0,
}


def _boxed(title: str, widget: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(4, 6, 4, 4)
    layout.addWidget(widget)
    return box


class MainWindow(QMainWindow):
    """Drains ``source.inbox`` into a :class:`ResultsModel` and redraws the panels at ``draw_hz``."""

    closed = pyqtSignal()

    def __init__(
        self,
        source: SourceThread,
        theme: Theme,
        no_data_after_s: float = 5.0,
        draw_hz: float = DRAW_HZ,
        calibration_source: str = "",
        control_endpoint: str | None = None,
        iq_endpoint: str | None = None,
        export_dir: Path = Path("."),
    ):
        super().__init__()
        self.source = source
        self.model = ResultsModel()
        self.no_data_after_s = no_data_after_s
        self.draw_errors = 0
        self.ticks = 0
        self.setWindowTitle(f"backscatter monitor: {source.inbox.status().description}")
        self.cir = CirPanel(theme)
        self.ranging = RangePanel(theme)
        self.comm = CommPanel(theme)
        self.spectrum = SpectrumPanel(theme)
        self.calibration = CalibrationPanel(theme, calibration_source)
        self.status = StatusPanel()
        top = QSplitter(Qt.Horizontal)
        top.addWidget(_boxed("Channel impulse responses (central, lower, upper band)", self.cir))
        top.addWidget(_boxed("Range", self.ranging))
        bottom = QSplitter(Qt.Horizontal)
        bottom.addWidget(_boxed("Communication", self.comm))
        bottom.addWidget(_boxed("Spectrum", self.spectrum))
        live = QSplitter(Qt.Vertical)
        live.addWidget(top)
        live.addWidget(bottom)
        for splitter, sizes in ((top, [1, 1]), (bottom, [1, 1]), (live, [11, 9])):
            splitter.setSizes([1000 * s for s in sizes])
        self.tabs = QTabWidget()
        self.tabs.addTab(live, "Live")
        self.tabs.addTab(self.calibration, "Calibration")
        self.paused = False  # the lab bar's Pause: the model keeps updating, the panels do not
        self.lab = LabBar(self, control_endpoint, iq_endpoint, export_dir)
        self.addToolBar(self.lab)
        self.setCentralWidget(self.tabs)
        self.statusBar().addWidget(self.status, 1)
        self.panels = {
            "cir": self.cir,
            "ranging": self.ranging,
            "comm": self.comm,
            "spectrum": self.spectrum,
            "calibration": self.calibration,
        }
        self.panel_hz = dict(PANEL_HZ)
        self.redraws = dict.fromkeys([*self.panels, "status"], 0)  # refresh() calls per panel
        self._due_s = dict.fromkeys(self.redraws, 0.0)
        self.clock = time.monotonic  # replaceable (tests, benchmarks in simulated time)
        self._methods_shown = 0
        self.timer = QTimer(self)
        self.timer.setInterval(round(1000 / draw_hz))
        self.timer.timeout.connect(lambda: self.tick(force=False))
        self.timer.start()

    def _due(self, name: str, now_s: float, force: bool) -> bool:
        if not force and now_s < self._due_s[name]:
            return False
        self._due_s[name] = now_s + 1.0 / self.panel_hz[name]
        self.redraws[name] += 1
        return True

    def tick(self, force: bool = True) -> None:
        """Apply every queued message to the model, then redraw the panels (GUI thread).

        From the timer (``force`` false) a panel is redrawn only when it is visible (not on a
        hidden tab) and its :data:`PANEL_HZ` period has passed; ``force`` redraws every panel.
        """
        for kind, fields, arrays in self.source.inbox.drain():
            self.model.handle(kind, fields, arrays)
        self.model.source = self.source.inbox.status()
        if len(self.model.methods) != self._methods_shown:  # the worker's methods, on the lab bar
            self._methods_shown = len(self.model.methods)
            self.lab.show_methods(self.model.methods)
        now = self.clock()
        for name, panel in self.panels.items():
            if self.paused and not force:
                break
            if not (force or panel.isVisible()) or not self._due(name, now, force):
                continue
            try:
                panel.refresh(self.model)
            except Exception:  # a draw bug must not take the monitor down (PyQt aborts on slot errors)
                self.draw_errors += 1
                log.exception("drawing %s failed", type(panel).__name__)
        if self._due("status", now, force):
            self.status.refresh(self.model, time.monotonic(), self.no_data_after_s, self.paused)
        self.ticks += 1

    def closeEvent(self, event: QCloseEvent) -> None:
        self.timer.stop()
        self.source.stop()
        self.calibration.stop()
        self.lab.stop()
        super().closeEvent(event)
        self.closed.emit()
