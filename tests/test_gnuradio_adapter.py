"""The GNU Radio adapter without GNU Radio: tag headers, PMTs, alignment, gaps, malformed input.

``tests/test_gnuradio.py`` runs the same paths against a real GNU Radio.
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backscatter import cli
from backscatter.commands.gnuradio_args import add_gnuradio_input_args, gnuradio_subscriber_from_args
from captures.reader import open_capture
from dsp.config_base import ConfigError
from dsp.waveform import get_profile
from sdr.radio_config import radio_config_for
from sdr.transport import ResultPublisher
from sdr.transport.gnuradio import GnuRadioConfig, GnuRadioPublisher, GnuRadioSubscriber
from sdr.transport.gr_align import Aligner
from sdr.transport.gr_tags import (
    GrHeaderError,
    GrTag,
    Pair,
    decode_tag_header,
    encode_tag_header,
    pmt_decode,
    pmt_double,
    pmt_rx_time,
)
from sdr.worker import StreamWorker

# pmt.serialize_str(...).hex() printed by GNU Radio 3.10.5's Python bindings
GR_SERIALISED = {
    "02000772785f74696d65": "rx_time",
    "0c000000020b0000000000000005043fd0000000000000": (5, 0.25),
    "04417d4c0000000000": 30.72e6,
    "01": False,
    "06": None,
    "03fffffffd": -3,
    "0d0000010000000000": 2**40,
    "0b0000010000000000": 2**40,
    "07020001610300000001": Pair("a", 1),
    "09070200016a030000000209070200016b030000000106": {"j": 2, "k": 1},
    "08000000020000": [True, True],
    "053ff00000000000004000000000000000": 1 + 2j,
}


@pytest.mark.parametrize("hexstr", sorted(GR_SERIALISED))
def test_pmts_serialised_by_gnuradio_decode(hexstr):
    buf = memoryview(bytes.fromhex(hexstr))
    value, end = pmt_decode(buf)
    assert end == len(buf)
    assert value == GR_SERIALISED[hexstr]


def test_uniform_vectors_decode_to_native_arrays():
    v, _ = pmt_decode(memoryview(bytes.fromhex("0a080000000201003f80000040000000")))
    np.testing.assert_array_equal(v, np.array([1.0, 2.0], np.float32))
    v, _ = pmt_decode(memoryview(bytes.fromhex("0a0a0000000101003f8000003f800000")))
    assert v.dtype == np.complex64 and v[0] == 1 + 1j


def test_rx_time_is_written_as_gr_uhd_writes_it():
    assert pmt_rx_time(5.25).hex() == "0c000000020b0000000000000005043fd0000000000000"


def test_tag_header_round_trip():
    head = encode_tag_header(1000, [(1000, "rx_time", pmt_rx_time(2.5)), (1003, "rx_rate", pmt_double(1e6))])
    offset, tags, n = decode_tag_header(memoryview(head + b"\0" * 16))
    assert (offset, n) == (1000, len(head))
    assert tags == [GrTag(1000, "rx_time", (2, 0.5)), GrTag(1003, "rx_rate", 1e6)]


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\xf0\x5f",
        b"\x00" * 19,
        encode_tag_header(0, [(0, "k", b"\x0e")]),
        b"\xf0\x5f\x01" + b"\xff" * 16,
    ],
)
def test_malformed_headers_raise_only_grheadererror(bad):
    with pytest.raises(GrHeaderError):
        decode_tag_header(memoryview(bad))


def zmq_frame(b: bytes) -> zmq.Frame:
    return zmq.Frame(b)


def _tag(o: int, t: float) -> GrTag:
    return GrTag(o, "rx_time", (int(t), t - int(t)))


def _all(al: Aligner) -> list:
    out = []
    while (c := al.take(flush=True)) is not None:
        out.append(c)
    return out


def test_offset_alignment_joins_late_sockets_and_reports_a_dropped_message_as_a_gap():
    x = np.arange(100, dtype=np.complex64)
    al = Aligner(2, 1e3, align="offset", chunk_samples=1000)
    al.add(0, 10, x[10:40])  # lane 0 joined at item 10, lane 1 at item 20
    al.add(1, 20, x[20:50] + 1000)
    al.add(0, 40, x[40:70])
    al.add(1, 60, x[60:70] + 1000)  # lane 1 lost items 50..59
    chunks = _all(al)
    assert [(c.capture_index, c.lost_before, c.iq.shape[1]) for c in chunks] == [(0, 0, 30), (40, 10, 10)]
    np.testing.assert_array_equal(chunks[0].iq[0], x[20:50])
    np.testing.assert_array_equal(chunks[0].iq[1], x[20:50] + 1000)
    np.testing.assert_array_equal(chunks[1].iq[1], x[60:70] + 1000)


def test_time_alignment_uses_rx_time_and_sees_an_overflow_in_a_retagged_time():
    rate = 1000.0
    x = np.arange(300, dtype=np.complex64)
    al = Aligner(2, rate, align="auto", chunk_samples=1000)
    # two flowgraphs, different offsets, same device time: lane 1 started 5 samples later
    al.add(0, 0, x[0:100], [_tag(0, 7.0)])
    al.add(1, 50, x[5:105], [_tag(50, 7.005)])
    assert al.mode == "time"
    # an overflow on lane 0: 20 samples lost, the offsets run on, rx_time says so
    al.add(0, 100, x[120:200], [_tag(100, 7.120)])
    al.add(1, 150, x[105:205])
    chunks = _all(al)
    assert [(c.index, c.lost_before, c.iq.shape[1]) for c in chunks] == [(7005, 0, 95), (7120, 20, 80)]
    np.testing.assert_array_equal(chunks[0].iq[0], chunks[0].iq[1])
    np.testing.assert_array_equal(chunks[1].iq[0], chunks[1].iq[1])


def test_an_offset_going_back_restarts_the_stream():
    x = np.ones(10, np.complex64)
    al = Aligner(2, 1e3, align="offset", chunk_samples=1000)
    al.add(0, 100, x)
    al.add(1, 100, x)
    assert _all(al)[0].new_stream
    assert al.add(0, 0, x) is False
    al.add(1, 0, x)
    c = _all(al)
    assert al.restarts == 1 and c[0].new_stream and c[0].capture_index == 0 and c[0].lost_before == 0


def test_a_stalled_socket_overflows_its_neighbours_into_a_gap():
    al = Aligner(2, 1e3, align="offset", chunk_samples=10, max_buffer_samples=30)
    al.add(0, 0, np.zeros(10, np.complex64))
    al.add(1, 0, np.zeros(10, np.complex64))
    assert al.take().capture_index == 0
    for k in range(1, 10):  # lane 1 stalls while lane 0 runs on
        al.add(0, 10 * k, np.full(10, k, np.complex64))
    al.add(1, 10, np.zeros(90, np.complex64))
    chunks = _all(al)
    assert al.overflow_samples == 60
    assert (chunks[0].capture_index, chunks[0].lost_before) == (70, 60)
    assert sum(c.iq.shape[1] for c in chunks) == 30


def _pair(socket_in: str, tags: bool, fmt: str = "fc32") -> tuple[GnuRadioPublisher, GnuRadioSubscriber]:
    wf = get_profile("default")
    rows = (("central", "tcp://127.0.0.1:*"), ("upper", "tcp://127.0.0.1:*"))
    centres = (wf.band_centers_hz["central"], wf.band_centers_hz["upper"])
    pub_cfg = GnuRadioConfig(
        endpoints=rows,
        rf_centers_hz=centres,
        capture_rate_hz=30.72e6,
        socket="push",
        item_format=fmt,
        tags=tags,
    )
    pub = GnuRadioPublisher(pub_cfg)
    sub_rows = tuple((b, e) for (b, _), e in zip(rows, pub.endpoints, strict=True))
    sub_cfg = pub_cfg.replace(endpoints=sub_rows, socket=socket_in, chunk_samples=4096)
    return pub, GnuRadioSubscriber(sub_cfg, wf)


@pytest.mark.parametrize("fmt", ["fc32", "sc16"])
def test_publisher_to_subscriber_keeps_samples_and_reports_a_source_gap(fmt):
    pub, sub = _pair("pull", tags=True, fmt=fmt)
    rng = np.random.default_rng(1)
    iq = (rng.standard_normal((2, 3000)) * 0.1 + 1j * rng.standard_normal((2, 3000)) * 0.1).astype(
        np.complex64
    )
    try:
        pub.send(iq[:, :1000], 0, 0.0)
        pub.send(iq[:, 1500:3000], 1500, 1500 / 30.72e6, lost_before=500)  # a source gap: rx_time re-tagged
        got = []
        while sum(m.header.n_samples for m in got) < 2500:
            m = sub.recv(timeout_s=5.0)
            assert m is not None, "timed out"
            got.append(m)
    finally:
        pub.close(0)
        sub.close()
    assert [(m.header.capture_index, m.lost_before) for m in got] == [(0, 0), (1500, 500)]
    assert sub.samples_lost == 500 and sub.gaps == 1 and not sub.drops
    assert got[0].header.source == "gnuradio" and got[0].header.bands == ["central", "upper"]
    tol = 0 if fmt == "fc32" else 1 / 32767
    np.testing.assert_allclose(
        np.concatenate([m.complex64() for m in got], axis=1), iq[:, np.r_[0:1000, 1500:3000]], atol=tol
    )


def test_malformed_messages_are_counted_and_dropped():
    pub, sub = _pair("pull", tags=True)
    try:
        for s in pub._socks:  # garbage on the publisher's own sockets, then a good chunk
            s.send(b"\x01\x02\x03")  # no tag header
            s.send(encode_tag_header(0, []) + b"\x00" * 5)  # payload not whole items
            s.send_multipart([b"a", b"b", b"c"])  # three frames
            s.send(encode_tag_header(0, [(0, "rx_time", pmt_double(1.5))]) + bytes(8))  # rx_time not a tuple
            s.send(encode_tag_header(0, [(0, "rx_rate", pmt_double(1e6))]) + bytes(8))  # another rate
        pub.send(np.ones((2, 100), np.complex64), 0, 0.0)
        m = sub.recv(timeout_s=5.0)
    finally:
        pub.close(0)
        sub.close()
    assert m is not None and m.header.n_samples == 100
    assert dict(sub.drops) == {"gr_header": 4, "payload": 2, "frames": 2, "rx_rate": 2}


def test_tag_headers_where_none_were_expected_are_named_as_such():
    pub, sub = _pair("pull", tags=False)
    try:
        pub._socks[0].send(encode_tag_header(0, [(0, "rx_rate", pmt_double(30.72e6))]) + bytes(80))
        assert sub.recv(timeout_s=0.5) is None
    finally:
        pub.close(0)
        sub.close()
    assert dict(sub.drops) == {"unexpected_gr_header": 1}


def test_worker_needs_an_input(capsys):
    assert cli.main(["worker", "--duration-s", "0.1"]) == 2
    assert "--gnuradio" in capsys.readouterr().err
    assert cli.main(["worker", "--gnuradio", "upper=tcp://127.0.0.1:1"]) == 2
    assert "central" in capsys.readouterr().err


def test_record_writes_a_gnuradio_stream_with_its_gap(tmp_path):
    """``record --gnuradio``: GNU Radio style sockets (our publisher stands in) to a capture file."""
    wf = get_profile("default")
    rows = (("central", "tcp://127.0.0.1:*"), ("lower", "tcp://127.0.0.1:*"), ("upper", "tcp://127.0.0.1:*"))
    cfg = GnuRadioConfig(
        endpoints=rows,
        rf_centers_hz=tuple(wf.band_centers_hz[b] for b, _ in rows),
        socket="push",
        item_format="sc16",
        tags=True,
    )
    pub = GnuRadioPublisher(cfg)
    out = tmp_path / "gr.h5"
    argv = [
        "record",
        "--out",
        str(out),
        "--idle-timeout-s",
        "1",
        "--gnuradio-format",
        "sc16",
        "--gnuradio-tags",
    ]
    for (band, _), e in zip(rows, pub.endpoints, strict=True):
        argv += ["--gnuradio", f"{band}={e}"]
    result: dict = {}
    t = threading.Thread(target=lambda: result.setdefault("rc", cli.main(argv)))
    t.start()
    rng = np.random.default_rng(2)
    iq = (rng.standard_normal((3, 5000)) + 1j * rng.standard_normal((3, 5000))).astype(np.complex64) * 0.1
    try:
        pub.send(iq[:, :2000], 0, 0.0)
        pub.send(iq[:, 2300:], 2300, 2300 / cfg.capture_rate_hz, lost_before=300)
        t.join(timeout=60)
    finally:
        pub.close(0)
    assert result.get("rc") == 0
    with open_capture(out) as cap:
        assert cap.bands == ["central", "lower", "upper"] and cap.capture_rate_hz == cfg.capture_rate_hz
        assert [c.center_freq_hz for c in cap.channels] == list(cfg.rf_centers_hz)
        assert cap.gaps.tolist() == [[2000, 300]]
        np.testing.assert_allclose(cap.read(), iq[:, np.r_[0:2000, 2300:5000]], atol=1 / 32767)


def test_remote_gnuradio_endpoints_need_insecure(capsys, tmp_path):
    """GNU Radio's ZMQ blocks have no CURVE: a remote endpoint needs an explicit --insecure."""
    argv = ["record", "--out", str(tmp_path / "r.h5"), "--gnuradio", "central=tcp://192.0.2.7:5601"]
    assert cli.main([*argv, "--gnuradio", "upper=tcp://192.0.2.7:5603"]) == 2
    assert "refusing to connect to tcp://192.0.2.7:5601" in capsys.readouterr().err
    assert not (tmp_path / "r.h5").exists()


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=200), st.integers(0, 3))
def test_arbitrary_bytes_after_a_valid_start_raise_only_grheadererror(tail, ntags):
    head = encode_tag_header(7, [(7, "rx_time", pmt_rx_time(1.5))])[:19]
    buf = head[:11] + ntags.to_bytes(8, "little") + tail  # magic, version, offset, ntags, then anything
    try:
        decode_tag_header(memoryview(buf))
    except GrHeaderError:
        pass
    try:
        pmt_decode(memoryview(tail))
    except GrHeaderError:
        pass


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.binary(max_size=64), min_size=1, max_size=3))
def test_the_subscriber_counts_any_message_it_cannot_read(frames):
    wf = get_profile("default")
    cfg = GnuRadioConfig(  # connects to nothing: frames are handed to the parser directly
        endpoints=(("central", "tcp://127.0.0.1:9"), ("upper", "tcp://127.0.0.1:9")),
        rf_centers_hz=(915e6, 960e6),
        tags=True,
    )
    with GnuRadioSubscriber(cfg, wf) as sub:
        sub._parse(0, [zmq_frame(f) for f in frames])  # never raises
    assert sub.counters.received + sum(sub.drops.values()) == 1


