"""The first-path bound of the backscatter channel kept in its product form (dsp.crlb_product)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dsp.channel import Paths
from dsp.crlb import backscatter_crlb_s2, compound_model, delay_crlb_s2, noise_var_for_snr
from dsp.crlb_product import backscatter_product_crlb_s2, product_crlb_s2
from dsp.waveform import SPEED_OF_LIGHT_M_S

CELL_S = 1 / 24e6  # one resolution cell 1 / B_occ of the default profile


def _product(f, tau1, g1, tau2, g2):
    """``H_1(f) H_2(f)``, written out here apart from the code under test."""
    h1 = np.sum(g1[None, :] * np.exp(-2j * np.pi * f[:, None] * tau1[None, :]), axis=1)
    h2 = np.sum(g2[None, :] * np.exp(-2j * np.pi * f[:, None] * tau2[None, :]), axis=1)
    return h1 * h2


def test_one_path_in_either_factor_is_the_compound_model(wf):
    """With one TX-tag path the product model *is* the compound model (the tag-RX paths shifted by
    ``tau_10`` and scaled by ``g_10``): the two bounds agree to rounding.  The same with one tag-RX
    path (checks that the TX-tag columns are the ones fixed and ordered)."""
    f = wf.active_freqs_hz
    tau = 1e-6 + np.array([0.0, 0.4, 1.7]) * CELL_S
    g = np.array([1.0, 0.7j, -0.5])
    one_tau, one_g = np.array([2e-7]), np.array([0.8 - 0.3j])
    var = 1e-3
    compound = delay_crlb_s2(f, tau + one_tau[0], g * one_g[0], var)
    assert product_crlb_s2(f, one_tau, one_g, tau, g[None, :], [var]) == pytest.approx(
        compound, rel=1e-7, abs=0
    )
    assert product_crlb_s2(f, tau, g, one_tau, one_g[None, :], [var]) == pytest.approx(
        compound, rel=1e-7, abs=0
    )


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(0.05, 4.0), min_size=1, max_size=2),
    st.lists(st.floats(0.05, 4.0), min_size=1, max_size=2),
    st.integers(0, 2**31 - 1),
)
def test_the_product_form_never_loosens_the_compound_bound(wf, off1, off2, seed):
    """The product model is the compound model with its gains and delays tied (``L_1 + L_2``
    delays for ``L_1 L_2`` paths): a constrained model's bound is never above the unconstrained
    one's at the same truth (Cramer-Rao for a restricted parameter set)."""
    # paths of one factor at least 0.05 cells apart: coincident paths make both models singular,
    # where the two QR factorisations differ by rounding, not by the restriction
    for off in (off1, off2):
        d = np.diff(np.sort(np.r_[0.0, off]))
        assume(d.min() >= 0.05)
    rng = np.random.default_rng(seed)
    f = wf.active_freqs_hz
    tau1 = 5e-8 + np.concatenate([[0.0], np.asarray(off1) * CELL_S])
    tau2 = 4e-8 + np.concatenate([[0.0], np.asarray(off2) * CELL_S])
    g1 = np.exp(2j * np.pi * rng.uniform(size=tau1.size)) * rng.uniform(0.3, 1.0, tau1.size)
    g2 = np.exp(2j * np.pi * rng.uniform(size=tau2.size)) * rng.uniform(0.3, 1.0, tau2.size)
    g1[0] = g2[0] = 1.0
    # not merged: compound paths that coincide exactly are two free paths there (the bound is inf),
    # as they are two paths of the product model; merged they would be one path, a model the
    # product does not contain
    compound = delay_crlb_s2(f, *compound_model_of(tau1, g1, tau2, g2), 1e-2)
    product = product_crlb_s2(f, tau1, g1, tau2, g2[None, :], [1e-2])
    assert product <= compound * (1 + 1e-6)


