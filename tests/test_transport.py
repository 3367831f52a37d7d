"""Wire format, validation, subscribers, CURVE and the bind policy (sdr/transport.py, sdr/security.py)."""

from __future__ import annotations

import copy
import json
import os
import threading
import time

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dsp.results import BlockStats, GapEvent, PacketResult, RangingEpoch
from dsp.waveform import get_profile
from sdr import results_wire
from sdr.security import ClientKeys, SecurityError, ServerKeys, check_bind, create_keys, is_loopback
from sdr.sources import Pacer
from sdr.transport import (
    DROP_REASONS,
    MAX_SAMPLES,
    IQPublisher,
    IQSubscriber,
    MessageError,
    ResultMessage,
    ResultPublisher,
    ResultSubscriber,
    compare_pushpull_throughput,
    complex_to_sc16,
    decode,
    encode_iq,
    encode_result,
    new_stream_id,
    sc16_to_complex,
)

WF = get_profile("default")
CHANNELS = [("central", 915e6), ("upper", 960e6)]
IQ_KEYS = [
    "v",
    "kind",
    "stream_id",
    "seq",
    "capture_index",
    "time_s",
    "capture_rate_hz",
    "channels",
    "format",
]
IQ_KEYS += ["shape", "lost_before", "waveform", "source"]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _iq(n: int = 64, seed: int = 0, channels: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * (rng.standard_normal((channels, n)) + 1j * rng.standard_normal((channels, n)))).astype(
        np.complex64
    )


def _iq_frames(seq: int = 0, capture_index: int = 0, n: int = 64, lost_before: int = 0, **kw) -> list:
    args = dict(
        stream_id=kw.pop("stream_id", "a" * 32),
        seq=seq,
        capture_index=capture_index,
        time_s=capture_index / WF.working_rate_hz,
        capture_rate_hz=WF.working_rate_hz,
        channels=CHANNELS,
        waveform=WF,
        source="emulator",
        iq=_iq(n, seed=seq),
        lost_before=lost_before,
    )
    args.update(kw)
    return [bytes(memoryview(f).cast("B")) if isinstance(f, np.ndarray) else f for f in encode_iq(**args)]


def _header(frames: list) -> dict:
    return json.loads(frames[1])


def _with_header(frames: list, header: dict) -> list:
    return [frames[0], json.dumps(header).encode(), *frames[2:]]


@pytest.fixture(scope="module")
def subs():
    """Subscribers fed directly through ``accept`` (their sockets never receive anything)."""
    ctx = zmq.Context()
    iq_sub = IQSubscriber("inproc://nowhere-iq", context=ctx)
    res_sub = ResultSubscriber("inproc://nowhere-results", context=ctx)
    yield iq_sub, res_sub
    iq_sub.close()
    res_sub.close()
    ctx.term()


# ----- sample formats --------------------------------------------------------------------------
def test_sc16_conversion_is_exact_rounded_and_clipped():
    pairs = np.random.default_rng(1).integers(-32768, 32768, (3, 1000, 2)).astype(np.int16)
    pairs[pairs == -32768] = -32767  # -32768 / 32767 is below -1 and comes back clipped to -32767
    back = complex_to_sc16(sc16_to_complex(pairs))
    np.testing.assert_array_equal(back, pairs)
    x = np.array([[1.5 + 0.5j, -2 - 1e-6j, 0.49999 / 32767 + 0j]], np.complex64)
    np.testing.assert_array_equal(complex_to_sc16(x)[0], [[32767, 16384], [-32768, 0], [0, 0]])
    out = np.empty((1, 3, 2), np.int16)
    assert complex_to_sc16(x, out=out) is out


