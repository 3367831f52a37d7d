"""NOMP's mutants that session 10 left (issue 19, docs/MUTATION.md session 13): the tuning
defaults, the detection loop's merge counter, the pruning after the final refit, the close-pair
test's cost and offset, the noise floor, the new delay's Newton clip and the Gauss-Newton wrap.
Where no natural CFR reaches a branch (a detection that merges into a fitted path, a path that
the final refit leaves under the detection rule) the branch is reached by a spy on ``_refit``
that hands the loop the state the branch is written for."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsp.ranging import get_method, nomp_kernels
from dsp.ranging.nomp_linalg import _cost
from dsp.ranging.nomp_params import NompParams


@pytest.fixture(scope="module")
def nomp(wf):
    return get_method("nomp", wf)


def _paths(nomp, w, gains) -> np.ndarray:
    """``sum_l a_l exp(-j k w_l)`` ``[subcarrier]`` (the model of the module docstring)."""
    return np.exp(-1j * np.outer(nomp.k, np.atleast_1d(w))) @ np.atleast_1d(gains)


def _noisy(nomp, w, gains, snr_db: float, seed: int) -> tuple[np.ndarray, float]:
    h0 = _paths(nomp, w, gains)
    var = float(np.mean(np.abs(h0) ** 2)) / 10 ** (snr_db / 10)
    rng = np.random.default_rng(seed)
    n = h0.size
    return h0 + math.sqrt(var / 2) * (rng.standard_normal(n) + 1j * rng.standard_normal(n)), var


def test_the_tuning_defaults_are_those_the_published_ranges_were_made_with():
    """``max_paths`` 24, ``final_steps`` 10, ``max_lead_m`` 150 m: one unit more is an equally valid
    estimator, but not the one whose ranges are published (RESULTS); a change must be deliberate."""
    p = NompParams()
    assert (p.max_paths, p.final_steps, p.max_lead_m) == (24, 10, 150.0)


def test_a_detection_that_merges_is_retried_three_times_then_the_loop_stops(wf, monkeypatch):
    """The detection loop: a new delay that merges into a fitted path (the refit returns no more
    paths than before) counts; the fourth merge ends the detection (``merges > 3``).  Two paths 20
    cells apart at 30 dB; after the first detection the spy makes every refit merge (it drops the
    new delay), so the residual, and hence the next detection, stay the same: 1 + 4 detection
    refits (``refine_steps`` 4), then the final refit (``final_steps`` 10) of the first path."""
    m = get_method("nomp", wf)
    w1 = 0.19
    h, _ = _noisy(m, [w1, w1 + 20 * m.cell_w], [1.0, 0.6j], 30.0, 31)
    real = m._refit
    calls: list[tuple[int, int]] = []

    def spy(y, w, var, steps, keep_out=None):
        calls.append((w.size, steps))
        if sum(s == 4 for _, s in calls) > 12:
            raise AssertionError("the detection loop does not stop after merges")
        if steps == 4 and w.size > 1:  # every later detection merges: drop the new delay
            return real(y, w[:-1], var, steps, keep_out)
        return real(y, w, var, steps, keep_out)

    monkeypatch.setattr(m, "_refit", spy)
    est = m.fit(h)
    assert [s for _, s in calls[:6]] == [4, 4, 4, 4, 4, 10]
    assert [n for n, _ in calls[:5]] == [1, 2, 2, 2, 2]
    assert est.order == 1
    assert abs(est.delay_s * 2 * np.pi * wf.subcarrier_spacing_hz - w1) < 0.05 * m.cell_w


def _with_final(m, monkeypatch, final):
    """Spy on ``m._refit``: the first refit with ``final_steps`` (the one after the last
    detection) returns ``final(y, w, var)``'s delays with their gains fitted; records every call."""
    real = m._refit
    calls: list[tuple[int, int]] = []

    def spy(y, w, var, steps, keep_out=None):
        calls.append((w.size, steps))
        out = real(y, w, var, steps, keep_out)
        if steps == m.params.final_steps and sum(s == steps for _, s in calls) == 1:
            w2 = final(y, out[0], var)
            _, a2, r2 = m._fit_gains(y, w2)
            return w2, a2, r2
        return out

    monkeypatch.setattr(m, "_refit", spy)
    return calls


def test_a_path_the_final_refit_leaves_under_the_rule_is_pruned_with_two_steps(wf, monkeypatch):
    """After the final refit, a path whose drop-one GLRT is under the threshold goes (weakest
    first, refit with 2 Gauss-Newton steps, the count the published ranges were made with) while
    two or more paths are left.  One path at 30 dB; the spy adds an atom 40 cells away where there
    is no path: its GLRT is a chi-square of 2 degrees (under 13.6 but with probability 1e-3), so it
    goes, and the fit is the one path."""
    m = get_method("nomp", wf)
    w1 = 0.19
    h, _ = _noisy(m, w1, 0.8, 30.0, 32)
    calls = _with_final(m, monkeypatch, lambda y, w, var: np.append(w, w1 + 40 * m.cell_w))
    est = m.fit(h)
    i = calls.index((1, 10))  # the final refit (then with the ghost: 2 paths)
    assert calls[i + 1] == (1, 2)  # the ghost dropped, the one path refitted in 2 steps
    assert est.order == 1
    assert abs(est.delay_s * 2 * np.pi * wf.subcarrier_spacing_hz - w1) < 0.05 * m.cell_w


def test_the_last_path_is_never_pruned(wf, monkeypatch):
    """``while w.size > 1``: a single path under the rule after the final refit stays (a fit with
    no path would report the matched filter's peak instead).  The spy moves the one path 40 cells
    away from the true one, where its GLRT is noise (a chi-square of 2 degrees)."""
    m = get_method("nomp", wf)
    w1 = 0.19
    h, _ = _noisy(m, w1, 0.8, 30.0, 33)
    _with_final(m, monkeypatch, lambda y, w, var: np.array([w1 + 40 * m.cell_w]))
    est = m.fit(h)
    assert est.order == 1
    assert est.first == 0


