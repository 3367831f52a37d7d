"""The receiver chain against the emulator's truth and the analytic model.

End-to-end tests run the receiver as a user does (tests/support_ranging.py): the CW workflow's
calibration of the same emulated radio and a typed TX-RX distance, range limits from the
Cramer-Rao bound plus the calibration's own error.  Tests that keep the true circuitry say which
stage they isolate."""

import numpy as np
import pytest

from captures.format import complex_to_ci16
from dsp.cir import fit_cfr
from dsp.receiver import Receiver, ReceiverError
from dsp.receiver_config import ReceiverConfig
from dsp.results import GapEvent, PacketResult, RangingEpoch
from dsp.sc16 import sc16_to_complex64
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig
from tests.conftest import Z_MAX, analytic_band_cfrs, cfr_noise_var, chi2_bounds
from tests.support_ranging import D0_TYPED_M, HW_SEED, assert_ranges, cal_kwargs, image_rejection


def run_receiver(wf, sc, chunk=None, mode=None, calibration="workflow", pairs=False, **cfg):
    """``calibration``: ``"workflow"`` (the user's: the scenario must be radio ``HW_SEED``),
    ``"truth"`` (the emulator's circuitry, for tests isolating another stage) or ``None``.
    ``pairs``: the emulator's output quantised to int16 I/Q pairs as a radio delivers them, fed
    as pairs (``True``) or as their complex64 conversion (``"converted"``)."""
    emu = Emulator(wf, sc)
    tr = emu.truth
    if calibration == "workflow":
        assert sc.circuitry_seed == HW_SEED, "the workflow calibrated radio HW_SEED"
        kw = cal_kwargs(wf, sc.bands)
    else:
        kw = {"calibration": dict(tr.cfr_circuitry)} if calibration == "truth" else {}
    rx = Receiver(
        wf,
        list(sc.bands),
        config=ReceiverConfig(tag_mode=mode or sc.mode, tx_rx_distance_m=D0_TYPED_M, **cfg),
        truth_packets=(tr.packet_start_sample, tr.packet_bits),
        **kw,
    )
    out = []
    for blk in emu.blocks():
        iq = blk.iq
        if pairs:
            iq = complex_to_ci16(iq)
            iq = sc16_to_complex64(iq) if pairs == "converted" else iq
        step = chunk or iq.shape[1]
        for i in range(0, iq.shape[1], step):
            out += rx.push(iq[:, i : i + step], blk.lost_before if i == 0 else 0)
    out += rx.flush()
    return emu, out


def packets(out):
    return [r for r in out if isinstance(r, PacketResult)]


def epochs(out):
    return [r for r in out if isinstance(r, RangingEpoch)]


def test_decodes_every_packet_and_ranges_los_at_low_side_band_snr(wf):
    """Workflow calibration, typed distance.  Ranges: tests/support_ranging.py (5 sigma of the
    bound at -28 dB over one packet's 1875 symbols plus the calibration's error: 0.53 m; was 0.3 m); IR
    First on the grid within one grid step of the interpolated expectation's band.  CFO within
    1 Hz (as before); SNR within 0.5 dB, less the impairments' floor."""
    sc = ScenarioConfig(duration_s=0.45, seed=31, snr_lower_db=-28, snr_upper_db=-28, circuitry_seed=HW_SEED)
    emu, out = run_receiver(wf, sc)
    pk = packets(out)
    assert len(pk) == len(emu.truth.packet_start_sample) == 4
    assert all(p.crc_ok and p.bit_errors == 0 and p.tag_id == sc.tag_id for p in pk)
    np.testing.assert_allclose(
        [p.start_sample for p in pk], emu.truth.packet_start_sample, atol=wf.fft_size / 2
    )
    m_side = wf.packet_bits * emu.truth.tag_symbol_samples / wf.fft_size  # one packet's symbols
    for e in epochs(out):
        assert_ranges(emu, e, m_side)
        assert abs(e.range_m["ir_first"] - emu.truth.range_true_m) <= wf.cir_grid_step_m
        for band in sc.bands:
            assert e.cfo_hz[band] == pytest.approx(emu.truth.cfo_hz[band], abs=1.0)
            # the IQ image and the DC offset add to the noise floor: at most a loss of
            # 10 log10(1 + snr (irr + dc)) (2.3 dB at 30 dB, 0 at -28 dB); 0.5 dB of estimation
            floor = image_rejection(sc) + 10 ** (sc.dc_offset_dbc / 10)
            loss = 10 * np.log10(1 + 10 ** (sc.snr_db[band] / 10) * floor)
            assert sc.snr_db[band] - loss - 0.5 <= e.snr_db[band] <= sc.snr_db[band] + 0.5, band


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_los_interpolated_first_peak_within_the_bound_at_30_db(wf, seed):
    """Workflow calibration, typed distance, CW at 30 dB, 1500-symbol epochs: limit 6 cm
    (tests/support_ranging.py: 5 sigma of the bound with the IQ image as un-averaged noise, 3 cm,
    plus the calibration's own error, 3 cm; errors seen about 3 mm).  Was 0.3 m."""
    sc = ScenarioConfig(
        duration_s=0.12, seed=seed, mode="cw", snr_lower_db=30, snr_upper_db=30, circuitry_seed=HW_SEED
    )
    emu, out = run_receiver(wf, sc)
    eps = epochs(out)
    assert len(eps) == 2
    for e in eps:
        assert_ranges(emu, e, e.n_symbols)


