"""The streaming receiver's main file (dsp/receiver.py) on short seeded captures whose answer the
emulator knows (issue 19, the mutation check: docs/MUTATION.md, session 14).

The receiver tests (tests/test_receiver.py, tests/test_drift.py) look at packets and ranges
seconds into a run; what the receiver publishes per segment (``BlockStats``: where the segment
starts, how many windows it holds, the CFOs, the noise variances, which bands are acquired, the
drift and lock) and at a gap (``GapEvent``) was barely looked at, nor were the refusals' whole
messages.  Here each test checks one published number against the truth or the definition.

Each test names, in its docstring, mutants it kills (ids of ``tests/mutation_run.py --direct``
on dsp/receiver.py).
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from dsp.receiver import Receiver, ReceiverError
from dsp.receiver_config import ReceiverConfig
from dsp.receiver_startup import STARTUP_WINDOWS
from dsp.results import BlockStats, GapEvent, PacketResult, RangingEpoch
from dsp.waveform import get_profile
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig

WF = get_profile("default")
N = WF.fft_size  # 1024
FS = WF.working_rate_hz
SEG = ReceiverConfig().segment_symbols  # 480
BANDS3 = ("central", "lower", "upper")


def test_refusals_carry_their_whole_message():
    """What a user reads when the receiver refuses its bands or rate (only the start was
    matched before: mutants 13, 17, 21, 42 prefixed ``XX``), and a repeated band is refused
    even though every name is a band (``or`` to ``and``: mutant 20); complex input with a third
    axis is not read as int16 pairs (``and`` to ``or``: mutant 96)."""
    with pytest.raises(ReceiverError) as exc:
        Receiver(WF, ["lower", "upper"])
    assert (
        str(exc.value) == "no central band among the channels ['lower', 'upper']: it is the timing reference"
    )
    with pytest.raises(ReceiverError) as exc:
        Receiver(WF, ["central"])
    assert str(exc.value) == "no side band (lower/upper) among the channels ['central']"
    for bands in (["central", "upper", "upper"], ["central", "upper", "side"]):
        with pytest.raises(ReceiverError) as exc:
            Receiver(WF, bands)
        assert str(exc.value) == f"channels must be distinct bands central/lower/upper, got {bands}"
    rate = 1e6 / 3**0.5
    with pytest.raises(ReceiverError, match="^" + re.escape(f"capture rate {rate} Hz cannot be resampled: ")):
        Receiver(WF, ["central", "upper"], capture_rate_hz=rate)
    rx = Receiver(WF, ["central", "upper"])
    with pytest.raises(ReceiverError) as exc:
        rx.push(np.zeros((3, 100), np.complex64))
    assert str(exc.value) == (
        "expected complex [channel=2, sample] or int16 [channel=2, sample, 2] input, "
        "got complex64 shape (3, 100)"
    )
    with pytest.raises(ReceiverError, match=r"got complex64 shape \(2, 100, 2\)$"):
        rx.push(np.zeros((2, 100, 2), np.complex64))  # three axes are int16 pairs only


@pytest.fixture(scope="module")
def cw3():
    """CW, the three bands, -4 ppm tied to the LO (the grid moves back 12 samples in the 0.1 s),
    side bands at 20 dB (acquired after ``acquisition_min_symbols`` = 960 windows), 0.1 s: six
    whole segments and a partial one at the flush."""
    sc = ScenarioConfig(
        duration_s=0.1, seed=8, mode="cw", bands=BANDS3, lo_ppm=-4.0, snr_upper_db=20, snr_lower_db=20
    )
    emu = Emulator(WF, sc)
    x = emu.generate()
    return (emu, x, *_run(x))


def _run(x: np.ndarray, bands=BANDS3, chunk: int | None = None, **cfg) -> tuple[Receiver, list]:
    rx = Receiver(WF, list(bands), config=ReceiverConfig(tag_mode="cw", **cfg))
    step = chunk or x.shape[1]
    out = [r for i in range(0, x.shape[1], step) for r in rx.push(x[:, i : i + step])]
    return rx, out + rx.flush()


def _stats(out: list) -> list[BlockStats]:
    return [r for r in out if isinstance(r, BlockStats)]


def test_each_segment_publishes_where_it_starts_and_how_many_windows_it_holds(cw3):
    """``BlockStats`` per segment: ``time_s`` is its first window's start (an integer sample,
    the first segment's the reference window's), ``timing_offset`` that start modulo N, and
    ``symbols`` its windows: ``segment_symbols`` each, then at the flush as many as fit.  The
    grid follows the illumination delay ``d(n)`` (truth): segment ``k`` starts at ``s0 + 480 k N
    + d(s_k) - d(s0)`` to the rounding of the model's ``g`` (0.5) plus the tracking error (the
    0.05-sample target, tests/test_drift.py): within 0.55; one window (N samples) off is what a
    wrong start (``starts[1]``) gives.  The last window ends inside the input and the next
    would not fit: ``len - 2N < last <= len - N`` (the grid's step differs from N by under one
    sample over the 0.1 s, d moves 12 samples in all)."""
    emu, x, rx, out = cw3
    tr = emu.truth
    stats = _stats(out)
    s0 = rx.reference_index
    d0 = float(tr.illumination_delay_samples(s0))
    assert len(stats) == 7
    for k, b in enumerate(stats):
        s = b.time_s * FS
        assert abs(s - round(s)) < 1e-6 and b.timing_offset == round(s) % N  # (float64 division)
        drift = float(tr.illumination_delay_samples(s)) - d0
        assert abs(s - s0 - SEG * k * N - drift) < 0.55, (k, s - s0 - SEG * k * N, drift)
    assert [b.symbols for b in stats[:-1]] == [SEG] * 6
    start = stats[-1].time_s * FS
    drift = float(tr.illumination_delay_samples(x.shape[1])) - float(tr.illumination_delay_samples(start))
    last = round(start + (stats[-1].symbols - 1) * N + drift)
    assert x.shape[1] - 2 * N < last <= x.shape[1] - N, x.shape[1] - N - last


def test_a_gap_reports_where_the_input_resumes_and_restarts_acquisition(cw3):
    """600 windows (and 77 samples) in, 5000 samples lost: ``GapEvent`` reports the loss and the
    continuous index where the input resumes (``a + lost``), after every window that arrived
    before it was processed (the windows after the last whole segment too: ``final=False``
    there dropped them, mutant 110).  The side bands were not acquired
    yet; acquisition needs contiguous windows, so it starts again after the gap: no side band is
    acquired before ``acquisition_min_symbols`` = 960 windows after it (the features of the 599
    windows before it kept, the first segment after the gap would have acquired)."""
    _, x, _, _ = cw3
    a, lost = 600 * N + 77, 5000
    rx = Receiver(WF, list(BANDS3), config=ReceiverConfig(tag_mode="cw"))
    out = rx.push(x[:, :a])
    out += rx.push(x[:, a + lost :], lost)
    out += rx.flush()
    gaps = [r for r in out if isinstance(r, GapEvent)]
    assert [(g.index, g.samples_lost) for g in gaps] == [(a + lost, lost)]
    before = _stats(out[: out.index(gaps[0])])  # every whole window before the gap, 599
    assert sum(b.symbols for b in before) == (a - rx.reference_index) // N == 599
    after = out[out.index(gaps[0]) :]
    for b in _stats(after):
        end = round(b.time_s * FS) + b.symbols * N
        assert b.acquired["upper"] == b.acquired["lower"] == (end >= a + lost + 960 * N), (end, b.acquired)


def test_each_segment_publishes_the_cfos_noise_acquisition_and_drift_of_the_truth(cw3):
    """Per segment: the central CFO within 1 Hz of the truth (the receiver tests' limit; here
    at most 0.17 Hz, in the first segment), the side bands' CFOs and noise variances published
    exactly when they are acquired; every band's noise variance (the guard probe's power, an
    average of 0.2-weighted segment means of 480 windows: 4.6 % noise each) within a factor 1.5
    of the emulator's per-sample variance (measured 0.85-1.3 over seeds 8-10: the probe's
    subcarriers see the residual CFO's leakage and the fractional-delay interpolation; a weight
    or scale mutant multiplies it by 2 or more, or by the probe's energy); the drift prior is
    ``cfo / fc`` in ppm, so within 1 Hz / fc = 1.1e-3 ppm of the truth's -4 ppm; the timing
    loop's last error within its 0.05-sample target (tests/test_drift.py) and locked; the
    measured drift not yet published (its fit needs 0.2 s of segments, ``int(0.2 / fs)``
    published it from the third segment on)."""
    emu, _, _, out = cw3
    tr = emu.truth
    fc = WF.carrier_freq_hz
    for b in _stats(out):
        acquired = {k for k, v in b.acquired.items() if v}
        assert "central" in acquired and set(b.cfo_hz) == set(b.noise_var) == acquired
        for band in acquired:
            assert abs(b.cfo_hz[band] - tr.cfo_hz[band]) < 1.0, (band, b.cfo_hz[band] - tr.cfo_hz[band])
            assert 1 / 1.5 < b.noise_var[band] / tr.noise_var[band] < 1.5, (band, b.noise_var[band])
        assert b.timing_drift_ppm == pytest.approx(b.cfo_hz["central"] / fc * 1e6, rel=1e-12, abs=0)
        assert abs(b.timing_drift_ppm - tr.lo_ppm) < 1.1e-3
        assert abs(b.timing_error_samples) < 0.05 and b.timing_locked is True
        assert b.timing_drift_measured_ppm is None  # published once the loop's fits span 0.2 s
    assert _stats(out)[-1].acquired == dict.fromkeys(BANDS3, True)


@pytest.fixture(scope="module")
def one_side():
    """The capture of ``cw3`` with the lower band at -40 dB: at that SNR acquisition finds no
    spike in 0.1 s, so only the upper band can be acquired."""
    sc = ScenarioConfig(
        duration_s=0.1, seed=8, mode="cw", bands=BANDS3, lo_ppm=-4.0, snr_upper_db=20, snr_lower_db=-40
    )
    emu = Emulator(WF, sc)
    return emu, emu.generate()


def _acquired_upper(out: list) -> list[bool]:
    stats = _stats(out)
    assert not any(b.acquired["lower"] for b in stats)
    return [b.acquired["upper"] for b in stats]


def test_acquisition_times_out_to_the_bands_it_found(one_side):
    """Acquisition decides once every pending side band has a spike, or, after
    ``acquisition_max_symbols`` windows, with the bands that have one.  Here (1440 windows, three
    segments) the upper band is acquired in the third segment exactly, the lower never, and the
    epochs publish the central and upper bands (the upper SNR within 1 dB of its 20 dB: the
    receiver tests' 0.5 dB plus the impairments); ``ready or timed_out`` acquired it a segment
    earlier, ``count > max`` a segment later.  With the default limit (90,000 windows) nothing is
    acquired in the 0.1 s."""
    _, x = one_side
    _, out = _run(x, acquisition_max_symbols=3 * SEG)
    assert _acquired_upper(out) == [False, False, True, True, True, True, True]
    eps = [r for r in out if isinstance(r, RangingEpoch)]
    assert len(eps) == 2 and all(set(e.snr_db) == {"central", "upper"} for e in eps)
    assert all(abs(e.snr_db["upper"] - 20) < 1 for e in eps), [e.snr_db for e in eps]
    _, out = _run(x)
    assert not any(_acquired_upper(out)) and not any(isinstance(r, RangingEpoch) for r in out)


def _seed_upper(rx: Receiver, emu: Emulator) -> None:
    """The upper band's reference and CFO from the truth (experiments/common.py's
    ``seed_side_band_references``, for one band)."""
    tr = emu.truth
    s0 = rx.reference_index
    shift = (s0 - float(tr.illumination_delay_samples(s0))) % N
    k = WF.active_subcarriers
    cfr = (
        tr.first_harmonic("upper") * tr.scale["upper"] * tr.cfr["upper"] * np.exp(2j * np.pi * k * shift / N)
    )
    rx.seed_reference("upper", cfr, tr.cfo_hz["upper"])


def test_a_seeded_side_band_is_received_while_the_other_is_still_acquiring(one_side):
    """A reference seeded from the truth (experiments' seeded acquisition) is installed at the
    given CFO: the upper band is acquired from the first segment with the truth's CFO (exactly,
    until an epoch moves it), and its epochs come out while the lower band is still pending
    (``any`` acquired side band, not ``all``); a seed before the timing, or of the central
    band, is refused with its message."""
    emu, x = one_side
    rx = Receiver(WF, list(BANDS3), config=ReceiverConfig(tag_mode="cw"))
    ones = np.ones(WF.active_subcarriers.size)
    with pytest.raises(ReceiverError) as exc:
        rx.seed_reference("upper", ones, 0.0)
    assert str(exc.value) == "seed_reference: the receiver has no timing yet"
    a = STARTUP_WINDOWS * N
    out = rx.push(x[:, :a])
    assert rx.reference_index is not None and not out
    with pytest.raises(ReceiverError) as exc:
        rx.seed_reference("central", ones, 0.0)
    assert str(exc.value) == "seed_reference: 'central' is not one of the side bands ['lower', 'upper']"
    _seed_upper(rx, emu)
    out += rx.push(x[:, a:]) + rx.flush()
    assert all(_acquired_upper(out))
    assert _stats(out)[0].cfo_hz["upper"] == emu.truth.cfo_hz["upper"]
    eps = [r for r in out if isinstance(r, RangingEpoch)]
    assert len(eps) == 2 and all(abs(e.snr_db["upper"] - 20) < 1 for e in eps), [e.snr_db for e in eps]


def test_the_timing_report_is_locked_under_a_tenth_of_a_sample_and_absent_without_tracking(one_side):
    """``timing_locked`` is the last timing error under 0.1 sample in magnitude (strictly; none
    measured: not locked), ``timing_drift_ppm`` the prior ``cfo / fc``; without timing tracking
    no segment reports a drift, an error or a lock."""
    rx = Receiver(WF, ["central", "upper"])
    rx.cfo_hz["central"] = -3660.0
    for err, locked in (
        (None, False),
        (0.0999, True),
        (-0.0999, True),
        (0.1, False),
        (-0.1, False),
        (0.5, False),
    ):
        rx._timing.last_error = err
        rep = rx._timing_report()
        assert (rep["timing_error_samples"], rep["timing_locked"]) == (err, locked)
        assert rep["timing_drift_ppm"] == -3660.0 / WF.carrier_freq_hz * 1e6
        assert rep["timing_drift_measured_ppm"] is None
    _, x = one_side
    _, out = _run(x[:, : 1500 * N], timing_tracking=False)
    stats = _stats(out)
    assert len(stats) == 4 and all(b.cfo_hz["central"] is not None for b in stats)
    for b in stats:
        assert (b.timing_drift_ppm, b.timing_drift_measured_ppm, b.timing_error_samples, b.timing_locked) == (
            None,
        ) * 4


@pytest.mark.parametrize("tail", [0, 1])
def test_the_flush_processes_a_last_window_alone_and_no_empty_segment(cw3, tail):
    """Input ending ``tail`` windows after two whole segments (plus 8 samples, more than the
    grid's drift over them, 4 samples, and less than a window): the flush publishes a segment of
    that one window, or none at all (``m == 1`` for ``m == 0`` dropped the lone window, and
    built an empty segment for none)."""
    _, x, rx0, _ = cw3
    end = rx0.reference_index + (2 * SEG + tail) * N + 8
    _, out = _run(x[:, :end])
    assert [b.symbols for b in _stats(out)] == [SEG, SEG] + [1] * tail


def test_a_packet_that_ends_just_before_the_end_of_the_input_comes_out_of_the_flush():
    """Burst, the upper band at -10 dB, the input ending 10 windows after the second packet
    (seed 12: packets at 0.22 and 3.29 Msamples, 125 bits of 15 windows): the first packet comes
    out of the push, the second only out of the flush, which searches to the end of the history
    (a search that keeps a template and two tag symbols, 225 windows, of look-ahead past a
    packet, ``final=False``, finds nothing there: mutant 133; 50 windows were enough for its
    first crossing, a template before the start); both with their CRC, no bit error, within a
    tag symbol of the truth, and an Eb/N0 of the band's SNR times 800 subcarriers and 15
    windows a bit: 30.8 dB, within 2.5 dB (the noise variance's factor 1.5 of the test above,
    1.8 dB; the gain's estimate over 125 bits at that Eb/N0 is good to 0.02 dB; measured 31.0):
    the tag samples' noise ``nv / |ref|**2`` (``* |ref|**2`` moves it by tens of dB)."""
    sc = ScenarioConfig(duration_s=0.17005, seed=12, bands=("central", "upper"), snr_upper_db=-10)
    emu = Emulator(WF, sc)
    x = emu.generate()
    tr = emu.truth
    ends = tr.packet_start_sample + WF.packet_bits * tr.tag_symbol_samples
    assert len(ends) == 2 and 8 * N < x.shape[1] - ends[1] < 12 * N
    rx = Receiver(WF, list(sc.bands), truth_packets=(tr.packet_start_sample, tr.packet_bits))
    pushed, flushed = rx.push(x), rx.flush()
    for out, true in ((pushed, tr.packet_start_sample[0]), (flushed, tr.packet_start_sample[1])):
        pk = [r for r in out if isinstance(r, PacketResult)]
        assert len(pk) == 1 and pk[0].crc_ok and pk[0].bit_errors == 0
        assert abs(pk[0].start_sample - true) < tr.tag_symbol_samples
        ebn0 = -10 + 10 * np.log10(800 * tr.tag_symbol_samples / N)
        assert abs(pk[0].ebn0_db - ebn0) < 2.5, (pk[0].ebn0_db, ebn0)


def test_every_window_of_a_segment_is_the_input_at_its_start_where_the_grid_steps():
    """At 10 ppm the rounded grid offset steps by one sample about every 98 windows, and a
    segment's block is cut into parts of consecutive windows there: each window the receiver
    projects is the input at its own start, also the first after a step (cutting a window late,
    ``+ 2``, read it one sample off: its projection keeps 0.26 of the signal, ``|mean exp(2j pi
    k / N)|`` over the 800 subcarriers, yet over a few such windows an epoch's central SNR moved
    by 0.03 dB and the timing error by 0.005 samples, below what a test of published numbers
    resolves: mutant 161).  Segments of 16 windows, so that a step falls between the first two
    windows of one: each publishes its first window's start and offset (``starts[1]``,
    mutant 185, moved the offset by the step there)."""
    sc = ScenarioConfig(duration_s=0.04, seed=8, mode="cw", bands=("central", "upper"), lo_ppm=10.0)
    emu = Emulator(WF, sc)
    x = emu.generate()
    rx = Receiver(WF, list(sc.bands), config=ReceiverConfig(tag_mode="cw", segment_symbols=16))
    seen = []
    real = rx._segment

    def segment(starts, block, f, nom0):
        seen.append((starts.copy(), block.windows(0).copy(), block.windows(1).copy()))
        return real(starts, block, f, nom0)

    rx._segment = segment
    stats = _stats(rx.push(x) + rx.flush())
    assert len(stats) == len(seen)
    steps = first = 0
    for (starts, w0, w1), b in zip(seen, stats, strict=True):
        steps += int(np.count_nonzero(np.diff(starts) != N))
        first += int(starts[1] - starts[0] != N)
        idx = starts[:, None] + np.arange(N)
        np.testing.assert_array_equal(w0, x[0, idx])
        np.testing.assert_array_equal(w1, x[1, idx])
        assert (b.time_s, b.timing_offset, b.symbols) == (starts[0] / FS, starts[0] % N, starts.size)
    assert steps >= 8 and first >= 1, (steps, first)  # 1200 windows at 0.0102 samples a window


def test_both_alignments_of_a_resampled_capture_receive_it():
    """A 62.5 MS/s capture (the X410 profile; the emulator at that rate, 0.04 s, -8 ppm) read
    through the resampling kernels, with the windows aligned either way
    (``resampled_alignment``): each run publishes the upper band at its 20 dB SNR within 1 dB
    (the receiver tests' 0.5 dB plus the impairments; measured within 0.14 dB) and the central
    CFO within 1 Hz, and the two agree on the ranges within 1 mm (they align the same windows;
    measured 0.1 mm; the polynomial alignment was not built for a resampled capture: mutant 52)."""
    x410 = get_profile("x410-62m5")
    sc = ScenarioConfig(
        duration_s=0.04, seed=3, mode="cw", bands=("central", "upper"), snr_upper_db=20, lo_ppm=-8.0
    )
    emu = Emulator(x410, sc)
    x = emu.generate()
    ranges = []
    for alignment in ("kernel", "polynomial"):
        cfg = ReceiverConfig(tag_mode="cw", resampled_alignment=alignment, epoch_symbols=400)
        rx = Receiver(x410, list(sc.bands), config=cfg)
        out = rx.push(x) + rx.flush()
        eps = [r for r in out if isinstance(r, RangingEpoch)]
        assert len(eps) == 3 and all(abs(e.snr_db["upper"] - 20) < 1 for e in eps), [e.snr_db for e in eps]
        assert all(abs(b.cfo_hz["central"] - emu.truth.cfo_hz["central"]) < 1 for b in _stats(out))
        ranges.append([e.range_m["ir_first_interp"] for e in eps])
    np.testing.assert_allclose(ranges[0], ranges[1], rtol=0, atol=1e-3)


def test_the_timing_loop_tracks_while_the_side_bands_are_still_acquiring():
    """A sample clock untied from the LO (no drift; the receiver sees at start-up that the
    CFO's prior does not hold and measures the rate instead, to its standard error), the central
    band at 15 dB and the side band at -40 dB, never acquired: the timing loop alone keeps the
    grid on the truth, every segment within the 0.05-sample tracking target (tests/test_drift.py;
    measured at most 0.023).  The loop's error is scaled by the central reference's delay
    curvature, set when that reference is installed: set only for side bands (mutant 327) the
    loop measured nothing until a side band came, and the grid walked off at the measured rate's
    error (0.2 samples in the 0.3 s, while the published error read 0)."""
    sc = ScenarioConfig(
        seed=5,
        duration_s=0.3,
        mode="cw",
        bands=("central", "upper"),
        sample_clock_tied=False,
        lo_ppm=5.0,
        snr_central_db=15,
        snr_upper_db=-40,
    )
    emu = Emulator(WF, sc)
    x = emu.generate()
    tr = emu.truth
    rx = Receiver(WF, list(sc.bands), config=ReceiverConfig(tag_mode="cw"))
    errs = []
    real = rx._segment

    def segment(starts, block, f, nom0):
        s0 = rx.reference_index
        phi0 = s0 - float(tr.illumination_delay_samples(s0))
        pos = starts + f - tr.illumination_delay_samples(starts)
        errs.append(float(np.max(np.abs((pos - phi0 + N / 2) % N - N / 2))))
        return real(starts, block, f, nom0)

    rx._segment = segment
    out = rx.push(x) + rx.flush()
    assert tr.sample_clock_ppm == 0 and not rx._tied and not any(b.acquired["upper"] for b in _stats(out))
    assert len(errs) == 19 and max(errs) < 0.05, errs


def test_a_seeded_reference_is_refreshed_by_the_packets_it_decodes():
    """Burst, seeded (as experiments/common.py seeds a run), the upper band at -30 dB, 0.1 s:
    the first packet (seed 31) is decoded with its CRC and no bit error, and its CFR is folded
    into the seeded reference as into a converged one (``_refreshes`` of ``None`` failed there:
    mutant 338)."""
    sc = ScenarioConfig(duration_s=0.1, seed=31, bands=("central", "upper"), snr_upper_db=-30)
    emu = Emulator(WF, sc)
    x = emu.generate()
    tr = emu.truth
    rx = Receiver(WF, list(sc.bands), truth_packets=(tr.packet_start_sample, tr.packet_bits))
    a = STARTUP_WINDOWS * N
    out = rx.push(x[:, :a])
    _seed_upper(rx, emu)
    out += rx.push(x[:, a:]) + rx.flush()
    pk = [r for r in out if isinstance(r, PacketResult)]
    assert [(p.crc_ok, p.bit_errors) for p in pk] == [(True, 0)]
    assert abs(pk[0].start_sample - tr.packet_start_sample[0]) < tr.tag_symbol_samples


def test_a_packet_within_the_raw_span_before_acquisition_is_ranged():
    """While acquiring, the receiver keeps raw windows for a packet (``max(epoch_symbols,
    packet)`` = 1875 windows) and two segments more (2835), older ones as look-back features
    only; a packet decoded from features has no ranging epoch.  Acquisition held to 2880 windows
    (``acquisition_min_symbols``, the upper band at -10 dB has its spike long before): the
    first packet (seed 12, windows 216-2091) lies within the raw span at the decision, so it
    is decoded and ranged (a raw span of 915 or 1875 windows, mutants 425, 427, left it to
    look-back: decoded, no epoch)."""
    sc = ScenarioConfig(duration_s=0.1, seed=12, bands=("central", "upper"), snr_upper_db=-10)
    emu = Emulator(WF, sc)
    x = emu.generate()
    tr = emu.truth
    cfg = ReceiverConfig(acquisition_min_symbols=6 * SEG)
    rx = Receiver(WF, list(sc.bands), config=cfg, truth_packets=(tr.packet_start_sample, tr.packet_bits))
    out = rx.push(x) + rx.flush()
    assert [b.acquired["upper"] for b in _stats(out)] == [False] * 5 + [True] * 2
    pk = [r for r in out if isinstance(r, PacketResult)]
    assert [(p.truth_index, p.crc_ok, p.bit_errors) for p in pk] == [(0, True, 0)]
    eps = [r for r in out if isinstance(r, RangingEpoch)]
    assert len(eps) == 1 and abs(eps[0].time_s - pk[0].time_s) < 1e-9


def test_history_while_acquiring_keeps_the_latest_windows_without_a_hole():
    """A side band with no tag in it (noise of the band's power instead of the emulated band):
    acquisition times out and starts again, and the history kept meanwhile for look-back must be
    the latest ``acquisition_max_symbols + span`` windows or so, in one piece (``pop(1)`` for
    ``pop(0)``, mutant 434, kept the oldest segment for ever and cut a hole after it).  With
    ``acquisition_max_symbols`` = 960 the limit is 960 + 1500 (the epoch) windows: 0.2 s of input
    passes it twice over.  Consecutive segments' windows are one window apart, give or take the
    grid's one-sample steps for drift."""
    sc = ScenarioConfig(duration_s=0.2, seed=3, bands=("central", "upper"))
    x = Emulator(WF, sc).generate()
    rng = np.random.default_rng(5)
    power = np.mean(np.abs(x[1]) ** 2)
    x[1] = np.sqrt(power / 2) * (rng.standard_normal(x.shape[1]) + 1j * rng.standard_normal(x.shape[1]))
    cfg = ReceiverConfig(acquisition_min_symbols=480, acquisition_max_symbols=960)
    rx = Receiver(WF, ["central", "upper"], config=cfg)
    limit = 960 + cfg.epoch_symbols
    longest = 0
    for i in range(0, x.shape[1], 100_003):
        rx.push(x[:, i : i + 100_003])
        starts = [s.starts for s in rx._history]
        longest = max(longest, sum(s.size for s in starts))
        assert sum(s.size for s in starts) <= limit
        for a, b in itertools.pairwise(starts):
            assert abs(b[0] - a[-1] - N) <= 1
    assert rx._ref["upper"] is None  # never acquired
    assert longest > limit - SEG  # the trim was reached
