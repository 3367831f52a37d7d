"""NOMP's result stage against its definitions (issue 19, the mutation check; docs/MUTATION.md
session 10): the first path's deviation, the merge of close delays, the whitened cost, the small
linear solves and the group significance, each against the formula its docstring states, with
tolerances from rounding or from a closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsp.crlb import delay_crlb_s2, single_path_crlb_s2
from dsp.ranging import get_method
from dsp.ranging.nomp_linalg import _Basis, _cost, _lu_solve, _solve_gram
from dsp.waveform import SPEED_OF_LIGHT_M_S


@pytest.fixture(scope="module")
def nomp(wf):
    return get_method("nomp", wf)


def test_the_deviation_of_one_path_is_the_closed_form_with_the_bands_information_added(wf, nomp):
    """``_std``: ``sqrt(CRLB)`` of the first delay, the bands' information adding.  One path of
    gains ``a_b`` in noise ``v_b``: ``1 / std^2 = sum_b 8 pi^2 (abs(a_b)^2 / v_b) sum_k (f_k -
    f_mean)^2`` (SYSTEM.md section 7, ``single_path_crlb_s2``); a band where the path's gain is 0
    adds nothing; no band with the path: ``inf``."""
    f = wf.active_freqs_hz
    tau = np.array([173e-9])
    a = np.array([[0.3 - 0.1j], [1.2j], [0.0]])
    var = np.array([1e-3, 5e-2, 1e-4])
    info = sum(1 / single_path_crlb_s2(f, a[b, 0], var[b]) for b in (0, 1))
    assert nomp._std(tau, a, var, 0) == pytest.approx(1 / math.sqrt(info), rel=1e-9, abs=0)
    assert nomp._std(tau, a[:1], var[:1], 0) == pytest.approx(
        math.sqrt(single_path_crlb_s2(f, a[0, 0], var[0])), rel=1e-9, abs=0
    )
    assert math.isinf(nomp._std(tau, a[2:], var[2:], 0))


def test_the_deviation_of_a_later_first_path_treats_the_others_as_nuisances(wf, nomp):
    """With several paths the first one's bound is ``delay_crlb_s2`` with the first path put
    first and every other delay and gain unknown; naming path ``i`` first gives the bound of the
    path list reordered with ``i`` at the front (the same numbers), and a nuisance path can only
    lose information (the bound is no lower than the path alone)."""
    f = wf.active_freqs_hz
    tau = np.array([120e-9, 95e-9, 160e-9])  # not in delay order: _std takes them as given
    a = np.array([[0.5, 0.9j, -0.2], [0.1j, 0.4, 0.3]])
    var = np.array([2e-3, 1e-3])
    for first in range(3):
        order = [first, *[i for i in range(3) if i != first]]
        info = sum(1 / delay_crlb_s2(f, tau[order], a[b, order], var[b]) for b in (0, 1))
        assert nomp._std(tau, a, var, first) == pytest.approx(1 / math.sqrt(info), rel=1e-9, abs=0)
        alone = sum(1 / single_path_crlb_s2(f, a[b, first], var[b]) for b in (0, 1))
        assert nomp._std(tau, a, var, first) >= 1 / math.sqrt(alone) * (1 - 1e-9)


def test_merge_keeps_the_first_of_each_run_of_close_delays_and_wraps(nomp):
    """``_merge``: delays (sorted) closer than ``merge_cells`` cells to the one before them go; the
    first after the wrap goes when the last one is within the tolerance of it (circular gaps)."""
    tol = nomp.params.merge_cells * nomp.cell_w
    two_pi = 2 * np.pi
    np.testing.assert_array_equal(nomp._merge(np.array([0.7])), [0.7])
    np.testing.assert_array_equal(nomp._merge(np.array([3.0, 1.0 + 0.5 * tol, 1.0, 5.0])), [1.0, 3.0, 5.0])
    run = np.array([2.0, 2.0 + 0.6 * tol, 2.0 + 1.2 * tol, 4.0])  # a chain: each close to the one before
    np.testing.assert_array_equal(nomp._merge(run), [2.0, 4.0])
    wrap = np.array([0.2 * tol, 2.0, two_pi - 0.3 * tol])
    np.testing.assert_array_equal(nomp._merge(wrap), [2.0, two_pi - 0.3 * tol])
    apart = np.array([0.5, 0.5 + 1.5 * tol, 0.5 + 3 * tol])
    np.testing.assert_array_equal(nomp._merge(apart), apart)
    for w in (wrap, run, apart, np.array([1.0, 1.0 + 0.5 * tol])):
        assert nomp._collide(w) == (nomp._merge(w).size < w.size)


def test_cost_is_the_whitened_residual_energy():
    """``_cost``: ``sum_b sum_n abs(r_bn)^2 / sigma_b^2``; the same sums in another order: equal
    within the rounding of ``2 N`` terms (1e-12)."""
    rng = np.random.default_rng(5)
    r = rng.standard_normal((3, 50)) + 1j * rng.standard_normal((3, 50))
    inv_var = np.array([2.0, 0.5, 10.0])
    assert _cost(r, inv_var) == pytest.approx(float(np.sum(np.abs(r) ** 2 * inv_var[:, None])), rel=1e-12)


def test_the_small_solves_are_the_inverse_or_the_pseudo_inverse():
    """``_lu_solve`` is ``a^-1 b`` (``None`` when ``a`` is singular), real or complex;
    ``_solve_gram`` solves a ``[path, ...]`` right side, falls back to the pseudo-inverse for a
    singular Gram matrix; ``_Basis`` holds ``E^H E`` and its
    inverse.  Well conditioned systems: within 1e-12."""
    rng = np.random.default_rng(6)
    a = rng.standard_normal((3, 3)) + 1j * rng.standard_normal((3, 3)) + 3 * np.eye(3)
    b = rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))
    np.testing.assert_allclose(_lu_solve(a, b), np.linalg.solve(a, b), rtol=1e-12)
    ar, br = a.real.copy(), b.real.copy()
    x = _lu_solve(ar, br)
    assert x.dtype == np.float64
    np.testing.assert_allclose(x, np.linalg.solve(ar, br), rtol=1e-12)
    assert _lu_solve(np.ones((2, 2), complex), np.ones((2, 1), complex)) is None
    rhs = rng.standard_normal((3, 2, 4)) + 0j
    np.testing.assert_allclose(
        _solve_gram(a, rhs), np.linalg.solve(a, rhs.reshape(3, 8)).reshape(3, 2, 4), rtol=1e-12
    )
    sing = np.array([[1.0, 1.0], [1.0, 1.0]], complex)
    np.testing.assert_allclose(
        _solve_gram(sing, rhs[:2]), (np.linalg.pinv(sing) @ rhs[:2].reshape(2, 8)).reshape(2, 2, 4)
    )
    assert _solve_gram(np.zeros((0, 0), complex), np.zeros((0, 5), complex)).shape == (0, 5)  # no path
    e = rng.standard_normal((20, 3)) + 1j * rng.standard_normal((20, 3))
    basis = _Basis(e)
    np.testing.assert_allclose(basis.gram, e.conj().T @ e, rtol=1e-12)
    np.testing.assert_allclose(basis.gram_inv() @ basis.gram, np.eye(3), atol=1e-12)
    assert basis.gram_inv() is basis.gram_inv()


def test_group_significance_is_the_glrt_of_dropping_the_group(wf, nomp):
    """``_group_power``: for a group ``g`` of atoms, ``sum_b a_bg^H ([(E^H E)^-1]_gg)^-1 a_bg /
    sigma_b^2`` (the GLRT of dropping them at once); for one atom ``sum_b abs(a_bl)^2 /
    [(E^H E)^-1]_ll / sigma_b^2``.  Two atoms half a cell apart (strongly coupled) form one group,
    a third far away its own; checked against the inverse computed here (1e-9)."""
    cell = nomp.cell_w
    w = np.array([1.0, 1.0 + 0.5 * cell, 1.0 + 20 * cell])
    a = np.array([[1.0, -0.7j, 0.2], [0.3j, 0.5, -0.4]])
    var = np.array([1e-3, 3e-3])
    e = np.exp(-1j * np.outer(nomp.k, w))
    inv = np.linalg.inv(e.conj().T @ e)
    groups = [np.array([0, 1]), np.array([2])]
    got = nomp._group_power(a, var, w, groups)
    pair = sum(
        float(np.real(a[b, :2].conj() @ np.linalg.solve(inv[:2, :2], a[b, :2]))) / var[b] for b in (0, 1)
    )
    lone = sum(abs(a[b, 2]) ** 2 / inv[2, 2].real / var[b] for b in (0, 1))
    np.testing.assert_allclose(got, [pair, lone], rtol=1e-9)
    np.testing.assert_allclose(
        nomp._group_power(a, var, w, [np.array([2]), np.array([0, 1])]), [lone, pair], rtol=1e-9
    )


def test_merge_of_a_pair_across_the_wrap_keeps_one(nomp):
    """Two delays within the tolerance across ``2 pi``: one remains (the one before the wrap)."""
    tol = nomp.params.merge_cells * nomp.cell_w
    np.testing.assert_array_equal(
        nomp._merge(np.array([0.1 * tol, 2 * np.pi - 0.2 * tol])), [2 * np.pi - 0.2 * tol]
    )


def test_separated_delays_are_separate_components_and_have_no_near_neighbour(nomp):
    """``components`` and ``_has_near_neighbour`` measure the circular gaps, the wrap's being ``2 pi``
    less the span: delays many cells apart (also the last and the first) are each alone."""
    for w in (np.array([1.0, 4.0]), np.array([5.0, 0.5, 2.5])):
        assert sorted(g.tolist() for g in nomp.components(w)) == [[i] for i in range(w.size)]
        np.testing.assert_array_equal(nomp._has_near_neighbour(w), np.zeros(w.size, bool))


def _lead_rad(wf, metres: float) -> float:
    return 2 * np.pi * wf.subcarrier_spacing_hz * metres / SPEED_OF_LIGHT_M_S


@pytest.mark.parametrize(("lead_m", "w_strong"), [(100.0, 3.0), (200.0, 3.0), (80.0, 0.02), (140.0, 0.01)])
def test_the_first_path_is_at_most_max_lead_ahead_also_across_the_wrap(wf, nomp, lead_m, w_strong):
    """``_first_path``: the earliest component no more than ``max_lead_m`` (150 m) ahead of the most
    significant one and within ``first_path_db`` of it.  Two isolated paths (``lead_m`` is 10 or
    more resolution cells), the later 2 dB stronger: the earlier is the first path at 100 m, 80 m
    and 140 m ahead, not at 200 m; with the strongest just after delay 0 the earlier lies just
    before ``1 / df``, ahead of it across the wrap."""
    w = np.array([np.mod(w_strong - _lead_rad(wf, lead_m), 2 * np.pi), w_strong])
    a = np.array([[0.8, 1.0j]])
    var = np.array([1e-3])
    assert lead_m <= nomp.params.max_lead_m or lead_m > 1.2 * nomp.params.max_lead_m  # far from the limit
    want = 0 if lead_m <= nomp.params.max_lead_m else 1
    assert nomp._first_path(w, a, var) == want


def test_a_band_without_the_path_adds_nothing_wherever_it_is(wf, nomp):
    """``_std`` skips a band where the first path's gain is 0, before or between the others."""
    f = wf.active_freqs_hz
    tau = np.array([173e-9])
    a = np.array([[0.0], [0.3 - 0.1j], [0.0], [1.2j]])
    var = np.array([1e-4, 1e-3, 1e-4, 5e-2])
    info = 1 / single_path_crlb_s2(f, a[1, 0], var[1]) + 1 / single_path_crlb_s2(f, a[3, 0], var[3])
    assert nomp._std(tau, a, var, 0) == pytest.approx(1 / math.sqrt(info), rel=1e-9, abs=0)


