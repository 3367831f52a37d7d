"""dsp/cir.py against its own definitions (issue 19, the mutation check; docs/MUTATION.md session 10).

Each test checks a published number (a CIR, its delay axis, NMAE, the CFR fit's gain, delay,
bounds and chi-square) against the formula its docstring states, on noise-free or seeded inputs,
with a tolerance that comes from floating point or from the optimiser's own stopping rule.
"""

from __future__ import annotations

import numpy as np
import pytest

from dsp.channel import Paths
from dsp.cir import cfr_to_cir, cir_delay_axis_s, fit_cfr, nmae

EPS = np.finfo(np.float64).eps


def _random_cfr(wf, seed: int, shape: tuple[int, ...] = ()) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = wf.active_subcarriers.size
    return rng.standard_normal((*shape, n)) + 1j * rng.standard_normal((*shape, n))


def test_the_cir_is_the_normalised_inverse_dft_of_the_active_subcarriers(wf):
    """Module docstring: ``cir[q] = (1 / K_act) sum_k H[k] exp(j 2 pi k q / K)``, evaluated here as
    the direct sum (a matrix product) for every ``q``.  The FFT's rounding error is of order
    ``eps log2(K)`` times the rms of the terms, ``sqrt(K_act) / K_act`` for unit-variance ``H``:
    ``1e-12`` absolute is a thousand times that.  A ``[..., subcarrier]`` stack gives one CIR per
    row (the docstring's leading axes)."""
    k_fft, k = wf.cir_fft_size, wf.active_subcarriers
    h = _random_cfr(wf, 1)
    direct = np.exp(2j * np.pi * np.outer(np.arange(k_fft), k) / k_fft) @ h / k.size
    cir = cfr_to_cir(h, wf)
    assert cir.shape == (k_fft,)
    np.testing.assert_allclose(cir, direct, rtol=0, atol=1e-12)
    stack = _random_cfr(wf, 2, (2, 3))
    cirs = cfr_to_cir(stack, wf)
    assert cirs.shape == (2, 3, k_fft)
    for i in range(2):
        for j in range(3):
            np.testing.assert_allclose(cirs[i, j], cfr_to_cir(stack[i, j], wf), rtol=0, atol=1e-12)


@pytest.mark.parametrize("q", [0, 17, 301])
def test_a_unit_path_on_the_grid_peaks_at_one_at_its_delay(wf, q):
    """A unit-gain path at ``tau = q / (K df)``: every term of the sum at bin ``q`` is one, so
    ``cir[q] = 1`` (module docstring), and the delay axis there reads ``tau`` (the grid step is
    ``1 / (K df)``, the reciprocal of the zero-padded band)."""
    tau = q / (wf.cir_fft_size * wf.subcarrier_spacing_hz)
    h = Paths(np.array([tau * 299_792_458.0]), np.array([1.0 + 0j])).cfr(wf.active_freqs_hz, 0.0)
    cir = cfr_to_cir(h, wf)
    peak = int(np.argmax(np.abs(cir)))
    assert peak == q
    assert cir[peak] == pytest.approx(1.0, abs=1e-12)
    axis = cir_delay_axis_s(wf)
    assert axis.shape == (wf.cir_fft_size,)
    assert axis[peak] == pytest.approx(tau, rel=1e-12, abs=0)
    np.testing.assert_allclose(np.diff(axis), 1 / (wf.cir_fft_size * wf.subcarrier_spacing_hz), rtol=1e-9)


def test_nmae_is_scale_and_shift_free_and_the_mean_magnitude_difference(wf):
    """Docstring: both magnitudes over their maxima, the estimate rolled so that the maxima align,
    the mean absolute difference.  So a scaled and circularly shifted copy scores 0 (exactly: the
    same numbers divided by the same maximum), and a CIR whose second bin differs by ``d`` after
    normalisation scores ``d / K``."""
    k = wf.cir_fft_size
    a = np.abs(cfr_to_cir(_random_cfr(wf, 3), wf))
    assert nmae(a, 3.5 * np.roll(a, 37)) == pytest.approx(0.0, abs=2 * EPS)  # three roundings of eps / 2
    assert nmae(0.25 * a, np.roll(a, -1000)) == pytest.approx(0.0, abs=2 * EPS)
    m = np.zeros(k)
    m[[5, 6]] = [2.0, 1.0]  # normalised: 1, 0.5
    e = np.zeros(k, complex)
    e[[900, 901]] = [0.5j, 0.125]  # normalised: 1, 0.25, and 895 bins later
    assert nmae(m, e) == pytest.approx(0.25 / k, rel=1e-12)
    assert nmae(e, m) == pytest.approx(0.25 / k, rel=1e-12)