# ----- round trips -----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["sc16", "fc32"])
def test_iq_round_trip(fmt):
    iq = _iq(100)
    frames = encode_iq(
        stream_id=new_stream_id(),
        seq=7,
        capture_index=1234,
        time_s=0.5,
        capture_rate_hz=WF.working_rate_hz,
        channels=CHANNELS,
        waveform=WF,
        source="replay",
        iq=iq,
        lost_before=17,
        fmt=fmt,
    )
    assert isinstance(frames[2], np.ndarray)  # the payload goes out as the array itself
    msg = decode(frames)
    h = msg.header
    assert (h.seq, h.capture_index, h.time_s, h.lost_before, h.source, h.format) == (
        7,
        1234,
        0.5,
        17,
        "replay",
        fmt,
    )
    assert h.channels == tuple(CHANNELS) and h.bands == ["central", "upper"] and h.n_samples == 100
    assert h.waveform == WF
    assert not msg.iq.flags.writeable
    if fmt == "fc32":
        np.testing.assert_array_equal(msg.complex64(), iq)
    else:
        np.testing.assert_array_equal(msg.iq, complex_to_sc16(iq))
        np.testing.assert_allclose(msg.complex64(), iq, atol=1 / 32767)


def test_waveform_capture_rate_follows_the_stream_rate():
    wf = get_profile("x410-62m5")
    msg = decode(_iq_frames(waveform=wf, capture_rate_hz=62.5e6))
    assert msg.header.waveform == wf and msg.header.waveform.capture_rate_hz == 62.5e6
    msg = decode(_iq_frames(waveform=wf, capture_rate_hz=30.72e6))  # the header's rate wins
    assert msg.header.waveform.capture_rate_hz == 30.72e6


def test_header_from_before_the_rate_rename_still_decodes():
    """An IQ header that names the capture rate ``sample_rate_hz``, its index ``first_sample``
    (and its waveform's working rate ``sample_rate_hz``) decodes as one with the new names."""
    wf = get_profile("x410-62m5")
    frames = _iq_frames(capture_index=4096, waveform=wf, capture_rate_hz=62.5e6)
    h = _header(frames)
    h["sample_rate_hz"] = h.pop("capture_rate_hz")
    h["first_sample"] = h.pop("capture_index")
    h["waveform"]["sample_rate_hz"] = h["waveform"].pop("working_rate_hz")
    old = decode(_with_header(frames, h))
    assert old.header == decode(frames).header and old.header.capture_rate_hz == 62.5e6
    assert old.header.capture_index == 4096
    assert _reason(_with_header(frames, {**h, "sample_rate_hz": -1.0})) == "field"


def _results() -> list[tuple[str, dict, dict]]:
    bits = np.random.default_rng(2).integers(0, 2, 125).astype(np.uint8)
    packet = PacketResult(0.1, 3072.5, 0xB5C0FFEE, bits, True, 0.9, 12.5, np.ones(125, np.complex64), 0)
    epoch = RangingEpoch(
        0.2,
        40,
        cfr={},
        cir={"central": np.ones(4096, np.complex64), "upper": np.zeros(4096, np.complex64)},
        delay_s={"music": {"upper": 1e-7}},
        range_m={"music": 25.0},
        range_band_m={"music": {"upper": 25.1}},
        snr_db={"central": 30.0, "upper": float("nan")},
        cfo_hz={"central": 10.0, "upper": -3.0},
    )
    stats = BlockStats(0.3, 256, 17, {"central": 1.0}, {"central": 1e-3}, {"central": True})
    health = {
        "time_s": 1.0,
        "throughput_sps": 3e7,
        "realtime_factor": 1.2,
        "queue_depth": 2,
        "messages_received": 10,
        "messages_dropped": {"version": 1},
        "samples_lost": 0,
        "gaps": 0,
        "stream_state": "live",
    }
    calibration = {
        "time_s": 2.0,
        "state": "running",
        "progress": 0.5,
        "symbols": 1000,
        "group_delay_s": {"upper": 1e-8},
        "ripple_deg": {"upper": 1.0},
        "snr_db": {"upper": 20.0},
        "d_cal_m": {"upper": 1.0},
        "file": None,
        "message": "",
    }
    return [
        results_wire.result_to_wire(packet, WF),
        results_wire.result_to_wire(epoch, WF, range_true_m=25.05),
        results_wire.result_to_wire(stats, WF),
        results_wire.result_to_wire(GapEvent(3000, 50), WF),
        results_wire.spectrum_to_wire(0.4, {"central": np.zeros(512)}, {"central": -15e6}, 60e3),
        ("health", health, {}),
        ("calibration", calibration, {}),
    ]


