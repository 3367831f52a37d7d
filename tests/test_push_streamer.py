"""The PUSH streamer when its consumer goes away: it does not hang, it counts and reports what no
consumer took, it goes on for the next consumer, its recording keeps every chunk, and a signal
stops it while it waits."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from app import stream as app_stream
from captures.reader import open_capture
from sdr.recorder import Recorder
from sdr.sources import Chunk, Pacer
from sdr.transport import IQPublisher, IQSubscriber

N = 20_000  # samples per chunk


@pytest.fixture
def ep(tmp_path):
    return f"ipc://{tmp_path}/iq"


def publisher(ep, wf, **kw) -> IQPublisher:
    return IQPublisher(
        ep,
        capture_rate_hz=wf.working_rate_hz,
        channels=[("central", wf.band_centers_hz["central"])],
        waveform=wf,
        source="emulator",
        mode="push",
        fmt="fc32",
        **kw,
    )


def chunk_iq(k: int, n: int = N) -> np.ndarray:
    return np.full((1, n), k + 1j * k, np.complex64)


def wait_for(cond, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while not (value := cond()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)
    return value


def test_a_consumer_that_exits_is_given_up_at_once_and_the_next_one_gets_the_stream(ep, wf):
    pub = publisher(ep, wf, send_timeout_s=2.0)
    subs = [IQSubscriber(ep, mode="pull")]
    try:
        sent = 0

        def send() -> float:
            nonlocal sent
            t = time.monotonic()
            assert pub.send(chunk_iq(sent), sent * N, sent * N / wf.working_rate_hz) is not None
            sent += 1
            return time.monotonic() - t

        send()  # waits for its first consumer
        assert subs[0].recv(timeout_s=5).header.seq == 0
        subs.pop().close()
        # the disconnect is seen by the socket monitor: given up well before the 2 s timeout
        t0 = time.monotonic()
        while not pub.unsent.dropping:
            send()
            assert time.monotonic() - t0 < 1.5, "the consumer's exit was not noticed"
        assert pub.unsent.reason == "the consumer disconnected" and pub.unsent.stretches == 1
        assert max(send() for _ in range(5)) < 0.1  # dropping costs no wait per message
        assert pub.unsent.messages >= 6 and pub.unsent.samples == pub.unsent.messages * N
        # a restarted consumer: the stream goes on from where it is
        last_dropped = sent - 1
        subs.append(IQSubscriber(ep, mode="pull"))
        wait_for(lambda: send() is not None and not pub.unsent.dropping, 5.0, "the new consumer")
        # ZeroMQ may still deliver the first message after a reconnect into the departed
        # consumer's closing pipe (it counts as sent): the consumer then sees one more missing
        # seq, never a wrong or repeated one.  So: send until it has one, then check it.
        first = wait_for(lambda: send() is not None and subs[0].recv(timeout_s=0.05), 5.0, "a message")
        assert last_dropped + 1 <= first.header.seq < sent  # every seq in between was used: a gap
        assert first.header.capture_index == first.header.seq * N
        np.testing.assert_array_equal(first.iq, chunk_iq(first.header.seq))
        rest = [subs[0].recv(timeout_s=5).header.seq for _ in range(sent - 1 - first.header.seq)]
        assert rest == list(range(first.header.seq + 1, sent))  # then in order, none lost
        assert pub.unsent.stretches == 1 and pub.consumers == 1 and not pub.unsent.dropping
    finally:
        for s in subs:
            s.close()
        pub.close(linger_s=0)


def test_a_consumer_that_takes_nothing_is_given_up_after_the_timeout_and_sees_the_gap(ep, wf):
    """Connected but not reading (hung): the send waits ``send_timeout_s``, then gives up; when
    the consumer reads again it gets the newest messages, with the loss reported."""
    timeout_s, big = 0.3, 200_000  # 1.6 MB messages: a few fill both queues and the socket
    pub = publisher(ep, wf, send_timeout_s=timeout_s, sndhwm=1)
    sub = IQSubscriber(ep, mode="pull", rcvhwm=1)
    try:
        k, waits = 0, []
        while not pub.unsent.dropping:
            t = time.monotonic()
            pub.send(chunk_iq(k, big), k * big, 0.0)
            waits.append(time.monotonic() - t)
            k += 1
            assert k < 200, "the consumer's queue never filled"
        assert pub.unsent.reason == f"no consumer took a message for {timeout_s:g} s"
        assert timeout_s <= waits[-1] < timeout_s + 1.0  # bounded: the timeout, not forever
        taken = k - 1
        for j in range(k, k + 3):  # dropped at once while the consumer stays full
            pub.send(chunk_iq(j, big), j * big, 0.0)
        assert pub.unsent.messages == 4 and pub.unsent.samples == 4 * big
        got = [sub.recv(timeout_s=5) for _ in range(taken)]  # the consumer wakes up
        assert [m.header.seq for m in got] == list(range(taken))
        j, deadline = k + 3, time.monotonic() + 5
        while pub.send(chunk_iq(j, big), j * big, 0.0) and pub.unsent.dropping:  # until room again
            assert time.monotonic() < deadline, "the consumer's room never came back"
            j += 1
            time.sleep(0.005)
        m = sub.recv(timeout_s=5)
        lost = pub.unsent.messages
        assert m.header.seq == j and m.messages_missed == lost and m.lost_before == lost * big
        assert sub.samples_lost == pub.unsent.samples == lost * big and pub.unsent.stretches == 1
    finally:
        sub.close()
        pub.close(linger_s=0)


class ScriptedSource:
    """Chunks of ``N`` samples, one every ``period_s``, until ``enough`` is set (or ``limit``)."""

    name = "emulator"

    def __init__(self, wf, enough: threading.Event, period_s: float = 0.005, limit: int = 2000):
        self.capture_rate_hz = wf.working_rate_hz
        self.channels = [("central", wf.band_centers_hz["central"])]
        self.waveform = wf
        self.enough, self.period_s, self.limit = enough, period_s, limit
        self.produced = 0

    def __iter__(self):
        for k in range(self.limit):
            if self.enough.is_set():
                return
            time.sleep(self.period_s)
            self.produced += 1
            yield Chunk(chunk_iq(k), k * N, k * N / self.capture_rate_hz)

    def stop(self) -> None:
        self.enough.set()

    def close(self) -> None:
        pass


def read_messages(
    ep: str, count: int, out: list, done: threading.Event | None = None, linger: threading.Event | None = None
) -> None:
    """A consumer that takes ``count`` messages, sets ``done``, and exits (once ``linger`` is set)."""
    with IQSubscriber(ep, mode="pull") as sub:
        while len(out) < count:
            m = sub.recv(timeout_s=10)
            assert m is not None
            out.append(m)
        if done is not None:
            done.set()
        if linger is not None:
            linger.wait(10)


def test_the_streamer_outlives_its_consumer_reports_the_loss_and_records_everything(ep, wf, tmp_path, capsys):
    enough, finished = threading.Event(), threading.Event()
    source = ScriptedSource(wf, enough)
    pub = publisher(ep, wf, send_timeout_s=1.0)
    rec = Recorder(tmp_path / "r.h5", origin=ep, recorder="test")
    first, second = [], []
    a = threading.Thread(target=read_messages, args=(ep, 10, first))
    a.start()
    out: dict = {}
    t0 = time.monotonic()
    pacer = Pacer(wf.working_rate_hz, realtime=False)
    streamer = threading.Thread(
        target=lambda: (
            out.update(app_stream.run_stream(source, pub, pacer=pacer, stop=threading.Event(), recorder=rec)),
            finished.set(),
        )
    )
    streamer.start()
    try:
        a.join(10)
        wait_for(lambda: pub.unsent.dropping, 3.0, "the streamer to give the first consumer up")
        # the second consumer stays connected until the stream has ended
        b = threading.Thread(target=read_messages, args=(ep, 10, second, enough, finished))
        b.start()
        streamer.join(5)
        assert not streamer.is_alive(), "the streamer hangs"
        b.join(10)
    finally:
        enough.set()
        finished.set()
        streamer.join(5)
        rec.close()
        pub.close(linger_s=0)
    assert time.monotonic() - t0 < 5
    s = out
    assert [m.header.seq for m in first] == list(range(10))
    assert second[0].header.seq > 10 and [m.header.seq for m in second] == list(
        range(second[0].header.seq, second[0].header.seq + 10)
    )
    assert s["consumer_gaps"] == 1 and s["unsent_messages"] >= 1 and not s["interrupted"]
    assert s["messages"] + s["unsent_messages"] == source.produced
    assert s["samples_sent"] + s["unsent_samples"] == source.produced * N
    err = capsys.readouterr().err
    assert err.count("warning: the consumer disconnected: dropping messages") == 1
    assert err.count("a consumer takes messages again after") == 1
    # the recording has every chunk the source produced, sent or not
    cap = open_capture(tmp_path / "r.h5")
    try:
        assert cap.n_samples == source.produced * N
        x = cap.read()
        np.testing.assert_array_equal(x[0, ::N], np.arange(source.produced) * (1 + 1j))
    finally:
        cap.close()


def test_sigterm_stops_a_streamer_blocked_on_its_consumer_and_keeps_the_recording(ep, wf, tmp_path):
    """A consumer that takes three messages and then nothing; no timeout (the old behaviour:
    wait however long): SIGTERM still ends the stream within a poll, and the recording holds
    every chunk sent before."""
    enough = threading.Event()
    source = ScriptedSource(wf, enough, period_s=0.0, limit=10_000)
    pub = publisher(ep, wf, sndhwm=1)
    sub = IQSubscriber(ep, mode="pull", rcvhwm=1)
    rec = Recorder(tmp_path / "r.h5", origin=ep, recorder="test")
    timer = threading.Timer(0.8, os.kill, (os.getpid(), signal.SIGTERM))
    try:
        with app_stream.StopOnSignal() as signals:
            signals.on_stop.append(source.stop)
            timer.start()
            t0 = time.monotonic()
            summary = app_stream.run_stream(
                source, pub, pacer=Pacer(wf.working_rate_hz, realtime=False), stop=signals.event, recorder=rec
            )
            stopped_s = time.monotonic() - t0
    finally:
        timer.cancel()
        rec.close()
        pub.close(linger_s=0)
        sub.close()
    assert summary["interrupted"] and 0.7 < stopped_s < 2.0
    assert 1 <= summary["messages"] < source.produced  # it was blocked, not done
    cap = open_capture(tmp_path / "r.h5")
    try:
        assert cap.n_samples == summary["messages"] * N == summary["samples_sent"]
    finally:
        cap.close()


def test_the_pacer_holds_its_schedule_by_the_time_a_consumer_held_the_streamer():
    """The wait before a consumer is given up held the streamer back, not the source: the next
    chunks are due that much later (no burst to catch up, no warning that the source is slow)."""
    now = [100.0]
    pacer = Pacer(1000.0, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert pacer.wait(0, 100) and now[0] == pytest.approx(100.1)
    now[0] += 5.0  # a send blocked until the consumer was given up
    pacer.hold(5.0)
    assert pacer.due_s(100, 100) == pytest.approx(105.2)
    assert pacer.wait(100, 100) and pacer.lag_s == 0.0


def test_a_stream_held_back_by_a_slow_consumer_blames_the_consumer_not_the_source(ep, wf, capsys):
    """A consumer that takes a message every 40 ms of a stream that has one every 0.65 ms: the
    paced stream falls behind its clock waiting in sends; the one warning says so (it used to
    say that the source produces samples slower than real time)."""
    enough = threading.Event()
    source = ScriptedSource(wf, enough, period_s=0.0)
    pub = publisher(ep, wf, send_timeout_s=5.0, sndhwm=1)
    got: list = []

    def slow_consumer() -> None:
        with IQSubscriber(ep, mode="pull", rcvhwm=1) as sub:
            while len(got) < 40:
                m = sub.recv(timeout_s=5)
                assert m is not None
                got.append(m)
                time.sleep(0.04)
            enough.set()
            while sub.recv(timeout_s=0.2) is not None:  # drain until the stream has ended
                pass

    c = threading.Thread(target=slow_consumer)
    c.start()
    try:
        summary = app_stream.run_stream(source, pub, pacer=Pacer(wf.working_rate_hz), stop=threading.Event())
    finally:
        enough.set()
        c.join(10)
        pub.close(linger_s=0)
    err = capsys.readouterr().err
    assert summary["max_lag_s"] > app_stream.BEHIND_WARNING_S and summary["unsent_messages"] == 0
    assert err.count("warning:") == 1
    assert "its consumer takes messages slower than real time" in err and "source is" not in err
