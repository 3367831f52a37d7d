"""``app.replay.read_ahead``: the replay's chunks produced on a thread, unchanged and in order."""

import threading

import numpy as np
import pytest

from app.replay import read_ahead, replay_capture
from app.session import ReceiverSettings
from dsp.waveform import get_profile
from sdr.emulator.capture import write_emulated_capture
from sdr.emulator.scenario import ScenarioConfig


def test_items_arrive_unchanged_and_in_order():
    items = [np.full(5, k) for k in range(50)]
    got = list(read_ahead(iter(items), depth=2))
    assert len(got) == 50
    assert all(g is x for g, x in zip(got, items, strict=True))  # the same objects, no copies


def test_a_producer_error_comes_after_the_items_before_it():
    def gen():
        yield 1
        yield 2
        raise OSError("chunk 3 failed its checksum")

    got = []
    with pytest.raises(OSError, match="chunk 3"):
        for x in read_ahead(gen()):
            got.append(x)
    assert got == [1, 2]


def test_leaving_early_stops_the_producer():
    produced = []

    def gen():
        for k in range(1000):
            produced.append(k)
            yield k

    ahead = read_ahead(gen(), depth=2)
    assert next(ahead) == 0
    ahead.close()  # as contextlib.closing does when the receiver raises
    assert not any(t.name == "read-ahead" for t in threading.enumerate())
    assert len(produced) <= 4  # one taken, two queued, one made and blocked on the full queue


def test_replay_with_read_ahead_equals_replay_without(tmp_path, monkeypatch):
    """The receiver sees the same chunks either way, so the summaries are equal."""

    path = tmp_path / "c.h5"
    write_emulated_capture(path, get_profile("default"), ScenarioConfig(duration_s=0.3, seed=7))
    with_thread, _ = replay_capture(path, ReceiverSettings())
    monkeypatch.setattr("app.replay.read_ahead", lambda items, depth=2: items)
    without, _ = replay_capture(path, ReceiverSettings())
    for s in (with_thread, without):  # the only fields that depend on the clock
        del s["processing_s"], s["realtime_factor"]
    assert with_thread["bits"] > 0  # packets were decoded: the comparison is not of two empty runs
    assert with_thread == without
