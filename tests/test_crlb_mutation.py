"""The Cramer-Rao bounds against derivations written here (issue 19, the mutation check;
docs/MUTATION.md session 13): the Fisher information by central differences of the model's mean,
its inverse, the single-path closed form, the stochastic average, the two-band stacking, the merge
of coincident paths, the unidentifiable cut and the refusals' whole messages.

Model and conventions (SYSTEM.md section 7, ``dsp/crlb.py``'s docstring): band ``b`` observes
``H[k] = sum_l a_l exp(-j 2 pi f_k tau_l) + w[k]``, ``w ~ CN(0, sigma^2 / M)``, ``f_k`` baseband;
``theta = (tau_0..tau_{P-1}, Re a_0.., Im a_0..)``; ``J = (2 M / sigma^2) Re(D^H D)``, ``D = d mu /
d theta``; the bound is ``[J^-1]_00``.  The gains seen in a band centred on ``F`` are ``a_l exp(-j 2
pi F tau_l)``; the SNR is ``mean_k abs(H[k])**2 / sigma^2`` per subcarrier and symbol.

The bounds are ~1e-20 s^2: every comparison here is a ratio (``pytest.approx(x, rel=r)`` keeps its
default ``abs=1e-12``, which would pass any two of them).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsp.channel import Paths
from dsp.crlb import (
    backscatter_crlb_s2,
    bistatic_range_crlb_m2,
    coherent_two_band_crlb_s2,
    compound_model,
    delay_crlb_s2,
    direct_crlb_s2,
    fisher_information,
    information_sqrt,
    merge_coincident,
    noise_var_for_snr,
    range_bound,
    single_path_crlb_s2,
    single_path_range_bound,
    stochastic_range_bound,
    two_band_crlb_s2,
)
from dsp.waveform import SPEED_OF_LIGHT_M_S

C = SPEED_OF_LIGHT_M_S


def mean_cfr(f, tau, a):
    """``mu[k] = sum_l a_l exp(-j 2 pi f_k tau_l)``."""
    return np.exp(-2j * np.pi * np.outer(f, tau)) @ np.asarray(a, complex)


def fd_information(f, tau, a, var, m=1):
    """``(2 M / sigma^2) Re(D^H D)`` with ``D`` by central differences of :func:`mean_cfr`.

    Delay step 1e-13 s: the truncation error is ``(2 pi f h)^2 / 6`` < 1e-7 relative up to 57 MHz;
    the gains enter linearly (step 1e-3, exact to rounding).
    """
    tau, a = np.asarray(tau, float), np.asarray(a, complex)
    p = tau.size
    theta = np.concatenate([tau, a.real, a.imag])
    steps = np.r_[np.full(p, 1e-13), np.full(2 * p, 1e-3)]

    def mu(th):
        return mean_cfr(f, th[:p], th[p : 2 * p] + 1j * th[2 * p :])

    cols = [
        (mu(theta + h * e) - mu(theta - h * e)) / (2 * h) for h, e in zip(steps, np.eye(3 * p), strict=True)
    ]
    d = np.stack(cols, axis=1)
    return 2 * m / var * (d.conj().T @ d).real


def inverse_00(j):
    """``[J^-1]_00``, inverted after scaling to a unit diagonal (delays and gains differ by 1e14)."""
    s = 1 / np.sqrt(np.diag(j))
    return float(np.linalg.inv(j * np.outer(s, s))[0, 0] * s[0] ** 2)


def closed_form_s2(f, gain, var, m=1):
    """One path: in ``(tau, abs(a), phi)`` the ``abs(a)`` column is orthogonal to the others;
    ``J_tt = 8 pi^2 q sum f^2``, ``J_tp = -4 pi q sum f``, ``J_pp = 2 q K`` (``q = M abs(a)^2 /
    sigma^2``, ``K`` subcarriers), so ``1 / CRLB = J_tt - J_tp^2 / J_pp = 8 pi^2 q sum (f -
    f_mean)^2``."""
    f = np.asarray(f, float)
    return 1 / (8 * math.pi**2 * m * abs(gain) ** 2 / var * np.sum((f - f.mean()) ** 2))


@pytest.fixture(scope="module")
def lopsided(wf):
    """Subcarriers -100..400 without DC: the mean frequency is 4.5 MHz, the set not symmetric."""
    return wf.replace(subcarrier_min=-100).active_freqs_hz


def test_the_information_is_that_of_the_model_on_a_lopsided_band(lopsided):
    """``fisher_information`` and ``information_sqrt`` entry by entry (scaled to a unit diagonal)
    against central differences, with ``M = 1`` by default; the bound is its inverse's corner.
    Kills the conjugated exponent (the same information only on a symmetric set), the delay
    columns' sign and the ``Im a`` column doubled (the same bound, another information) and the
    ``n_symbols`` defaults."""
    f = lopsided
    tau = np.array([1.0e-7, 1.45e-7, 2.3e-7])
    a = np.array([1.0, 0.5j, -0.3 + 0.2j])
    for m, kw in ((1, {}), (4, {"n_symbols": 4})):
        j_fd = fd_information(f, tau, a, 0.1, m)
        s = 1 / np.sqrt(np.diag(j_fd))
        for j in (
            fisher_information(f, tau, a, 0.1, **kw),
            (lambda w: w.T @ w)(information_sqrt(f, tau, a, 0.1, **kw)),
        ):
            np.testing.assert_allclose(j * np.outer(s, s), j_fd * np.outer(s, s), rtol=0, atol=1e-6)
        assert delay_crlb_s2(f, tau, a, 0.1, **kw) / inverse_00(j_fd) == pytest.approx(1, abs=1e-6)
    assert delay_crlb_s2(f, tau, a, 0.1) / delay_crlb_s2(f, tau, a, 0.1, 4) == pytest.approx(4, abs=1e-9)


def test_one_path_is_the_closed_form_on_a_lopsided_band_and_on_two_subcarriers(lopsided):
    """``single_path_crlb_s2`` and ``delay_crlb_s2`` against the centred closed form where the
    centring matters (``+ f_mean`` 5x off), ``M = 1`` by default; two subcarriers (3 unknowns, 4
    observations) are enough: ``1 / (8 pi^2 q (f_1 - f_0)^2 / 2)``."""
    gain, var = 0.3 - 0.7j, 0.02
    for f in (lopsided, np.array([2e6, 5e6])):
        expect = closed_form_s2(f, gain, var)
        assert single_path_crlb_s2(f, gain, var) / expect == pytest.approx(1, abs=1e-12)
        assert single_path_crlb_s2(f, gain, var, 3) / expect == pytest.approx(1 / 3, abs=1e-12)
        assert delay_crlb_s2(f, [1.234e-7], [gain], var) / expect == pytest.approx(1, abs=1e-9)
    two = 1 / (8 * math.pi**2 * abs(gain) ** 2 / var * 3e6**2 / 2)
    assert single_path_crlb_s2([2e6, 5e6], gain, var) / two == pytest.approx(1, abs=1e-12)


def test_as_many_unknowns_as_observations_is_identifiable():
    """``3 P = 2 K``: two paths on three subcarriers, a square square-root, finite and equal to
    its inverse; one subcarrier fewer is refused."""
    f = np.array([-10e6, 1e6, 8e6])
    tau, a = np.array([1e-7, 1.5e-7]), np.array([1.0, 0.5j])
    got = delay_crlb_s2(f, tau, a, 1e-3)
    assert got / inverse_00(fd_information(f, tau, a, 1e-3)) == pytest.approx(1, abs=1e-6)
    with pytest.raises(ValueError) as e:
        delay_crlb_s2(f[:2], tau, a, 1e-3)
    assert str(e.value) == (
        "2 paths have 6 real unknowns but 2 subcarriers give only 4 real observations: "
        "the delays are unidentifiable"
    )


def test_the_unidentifiable_cut_is_relative_to_the_los_delay_column(wf):
    """``inf`` when the LoS delay's information left is below 1e-12 of its column's norm (as an
    amplitude), whatever the other columns: an NLoS path 2e-18 s from the LoS, in phase and 1000x
    as strong, leaves 7.8e-11 of it (linear in the separation: 3.9e-11 at 1e-18 s; a bound 1.6e20
    x the single path's), finite; coincident, ``inf``.  Measured against the NLoS delay's column
    (1000x as long) the same case would read ``inf``."""
    f = wf.active_freqs_hz
    single = single_path_crlb_s2(f, 1.0, 1e-3)
    near = delay_crlb_s2(f, [0.0, 2e-18], [1.0, 1e3], 1e-3)
    assert math.isfinite(near) and near > 1e18 * single
    assert delay_crlb_s2(f, [0.0, 0.0], [1.0, 1e3], 1e-3) == math.inf


def channels():
    """Three draws ``(tx_rx, tx_tag, tag_rx)`` of two paths each, well separated, unequal."""
    return [
        (Paths([20.0, 35.0], [1, 0.5j]), Paths([9.0, 30.0], [1, 0.3]), Paths([14.0, 40.0], [1, -0.4])),
        (Paths([22.0, 41.0], [0.7, -0.2]), Paths([11.0, 25.0], [1, 0.6j]), Paths([12.0, 33.0], [0.8, 0.2])),
        (Paths([18.0, 27.0], [1, 0.8]), Paths([10.0, 19.0], [0.5j, 0.3]), Paths([15.0, 29.0], [1, 0.7j])),
    ]


def bb(paths, center_hz):
    """Gains seen at baseband in a band centred on ``center_hz``: ``a exp(-j 2 pi F tau)``."""
    return paths.gains * np.exp(-2j * np.pi * center_hz * paths.delays_s)


def compound(wf, tx_tag, tag_rx, band):
    """``H_1`` at the carrier times ``H_2`` at the side band's centre: delays ``tau_1i + tau_2j``,
    gains the products, path ``i L_2 + j``."""
    centre = wf.carrier_freq_hz + (wf.tag_shift_hz if band == "upper" else -wf.tag_shift_hz)
    tau = np.add.outer(tx_tag.delays_s, tag_rx.delays_s).ravel()
    a = np.multiply.outer(bb(tx_tag, wf.carrier_freq_hz), bb(tag_rx, centre)).ravel()
    return tau, a


def test_direct_and_backscatter_bounds_keep_every_path(wf):
    """Two-path links: the direct bound is the two-path inverse at the carrier's gains, the
    backscatter one that of the four compound paths at each side band's (``compound_model``'s
    default band the upper); ``M = 1`` by default.  Merging everything (a tolerance of 24 s for
    24 us) gives the one-path bound instead."""
    f = wf.active_freqs_hz
    tx_rx, tx_tag, tag_rx = channels()[0]
    j0 = fd_information(f, tx_rx.delays_s, bb(tx_rx, wf.carrier_freq_hz), 1e-3)
    assert direct_crlb_s2(tx_rx, wf, 1e-3) / inverse_00(j0) == pytest.approx(1, abs=1e-6)
    for band in ("lower", "upper"):
        tau, a = compound(wf, tx_tag, tag_rx, band)
        t_m, a_m = compound_model(tx_tag, tag_rx, wf, band)
        np.testing.assert_allclose(t_m, tau, rtol=1e-15)
        np.testing.assert_allclose(a_m, a, rtol=1e-9)
        expect = inverse_00(fd_information(f, tau, a, 1e-3))
        assert backscatter_crlb_s2(tx_tag, tag_rx, wf, 1e-3, band=band) / expect == pytest.approx(1, abs=1e-6)
    a_d = compound_model(tx_tag, tag_rx, wf)[1]  # the loop ended on the upper band's `expect`
    np.testing.assert_array_equal(a_d, compound_model(tx_tag, tag_rx, wf, "upper")[1])
    assert backscatter_crlb_s2(tx_tag, tag_rx, wf, 1e-3) / expect == pytest.approx(1, abs=1e-6)


def test_range_bounds_default_to_one_symbol_and_zero_variance_is_a_variance(wf):
    """``range_bound`` and ``single_path_range_bound`` without ``n_symbols`` are ``M = 1``: LoS
    links give the closed form at each band's SNR; a zero variance is accepted (a bound of 0 m)."""
    f = wf.active_freqs_hz
    los = Paths([20.0], [1.0]), Paths([9.0], [0.5]), Paths([14.0], [0.2j])
    r = range_bound(wf, *los, 25.0, 5.0)
    assert r.direct_s2 / closed_form_s2(f, 1.0, 10**-2.5) == pytest.approx(1, abs=1e-9)
    assert r.backscatter_s2 / closed_form_s2(f, 1.0, 10**-0.5) == pytest.approx(1, abs=1e-9)
    s = single_path_range_bound(wf, 25.0, 5.0)
    assert s.direct_s2 / closed_form_s2(f, 1.0, 10**-2.5) == pytest.approx(1, abs=1e-12)
    assert s.backscatter_s2 / closed_form_s2(f, 1.0, 10**-0.5) == pytest.approx(1, abs=1e-12)
    assert s.bistatic_rmse_m / (C * math.sqrt(s.direct_s2 + s.backscatter_s2)) == pytest.approx(1, abs=1e-12)
    assert bistatic_range_crlb_m2(0.0, 0.0) == 0.0


