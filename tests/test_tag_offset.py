"""The side bands' carrier offset (dsp/acquisition.py ``tag_offset_hz``) and the blind
acquisition's spike test (``SubspaceAcquirer``), on samples built here.  About 1 s.

A tag clock error ``eps`` puts the upper band at ``+eps f_sh`` and the lower at ``-eps f_sh``
(SYSTEM.md: the tag's square wave at ``f_sh (1 + eps)``); BPSK data multiplies both bands by the
same ``+-1`` per tag symbol, which squaring (or the cross product) removes.
"""

from __future__ import annotations

import numpy as np
import pytest

from dsp.acquisition import SubspaceAcquirer, TapSpace, tag_offset_hz
from dsp.waveform import WaveformConfig

WF = WaveformConfig()
RATE = WF.working_rate_hz / WF.fft_size  # OFDM symbols per second, 30 kHz
WINDOWS_PER_BIT = 15


def side_samples(rng, offset_hz: float, n: int, snr: float | None = None) -> dict[str, np.ndarray]:
    bits = 1 - 2 * rng.integers(0, 2, n // WINDOWS_PER_BIT + 1)
    data = np.repeat(bits, WINDOWS_PER_BIT)[:n]
    t = np.arange(n) / RATE
    out = {}
    for band, sign in (("lower", -1), ("upper", 1)):
        z = data * np.exp(1j * (2 * np.pi * sign * offset_hz * t + rng.uniform(0, 2 * np.pi)))
        if snr is not None:
            z = z + (rng.normal(size=n) + 1j * rng.normal(size=n)) / np.sqrt(2 * snr)
        out[band] = z
    return out


@pytest.mark.parametrize("offset_hz", [1234.5, -3021.7, 0.4, 7000.0])
@pytest.mark.parametrize("bands", [("lower", "upper"), ("upper",), ("lower",)])
def test_the_offset_of_noiseless_side_bands(offset_hz, bands):
    """4,000 samples padded 4x: the tone ``2 eps f_sh`` sits on a grid of ``RATE / 16384`` (1.8
    Hz, 0.9 Hz in ``eps f_sh``); rounding to it leaves up to 0.46 Hz, the parabola through the
    three largest bins must do 10 times better.  Either band alone gives the same answer (the
    lower band's sign is mirrored), 7 kHz is inside the unambiguous ``RATE / 4`` = 7.5 kHz."""
    rng = np.random.default_rng(int(abs(offset_hz) * 10) + len(bands))
    z = side_samples(rng, offset_hz, 4000)
    est = tag_offset_hz({b: z[b] for b in bands}, RATE)
    assert est == pytest.approx(offset_hz, abs=0.046)


def test_the_offset_in_noise_is_within_its_bound():
    """0 dB per sample on both bands: squaring leaves the tone at SNR ``s**2 / (1 + 2 s)`` = 1/3
    per band (the cross product adds a third estimate); the Cramer-Rao deviation of a tone's
    frequency from ``n`` samples at SNR ``g`` is ``sqrt(6 / g / n**3) RATE / (2 pi)``, 0.04 Hz in
    ``2 eps f_sh`` for one squared band at ``g`` = 1/3 and ``n`` = 4000 (0.02 Hz in ``eps f_sh``).
    Limit: 5 times that, plus the noiseless limit 0.046 Hz."""
    rng = np.random.default_rng(11)
    n, offset = 4000, 2345.6
    sigma = np.sqrt(6 / (1 / 3) / n**3) * RATE / (2 * np.pi) / 2
    for _ in range(5):
        est = tag_offset_hz(side_samples(rng, offset, n, snr=1.0), RATE)
        assert est == pytest.approx(offset, abs=5 * sigma + 0.046)


def test_shortest_band_sets_the_length():
    rng = np.random.default_rng(2)
    z = side_samples(rng, 500.0, 4000)
    z["lower"] = z["lower"][:1000]  # 1000 samples: the estimate uses the first 1000 of each
    assert tag_offset_hz(z, RATE) == pytest.approx(500.0, abs=4 * 0.046)


def cw_samples(rng, offset_hz: float, n: int, snr: float | None = None) -> dict[str, np.ndarray]:
    """An unmodulated tag (CW mode): the bands are the tones themselves."""
    t = np.arange(n) / RATE
    out = {}
    for band, sign in (("lower", -1), ("upper", 1)):
        z = np.exp(1j * (2 * np.pi * sign * offset_hz * t + rng.uniform(0, 2 * np.pi)))
        if snr is not None:
            z = z + (rng.normal(size=n) + 1j * rng.normal(size=n)) / np.sqrt(2 * snr)
        out[band] = z
    return out


@pytest.mark.parametrize("offset_hz", [1234.5, -3021.7, 12000.0, -14000.0])
@pytest.mark.parametrize("bands", [("lower", "upper"), ("upper",), ("lower",)])
def test_an_unmodulated_tag_is_a_tone_at_the_offset_itself(offset_hz, bands):
    """CW: no squaring, so the tone is at ``eps f_sh`` on a grid of ``RATE / 16384`` (1.8 Hz;
    the parabola must do 20 times better than rounding's 0.9 Hz) and offsets up to ``RATE / 2``
    (15 kHz, twice the squared estimate's range) are unambiguous."""
    rng = np.random.default_rng(int(abs(offset_hz)) + len(bands))
    z = cw_samples(rng, offset_hz, 4000)
    assert tag_offset_hz({b: z[b] for b in bands}, RATE, modulated=False) == pytest.approx(
        offset_hz, abs=0.046
    )


def test_an_unmodulated_tag_at_minus_36_db_is_found_where_squaring_loses_it():
    """Side bands at -36 dB per subcarrier are about -7 dB per window after the projection on
    800 subcarriers (``s`` = 0.2); 1500 windows of one band, as the ranging sweep's CW runs
    acquire.  The tone's Cramer-Rao deviation is ``sqrt(6 / (s n**3)) RATE / (2 pi)`` = 0.45
    Hz; limit 5 times that plus the grid's 0.2 Hz.  Squaring first (the burst-mode estimate)
    leaves ``s**2 / (1 + 2 s)`` = 0.029 per window: a periodogram peak of about 43 against noise
    peaks of about ``ln(8192)`` = 9 times the mean, and some draws go wrong (2 of these 40 when
    measured, not asserted: it describes the other estimator), which is what made the sweep's
    blind CW runs below -28 dB range hundreds of metres off (docs/RESULTS.md)."""
    n, offset, snr = 1500, 1933.7, 0.2
    limit = 5 * np.sqrt(6 / (snr * n**3)) * RATE / (2 * np.pi) + 0.2
    for seed in range(40):
        z = {"upper": cw_samples(np.random.default_rng(seed), offset, n, snr)["upper"]}
        assert tag_offset_hz(z, RATE, modulated=False) == pytest.approx(offset, abs=limit)


def test_the_spike_of_a_tag_clears_the_edge_and_noise_alone_does_not():
    """Whitened tap features (``L`` = 32): noise alone has eigenvalues in the Marchenko-Pastur
    law, the largest at ``(1 + sqrt(L / n))**2`` of the median's scale (about 1.3 at ``n`` = 2000);
    a rank-one tag ``b[m] q`` at 0.5 per feature adds about ``0.5 L`` to one eigenvalue, so the
    ratio is far above the edge."""
    space = TapSpace(WF, 10, 32)
    rng = np.random.default_rng(9)
    n, dim = 2000, 32
    noise = (rng.normal(size=(n, dim)) + 1j * rng.normal(size=(n, dim))) / np.sqrt(2)
    acq = SubspaceAcquirer(space, margin=1.5)
    acq.add(noise[:1000].astype(np.complex64), np.arange(1000))
    acq.add(noise[1000:].astype(np.complex64), np.arange(1000, n))
    ratio, edge, _ = acq.spike()
    assert acq.count == n
    # the covariance accumulates over calls (not the last call's only)
    c64 = noise.astype(np.complex64).astype(complex)
    np.testing.assert_allclose(acq.cov, c64.conj().T @ c64, rtol=1e-6, atol=1e-6 * n)
    assert edge == pytest.approx(1.5 * (1 + np.sqrt(dim / n)) ** 2)
    assert ratio < edge
    q = rng.normal(size=dim) + 1j * rng.normal(size=dim)
    q /= np.linalg.norm(q)
    b = 1 - 2 * rng.integers(0, 2, n)
    tag = SubspaceAcquirer(space, margin=1.5)
    feats = (noise + np.sqrt(0.5 * dim) * b[:, None] * q[None, :]).astype(np.complex64)
    tag.add(feats, np.arange(n))
    ratio, edge, _ = tag.spike()
    assert ratio > 5 * edge


def test_the_spike_gives_the_tag_channel_and_matched_tag_samples():
    """Windows ``b[m]`` times the illumination through a known two-path tag channel inside the tap
    window, plus noise, through the receiver's own feature matrix: the spike's CFR
    (``cfr_from_taps``) must be the channel (normalised correlation > 0.99) and the tag samples
    the matched projection of the features on the spike (their mean amplitude that of ``F u``
    for the unit top eigenvector ``u`` of ``F^H F``, computed here with numpy, within 2 %: the
    receiver once returned ``u`` itself as the taps, whose CFR correlated 0.47 with this
    channel and whose projection ``F conj(u)`` had about half the matched amplitude)."""
    from dsp.receiver_config import ReceiverConfig

    cfg = ReceiverConfig()
    first = cfg.timing_guard_samples + cfg.tag_delay_window[0]
    space = TapSpace(WF, first, cfg.tag_delay_window[1] - cfg.tag_delay_window[0])
    rng = np.random.default_rng(0)
    k, n_fft = WF.active_subcarriers, WF.fft_size
    d = space.delays[0] + np.array([5.3, 12.7])
    h = (np.array([1.0, 0.6j])[None, :] * np.exp(-2j * np.pi * np.outer(k, d) / n_fft)).sum(axis=1)
    spec = np.zeros(n_fft, complex)
    spec[WF.active_bins] = WF.zadoff_chu * h
    sym = np.fft.ifft(spec) * np.sqrt(n_fft)
    n = 3000
    b = 1 - 2 * rng.integers(0, 2, n)
    win = b[:, None] * sym[None, :] + 0.3 * (rng.normal(size=(n, n_fft)) + 1j * rng.normal(size=(n, n_fft)))
    feats = (win @ space.feature_matrix(np.ones(n_fft))).astype(np.complex64)
    acq = SubspaceAcquirer(space, 1.5)
    acq.add(feats, np.arange(n))
    _, _, v = acq.spike()
    est = space.cfr_from_taps(v)
    assert abs(np.vdot(est, h)) / np.linalg.norm(est) / np.linalg.norm(h) > 0.99
    u = np.linalg.eigh(feats.conj().T.astype(complex) @ feats)[1][:, -1]
    matched = np.mean(np.abs(feats @ u))
    assert np.mean(np.abs(acq.tag_samples(v))) == pytest.approx(matched, rel=0.02)


def test_the_feature_matrix_is_the_whitened_taps_of_the_window_cfr():
    """``TapSpace`` against its definitions (dsp/acquisition.py): ``E[k, l] = exp(j 2 pi k d_l / N)
    / K``, ``whiten = (E^H E)^(-1/2)`` (so ``whiten gram whiten = I``), and
    ``window @ feature_matrix(r)`` equals ``FFT(window r)[active] / X @ E @ whiten`` (X the
    Zadoff-Chu symbol), computed here with numpy's FFT on a random window and a phase ramp."""
    space = TapSpace(WF, 40, 32)
    k, n_fft = WF.active_subcarriers, WF.fft_size
    e = np.exp(2j * np.pi * np.outer(k, space.delays) / n_fft) / k.size
    np.testing.assert_allclose(space.E, e, atol=1e-12)
    gram = e.conj().T @ e
    np.testing.assert_allclose(space.whiten @ gram @ space.whiten, np.eye(32), atol=1e-8)
    rng = np.random.default_rng(4)
    win = rng.normal(size=(3, n_fft)) + 1j * rng.normal(size=(3, n_fft))
    ramp = np.exp(2j * np.pi * 0.37 * np.arange(n_fft) / n_fft)
    want = (np.fft.fft(win * ramp, axis=-1)[:, WF.active_bins] / WF.zadoff_chu) @ e @ space.whiten
    got = win @ space.feature_matrix(ramp)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_cfr_from_taps_is_the_cfr_of_the_window_the_features_came_from():
    """A window ``symbol_from_cfr(H)`` with ``H`` in the span of the taps (integer taps inside
    the window): its features taken to a CFR give ``H`` itself, to the features' complex64
    rounding.  (A conversion by ``gram^(1/2)`` instead of ``conj(whiten)``, as before session
    12, passed the correlation test above at 0.996 but is 0.5 of the largest value off here.)"""
    from dsp.references import symbol_from_cfr

    space = TapSpace(WF, 40, 32)
    rng = np.random.default_rng(6)
    taps = np.zeros(32, complex)
    taps[[3, 9, 20]] = rng.normal(size=3) + 1j * rng.normal(size=3)
    h = np.exp(-2j * np.pi * np.outer(WF.active_subcarriers, space.delays) / WF.fft_size) @ taps
    feats = symbol_from_cfr(WF, h, 0.0) @ space.feature_matrix(np.ones(WF.fft_size))
    np.testing.assert_allclose(space.cfr_from_taps(feats), h, atol=1e-5 * np.abs(h).max())


@pytest.mark.parametrize("offset_hz", [4500.0, -2000.0])
def test_cfr_from_taps_reads_a_band_offset_from_the_features_derotation(offset_hz):
    """Blind acquisition's features remove the central CFO, so a side band sits ``eps f_sh``
    away (4.5 kHz for a tag at 100 ppm of 45 MHz).  Features of ``symbol_from_cfr(H, offset)``
    taken without derotation, read at that offset, give ``H`` to complex64 rounding; read as
    if there were no offset they are off by more than 10 % of the largest value (the smear
    of 0.15 subcarrier)."""
    from dsp.references import symbol_from_cfr

    space = TapSpace(WF, 40, 32)
    rng = np.random.default_rng(7)
    taps = np.zeros(32, complex)
    taps[[5, 11]] = rng.normal(size=2) + 1j * rng.normal(size=2)
    h = np.exp(-2j * np.pi * np.outer(WF.active_subcarriers, space.delays) / WF.fft_size) @ taps
    feats = symbol_from_cfr(WF, h, offset_hz) @ space.feature_matrix(np.ones(WF.fft_size))
    np.testing.assert_allclose(space.cfr_from_taps(feats, offset_hz), h, atol=1e-5 * np.abs(h).max())
    naive = space.cfr_from_taps(feats)
    naive = naive * np.vdot(naive, h) / np.vdot(naive, naive)
    assert np.max(np.abs(naive - h)) > 0.1 * np.abs(h).max()
