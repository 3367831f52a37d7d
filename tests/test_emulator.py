"""The emulator against its own ground truth and against the analytic model."""

import numpy as np
import pytest

from dsp.channel import Paths
from dsp.cir import cfr_to_cir, fit_cfr, nmae
from dsp.packet import bits_to_symbols
from dsp.waveform import SPEED_OF_LIGHT_M_S
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig
from tests.conftest import Z_MAX, analytic_band_cfrs, cfr_noise_var, chi2_bounds, emulate, known_timing_cfr

LOS = {
    "paths_tx_rx": ((37.3, 1.0, 0.0),),
    "paths_tx_tag": ((12.1, 1.0, 0.0),),
    "paths_tag_rx": ((25.7, 0.0, 1.0),),
}


def test_single_los_path_cir_peak_at_true_delay(wf):
    emu, iq = emulate(wf, mode="cw", duration_s=0.005, circuitry=False, seed=4, **LOS)
    for band, length in (("central", 37.3), ("lower", 12.1 + 25.7), ("upper", 12.1 + 25.7)):
        cir = cfr_to_cir(known_timing_cfr(emu, iq, band), wf)
        peak_m = np.argmax(np.abs(cir)) * wf.cir_grid_step_m
        assert abs(peak_m - length) <= wf.cir_grid_step_m / 2, band


def test_injected_cfo_and_sample_offset_are_recovered(wf):
    emu, iq = emulate(
        wf, mode="cw", duration_s=0.01, lo_ppm=3.3, tag_clock_ppm=-70, sample_offset=611, seed=9
    )
    n, fs = wf.fft_size, wf.working_rate_hz
    for c, band in enumerate(emu.sc.bands):
        r = iq[c].astype(complex)
        nu = fs / (2 * np.pi * n) * np.angle(np.vdot(r[:-n], r[n:]))  # eq. (47)-(48)
        assert nu == pytest.approx(emu.truth.cfo_hz[band], abs=2.0), band
    # timing (53): circular correlation of one window with the known symbol
    corr = np.fft.ifft(np.fft.fft(iq[0, :n]) * np.conj(wf.symbol_freq))
    n_hat = int(np.argmax(np.abs(corr)))
    delay_samples = emu.truth.tx_rx_distance_m / SPEED_OF_LIGHT_M_S * fs
    circuitry_samples = emu.truth.circuitry_delay_s["central"] * fs
    assert (n_hat - 611 - delay_samples - circuitry_samples + n / 2) % n - n / 2 == pytest.approx(0, abs=1.0)


@pytest.mark.parametrize("snr_db", [-5.0, 10.0, 30.0])
def test_measured_snr_matches_configured(wf, snr_db):
    emu, iq = emulate(
        wf,
        mode="cw",
        duration_s=0.02,
        snr_central_db=snr_db,
        snr_lower_db=snr_db - 3,
        snr_upper_db=snr_db + 3,
        lo_ppm=0.0,
        tag_clock_ppm=0.0,
        seed=2,
        ideal=True,  # the configured thermal SNR alone: phase noise (-42 dBc) would add to it
    )
    n = wf.fft_size
    for c, band in enumerate(emu.sc.bands):
        m = iq.shape[1] // n
        y = np.fft.fft(iq[c, : m * n].reshape(m, n), axis=1)[:, wf.active_bins]
        mean = y.mean(0)
        p_noise = np.mean(np.abs(y - mean) ** 2) * m / (m - 1)
        p_sig = np.mean(np.abs(mean) ** 2) - p_noise / m
        assert 10 * np.log10(p_sig / p_noise) == pytest.approx(emu.sc.snr_db[band], abs=0.3), band