def test_stochastic_bound_inverts_the_information_averaged_over_every_draw(wf):
    """R-CRLB of three unequal draws (and of one): ``[(sum_i J_i / T)^-1]_00`` for the direct and the
    compound channel, each band's noise from its SNR and that draw's CFR, ``M = 1`` by default.
    Kills the average's scale (``2 / sqrt(T)``, ``sqrt(T)``), a draw skipped and the default."""
    f = wf.active_freqs_hz
    draws = channels()
    snr0, snr_u = 30.0, 12.0
    j0, ju = [], []
    for tx_rx, tx_tag, tag_rx in draws:
        a0 = bb(tx_rx, wf.carrier_freq_hz)
        var0 = np.mean(np.abs(mean_cfr(f, tx_rx.delays_s, a0)) ** 2) / 10 ** (snr0 / 10)
        j0.append(fd_information(f, tx_rx.delays_s, a0, var0))
        tau, a = compound(wf, tx_tag, tag_rx, "upper")
        var_u = np.mean(np.abs(mean_cfr(f, tau, a)) ** 2) / 10 ** (snr_u / 10)
        ju.append(fd_information(f, tau, a, var_u))
    for t in (1, 3):
        it = iter(draws)
        r = stochastic_range_bound(wf, lambda rng, it=it: next(it), t, 0, snr0, snr_u)
        assert r.direct_s2 / inverse_00(sum(j0[:t]) / t) == pytest.approx(1, abs=1e-6)
        assert r.backscatter_s2 / inverse_00(sum(ju[:t]) / t) == pytest.approx(1, abs=1e-6)


