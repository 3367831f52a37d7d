"""Status bar: link state, rates, losses, drops, skipped draws, CFO and SNR per band."""

from __future__ import annotations

from PyQt5.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from gui.model import ResultsModel
from gui.theme import BANDS, STATE_COLORS, clipped_label


def _rate(sps: float) -> str:
    return f"{sps / 1e6:.2f} MS/s"


def status_texts(model: ResultsModel, now_s: float, no_data_after_s: float) -> dict[str, str]:
    """The text of each status field (pure function of the model)."""
    h, st = model.health, model.source
    state, link = model.link_state(now_s, no_data_after_s)
    rate_hz = h.get("capture_rate_hz") or (st.capture_rate_hz if st else None)
    if h:
        throughput = (
            f"throughput {_rate(h.get('throughput_sps', 0.0))}, "
            f"{h.get('realtime_factor', 0.0):.2f}x real time, queue {h.get('queue_depth', 0)}"
        )
    else:
        throughput = "throughput n/a (no health messages)"
    worker = sum((h.get("messages_dropped") or {}).values())
    gui = model.bad_messages
    if st:
        gui = sum(st.decode_errors.values()) + st.lost_in_transit + sum(st.overflow.values())
    skipped = ", ".join(f"{k} {v}" for k, v in model.skipped.items())
    bands = []
    for b in BANDS:
        if b in model.cfo_hz or b in model.snr_db:
            cfo = f"CFO {model.cfo_hz[b]:+.1f} Hz" if b in model.cfo_hz else "CFO n/a"
            snr = f"SNR {model.snr_db[b]:.1f} dB" if b in model.snr_db else "SNR n/a"
            bands.append(f"{b}: {cfo}, {snr}")
    return {
        "state": state,
        "link": link,
        "rate": f"sample rate {_rate(rate_hz)}" if rate_hz else "sample rate n/a",
        "throughput": throughput,
        "lost": f"samples lost {model.samples_lost} ({h.get('gaps', model.gaps)} gaps)",
        "dropped": f"messages dropped: worker {worker}, GUI {gui}",
        "skipped": f"not drawn (newer arrived): {skipped}",
        "bands": " · ".join(bands) if bands else "CFO/SNR per band: n/a",
        "timing": timing_text(model.stats),
    }


def _fmt(v: object, spec: str, unit: str) -> str:
    return "n/a" if not isinstance(v, (int, float)) or isinstance(v, bool) else f"{v:{spec}}{unit}"


def timing_text(stats: dict) -> str:
    """Sample-timing status from the newest ``stats`` message; "n/a" for fields it lacks.

    The drift fields are the stream's (one sample clock for every band); ``acquired`` is per band.
    """
    if not stats:
        return "timing: n/a (no stats messages)"
    locked = stats.get("timing_locked")
    lock = "n/a" if locked is None else ("locked" if locked else "NOT locked")
    acquired = stats.get("acquired") or {}
    per_band = ", ".join(f"{b} {'acq' if acquired[b] else 'searching'}" for b in BANDS if b in acquired)
    return (
        f"timing: {lock}, drift {_fmt(stats.get('timing_drift_ppm'), '+.3f', ' ppm')} "
        f"(measured {_fmt(stats.get('timing_drift_measured_ppm'), '+.3f', ' ppm')}), "
        f"error {_fmt(stats.get('timing_error_samples'), '+.2f', ' samples')}"
        + (f"; {per_band}" if per_band else "")
    )


def dropped_details(model: ResultsModel) -> str:
    """Tooltip of the dropped-messages field: the reasons."""
    h, st = model.health, model.source
    lines = [f"worker {k}: {v}" for k, v in (h.get("messages_dropped") or {}).items()]
    lines.append(f"GUI malformed fields: {model.bad_messages}")
    if st:
        lines += [f"GUI decode {k}: {v}" for k, v in st.decode_errors.items()]
        lines += [f"GUI queue overflow {k}: {v}" for k, v in st.overflow.items()]
        lines.append(f"lost in transit (sequence jumps): {st.lost_in_transit}")
    return "\n".join(lines)


class StatusPanel(QWidget):
    """Three rows of labels for the window's status bar; ``labels[key]`` follows :func:`status_texts`."""

    ROWS = (("link", "rate", "throughput"), ("lost", "dropped", "skipped"), ("bands", "timing"))

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        rows = QVBoxLayout(self)
        rows.setContentsMargins(4, 0, 4, 0)
        rows.setSpacing(1)
        self.labels: dict[str, QLabel] = {}
        for keys in self.ROWS:
            row = QHBoxLayout()
            row.setSpacing(24)
            for key in keys:
                self.labels[key] = clipped_label()
                row.addWidget(self.labels[key])
            row.addStretch(1)
            rows.addLayout(row)
        self.state = "waiting"
        self._styled = ""

    def refresh(
        self, model: ResultsModel, now_s: float, no_data_after_s: float, paused: bool = False
    ) -> None:
        texts = status_texts(model, now_s, no_data_after_s)
        state = texts.pop("state")
        if paused:
            texts["link"] += " · display paused (results still counted)"
        for key, text in texts.items():
            if self.labels[key].text() != text:  # an unchanged label costs no relayout
                self.labels[key].setText(text)
        if state != self._styled:  # a style sheet change re-polishes the widget: only on change
            color = STATE_COLORS.get(state, "#888888")
            self.labels["link"].setStyleSheet(f"color: {color}; font-weight: bold;")
            self._styled = state
        self.state = state
        tip = dropped_details(model)
        if self.labels["dropped"].toolTip() != tip:
            self.labels["dropped"].setToolTip(tip)
