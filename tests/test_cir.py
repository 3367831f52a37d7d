"""The CFR fit (dsp/cir.py ``fit_cfr``) against its own statistics: the limits of the CFR tests in
test_emulator.py and test_receiver.py rest on these."""

import numpy as np
import pytest
from scipy.stats import chi2

from dsp.channel import Paths
from dsp.cir import fit_cfr

DRAWS = 300
TAIL = 1e-6


def test_single_path_delay_bound_is_systems_closed_form(wf):
    """SYSTEM.md section 7: one path of gain ``a`` (complex, unknown) in white noise ``sigma^2``,
    ``var(tau) >= sigma^2 / (8 pi^2 abs(a)^2 sum_k (f_k - f_mean)^2)``."""
    f = wf.active_freqs_hz
    a, tau, var = 0.3 - 0.2j, 41e-9, 1e-3
    h = a * np.exp(-2j * np.pi * f * tau)
    fit = fit_cfr(h, np.ones(f.size, complex), wf, var)
    bound = var / (8 * np.pi**2 * abs(a) ** 2 * np.sum((f - f.mean()) ** 2))
    assert fit.delay_std_s**2 == pytest.approx(bound, rel=1e-9, abs=0)
    assert fit.delay_s == pytest.approx(tau, abs=1e-15) and fit.gain == pytest.approx(a, abs=1e-12)


def test_fit_errors_are_at_the_cramer_rao_bound(wf):
    """A three-path model times a gain and a fractional delay (3.3 CIR grid steps) plus complex
    white noise at 20 dB per subcarrier, ``DRAWS`` draws: the errors of ``gain.real``, ``gain.imag``
    and ``delay_s`` over their Cramer-Rao standard deviations are N(0, 1) (least squares attains the
    bound), and ``chi2`` follows chi-square with ``dof`` degrees of freedom.  Limits at the 1e-6
    tails: each mean within ``4.9 / sqrt(DRAWS)``, each variance within the chi-square quantiles of
    ``DRAWS - 1`` degrees over ``DRAWS - 1``, the sum of the ``chi2`` values within those of
    ``DRAWS * dof`` degrees."""
    rng = np.random.default_rng(19)
    f = wf.active_freqs_hz
    model = Paths(np.array([20.0, 27.5, 41.0]), np.array([1.0, 0.6j, -0.4])).cfr(f, wf.carrier_freq_hz)
    gain, tau = 0.7 * np.exp(0.4j), 3.3 * wf.cir_grid_step_s
    clean = gain * model * np.exp(-2j * np.pi * f * tau)
    var = np.mean(np.abs(clean) ** 2) / 100 * (1 + 0.5 * np.cos(np.arange(f.size) / 50))  # not flat
    z, chi2_sum = [], 0.0
    for _ in range(DRAWS):
        noise = np.sqrt(var / 2) * (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size))
        fit = fit_cfr(clean + noise, model, wf, var)
        s_re, s_im = fit.gain_std
        z.append(
            (
                (fit.gain.real - gain.real) / s_re,
                (fit.gain.imag - gain.imag) / s_im,
                (fit.delay_s - tau) / fit.delay_std_s,
            )
        )
        chi2_sum += fit.chi2
    z = np.array(z)
    k = 4.9  # two-sided 1e-6 tail of N(0, 1)
    assert np.all(np.abs(z.mean(axis=0)) < k / np.sqrt(DRAWS)), z.mean(axis=0)
    lo, hi = chi2.ppf(TAIL, DRAWS - 1) / (DRAWS - 1), chi2.isf(TAIL, DRAWS - 1) / (DRAWS - 1)
    assert np.all((lo < z.var(axis=0, ddof=1)) & (z.var(axis=0, ddof=1) < hi)), z.var(axis=0, ddof=1)
    dof = DRAWS * fit.dof
    assert chi2.ppf(TAIL, dof) < chi2_sum < chi2.isf(TAIL, dof)