def test_nmae_refuses_zero_and_misshaped_cirs_only(wf):
    k = wf.cir_fft_size
    a = np.zeros(k)
    a[3] = 0.5  # a maximum below one is a valid CIR
    assert nmae(a, a) == 0.0
    for bad in (np.zeros(k), np.zeros(k, complex)):
        with pytest.raises(ValueError, match=r"^nmae: a CIR is identically zero$"):
            nmae(a, bad)
        with pytest.raises(ValueError, match=r"^nmae: a CIR is identically zero$"):
            nmae(bad, a)
    with pytest.raises(ValueError, match=r"^nmae: CIRs must be 1-D of equal length"):
        nmae(a, a[:-1])
    with pytest.raises(ValueError, match=r"^nmae: CIRs must be 1-D of equal length"):
        nmae(np.stack([a, a]), np.stack([a, a]))


def _model(wf) -> np.ndarray:
    return Paths(np.array([20.0, 27.5, 41.0]), np.array([1.0, 0.6j, -0.4])).cfr(
        wf.active_freqs_hz, wf.carrier_freq_hz
    )


def _brent_bound(tau: float, step: float) -> float:
    """scipy's bounded search stops when the bracket is within ``2 tol`` of its midpoint, with
    ``tol = sqrt(eps) |x| + xatol / 3`` and ``xatol = 1e-6`` grid steps (fit_cfr's option)."""
    return 2 * (np.sqrt(EPS) * abs(tau) + 1e-6 * step / 3)


@pytest.mark.parametrize("steps", [-3.3, -1000.3, 1500.7, 0.45])
def test_noise_free_fit_returns_the_gain_and_the_delay_in_half_the_grid(wf, steps):
    """Docstring: delays in ``(-K/2, K/2]`` grid steps.  A noise-free CFR that is the model times a
    gain and a delay of ``steps`` grid steps (negative, far negative, far positive, under half a
    step) gives that delay within the optimiser's stopping bound ``b``, and the gain within
    ``abs(g) 2 pi f_max b``: given the delay the gain is linear, ``g sum_k w_k abs(m_k)^2
    exp(-j 2 pi f_k e) / sum_k w_k abs(m_k)^2`` for a delay error ``e``."""
    step = wf.cir_grid_step_s
    f = wf.active_freqs_hz
    model = _model(wf)
    gain, tau = 0.7 * np.exp(-2.1j), steps * step
    h = gain * model * np.exp(-2j * np.pi * f * tau)
    fit = fit_cfr(h, model, wf, 0.5)
    bound = _brent_bound(tau, step)
    assert abs(fit.delay_s - tau) <= bound
    assert abs(fit.gain - gain) <= abs(gain) * 2 * np.pi * np.abs(f).max() * bound


def test_a_delay_near_the_end_of_the_interval_comes_back_inside_it(wf):
    """A delay of ``K/2 - 0.4`` steps: the coarse grid finds its peak at ``-K/2`` (the same point
    modulo ``K``) and the refinement steps past the end; the fit wraps it back into
    ``(-K/2, K/2]`` as the docstring says (the same delay modulo ``1/df`` either way)."""
    step, k = wf.cir_grid_step_s, wf.cir_fft_size
    f = wf.active_freqs_hz
    model = _model(wf)
    for steps in (k / 2 - 0.4, -k / 2 + 0.4):
        tau = steps * step
        fit = fit_cfr(0.7 * model * np.exp(-2j * np.pi * f * tau), model, wf, 0.5)
        assert -k / 2 * step < fit.delay_s <= k / 2 * step
        assert abs(fit.delay_s - tau) <= _brent_bound(tau, step)


def _numerical_fisher(fit, model, f, w) -> np.ndarray:
    """``J = 2 Re(D^H W D)`` with ``D`` the central differences of the noise-free model
    ``mu = (g_re + j g_im) m exp(-j 2 pi f tau)`` at the fitted parameters."""
    theta = np.array([fit.gain.real, fit.gain.imag, fit.delay_s])

    def mu(t):
        return (t[0] + 1j * t[1]) * model * np.exp(-2j * np.pi * f * t[2])

    steps = np.array([1e-6, 1e-6, 1e-15])
    cols = []
    for i, hstep in enumerate(steps):
        e = np.zeros(3)
        e[i] = hstep
        cols.append((mu(theta + e) - mu(theta - e)) / (2 * hstep))
    d = np.stack(cols, axis=1)
    return 2 * np.real(d.conj().T @ (w[:, None] * d))