def test_emulated_cfrs_match_the_analytic_model_over_random_scenarios(wf):
    """Known timing, CFO, phase, scale and circuitry undone (``known_timing_cfr``): each band's CFR
    is the analytic propagation model (direct channel plus the tag's structural mode in the central
    band; compound channel in the side bands) plus white noise at the configured SNR.

    Fitted against the model with a free complex gain and delay (``fit_cfr``): the gain is 1 (scale
    ``gain.real - 1`` and phase ``gain.imag`` within ``Z_MAX`` standard deviations, about 7e-5 each
    at 30 dB over 120 windows), the delay 0 (within ``Z_MAX`` x 2-4 ps, 0.5-1 mm), and the residual is
    the noise (``chi2``).  Impairments off (``ideal``, which also unties the sample clock from the
    LO: no drift): IQ images and phase noise are outside this model and are checked against their
    own in test_emulator_impairments.py; a drifting sample clock also stretches each window, which
    this per-subcarrier model leaves out (see test_receiver.py).  (NMAE, eq. 100-102,
    is not used: it compares peak-aligned magnitudes, so it cannot see a delay or phase error, and
    unrelated scenarios score below 0.005 on it.)
    """
    rng = np.random.default_rng(2024)
    snr_db = 30.0
    for i in range(50):
        emu, iq = emulate(
            wf, mode="cw", duration_s=0.004, n_nlos=int(rng.integers(0, 9)), seed=1000 + i, ideal=True,
            snr_central_db=snr_db, snr_lower_db=snr_db, snr_upper_db=snr_db,
        )  # fmt: skip
        assert emu.truth.impairments["central_tag_leak"] == 0  # the model leaves the data leak out
        windows = iq.shape[1] // wf.fft_size
        models = analytic_band_cfrs(emu)
        for band in emu.sc.bands:
            circ = emu.truth.cfr_circuitry[band]
            est = known_timing_cfr(emu, iq, band) / circ
            fit = fit_cfr(est, models[band], wf, cfr_noise_var(models[band], circ, snr_db, windows))
            s_re, s_im = fit.gain_std
            where = (i, band, fit.gain, fit.delay_s, fit.chi2 / fit.dof)
            assert abs(fit.gain.real - 1) < Z_MAX * s_re, where  # scale
            assert abs(fit.gain.imag) < Z_MAX * s_im, where  # phase
            assert abs(fit.delay_s) < Z_MAX * fit.delay_std_s, where
            lo, hi = chi2_bounds(fit.dof)
            assert lo < fit.chi2 < hi, where


def test_nmae_is_the_papers_peak_aligned_magnitude_metric(wf):
    """NMAE (eq. 100-102) as the paper defines it, kept for its Table I: magnitudes normalised to
    their maxima, maxima aligned, so a delayed and phase-rotated copy scores exactly 0 (why the
    tests above fit the complex CFR instead), while a different path structure scores above 0."""
    f = wf.active_freqs_hz
    h = Paths(np.array([30.0, 41.0, 55.0]), np.array([1.0, 0.5j, -0.3])).cfr(f, wf.carrier_freq_hz)
    shifted = 2.0 * np.exp(1.1j) * h * np.exp(-2j * np.pi * f * 7 * wf.cir_grid_step_s)
    assert nmae(cfr_to_cir(h, wf), cfr_to_cir(shifted, wf)) == pytest.approx(0, abs=1e-12)
    other = Paths(np.array([30.0, 41.0]), np.array([1.0, 0.8])).cfr(f, wf.carrier_freq_hz)
    assert nmae(cfr_to_cir(h, wf), cfr_to_cir(other, wf)) > 1e-3


def test_same_seed_same_samples_and_blocks_are_independent(wf):
    sc = ScenarioConfig(duration_s=0.03, seed=77, n_nlos=3)
    a, b = Emulator(wf, sc), Emulator(wf, sc)
    np.testing.assert_array_equal(a.generate_block(2), b.generate_block(2))
    full = a.generate()
    per = 256 * wf.fft_size
    np.testing.assert_array_equal(full[:, 2 * per : 3 * per], b.generate_block(2))
    c = Emulator(wf, sc.replace(seed=78)).generate_block(2)
    assert not np.array_equal(c, full[:, 2 * per : 3 * per])


