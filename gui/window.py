"""Main window: the live dashboard and the calibration tab, redrawn by a bounded-rate timer."""

from __future__ import annotations

import logging
import time

from PyQt5.QtCore import Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QCloseEvent
from PyQt5.QtWidgets import QGroupBox, QMainWindow, QSplitter, QTabWidget, QVBoxLayout, QWidget

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
DRAW_HZ = 15.0


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
        self.setCentralWidget(self.tabs)
        self.statusBar().addWidget(self.status, 1)
        self.panels = (self.cir, self.ranging, self.comm, self.spectrum, self.calibration)
        self.timer = QTimer(self)
        self.timer.setInterval(round(1000 / draw_hz))
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    def tick(self) -> None:
        """Apply every queued message to the model, then redraw what changed (GUI thread)."""
        for kind, fields, arrays in self.source.inbox.drain():
            self.model.handle(kind, fields, arrays)
        self.model.source = self.source.inbox.status()
        for panel in self.panels:
            try:
                panel.refresh(self.model)
            except Exception:  # a draw bug must not take the monitor down (PyQt aborts on slot errors)
                self.draw_errors += 1
                log.exception("drawing %s failed", type(panel).__name__)
        self.status.refresh(self.model, time.monotonic(), self.no_data_after_s)
        self.ticks += 1

    def closeEvent(self, event: QCloseEvent) -> None:
        self.timer.stop()
        self.source.stop()
        self.calibration.stop()
        super().closeEvent(event)
        self.closed.emit()
