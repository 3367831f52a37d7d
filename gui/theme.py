"""Dark and light themes: Qt palette, pyqtgraph defaults and the fixed colours of bands and methods."""

from __future__ import annotations

from dataclasses import dataclass

import pyqtgraph as pg
from PyQt5.QtCore import Qt
from PyQt5.QtGui import QColor, QPalette
from PyQt5.QtWidgets import QApplication, QLabel

from dsp.bands import RF_ORDER

BANDS = RF_ORDER  # by carrier frequency (dsp/bands.py)
BAND_COLORS = {"central": "#4c9be8", "lower": "#e8a33d", "upper": "#3fb56a"}
METHOD_COLORS = ("#e0556a", "#b07ce8", "#30b8c4", "#c2b13a")
METHOD_SYMBOLS = ("o", "t", "s", "d")
STATE_COLORS = {
    "live": "#3fb56a",
    "behind": "#d6c23a",
    "done": "#4c9be8",
    "waiting": "#c2a13a",
    "stalled": "#e8a33d",
    "no-data": "#e0556a",
    "error": "#e0556a",
}


@dataclass(frozen=True)
class Theme:
    name: str
    background: str
    foreground: str
    truth: str  # the ground-truth markers

    def method_color(self, index: int) -> str:
        return METHOD_COLORS[index % len(METHOD_COLORS)]

    def method_symbol(self, index: int) -> str:
        return METHOD_SYMBOLS[index % len(METHOD_SYMBOLS)]


THEMES = {
    "dark": Theme("dark", "#1b1d22", "#d4d7dd", "#f2f2f2"),
    "light": Theme("light", "#ffffff", "#202124", "#202124"),
}


def apply_theme(app: QApplication, name: str) -> Theme:
    """Set the Qt style and palette and pyqtgraph's colours; call before creating widgets."""
    theme = THEMES[name]
    pg.setConfigOptions(background=theme.background, foreground=theme.foreground, antialias=False)
    app.setStyle("Fusion")
    if name == "dark":
        pal = QPalette()
        base, window, text = QColor("#15171b"), QColor("#24272e"), QColor(theme.foreground)
        for role, color in (
            (QPalette.Window, window),
            (QPalette.WindowText, text),
            (QPalette.Base, base),
            (QPalette.AlternateBase, window),
            (QPalette.Text, text),
            (QPalette.Button, window),
            (QPalette.ButtonText, text),
            (QPalette.ToolTipBase, window),
            (QPalette.ToolTipText, text),
            (QPalette.Highlight, QColor("#3d6fb4")),
            (QPalette.HighlightedText, QColor("#ffffff")),
        ):
            pal.setColor(role, color)
        pal.setColor(QPalette.Disabled, QPalette.Text, QColor("#7a7f88"))
        pal.setColor(QPalette.Disabled, QPalette.ButtonText, QColor("#7a7f88"))
        app.setPalette(pal)
    else:
        app.setPalette(app.style().standardPalette())
    return theme


def styled_plot(plot: pg.PlotItem, bottom: str, left: str, title: str | None = None) -> pg.PlotItem:
    """Axis labels with units, a light grid, and no SI-prefix rescaling of the labels."""
    plot.setLabel("bottom", bottom)
    plot.setLabel("left", left)
    for axis in ("bottom", "left"):
        plot.getAxis(axis).enableAutoSIPrefix(False)
    plot.showGrid(x=True, y=True, alpha=0.25)
    if title:
        plot.setTitle(title, size="10pt")
    return plot


def clipped_label(text: str = "") -> QLabel:
    """A label whose long text is clipped instead of forcing the window wider."""
    label = plain_label(text)
    label.setMinimumWidth(1)
    return label


def plain_label(text: str = "") -> QLabel:
    """A label that shows its text as typed: strings from messages never render as rich text."""
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label