def test_chunking_does_not_change_any_decision_or_estimate(wf):
    sc = ScenarioConfig(duration_s=0.25, seed=8, n_nlos=3, snr_lower_db=-22, snr_upper_db=-22)
    # compares runs with each other: no calibration needed (the chunking is what is isolated)
    runs = [run_receiver(wf, sc, chunk=c, calibration=None)[1] for c in (None, 100_003, 7_777)]
    ref_p, ref_e = packets(runs[0]), epochs(runs[0])
    assert len(ref_p) == 2
    for out in runs[1:]:
        p, e = packets(out), epochs(out)
        assert [x.start_sample for x in p] == [x.start_sample for x in ref_p]
        assert all(np.array_equal(a.bits, b.bits) for a, b in zip(p, ref_p, strict=True))
        for a, b in zip(e, ref_e, strict=True):
            assert a.range_m == pytest.approx(b.range_m, rel=1e-6)
            for band in sc.bands:  # float summation order may differ in the last bits only
                np.testing.assert_allclose(
                    a.cfr[band], b.cfr[band], rtol=1e-4, atol=1e-6 * np.abs(b.cfr[band]).max()
                )


def assert_same_epochs(got, ref, bands):
    """Epochs equal to float32 summation order: CFRs within 1e-4 relative, ranges within 1 mm
    (the bound is derived in the test below)."""
    assert len(got) == len(ref)
    for a, b in zip(got, ref, strict=True):
        for m in b.range_m:
            assert abs(a.range_m[m] - b.range_m[m]) < 1e-3
        for band in bands:
            scale = np.abs(b.cfr[band]).max()
            np.testing.assert_allclose(a.cfr[band], b.cfr[band], rtol=1e-4, atol=1e-6 * scale)


def test_int16_pairs_give_the_decisions_and_estimates_of_their_complex64_conversion(wf):
    """The receiver reads int16 pairs in place (dsp/direct_windows.py); the results must be those
    of the same samples converted to complex64, over three chunkings, up to float32 summation
    order.  Bound: the projections and window sums differ by a relative ~1e-6 (tests/
    test_pairs_windows.py); an epoch's CFR is a sum over some 1,500 windows, so relative
    rounding below 1e-4 (the chunking test's tolerance); a relative CFR perturbation ``e`` moves
    a delay by at most about ``e / (2 pi B_rms)`` (B_rms about 7 MHz), ``c e / (2 pi B_rms)`` =
    0.7 mm of range for ``e`` = 1e-4: ranges agree within 1 mm, far below the CRLB's scale of
    the errors here (cm at -22 dB), so a kernel that read the wrong window would not pass."""
    sc = ScenarioConfig(duration_s=0.25, seed=8, n_nlos=1, snr_lower_db=-22, snr_upper_db=-22)
    ref = run_receiver(wf, sc, calibration=None, pairs="converted")[1]
    ref_p, ref_e = packets(ref), epochs(ref)
    assert len(ref_p) == 2 and all(p.crc_ok for p in ref_p)
    for chunk in (None, 100_003, 7_777):
        out = run_receiver(wf, sc, chunk=chunk, calibration=None, pairs=True)[1]
        p, e = packets(out), epochs(out)
        assert [x.start_sample for x in p] == [x.start_sample for x in ref_p]
        assert all(np.array_equal(a.bits, b.bits) for a, b in zip(p, ref_p, strict=True))
        assert len(e) == len(ref_e) == len(ref_p)
        assert_same_epochs(e, ref_e, sc.bands)