def test_result_round_trip_every_kind():
    sid = new_stream_id()
    for seq, (kind, fields, arrays) in enumerate(_results()):
        msg = decode(encode_result(kind, fields, arrays, stream_id=sid, seq=seq))
        assert isinstance(msg, ResultMessage)
        assert (msg.kind, msg.stream_id, msg.seq, msg.time_s) == (kind, sid, seq, fields["time_s"])
        assert json.dumps(msg.fields, sort_keys=True) == json.dumps(fields, sort_keys=True)
        assert sorted(msg.arrays) == sorted(arrays)
        for name, a in arrays.items():
            np.testing.assert_array_equal(msg.arrays[name], a)
            assert msg.arrays[name].dtype == np.asarray(a).dtype


def test_encode_refuses_reserved_fields_and_odd_arrays():
    with pytest.raises(ValueError, match="reserved"):
        encode_result("gap", {"time_s": 0.0, "seq": 1}, {}, stream_id="a" * 32, seq=0)
    gap = {"time_s": 0.0, "index": 1, "samples_lost": 2}
    with pytest.raises(ValueError, match="dtype"):
        encode_result("gap", gap, {"x": np.zeros(3, np.int32)}, stream_id="a" * 32, seq=0)
    with pytest.raises(ValueError, match="samples_lost"):  # what every consumer would drop
        encode_result("gap", {**gap, "samples_lost": 2.5}, {}, stream_id="a" * 32, seq=0)
    with pytest.raises(ValueError, match="time_s"):
        encode_result("gap", {**gap, "time_s": float("nan")}, {}, stream_id="a" * 32, seq=0)
    with pytest.raises(ValueError, match="channels"):
        _iq_frames(channels=CHANNELS[:1])


# ----- validation ------------------------------------------------------------------------------
def _reason(frames: list) -> str:
    with pytest.raises(MessageError) as ei:
        decode(frames)
    assert ei.value.reason in DROP_REASONS
    return ei.value.reason


def test_decoder_names_each_defect():
    good = _iq_frames()
    h = _header(good)
    assert _reason([b"iq"]) == "frames"
    assert _reason([b"bogus", *good[1:]]) == "topic"
    assert _reason([b"\xff", *good[1:]]) == "topic"
    assert _reason([b"iq", b" " * (64 * 1024 + 1), good[2]]) == "header_size"
    assert _reason([b"iq", b"\xff\xfe", good[2]]) == "header_json"
    assert _reason([b"iq", b"[1, 2]", good[2]]) == "header_json"
    assert _reason([b"iq", b"[" * 30_000 + b"]" * 30_000, good[2]]) == "header_json"
    assert _reason(_with_header(good, {**h, "v": 2})) == "version"
    assert _reason(_with_header(good, {**h, "v": True})) == "version"
    assert _reason([b"packet", *good[1:]]) == "kind"
    assert _reason(_with_header(good, {**h, "stream_id": "xyz"})) == "stream_id"
    assert _reason(_with_header(good, {**h, "seq": -1})) == "seq"
    assert _reason(_with_header(good, {**h, "seq": 1.5})) == "seq"
    assert _reason(_with_header(good, {**h, "capture_index": "0"})) == "field"
    assert _reason(_with_header(good, {**h, "time_s": float("nan")})) == "field"
    assert _reason(_with_header(good, {**h, "capture_rate_hz": 0})) == "field"
    assert _reason(_with_header(good, {**h, "channels": [{"band": "middle", "rf_center_hz": 1.0}] * 2})) == (
        "channels"
    )
    dup = {**h, "channels": [{"band": "upper", "rf_center_hz": 1.0}] * 2}
    assert _reason(_with_header(good, dup)) == "channels"
    many = {**h, "channels": [{"band": "upper", "rf_center_hz": 1.0}] * 17}
    assert _reason(_with_header(good, many)) == "bounds"
    assert _reason(_with_header(good, {**h, "format": "sc8"})) == "format"
    assert _reason(_with_header(good, {**h, "shape": [3, 64]})) == "shape"
    assert _reason(_with_header(good, {**h, "shape": [2, MAX_SAMPLES + 1]})) == "bounds"
    assert _reason(_with_header(good, {**h, "shape": [2, 10**30]})) == "bounds"
    assert _reason(_with_header(good, {**h, "source": "radio"})) == "source"
    assert _reason(_with_header(good, {**h, "waveform": {**h["waveform"], "fft_size": 3}})) == "waveform"
    assert (
        _reason(_with_header(good, {**h, "waveform": {**h["waveform"], "cir_fft_size": 2**30}})) == "waveform"
    )
    assert _reason(_with_header(good, {**h, "waveform": {**h["waveform"], "capture_rate_hz": 1e-320}})) == (
        "waveform"
    )
    assert _reason([*good[:2], good[2][:-1]]) == "payload"
    assert _reason([*good, b""]) == "frames"


