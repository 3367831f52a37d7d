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


def _projection_setup() -> tuple:
    """A three-path channel (seed 5) at -800 Hz: ``(h, cfo_hz, basis, columns, curvature)``."""
    h, cfo = _channel(np.random.default_rng(5)), -800.0
    basis = DelayBasis(WF)
    ref = symbol_from_cfr(WF, h, cfo)
    return h, cfo, basis, basis.columns(ref, cfo), basis.curvature(ref, cfo)


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
    h, cfo, basis, cols, curv = _projection_setup()
    f = np.array([0.2])
    zp = _delayed(h, f[0] + error, cfo)[None, :] @ cols
    est, _ = basis.residual(zp, f, curv)
    w_max = 2 * np.pi * WF.subcarrier_max / WF.fft_size
    assert est == pytest.approx(error, rel=(w_max * error) ** 2 + 0.01, abs=5e-3)


def test_the_curvature_is_the_slope_of_the_exact_projection_on_a_sloped_spectrum():
    """A window holding the reference ``R`` delayed by ``e`` projects on ``R`` delayed by ``f`` as
    ``z(f) = sum_k |R_k|**2 exp(j w_k (f - e)) / sum_k |R_k|**2``, so at ``f = 0``
    ``Re(z'/z) = Re(j sum p w exp(-j w e) / sum p exp(-j w e))``, ``p = |R|**2 / sum |R|**2``,
    ``= e (S2 - S1**2) + O(e**2)``.  Evaluated here exactly (no polynomial) at ``e = 1e-6``
    samples, where the second-order term is ``w_max e`` = 2.5e-6 relative; 1e-4 allows for it.
    The spectrum falls 20 dB across the band and has a slope: weights ``|R|`` or ``|R|**3``
    move the curvature by tens of per cent (a flat spectrum would hide any power of ``|R|``)."""
    rng = np.random.default_rng(8)
    w = 2 * np.pi * K / WF.fft_size
    h = 10 ** (-((K + 400) / 800.0)) * np.exp(2j * np.pi * rng.random(K.size))  # 20 dB slope
    h = h * (1 + 0.5 * np.cos(2 * np.pi * K / 97.0))
    cfo = 1234.0
    e = 1e-6
    p = np.abs(h) ** 2 / np.sum(np.abs(h) ** 2)
    rot = np.exp(-1j * w * e)
    slope = float(np.real(1j * np.sum(p * w * rot) / np.sum(p * rot))) / e
    curv = DelayBasis(WF).curvature(symbol_from_cfr(WF, h, cfo), cfo)
    assert curv == pytest.approx(slope, rel=1e-4)
    assert curv > 0


def test_the_residual_does_not_depend_on_the_window_level():
    """A delay is a property of the window's shape, not its level: ``c`` times the window gives
    the same error (``z`` and ``z'`` both scale by ``c``, ``Re(conj(z) z') / |z|**2`` not at all)
    and ``|c|**2`` times the weight.  Levels 1 and 1000 (ADC units are thousands); ``zp`` is
    float64 arithmetic on complex64 columns, so equal to 1e-9."""
    h, cfo, basis, cols, curv = _projection_setup()
    f = np.array([0.2])
    win = _delayed(h, f[0] + 0.04, cfo)[None, :]
    est1, wt1 = basis.residual(win @ cols, f, curv)
    c = 1e3 * np.exp(1j)
    est2, wt2 = basis.residual((c * win) @ cols, f, curv)
    assert est2 == pytest.approx(est1, rel=1e-9)
    assert wt2 == pytest.approx(abs(c) ** 2 * wt1, rel=1e-9)