def test_rate_and_rf_centres_come_from_a_radio_config_then_the_flags(tmp_path):
    wf = get_profile("x410-62m5")
    rc = radio_config_for(wf, 2.4e9)
    rc.save_json(tmp_path / "radio.json")
    p = argparse.ArgumentParser()
    p.add_argument("--connect")
    add_gnuradio_input_args(p)
    bands = ["--gnuradio", "central=tcp://127.0.0.1:9", "--gnuradio", "upper=tcp://127.0.0.1:9"]
    args = p.parse_args([*bands, "--radio-config", str(tmp_path / "radio.json"), "--profile", "x410-62m5"])
    with gnuradio_subscriber_from_args(args) as sub:
        assert sub.cfg.capture_rate_hz == 62.5e6
        assert sub.cfg.rf_centers_hz == (2.4e9, 2.4e9 + wf.tag_shift_hz)
    args = p.parse_args([*bands, "--rf-center-hz", "upper=2.5e9", "--capture-rate-hz", "30.72e6"])
    with gnuradio_subscriber_from_args(args) as sub:
        assert sub.cfg.capture_rate_hz == 30.72e6
        assert sub.cfg.rf_centers_hz == (915e6, 2.5e9)
        assert sub.waveform.capture_rate_hz == 30.72e6
    assert p.parse_args([*bands, "--sample-rate-hz", "1e6"]).capture_rate_hz == 1e6  # the old flag