def test_result_decoder_checks_fields_and_arrays():
    kind, fields, arrays = _results()[1]
    good = encode_result(kind, fields, arrays, stream_id="b" * 32, seq=0)
    h = json.loads(good[1])
    assert _reason(_with_header(good, {k: v for k, v in h.items() if k != "range_m"})) == "field"
    assert _reason(_with_header(good, {**h, "n_symbols": "40"})) == "field"
    assert _reason(_with_header(good, {**h, "arrays": "none"})) == "arrays"
    assert _reason(good[:-1]) == "frames"
    bad = copy.deepcopy(h)
    bad["arrays"][0]["dtype"] = "object"
    assert _reason(_with_header(good, bad)) == "arrays"
    bad["arrays"][0].update(dtype="complex64", shape=[2**20, 2])
    assert _reason(_with_header(good, bad)) == "bounds"
    bad["arrays"][0]["shape"] = [0, 10**40]
    assert _reason(_with_header(good, bad)) == "bounds"
    bad["arrays"][0]["shape"] = [4095]
    assert _reason(_with_header(good, bad)) == "payload"
    bad["arrays"][1]["name"] = bad["arrays"][0]["name"]
    bad["arrays"][0]["shape"] = [4096]
    assert _reason(_with_header(good, bad)) == "arrays"


# ----- fuzzing: nothing escapes a subscriber ----------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _feed(sub, frames: list) -> object:
    before = sub.counters.received + sum(sub.drops.values())
    msg = sub.accept(frames)
    after = sub.counters.received + sum(sub.drops.values())
    assert after == before + 1, "every message is either received or counted as a drop"
    assert set(sub.drops) <= set(DROP_REASONS)
    assert sub.drops["internal"] == 0, f"unexpected decoder error: {sub.last_error}"
    return msg


@FUZZ
@given(frames=st.lists(st.binary(max_size=300), max_size=6))
def test_fuzz_random_frames(subs, frames):
    for sub in subs:
        _feed(sub, frames)


@FUZZ
@given(
    topic=st.sampled_from([b"iq", b"packet", b"epoch", b"gap", b"health", b"iqx", b"", b"\x00"]),
    header=json_values,
    payloads=st.lists(st.binary(max_size=64), max_size=3),
)
def test_fuzz_json_headers(subs, topic, header, payloads):
    frames = [topic, json.dumps(header).encode(), *payloads]
    for sub in subs:
        _feed(sub, frames)