@pytest.mark.parametrize("subcarrier_max", [400, 120])
def test_residuals_give_each_window_its_own_error_and_residual_their_power_weighted_mean(subcarrier_max):
    """Windows ``m`` at levels ``c_m`` holding the reference delayed by ``f_m + e_m``, modelled at
    ``f_m``: ``residuals`` gives ``e_m`` each, whatever the level, and ``residual`` their mean
    weighted by ``|z_m|**2``.  Accuracy at ``f = 0`` (``z = zp_0``, ``z' = zp_1``): the
    expansion of ``Re(j sum p w exp(-j w e) / sum p exp(-j w e))`` has no ``e**2`` term, so the
    model's error is third order, below ``|e| (w_max e)**2``; the fit's slope at 0 is off by
    ``d = max_k |coef_1k - j w_k|`` per subcarrier, ``d / curvature`` samples, and its value by
    ``max_k |coef_0k - 1|`` (relative, times ``w_max / curvature``).  120 active subcarriers a
    side: a narrower waveform, whose curvature (``w_max**2 / 3`` for a flat band) is 0.18."""
    wf = WaveformConfig(subcarrier_min=-subcarrier_max, subcarrier_max=subcarrier_max)
    k = wf.active_subcarriers
    rng = np.random.default_rng(7)
    d, g = rng.uniform(0, 40, 3), rng.normal(size=3) + 1j * rng.normal(size=3)
    h = np.exp(-2j * np.pi * np.outer(k, d) / wf.fft_size) @ g
    cfo = 300.0
    basis = DelayBasis(wf)
    ref = symbol_from_cfr(wf, h, cfo)
    cols, curv = basis.columns(ref, cfo), basis.curvature(ref, cfo)
    e = np.array([-0.05, 0.01, 0.04, 0.0])
    c = np.array([1.0, 1e3j, 30.0 * np.exp(2j), 0.5])
    delayed = [symbol_from_cfr(wf, h * np.exp(-2j * np.pi * k * em / wf.fft_size), cfo) for em in e]
    zp = np.array([cm * x.astype(complex) for cm, x in zip(c, delayed, strict=True)]) @ cols
    f = np.zeros(e.size)
    got = basis.residuals(zp, f, curv)
    w = 2 * np.pi * k / wf.fft_size
    w_max = float(np.max(np.abs(w)))
    fit = float(np.max(np.abs(basis.coef[1] - 1j * w))) + w_max * float(np.max(np.abs(basis.coef[0] - 1)))
    tol = np.abs(e) * (w_max * e) ** 2 + fit / curv
    assert np.all(np.abs(got - e) <= tol), (got - e, tol)
    est, weight = basis.residual(zp, f, curv)
    z2 = np.abs(zp[:, 0]) ** 2
    assert weight == pytest.approx(float(z2.sum()), rel=1e-9)
    assert est == pytest.approx(float(z2 @ got / z2.sum()), rel=1e-9)


def test_no_signal_or_no_curvature_gives_no_error():
    """Windows of zeros (a gap) or a flat-delay reference (curvature 0) say nothing about timing:
    error 0 and weight 0, so the loop does not move; not a division by zero."""
    basis = DelayBasis(WF)
    f = np.array([0.1, -0.2])
    assert basis.residual(np.zeros((2, basis.degree + 1), complex), f, 2.0) == (0.0, 0.0)
    zp = np.ones((2, basis.degree + 1), complex)
    assert basis.residual(zp, f, 0.0) == (0.0, 0.0)


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


def test_a_fresh_timing_model_corrects_nothing_and_reports_no_error():
    """Before acquisition nothing is known: no correction anywhere (offset and rate 0), no
    error measured (the receiver's health then says 'not locked', receiver.py
    ``_timing_report``), no measured drift."""
    tm = TimingModel()
    np.testing.assert_array_equal(tm.at(np.array([0, 1, 10_000_000])), 0.0)
    assert tm.rate == 0.0 and tm.last_error is None and tm.history == []
    assert tm.measured_rate(0) is None


def test_timing_model_is_its_line_and_keeps_what_it_measured():
    """``g(s) = offset + rate (s - anchor)``, ``rate = prior + correction``.  An update at ``s``
    with residual ``e`` (the window's delay beyond the model's) records the measured correction
    ``g(s) + e``, adds ``rate_gain e / span`` to the correction (accumulating: an integrator) and
    keeps the last 256 measurements; the measured drift is the least-squares slope of those,
    exact for measurements on a line (here 1e-6 samples per sample, 1 ppm), once 3 of them span
    ``min_span``."""
    tm = TimingModel(anchor=100, offset=0.25, prior_rate=-3e-6)
    assert float(tm.at(100 + 1_000_000)) == pytest.approx(0.25 - 3.0, rel=1e-12)
    span, rate_gain, total = 10_240, 0.05, 0.0
    for i in range(300):
        s = 1_000 + i * span
        e = 0.3 + 1e-6 * s - float(tm.at(s))  # the measured correction lies on a line
        tm.update(s, e, span, gain=0.5, rate_gain=rate_gain)
        total += rate_gain * e / span
        assert tm.history[-1] == (s, pytest.approx(0.3 + 1e-6 * s, abs=1e-12))
        assert tm.last_error == e and len(tm.history) == min(i + 1, 256)
        if i == 1:
            assert tm.measured_rate(0) is None  # two points: no slope yet
        if i == 2:
            assert tm.measured_rate(2 * span) == pytest.approx(1e-6, rel=1e-6)
            assert tm.measured_rate(2 * span + 1) is None  # they span less than asked
    assert tm.rate == pytest.approx(-3e-6 + total, rel=1e-12)
    assert len(tm.history) == 256 and tm.history[0][0] == 1_000 + 44 * span
    assert tm.measured_rate(255 * span) == pytest.approx(1e-6, rel=1e-6)


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
