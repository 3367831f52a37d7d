"""NOMP first-path estimator on known synthetic CFRs (dsp.ranging.nomp).

Tolerances.  At 30 dB per subcarrier with paths at least 1.5 resolution cells
``1 / B_occ`` apart, the maximum-likelihood delay is efficient: its error is close
to Gaussian with standard deviation ``s = sqrt(CRLB)``, the bound of
:func:`dsp.crlb.delay_crlb_s2` with every other delay and every gain unknown.  A
test fails at ``abs(error) > 5 s``: one chance in 1.7 million per estimate for an
efficient estimator, so a failure means a bias or a wrong model order, not bad
luck.  Seeds are fixed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsp.config_base import ConfigError
from dsp.crlb import delay_crlb_s2, model_cfr, noise_var_for_snr
from dsp.ranging import get_method
from dsp.waveform import SPEED_OF_LIGHT_M_S, get_profile

SNR_DB = 30.0
N_SIGMA = 5.0


@pytest.fixture(scope="module")
def wf():
    return get_profile("default")


@pytest.fixture(scope="module")
def nomp(wf):
    return get_method("nomp", wf)


def _channel(wf, n_paths: int, rng: np.random.Generator, spacing_cells: float = 1.5):
    cell = 1.0 / wf.occupied_bandwidth_hz
    gaps = spacing_cells + rng.uniform(0, 1.0, n_paths - 1)
    tau = 1e-6 + cell * np.r_[0.0, np.cumsum(gaps)] + rng.uniform(0, wf.cir_grid_step_s)
    mag = 1.0 / (1.0 + 0.3 * np.arange(n_paths))  # the first path strongest or close to it
    gains = mag * np.exp(2j * np.pi * rng.uniform(size=n_paths))
    return tau, gains


def _noisy(h: np.ndarray, var: float, rng: np.random.Generator) -> np.ndarray:
    return h + math.sqrt(var / 2) * (rng.standard_normal(h.shape) + 1j * rng.standard_normal(h.shape))


@pytest.mark.parametrize("n_paths", [1, 2, 3, 4, 5, 6, 7, 8])
def test_first_path_within_five_sigma_of_the_bound(wf, nomp, n_paths):
    rng = np.random.default_rng(100 + n_paths)
    f = wf.active_freqs_hz
    for _ in range(3):
        tau, gains = _channel(wf, n_paths, rng)
        h0 = model_cfr(f, tau, gains)
        var = noise_var_for_snr(h0, SNR_DB)
        bound_s = math.sqrt(delay_crlb_s2(f, tau, gains, var))
        est = nomp.fit(_noisy(h0, var, rng))
        err = est.delay_s - tau[0]
        assert abs(err) <= N_SIGMA * bound_s, (
            n_paths,
            err * SPEED_OF_LIGHT_M_S,
            bound_s * SPEED_OF_LIGHT_M_S,
        )
        # its own uncertainty is the bound of the fitted model: same order as the true one
        assert 0.5 * bound_s < est.delay_std_s < 2.0 * bound_s


def test_two_paths_half_a_resolution_cell_apart_are_resolved(wf, nomp):
    rng = np.random.default_rng(7)
    f = wf.active_freqs_hz
    cell = 1.0 / wf.occupied_bandwidth_hz
    for _ in range(5):
        tau = 2e-6 + np.array([0.0, 0.5 * cell]) + rng.uniform(0, wf.cir_grid_step_s)
        gains = np.exp(2j * np.pi * rng.uniform(size=2))
        h0 = model_cfr(f, tau, gains)
        var = noise_var_for_snr(h0, SNR_DB)
        est = nomp.fit(_noisy(h0, var, rng))
        assert est.order == 2
        got = np.sort(est.delays_s)
        for i in range(2):
            order = np.r_[i, 1 - i]
            bound_s = math.sqrt(delay_crlb_s2(f, tau[order], gains[order], var))
            assert abs(got[i] - tau[i]) <= N_SIGMA * bound_s


def test_model_order_on_noise_only_and_one_path(wf, nomp):
    """Noise only: the CFAR rule detects nothing except with probability ``pfa`` (1e-3) per
    estimate, so 20 draws all give order 0 with probability 98 %; one path at 30 dB: order 1
    (a second detection is again a false alarm)."""
    rng = np.random.default_rng(11)
    n = len(wf.active_subcarriers)
    orders = [nomp.fit(_noisy(np.zeros(n, complex), 1.0, rng)).order for _ in range(20)]
    assert orders == [0] * 20
    est = nomp.fit(_noisy(np.zeros(n, complex), 1.0, rng))
    assert math.isinf(est.delay_std_s) and 0 <= est.delay_s < 1 / wf.subcarrier_spacing_hz
    f = wf.active_freqs_hz
    for _ in range(10):
        h0 = model_cfr(f, np.array([3e-6]), np.array([np.exp(2j * np.pi * rng.uniform())]))
        assert nomp.fit(_noisy(h0, noise_var_for_snr(h0, SNR_DB), rng)).order == 1


def test_two_bands_jointly_no_worse_than_either_alone(wf, nomp):
    """Same delays, independent gains and noise in two bands at equal SNR: the joint estimate has
    half the variance of one band (RMSE ratio 0.71); over 40 draws of a 3-path channel the sample
    RMSE ratio has a spread of about 0.1, so "not above the better band" fails by chance rarely."""
    rng = np.random.default_rng(5)
    f = wf.active_freqs_hz
    err = {"lower": [], "upper": [], "joint": []}
    for _ in range(40):
        tau, _ = _channel(wf, 3, rng)
        hs = []
        for _b in range(2):
            gains = (1.0 / (1 + 0.3 * np.arange(3))) * np.exp(2j * np.pi * rng.uniform(size=3))
            h0 = model_cfr(f, tau, gains)
            hs.append(_noisy(h0, noise_var_for_snr(h0, 10.0), rng))
        err["lower"].append(nomp.fit(hs[0]).delay_s - tau[0])
        err["upper"].append(nomp.fit(hs[1]).delay_s - tau[0])
        err["joint"].append(nomp.fit(np.stack(hs)).delay_s - tau[0])
    rmse = {k: float(np.sqrt(np.mean(np.square(v)))) for k, v in err.items()}
    assert rmse["joint"] <= min(rmse["lower"], rmse["upper"]), rmse


def test_parameters_and_inputs_are_validated(wf, nomp):
    with pytest.raises(ConfigError, match=r"'nomp'.*pfa = 0\.0"):
        get_method("nomp", wf, pfa=0.0)
    with pytest.raises(ConfigError, match=r"'nomp'.*max_paths = 0"):
        get_method("nomp", wf, max_paths=0)
    with pytest.raises(ConfigError, match=r"'nomp'.*unknown parameter.*threshold"):
        get_method("nomp", wf, threshold=0.3)
    with pytest.raises(ValueError, match="799"):
        nomp.fit(np.ones(799, complex))
    with pytest.raises(ValueError, match="NaN"):
        nomp.fit(np.full(len(wf.active_subcarriers), np.nan, complex))