@FUZZ
@given(
    key=st.sampled_from(IQ_KEYS),
    value=json_values,
    delete=st.booleans(),
    cut=st.integers(0, 600),
)
def test_fuzz_mutated_iq_headers_and_truncated_payloads(subs, key, value, delete, cut):
    iq_sub, _ = subs
    frames = _iq_frames(stream_id=new_stream_id())
    h = _header(frames)
    if delete:
        del h[key]
    else:
        h[key] = value
    _feed(iq_sub, _with_header(frames, h))
    truncated = [*frames[:2], frames[2][: min(cut, len(frames[2]) - 1)]]
    assert _feed(iq_sub, truncated) is None
    assert iq_sub.last_error.reason == "payload"


@FUZZ
@given(
    version=st.one_of(st.integers().filter(lambda v: v != 1), st.floats(), st.text(max_size=3), st.none()),
    shape=st.lists(st.integers(-(2**70), 2**70), max_size=3),
)
def test_fuzz_versions_and_huge_shapes(subs, version, shape):
    assume(shape not in ([2, 64], [125]))  # the valid shapes of the two messages
    iq_sub, res_sub = subs
    frames = _iq_frames(stream_id=new_stream_id())
    h = _header(frames)
    assert _feed(iq_sub, _with_header(frames, {**h, "v": version})) is None
    assert iq_sub.last_error.reason == "version"
    assert _feed(iq_sub, _with_header(frames, {**h, "shape": shape})) is None
    assert iq_sub.last_error.reason in ("shape", "bounds", "payload")
    kind, fields, arrays = _results()[0]
    res = encode_result(kind, fields, arrays, stream_id=new_stream_id(), seq=0)
    rh = json.loads(res[1])
    rh["arrays"][0]["shape"] = shape
    assert _feed(res_sub, _with_header(res, rh)) is None
    assert res_sub.last_error.reason in ("arrays", "bounds", "payload")


def test_foreign_messages_on_each_socket_kind(subs):
    iq_sub, res_sub = subs
    kind, fields, arrays = _results()[3]
    assert _feed(iq_sub, encode_result(kind, fields, arrays, stream_id="c" * 32, seq=0)) is None
    assert iq_sub.last_error.reason == "topic"
    assert _feed(res_sub, _iq_frames()) is None
    assert res_sub.last_error.reason == "topic"


# ----- sequence tracking -------------------------------------------------------------------------
def test_sequence_gap_reports_lost_messages_and_samples():
    with zmq.Context() as ctx:
        sub = IQSubscriber("inproc://seq", context=ctx)
        try:
            n = 64
            sid = new_stream_id()
            m0 = sub.accept(_iq_frames(0, 0, n, stream_id=sid))
            assert m0.new_stream and m0.lost_before == 0
            m1 = sub.accept(_iq_frames(1, n, n, stream_id=sid))
            assert not m1.new_stream and m1.messages_missed == 0
            # message 2 (samples 128..191, after 10 lost at the source) never arrives;
            # message 3 itself follows 5 more lost samples
            m3 = sub.accept(_iq_frames(3, 2 * n + 10 + n + 5, n, lost_before=5, stream_id=sid))
            assert m3.messages_missed == 1
            assert m3.lost_before == 10 + n + 5
            assert sub.counters.messages_missed == 1 and sub.samples_lost == 10 + n + 5 and sub.gaps == 1
            # a replayed message is stale, a restarted streamer is a new stream without a gap
            assert sub.accept(_iq_frames(3, 2 * n + 10 + n + 5, n, stream_id=sid)) is None
            assert sub.drops["stale"] == 1
            m = sub.accept(_iq_frames(0, 0, n, stream_id=new_stream_id()))
            assert m.new_stream and m.lost_before == 0 and m.messages_missed == 0
            assert sub.counters.streams == 2
        finally:
            sub.close()


