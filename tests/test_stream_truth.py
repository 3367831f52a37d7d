"""Ground truth in the IQ stream's metadata: validated on the wire, used by the worker."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from dsp.receiver import Receiver
from dsp.receiver_config import ReceiverConfig
from sdr.control import ControlClient, ControlServer, LiveConfig, WorkerSettings
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig
from sdr.stream_truth import StreamTruth
from sdr.transport import IQPublisher, MessageError, decode, encode_iq
from tests.test_worker import Pipeline, burst  # noqa: F401 (burst is a fixture)


class TruthPipeline(Pipeline):
    """:class:`tests.test_worker.Pipeline` whose streamer puts ``truth`` on every IQ header."""

    def __init__(self, wf, bands, make_receiver, truth: StreamTruth):
        real = IQPublisher

        def with_truth(*args, **kwargs):
            return real(*args, **kwargs, truth=truth)

        import tests.test_worker as tw

        tw.IQPublisher = with_truth
        try:
            super().__init__(wf, bands, make_receiver)
        finally:
            tw.IQPublisher = real


@pytest.fixture
def truth(wf):
    return Emulator(wf, ScenarioConfig(duration_s=0.45, seed=4)).truth


def test_stream_truth_round_trips_and_expands_a_loop(truth):
    st = StreamTruth.from_ground_truth(truth, period_samples=1000)
    again = StreamTruth.from_dict(json.loads(json.dumps(st.to_dict())))
    assert again == st and again.range_true_m == truth.range_true_m
    starts, bits = st.truth_packets(work_index=0)
    n = len(truth.packet_start_sample)
    np.testing.assert_array_equal(starts[:n], truth.packet_start_sample)
    np.testing.assert_array_equal(starts[n : 2 * n], np.asarray(truth.packet_start_sample) + 1000)
    np.testing.assert_array_equal(bits[:n], truth.packet_bits)
    np.testing.assert_array_equal(bits[n : 2 * n], truth.packet_bits)
    # a receiver that starts later in the stream: indices relative to its first sample
    later, _ = st.truth_packets(work_index=5500)
    assert np.any(np.isclose(later, truth.packet_start_sample[0] + 5000 - 5500))
    assert StreamTruth(1.0, 2.0).truth_packets() is None  # range only: no packets to compare


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"range_true_m": math.nan}, "range_true_m"),
        ({"tx_rx_distance_m": "far"}, "tx_rx_distance_m"),
        ({"packet_bits_hex": ["zz"]}, "packet"),
        ({"bits_per_packet": -1}, "bits_per_packet"),
        ({"period_samples": 1.5}, "period_samples"),
    ],
)
def test_malformed_truth_is_refused_naming_the_field(truth, change, field):
    d = {**StreamTruth.from_ground_truth(truth).to_dict(), **change}
    with pytest.raises(ValueError, match=field):
        StreamTruth.from_dict(d)
    with pytest.raises(ValueError, match="range_true_m"):
        StreamTruth.from_dict({"tx_rx_distance_m": 1.0})


def test_truth_travels_in_the_iq_header_and_a_bad_one_is_dropped(wf, truth):
    st = StreamTruth.from_ground_truth(truth)
    kwargs = dict(
        stream_id="ab" * 16,
        seq=0,
        capture_index=0,
        time_s=0.0,
        capture_rate_hz=wf.working_rate_hz,
        channels=[("central", 900e6)],
        waveform=wf.replace(capture_rate_hz=wf.working_rate_hz),
        source="emulator",
        iq=np.zeros((1, 64), np.complex64),
    )
    msg = decode(encode_iq(**kwargs, truth=st.to_dict()))
    assert msg.header.truth == st
    assert decode(encode_iq(**kwargs)).header.truth is None  # a radio stream: none
    with pytest.raises(MessageError) as err:
        decode(encode_iq(**kwargs, truth={**st.to_dict(), "range_true_m": None}))
    assert err.value.reason == "truth"


def test_worker_publishes_bit_errors_and_range_errors_from_the_stream_truth(wf, burst):  # noqa: F811
    emu, iq = burst
    st = StreamTruth.from_ground_truth(emu.truth)

    def make(h):
        assert h.truth == st
        # the stream's truth (distance) and the true circuitry: this isolates the truth's
        # plumbing (bit and range errors published from the header's truth), not ranging
        # accuracy, which test_worker.py checks as a user runs it
        cfg = ReceiverConfig(tx_rx_distance_m=h.truth.tx_rx_distance_m)
        first = h.capture_index
        return Receiver(
            h.waveform,
            h.bands,
            h.capture_rate_hz,
            cfg,
            dict(emu.truth.cfr_circuitry),
            h.truth.truth_packets(first),
        )

    p = TruthPipeline(wf, list(emu.sc.bands), make, st)
    try:
        step = 100_000
        for i in range(0, iq.shape[1], step):
            p.iq.send(np.ascontiguousarray(iq[:, i : i + step]), i, i / wf.working_rate_hz)
        n_true = len(emu.truth.packet_start_sample)
        msgs = p.collect(lambda out: sum(m.kind == "epoch" for m in out) >= n_true)
    finally:
        p.close()
    packets = [m for m in msgs if m.kind == "packet"]
    epochs = [m for m in msgs if m.kind == "epoch"]
    assert len(packets) == n_true and all(m.fields["bit_errors"] == 0 for m in packets)
    for m in epochs:
        assert m.fields["range_true_m"] == pytest.approx(emu.truth.range_true_m)
        for method, err in m.fields["range_error_m"].items():
            assert err == pytest.approx(m.fields["range_m"][method] - emu.truth.range_true_m)
            assert abs(err) < 1.0


def test_worker_rebuilds_its_receiver_with_settings_from_the_control_endpoint(wf, burst):  # noqa: F811
    emu, iq = burst
    live = LiveConfig(ReceiverConfig(), distance_given=False)
    built: list[ReceiverConfig] = []

    def make(h):
        # the true distance and circuitry: this isolates the control endpoint's rebuild of the
        # receiver (its settings), not ranging accuracy
        cfg = live.for_stream(h.truth).replace(tx_rx_distance_m=emu.truth.tx_rx_distance_m)
        built.append(cfg)
        return Receiver(h.waveform, h.bands, h.capture_rate_hz, cfg, dict(emu.truth.cfr_circuitry))

    server = ControlServer("tcp://127.0.0.1:*")
    client = ControlClient(server.endpoint)
    p = Pipeline(wf, list(emu.sc.bands), make)
    p.worker.control, p.worker.on_settings = server, live.apply
    try:
        step = 100_000
        p.iq.send(np.ascontiguousarray(iq[:, :step]), 0, 0.0)
        p.collect(lambda out: len(built) == 1, timeout_s=30)
        deadline = time.monotonic() + 10
        while server.applied == 0 and time.monotonic() < deadline:
            client.send(WorkerSettings(None, ("ir_first",)))
            time.sleep(0.1)
        for i in range(step, iq.shape[1], step):
            p.iq.send(np.ascontiguousarray(iq[:, i : i + step]), i, i / wf.working_rate_hz)
        msgs = p.collect(lambda out: any(m.kind == "health" and m.fields.get("control") for m in out))
    finally:
        p.close()
        client.close()
        server.close()
    assert [c.methods for c in built] == [("ir_first", "ir_first_interp"), ("ir_first",)]
    control = [m.fields["control"] for m in msgs if m.kind == "health" and m.fields.get("control")][-1]
    assert control["applied"] >= 1 and control["dropped"] == {}