def test_lu_solve_of_mixed_real_and_complex_is_complex():
    """``_lu_solve`` solves in complex arithmetic when either side is complex (1e-12)."""
    rng = np.random.default_rng(8)
    a = rng.standard_normal((3, 3)) + 3 * np.eye(3)
    b = rng.standard_normal((3, 2))
    for aa, bb in ((a + 0.5j * np.eye(3), b), (a, b + 0.5j)):
        np.testing.assert_allclose(_lu_solve(aa, bb), np.linalg.solve(aa, bb), rtol=1e-12)


def test_the_matched_filter_is_the_whitened_steering_correlation_summed_over_bands(wf, nomp):
    """``_matched``: ``G(w_q) = sum_b abs(e(w_q)^H r_b)^2 / (N sigma_b^2)`` on the CIR grid
    ``w_q = 2 pi q / K`` with ``e(w) = exp(-j k w)``, the correlation evaluated here as a direct sum
    at a few ``q`` (rounding of 800 terms: 1e-10 relative)."""
    rng = np.random.default_rng(9)
    n, k_fft = wf.active_subcarriers.size, wf.cir_fft_size
    r = rng.standard_normal((2, n)) + 1j * rng.standard_normal((2, n))
    var = np.array([1e-3, 4e-3])
    g, spec = nomp._matched(r, var)
    for q in (0, 1, 777, k_fft - 1):
        z = np.exp(1j * nomp.k * 2 * np.pi * q / k_fft) @ r.T  # e(w_q)^H r_b, [band]
        np.testing.assert_allclose(spec[:, q], z, rtol=1e-10)
        assert g[q] == pytest.approx(float(np.sum(np.abs(z) ** 2 / (n * var))), rel=1e-10)