def test_push_pull_delivers_in_order_with_gap_from_a_skipped_message():
    pub = IQPublisher(
        "tcp://127.0.0.1:*",
        capture_rate_hz=WF.working_rate_hz,
        channels=CHANNELS,
        waveform=WF,
        source="emulator",
        mode="push",
    )
    sub = IQSubscriber(pub.endpoint, mode="pull")
    try:
        sent = [_iq(50, seed=i) for i in range(4)]
        pub.send(sent[0], 0, 0.0)
        pub.send(sent[1], 50, 50e-6)
        pub.seq += 1  # message 2 is "lost" in transport
        pub.send(sent[3], 150, 150e-6)
        got = [sub.recv(timeout_s=10.0) for _ in range(3)]
        assert [m.header.seq for m in got] == [0, 1, 3]
        assert [m.lost_before for m in got] == [0, 0, 50]
        np.testing.assert_array_equal(got[2].iq, complex_to_sc16(sent[3]))
    finally:
        pub.close(linger_s=0)
        sub.close()


def test_garbage_over_the_socket_is_counted_and_skipped():
    with zmq.Context() as ctx:
        push = ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        port = push.bind_to_random_port("tcp://127.0.0.1")
        sub = IQSubscriber(f"tcp://127.0.0.1:{port}", mode="pull", context=ctx)
        try:
            push.send_multipart([b"iq", b"{not json", b"x"])
            push.send_multipart([b"iq"])
            push.send(b"\x00" * 10)
            push.send_multipart(_iq_frames(0, 0, 16))
            msg = sub.recv(timeout_s=10.0)
            assert msg is not None and msg.header.n_samples == 16
            assert dict(sub.drops) == {"header_json": 1, "frames": 2}
        finally:
            sub.close()
            push.close()


def test_pub_sub_waits_for_subscriber_then_delivers():
    pub = IQPublisher(
        "tcp://127.0.0.1:*",
        capture_rate_hz=WF.working_rate_hz,
        channels=CHANNELS,
        waveform=WF,
        source="replay",
    )
    sub = IQSubscriber(pub.endpoint)
    try:
        assert pub.wait_for_subscriber(10.0)
        pub.send(_iq(32), 0, 0.0)
        msg = sub.recv(timeout_s=10.0)
        assert msg is not None and msg.new_stream and msg.header.stream_id == pub.stream_id
    finally:
        pub.close(linger_s=0)
        sub.close()


def test_results_over_pub_sub_with_kind_filter():
    pub = ResultPublisher("tcp://127.0.0.1:*")
    sub = ResultSubscriber(pub.endpoint, kinds=["gap"])
    try:
        deadline = time.monotonic() + 10
        msg = None
        while msg is None and time.monotonic() < deadline:  # PUB drops until the subscription lands
            pub.send("stats", *results_wire.stats_to_wire(BlockStats(0.0, 1, 0, {}, {}, {}))[1:])
            pub.send("gap", {"time_s": 0.1, "index": 5, "samples_lost": 7})
            msg = sub.recv(timeout_s=0.05)
        assert msg is not None and msg.kind == "gap" and msg.fields["samples_lost"] == 7
        assert msg.stream_id == pub.stream_id
    finally:
        pub.close()
        sub.close()


# ----- security ----------------------------------------------------------------------------------
def test_bind_policy():
    for ep in ("tcp://127.0.0.1:5555", "tcp://localhost:1", "tcp://[::1]:9", "ipc:///tmp/x", "inproc://a"):
        assert is_loopback(ep)
        check_bind(ep, curve=False, insecure=False)
    for ep in ("tcp://*:5555", "tcp://0.0.0.0:5555", "tcp://192.168.1.4:5555", "tcp://127.0.0.1.evil:1"):
        assert not is_loopback(ep)
        with pytest.raises(SecurityError, match=ep.replace("*", r"\*").replace(".", r"\.")):
            check_bind(ep, curve=False, insecure=False)
        check_bind(ep, curve=True, insecure=False)
        check_bind(ep, curve=False, insecure=True)
    with pytest.raises(SecurityError, match="--insecure"):
        IQPublisher(
            "tcp://0.0.0.0:0",
            capture_rate_hz=WF.working_rate_hz,
            channels=CHANNELS,
            waveform=WF,
            source="uhd",
        )