def test_receiver_cfrs_match_the_analytic_model(wf):
    """Each epoch CFR (calibrated) is the analytic propagation model (direct channel plus the tag's
    structural mode in the central band, compound channel in the side bands) times a complex gain
    and a delay, plus the noise of the configured SNR averaged over the epoch's windows.

    The receiver knows neither absolute phase nor scale, and its timing reference is its own, so
    gain and delay are fitted per band (``fit_cfr``); what must hold: the residual is that noise
    (``chi2`` within its 1e-6 quantiles, see tests/conftest.py), and every band shares the central
    band's timing, so a side band's delay minus the central band's (the bistatic delay error a
    perfect ranging method would make) is 0 within ``Z_MAX`` times its Cramer-Rao standard
    deviation ``sqrt(var_u + var_0)`` (noise independent across bands; about 0.2 mm here).
    Impairments off (``ideal``): IQ images and phase noise (-32 to -42 dBc) are outside this model,
    30 dB above the noise of 1500 windows at 30 dB.  No sample-clock drift (``lo_ppm=0``; the side
    bands keep the tag clock's CFO): a clock offset ``delta`` also stretches each window, which
    leaks about ``(pi k delta)**2 / 3`` of subcarrier ``k``'s power into its neighbours, coherently
    over the windows: at 5 ppm about 6 times this noise, and not in the per-subcarrier model.
    (NMAE is not used: it cannot see delay or phase errors; see test_emulator.py.)
    """
    rng = np.random.default_rng(7)
    snr_db = 30.0
    for i in range(50):
        sc = ScenarioConfig(
            duration_s=0.06, seed=500 + i, mode="cw", n_nlos=int(rng.integers(0, 9)), ideal=True,
            lo_ppm=0.0, snr_central_db=snr_db, snr_lower_db=snr_db, snr_upper_db=snr_db,
        )  # fmt: skip
        # the true circuitry: isolates the CFR estimate (timing, CFO, averaging) from calibration
        emu, out = run_receiver(wf, sc, calibration="truth", epoch_symbols=1500)
        e = epochs(out)[0]
        assert emu.truth.impairments["central_tag_leak"] == 0  # the model leaves the data leak out
        models = analytic_band_cfrs(emu)
        fits = {}
        for band in sc.bands:
            var = cfr_noise_var(models[band], emu.truth.cfr_circuitry[band], snr_db, e.n_symbols)
            gain = fit_cfr(e.cfr[band], models[band], wf, var).gain  # the noise scales with the gain
            fits[band] = fit = fit_cfr(e.cfr[band], models[band], wf, var * abs(gain) ** 2)
            lo, hi = chi2_bounds(fit.dof)
            assert lo < fit.chi2 < hi, (i, band, fit.chi2 / fit.dof)
        for band in ("lower", "upper"):
            u, c = fits[band], fits["central"]
            std = np.hypot(u.delay_std_s, c.delay_std_s)
            assert abs(u.delay_s - c.delay_s) < Z_MAX * std, (i, band, u.delay_s - c.delay_s, std)


def test_one_side_band_is_enough(wf):
    """Workflow calibration of the two-band radio, typed distance; range limit as in
    tests/support_ranging.py (-25 dB over one packet: 0.39 m with the calibration's 3 cm)."""
    sc = ScenarioConfig(
        duration_s=0.25, seed=12, bands=("central", "upper"), snr_upper_db=-25, circuitry_seed=HW_SEED
    )
    emu, out = run_receiver(wf, sc)
    pk = packets(out)
    assert len(pk) == 2 and all(p.crc_ok and p.bit_errors == 0 for p in pk)
    assert_ranges(emu, epochs(out)[0], wf.packet_bits * emu.truth.tag_symbol_samples / wf.fft_size)


