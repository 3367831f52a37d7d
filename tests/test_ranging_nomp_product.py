"""NOMP with the side bands in their product form (dsp.ranging.nomp_product), on known CFRs.

Tolerances as in ``tests/test_ranging_nomp.py``: an efficient estimator's error is close to
Gaussian with standard deviation ``s``, here the square root of the product-form bound
(:func:`dsp.crlb_product.backscatter_product_crlb_s2`, itself checked against an independent
maximum-likelihood fit in ``tests/test_crlb_product.py``); a test fails at ``abs(error) > 5 s``
(one chance in 1.7 million per estimate).  Seeds are fixed.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from dsp.channel import Paths
from dsp.config_base import ConfigError
from dsp.crlb import compound_model, model_cfr, noise_var_for_snr, single_path_crlb_s2
from dsp.crlb_product import backscatter_product_crlb_s2
from dsp.ranging import get_method
from dsp.waveform import SPEED_OF_LIGHT_M_S as C

N_SIGMA = 5.0


@pytest.fixture(scope="module")
def product(wf):
    return get_method("nomp_product", wf)


@pytest.fixture(scope="module")
def nomp(wf):
    return get_method("nomp", wf)


def _scenario():
    """A 2-NLoS scenario of the ranging sweep (lengths rounded, gains ``1 / length`` with fixed
    phases): tag-RX paths 3.95 m (0.32 cells) apart, TX-tag paths 10.4 and 18.8 m behind the line
    of sight, so the compound paths crowd around the first; its compound K-path bound is hundreds of
    metres, the product-form bound 0.27 m at 27.8 dB (``tests/test_crlb_product.py``)."""
    rng = np.random.default_rng(0)
    d1, d2 = np.array([15.19, 25.58, 34.03]), np.array([10.80, 14.75, 46.07])
    tx_tag = Paths(d1, np.exp(2j * np.pi * rng.uniform(size=3)) / d1)
    tag_rx = Paths(d2, np.exp(2j * np.pi * rng.uniform(size=3)) / d2)
    return tx_tag, tag_rx, d1[0] + d2[0]


def _noisy(h: np.ndarray, var: float, rng: np.random.Generator) -> np.ndarray:
    return h + math.sqrt(var / 2) * (rng.standard_normal(h.shape) + 1j * rng.standard_normal(h.shape))


def test_crowded_compound_paths_are_resolved_in_product_form(wf, product, nomp):
    """At 27.8 dB per subcarrier (an epoch of the sweep's 12 dB attenuation) the product fit's first
    path lies within 5 s of the truth in every draw, while NOMP on the compound model is off by
    metres (its RMS error over the draws more than three times the product fit's)."""
    tx_tag, tag_rx, truth_m = _scenario()
    h = model_cfr(wf.active_freqs_hz, *compound_model(tx_tag, tag_rx, wf, "upper"))
    var = noise_var_for_snr(h, 27.8)
    s_m = math.sqrt(backscatter_product_crlb_s2(tx_tag, tag_rx, wf, var)) * C
    assert s_m < 0.5
    rng = np.random.default_rng(5)
    err_product, err_nomp = [], []
    for _ in range(4):
        y = _noisy(h, var, rng)
        delay_s, std_s = product.side_delay_and_std_s(y[None])
        err_product.append(delay_s * C - truth_m)
        err_nomp.append(nomp.fit(y).delay_s * C - truth_m)
        assert abs(err_product[-1]) < N_SIGMA * s_m, (err_product, s_m)
        # the reported deviation is the bound at the *fitted* values, whose weaker TX-tag paths sit up
        # to 2 m from the true ones (a fit of nearly equal cost): the same order as s, not s
        assert s_m / 3 < std_s * C < 3 * s_m
    assert np.sqrt(np.mean(np.square(err_nomp))) > 3 * np.sqrt(np.mean(np.square(err_product)))


def test_two_side_bands_share_the_tx_tag_channel(wf, product):
    """Lower and upper bands: ``H_1`` common, tag-RX gains per band.  Within 5 s of the two-band
    product bound, which is below either band's own."""
    tx_tag, tag_rx, truth_m = _scenario()
    h = np.stack(
        [model_cfr(wf.active_freqs_hz, *compound_model(tx_tag, tag_rx, wf, b)) for b in ("lower", "upper")]
    )
    var = noise_var_for_snr(h[1], 27.8)
    s_m = math.sqrt(backscatter_product_crlb_s2(tx_tag, tag_rx, wf, [var, var], bands=("lower", "upper"))) * C
    assert s_m < math.sqrt(backscatter_product_crlb_s2(tx_tag, tag_rx, wf, var)) * C
    rng = np.random.default_rng(6)
    for _ in range(3):
        delay_s, _ = product.side_delay_and_std_s(_noisy(h, var, rng))
        assert abs(delay_s * C - truth_m) < N_SIGMA * s_m


def test_line_of_sight_within_the_single_path_bound(wf, product):
    """One path per factor: the product is one path, and the estimate is within 5 s of its bound."""
    f = wf.active_freqs_hz
    tau = 1.234e-7
    h = model_cfr(f, np.array([tau]), np.array([0.3 - 0.2j]))
    var = noise_var_for_snr(h, 20.0)
    s = math.sqrt(single_path_crlb_s2(f, 0.3 - 0.2j, var))
    rng = np.random.default_rng(8)
    for _ in range(3):
        delay_s, _ = product.side_delay_and_std_s(_noisy(h, var, rng)[None])
        assert abs(delay_s - tau) < N_SIGMA * s


def test_a_channel_without_product_form_is_left_to_nomp(wf, product, nomp):
    """Eight compound paths at delays that are no sumset of two short channels: no product
    hypothesis explains them, so the answer is NOMP's, exactly."""
    rng = np.random.default_rng(9)
    cell = 1 / wf.occupied_bandwidth_hz
    tau = 2e-7 + cell * np.cumsum(rng.uniform(1.3, 3.1, 8))
    gains = np.exp(2j * np.pi * rng.uniform(size=8)) / (1 + 0.2 * np.arange(8))
    h = model_cfr(wf.active_freqs_hz, tau, gains)
    y = _noisy(h, noise_var_for_snr(h, 25.0), rng)
    assert product.side_delay_and_std_s(y[None]) == (nomp.fit(y).delay_s, nomp.fit(y).delay_std_s)


def test_the_guards_fall_back_to_nomp(wf, nomp):
    """A product fit whose own bound exceeds ``max_std_cells``, or whose first path moved earlier
    than NOMP's by more than ``max_shift_cells`` or later by more than ``max_later_cells``, gives
    way to NOMP's estimate; the limit of the other direction does not."""
    tx_tag, tag_rx, _ = _scenario()
    h = model_cfr(wf.active_freqs_hz, *compound_model(tx_tag, tag_rx, wf, "upper"))
    y = _noisy(h, noise_var_for_snr(h, 27.8), np.random.default_rng(5))
    expect = (nomp.fit(y).delay_s, nomp.fit(y).delay_std_s)
    free = get_method("nomp_product", wf).side_delay_and_std_s(y[None])
    assert free != expect  # the product fit is used here by default (the first test)
    later = free[0] > expect[0]
    this, other = ("max_later_cells", "max_shift_cells") if later else ("max_shift_cells", "max_later_cells")
    for guard in ({"max_std_cells": 1e-6}, {this: 1e-6}):
        assert get_method("nomp_product", wf, **guard).side_delay_and_std_s(y[None]) == expect
    assert get_method("nomp_product", wf, **{other: 1e-6}).side_delay_and_std_s(y[None]) == free


def test_an_epoch_fits_one_side_band_in_product_form(wf, product):
    """``product_sides``: the epoch hands even a single side band to ``side_delay_and_std_s``, its
    ``d_cal`` moved out of the CFR first and given back after (dsp/epoch.py ``_delays``)."""
    from dsp.epoch import _delays

    tx_tag, tag_rx, _ = _scenario()
    f = wf.active_freqs_hz
    d_cal = 1.3
    delays, gains = compound_model(tx_tag, tag_rx, wf, "upper")
    rng = np.random.default_rng(10)
    side = model_cfr(f, delays + d_cal / C, gains)
    side = _noisy(side, noise_var_for_snr(side, 27.8), rng)
    cfr = {"central": model_cfr(f, np.array([1e-7]), np.array([1.0 + 0j])), "upper": side}
    got, std = _delays(product, wf, cfr, dict.fromkeys(cfr), ["upper"], {"central": 0.0, "upper": d_cal})
    aligned = side * np.exp(2j * np.pi * np.mod(f * d_cal / C, 1.0))
    t, s = product.side_delay_and_std_s(aligned[None])
    assert got["upper"] == pytest.approx(t + d_cal / C, rel=0, abs=1e-15)
    assert std["upper"] == pytest.approx(s, rel=1e-6)  # the same fit to rounding (cis vs exp)


def test_parameters_are_validated_with_their_names(wf):
    for bad, name in (
        ({"finalists": 0}, "finalists"),
        ({"candidates": 9}, "candidates"),
        ({"fit_sigmas": 0.0}, "fit_sigmas"),
        ({"max_std_cells": -1.0}, "max_std_cells"),
        ({"factor_offsets": 4}, "factor_offsets"),
    ):
        with pytest.raises(ConfigError, match=f"nomp_product.*{name}"):
            get_method("nomp_product", wf, **bad)
    with pytest.raises(ConfigError, match="nomp_product"):
        get_method("nomp_product", wf, no_such_parameter=1)
    with pytest.raises(NotImplementedError, match="'music' does not fit the product form"):
        get_method("music", wf).side_delay_and_std_s(np.ones((1, wf.active_subcarriers.size)))


def test_a_product_no_better_than_as_many_free_compound_paths_gives_way(wf, product, nomp, monkeypatch):
    """The compound fit grown to as many free paths as the product has is never worse for more
    paths (each refit starts from the smaller fit), and where it fits at least as well as the
    product the answer is NOMP's (here forced by a compound cost of zero)."""
    tx_tag, tag_rx, _ = _scenario()
    h = model_cfr(wf.active_freqs_hz, *compound_model(tx_tag, tag_rx, wf, "upper"))
    y = _noisy(h, noise_var_for_snr(h, 27.8), np.random.default_rng(5))[None]
    est = product.fit(y)
    w = est.delays_s * (2 * np.pi * wf.subcarrier_spacing_hz)
    costs = [product._compound_cost(y, w, est.noise_var, n) for n in range(w.size, w.size + 4)]
    assert all(b <= a + 1e-6 * a for a, b in itertools.pairwise(costs))
    # NOMP held to three paths, so that the product (four here) has more than NOMP's fit
    small = get_method("nomp_product", wf, max_paths=3)
    fit = small.product_fit(y, small.fit(y))
    assert fit is not None and fit.n_paths > small.fit(y).order
    monkeypatch.setattr(type(small), "_compound_cost", lambda *args: 0.0)
    assert small.product_fit(y, small.fit(y)) is None
