"""Emulator impairments of the radio and the tag, each measured on the emulator's output:
phase noise against its mask, image rejection and DC against their parameters, the tag's
duty cycle and jitter, and the phase redrawn at a retune."""

import numpy as np
import pytest
import scipy.signal

from sdr.emulator.emulator import Emulator
from sdr.emulator.impairments import scaled_mask
from sdr.emulator.phase_noise import mask_dbc_hz
from sdr.emulator.scenario import ScenarioConfig

# every impairment off, one at a time switched on by the tests (ideal=True would switch all)
OFF = {
    "sample_clock_tied": False,
    "phase_noise": False,
    "iq_gain_imbalance_db": 0.0,
    "iq_phase_imbalance_deg": 0.0,
    "dc_offset_dbc": None,
    "tag_duty_error": 0.0,
    "tag_jitter_rms_s": 0.0,
}


def _pair(wf, on: dict, **kw) -> tuple[Emulator, np.ndarray, Emulator, np.ndarray]:
    """The same scenario (same seeds, so the same noise) with and without the impairment ``on``."""
    sc = ScenarioConfig(**{**OFF, **kw})
    a, b = Emulator(wf, sc.replace(**on)), Emulator(wf, sc)
    return a, a.generate(), b, b.generate()


def test_phase_noise_psd_on_the_output_follows_the_mask(wf):
    """Central band at 80 dB SNR, no ADC: the phase of (with / without phase noise) is the TX and
    the RX LO phase noise, both at 915 MHz: PSD = 2 L(f) (+3 dB).  Welch over 0.12 s with
    65536-sample segments (469 Hz bins, 111 half-overlapping segments: 9 % standard deviation
    per bin), averaged over the bins within +-10 % of each offset: within 1 dB (~6 standard
    deviations of the average, plus the mask's own slope across +-10 %: 0.4 dB at 20 dB per
    decade).  The thermal noise's phase (80 dB SNR) lies near -142 dBc/Hz, 16 dB under the
    lowest level checked."""
    kw = {"seed": 6, "mode": "cw", "duration_s": 0.12, "snr_central_db": 80, "adc_bits": 0}
    a, ya, _, yb = _pair(wf, {"phase_noise": True}, **kw)
    phi = np.angle(ya[0].astype(complex) * np.conj(yb[0]))
    f, psd = scipy.signal.welch(phi, fs=wf.working_rate_hz, nperseg=65536, return_onesided=False)
    mask = scaled_mask(a.sc.phase_noise_mask_dbc_hz, wf.carrier_freq_hz)
    band_hz = a.truth.impairments["phase_noise_band_hz"]
    assert band_hz == pytest.approx(wf.working_rate_hz / 32)
    for off in (2e3, 5e3, 1e4, 3e4, 1e5, 3e5, 6e5):
        sel = (np.abs(f) > 0.9 * off) & (np.abs(f) < 1.1 * off)
        measured_db = 10 * np.log10(np.mean(psd[sel]))
        expect_db = 10 * np.log10(np.mean(2 * 10 ** (mask_dbc_hz(mask, f[sel]) / 10)))
        assert measured_db == pytest.approx(expect_db, abs=1.0), off
    # RMS phase as the truth records it (TX + RX, over +-band_hz), within 5 % (0.12 s holds
    # ~100 correlation times of the 1 kHz corner: ~3 % standard deviation of the RMS)
    strong = np.abs(yb[0]) > 0.3 * np.sqrt(np.mean(np.abs(yb[0]) ** 2))
    assert np.std(phi[strong]) == pytest.approx(
        a.truth.impairments["phase_noise_rms_rad"]["central"], rel=0.05
    )


def test_side_bands_do_not_share_one_phase(wf):
    """TX phase noise is common, each RX LO its own: the side bands' phase-noise processes
    correlate by var_TX / sqrt((var_TX + var_RXl)(var_TX + var_RXu)), 0.5 within 0.02 for LOs
    at 870, 915 and 960 MHz; one shared LO would give 1.  0.06 s: the estimate of a correlation
    over ~60 independent 1 ms stretches has a standard deviation near 0.1, hence 0.5 +- 0.2."""
    kw = {"seed": 7, "mode": "cw", "duration_s": 0.06, "snr_lower_db": 80, "snr_upper_db": 80, "adc_bits": 0}
    _, ya, _, yb = _pair(wf, {"phase_noise": True}, **kw)
    phis = [np.angle(ya[c].astype(complex) * np.conj(yb[c])) for c in (1, 2)]
    rho = np.corrcoef(phis[0], phis[1])[0, 1]
    assert 0.3 < rho < 0.7


