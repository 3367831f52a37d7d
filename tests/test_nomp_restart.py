"""NOMP's restart (dsp.ranging.nomp_restart): a fit stopped short of the noise with an ill-placed
first path is fitted again from atoms spread over its leading cluster.

Tolerances.  The recorded CFRs (``tests/data/nomp_restart_cluster.npz``, made by
``tests/data/make_nomp_restart_cluster.py``) are central bands at 62 dB whose TX-RX paths form a
dense cluster at nearly equal power: the first path's K-path bound is metres (9 m for the 4-NLoS
scenario), so the maths sets no per-estimate limit below a cell.  What the restart must do is
remove the greedy fit's systematic ghost: without it the draws are a quarter cell early on
average (a pair ahead of the cluster); with it the mean error over the draws is at most a third of that
bias, the RMSE at most three quarters (the errors that remain are the cluster's spread, both
ways), and no first path lies more than a cell from the truth (the restart may move the first
path at most a cell behind the free fit's).  Where the first path is well placed (line of sight,
the structural mode behind it) or the fit reaches the noise, nothing may change at all.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.config_base import ConfigError
from dsp.crlb import model_cfr, noise_var_for_snr
from dsp.ranging import get_method, nomp_restart
from dsp.ranging.nomp_linalg import _cost
from dsp.waveform import SPEED_OF_LIGHT_M_S, get_profile

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def wf():
    return get_profile("default")


@pytest.fixture(scope="module")
def with_restart(wf):
    return get_method("nomp", wf)


@pytest.fixture(scope="module")
def without(wf):
    return get_method("nomp", wf, restart=False)


def _noisy(h: np.ndarray, var: float, rng: np.random.Generator) -> np.ndarray:
    return h + math.sqrt(var / 2) * (rng.standard_normal(h.shape) + 1j * rng.standard_normal(h.shape))


def test_the_ghost_ahead_of_a_dense_cluster_goes(wf, with_restart, without):
    d = np.load(DATA / "nomp_restart_cluster.npz")
    cell_m = SPEED_OF_LIGHT_M_S / wf.occupied_bandwidth_hz
    for scenario in np.unique(d["scenario"]):
        pick = d["scenario"] == scenario
        off, on = [], []
        for cfr, truth in zip(d["cfr"][pick], d["first_path_delay_s"][pick], strict=True):
            off.append((without.fit(cfr).delay_s - truth) * SPEED_OF_LIGHT_M_S)
            on.append((with_restart.fit(cfr).delay_s - truth) * SPEED_OF_LIGHT_M_S)
        off, on = np.array(off), np.array(on)
        label = str(d["labels"][pick][0])
        assert off.mean() < -0.25 * cell_m, (label, off)  # the cases still show the ghost
        assert abs(on.mean()) <= abs(off.mean()) / 3, (label, on)
        assert np.sqrt(np.mean(on**2)) <= 0.75 * np.sqrt(np.mean(off**2)), (label, on)
        assert np.all(np.abs(on) < cell_m), (label, on)


def test_a_well_placed_line_of_sight_is_not_restarted(wf, with_restart, without, monkeypatch):
    """Line of sight with weaker paths 1.5-4 cells behind it (the structural mode) at 62 dB: the
    fit may stop at the dynamic-range cap short of the noise (it does in two of the three draws),
    but its first path is pinned down, so the restart changes nothing and the estimate is the
    plain fit's to the bit."""
    calls = []
    real = nomp_restart.restart

    def spy(nomp, y, w, a, r, var, thr):
        out = real(nomp, y, w, a, r, var, thr)
        calls.append(out[0] is not w)
        return out

    monkeypatch.setattr(nomp_restart, "restart", spy)
    short = []
    f = wf.active_freqs_hz
    cell = 1.0 / wf.occupied_bandwidth_hz
    rng = np.random.default_rng(8)
    for _ in range(3):
        tau = 1e-6 + cell * np.r_[0.0, np.sort(rng.uniform(1.5, 4.0, 6))] + rng.uniform(0, wf.cir_grid_step_s)
        gains = np.r_[1.0, 0.3 * rng.uniform(0.2, 1.0, 6)] * np.exp(2j * np.pi * rng.uniform(size=7))
        h0 = model_cfr(f, tau, gains)
        y = _noisy(h0, noise_var_for_snr(h0, 62.0), rng)
        assert with_restart.fit(y).delay_s == without.fit(y).delay_s
        _, _, r, var = without.detect(y[None], np.zeros(0), without.threshold[1])
        short.append(_cost(r, 1 / var) > r.size + nomp_restart.FIT_SIGMAS * math.sqrt(r.size))
    assert calls == [False, False, False]
    assert any(short)  # the noise gate alone would have let the restart run