def test_a_gnuradio_config_from_before_the_rate_rename_still_loads():
    new = GnuRadioConfig(
        endpoints=(("central", "tcp://h:1"), ("upper", "tcp://h:2")), rf_centers_hz=(1e9, 2e9)
    )
    old = {k: v for k, v in new.to_dict().items() if k != "capture_rate_hz"}
    assert GnuRadioConfig.from_dict({**old, "sample_rate_hz": 62.5e6}) == new.replace(capture_rate_hz=62.5e6)
    with pytest.raises(ConfigError, match="unknown key"):
        GnuRadioConfig.from_dict({**old, "rate_hz": 62.5e6})


class _SlowReceiver:
    def __init__(self, delay_s: float):
        self.delay_s, self.pushed = delay_s, 0

    def push(self, iq, lost):
        time.sleep(self.delay_s)
        self.pushed += 1
        return []

    def flush(self):
        return []


def test_a_backlog_behind_a_slow_receiver_is_not_idleness():
    """The worker's --idle-exit-s counts from the last message read, once its queue is empty."""
    pub, sub = _pair("pull", tags=True)
    rx = _SlowReceiver(0.3)
    with ResultPublisher("tcp://127.0.0.1:*") as results:
        worker = StreamWorker(sub, results, lambda h: rx, health_period_s=10.0)
        try:
            for k in range(6):  # all sent at once, 1.8 s of processing, idle exit after 0.5 s
                pub.send(np.zeros((2, 4096), np.complex64), 4096 * k, 4096 * k / 30.72e6)
            summary = worker.run(threading.Event(), idle_exit_s=0.5, duration_s=30)
        finally:
            pub.close(0)
            sub.close()
    assert rx.pushed == 6 and summary["samples_per_channel"] == 6 * 4096
