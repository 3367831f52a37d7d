"""The streaming worker: IQ messages in, the receiver's results out, gaps and restarts handled."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from dsp.receiver import Receiver
from dsp.receiver_config import ReceiverConfig
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig
from sdr.transport import IQPublisher, IQSubscriber, ResultPublisher, ResultSubscriber
from sdr.worker import StreamWorker
from tests.support_ranging import D0_TYPED_M, HW_SEED, assert_ranges, cal_kwargs


class Pipeline:
    """An in-process streamer -> worker -> listener on loopback ports chosen by the OS."""

    def __init__(self, wf, bands, make_receiver, **worker_kw):
        centres = [(b, wf.band_centers_hz[b]) for b in bands]
        self.iq = IQPublisher(
            "tcp://127.0.0.1:*",
            capture_rate_hz=wf.working_rate_hz,
            channels=centres,
            waveform=wf,
            source="emulator",
            mode="push",
            fmt="fc32",
        )
        self.sub = IQSubscriber(self.iq.endpoint, mode="pull")
        self.pub = ResultPublisher("tcp://127.0.0.1:*")
        self.results = ResultSubscriber(self.pub.endpoint)
        self.worker = StreamWorker(self.sub, self.pub, make_receiver, health_period_s=0.2, **worker_kw)
        self.stop = threading.Event()
        self.summary: dict = {}
        self.thread = threading.Thread(target=lambda: self.summary.update(self.worker.run(self.stop)))
        time.sleep(0.2)  # let the result subscription reach the publisher
        self.thread.start()

    def collect(self, until, timeout_s=60.0) -> list:
        out, deadline = [], time.monotonic() + timeout_s
        while time.monotonic() < deadline and not until(out):
            m = self.results.recv(timeout_s=0.2)
            if m is not None:
                out.append(m)
        return out

    def close(self):
        self.stop.set()
        self.thread.join(timeout=10)
        for s in (self.results, self.pub, self.sub):
            s.close()
        self.iq.close(linger_s=0)


@pytest.fixture
def burst(wf):
    sc = ScenarioConfig(duration_s=0.45, seed=4, snr_lower_db=-15, snr_upper_db=-15, circuitry_seed=HW_SEED)
    emu = Emulator(wf, sc)
    return emu, emu.generate()


def make_receiver_for(emu, methods=None):
    """The receiver as a user runs it: the workflow's calibration of radio ``HW_SEED``, the typed
    TX-RX distance (tests/support_ranging.py)."""
    kw = cal_kwargs(emu.wf, emu.sc.bands)
    more = {} if methods is None else {"methods": tuple(methods)}

    def make(h):
        cfg = ReceiverConfig(tx_rx_distance_m=D0_TYPED_M, **more)
        return Receiver(h.waveform, h.bands, h.capture_rate_hz, cfg, **kw)

    return make


def packets_of(msgs):
    return [m for m in msgs if m.kind == "packet"]


def test_worker_decodes_a_stream_and_publishes_every_kind(wf, burst):
    emu, iq = burst
    p = Pipeline(wf, list(emu.sc.bands), make_receiver_for(emu))
    try:
        step = 100_000
        for i in range(0, iq.shape[1], step):
            p.iq.send(np.ascontiguousarray(iq[:, i : i + step]), i, i / wf.working_rate_hz)
        n_true = len(emu.truth.packet_start_sample)
        msgs = p.collect(
            lambda out: sum(m.kind == "epoch" for m in out) >= n_true and any(m.kind == "health" for m in out)
        )
    finally:
        p.close()
    pk = packets_of(msgs)
    assert len(pk) == n_true >= 3
    assert all(m.fields["crc_ok"] for m in pk)
    starts = np.array([m.fields["start_sample"] for m in pk])
    np.testing.assert_allclose(starts, emu.truth.packet_start_sample, atol=wf.fft_size)
    epochs = [m for m in msgs if m.kind == "epoch"]
    assert len(epochs) == n_true
    # each epoch's range within the bound at -15 dB over one packet (1875 symbols) plus the
    # calibration's error (tests/support_ranging.py: 0.15 m; was 1.0 m)
    m_side = wf.packet_bits * emu.truth.tag_symbol_samples / wf.fft_size
    for m in epochs:
        assert_ranges(emu, SimpleNamespace(**m.fields), m_side)
    assert {"stats", "health", "spectrum"} <= {m.kind for m in msgs}
    health = [m for m in msgs if m.kind == "health"][-1].fields
    assert health["samples_lost"] == 0 and health["stream_state"] in ("live", "stalled")
    spec = next(m for m in msgs if m.kind == "spectrum")
    assert spec.arrays["psd_db_central"].shape == (512,)
    assert p.summary["latency"]["count"] == 2 * n_true


def test_a_lost_message_is_reported_as_a_gap_and_decoding_resumes(wf, burst):
    emu, iq = burst
    p = Pipeline(wf, list(emu.sc.bands), make_receiver_for(emu))
    step = 100_000
    skip = (emu.truth.packet_start_sample[1] // step) * step  # lose the message inside packet 2
    try:
        for i in range(0, iq.shape[1], step):
            if i == skip:
                p.iq.seq += 1  # a message the network lost
                continue
            p.iq.send(np.ascontiguousarray(iq[:, i : i + step]), i, i / wf.working_rate_hz)
        n_true = len(emu.truth.packet_start_sample)
        msgs = p.collect(lambda out: sum(m.kind == "epoch" for m in out) >= n_true - 1)
    finally:
        p.close()
    gap = next(m for m in msgs if m.kind == "gap")
    assert gap.fields["samples_lost"] == step
    pk = packets_of(msgs)
    assert len(pk) == n_true - 1 and all(m.fields["crc_ok"] for m in pk)
    assert p.summary["gaps"] == 1 and p.summary["samples_lost"] == step


def test_an_unreceivable_stream_is_counted_not_fatal(wf, burst):
    emu, iq = burst

    def refuse(h):
        raise ValueError("no calibration for this stream")

    p = Pipeline(wf, list(emu.sc.bands), refuse)
    try:
        p.iq.send(np.ascontiguousarray(iq[:, :50_000]), 0, 0.0)
        msgs = p.collect(lambda out: any(m.kind == "health" and m.fields["messages_dropped"] for m in out))
    finally:
        p.close()
    assert any(m.fields["messages_dropped"].get("unreceivable") for m in msgs if m.kind == "health")


def test_ranging_in_another_process_publishes_the_same_epochs_in_order(wf, burst):
    """``ranging_processes=1``: the methods run in a spawned process; every epoch comes out once,
    in order, with the ranges the receiver gives on its own thread (same code, same numbers)."""
    emu, iq = burst
    methods = ("ir_first", "ir_first_interp", "music", "nomp")
    make = make_receiver_for(emu, methods)
    step = 100_000
    header = SimpleNamespace(waveform=wf, bands=list(emu.sc.bands), capture_rate_hz=wf.working_rate_hz)
    rx = make(header)
    direct = []
    for i in range(0, iq.shape[1], step):
        direct += rx.push(np.ascontiguousarray(iq[:, i : i + step]))
    direct = [r for r in direct + rx.flush() if type(r).__name__ == "RangingEpoch"]
    p = Pipeline(wf, list(emu.sc.bands), make, ranging_processes=1)
    try:
        for i in range(0, iq.shape[1], step):
            p.iq.send(np.ascontiguousarray(iq[:, i : i + step]), i, i / wf.working_rate_hz)
        msgs = p.collect(lambda out: sum(m.kind == "epoch" for m in out) >= len(direct), timeout_s=120)
    finally:
        p.close()
    epochs = [m.fields for m in msgs if m.kind == "epoch"]
    assert len(epochs) == len(direct) >= 3
    assert [e["time_s"] for e in epochs] == sorted(e["time_s"] for e in epochs)
    for got, want in zip(epochs, direct, strict=True):
        assert got["time_s"] == pytest.approx(want.time_s, abs=1e-9)
        assert set(got["range_m"]) == set(methods)
        for m in methods:
            assert got["range_m"][m] == pytest.approx(want.range_m[m], rel=1e-12, abs=1e-9)
        assert got["range_std_m"] == pytest.approx(want.range_std_m, rel=1e-12)
    assert p.summary["ranging_processes"] == 1 and p.summary["ranging_busy_s"] > 0
    assert (
        p.summary["realtime_factor"]
        <= p.summary["samples_per_channel"] / wf.working_rate_hz / (p.summary["ranging_busy_s"])
    )


def test_a_deferred_epoch_ranged_later_equals_one_ranged_at_once(wf, burst):
    """``Receiver.defer_ranging``: epochs come out with CFRs, CIRs and SNRs and a ``job`` but no
    method's answer; :func:`dsp.epoch.range_methods` of the job fills exactly what the receiver
    gives without deferring (same code, same inputs)."""
    from dsp.epoch import range_methods
    from dsp.results import RangingEpoch

    emu, iq = burst
    make = make_receiver_for(emu, ("ir_first", "ir_first_interp", "music", "nomp"))
    header = SimpleNamespace(waveform=wf, bands=list(emu.sc.bands), capture_rate_hz=wf.working_rate_hz)
    runs = []
    for defer in (False, True):
        rx = make(header)
        rx.defer_ranging = defer
        out = rx.push(np.ascontiguousarray(iq)) + rx.flush()
        runs.append([r for r in out if isinstance(r, RangingEpoch)])
    direct, deferred = runs
    assert len(direct) == len(deferred) >= 3
    for want, got in zip(direct, deferred, strict=True):
        assert want.job is None and got.job is not None and got.range_m == {}
        np.testing.assert_array_equal(got.cfr["central"], want.cfr["central"])
        range_methods(got.job).fill(got)
        assert got.job is None
        assert got.range_m == want.range_m and got.delay_s == want.delay_s
        assert got.range_band_m == want.range_band_m and got.range_std_m == want.range_std_m