def test_a_fit_that_reaches_the_noise_is_left_alone(wf, without):
    """The gate: a residual at the chi-square's mean comes back untouched, whatever the first path."""
    rng = np.random.default_rng(5)
    n = wf.active_subcarriers.size
    var = np.array([1.0])
    r = _noisy(np.zeros((1, n)), 1.0, rng)
    r *= math.sqrt(n / _cost(r, 1 / var))
    w = np.array([0.1, 0.1 + 0.3 * without.cell_w])  # a close pair: the first path is ill-placed
    a = np.array([[3.0, -2.9]], np.complex128)
    out = nomp_restart.restart(without, r, w, a, r, var, without.threshold[1])
    assert all(x is y for x, y in zip(out, (w, a, r, var), strict=True))


def _load_maker():
    spec = importlib.util.spec_from_file_location(
        "make_nomp_restart_cluster", DATA / "make_nomp_restart_cluster.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKER = _load_maker()


@settings(max_examples=12, deadline=None)
@given(scenario=st.sampled_from(MAKER.SCENARIOS), noise_seed=st.integers(0, 2**31 - 1))
def test_a_kept_restart_scores_better_and_stays_with_the_cluster(without, scenario, noise_seed):
    """The recorded scenarios with fresh noise (the restart runs in most draws): it returns the free
    fit itself, or a fit whose penalised cost (residual energy plus ``T`` per path, the free fit's
    noise) is lower by ``T`` at least and whose first path lies at most half a cell ahead of the
    free fit's first path and at most a cell behind it."""
    y = MAKER.case(*scenario, noise_seed)[0][None]
    thr = without.threshold[1]
    w, a, r, var = without.detect(y, np.zeros(0), thr)
    out = nomp_restart.restart(without, y, w, a, r, var, thr)
    if out[0] is w:
        return
    inv_var = 1.0 / var
    assert _cost(out[2], inv_var) + thr * out[0].size <= _cost(r, inv_var) + thr * (w.size - 1)
    first_free = w[without.first_component(w, a, var)[0]]
    first_new = out[0][without.first_component(*out[:2], out[3])[0]]
    behind = (first_new - first_free + math.pi) % (2 * math.pi) - math.pi
    assert -nomp_restart.AHEAD_CELLS * without.cell_w - 1e-12 <= behind
    assert behind <= nomp_restart.BEHIND_CELLS * without.cell_w + 1e-12


def test_an_atom_the_others_span_has_no_significance(wf, without):
    """Two atoms at the same delay: the Gram matrix is singular, dropping either costs nothing."""
    w = np.array([0.5, 0.5, 1.5])
    a = np.array([[1.0, 1.0, 1.0]], np.complex128)
    pw = without._power(a, np.array([1e-3]), w)
    assert np.all(np.isfinite(pw))
    assert pw[0] == 0.0 and pw[1] == 0.0
    # isolated but for the sidelobes of atoms 1 rad away, |rho| ~ 1 / (N sin 0.5) ~ 3e-3: |rho|^2 ~ 1e-5
    assert pw[2] == pytest.approx(wf.active_subcarriers.size * 1e3, rel=1e-4)


def test_restart_is_a_typed_parameter(wf):
    with pytest.raises(ConfigError, match="restart"):
        get_method("nomp", wf, restart="yes")
    assert get_method("nomp_product", wf, restart=False).params.restart is False