def test_an_efficient_fit_reaches_the_bound(wf):
    """Maximum likelihood on the product model (a least-squares fit with a numerical Jacobian,
    started at the truth) at high SNR: the variance of its first-path error over ``n`` draws
    estimates the bound with relative spread ``sqrt(2 / (n - 1))``; four spreads either side.
    Two paths per factor, with compound paths ``(0, 1)`` and ``(1, 0)`` 0.1 cells apart, whose
    compound bound is far above the product one."""
    f = wf.active_freqs_hz
    tau1 = np.array([0.0, 1.3 * CELL_S])
    tau2 = np.array([0.0, 1.4 * CELL_S])
    g1 = np.array([1.0, 0.8 * np.exp(1j)])
    g2 = np.array([1.0, 0.7 * np.exp(-2j)])
    mu = _product(f, tau1, g1, tau2, g2)
    var = noise_var_for_snr(mu, 25.0)
    bound = product_crlb_s2(f, tau1, g1, tau2, g2[None, :], [var])
    tc, gc = compound_model_of(tau1, g1, tau2, g2)
    assert delay_crlb_s2(f, tc, gc, var) > 10 * bound

    def residual(x, y):
        t1 = np.array([0.0, x[0]]) * CELL_S
        t2 = x[1:3] * CELL_S
        a1 = np.array([1.0, x[3] + 1j * x[4]])
        a2 = x[5:7] + 1j * x[7:9]
        r = y - _product(f, t1, a1, t2, a2)
        return np.concatenate([r.real, r.imag])

    x0 = np.array([1.3, 0.0, 1.4, g1[1].real, g1[1].imag, *g2.real, *g2.imag])
    rng = np.random.default_rng(11)
    n = 300
    err = np.empty(n)
    for i in range(n):
        y = mu + np.sqrt(var / 2) * (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size))
        x = scipy.optimize.least_squares(residual, x0, args=(y,), method="lm").x
        err[i] = x[1] * CELL_S  # tau_10 fixed at 0: the first path is tau_20
    spread = np.sqrt(2 / (n - 1))
    assert np.mean(err**2) / bound == pytest.approx(1.0, abs=4 * spread)


def compound_model_of(tau1, g1, tau2, g2):
    return (tau1[:, None] + tau2[None, :]).ravel(), (g1[:, None] * g2[None, :]).ravel()


def test_two_side_bands_jointly_no_worse_than_either(wf):
    """Both side bands share ``H_1`` and the tag-RX delays; the joint bound is below each band's."""
    tx_tag = Paths(np.array([12.0, 19.5, 27.0]), np.array([1.0, 0.5j, 0.4]))
    tag_rx = Paths(np.array([12.0, 16.0, 30.0]), np.array([1.0, -0.6, 0.3j]))
    var = 1e-4
    both = backscatter_product_crlb_s2(tx_tag, tag_rx, wf, [var, var], bands=("lower", "upper"))
    for band in ("lower", "upper"):
        assert both <= backscatter_product_crlb_s2(tx_tag, tag_rx, wf, var, bands=(band,))


def test_geometric_scenario_product_bound_is_finite_where_the_compound_one_is_not(wf):
    """The lengths of a scenario of the ranging sweep (2 NLoS, scatterers around the nodes; gains
    ``1 / length`` with fixed phases) at 27.8 dB per subcarrier: the compound bound is hundreds of
    metres (compound paths 0.1-0.3 cells apart: the first delay is nearly unidentifiable as a free
    parameter), the product bound decimetres (the one-path bound here is 7 mm)."""
    rng = np.random.default_rng(0)
    d1, d2 = np.array([15.19, 25.58, 34.03]), np.array([10.80, 14.75, 46.07])
    tx_tag = Paths(d1, np.exp(2j * np.pi * rng.uniform(size=3)) / d1)
    tag_rx = Paths(d2, np.exp(2j * np.pi * rng.uniform(size=3)) / d2)
    delays, gains = compound_model(tx_tag, tag_rx, wf, "upper")
    f = wf.active_freqs_hz
    var = noise_var_for_snr(np.exp(-2j * np.pi * np.outer(f, delays)) @ gains, 27.8)
    compound_m = np.sqrt(backscatter_crlb_s2(tx_tag, tag_rx, wf, var)) * SPEED_OF_LIGHT_M_S
    product_m = np.sqrt(backscatter_product_crlb_s2(tx_tag, tag_rx, wf, var)) * SPEED_OF_LIGHT_M_S
    assert compound_m > 100.0
    assert product_m < 0.5


def test_bad_input_names_the_problem(wf):
    f = wf.active_freqs_hz
    tau, g = np.array([0.0, 1e-7]), np.array([1.0, 0.5])
    with pytest.raises(ValueError, match="2 bands of gains but 1 noise"):
        product_crlb_s2(f, tau, g, tau, np.stack([g, g]), [1e-3])
    with pytest.raises(ValueError, match="bands must be a non-empty subset"):
        backscatter_product_crlb_s2(Paths(tau * 3e8, g), Paths(tau * 3e8, g), wf, 1e-3, bands=("central",))
    with pytest.raises(ValueError, match="line-of-sight gain"):
        product_crlb_s2(f, tau, np.array([0.0, 1.0]), tau, g[None, :], [1e-3])
    with pytest.raises(ValueError, match="noise_var must be positive"):
        product_crlb_s2(f, tau, g, tau, g[None, :], [0.0])