@pytest.mark.parametrize("length", [9, 10])
def test_the_noise_is_the_median_spectral_power_over_n_ln2(wf, nomp, length):
    """``_noise_from_power``: ``median(p) / (N ln 2)`` per band (the median of an exponential
    variable of mean ``N sigma^2``), odd and even lengths, as ``np.median`` takes it; the floor of
    ``1e-12`` of the residual's power does not act here."""
    rng = np.random.default_rng(10 + length)
    p = rng.exponential(size=(2, length))
    r = 1e-3 * (rng.standard_normal((2, 800)) + 1j * rng.standard_normal((2, 800)))
    want = np.median(p, axis=-1) / (math.log(2) * nomp.k.size)
    np.testing.assert_allclose(nomp._noise_from_power(r, p), want, rtol=1e-12)


def test_malformed_cfrs_are_refused_with_their_reason(wf, nomp):
    """``_check``: a CFR that is not ``[subcarrier]`` or ``[band, subcarrier]`` of the profile's
    subcarriers, not numeric, not finite or all zero is refused, saying which."""
    n = nomp.k.size
    for bad in (
        np.ones(n - 1, complex),
        np.ones((2, n + 1), complex),
        np.ones((1, 2, n), complex),
        np.array(["x"] * n),
    ):
        with pytest.raises(
            ValueError, match=rf"^nomp: cfr must be numeric \[subcarrier\] .* {n} subcarriers, got shape"
        ):
            nomp.fit(bad)
    with pytest.raises(ValueError, match=r"^nomp: cfr contains NaN or infinite values$"):
        nomp.fit(np.r_[np.ones(n - 1), np.nan])
    with pytest.raises(ValueError, match=r"^nomp: cfr is identically zero$"):
        nomp.fit(np.zeros((2, n), complex))