def test_the_fit_covariance_is_the_inverse_fisher_information_and_chi2_its_residual(wf):
    """The class docstring's definitions, each checked independently of the code's algebra:
    ``cov`` against the inverse of ``2 Re(D^H W D)`` with ``D`` from central differences of the
    model (truncation error ``(2 pi f_max h)^2 / 6``, 1e-15 at ``h = 1e-15`` s; rounding
    ``eps / (2 pi f_max h)``, 3e-9: ``rtol = 1e-5`` on the inverse, whose condition number is
    small: the parameters are nearly decoupled), ``gain_std`` and ``delay_std_s`` the square roots
    of its diagonal, ``chi2 = 2 sum_k abs(residual)^2 / v_k`` recomputed from the fitted gain and
    delay, and ``dof = 2 K - 3`` (``2 K`` real observations, three parameters).  Noisy data at
    15 dB with a non-flat noise variance, so that no weight is one and no cross term vanishes."""
    rng = np.random.default_rng(7)
    f = wf.active_freqs_hz
    model = _model(wf)
    var = 0.02 * (1 + 0.5 * np.cos(np.arange(f.size) / 40))
    h = 0.9 * np.exp(0.3j) * model * np.exp(-2j * np.pi * f * 7.2 * wf.cir_grid_step_s)
    h = h + np.sqrt(var / 2) * (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size))
    fit = fit_cfr(h, model, wf, var)
    cov = np.linalg.inv(_numerical_fisher(fit, model, f, 1 / var))
    scale = np.sqrt(np.outer(np.diag(cov), np.diag(cov)))  # to correlations: one tolerance for all
    np.testing.assert_allclose(fit.cov / scale, cov / scale, rtol=0, atol=1e-5)
    assert fit.gain_std == pytest.approx((np.sqrt(cov[0, 0]), np.sqrt(cov[1, 1])), rel=1e-5)
    assert fit.delay_std_s == pytest.approx(np.sqrt(cov[2, 2]), rel=1e-5, abs=0)
    resid = h - fit.gain * model * np.exp(-2j * np.pi * f * fit.delay_s)
    assert fit.chi2 == pytest.approx(2 * np.sum(np.abs(resid) ** 2 / var), rel=1e-9)
    assert fit.dof == 2 * f.size - 3


def test_gain_bounds_of_one_flat_path_are_the_closed_form(wf):
    """One path of unit model ``m_k = 1`` and flat noise ``sigma^2``: the subcarriers are
    symmetric about zero (``sum_k f_k = 0``), so the delay decouples from the gain and
    ``var(g_re) = var(g_im) = sigma^2 / (2 K)`` (``J_gg = 2 K / sigma^2``).  ``sigma^2 = 4``: a
    weight under one is accepted."""
    f = wf.active_freqs_hz
    assert abs(f.sum()) < 1e-6 * f.max()
    h = (0.3 - 0.2j) * np.exp(-2j * np.pi * f * 41e-9)
    fit = fit_cfr(h, np.ones(f.size, complex), wf, 4.0)
    bound = np.sqrt(4.0 / (2 * f.size))
    assert fit.gain_std == pytest.approx((bound, bound), rel=1e-9)


def test_fit_refuses_misshaped_cfrs_and_bad_noise_variances(wf):
    n = wf.active_subcarriers.size
    ok = np.ones(n, complex)
    for h, m in ((ok[:-1], ok[:-1]), (ok, ok[:-1]), (ok[:-1], ok)):
        with pytest.raises(ValueError, match=rf"^fit_cfr: CFRs must be \[{n}\] on the active subcarriers"):
            fit_cfr(h, m, wf, 1.0)
    for v in (0.0, -1.0, np.inf, np.nan, np.r_[np.ones(n - 1), 0.0], np.r_[np.ones(n - 1), -2.0]):
        # refused before any division (under -W error a warning would come first)
        with pytest.raises(ValueError, match=r"^fit_cfr: noise_var must be positive"):
            fit_cfr(ok, ok, wf, v)
