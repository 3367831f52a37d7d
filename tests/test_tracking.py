"""Fractional-delay model, whole-subcarrier CFO acquisition (dsp/tracking.py, dsp/timing.py).

These are checks of the maths on synthetic windows built here from the definition
(a delay ``f`` multiplies subcarrier ``k`` by ``exp(-j 2 pi k f / N)``); the receiver
under drift is tested on emulated and independent captures in test_drift.py and
test_oracle.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from dsp.references import symbol_from_cfr
from dsp.timing import coarse_cfo_hz
from dsp.tracking import DelayBasis, TimingModel
from dsp.waveform import WaveformConfig

WF = WaveformConfig()
K = WF.active_subcarriers


def _channel(rng: np.random.Generator, paths: int = 3) -> np.ndarray:
    """A random multipath CFR ``[subcarrier]`` with delays within 40 samples."""
    d = rng.uniform(0, 40, paths)
    a = rng.normal(size=paths) + 1j * rng.normal(size=paths)
    return (a[None, :] * np.exp(-2j * np.pi * np.outer(K, d) / WF.fft_size)).sum(axis=1)


def _delayed(h: np.ndarray, f: float, cfo_hz: float) -> np.ndarray:
    return symbol_from_cfr(WF, h * np.exp(-2j * np.pi * K * f / WF.fft_size), cfo_hz).astype(complex)


def test_the_polynomial_fit_error_is_what_its_degree_allows():
    """Chebyshev bound for exp(j u), |u| <= a = pi * 400/1024: 2 (a/2)**(P+1) / (P+1)!.
    Least squares over a uniform grid is within a small factor (3x) of the minimax fit."""
    a = np.pi * WF.subcarrier_max / WF.fft_size
    for degree in (3, 4, 5):
        bound = 2 * (a / 2) ** (degree + 1) / np.prod(np.arange(1, degree + 2))
        err = DelayBasis(WF, degree).fit_error
        assert bound / 3 < err < 3 * bound, (degree, err, bound)


@pytest.mark.parametrize("f", [-0.5, -0.31, 0.0, 0.12, 0.5])
def test_projection_on_the_delayed_reference_recovers_the_gain(f):
    """A window holding ``c`` times the reference delayed by ``f`` projects to ``c``; the error
    is at most the fit error (every subcarrier's factor is off by at most that much)."""
    rng = np.random.default_rng(4)
    h, cfo = _channel(rng), 2345.0
    basis = DelayBasis(WF)
    ref = symbol_from_cfr(WF, h, cfo)
    cols = basis.columns(ref, cfo)
    c = 0.7 - 1.3j
    zp = (c * _delayed(h, f, cfo))[None, :] @ cols
    z = np.sum(zp * basis.powers(np.array([f])), axis=1)[0]
    assert abs(z - c) <= abs(c) * basis.fit_error
    # an unmodelled delay loses gain: the model is what recovers it
    z0 = (c * _delayed(h, f, cfo)) @ cols[:, 0]
    if abs(f) >= 0.3:
        assert abs(abs(z0) - abs(c)) > 10 * abs(c) * basis.fit_error


@pytest.mark.parametrize("error", [-0.1, -0.02, 0.03, 0.1])
def test_the_residual_delay_is_measured(error):
    """The residual is linear in the error to first order: second-order terms are
    ``O(w_max * e)**2`` relative, 6 % at 0.1 samples (w_max = 2 pi 400/1024)."""
    rng = np.random.default_rng(5)
    h, cfo = _channel(rng), -800.0
    basis = DelayBasis(WF)
    ref = symbol_from_cfr(WF, h, cfo)
    cols, curv = basis.columns(ref, cfo), basis.curvature(ref, cfo)
    f = np.array([0.2])
    zp = _delayed(h, f[0] + error, cfo)[None, :] @ cols
    est, _ = basis.residual(zp, f, curv)
    w_max = 2 * np.pi * WF.subcarrier_max / WF.fft_size
    assert est == pytest.approx(error, rel=(w_max * error) ** 2 + 0.01, abs=5e-3)


def test_aligned_sum_undoes_every_window_delay():
    """Windows with delays spread over [-0.5, 0.5] and random phases, summed with phase-undoing
    weights, give back the reference; the error is bounded by the fit error."""
    rng = np.random.default_rng(6)
    h, cfo = _channel(rng), 1000.0
    basis = DelayBasis(WF)
    f = rng.uniform(-0.5, 0.5, 64)
    ph = np.exp(2j * np.pi * rng.random(64))
    wins = np.array([_delayed(h, x, cfo) * p for x, p in zip(f, ph, strict=True)])
    w = np.conj(ph)
    sums = (w[None, :] * basis.powers(f).T) @ wins
    aligned = basis.align(sums, cfo) / 64
    ref = symbol_from_cfr(WF, h, cfo)
    assert np.linalg.norm(aligned - ref) <= basis.fit_error * np.linalg.norm(ref)
    plain = w @ wins / 64  # without the model the sum smears
    assert np.linalg.norm(plain - ref) > 10 * basis.fit_error * np.linalg.norm(ref)


def test_timing_model_is_continuous_when_its_anchor_moves_and_takes_a_share_of_the_error():
    tm = TimingModel(anchor=100, offset=0.25, prior_rate=-3e-6)
    before = float(tm.at(10_000_000))
    tm.move_anchor(5_000_000)
    assert float(tm.at(10_000_000)) == pytest.approx(before, abs=1e-9)
    at_anchor = float(tm.at(5_000_000))
    tm.update(5_000_000, 0.1, 491_520, gain=0.5, rate_gain=0.05)
    assert float(tm.at(5_000_000)) == pytest.approx(at_anchor + 0.05, abs=1e-12)
    assert tm.rate == pytest.approx(-3e-6 + 0.05 * 0.1 / 491_520, rel=1e-12)


def _central_capture(
    rng: np.random.Generator, wf: WaveformConfig, cfo_hz: float, snr_db: float
) -> np.ndarray:
    """10 periods of a multipath illumination at a CFO, with noise at ``snr_db`` per subcarrier."""
    h = _channel(rng)
    y = symbol_from_cfr(wf, h, 0.0).astype(complex)
    x = np.tile(np.roll(y, int(rng.integers(0, wf.fft_size))), 10)
    t = np.arange(x.size)
    x = x * np.exp(2j * np.pi * (cfo_hz * t / wf.working_rate_hz + rng.random()))
    p_sig = np.mean(np.abs(h) ** 2)
    sigma = np.sqrt(p_sig / 10 ** (snr_db / 10) / 2)
    return x + sigma * (rng.normal(size=x.size) + 1j * rng.normal(size=x.size))


@pytest.mark.parametrize("subcarriers", [-2.46, -1.0, 0.3, 1.52, 2.5])
def test_coarse_cfo_resolves_whole_subcarriers(subcarriers):
    """At 7.2 GHz (the X410's top) 10 ppm is 72 kHz, 2.4 subcarriers.  The fractional part
    from the lag products has a standard deviation of about df / (2 pi sqrt(SNR_total)) (well
    below 1 Hz here); the whole part must be exact, so the estimate is within 1 % of df."""
    wf = WaveformConfig(carrier_freq_hz=7.2e9)
    rng = np.random.default_rng(int(abs(subcarriers) * 100))
    cfo = subcarriers * wf.subcarrier_spacing_hz
    x = _central_capture(rng, wf, cfo, snr_db=10.0)
    est = coarse_cfo_hz(x, wf, 10e-6 * wf.carrier_freq_hz)
    assert est == pytest.approx(cfo, abs=0.01 * wf.subcarrier_spacing_hz)


def test_coarse_cfo_is_not_fooled_by_the_zadoff_chu_ambiguity():
    """A ZC shifted by one bin is almost the same ZC delayed: correlating with shifted copies of
    the known symbol barely tells them apart (a one-bin shift keeps 92 % of the peak of this
    800-subcarrier ZC, less than a multipath fade); the band mask is exact."""
    wf = WaveformConfig(carrier_freq_hz=7.2e9)
    x = np.tile(wf.symbol_time, 10).astype(complex)
    spec = np.fft.fft(wf.symbol_time)
    peaks = []
    for q in (0, 1):
        shifted = np.roll(spec, q)
        corr = np.fft.ifft(np.fft.fft(x[: wf.fft_size]) * np.conj(shifted))
        peaks.append(np.max(np.abs(corr)))
    assert peaks[1] > 0.85 * peaks[0]  # the ambiguity is real
    cfo = 1.0 * wf.subcarrier_spacing_hz
    t = np.arange(x.size)
    est = coarse_cfo_hz(x * np.exp(2j * np.pi * cfo * t / wf.working_rate_hz), wf, 72e3)
    assert est == pytest.approx(cfo, abs=1.0)