@pytest.mark.parametrize("frac", [0.000015, 0.15, 0.52, 0.9, 0.99997])
def test_one_path_anywhere_in_the_window_is_found_within_five_sigma(wf, nomp, frac):
    """The other tests' paths lie near 1 us (``w`` = 0.19 rad); a path at any delay of the window
    ``[0, 1 / df)``, also 0.5 ns after its start or 1 ns before its end (where the new delay's Newton
    step or a Gauss-Newton step crosses ``w = 0``, wrapped modulo ``2 pi``), is fitted within 5
    Cramer-Rao deviations at 30 dB per subcarrier (one chance in 1.7 million for an efficient
    estimator; ``test_ranging_nomp``'s rule), the distance taken around the circle ``1 / df``."""
    rng = np.random.default_rng(int(frac * 1e5))
    f = wf.active_freqs_hz
    period = 1 / wf.subcarrier_spacing_hz
    tau, gain = frac * period, 0.8 * np.exp(2.1j)
    h0 = gain * np.exp(-2j * np.pi * np.mod(f * tau, 1.0))
    var = float(np.mean(np.abs(h0) ** 2)) / 10 ** (30 / 10)
    h = h0 + math.sqrt(var / 2) * (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size))
    est = nomp.fit(h)
    err = (est.delay_s - tau + period / 2) % period - period / 2
    assert 0 <= est.delay_s < period
    assert abs(err) <= 5 * math.sqrt(single_path_crlb_s2(f, gain, var))


