"""Each emulator impairment changes the signal by the amount its parameter says (measured on
the emulator's output), and ``ideal=True`` switches them all off."""

import numpy as np
import pytest

from sdr.emulator.drift import TAYLOR_TOL, DriftingPeriodic
from sdr.emulator.emulator import SYMBOLS_PER_BLOCK, Emulator
from sdr.emulator.scenario import ScenarioConfig

# ----- ideal switch ----------------------------------------------------------------------------
# samples [band, index] of block 1 of ScenarioConfig(seed=21, duration_s=0.02, n_nlos=2,
# first_packet_s=0.001, ideal=True) with the AWGN's level set to 0, from the emulator at d346342.
# Its samples with the noise were those of the emulator before impairments existed (commit
# c3db8d0) to one ADC step (this test pinned them until d346342).  The noise generator changed
# after d346342 (sdr/emulator/noise_kernel.py: other draws, the same distribution), so the pin
# is now the noiseless signal, which the change left alone: equal bit for bit over blocks 0-1.
# The side bands are 0: the tag is idle in block 1.
_IDX = [0, 1000, 77777, 200001]
_BEFORE = np.array(
    [
        [
            0.042176582 + 0.046815395j,
            -0.022186957 + 0.058992278j,
            -0.059327982 - 0.044984285j,
            -0.011505478 - 0.12903225j,
        ],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
    ]
)


def test_ideal_reproduces_the_emulator_before_impairments(wf):
    sc = ScenarioConfig(seed=21, duration_s=0.02, n_nlos=2, first_packet_s=0.001, ideal=True)
    emu = Emulator(wf, sc)
    emu._noise_std = {b: np.float32(0) for b in emu._noise_std}  # the signal alone
    got = emu.generate_block(1)[:, _IDX]
    # the 16-bit ADC rounds to 1/32767; float rounding may move a value across one step
    np.testing.assert_allclose(got, _BEFORE, rtol=0, atol=1.01 / 32767)
    assert Emulator(wf, sc).truth.sample_clock_ppm == 0.0


# ----- sample clock tied to the LO ------------------------------------------------------------------
def _synth(wf, clock_ppm: float) -> DriftingPeriodic:
    rng = np.random.default_rng(5)
    k = len(wf.active_bins)
    spec = wf.zadoff_chu * (rng.normal(size=k) + 1j * rng.normal(size=k))  # a rich multipath CFR
    n = wf.fft_size
    fs = wf.working_rate_hz
    return DriftingPeriodic(spec, wf.active_bins, wf.active_freqs_hz, n, fs, np.sqrt(n), 3.7e-6, clock_ppm)