def test_the_close_pair_test_compares_the_cost_at_one_over_var_with_the_threshold(nomp):
    """``_prune_close`` on a path and a weaker one 0.4 cells after it (near neighbours).  With the
    threshold set to 1.5 times the weak path's removal cost ``dw`` (the growth of the whitened
    residual energy ``_cost`` at ``1 / var`` with the other delay re-fitted), the weak path goes:
    the comparison is ``dw < thr``; at ``2 / var`` both removals would cost ``2 dw`` or more
    (the strong one's, ``ds``, is about ``dw``: either refit ends on the pair's one-path optimum)."""
    c = nomp.cell_w
    w = np.array([0.19, 0.19 + 0.4 * c])
    h, _ = _noisy(nomp, w, [1.0, 0.3 * np.exp(0.7j)], 30.0, 34)
    y = h[None]
    _, a, r = nomp._project(y, w)
    var = nomp._noise(r)
    assert nomp._first_path(w, a, var) == 0
    assert nomp._has_near_neighbour(w).tolist() == [True, True]
    cost = _cost(r, 1 / var)
    steps = nomp.params.final_steps
    d = [_cost(nomp._refit(y, np.delete(w, i), var, steps)[2], 1 / var) - cost for i in (0, 1)]
    assert d[0] > 0.75 * d[1] > 0
    w1, _, _ = nomp._prune_close(y, w, a, r, var, 1.5 * d[1])
    assert w1.size == 1


def test_the_close_pair_test_takes_the_pair_after_the_first_path_across_the_wrap(nomp):
    """``after`` is the delay after the first path taken around the circle (modulo ``2 pi``, into
    ``[-pi, pi)``).  A strong first path 0.5 cells before the window's end and a weaker one 0.8
    cells after it, 0.3 cells after the window's start, handed over as two atoms at 0.15 and 0.45
    cells (0.3 cells apart: near neighbours, 0.65 and 0.95 cells after the first across the wrap;
    the first has none within 0.5 cells): one atom is tested and, the other re-fitted onto the
    path, dropped (a chi-square of one or two degrees, far under the threshold 13.6)."""
    c = nomp.cell_w
    h, _ = _noisy(nomp, [2 * np.pi - 0.5 * c, 0.3 * c], [1.0, 0.5 * np.exp(1j)], 30.0, 36)
    y = h[None]
    w = np.array([2 * np.pi - 0.5 * c, 0.15 * c, 0.45 * c])
    _, a, r = nomp._project(y, w)
    var = nomp._noise(r)
    assert nomp._first_path(w, a, var) == 0
    assert nomp._has_near_neighbour(w).tolist() == [False, True, True]
    w1, _, _ = nomp._prune_close(y, w, a, r, var, nomp.threshold[1])
    assert w1.size == 2


def test_the_noise_floor_is_1e_12_of_the_residuals_mean_power(nomp):
    """``_noise_from_power``: ``median(p) / (N ln 2)``, at least ``1e-12`` of the residual's mean
    power per subcarrier (its docstring).  A residual of mean power 2 (band 0) and 0.5 (band 1) whose
    spectral power has median 0: the floor, ``2e-12`` and ``5e-13`` (plus the smallest normal
    float), to rounding."""
    n = nomp.k.size
    r = np.vstack([np.full(n, 1 + 1j), np.full(n, 0.5j) * np.exp(1j * np.arange(n)) * math.sqrt(2)])
    p = np.zeros((2, 64))
    assert nomp._noise_from_power(r, p) == pytest.approx([2e-12, 5e-13], rel=1e-12, abs=0)


def test_the_new_delays_newton_step_is_clipped_to_half_a_cell(nomp):
    """``_newton_one``: ``-S' / S''`` where ``S`` is concave, clipped to half a resolution cell.  A
    noise-free path at ``w1``; from 0.35 cells before it, near the edge of the concave region, the
    unclipped Newton step is 1.14 cells (the kernel with no clip); the step taken is 0.5 cells."""
    c = nomp.cell_w
    w1 = 0.19
    r = (0.8 * np.exp(2.1j) * _paths(nomp, w1, 1.0))[None]
    var = np.array([1.0])
    w0 = w1 - 0.35 * c
    free = nomp_kernels.newton_one(
        r, 1 / var, w0, 1, 1e9, nomp.k, nomp._k_coarse, nomp._k_fine, nomp._q, nomp._r
    )
    assert free - w0 > 0.6 * c
    assert nomp._newton_one(r, var, w0, 1) == pytest.approx(w0 + 0.5 * c, rel=1e-12, abs=0)


def test_a_gauss_newton_step_across_the_window_start_is_wrapped(nomp):
    """``_refit`` from 0.1 cells before the window's end (``w = 2 pi - 0.1`` cells) onto a path 0.1
    cells after its start at 40 dB: the steps cross ``w = 2 pi`` and come back wrapped into
    ``[0, 2 pi)``, on the path (its Cramer-Rao deviation is about 1e-3 cells; 0.02 cells is 20 of
    them)."""
    c = nomp.cell_w
    w1 = 0.1 * c
    h, var = _noisy(nomp, w1, 0.8 * np.exp(-0.4j), 40.0, 35)
    w, _, _ = nomp._refit(h[None], np.array([2 * np.pi - 0.1 * c]), np.array([var]), 4)
    assert 0 <= w[0] < 2 * np.pi
    assert abs(w[0] - w1) < 0.02 * c