def test_key_layout(tmp_path):
    paths = create_keys(tmp_path / "k", clients=("gui", "rec"))
    d = tmp_path / "k"
    for name in ("server", "gui", "rec"):
        assert (d / f"{name}.key").is_file()
        assert os.stat(d / f"{name}.key_secret").st_mode & 0o077 == 0
    assert sorted(p.name for p in (d / "authorized_clients").iterdir()) == ["gui.key", "rec.key"]
    assert paths["authorized_dir"] == str(d / "authorized_clients")
    with pytest.raises(SecurityError, match="exists"):
        create_keys(d)
    ServerKeys.from_dir(d)
    ClientKeys.from_dir(d, "gui")
    with pytest.raises(SecurityError, match="not found"):
        ClientKeys.from_dir(d, "nobody")
    with pytest.raises(SecurityError, match="no secret key"):
        ClientKeys.from_files(d / "gui.key", d / "server.key")
    (d / "authorized_clients" / "gui.key").unlink()
    (d / "authorized_clients" / "rec.key").unlink()
    with pytest.raises(SecurityError, match="no authorised client keys"):
        ServerKeys.from_dir(d)


def test_curve_admits_only_authorised_clients(tmp_path):
    create_keys(tmp_path / "srv")  # server + authorised client
    create_keys(tmp_path / "other")  # a stranger's client keys, signed for another server
    server = ServerKeys.from_dir(tmp_path / "srv")
    good = ClientKeys.from_dir(tmp_path / "srv")
    stranger = ClientKeys(
        ClientKeys.from_dir(tmp_path / "other").public_key,
        ClientKeys.from_dir(tmp_path / "other").secret_key,
        good.server_public_key,
    )
    pub = IQPublisher(
        "tcp://0.0.0.0:*",
        capture_rate_hz=WF.working_rate_hz,
        channels=CHANNELS,
        waveform=WF,
        source="replay",
        server_keys=server,
    )
    port = pub.endpoint.rsplit(":", 1)[1]
    ep = f"tcp://127.0.0.1:{port}"
    subs = {
        "authorised": IQSubscriber(ep, client_keys=good),
        "plain": IQSubscriber(ep),
        "stranger": IQSubscriber(ep, client_keys=stranger),
    }
    got = dict.fromkeys(subs, 0)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (got["authorised"] < 3):
            pub.send(_iq(16), pub.seq * 16, 0.0)
            for name, sub in subs.items():
                while sub.recv(timeout_s=0.01) is not None:
                    got[name] += 1
        # keep publishing a little longer: the others still get nothing
        until = time.monotonic() + 1.0
        while time.monotonic() < until:
            pub.send(_iq(16), pub.seq * 16, 0.0)
            for name in ("plain", "stranger"):
                while subs[name].recv(timeout_s=0.02) is not None:
                    got[name] += 1
        assert got["authorised"] >= 3
        assert got["plain"] == 0 and got["stranger"] == 0
    finally:
        for sub in subs.values():
            sub.close()
        pub.close(linger_s=0)


# ----- pacing and benchmark ----------------------------------------------------------------------
def test_pacer_follows_the_sample_clock_without_drift():
    now = [100.0]
    slept: list[float] = []

    def sleep(dt: float) -> None:
        slept.append(dt)
        now[0] += dt + 0.001  # every sleep overshoots by 1 ms

    p = Pacer(1000.0, clock=lambda: now[0], sleep=sleep)
    for k in range(10):
        p.wait(500 + 100 * k, 100)  # chunk k is due 0.1 * (k + 1) s after the start
        assert now[0] == pytest.approx(100.0 + 0.1 * (k + 1) + 0.001, abs=1e-9)
    fast = Pacer(1000.0, realtime=False, clock=lambda: now[0], sleep=sleep)
    n_sleeps = len(slept)
    assert fast.wait(0, 10**6)
    assert len(slept) == n_sleeps
    stop = threading.Event()
    stop.set()
    assert not Pacer(1.0).wait(0, 10, stop)


