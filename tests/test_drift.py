"""The receiver under the impairments of unsynchronised radios (issue 13): sample-clock drift
tied to the LO, whole-subcarrier carrier offsets, look-back before acquisition.

Every test knows its answer from the emulator's truth: the illumination delay at RX sample
``n`` is ``d(n) = n0 - delta n`` (``truth.illumination_delay_samples``).  A window starting
at ``s`` whose reference is delayed by the receiver's fractional ``f`` is on time when
``s + f - d(s)`` equals, modulo ``N``, the same quantity at the reference window.
"""

from __future__ import annotations

import numpy as np
import pytest

from dsp.receiver import Receiver
from dsp.receiver_config import ReceiverConfig
from dsp.results import BlockStats, PacketResult, RangingEpoch
from dsp.waveform import WaveformConfig
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig


def _timing_error(rx: Receiver, truth) -> np.ndarray:
    """Receiver timing against the truth, samples ``[window]``, for its newest segment."""
    n = rx.n
    s0 = rx.reference_index
    phi0 = s0 - float(truth.illumination_delay_samples(s0))
    seg = rx._history[-1]
    pos = seg.starts + seg.f - truth.illumination_delay_samples(seg.starts)
    return (pos - phi0 + n / 2) % n - n / 2


def _run(emu: Emulator, rx: Receiver, chunks=None) -> list:
    out = []
    for blk in emu.blocks():
        iq, lost = blk.iq, blk.lost_before
        if chunks is None:
            out += rx.push(iq, lost)
            continue
        pos = 0
        for size in chunks(iq.shape[1]):
            out += rx.push(iq[:, pos : pos + size], lost if pos == 0 else 0)
            pos += size
    return out + rx.flush()


def test_drift_is_tracked_across_100_s(wf):
    """10 ppm tied to the LO: 3.07 kilo-samples of drift over 100 s.  The receiver sees the
    first 0.17 s, then (as after a long overflow) a gap of 99.7 s, then 0.17 s more.  The
    model carries across the gap on the prior ``drift = CFO / fc``: with the CFO known to
    about 0.01 Hz the rate is known to 1e-11, 0.03 samples over the gap; the loop then pulls
    the error in.  Limit 0.05 samples (the issue's); the first null of the projection is at
    1.28 samples, so a receiver without tracking is 3000 samples off.  (Continuous tracking
    over seconds is in the tests below and in test_oracle.py.)"""
    sc = ScenarioConfig(seed=11, duration_s=100.0, lo_ppm=10.0, mode="cw", bands=("central", "upper"))
    emu = Emulator(wf, sc)
    tr = emu.truth
    rx = Receiver(wf, list(sc.bands), config=ReceiverConfig(tag_mode="cw"))
    per = emu.generate_block(0).shape[1]
    n_blocks = int(100.0 * wf.working_rate_hz) // per
    head, tail = range(20), range(n_blocks - 20, n_blocks)
    stats = []
    for b in head:
        stats += [r for r in rx.push(emu.generate_block(b)) if isinstance(r, BlockStats)]
    lost = (tail[0] - head[-1] - 1) * per
    for i, b in enumerate(tail):
        stats += [
            r for r in rx.push(emu.generate_block(b), lost if i == 0 else 0) if isinstance(r, BlockStats)
        ]
    err = _timing_error(rx, tr)
    assert np.all(np.abs(err) < 0.05), err[[0, -1]]
    last = stats[-1]
    assert last.timing_locked
    assert last.timing_drift_ppm == pytest.approx(10.0, abs=1e-3)  # CFO / fc: 1 Hz in 9150 Hz is 1e-4


