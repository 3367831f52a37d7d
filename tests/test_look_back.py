"""Look-back's tap features stand in for the raw windows they came from (dsp/look_back.py).

Windows hold a known tag sample ``b_m`` times the reference delayed by a known fractional
delay ``f_m`` (the delay model of dsp/tracking.py, ``exp(-j w_k f)`` on subcarrier ``k``), with
no noise, so each answer is known exactly: the aligned projection is ``b_m`` (the columns are
scaled so that ``c * reference`` gives ``c``) and the aligned, ``conj(b)``-weighted sum is the
reference's CFR.
"""

from __future__ import annotations

import numpy as np
import pytest

from dsp.acquisition import TapSpace
from dsp.look_back import LookBack
from dsp.references import ramp, symbol_from_cfr
from dsp.tracking import DelayBasis
from dsp.waveform import WaveformConfig

FIRST_TAP, N_TAPS = 24, 32  # the receiver's default tap window: guard 32 + (-8 .. 24)
# Both identities below are exact but for two approximations: the delay polynomial (largest
# error 2.6e-3 at the band edge, DelayBasis.fit_error) and the leak of a path's sinc sidelobes
# out of the tap window (paths at least 6 taps inside it).  A relative error of 1e-2 costs the
# tag samples 20 log10(1 - 1e-2) = 0.09 dB; without the alignment the error is that of
# exp(j w_k f) against 1, about |w_k f| on average: 0.3-1 rad at |f| = 1/2, far above.
REL_TOL = 1e-2


def _setup(cfo_hz: float, nu0_hz: float, windows: int = 200, seed: int = 3):
    wf = WaveformConfig()
    rng = np.random.default_rng(seed)
    space = TapSpace(wf, FIRST_TAP, N_TAPS)
    basis = DelayBasis(wf, 4)
    k = wf.active_subcarriers
    delays = np.array([30.3, 34.8, 41.5])  # samples from the window start, inside 24..55
    gains = np.array([1.0, 0.6j, -0.3])
    cfr = (np.exp(-2j * np.pi * np.outer(k, delays) / wf.fft_size) @ gains).astype(complex)
    f = rng.uniform(-0.5, 0.5, windows)
    b = np.exp(2j * np.pi * rng.uniform(size=windows)) * rng.choice([-1.0, 1.0], windows)
    w = 2 * np.pi * k / wf.fft_size
    win = np.stack(
        [bm * symbol_from_cfr(wf, cfr * np.exp(-1j * w * fm), cfo_hz) for bm, fm in zip(b, f, strict=True)]
    )
    features = (win @ space.feature_matrix(np.conj(ramp(wf, nu0_hz)))).astype(np.complex64)
    starts = np.arange(windows) * wf.fft_size + 7
    reference = symbol_from_cfr(wf, cfr, cfo_hz)
    return space, basis, cfr, f, b, win, features, starts, reference


def test_look_back_tag_samples_are_the_aligned_projections():
    space, basis, _, f, b, win, features, starts, reference = _setup(0.0, 0.0)
    lb = LookBack(space, basis, starts, features, 0.0)
    z = lb.tag_samples(starts, f, lb.columns(reference, 0.0))
    assert np.max(np.abs(z - b)) < REL_TOL  # |b| = 1
    # and the raw windows' aligned projection (PolynomialAlignment's arithmetic) agrees
    raw = np.sum((win @ basis.columns(reference, 0.0)) * basis.powers(f), axis=1)
    assert np.max(np.abs(raw - b)) < REL_TOL
    # unaligned (every f taken as 0) it does not: the test sees a missing alignment
    z0 = lb.tag_samples(starts, np.zeros_like(f), lb.columns(reference, 0.0))
    assert np.max(np.abs(z0 - b)) > 10 * REL_TOL


def test_look_back_cfr_of_a_decoded_packet_is_the_channel():
    space, basis, cfr, f, b, _, features, starts, _ = _setup(0.0, 0.0)
    lb = LookBack(space, basis, starts, features, 0.0)
    est = lb.cfr(starts, f, np.conj(b), 0.0)
    scale = np.vdot(cfr, est) / np.vdot(cfr, cfr)
    assert np.max(np.abs(est / scale - cfr)) < REL_TOL * np.max(np.abs(cfr))
    smeared = lb.cfr(starts, np.zeros_like(f), np.conj(b), 0.0)
    s0 = np.vdot(cfr, smeared) / np.vdot(cfr, cfr)
    assert np.max(np.abs(smeared / s0 - cfr)) > 10 * REL_TOL * np.max(np.abs(cfr))


