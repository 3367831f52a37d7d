"""The worker's stream status and the GUI's link label: live (keeping up), behind (receiving but
slower than the IQ arrives) and stalled (no IQ), told apart on the wire and on screen."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from gui.inbox import SourceStatus
from gui.model import ResultsModel
from gui.theme import STATE_COLORS
from sdr.transport import IQSubscriber
from sdr.transport.codec import decode, encode_iq, encode_result
from sdr.worker import StreamWorker
from sdr.worker_report import STALLED_AFTER_S
from tests.test_gui import ScriptedSource

RATE_HZ = 30.72e6
CHUNK_S = 0.02


class PacedFeed:
    """Stands in for the worker's IQ subscriber: one message of ``CHUNK_S`` every ``CHUNK_S`` of
    wall time (a streamer paced to real time) for ``feed_s``, then nothing.  A message due while
    the worker was not reading is handed over at once (as ZeroMQ's queue would).  The accounting
    (sequence, samples lost) is a real :class:`IQSubscriber`'s, fed the encoded frames."""

    def __init__(self, wf, feed_s: float):
        self.wf, self.feed_s = wf, feed_s
        self.n = round(CHUNK_S * RATE_HZ)
        self.payload = np.zeros((1, self.n), np.complex64)
        self.sub = IQSubscriber("inproc://paced-feed-never-bound", mode="pull")
        self.sent = 0
        self.t0: float | None = None

    def __getattr__(self, name):  # counters, drops, samples_lost: the real subscriber's
        return getattr(self.sub, name)

    def recv(self, timeout_s: float):
        now = time.monotonic()
        if self.t0 is None:
            self.t0 = now
        if (self.sent + 1) * CHUNK_S > self.feed_s:  # the streamer has gone quiet
            time.sleep(timeout_s)
            return None
        wait = self.t0 + (self.sent + 1) * CHUNK_S - now
        if wait > timeout_s:
            time.sleep(timeout_s)
            return None
        time.sleep(max(wait, 0.0))
        frames = encode_iq(
            stream_id="ab" * 16,
            seq=self.sent,
            capture_index=self.sent * self.n,
            time_s=self.sent * CHUNK_S,
            capture_rate_hz=RATE_HZ,
            channels=[("central", self.wf.band_centers_hz["central"])],
            waveform=self.wf.to_dict(),
            source="emulator",
            iq=self.payload,
            fmt="fc32",
        )
        self.sent += 1
        return self.sub.accept(frames)

    def close(self) -> None:
        self.sub.close()


class TimedReceiver:
    """A receiver that needs ``1 / realtime_factor`` seconds of work per stream second."""

    defer_ranging = False

    def __init__(self, realtime_factor: float):
        self.realtime_factor = realtime_factor

    def push(self, iq: np.ndarray, lost: int) -> list:
        time.sleep(iq.shape[1] / RATE_HZ / self.realtime_factor)
        return []

    def flush(self) -> list:
        return []


class WirePublisher:
    """Keeps every health message as a consumer decodes it (encoded and decoded: the new fields
    pass the schema both ways)."""

    def __init__(self):
        self.health: list[dict] = []
        self.seq = 0

    def send(self, kind, fields, arrays=None):
        msg = decode(encode_result(kind, fields, arrays or {}, stream_id="cd" * 16, seq=self.seq))
        self.seq += 1
        if kind == "health":
            self.health.append(msg.fields)


def run_worker(wf, *, realtime_factor: float, feed_s: float, run_s: float, **kw) -> list[dict]:
    feed, pub = PacedFeed(wf, feed_s), WirePublisher()
    worker = StreamWorker(feed, pub, lambda h: TimedReceiver(realtime_factor), health_period_s=0.25, **kw)
    try:
        worker.run(threading.Event(), duration_s=run_s)
    finally:
        feed.close()
    assert pub.health, "no health message"
    return pub.health


def test_a_worker_keeping_up_is_live_and_not_behind(wf):
    health = run_worker(wf, realtime_factor=3.0, feed_s=10.0, run_s=1.3)
    late = health[1:]  # after the first period
    assert all(h["stream_state"] == "live" for h in late), health
    assert not any(h["behind"] for h in late), health
    assert all(h["backlog_s"] <= 5 * CHUNK_S for h in late), health  # a burst at most, never growing
    assert late[-1]["realtime_factor"] > 1.5


@pytest.mark.parametrize(
    ("queue_max", "realtime_factor"), [(64, 0.25), (4, 0.5)], ids=["deep-queue", "full-queue"]
)
def test_a_worker_fed_but_slower_than_real_time_is_live_and_behind(wf, queue_max, realtime_factor):
    """IQ keeps arriving; the receiver needs 1 / ``realtime_factor`` s per stream second.  Before
    this change the state was judged by the arrival time of the message being processed: with
    the deep queue at 0.25x that message is 0.75 t old at time t, so from t = 1.33 s the worker
    said "stalled" (the GUI: "the worker receives no IQ").  The full queue keeps the reader
    waiting with a message in hand: receiving too."""
    health = run_worker(wf, realtime_factor=realtime_factor, feed_s=10.0, run_s=1.8, queue_max=queue_max)
    late = health[1:]
    assert len(late) >= 4, health
    assert all(h["stream_state"] == "live" for h in late), health
    assert all(h["behind"] for h in late), health
    # the receiver sleeps 1 / realtime_factor s per stream second: that is the best the worker can
    # do (10 % for timer granularity); threads, the GIL and a loaded machine only lower it (a clean
    # clone's CI run measured 0.13 at 0.25), so below, a third of it still shows the pace measured
    assert realtime_factor / 3 <= late[-1]["realtime_factor"] <= 1.1 * realtime_factor
    if queue_max == 64:  # the backlog grows by 0.75 s of stream per second
        assert late[-1]["backlog_s"] > 0.5, late[-1]
    else:  # the queue is full and the reader holds one more: 5 chunks
        assert 2 * CHUNK_S <= late[-1]["backlog_s"] <= (queue_max + 1) * CHUNK_S + 1e-9, late[-1]


def test_a_worker_whose_iq_stops_is_stalled_not_behind(wf):
    health = run_worker(wf, realtime_factor=3.0, feed_s=0.3, run_s=0.3 + STALLED_AFTER_S + 0.6)
    assert any(h["stream_state"] == "live" for h in health), health
    assert health[-1]["stream_state"] == "stalled" and health[-1]["behind"] is False, health[-1]
    assert health[-1]["backlog_s"] == 0.0


# ----- the GUI's label ---------------------------------------------------------------------
def _health(state: str, **more) -> dict:
    return {
        "time_s": 10.0,
        "throughput_sps": 3.0e7,
        "realtime_factor": more.pop("realtime_factor", 1.2),
        "queue_depth": 0,
        "messages_received": 500,
        "messages_dropped": {},
        "samples_lost": 0,
        "gaps": 0,
        "stream_state": state,
        **more,
    }


CASES = {
    "live": (_health("live", behind=False, backlog_s=0.0), "live", "live"),
    "behind": (
        _health("live", behind=True, backlog_s=3.42, realtime_factor=0.62),
        "behind",
        "behind: IQ arrives, worker at 0.62x real time, 3.4 s queued",
    ),
    "stalled": (
        _health("stalled", behind=False, backlog_s=0.0),
        "stalled",
        "stalled: the worker receives no IQ",
    ),
    # a worker from before the new fields: its own word, as before
    "old-worker-live": (_health("live"), "live", "live"),
}


@pytest.mark.parametrize("case", CASES)
def test_link_state_tells_live_behind_and_stalled_apart(case):
    fields, state, text = CASES[case]
    m = ResultsModel()
    m.source = SourceStatus("tcp://h:1", "connect", started_s=100.0, last_message_s=100.5, messages=3)
    m.handle("health", fields, {})
    assert m.link_state(101.0, 5.0) == (state, text)


def test_link_state_of_a_stall_with_iq_still_queued_and_of_odd_fields():
    m = ResultsModel()
    m.source = SourceStatus("tcp://h:1", "connect", started_s=100.0, last_message_s=100.5, messages=3)
    m.handle("health", _health("stalled", behind=False, backlog_s=1.25), {})
    assert m.link_state(101.0, 5.0) == ("stalled", "stalled: the worker receives no IQ, 1.2 s queued")
    # foreign values never break the label: a non-boolean behind is not behind, odd numbers unsaid
    m.handle("health", _health("live", behind="yes", backlog_s=1.0), {})
    assert m.link_state(101.0, 5.0) == ("live", "live")
    m.handle("health", _health("live", behind=True, backlog_s=float("nan"), realtime_factor="x"), {})
    assert m.link_state(101.0, 5.0) == ("behind", "behind: IQ arrives, worker")


def test_the_new_health_fields_are_optional_and_checked_on_the_wire():
    old = _health("live")  # from a worker before them: still valid
    assert decode(encode_result("health", old, {}, stream_id="ab" * 16, seq=0)).fields == old
    with pytest.raises(ValueError, match="behind"):
        encode_result("health", {**old, "behind": 1}, {}, stream_id="ab" * 16, seq=1)
    with pytest.raises(ValueError, match="backlog_s"):
        encode_result("health", {**old, "backlog_s": "3 s"}, {}, stream_id="ab" * 16, seq=1)


@pytest.mark.usefixtures("gc_in_paint")
def test_the_status_bar_shows_each_case_in_its_colour(window, qapp):
    src = ScriptedSource()
    win = window(src)
    labels = win.status.labels
    for case in ("live", "behind", "stalled"):
        fields, state, text = CASES[case]
        src.inbox.put("health", fields, {})
        win.tick()
        qapp.processEvents()  # the layout sizes the label to its new text
        assert win.status.state == state
        assert labels["link"].text() == text
        assert STATE_COLORS[state] in labels["link"].styleSheet()
        advance = labels["link"].fontMetrics().horizontalAdvance(text)
        assert advance <= labels["link"].width(), (text, labels["link"].width())  # not cut off


def test_the_worker_s_status_line_says_behind_with_its_backlog():
    from backscatter.commands.worker_cmd import status_line

    h = {**_health("live"), "capture_rate_hz": RATE_HZ, "packets": 3, "epochs": 3, "latency_p95_s": None}
    assert status_line(h).startswith("[live   ]") and "queue 0," in status_line(h)
    line = status_line({**h, "behind": True, "backlog_s": 2.34, "queue_depth": 64, "realtime_factor": 0.4})
    assert line.startswith("[behind ]") and "0.4x rt, queue 64 (2.3 s)," in line
    assert status_line({**h, "stream_state": "stalled", "behind": False}).startswith("[stalled]")
