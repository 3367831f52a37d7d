"""Sources, streamer, recorder and the pipeline commands (sdr/sources.py, sdr/recorder.py, app/stream.py,
stream_cmd, record_cmd, listen_cmd, keys_cmd)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app import stream as app_stream
from backscatter import cli
from backscatter.commands import listen_cmd
from captures.format import CaptureError, complex_to_ci16
from captures.reader import Capture, open_capture
from dsp.waveform import WaveformConfig, get_profile
from sdr.emulator.capture import write_emulated_capture
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig
from sdr.recorder import Recorder, StreamChanged, record
from sdr.sources import Chunk, EmulatorSource, IQSource, Pacer, ReplaySource
from sdr.transport import (
    IQMessage,
    IQPublisher,
    IQSubscriber,
    ResultPublisher,
    complex_to_sc16,
    decode,
    encode_iq,
    encode_result,
    new_stream_id,
)

ROOT = Path(__file__).resolve().parents[1]
SC = ScenarioConfig(duration_s=0.02, seed=5, n_nlos=1, drops=((0.005, 200), (0.012, 1000)))
CHANNELS2 = [("central", 915e6), ("upper", 960e6)]


def _wait_for(cond: Callable[[], Any], timeout_s: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "backscatter.cli", *argv]


def _ipc(tmp_path: Path, name: str) -> str:
    return f"ipc://{tmp_path / name}"


# ----- sources --------------------------------------------------------------------------------------
def test_emulator_source_matches_the_emulator(wf):
    src = EmulatorSource(SC, wf, chunk_samples=50_000)
    assert isinstance(src, IQSource)
    chunks = list(src)
    ref = Emulator(wf, SC).generate()
    np.testing.assert_array_equal(np.concatenate([c.iq for c in chunks], axis=1), ref)
    assert max(c.n_samples for c in chunks) <= 50_000
    assert sum(c.lost_before for c in chunks) == 1200
    nxt = 0
    for c in chunks:
        assert c.capture_index == nxt + c.lost_before
        assert c.time_s == pytest.approx(c.capture_index / wf.working_rate_hz)
        nxt = c.capture_index + c.n_samples
    assert nxt == src.total_samples == round(SC.duration_s * wf.working_rate_hz)
    assert src.channels == [("central", 915e6), ("lower", 870e6), ("upper", 960e6)]
    # like a radio (and emulated captures), the x410 profile streams at its capture rate
    x410 = EmulatorSource(SC, get_profile("x410-62m5"), seed=9, duration_s=0.015)
    assert x410.capture_rate_hz == x410.waveform.capture_rate_hz == 62.5e6
    assert x410.total_samples == round(0.015 * 62.5e6)
    assert x410.waveform.profile == "x410-62m5" and x410.scenario.seed == 9


def test_replay_source_keeps_gaps_as_lost_before(tmp_path, wf):
    path = tmp_path / "c.h5"
    write_emulated_capture(path, wf, SC)
    src = ReplaySource(path, chunk_samples=100_000)
    try:
        chunks = list(src)
        with open_capture(path) as cap:
            # a ci16 capture streams its int16 pairs as stored (no conversion there and back)
            assert all(c.iq.dtype == np.int16 for c in chunks)
            streamed = np.concatenate([c.iq for c in chunks], axis=1)
            np.testing.assert_array_equal(streamed, cap.read(pairs=True))
            gaps = cap.gaps
        assert [c.lost_before for c in chunks if c.lost_before] == gaps[:, 1].tolist()
        stored = 0
        for c in chunks:  # capture_index counts every lost sample before the chunk
            assert c.capture_index == stored + int(gaps[gaps[:, 0] <= stored, 1].sum())
            stored += c.n_samples
        assert src.total_samples == chunks[-1].capture_index + chunks[-1].n_samples
    finally:
        src.close()


# ----- recorder -------------------------------------------------------------------------------------
def _message(
    seq: int,
    first: int,
    n: int,
    *,
    sid: str,
    lost: int = 0,
    channels: list[tuple[str, float]] = CHANNELS2,
    rate: float = 30.72e6,
    time_s: float | None = None,
    seed: int = 0,
) -> IQMessage:
    iq = (0.1 * np.random.default_rng(seed).standard_normal((len(channels), 2 * n))).astype(np.float32)
    frames = encode_iq(
        stream_id=sid,
        seq=seq,
        capture_index=first,
        time_s=first / rate if time_s is None else time_s,
        capture_rate_hz=rate,
        channels=channels,
        waveform=get_profile("default"),
        source="emulator",
        iq=iq.view(np.complex64),
        lost_before=lost,
    )
    return decode([f if isinstance(f, bytes) else bytes(memoryview(f).cast("B")) for f in frames])


def test_recorder_continues_a_restarted_stream_and_stops_on_a_changed_one(tmp_path):
    path = tmp_path / "r.h5"
    a, b, c = new_stream_id(), new_stream_id(), new_stream_id()
    msgs = [
        _message(0, 0, 100, sid=a, seed=1),
        _message(1, 130, 100, sid=a, lost=30, seed=2),
        _message(0, 0, 100, sid=b, time_s=1.0, seed=3),  # restart, same setup: 1 s later
    ]
    with Recorder(path) as rec:
        for m in msgs:
            rec.write(m)
        with pytest.raises(StreamChanged, match="another file"):
            rec.write(_message(0, 0, 100, sid=c, channels=[("central", 915e6)]))
        with pytest.raises(StreamChanged, match="MS/s"):
            rec.write(_message(0, 0, 100, sid=c, rate=15.36e6))
    with open_capture(path) as cap:
        assert cap.n_samples == 300 and cap.bands == ["central", "upper"]
        np.testing.assert_array_equal(cap.read_raw(1, 0, 300), np.concatenate([m.iq[1] for m in msgs]))
        expected_restart_gap = round((1.0 - 230 / 30.72e6) * 30.72e6)
        np.testing.assert_array_equal(cap.gaps, [[100, 30], [200, expected_restart_gap]])
        assert cap.waveform == get_profile("default")
    with pytest.raises(FileExistsError):
        Recorder(path)


def test_record_stops_cleanly_when_the_stream_setup_changes(tmp_path):
    ep = _ipc(tmp_path, "chg")
    sub = IQSubscriber(ep, mode="pull")
    out = {}
    th = threading.Thread(target=lambda: out.update(record(sub, tmp_path / "r.h5", idle_timeout_s=30)))
    th.start()
    try:
        wf = get_profile("default")
        for channels in (CHANNELS2, [("central", 915e6), ("lower", 870e6)]):
            with IQPublisher(ep, capture_rate_hz=wf.working_rate_hz, channels=channels, waveform=wf,
                             source="emulator", mode="push") as pub:  # fmt: skip
                pub.send(np.zeros((2, 64), np.complex64), 0, 0.0)
                if channels is CHANNELS2:
                    _wait_for(lambda: (tmp_path / "r.h5").exists(), what="the first chunk")
                    time.sleep(0.2)
        th.join(30)
    finally:
        sub.close()
    assert out["stop_reason"] == "stream_changed" and "lower" in out["message"]
    assert out["messages"] == 1
    with open_capture(tmp_path / "r.h5") as cap:
        assert cap.n_samples == 64


# ----- streamer -> recorder ---------------------------------------------------------------------
def _scenario_file(tmp_path: Path) -> Path:
    p = tmp_path / "scenario.json"
    p.write_text(SC.to_json())
    return p


def _reference(tmp_path: Path, wf: WaveformConfig) -> Path:
    ref = tmp_path / "ref.h5"
    write_emulated_capture(ref, wf, SC)
    return ref


def _assert_same_capture(path: Path, ref: Path) -> None:
    with open_capture(path) as a, open_capture(ref) as b:
        assert a.n_samples == b.n_samples and a.datatype == b.datatype == "ci16_le"
        for ch in range(b.n_channels):
            np.testing.assert_array_equal(a.read_raw(ch, 0, a.n_samples), b.read_raw(ch, 0, b.n_samples))
        np.testing.assert_array_equal(a.gaps, b.gaps)
        assert [(c.band, c.center_freq_hz) for c in a.channels] == [
            (c.band, c.center_freq_hz) for c in b.channels
        ]
        assert a.waveform == b.waveform
        assert a.capture_rate_hz == b.capture_rate_hz


@pytest.mark.parametrize("socket", ["push", "pub"])
def test_stream_to_recorder_equals_the_emulated_capture(tmp_path, wf, capsys, socket):
    ep = _ipc(tmp_path, "iq")
    n_messages = len(list(EmulatorSource(SC, wf, chunk_samples=100_000)))
    sub = IQSubscriber(ep, mode="pull" if socket == "push" else "sub")
    out: dict = {}
    th = threading.Thread(
        target=lambda: out.update(
            record(sub, tmp_path / "rec.h5", idle_timeout_s=60, max_messages=n_messages)
        )
    )
    th.start()
    try:
        rc = cli.main(
            ["stream", "--scenario", str(_scenario_file(tmp_path)), "--bind", ep, "--socket", socket,
             "--chunk-samples", "100000", "--as-fast-as-possible", "--wait-subscriber-s", "30",
             "--record", str(tmp_path / "local.h5"), "--json"]
        )  # fmt: skip
        th.join(60)
    finally:
        sub.close()
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["messages"] == n_messages and not summary["interrupted"]
    assert summary["samples_sent"] + summary["samples_lost"] == round(SC.duration_s * wf.working_rate_hz)
    assert summary["samples_lost"] == 1200 and summary["realtime_factor"] > 0
    assert out["stop_reason"] == "count" and out["messages_missed"] == 0 and out["drops"] == {}
    ref = _reference(tmp_path, wf)
    _assert_same_capture(tmp_path / "rec.h5", ref)
    _assert_same_capture(tmp_path / "local.h5", ref)


def _send_chunks(pub: IQPublisher, chunks: list[tuple[np.ndarray, int]], state: dict) -> None:
    for iq, lost in chunks:
        state["first"] += lost
        pub.send(iq, state["first"], state["first"] / pub.capture_rate_hz, lost)
        state["first"] += iq.shape[1]


def _chunks(count: int, start: int, n: int = 20_000) -> list[tuple[np.ndarray, int]]:
    rng = np.random.default_rng(start)
    return [
        (rng.integers(-3000, 3000, (2, n, 2)).astype(np.int16), 77 if (start + k) % 4 == 3 else 0)
        for k in range(count)
    ]


def _open_growing(path: Path) -> Capture | None:
    try:
        return open_capture(path, swmr=True)
    except CaptureError:
        return None


def test_recorder_killed_with_sigkill_leaves_every_flushed_chunk(tmp_path, wf):
    ep, path = _ipc(tmp_path, "k"), tmp_path / "k.h5"
    pub = IQPublisher(ep, capture_rate_hz=wf.working_rate_hz, channels=CHANNELS2, waveform=wf,
                      source="replay", mode="push")  # fmt: skip
    proc = subprocess.Popen(
        _cli("record", "--connect", ep, "--socket", "pull", "--out", str(path)),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = {"first": 0}
    sent = _chunks(6, 0)
    reader = None
    try:
        _send_chunks(pub, sent, state)
        reader = _wait_for(lambda: _open_growing(path), what="the recording to appear")
        _wait_for(lambda: reader.refresh() or reader.n_samples == 6 * 20_000, what="6 chunks flushed")
        more = _chunks(2, 6)
        _send_chunks(pub, more, state)
        _wait_for(lambda: reader.refresh() or reader.n_samples == 8 * 20_000, what="the file to grow")
        sent += more
        tail = _chunks(30, 8)
        _send_chunks(pub, tail, state)
        sent += tail
        # kill it in the middle of writing the tail
        _wait_for(lambda: reader.refresh() or reader.n_samples >= 12 * 20_000, what="the tail to flow")
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if reader is not None:
            reader.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        pub.close(linger_s=0)
    with open_capture(path, swmr=True) as cap:
        n = cap.n_samples
        assert 12 * 20_000 <= n <= len(sent) * 20_000
        stored = np.stack([cap.read_raw(ch, 0, n) for ch in range(2)])
        gaps = cap.gaps.tolist()
    # every chunk followed by another one was flushed whole; the last one may have been cut
    # short by the kill after its extent was flushed
    ref = np.concatenate([iq for iq, _ in sent], axis=1)
    complete = max(12 * 20_000, (n // 20_000 - 1) * 20_000)
    np.testing.assert_array_equal(stored[:, :complete], ref[:, :complete])
    expected_gaps = [[20_000 * k, lost] for k, (_, lost) in enumerate(sent) if lost]
    assert [g for g in gaps if g[0] < complete] == [g for g in expected_gaps if g[0] < complete]
    assert all(g in expected_gaps for g in gaps)
    # the replay source reads such a file (still flagged open for writing) by itself
    src = ReplaySource(path, chunk_samples=50_000)
    try:
        assert sum(c.n_samples for c in src) == n
    finally:
        src.close()


def test_sigterm_stops_record_and_stream_cleanly(tmp_path, wf):
    ep, path = _ipc(tmp_path, "t"), tmp_path / "t.h5"
    pub = IQPublisher(ep, capture_rate_hz=wf.working_rate_hz, channels=CHANNELS2, waveform=wf,
                      source="replay", mode="push")  # fmt: skip
    rec = subprocess.Popen(
        _cli("record", "--connect", ep, "--socket", "pull", "--out", str(path), "--json"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stream_ep = _ipc(tmp_path, "s")
    sub = IQSubscriber(stream_ep, mode="pull")
    stream = subprocess.Popen(
        _cli("stream", "--duration-s", "30", "--bind", stream_ep, "--socket", "push", "--json"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        sent = _chunks(3, 0)
        _send_chunks(pub, sent, {"first": 0})
        reader = _wait_for(lambda: _open_growing(path), what="the recording to appear")
        _wait_for(lambda: reader.refresh() or reader.n_samples == 3 * 20_000, what="3 chunks flushed")
        reader.close()
        rec.send_signal(signal.SIGTERM)
        rec_out, rec_err = rec.communicate(timeout=30)
        assert rec.returncode == 0, rec_err
        assert json.loads(rec_out)["messages"] == 3
        msg = sub.recv(timeout_s=60)  # the paced stream is running
        assert msg is not None and msg.header.source == "emulator"
        stream.send_signal(signal.SIGINT)
        out, err = stream.communicate(timeout=30)
        assert stream.returncode == 0, err
        summary = json.loads(out)
        assert summary["interrupted"] and summary["paced"] and summary["messages"] >= 1
    finally:
        for p in (rec, stream):
            if p.poll() is None:
                p.kill()
                p.communicate(timeout=30)
        sub.close()
        pub.close(linger_s=0)
    with open_capture(path) as cap:  # closed properly: a plain open works
        assert cap.n_samples == 3 * 20_000


# ----- other commands ---------------------------------------------------------------------------
def test_listen_prints_results_one_json_object_per_line(capsys):
    pub = ResultPublisher("tcp://127.0.0.1:*")
    stop = threading.Event()
    cir = np.zeros(4096, np.complex64)
    epoch = {
        "time_s": 0.5, "n_symbols": 40, "bands": ["central", "upper"], "range_m": {"music": 25.0},
        "range_band_m": {"music": {"upper": 25.0}}, "delay_s": {"music": {"upper": 8e-8}},
        "snr_db": {"central": 30.0, "upper": 12.0}, "cfo_hz": {"central": 1.0, "upper": 2.0},
        "range_true_m": 25.1, "cir_step_m": 0.07,
    }  # fmt: skip

    def publish() -> None:
        while not stop.is_set():
            pub.send("epoch", epoch, {"cir_central": cir, "cir_upper": cir})
            pub.send("gap", {"time_s": 0.6, "index": 99, "samples_lost": 5})
            time.sleep(0.01)

    th = threading.Thread(target=publish)
    th.start()
    try:
        assert cli.main(["listen", "--connect", pub.endpoint, "--json", "--count", "4",
                                  "--timeout-s", "60"]) == 0  # fmt: skip
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 4
        objs = [json.loads(line) for line in lines]
        ep = next(o for o in objs if o["kind"] == "epoch")
        assert ep["arrays"] == {
            n: {"dtype": "complex64", "shape": [4096]} for n in ("cir_central", "cir_upper")
        }
        assert ep["range_m"] == {"music": 25.0} and ep["stream_id"] == pub.stream_id
        assert cli.main(["listen", "--connect", pub.endpoint, "--kind", "gap", "--count", "2",
                                  "--timeout-s", "60"]) == 0  # fmt: skip
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 2 and all("5 samples lost before sample 99" in line for line in lines)
    finally:
        stop.set()
        th.join(10)
        pub.close()


def test_keys_command_and_bind_policy(tmp_path, capsys):
    d = tmp_path / "keys"
    assert cli.main(["keys", "--out", str(d), "--json"]) == 0
    paths = json.loads(capsys.readouterr().out)
    assert Path(paths["server_secret"]) == d / "server.key_secret"
    assert (d / "authorized_clients" / "client.key").is_file()
    assert cli.main(["keys", "--out", str(d)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert cli.main(["stream", "--duration-s", "0.001", "--bind", "tcp://0.0.0.0:5599"]) == 2
    err = capsys.readouterr().err
    assert "tcp://0.0.0.0:5599" in err and "--insecure" in err
    assert cli.main(["stream", "--source", "replay"]) == 2
    assert "--file" in capsys.readouterr().err


class _FakeRadio:
    """A live source in the radio's own chunk layout: sc16 as int16 [channel, 2 * sample]."""

    name = "uhd"

    def __init__(self) -> None:
        wf = get_profile("default")
        self.waveform, self.capture_rate_hz, self.channels = wf, wf.working_rate_hz, CHANNELS2
        rng = np.random.default_rng(3)
        self.sent = [rng.integers(-100, 100, (2, 2 * 1000)).astype(np.int16) for _ in range(3)]
        self.closed = False

    def __iter__(self) -> Iterator[Chunk]:
        for k, iq in enumerate(self.sent):
            yield Chunk(iq, 1000 * k + (5 if k == 2 else 0), 10.0 + k, 5 if k == 2 else 0)

    def stop(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_uhd_source_is_loaded_lazily(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sdr.uhd_source", None)  # not importable
    assert cli.main(["stream", "--source", "uhd"]) == 2
    assert "sdr/uhd_source.py" in capsys.readouterr().err
    radio = _FakeRadio()
    monkeypatch.setitem(
        sys.modules, "sdr.uhd_source", types.SimpleNamespace(UHDSource=lambda radio_config, waveform: radio)
    )
    ep = _ipc(tmp_path, "u")
    sub = IQSubscriber(ep, mode="pull")
    try:
        assert cli.main(["stream", "--source", "uhd", "--bind", ep, "--socket", "push", "--json"]) == 0
        got = [sub.recv(timeout_s=30) for _ in range(3)]
    finally:
        sub.close()
    summary = json.loads(capsys.readouterr().out)
    assert summary["source"] == "uhd" and not summary["paced"] and summary["samples_lost"] == 5
    assert radio.closed
    for m, iq in zip(got, radio.sent, strict=True):
        assert m.header.source == "uhd"
        np.testing.assert_array_equal(m.iq.reshape(2, -1), iq)
    assert [m.lost_before for m in got] == [0, 0, 5] and got[2].header.time_s == 12.0


def test_complex_chunks_go_out_as_the_writer_quantises_them(wf):
    iq = Emulator(wf, ScenarioConfig(duration_s=0.001, seed=1)).generate()
    np.testing.assert_array_equal(complex_to_sc16(iq), complex_to_ci16(iq))


def test_every_result_kind_renders_as_a_line_and_as_json():
    from tests.test_transport import _results

    for seq, (kind, fields, arrays) in enumerate(_results()):
        frames = encode_result(kind, fields, arrays, stream_id="d" * 32, seq=seq)
        msg = decode([f if isinstance(f, bytes) else bytes(memoryview(f).cast("B")) for f in frames])
        line = listen_cmd.result_line(msg)
        assert kind in line and "\n" not in line
        obj = json.loads(json.dumps(listen_cmd.result_to_json(msg)))
        assert obj["kind"] == kind
        assert obj["arrays"] == {
            n: {"dtype": a.dtype.name, "shape": list(a.shape)} for n, a in arrays.items()
        }


def test_a_source_slower_than_real_time_is_warned_about_once(tmp_path, wf, capsys):
    """A paced emulator that falls more than a second behind the sample clock: one warning on
    stderr that names the source and points to ``--loop-s``; the stream itself goes on."""
    sc = ScenarioConfig(duration_s=0.02, seed=2, bands=("central", "upper"))
    source = EmulatorSource(sc, wf, chunk_samples=50_000)
    now = [0.0]

    def clock() -> float:  # every look at the clock finds it 0.5 s later: ever further behind
        now[0] += 0.5
        return now[0]

    pub = IQPublisher(_ipc(tmp_path, "iq"), capture_rate_hz=wf.working_rate_hz, channels=source.channels,
                      waveform=wf, source="emulator", mode="pub")  # fmt: skip
    try:
        pacer = Pacer(wf.working_rate_hz, clock=clock)
        summary = app_stream.run_stream(source, pub, pacer=pacer, stop=threading.Event())
    finally:
        pub.close(linger_s=0)
    err = capsys.readouterr().err
    assert summary["messages"] == len(list(EmulatorSource(sc, wf, chunk_samples=50_000)))
    assert summary["max_lag_s"] > app_stream.BEHIND_WARNING_S
    assert err.count("warning:") == 1 and "emulator source is" in err and "--loop-s" in err