def test_gap_is_reported_and_decoding_resumes(wf):
    sc = ScenarioConfig(duration_s=0.45, seed=14, drops=((0.13, 4321),), snr_lower_db=-25, snr_upper_db=-25)
    emu, out = run_receiver(wf, sc, calibration=None)  # bits and gaps only: no calibration needed
    gaps = [r for r in out if isinstance(r, GapEvent)]
    assert [(g.samples_lost) for g in gaps] == [4321]
    pk = packets(out)
    hit = {p.truth_index for p in pk if p.crc_ok and p.bit_errors == 0}
    # the packet cut by the gap is lost; every other one is decoded, none is invented
    cut = [
        i
        for i, s in enumerate(emu.truth.packet_start_sample)
        if s <= 0.13 * wf.working_rate_hz <= s + 125 * emu.truth.tag_symbol_samples
    ]
    assert hit == set(range(len(emu.truth.packet_start_sample))) - set(cut)
    assert all(p.crc_ok for p in pk)


def test_a_stream_that_starts_inside_a_packet_decodes_every_later_one_and_invents_none(wf):
    """High SNR (30 dB a subcarrier), a 9.8 ppm drift, the input starting 40 ms into the first
    packet (a live stream joined at any moment, or resumed after a gap): its data correlates
    with the preamble everywhere, and must neither be decoded as a packet nor hide the next
    preamble.  Every later packet that ends inside the input is decoded with its CRC ok,
    within a tag symbol of its true start, and nothing else is."""
    sc = ScenarioConfig(duration_s=1.2, seed=7, lo_ppm=9.8)
    emu = Emulator(wf, sc)
    cut = int(0.04 * wf.working_rate_hz)
    x = emu.generate()[:, cut:]
    rx = Receiver(wf, list(sc.bands), config=ReceiverConfig(tx_rx_distance_m=D0_TYPED_M))
    out = []
    for i in range(0, x.shape[1], 1 << 20):
        out += rx.push(x[:, i : i + (1 << 20)])
    out += rx.flush()
    starts = np.asarray(emu.truth.packet_start_sample) - cut
    t_sym = emu.truth.tag_symbol_samples
    complete = starts[(starts > 0) & (starts + wf.packet_bits * t_sym < x.shape[1])]
    assert starts[0] < 0 < starts[0] + wf.packet_bits * t_sym  # the input starts inside packet 0
    found = [(p.start_sample, p.crc_ok) for p in packets(out)]
    assert len(found) == len(complete), (found, complete)
    for (start, ok), true in zip(found, complete, strict=True):
        assert ok and abs(start - true) < t_sym, (start, true)


def test_the_capture_rate_defaults_to_the_profile_s():
    """An X410 profile without an explicit rate expects 62.5 MS/s input (resampled to the
    working rate); the default profile's input is at the working rate (read directly)."""
    from dsp.waveform import get_profile
    from dsp.windows import DirectBuffer, ResamplingBuffer

    x410 = get_profile("x410-62m5")
    assert isinstance(Receiver(x410, ["central", "upper"])._buf, ResamplingBuffer)
    assert isinstance(Receiver(get_profile("default"), ["central", "upper"])._buf, DirectBuffer)


def test_bad_inputs_are_refused_with_a_reason(wf):
    with pytest.raises(ReceiverError, match="no central band"):
        Receiver(wf, ["lower", "upper"])
    with pytest.raises(ReceiverError, match="no side band"):
        Receiver(wf, ["central"])
    with pytest.raises(ReceiverError, match="cannot be resampled"):
        Receiver(wf, ["central", "upper"], capture_rate_hz=1e6 / 3**0.5)
    rx = Receiver(wf, ["central", "upper"])
    with pytest.raises(ReceiverError, match="shape"):
        rx.push(np.zeros((3, 100), np.complex64))