def test_stochastic_bound_refuses_a_draw_with_another_path_count_in_either_channel(wf):
    tx_rx, tx_tag, tag_rx = channels()[0]
    for other in ((Paths([20.0], [1]), tx_tag, tag_rx), (tx_rx, Paths([9.0], [1]), tag_rx)):
        it = iter([(tx_rx, tx_tag, tag_rx), other])
        with pytest.raises(ValueError) as e:
            stochastic_range_bound(wf, lambda rng, it=it: next(it), 2, 0, 30.0, 30.0)
        assert str(e.value) == "trial 1 drew a different number of paths than trial 0"


def test_two_band_bounds_against_the_stacked_information(wf):
    """Separate gains: ``J = E_l^T J_l E_l + E_u^T J_u E_u`` on ``(tau, a_lower, a_upper)``, the
    delay block shared; coherent: one band on ``f - f_sh`` and ``f + f_sh``.  ``M = 1`` by default."""
    f = wf.active_freqs_hz
    p = 3
    tau = 1e-6 + np.array([0.0, 40e-9, 95e-9])
    g = (np.array([1.0, 0.6j, -0.4 + 0.2j]), np.array([0.8j, 0.5, 0.3 - 0.3j]))
    var = (0.01, 0.03)
    j = np.zeros((5 * p, 5 * p))
    for b in (0, 1):
        idx = np.r_[0:p, p + 2 * p * b : p + 2 * p * (b + 1)]
        j[np.ix_(idx, idx)] += fd_information(f, tau, g[b], var[b])
    assert two_band_crlb_s2(f, tau, g, var) / inverse_00(j) == pytest.approx(1, abs=1e-6)
    assert two_band_crlb_s2(f, tau, g, var, 5) / inverse_00(j * 5) == pytest.approx(1, abs=1e-6)
    with pytest.raises(ValueError, match="zip"):
        two_band_crlb_s2(f, tau, g, (0.01,))
    both = np.concatenate([f - wf.tag_shift_hz, f + wf.tag_shift_hz])
    coherent = inverse_00(fd_information(both, tau, g[0], 0.01))
    assert coherent_two_band_crlb_s2(wf, tau, g[0], 0.01) / coherent == pytest.approx(1, abs=1e-6)