def test_injected_drops_remove_samples_and_are_in_the_truth(wf):
    sc = ScenarioConfig(duration_s=0.03, seed=5, drops=((0.005, 1000), (0.02, 70000)))
    emu = Emulator(wf, sc)
    blocks = list(emu.blocks())
    total = sum(b.iq.shape[1] for b in blocks)
    assert total == emu.n_total - 71000
    assert sum(b.lost_before for b in blocks) == 71000
    ref = Emulator(wf, sc.replace(drops=())).generate()
    for b in blocks:  # every delivered sample is the undropped sample at its index
        np.testing.assert_array_equal(b.iq, ref[:, b.index : b.index + b.iq.shape[1]])
    np.testing.assert_array_equal(emu.truth.gaps, [[153600, 1000], [614400, 70000]])


def test_side_band_carries_the_packet_bits(wf):
    emu, iq = emulate(
        wf, mode="burst", duration_s=0.08, seed=11, snr_lower_db=20, snr_upper_db=20, first_packet_s=0.004
    )
    tr, n = emu.truth, wf.fft_size
    assert len(tr.packet_start_sample) == 1
    for band in ("lower", "upper"):
        c = list(emu.sc.bands).index(band)
        h = tr.cfr[band] * tr.scale[band] * tr.first_harmonic(band) * np.exp(1j * tr.phase_rad[band])
        k = np.fft.fftfreq(n, 1 / n)
        syms = []
        for j in range(wf.packet_bits):
            mid = int(tr.packet_start_sample[0] + (j + 0.5) * tr.tag_symbol_samples)
            s = (mid // n) * n
            t = np.arange(s, s + n)
            # the reference at the window's true (drifting) delay
            delay = tr.illumination_delay_samples(s + (n - 1) / 2)
            ref = np.fft.ifft(_spectrum(wf, h) * np.exp(-2j * np.pi * k * delay / n)) * np.sqrt(n)
            r = iq[c, s : s + n] * np.exp(-2j * np.pi * tr.cfo_hz[band] * t / wf.working_rate_hz)
            syms.append(np.real(np.vdot(ref, r)))
        np.testing.assert_array_equal(np.sign(syms), bits_to_symbols(tr.packet_bits[0]))
        # before the packet the tag is idle: no side-band signal
        idle = iq[c, :n].astype(complex)
        assert abs(np.vdot(ref, idle)) < 0.2 * abs(syms[0])


def _spectrum(wf, h):
    spec = np.zeros(wf.fft_size, complex)
    spec[wf.active_bins] = wf.zadoff_chu * h
    return spec


def test_box_muller_noise_is_unit_power_circular_gaussian():
    """``complex_gaussian``: E|z|^2 = 1, I and Q independent N(0, 1/2), Gaussian by a KS test,
    |z| within the 24-bit bound, and the same generator state gives the same noise."""
    import scipy.stats

    from sdr.emulator.noise import complex_gaussian

    z = complex_gaussian(np.random.default_rng(11), np.empty((64, 4096), np.complex64))
    n = z.size
    assert abs(np.mean(np.abs(z) ** 2) - 1) < 5 / np.sqrt(n)  # |z|^2 ~ Exp(1): std 1
    tol_var = 5 * 0.5 * np.sqrt(2 / n)  # 5 standard deviations of a sample variance of N(0, 1/2)
    assert abs(np.var(z.real) - 0.5) < tol_var and abs(np.var(z.imag) - 0.5) < tol_var
    assert abs(np.mean(z.real * z.imag)) < 5 * 0.5 / np.sqrt(n)
    for part in (z.real, z.imag):
        assert scipy.stats.kstest(part.ravel()[:100_000] * np.sqrt(2), "norm").pvalue > 1e-3
    assert np.abs(z).max() <= np.sqrt(24 * np.log(2)) * (1 + 1e-6)
    again = complex_gaussian(np.random.default_rng(11), np.empty((64, 4096), np.complex64))
    np.testing.assert_array_equal(z, again)
    with pytest.raises(ValueError, match="complex64"):
        complex_gaussian(np.random.default_rng(0), np.empty(8, np.complex128))