def _fit_mu_nu(emu: Emulator, iq: np.ndarray, band: str) -> tuple[complex, complex]:
    """LS fit of ``Y_k = mu S_k + nu conj(S_-k)`` on the window average (no CFO, no drift)."""
    wf, tr, n = emu.wf, emu.truth, emu.wf.fft_size
    c = list(emu.sc.bands).index(band)
    m = iq.shape[1] // n
    y = np.fft.fft(iq[c, : m * n].reshape(m, n).mean(0)) / np.sqrt(n)
    k = wf.active_subcarriers
    harm = tr.first_harmonic(band) if band != "central" else 1.0
    s_act = wf.zadoff_chu * tr.cfr[band] * tr.scale[band] * harm * np.exp(1j * tr.phase_rad[band])
    s_act = s_act * np.exp(-2j * np.pi * k * tr.sample_offset / n)
    spec = np.zeros(n, complex)
    spec[wf.active_bins] = s_act
    image = np.conj(spec[np.mod(-np.arange(n), n)])  # conj(S_-k) on bin k
    a = np.stack([spec[wf.active_bins], image[wf.active_bins]], axis=1)
    (mu, nu), *_ = np.linalg.lstsq(a, y[wf.active_bins], rcond=None)
    return complex(mu), complex(nu)


def test_iq_imbalance_image_rejection_equals_the_parameters(wf):
    """Per channel, ``|mu|^2 / |nu|^2`` fitted on the output equals the truth's image rejection
    (32-40 dB here) within 0.1 dB: at 40 dB SNR per subcarrier averaged over 600 windows the
    fit's relative error on ``nu`` is ~1e-3 / (1e-2 image amplitude) / sqrt(800): 0.03 dB."""
    on = {"iq_gain_imbalance_db": 0.3, "iq_phase_imbalance_deg": 2.0}
    kw = {"seed": 12, "mode": "cw", "duration_s": 0.02, "lo_ppm": 0.0, "tag_clock_ppm": 0.0}
    a, ya, _, _ = _pair(wf, on, snr_central_db=40, snr_lower_db=40, snr_upper_db=40, **kw)
    imp = a.truth.impairments
    for band in a.sc.bands:
        mu, nu = _fit_mu_nu(a, ya, band)
        measured = 10 * np.log10(abs(mu) ** 2 / abs(nu) ** 2)
        assert 30 < imp["image_rejection_db"][band] < 60
        assert measured == pytest.approx(imp["image_rejection_db"][band], abs=0.1), band


def test_dc_offset_level_equals_the_parameter(wf):
    """The output's mean over whole periods is the DC (the signal has no DC subcarrier): its
    level against the channel's RMS is -40 dBc within 0.3 dB (thermal noise adds 1e-4 of the
    RMS to the mean over 0.6 M samples: 0.1 dB of the 1e-2 DC) and equals the truth's value."""
    kw = {"seed": 13, "mode": "cw", "duration_s": 0.02, "lo_ppm": 0.0, "tag_clock_ppm": 0.0}
    a, ya, _, _ = _pair(wf, {"dc_offset_dbc": -40.0}, **kw)
    for c, band in enumerate(a.sc.bands):
        m = ya.shape[1] // wf.fft_size * wf.fft_size
        mean = np.mean(ya[c, :m].astype(complex))
        rms = 10 ** (a.sc.rms_dbfs / 20)
        assert 20 * np.log10(abs(mean) / rms) == pytest.approx(-40.0, abs=0.3), band
        dc = complex(*a.truth.impairments["dc"][band])
        assert abs(mean - dc) < 0.05 * abs(dc)


def _gain(ya: np.ndarray, yb: np.ndarray) -> complex:
    """Least-squares ``g`` in ``ya = g yb``."""
    yb = yb.astype(complex)
    return complex(np.vdot(yb, ya) / np.vdot(yb, yb))