def test_look_back_fits_the_band_offset_from_the_central_one():
    """Features taken with the central CFO removed (the tag's offset not yet known), the band
    500 Hz away (a tag clock 11 ppm off at 45 MHz): the columns fitted at the band's own CFO
    still give its tag samples (the residual ramp leaks ``(pi delta)**2 / 3`` of the power out
    of the features' span, 0.1 % at delta = 500 Hz / 30 kHz, within the same 1e-2), and the
    CFR read at that offset is the channel's, which read as if there were none it is not."""
    space, basis, cfr, f, b, _, features, starts, reference = _setup(500.0, 0.0)
    lb = LookBack(space, basis, starts, features, 0.0)
    z = lb.tag_samples(starts, f, lb.columns(reference, 500.0))
    assert np.max(np.abs(z - b)) < REL_TOL
    for cfo_hz, close in ((500.0, True), (0.0, False)):
        est = lb.cfr(starts, f, np.conj(b), cfo_hz)
        err = np.max(np.abs(est * np.vdot(est, cfr) / np.vdot(est, est) - cfr)) / np.max(np.abs(cfr))
        assert (err < REL_TOL) == close, (cfo_hz, err)


def test_look_back_marks_windows_it_has_no_features_of():
    space, basis, _, f, b, _, features, starts, reference = _setup(0.0, 0.0, windows=20)
    lb = LookBack(space, basis, starts[5:], features[5:], 0.0)
    z = lb.tag_samples(starts, f, lb.columns(reference, 0.0))
    assert np.isnan(z[:5]).all() and np.isfinite(z[5:]).all()
    assert lb.cfr(starts, f, np.conj(b), 0.0) is None
    assert lb.cfr(starts[5:], f[5:], np.conj(b[5:]), 0.0) is not None
    with pytest.raises(ValueError, match="look-back"):
        LookBack(space, basis, starts[1:], features, 0.0)


def test_look_back_packets_refine_the_blind_reference():
    """Side bands at -36 dB, the tag clock 95 ppm off (its band 4.3 kHz from where acquisition's
    features put it): the packets decoded by look-back must refine each side band's reference
    from their features, so the reference they leave is close to the channel.

    Matched-filter efficiency ``rho**2 = |<R, H>|**2 / (|R|**2 |H|**2)`` against the truth's CFR
    ``H`` (as seen in the reference window).  One packet's estimate: about 1,875 windows at
    10**-3.6 per subcarrier give a per-subcarrier SNR of 0.47, and the 32-tap projection keeps
    32 / 800 of the noise, so ``SNR_est`` = 12 per packet; the blind eigenvector counts as one
    more.  After ``n >= 3`` look-back packets ``SNR_est >= 36`` and the loss ``10 log10(1 + 1 /
    SNR_est)`` is at most 0.12 dB (its spread over 64 real degrees of freedom about 18 %): the
    limit is 0.2 dB.  Without the refresh the reference stays the blind one (0.6-1.1 dB at this
    SNR), and a CFR read without the tag's offset adds 0.3 dB at 95 ppm.  The references
    checked are those installed by the look-back refreshes (``_learn_from_features``)."""
    from dsp.receiver import Receiver
    from dsp.references import cfr_from_symbol
    from dsp.results import BlockStats
    from sdr.emulator.emulator import Emulator
    from sdr.emulator.scenario import ScenarioConfig

    wf = WaveformConfig()
    sc = ScenarioConfig(
        seed=1, duration_s=1.0, snr_lower_db=-36, snr_upper_db=-36, circuitry=False, tag_clock_ppm=95.0
    )
    emu = Emulator(wf, sc)
    tr = emu.truth
    rx = Receiver(wf, list(sc.bands))
    learned: list[tuple[str, np.ndarray, float]] = []  # references installed from look-back packets
    learn, install = rx._learn_from_features, rx._install

    def recording(band, ref):
        install(band, ref)
        learned.append((band, rx._ref[band].copy(), rx.cfo_hz[band]))

    def learning(*args):
        rx._install = recording
        try:
            learn(*args)
        finally:
            rx._install = install

    rx._learn_from_features = learning
    out = []
    for blk in emu.blocks():
        out += rx.push(blk.iq, blk.lost_before)
    acquired = [r.time_s for r in out if isinstance(r, BlockStats) and all(r.acquired.values())]
    ends_s = tr.packet_start_sample / wf.working_rate_hz + wf.packet_duration_s
    early = int(np.sum(ends_s < acquired[0]))
    assert early >= 3, f"acquired at {acquired[0]:.3f} s: too early to test look-back"
    k = wf.active_subcarriers
    s0 = rx.reference_index
    shift = np.exp(
        2j * np.pi * k * ((s0 - float(tr.illumination_delay_samples(s0))) % wf.fft_size) / wf.fft_size
    )
    for band in rx.sides:
        refs = [(ref, cfo) for b, ref, cfo in learned if b == band]
        assert len(refs) == early, (band, len(refs), early)  # one refresh per look-back packet
        ref, cfo = refs[-1]
        h, est = tr.cfr[band] * shift, cfr_from_symbol(wf, ref, cfo)
        rho2 = abs(np.vdot(h, est)) ** 2 / (np.vdot(h, h).real * np.vdot(est, est).real)
        assert -10 * np.log10(rho2) < 0.2, (band, early, -10 * np.log10(rho2))
