"""The GUI's state, updated from result messages; plain Python, no Qt (testable without drawing).

Every message goes through :meth:`ResultsModel.handle`: packets all reach the log and
the running BER, epochs all reach the range history.  Topics drawn as a whole
(the CIRs of the newest epoch, the newest spectrum, the newest constellation) are
kept in a :class:`LatestSlot` that counts messages replaced before they were drawn.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gui.inbox import SourceStatus
from gui.series import EpochSeries

RATE_WINDOW_S = 10.0  # packet rate over this much stream time


@dataclass
class PacketRow:
    """One line of the packet log."""

    time_s: float
    tag_id: int
    crc_ok: bool
    bit_errors: int | None
    ebn0_db: float
    n_bits: int


class LatestSlot:
    """Newest value of a topic that is drawn whole; counts values replaced before being drawn."""

    def __init__(self) -> None:
        self.value: Any = None
        self.pending = False
        self.skipped = 0

    def offer(self, value: Any) -> None:
        if self.pending:
            self.skipped += 1
        self.value = value
        self.pending = True

    def take(self) -> Any:
        """The value if it has not been drawn yet (then it counts as drawn), else ``None``."""
        if not self.pending:
            return None
        self.pending = False
        return self.value


@dataclass
class CalibrationRecord:
    time_s: float
    group_delay_s: dict[str, float]
    ripple_deg: dict[str, float]


@dataclass
class ResultsModel:
    """Running state of the monitor; ``history`` bounds every per-message series."""

    history: int = 5000
    log_rows: int = 10_000
    received: dict[str, int] = field(default_factory=dict)
    # communication
    packets: int = 0
    crc_ok: int = 0
    packets_checked: int = 0  # packets whose bit errors are known
    bits_checked: int = 0
    bit_errors: int = 0
    # newest non-plot state
    stats: dict = field(default_factory=dict)
    health: dict = field(default_factory=dict)
    snr_db: dict[str, float] = field(default_factory=dict)
    cfo_hz: dict[str, float] = field(default_factory=dict)
    gaps: int = 0
    gap_samples_lost: int = 0
    calibration: dict = field(default_factory=dict)
    source: SourceStatus | None = None
    ranging_version: int = 0  # +1 per epoch: the range panel redraws when it changes
    calibration_version: int = 0
    packet_version: int = 0
    bad_messages: int = 0  # messages whose fields did not have the expected types

    def __post_init__(self) -> None:
        self.log: deque[PacketRow] = deque(maxlen=self.log_rows)
        self._packet_times_s: deque[float] = deque(maxlen=self.history)
        self.series = EpochSeries(self.history)  # per-epoch ranges and truth, preallocated
        self.calibration_history: deque[CalibrationRecord] = deque(maxlen=self.history)
        self.cir = LatestSlot()  # (fields, arrays) of the newest epoch
        self.spectrum = LatestSlot()  # (fields, arrays) of the newest spectrum
        self.constellation = LatestSlot()  # (soft complex [bits], bits uint8 [bits])

    # ----- input -----------------------------------------------------------
    def handle(self, kind: str, fields: dict, arrays: dict[str, np.ndarray]) -> None:
        """Update the state from one ``(kind, fields, arrays)`` result message."""
        self.received[kind] = self.received.get(kind, 0) + 1
        handler = getattr(self, f"_on_{kind}", None)
        if handler is None:
            return
        try:
            handler(fields, arrays)
        except (AttributeError, KeyError, TypeError, ValueError):  # a foreign or malformed message
            self.bad_messages += 1

    def _on_packet(self, f: dict, a: dict) -> None:
        bits = np.asarray(f.get("bits", []), np.uint8)
        errors = f.get("bit_errors")
        self.packets += 1
        self.crc_ok += bool(f.get("crc_ok"))
        if errors is not None:
            self.packets_checked += 1
            self.bits_checked += bits.size
            self.bit_errors += int(errors)
        t = float(f.get("time_s", math.nan))
        row = PacketRow(
            t,
            int(f.get("tag_id", 0)),
            bool(f.get("crc_ok")),
            errors,
            float(f.get("ebn0_db", math.nan)),
            bits.size,
        )
        self.log.append(row)
        self._packet_times_s.append(t)
        self.packet_version += 1
        if "soft" in a:
            self.constellation.offer((np.asarray(a["soft"]), bits))

    def _on_epoch(self, f: dict, a: dict) -> None:
        ranges = {m: float(v) for m, v in f.get("range_m", {}).items()}
        truth = f.get("range_true_m")
        self.series.append(float(f.get("time_s", math.nan)), ranges, None if truth is None else float(truth))
        self.snr_db.update(f.get("snr_db", {}))
        if not self.cfo_hz:
            self.cfo_hz.update(f.get("cfo_hz", {}))
        self.ranging_version += 1
        self.cir.offer((f, a))

    def _on_stats(self, f: dict, a: dict) -> None:
        self.stats = f
        self.cfo_hz.update(f.get("cfo_hz", {}))

    def _on_health(self, f: dict, a: dict) -> None:
        self.health = f

    def _on_gap(self, f: dict, a: dict) -> None:
        self.gaps += 1
        self.gap_samples_lost += int(f.get("samples_lost", 0))

    def _on_spectrum(self, f: dict, a: dict) -> None:
        self.spectrum.offer((f, a))

    def _on_calibration(self, f: dict, a: dict) -> None:
        self.calibration = f
        t = f.get("time_s")
        t = float(t) if t is not None else float(len(self.calibration_history))
        self.calibration_history.append(
            CalibrationRecord(t, dict(f.get("group_delay_s") or {}), dict(f.get("ripple_deg") or {}))
        )
        self.calibration_version += 1

    # ----- derived values ---------------------------------------------------
    @property
    def ber(self) -> float | None:
        """Bit error ratio over every packet whose errors are known."""
        return self.bit_errors / self.bits_checked if self.bits_checked else None

    def packet_rate_hz(self) -> float | None:
        """Packets per second of stream time over the last :data:`RATE_WINDOW_S`."""
        t = [x for x in self._packet_times_s if math.isfinite(x)]
        if len(t) < 2:
            return None
        recent = [x for x in t if x >= t[-1] - RATE_WINDOW_S]
        span = recent[-1] - recent[0]
        return (len(recent) - 1) / span if len(recent) >= 2 and span > 0 else None

    @property
    def methods(self) -> list[str]:
        return self.series.methods

    def range_series(self) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """``time_s [epoch]``, ``{method: range_m [epoch]}`` (NaN where absent), ``range_true_m``
        (read-only views of the newest ``history`` epochs)."""
        return self.series.view()

    def range_errors(self) -> dict[str, np.ndarray]:
        """``{method: range_m - range_true_m}`` over the epochs with a known truth and range."""
        _, ranges, truth = self.range_series()
        out = {}
        for m, r in ranges.items():
            e = r - truth
            out[m] = e[np.isfinite(e)]
        return out

    def calibration_series(self) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
        """``time_s``, ``{band: group_delay_s}``, ``{band: ripple_deg}`` over the calibration history."""
        h = self.calibration_history
        bands = sorted({b for r in h for b in (*r.group_delay_s, *r.ripple_deg)})
        t = np.array([r.time_s for r in h], float)
        gd = {b: np.array([r.group_delay_s.get(b, math.nan) for r in h], float) for b in bands}
        rip = {b: np.array([r.ripple_deg.get(b, math.nan) for r in h], float) for b in bands}
        return t, gd, rip

    @property
    def skipped(self) -> dict[str, int]:
        """Plot updates replaced by newer messages before they were drawn."""
        return {
            "CIR": self.cir.skipped,
            "spectrum": self.spectrum.skipped,
            "constellation": self.constellation.skipped,
        }

    @property
    def samples_lost(self) -> int:
        return int(self.health.get("samples_lost", self.gap_samples_lost))

    def link_state(self, now_s: float, no_data_after_s: float) -> tuple[str, str]:
        """``(state, text)``: waiting / live / behind / stalled / no-data / done / error, ``now_s``
        monotonic.  ``behind``: the worker receives IQ but does not keep up (its health message's
        ``behind``), with its real-time factor and backlog; ``stalled``: it receives none."""
        st = self.source
        if st is None:
            return "waiting", "waiting for a source"
        if st.error:
            return "error", f"error: {st.error}"
        if st.mode == "replay":
            if st.finished:
                return "done", st.note or "replay finished"
            return ("live", f"replaying {st.note}") if st.messages else ("waiting", "replay starting")
        last = st.last_message_s
        silent_s = now_s - (last if last is not None else st.started_s)
        if silent_s >= no_data_after_s:
            how = "" if st.connected is None else (" (connected)" if st.connected else " (not connected)")
            if st.note:
                how += f" ({st.note})"
            return "no-data", f"no data from {st.description} for {silent_s:.0f} s{how}"
        if last is None:
            return "waiting", f"waiting for {st.description}"
        h = self.health
        stream = h.get("stream_state")
        backlog = _finite(h.get("backlog_s"))
        queued = f", {backlog:.1f} s queued" if backlog is not None and backlog >= 0.05 else ""
        if stream == "stalled":
            return "stalled", f"stalled: the worker receives no IQ{queued}"
        if stream == "waiting":
            return "waiting", "worker is waiting for IQ"
        if stream == "live" and h.get("behind") is True:  # receiving, but not keeping up
            rtf = _finite(h.get("realtime_factor"))
            pace = f" at {rtf:.2f}x real time" if rtf else ""
            return "behind", f"behind: IQ arrives, worker{pace}{queued}"
        return "live", "live"


def _finite(v: object) -> float | None:
    """``v`` as a float when it is a finite number (health fields come from other processes)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return None