def test_merge_keeps_the_los_first_and_adds_coincident_gains_anywhere():
    """An NLoS path within ``tol`` of the LoS adds to the LoS gain (the LoS not the earliest: it
    stays first), a coincident pair further down adds into its own path, and ``tol`` apart
    exactly is coincident ("within")."""
    tau = np.array([2e-7, 1e-7, 2e-7 + 1e-16, 3e-7, 4e-7, 4e-7, 5e-7])
    a = np.array([1.0, 0.5, 0.25j, 0.2, 0.1, 0.05j, 0.3])
    t, g = merge_coincident(tau, a, 1e-15)
    np.testing.assert_array_equal(t, [2e-7, 1e-7, 3e-7, 4e-7, 5e-7])
    np.testing.assert_array_equal(g, [1.0 + 0.25j, 0.5, 0.2, 0.1 + 0.05j, 0.3])
    t, g = merge_coincident([1.0, 1.5, 3.0], [1.0, 2.0, 4.0], 0.5)
    np.testing.assert_array_equal(t, [1.0, 3.0])
    np.testing.assert_array_equal(g, [3.0, 4.0])


def test_refusals_say_exactly_what_is_wrong(wf):
    f = wf.active_freqs_hz

    def message(fn, *args):
        with pytest.raises(ValueError) as e:
            fn(*args)
        return str(e.value)

    assert message(delay_crlb_s2, f.reshape(2, -1), [1e-7], [1.0], 1e-3) == (
        "freqs_hz must be 1-D with at least 2 subcarriers, got shape (2, 400)"
    )
    assert message(delay_crlb_s2, f[:1], [1e-7], [1.0], 1e-3) == (
        "freqs_hz must be 1-D with at least 2 subcarriers, got shape (1,)"
    )
    assert message(delay_crlb_s2, np.r_[f[:-1], np.inf], [1e-7], [1.0], 1e-3) == (
        "freqs_hz contains NaN or infinite values"
    )
    assert message(delay_crlb_s2, np.full(8, 1e6), [1e-7], [1.0], 1e-3) == (
        "freqs_hz must hold at least two distinct frequencies to bound a delay"
    )
    assert message(delay_crlb_s2, f, [1e-7, 2e-7], [1.0], 1e-3) == (
        "delays_s (2,) and gains (1,) must be equal, non-empty 1-D"
    )
    assert message(delay_crlb_s2, f, [1e-7], [np.nan], 1e-3) == (
        "delays_s and gains must be finite (no NaN or infinite values)"
    )
    assert message(delay_crlb_s2, f, [1e-7, 2e-7], [0.0, 1.0], 1e-3) == (
        "the line-of-sight gain gains[0] is zero: its delay is unidentifiable"
    )
    assert message(delay_crlb_s2, f, [1e-7], [1.0], -1.0) == "noise_var must be positive and finite, got -1.0"
    assert message(delay_crlb_s2, f, [1e-7], [1.0], 1e-3, 0.5) == "n_symbols must be at least 1, got 0.5"
    for gain in (complex("nan"), complex("inf"), 0.0):
        assert (
            message(single_path_crlb_s2, f, gain, 1e-3) == f"gain must be finite and non-zero, got {gain!r}"
        )
    one = Paths([1.0], [1.0])
    assert message(compound_model, one, one, wf, "central") == (
        "band must be one of ('lower', 'upper'), got 'central'"
    )
    assert message(noise_var_for_snr, np.ones(4), math.inf) == "snr_db must be finite, got inf"
    assert (
        message(noise_var_for_snr, np.zeros(4), 10.0) == "the channel has no power on the active subcarriers"
    )
    assert message(bistatic_range_crlb_m2, -1.0, 1.0) == "direct_s2 must be a non-negative variance, got -1.0"
    assert (
        message(bistatic_range_crlb_m2, 1.0, math.nan)
        == "backscatter_s2 must be a non-negative variance, got nan"
    )
    assert message(stochastic_range_bound, wf, None, 0, 0, 30.0, 30.0) == (
        "n_trials must be a positive integer, got 0"
    )