@pytest.mark.parametrize("ppm", [-10.0, 3.0])
def test_packets_and_ranges_hold_under_drift(wf, ppm):
    """Line of sight, side bands at -20 dB, drift tied to the LO, every impairment on: every
    packet decoded with its bits right, the timing on the truth within 0.05 samples, and the
    measured drift equal to the prior.  The measured drift is a slope over 0.2 s of timing
    measurements whose per-segment error is ~1e-4 samples at 30 dB, so its error is ~1e-9
    (1e-3 ppm); the limit is 0.05 ppm."""
    sc = ScenarioConfig(seed=5, duration_s=0.45, lo_ppm=ppm, snr_lower_db=-20, snr_upper_db=-20)
    emu = Emulator(wf, sc)
    tr = emu.truth
    rx = Receiver(wf, list(sc.bands), truth_packets=(tr.packet_start_sample, tr.packet_bits))
    out = _run(emu, rx)
    packets = [r for r in out if isinstance(r, PacketResult)]
    assert len(packets) == len(tr.packet_start_sample)
    assert all(p.crc_ok and p.bit_errors == 0 for p in packets)
    assert np.all(np.abs(_timing_error(rx, tr)) < 0.05)
    last = [r for r in out if isinstance(r, BlockStats)][-1]
    assert last.timing_drift_measured_ppm == pytest.approx(ppm, abs=0.05)
    assert last.timing_drift_ppm == pytest.approx(ppm, abs=0.05)