def test_benchmark_helper_reports_both_paths(monkeypatch):
    """Both links really carry the buffers (the real transfers run; a lost message raises), then
    their timings are replaced by scripted ones, so what the helper makes of them is checked
    against figures worked out here: the warm-up pass is left out, the median of the timed passes
    is used, the bytes are the payload's (4 buffers x 3 channels x 4096 samples x 8 bytes for
    complex64, 4 bytes for sc16), and the ratio is pipeline over bare throughput (1/3 when the
    pipeline takes three times as long)."""
    from sdr.transport import bench

    passes: dict[str, list[float]] = {}

    def scripted(name, real):
        def seconds(self, buffers):
            real(self, buffers)
            return passes[name].pop(0)

        return seconds

    monkeypatch.setattr(bench._BareLink, "seconds", scripted("bare", bench._BareLink.seconds))
    monkeypatch.setattr(bench._PipelineLink, "seconds", scripted("pipe", bench._PipelineLink.seconds))
    bufs = [_iq(4096, seed=i, channels=3) for i in range(4)]
    cases = ((bufs, 4 * 3 * 4096 * 8), ([complex_to_sc16(b) for b in bufs], 4 * 3 * 4096 * 4))
    for buffers, n_bytes in cases:
        passes.update(bare=[9.0, 1.0, 3.0, 2.0], pipe=[9.0, 4.0, 8.0, 6.0])  # warm-up first: medians 2, 6
        r = compare_pushpull_throughput(buffers, repeats=3)
        assert passes == {"bare": [], "pipe": []}  # one warm-up and three timed passes per link
        assert r["bare_bytes_per_s"] == pytest.approx(n_bytes / 2.0, rel=1e-12)
        assert r["pipeline_bytes_per_s"] == pytest.approx(n_bytes / 6.0, rel=1e-12)
        assert r["ratio"] == pytest.approx(1 / 3, rel=1e-12)


def test_buffer_pool_reuses_an_array_only_once_nothing_else_refers_to_it():
    from sdr.transport import BufferPool

    pool = BufferPool(capacity=4)
    a = pool.take((3, 8))
    first = id(a)  # the pool keeps the object alive, so its id stays its own
    view = a[:, 2:]  # a consumer's view (the receiver keeps views of recent chunks)
    del a
    b = pool.take((3, 8))
    assert id(b) != first  # still viewed: a new array
    assert pool.take((3, 9)).shape == (3, 9)  # another shape: never handed out for this one
    del view
    assert id(pool.take((3, 8))) == first  # released: the first array again, no new allocation
    assert len(pool) == 3
    held = [pool.take((2, 2)) for _ in range(6)]  # all held: six new arrays
    assert len({id(h) for h in held}) == 6 and len(pool) == 4  # the pool forgets the oldest
    with pytest.raises(ValueError, match="capacity"):
        BufferPool(0)
    c = pool.take((5, 2))  # complex64 unless asked; an int16 request never gets it
    c_id = id(c)
    del c
    p16 = pool.take((5, 2), np.int16)
    assert p16.dtype == np.int16 and id(p16) != c_id


def test_sc16_message_converts_into_pooled_arrays_bit_for_bit():
    from sdr.transport import BufferPool

    rng = np.random.default_rng(1)
    pairs = rng.integers(-32768, 32767, (3, 100, 2), dtype=np.int16)
    pool = BufferPool()
    got = [sc16_into(pairs, pool) for _ in range(3)]
    want = sc16_to_complex(pairs)
    for g in got:
        np.testing.assert_array_equal(g, want)


def sc16_into(pairs: np.ndarray, pool) -> np.ndarray:
    from dsp.sc16 import sc16_to_complex64

    return sc16_to_complex64(pairs, pool.take(pairs.shape[:-1])).copy()
