"""Run the monitor: Qt application, theme, window, optional timed exit and screenshot."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from PyQt5.QtCore import QEvent, QTimer
from PyQt5.QtWidgets import QApplication, QWidget

from dsp.errors import BackscatterError
from gui.source import SourceThread
from gui.theme import apply_theme
from gui.window import MainWindow

CONNECT_SCREENSHOT_AFTER_S = 10.0  # --screenshot without --exit-after-s on a live endpoint
REPLAY_SETTLE_MS = 400  # after a replay ends: let the last draws land before the screenshot


class ScreenshotError(BackscatterError, RuntimeError):
    """The screenshot could not be written."""


def save_screenshot(widget: QWidget, path: Path) -> None:
    """Render ``widget`` (works offscreen) and write it as an image; raises :class:`ScreenshotError`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    QApplication.processEvents()
    if not widget.grab().save(str(path)):
        raise ScreenshotError(f"cannot write the screenshot {path}")


def run_app(
    source: SourceThread,
    theme: str = "dark",
    screenshot: Path | None = None,
    exit_after_s: float | None = None,
    no_data_after_s: float = 5.0,
    size: tuple[int, int] = (1600, 1000),
    calibration_source: str = "",
    lab: dict | None = None,
) -> None:
    """Show the monitor for ``source`` until the window closes (or the timed exit).

    With ``exit_after_s`` the window closes after that many seconds; with ``screenshot``
    it is saved just before.  A screenshot without ``exit_after_s`` is taken when a
    replay ends, or after :data:`CONNECT_SCREENSHOT_AFTER_S` on a live endpoint.
    """
    app = QApplication.instance() or QApplication([sys.argv[0]])
    win = MainWindow(
        source, apply_theme(app, theme), no_data_after_s, calibration_source=calibration_source, **(lab or {})
    )
    win.resize(*size)
    errors: list[str] = []

    def finish() -> None:
        if not win.isVisible():
            return
        win.tick()
        if screenshot is not None:
            try:
                save_screenshot(win, screenshot)
            except ScreenshotError as exc:
                errors.append(str(exc))
        win.close()

    def finish_when_replayed() -> None:
        st = source.inbox.status()
        if st.finished or st.error:
            watch.stop()
            QTimer.singleShot(REPLAY_SETTLE_MS, finish)

    watch = QTimer(win)
    if exit_after_s is not None:
        QTimer.singleShot(round(exit_after_s * 1000), finish)
    elif screenshot is not None and source.inbox.status().mode == "replay":
        watch.timeout.connect(finish_when_replayed)
        watch.start(100)
    elif screenshot is not None:
        QTimer.singleShot(round(CONNECT_SCREENSHOT_AFTER_S * 1000), finish)
    win.closed.connect(app.quit)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, lambda *_: win.close())  # the draw timer lets Python see it
    win.show()
    source.start()
    try:
        app.exec_()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    source.stop()
    # delete the window now, not whenever Python's cyclic collector reaches it (its slots and
    # pyqtgraph's items hold it in cycles): freed at a random allocation, it could be inside a
    # paint of another window of the same process (a second run, a test)
    win.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.DeferredDelete)
    if errors:
        raise ScreenshotError(errors[0])