def test_tag_duty_cycle_scales_the_side_bands_and_leaks_into_the_central_band(wf):
    """Duty 0.6 against 0.5, same seeds: each side band is scaled by ``sin(0.6 pi)`` = 0.951 and
    turned by -+0.1 pi (within 0.005 and 0.01 rad: the common thermal noise at 30 dB biases the
    LS gain by ~1e-3); the central band gains the tag's data times ``2D - 1`` = 0.2 through
    the tag path: during packets the difference follows the tag's symbols, outside it is 0."""
    kw = {"seed": 14, "mode": "burst", "duration_s": 0.08, "first_packet_s": 0.004, "adc_bits": 0}
    a, ya, _, yb = _pair(wf, {"tag_duty_error": 0.1}, **kw)
    for band, sign in (("upper", -1), ("lower", 1)):
        c = list(a.sc.bands).index(band)
        g = _gain(ya[c], yb[c])
        assert abs(g) == pytest.approx(np.sin(0.6 * np.pi), abs=0.005)
        assert np.angle(g) == pytest.approx(sign * 0.1 * np.pi, abs=0.01)
    tr = a.truth
    assert tr.impairments["central_tag_leak"] == pytest.approx(0.2)
    diff = (ya[0] - yb[0]).astype(complex)
    start = int(tr.packet_start_sample[0])
    end = int(start + a.wf.packet_bits * tr.tag_symbol_samples)
    assert np.max(np.abs(diff[: start - 1])) < 1e-6  # no tag data before the packet
    # the expected power of the leak: 0.04 |h1c h2c C_tag C_c|^2 scale^2 * (K / N) per sample
    f = a.wf.active_freqs_hz
    centers = a.wf.band_centers_hz
    h = a.paths_tx_tag.cfr(f, centers["central"]) * a.paths_tag_rx.cfr(f, centers["central"])
    h = h * a.circuits["tag"].response(f) * tr.cfr_circuitry["central"] * tr.scale["central"]
    expect = 0.04 * np.mean(np.abs(h) ** 2) * len(f) / a.wf.fft_size
    assert np.mean(np.abs(diff[start:end]) ** 2) == pytest.approx(expect, rel=0.05)


def test_tag_jitter_moves_the_side_band_phase_by_its_rms(wf):
    """0.2 ns RMS of tag clock jitter: the shift's phase ``2 pi f_sh jitter`` has an RMS of
    0.057 rad, opposite in the two side bands (correlation -1); the symbol edges move by
    ``jitter * fs`` samples RMS.  At 60 dB SNR the phase is measured to ~1e-3 rad; 0.03 s
    holds ~57,000 independent coarse samples: the RMS is within 2 %."""
    kw = {"seed": 15, "mode": "cw", "duration_s": 0.03, "snr_lower_db": 60, "snr_upper_db": 60, "adc_bits": 0}
    _, ya, _, yb = _pair(wf, {"tag_jitter_rms_s": 2e-10}, **kw)
    phis = [np.angle(ya[c].astype(complex) * np.conj(yb[c])) for c in (1, 2)]
    assert np.std(phis[1]) == pytest.approx(2 * np.pi * wf.tag_shift_hz * 2e-10, rel=0.02)
    assert np.corrcoef(phis[0], phis[1])[0, 1] < -0.99
    assert np.allclose(ya[0], yb[0])  # the central band does not see the shift
    burst = Emulator(
        wf,
        ScenarioConfig(seed=15, duration_s=0.08, **{**OFF, "tag_jitter_rms_s": 1e-6}),
    )
    nominal = Emulator(wf, ScenarioConfig(seed=15, duration_s=0.08, **OFF))
    moved = burst._edges[1:] - nominal._edges[1:]
    assert np.std(moved) == pytest.approx(1e-6 * wf.working_rate_hz, rel=0.15)  # ~110 edges


def test_a_retune_redraws_each_channel_phase(wf):
    """After a retune at 10 ms each channel's phase is the truth's new draw: the output equals
    the un-retuned one turned by ``new - old`` (within 1e-3 rad at 80 dB),
    and is untouched before."""
    kw = {"seed": 16, "mode": "cw", "duration_s": 0.02, "adc_bits": 0}
    kw.update(snr_central_db=80, snr_lower_db=80, snr_upper_db=80)  # the common noise biases the LS phase
    a, ya, _, yb = _pair(wf, {"retunes_s": (0.01,)}, **kw)
    s = a.truth.impairments["retune_sample"][0]
    assert abs(s - 0.01 * wf.working_rate_hz) <= wf.fft_size / 2
    np.testing.assert_array_equal(ya[:, :s], yb[:, :s])
    for c, band in enumerate(a.sc.bands):
        turn = a.truth.impairments["retune_phase_rad"][band][0] - a.truth.phase_rad[band]
        g = _gain(ya[c, s:], yb[c, s:])
        assert np.angle(g * np.exp(-1j * turn)) == pytest.approx(0, abs=1e-3), band