@pytest.fixture(scope="module")
def x410_cw(wf):
    """``(scenario, emulator, samples at 62.5 MS/s)``: a CW capture, the emulated signal
    resampled up."""
    import scipy.signal

    sc = ScenarioConfig(duration_s=0.2, seed=3, mode="cw", snr_lower_db=20, snr_upper_db=20)
    emu = Emulator(wf, sc)
    return sc, emu, scipy.signal.resample_poly(emu.generate(), 3125, 1536, axis=1).astype(np.complex64)


def _x410_receiver(sc, emu) -> Receiver:
    """A CW receiver at 62.5 MS/s with the true circuitry: isolates the capture-rate window path
    (no resampling); a workflow calibration would need a CW run at 62.5 MS/s."""
    from dsp.waveform import get_profile

    x410 = get_profile("x410-62m5")
    return Receiver(
        x410,
        list(sc.bands),
        x410.capture_rate_hz,
        ReceiverConfig(tag_mode="cw", tx_rx_distance_m=D0_TYPED_M),
        calibration=dict(emu.truth.cfr_circuitry),
    )


def test_x410_rate_is_received_without_resampling_and_chunk_invariant(x410_cw):
    """A 62.5 MS/s capture (the emulated signal resampled up): windows are read at the capture rate."""
    sc, emu, up = x410_cw
    ranges = []
    for chunk in (up.shape[1], 77_777):
        rx = _x410_receiver(sc, emu)
        out = [r for i in range(0, up.shape[1], chunk) for r in rx.push(up[:, i : i + chunk])] + rx.flush()
        e = epochs(out)
        assert e and abs(e[-1].range_m["ir_first_interp"] - emu.truth.range_true_m) < 0.3
        ranges.append([x.range_m["ir_first_interp"] for x in e])
    np.testing.assert_allclose(ranges[0], ranges[1], atol=1e-6)


def test_x410_int16_pairs_give_the_estimates_of_their_complex64_conversion(x410_cw):
    """At 62.5 MS/s the receiver reads int16 pairs off their capture-rate frames in place
    (dsp/frames_kernel.py) and converts only for acquisition's BLAS products: the epochs equal
    those of the same samples converted to complex64, to float32 summation
    order (bound as in the working-rate test above: CFRs within 1e-4 relative, ranges 1 mm)."""
    sc, emu, up = x410_cw
    pairs = complex_to_ci16(up)

    def run(x, chunk):
        rx = _x410_receiver(sc, emu)
        return epochs(
            [r for i in range(0, x.shape[1], chunk) for r in rx.push(x[:, i : i + chunk])] + rx.flush()
        )

    ref = run(sc16_to_complex64(pairs), pairs.shape[1])
    assert len(ref) >= 2
    # chunks of 77,777 samples: frames straddle them (converted copies between in-place runs);
    # the chunk invariance of the path itself is the test above's
    assert_same_epochs(run(pairs, 77_777), ref, sc.bands)


def test_a_cfo_correction_keeps_the_side_band_phase_continuous(wf):
    """After ``_set_cfo`` the nominal phase at the newest window is unchanged, however late in
    the stream: referencing it to sample 0 would jump it by ``delta_f * t`` cycles (here, 100 s
    into the stream, a 0.005 Hz correction would flip it by half a cycle)."""
    from dsp.receiver import _Segment

    rx = Receiver(wf, ["central", "upper"])
    late = 100 * wf.working_rate_hz  # continuous index 100 s into the stream
    starts = late + wf.fft_size * np.arange(4)
    rx._history = [_Segment(starts, None, np.zeros((2, 4), np.complex64), np.zeros((2, 4)))]
    rx.cfo_hz["upper"] = 1234.5
    before = rx._nominal_phase("upper", starts)
    rx._set_cfo("upper", 1234.5 + 0.005)
    after = rx._nominal_phase("upper", starts)
    assert abs(np.mod(after[-1] - before[-1] + 0.5, 1.0) - 0.5) < 1e-9  # continuous at the newest window
    step = np.mod(np.diff(after)[0], 1.0)  # and the new frequency from there on
    assert step == pytest.approx(np.mod((1234.5 + 0.005) * wf.fft_size / wf.working_rate_hz, 1.0), abs=1e-9)
