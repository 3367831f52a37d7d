"""What the streaming worker (:mod:`sdr.worker`) reports: its counters (:class:`WorkerStats`), the
``health`` message each period, the ``spectrum`` message, the stream state, and the final summary
(``sdr/MESSAGES.md``).
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.signal

from sdr.control import ControlServer
from sdr.latency import LatencyHistogram
from sdr.ranging_pool import RangingPool
from sdr.results_wire import spectrum_to_wire
from sdr.transport import IQHeader, IQMessage, IQSubscriber, ResultPublisher

SPECTRUM_BINS = 512
STALLED_AFTER_S = 1.0
"""No IQ message read for this long (and none held back by a full queue): ``stalled``."""


@dataclass
class WorkerStats:
    """What the worker has done so far (the ``health`` message and the final summary)."""

    messages: int = 0
    samples: int = 0  # per channel, capture rate
    busy_s: float = 0.0  # the receiver thread's work per message
    ranging_busy_s: float = 0.0  # the ranging pool's work (its processes), when there is one
    convert_s: float = 0.0  # the reader thread's fc32 handling (sc16 goes to the receiver as received:
    # about 0)
    packets: int = 0
    crc_ok: int = 0
    epochs: int = 0
    gaps: int = 0
    restarts: int = 0
    queue_dropped: int = 0
    published: Counter = field(default_factory=Counter)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)  # packets and epochs
    stats_latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    period_latencies_s: list = field(default_factory=list)  # packets and epochs since the last health


def latency_summary(values: list) -> dict:
    """Exact ``p50_s``, ``p95_s``, ``max_s`` and ``count`` of a short list (one health period)."""
    if not values:
        return {"p50_s": None, "p95_s": None, "max_s": None, "count": 0}
    a = np.asarray(values)
    return {
        "p50_s": float(np.percentile(a, 50)),
        "p95_s": float(np.percentile(a, 95)),
        "max_s": float(a.max()),
        "count": int(a.size),
    }


class WorkerReports:
    """The reporting half of :class:`sdr.worker.StreamWorker` (a mixin over its state)."""

    stats: WorkerStats
    pub: ResultPublisher
    sub: IQSubscriber
    control: ControlServer | None
    status: Callable[[dict], None] | None
    health_period_s: float
    ranging_processes: int
    _header: IQHeader | None
    _ranging: RangingPool | None
    _q: queue.Queue
    _queued_lock: threading.Lock
    _queued_samples: int
    _queued_bytes: int
    _in_hand: bool
    _in_hand_samples: int
    _last_rx_t: float | None
    _unreceivable: Counter
    _stream_time_s: float

    def _publish_spectrum(self, msg: IQMessage) -> None:
        h = msg.header
        iq = msg.iq[:, : 16 * SPECTRUM_BINS]
        x = iq.astype(np.float32).view(np.complex64)[..., 0] if h.format == "sc16" else iq
        if x.shape[1] < SPECTRUM_BINS:
            return
        f, p = scipy.signal.welch(
            x, fs=h.capture_rate_hz, nperseg=SPECTRUM_BINS, return_onesided=False, axis=-1
        )
        p = np.fft.fftshift(p, axes=-1)
        scale = 1.0 / 32767**2 if h.format == "sc16" else 1.0
        psd = {c.band: 10 * np.log10(p[i] * scale + 1e-30) for i, c in enumerate(h.channels)}
        first = {c.band: c.rf_center_hz - h.capture_rate_hz / 2 for c in h.channels}
        self.pub.send(*spectrum_to_wire(h.capture_index / h.capture_rate_hz, psd, first, float(f[1] - f[0])))

    def state(self, now: float) -> str:
        """``waiting`` (no IQ yet), ``live`` (IQ read in the last :data:`STALLED_AFTER_S`, or a
        message held back by a full queue) or ``stalled`` (no IQ read for that long).

        Judged by the reader's arrivals, not by the receiver's progress: a receiver behind real
        time still receives (``behind`` in the health message says how far behind it is).
        """
        if self._last_rx_t is None:
            return "waiting"
        return "live" if self._in_hand or now - self._last_rx_t < STALLED_AFTER_S else "stalled"

    def backlog_s(self) -> float:
        """Stream seconds read off the socket and not yet given to the receiver (its queue and
        the reader's message in hand)."""
        h = self._header
        with self._queued_lock:
            samples = self._queued_samples + self._in_hand_samples
        return samples / h.capture_rate_hz if h is not None and samples > 0 else 0.0

    def _publish_health(self, now: float, period: dict) -> None:
        h = self._header
        rate = h.capture_rate_hz if h else None
        n_ch = h.n_channels if h else 0
        stream_s = period["samples"] / rate if rate else 0.0
        # the slower stage sets the pace: the receiver's thread, or the ranging pool
        ranging_s = self.stats.ranging_busy_s - period.get("ranging_from_s", 0.0)
        stage_s = max(period["busy_s"], ranging_s)
        lat = latency_summary(self.stats.period_latencies_s)
        self.stats.period_latencies_s.clear()
        state = self.state(now)
        fields = {
            "time_s": self._stream_time_s,
            "throughput_sps": period["samples"] * n_ch / self.health_period_s,
            "realtime_factor": stream_s / stage_s if stage_s > 0 else 0.0,
            "queue_depth": self._q.qsize(),
            "queue_bytes": self._queued_bytes,
            "messages_received": self.sub.counters.received,
            "messages_dropped": {**dict(self.sub.drops), **dict(self._unreceivable)},
            "samples_lost": self.sub.samples_lost,
            "gaps": self.stats.gaps,
            "stream_state": state,
            # receiving but not keeping up: the receiver never emptied its queue this period
            "behind": state == "live" and not period.get("caught_up", True),
            "backlog_s": self.backlog_s(),
            "capture_rate_hz": rate,
            "latency_p95_s": lat["p95_s"],
            "packets": self.stats.packets,
            "epochs": self.stats.epochs,
        }
        if self._ranging is not None:
            fields["ranging_realtime_factor"] = stream_s / ranging_s if ranging_s > 0 else 0.0
            fields["ranging_pending"] = len(self._ranging)
        if self.control is not None:
            fields["control"] = {"applied": self.control.applied, "dropped": dict(self.control.dropped)}
        self.pub.send("health", fields, {})
        if self.status:
            self.status(fields)

    def summary(self, wall_s: float) -> dict:
        s, h = self.stats, self._header
        stream_s = s.samples / h.capture_rate_hz if h else 0.0
        stage_s = max(s.busy_s, s.ranging_busy_s)  # the slower of receiver and ranging pool
        return {
            "messages": s.messages,
            "samples_per_channel": s.samples,
            "stream_s": stream_s,
            "wall_s": wall_s,
            "busy_s": s.busy_s,
            "realtime_factor": stream_s / stage_s if stage_s > 0 else None,
            "convert_s": s.convert_s,
            "ranging_processes": self.ranging_processes,
            "ranging_busy_s": s.ranging_busy_s,
            "realtime_factor_one_core": (
                stream_s / (s.busy_s + s.convert_s + s.ranging_busy_s) if s.busy_s > 0 else None
            ),
            "packets": s.packets,
            "crc_ok": s.crc_ok,
            "epochs": s.epochs,
            "published": dict(s.published),
            "samples_lost": self.sub.samples_lost,
            "gaps": s.gaps,
            "messages_dropped": {**dict(self.sub.drops), **dict(self._unreceivable)},
            "messages_missed": self.sub.counters.messages_missed,
            "restarts": s.restarts,
            "latency": s.latency.summary(),
            "stats_latency": s.stats_latency.summary(),
        }