def test_decisions_do_not_depend_on_chunking_under_drift(wf):
    """Three chunkings of the same 10 ppm capture give the same packets and ranges."""
    sc = ScenarioConfig(seed=8, duration_s=0.25, lo_ppm=10.0, snr_lower_db=-15, snr_upper_db=-15, n_nlos=2)
    rng = np.random.default_rng(3)
    chunkings = [
        None,
        lambda m: [4097] * (m // 4097) + [m % 4097],
        lambda m: np.diff(np.r_[0, np.sort(rng.choice(np.arange(1, m), 7, replace=False)), m]).tolist(),
    ]
    results = []
    for ch in chunkings:
        emu = Emulator(wf, sc)
        out = _run(emu, Receiver(wf, list(sc.bands)), ch)
        bits = [p.bits.tolist() for p in out if isinstance(p, PacketResult)]
        ranges = [e.range_m["ir_first_interp"] for e in out if isinstance(e, RangingEpoch)]
        results.append((bits, np.asarray(ranges)))
    assert results[0][0], "no packet decoded"
    for bits, ranges in results[1:]:
        assert bits == results[0][0]
        np.testing.assert_allclose(ranges, results[0][1], atol=1e-6)


def test_a_whole_subcarrier_cfo_is_acquired():
    """At 5.8 GHz, 8 ppm is a CFO of 46.4 kHz, 1.55 subcarriers (beyond the lag-product
    estimator's half subcarrier).  The receiver finds it, follows the 8 ppm drift, decodes.
    The central CFO is known to about df / (2 pi sqrt(SNR K M)) over the lag products
    (below 0.1 Hz); the limit is 1 Hz."""
    wf = WaveformConfig(carrier_freq_hz=5.8e9)
    sc = ScenarioConfig(seed=4, duration_s=0.3, lo_ppm=8.0, snr_lower_db=-20, snr_upper_db=-20)
    emu = Emulator(wf, sc)
    tr = emu.truth
    rx = Receiver(wf, list(sc.bands), truth_packets=(tr.packet_start_sample, tr.packet_bits))
    out = _run(emu, rx)
    packets = [r for r in out if isinstance(r, PacketResult)]
    assert len(packets) == len(tr.packet_start_sample) and all(p.crc_ok for p in packets)
    assert rx.cfo_hz["central"] == pytest.approx(tr.cfo_hz["central"], abs=1.0)
    assert abs(tr.cfo_hz["central"]) > wf.subcarrier_spacing_hz


def test_look_back_decodes_packets_that_ended_before_acquisition(wf):
    """Side bands at -36 dB: blind acquisition needs about 0.7 s, so the first packets end
    before it.  They must be detected (decoded from the tap features acquisition kept) and
    nearly error-free: Eb/N0 = 2 * 10**-3.6 * 12000 = 6.0 (7.8 dB) gives BPSK a BER of
    2.6e-4; allowing a 1 dB loss (1e-3), the early packets' bits (n <= 1000) hold at most
    a Poisson(1) number of errors, and P(X > 6) = 1e-4: the limit is 6 errors in all."""
    sc = ScenarioConfig(seed=1, duration_s=1.0, snr_lower_db=-36, snr_upper_db=-36, circuitry=False)
    emu = Emulator(wf, sc)
    tr = emu.truth
    rx = Receiver(wf, list(sc.bands), truth_packets=(tr.packet_start_sample, tr.packet_bits))
    out = _run(emu, rx)
    acquired = [r.time_s for r in out if isinstance(r, BlockStats) and all(r.acquired.values())]
    assert acquired, "the tag was never acquired"
    ends_s = tr.packet_start_sample / wf.working_rate_hz + wf.packet_duration_s
    early = np.flatnonzero(ends_s < acquired[0])
    assert early.size >= 2, f"acquired at {acquired[0]:.3f} s: too early to test look-back"
    packets = {p.truth_index: p for p in out if isinstance(p, PacketResult) and p.truth_index is not None}
    missing = [int(i) for i in early if i not in packets]
    assert not missing, f"packets {missing} (before acquisition at {acquired[0]:.3f} s) not decoded"
    assert sum(packets[i].bit_errors for i in early) <= 6
    assert len(packets) == len(tr.packet_start_sample)


def test_an_untied_clock_with_a_small_carrier_offset_is_caught_at_start_up(wf):
    """The sample clock untied from the LO (``ideal=True``: no drift) with a carrier offset of
    -0.45 ppm.  The shared-reference prior would put the drift at -0.45 ppm (14 samples/s), under
    the 0.5 ppm ``drift_check_ppm``; the start-up measurement's standard error is about 0.003 ppm
    at 30 dB, so the receiver must see that the clock does not drift and keep every segment's
    timing error below the 0.05-sample tracking target from the start (with the fixed 0.5 ppm
    check it reached 0.36 samples while the loop caught up)."""
    sc = ScenarioConfig(seed=5, duration_s=0.5, ideal=True, lo_ppm=-0.45, snr_lower_db=-20, snr_upper_db=-20)
    emu = Emulator(wf, sc)
    rx = Receiver(wf, list(sc.bands), emu.rate_hz, ReceiverConfig())
    out = _run(emu, rx)
    errs = [
        abs(o.timing_error_samples)
        for o in out
        if isinstance(o, BlockStats) and o.timing_error_samples is not None
    ]
    assert errs and max(errs) < 0.05, max(errs)  # what the receiver reports, every segment
    assert np.max(np.abs(_timing_error(rx, emu.truth))) < 0.05  # and against the truth, at the end
    assert sum(isinstance(o, PacketResult) and o.crc_ok for o in out) >= 4


def test_replay_reports_the_prior_and_the_measured_drift(wf, capsys):
    """The summary carries the last segment's two drifts (issue 13: "report both"), and the human
    output prints them; a run with no segment reports none.  The 0.05 ppm limit is the one
    derived in ``test_packets_and_ranges_hold_under_drift`` (the measured drift's error is about
    1e-3 ppm at this SNR)."""
    from app.run import Run, summarise
    from backscatter.commands.receive_cmd import print_human

    sc = ScenarioConfig(seed=5, duration_s=0.3, lo_ppm=-7.0, snr_lower_db=-20, snr_upper_db=-20)
    emu = Emulator(wf, sc)
    rx = Receiver(wf, list(sc.bands))
    run = Run(wf, list(sc.bands), sc.duration_s, None, processing_s=1.0)
    run.add(_run(emu, rx))
    drift = summarise(run)["timing_drift_ppm"]
    assert drift["prior"] == run.last_block.timing_drift_ppm == pytest.approx(-7.0, abs=0.05)
    assert drift["measured"] == run.last_block.timing_drift_measured_ppm
    assert drift["measured"] == pytest.approx(-7.0, abs=0.05) and drift["locked"]
    print_human(summarise(run), "replay")
    assert "sample-clock drift" in capsys.readouterr().out
    assert summarise(Run(wf, list(sc.bands), 0.0, None))["timing_drift_ppm"] == {
        "prior": None,
        "measured": None,
        "locked": None,
    }
