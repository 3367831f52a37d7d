"""NOMP's lead test (dsp.ranging.nomp_lead): a component ahead of the strongest must be needed.

Tolerances.  The dense clusters of ``tests/data/nomp_lead_ghost.npz`` (made by
``tests/data/make_nomp_lead_ghost.py``) are six compound paths within 3.6-6.8 m (0.3-0.55
resolution cells) at nearly equal power: the band cannot place their first path (the product-form
bound is 13-400 m there), so no limit tighter than a fraction of a cell follows from the maths.
Without the test NOMP's first path is a ghost 7-16 m (0.6-1.3 cells) ahead; the limit of a quarter
cell (3.1 m) separates the two outcomes.  Where the first path is identifiable (an isolated path
ahead of a strong cluster), the limit is 5 standard deviations of the K-path bound, as in
``tests/test_ranging_nomp.py``, and the test must change nothing at all.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.config_base import ConfigError
from dsp.crlb import delay_crlb_s2, model_cfr, noise_var_for_snr
from dsp.ranging import get_method, nomp_lead
from dsp.ranging.nomp_linalg import _cost
from dsp.waveform import SPEED_OF_LIGHT_M_S

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def with_test(wf):
    return get_method("nomp", wf)


@pytest.fixture(scope="module")
def without(wf):
    return get_method("nomp", wf, lead_test=False)


def _noisy(h: np.ndarray, var: float, rng: np.random.Generator) -> np.ndarray:
    return h + math.sqrt(var / 2) * (rng.standard_normal(h.shape) + 1j * rng.standard_normal(h.shape))


def test_ghosts_ahead_of_a_dense_cluster_go(wf, with_test, without):
    d = np.load(DATA / "nomp_lead_ghost.npz")
    cell_m = SPEED_OF_LIGHT_M_S / wf.occupied_bandwidth_hz
    for cfr, truth, label in zip(d["cfr"], d["first_path_delay_s"], d["labels"], strict=True):
        ghost_m = (without.fit(cfr).delay_s - truth) * SPEED_OF_LIGHT_M_S
        assert ghost_m < -0.5 * cell_m, (str(label), ghost_m)  # the case still shows the ghost
        err_m = (with_test.fit(cfr).delay_s - truth) * SPEED_OF_LIGHT_M_S
        assert abs(err_m) < 0.25 * cell_m, (str(label), err_m)


def test_a_real_path_ahead_of_a_strong_cluster_stays(wf, with_test, without, monkeypatch):
    """The line of sight 10 dB below a cluster of three paths 1.2-1.6 cells behind it (the
    cluster is the most significant component, so the line of sight is a candidate), 30 dB per
    subcarrier: dropping it costs its energy, about 26 dB above the threshold.  Its delay is well
    determined, so the default skips the test (``lead_std_cells``); with that gate at 0 the test
    runs, fits without it, and keeps it."""
    always = get_method("nomp", wf, lead_std_cells=0.0)
    constrained = []
    real = always.detect

    def spy(y, w, thr, keep_out=None, max_paths=None):
        constrained.append(keep_out is not None)
        return real(y, w, thr, keep_out, max_paths)

    monkeypatch.setattr(always, "detect", spy)
    f = wf.active_freqs_hz
    cell = 1.0 / wf.occupied_bandwidth_hz
    rng = np.random.default_rng(3)
    for _ in range(4):
        tau = 1e-6 + cell * np.array([0.0, 1.2, 1.4, 1.6]) + rng.uniform(0, wf.cir_grid_step_s)
        gains = np.array([0.3, 1.0, 0.9, 0.8]) * np.exp(2j * np.pi * rng.uniform(size=4))
        h0 = model_cfr(f, tau, gains)
        var = noise_var_for_snr(h0, 30.0)
        y = _noisy(h0, var, rng)
        bound_s = math.sqrt(delay_crlb_s2(f, tau, gains, var))
        plain = without.fit(y).delay_s
        assert with_test.fit(y).delay_s == plain
        assert always.fit(y).delay_s == plain
        assert abs(plain - tau[0]) < 5 * bound_s
    assert sum(constrained) >= 4  # the test ran (two starts per fit where it did)


@settings(max_examples=30, deadline=None)
@given(
    n_paths=st.integers(1, 5),
    spread_cells=st.floats(0.2, 3.0),
    snr_db=st.floats(0.0, 30.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_the_first_path_never_moves_earlier(wf, with_test, without, n_paths, spread_cells, snr_db, seed):
    """Every path the test keeps lies behind the boundary, which is behind the component it
    dropped: whatever the channel, the first path can only move later (or stay)."""
    rng = np.random.default_rng(seed)
    cell = 1.0 / wf.occupied_bandwidth_hz
    tau = 1e-6 + np.sort(rng.uniform(0, spread_cells * cell, n_paths))
    gains = rng.uniform(0.3, 1.0, n_paths) * np.exp(2j * np.pi * rng.uniform(size=n_paths))
    h0 = model_cfr(wf.active_freqs_hz, tau, gains)
    y = _noisy(h0, noise_var_for_snr(h0, snr_db), rng)
    window_s = 1.0 / wf.subcarrier_spacing_hz
    move_s = with_test.fit(y).delay_s - without.fit(y).delay_s
    move_s = (move_s + window_s / 2) % window_s - window_s / 2  # circular, in [-W/2, W/2)
    assert move_s >= -1e-15


def test_a_fit_that_does_not_reach_the_noise_is_left_alone(wf, without):
    """The gate: with a residual 4 deviations of the chi-square above its mean the inputs come back
    untouched (the free fit is a partial description; its costs compare nothing)."""
    rng = np.random.default_rng(5)
    n = wf.active_subcarriers.size
    var = np.array([1.0])
    r = _noisy(np.zeros((1, n)), 1.0, rng)
    r *= math.sqrt((n + 4 * math.sqrt(n)) / _cost(r, 1 / var))
    w = np.array([0.1, 0.1 + 2 * without.cell_w])  # the first component is not the strongest
    a = np.array([[0.1, 1.0]], np.complex128)
    out = nomp_lead.lead_test(without, r, w, a, r, var, without.threshold[1])
    assert all(x is y for x, y in zip(out, (w, a, r, var), strict=True))


def test_keep_out_masks_and_clips_only_what_lies_ahead_of_its_boundary(wf, without):
    cell = without.cell_w
    ko = nomp_lead.KeepOut(w_ref=1.0, lo=0.5 * cell, grid_size=wf.cir_fft_size)
    w = np.array([1.0, 1.0 - 0.4 * cell, 1.0 - 0.6 * cell, 1.0 - 3 * cell, 1.0 + cell])
    assert ko.inside(w).tolist() == [False, False, True, True, False]
    clipped = ko.clip(w)
    np.testing.assert_allclose(clipped[[0, 1, 4]], w[[0, 1, 4]], rtol=0, atol=0)
    np.testing.assert_allclose(clipped[[2, 3]], 1.0 - 0.5 * cell, rtol=0, atol=1e-15)
    grid = 2 * np.pi * np.arange(wf.cir_fft_size) / wf.cir_fft_size
    assert np.array_equal(ko.grid, ko.inside(grid))


def test_lead_test_is_a_typed_parameter(wf):
    with pytest.raises(ConfigError, match="lead_test"):
        get_method("nomp", wf, lead_test="yes")
    assert get_method("nomp_product", wf, lead_test=False).params.lead_test is False


def test_detect_stops_at_max_paths(wf, without):
    """Four paths two cells apart at 30 dB: all four are found, or two when capped at two."""
    f = wf.active_freqs_hz
    cell = 1.0 / wf.occupied_bandwidth_hz
    tau = 1e-6 + cell * np.array([0.0, 2.0, 4.0, 6.0])
    h0 = model_cfr(f, tau, np.array([1.0, 0.8j, -0.7, 0.6]))
    y = _noisy(h0, noise_var_for_snr(h0, 30.0), np.random.default_rng(1))[None]
    thr = without.threshold[1]
    assert without.detect(y, np.zeros(0), thr)[0].size == 4
    assert without.detect(y, np.zeros(0), thr, max_paths=2)[0].size == 2