def test_fit_hands_two_or_more_paths_to_the_close_pair_test_unless_it_is_off(wf, monkeypatch):
    """``near_cells`` (its help: "0: off"): ``fit`` gives every fit of two or more paths to
    ``_prune_close``, none when it is 0 or one path is fitted.  Two paths 3 cells apart at 30 dB
    (both detected: 5 dB apart, far above the threshold)."""
    f = wf.active_freqs_hz
    tau = np.array([2e-6, 2e-6 + 3.0 / wf.occupied_bandwidth_hz])
    h0 = np.exp(-2j * np.pi * np.outer(f, tau)) @ np.array([1.0, 0.55j])
    rng = np.random.default_rng(23)
    var = float(np.mean(np.abs(h0) ** 2)) / 1e3
    h = h0 + math.sqrt(var / 2) * (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size))
    single = np.exp(-2j * np.pi * f * tau[0]) + (h - h0)  # the first path alone, the same noise
    for near_cells, cfr, want in ((0.5, h, [2]), (0.0, h, []), (0.5, single, [])):
        m = get_method("nomp", wf, near_cells=near_cells)
        calls = []
        real = m._prune_close

        def spy(y, w, *args, _real=real, _calls=calls):
            _calls.append(w.size)
            return _real(y, w, *args)

        monkeypatch.setattr(m, "_prune_close", spy)
        est = m.fit(cfr)
        assert calls == want, (near_cells, est.order)


def test_a_close_pair_straddling_one_cell_after_the_first_path_is_still_tested(wf, nomp):
    """``_prune_close`` tests the near atoms at most one cell after the first path, even when only
    one of a close pair is: a path at 1.1 cells after a stronger first path, handed over as two
    atoms at 0.9 and 1.3 cells (0.4 cells apart: near neighbours); the one at 0.9 cells is tested
    and, with the other delay re-fitted onto the path, dropped (the fit worsens by a chi-square of
    one or two degrees, far under the threshold 13.6)."""
    rng = np.random.default_rng(24)
    f = wf.active_freqs_hz
    cell = nomp.cell_w
    cell_s = 1.0 / wf.occupied_bandwidth_hz
    tau = np.array([2e-6, 2e-6 + 1.1 * cell_s])
    h0 = np.exp(-2j * np.pi * np.outer(f, tau)) @ np.array([1.0, 0.5 * np.exp(1j)])
    var = float(np.mean(np.abs(h0) ** 2)) / 1e3
    y = (h0 + math.sqrt(var / 2) * (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size)))[None]
    w0 = 2 * np.pi * wf.subcarrier_spacing_hz * tau[0]
    w = np.array([w0, w0 + 0.9 * cell, w0 + 1.3 * cell])
    _, a, r = nomp._project(y, w)
    noise = nomp._noise(r)
    assert nomp._first_path(w, a, noise) == 0
    assert nomp._has_near_neighbour(w).tolist() == [False, True, True]
    w1, _, _ = nomp._prune_close(y, w, a, r, noise, nomp.threshold[1])
    assert w1.size == 2


def test_singular_normal_equations_give_the_minimum_norm_least_squares_step(nomp):
    """``_gn_step``'s fallback: a path with gain 0 in every band has a zero Jacobian column, so the
    normal equations are exactly singular; the step is then the minimum-norm least-squares step of
    ``[Re J; Im J] s = [Re r_w; Im r_w]`` (``J`` from ``_jacobian``), 0 for that path, within the
    rounding times the condition of the other columns (1e-9)."""
    rng = np.random.default_rng(25)
    w = np.array([0.4, 1.9, 4.2])
    a = rng.standard_normal((2, 3)) + 1j * rng.standard_normal((2, 3))
    y = a @ nomp._steer(w + 0.01 * nomp.cell_w).T
    y = y + 0.01 * (rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape))
    _, a_fit, r = nomp._project(y, w)
    a_fit[:, 1] = 0.0
    inv_sd = np.array([1.3, 0.8])
    jac = nomp._jacobian(nomp._steer(w), a_fit, inv_sd).reshape(-1, 3)
    res = (r * inv_sd[:, None]).reshape(-1)
    stacked = np.concatenate([jac.real, jac.imag])
    ref = np.linalg.lstsq(stacked, np.concatenate([res.real, res.imag]), rcond=None)[0]
    got = nomp._gn_step(nomp._basis(w), a_fit, r, inv_sd)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9 * np.max(np.abs(ref)))
    assert abs(got[1]) <= 1e-9 * np.max(np.abs(got)) and np.max(np.abs(got)) > 0