@pytest.mark.parametrize("clock_ppm", [10.0, -10.0, 0.3])
def test_drift_synthesis_matches_direct_evaluation(wf, clock_ppm):
    """Taylor runs against the direct sum ``s(t (1 + delta) - tau0)``, over two consecutive
    blocks 100 s into a stream (continuity across the block boundary included).  The runs
    keep the RMS remainder within TAYLOR_TOL = 1e-5; complex64 output adds ~1e-7: the
    limit 1e-4 is the issue's."""
    syn = _synth(wf, clock_ppm)
    n, rows = wf.fft_size, SYMBOLS_PER_BLOCK
    first = round(100 * wf.working_rate_hz / n) // rows * rows
    out = np.empty((2 * rows, n), np.complex64)
    row_gain = np.exp(1j * np.arange(2 * rows))
    col_gain = np.exp(0.3j * np.arange(n) / n)
    for b in range(2):  # two separate calls, as two blocks
        rng = slice(b * rows, (b + 1) * rows)
        syn.render(first + b * rows, row_gain[rng], col_gain, out[rng])
    local = np.arange(0, 2 * rows * n, 61)
    local = np.union1d(local, rows * n + np.arange(-40, 40))  # around the boundary, densely
    ref = syn.direct(first * n + local) * row_gain[local // n] * col_gain[local % n]
    err = np.linalg.norm(out.ravel()[local] - ref) / np.linalg.norm(ref)
    assert err < 1e-4
    assert err < 10 * TAYLOR_TOL


def test_late_block_on_its_own_shows_the_drifted_delay(wf):
    """A block 2.5 s in at lo_ppm = 10, generated alone: the central band's delay in one window is
    ``n0 - delta n`` (768 samples less than at the start).  The residual delay is the
    least-squares slope of the phase across the 800 subcarriers; at 50 dB SNR per subcarrier
    (phase std 0.0022 rad) plus the stretch's own inter-carrier leakage inside the window
    (measured without noise: 0.005 rad) its standard deviation is
    ``0.006 / sqrt(sum k^2 = 4.3e7) * N / (2 pi)`` = 1.5e-4 samples.  The drift inside the
    window is delta N = 0.01 samples: a window timed wrongly by half its length would be off
    by 0.005.  The limit, 0.002 samples, is 13 standard deviations and below both."""
    sc = ScenarioConfig(
        seed=3, duration_s=3.0, mode="cw", lo_ppm=10.0, tag_clock_ppm=0.0, n_nlos=2, snr_central_db=50
    )
    # the drift alone: phase noise, the IQ image (-37 dB per subcarrier) and DC off
    sc = sc.replace(phase_noise=False, iq_gain_imbalance_db=0, iq_phase_imbalance_deg=0, dc_offset_dbc=None)
    emu = Emulator(wf, sc)
    tr, n = emu.truth, wf.fft_size
    assert tr.sample_clock_ppm == 10.0
    block = round(2.5 * wf.working_rate_hz / n) // SYMBOLS_PER_BLOCK
    iq = emu.generate_block(block)
    w = SYMBOLS_PER_BLOCK // 2  # a window in the middle of the block
    s = (block * SYMBOLS_PER_BLOCK + w) * n
    t = np.arange(s, s + n)
    r = iq[0, w * n : (w + 1) * n] * np.exp(-2j * np.pi * tr.cfo_hz["central"] * t / wf.working_rate_hz)
    y = np.fft.fft(r)[wf.active_bins] / np.sqrt(n)
    model = wf.zadoff_chu * tr.cfr["central"] * tr.scale["central"] * np.exp(1j * tr.phase_rad["central"])
    delay = tr.illumination_delay_samples(s + (n - 1) / 2)
    assert tr.sample_offset - delay == pytest.approx(10e-6 * (s + (n - 1) / 2))
    k = wf.active_subcarriers
    phase = np.angle(y / model * np.exp(2j * np.pi * k * delay / n))
    slope, offset = np.polyfit(k, phase, 1)
    assert abs(slope * n / (2 * np.pi)) < 0.002
    assert abs(offset) < 0.01  # and no phase left over
    # without the truth's drift the same window is 768 samples (mod N) away: the model matters
    stale = np.angle(y / model * np.exp(2j * np.pi * k * tr.sample_offset / n))
    assert np.std(np.diff(stale)) > 0.1 or abs(np.polyfit(k, stale, 1)[0]) * n / (2 * np.pi) > 0.1


def test_sample_clock_untied_or_ideal_has_no_drift(wf):
    base = {"seed": 4, "duration_s": 0.02, "lo_ppm": 4.0}
    for sc in (ScenarioConfig(**base, sample_clock_tied=False), ScenarioConfig(**base, ideal=True)):
        emu = Emulator(wf, sc)
        assert emu.truth.sample_clock_ppm == 0.0
        assert emu.truth.cfo_hz["central"] == pytest.approx(4e-6 * wf.carrier_freq_hz)
    assert Emulator(wf, ScenarioConfig(**base)).truth.sample_clock_ppm == 4.0


# ----- output at the capture rate ---------------------------------------------------------------
def test_x410_profile_is_emulated_at_62_5_msps_with_subcarriers_on_bins_3k():
    """6250 samples at 62.5 MS/s hold 3 working symbols: subcarrier k sits on bin 3k.  At 80 dB
    SNR the power on the other bins is the noise, white over the capture band: per bin
    ``noise_var * 6250 * (62.5 / 30.72)`` plus the ADC's ``6250 LSB^2 / 6``, within 10 % (the
    mean of 5450 exponential bins: 1.4 % standard deviation); against
    ``abs(X_k H_k)^2 * scale^2 * 6250^2 / N`` per active bin."""
    from dsp.waveform import get_profile

    x410 = get_profile("x410-62m5")
    emu = Emulator(x410, ScenarioConfig(seed=8, duration_s=0.01, mode="cw", snr_central_db=80, ideal=True))
    assert (emu.rate_hz, emu.period, emu.symbols_per_period) == (62.5e6, 6250, 3)
    iq = emu.generate()
    assert iq.shape[1] == round(0.01 * 62.5e6)
    t = np.arange(6250) / 62.5e6
    y = np.fft.fft(iq[0, :6250] * np.exp(-2j * np.pi * emu.truth.cfo_hz["central"] * t))
    on = np.mod(3 * x410.active_subcarriers, 6250)
    off = np.setdiff1d(np.arange(6250), on)
    tr = emu.truth
    expect_on = np.abs(x410.zadoff_chu * tr.cfr["central"] * tr.scale["central"]) ** 2 * 6250**2 / 1024
    np.testing.assert_allclose(np.abs(y[on]) ** 2, expect_on, rtol=0.01)  # 80 dB: 1e-4 in amplitude
    noise_bin = tr.noise_var["central"] * 6250 * 62.5e6 / 30.72e6
    lsb_bin = 6250 / (6 * 32767**2)  # 16-bit quantisation: LSB^2 / 12 on I and on Q
    assert np.mean(np.abs(y[off]) ** 2) == pytest.approx(noise_bin + lsb_bin, rel=0.1)  # 6000 bins


def test_x410_emulation_received_after_resampling_ranges_like_the_working_rate(wf):
    """The receiver resamples the 62.5 MS/s emulation to 30.72 MS/s: the range matches the truth
    within 0.3 m (the receiver tests' ranging limit).  Ideal: the receiver has no timing
    tracking yet, and this tests the rate, not the drift."""
    from dsp.receiver import Receiver
    from dsp.receiver_config import ReceiverConfig
    from dsp.results import RangingEpoch
    from dsp.waveform import get_profile

    x410 = get_profile("x410-62m5")
    sc = ScenarioConfig(duration_s=0.2, seed=3, mode="cw", snr_lower_db=20, snr_upper_db=20, ideal=True)
    emu = Emulator(x410, sc)
    iq = emu.generate()
    rx = Receiver(
        x410,
        list(sc.bands),
        x410.capture_rate_hz,
        # the true circuitry and distance: this isolates the emulator's X410 rate, not the
        # receiver's calibration (tests/test_receiver.py runs that as a user does)
        ReceiverConfig(tag_mode="cw", tx_rx_distance_m=emu.truth.tx_rx_distance_m),
        calibration=dict(emu.truth.cfr_circuitry),
    )
    out = [r for i in range(0, iq.shape[1], 1 << 18) for r in rx.push(iq[:, i : i + (1 << 18)])] + rx.flush()
    e = [r for r in out if isinstance(r, RangingEpoch)]
    assert e and abs(e[-1].range_m["ir_first_interp"] - emu.truth.range_true_m) < 0.3


def test_box_muller_scale_sets_the_noise_power():
    """``complex_gaussian(..., scale)`` is the unit-power noise times ``scale``, to float rounding."""
    from sdr.emulator.noise import complex_gaussian

    a = complex_gaussian(np.random.default_rng(3), np.empty(4096, np.complex64), 3.0)
    b = complex_gaussian(np.random.default_rng(3), np.empty(4096, np.complex64))
    np.testing.assert_allclose(a, 3.0 * b, rtol=1e-6)
