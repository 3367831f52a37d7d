"""NOMP's first-path clusters (``cluster_cells``): a line of sight that the fit holds as two weak
atoms is still a candidate.

Tolerances.  In the recorded side bands (``tests/data/nomp_split_first.npz``, made by
``tests/data/make_nomp_split_first.py``) the first path is not identifiable from the fit (the
product-form bound is kilometres with 4 and 8 NLoS paths), so the maths sets no limit below a
cell.  What the clusters must do is stop the jump past the line of sight: without them the first
path is a later cluster's, more than 0.8 cell (10 m) late; with them it is within half a cell
(6.2 m), and within three of the standard deviations the estimate publishes.  Where no cluster
is at stake (paths more than a cell apart, or a fit that does not reach the noise, or one whose
first path the fit does not place within a cell) nothing may change at all.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.config_base import ConfigError
from dsp.crlb import model_cfr, noise_var_for_snr
from dsp.ranging import get_method, nomp_first
from dsp.ranging.nomp_linalg import _cost
from dsp.waveform import SPEED_OF_LIGHT_M_S

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def with_clusters(wf):
    return get_method("nomp", wf)


@pytest.fixture(scope="module")
def without(wf):
    return get_method("nomp", wf, cluster_cells=0.0)


def _noisy(h: np.ndarray, var: float, rng: np.random.Generator) -> np.ndarray:
    return h + math.sqrt(var / 2) * (rng.standard_normal(h.shape) + 1j * rng.standard_normal(h.shape))


def test_a_split_weak_line_of_sight_stays_a_candidate(wf, with_clusters, without):
    d = np.load(DATA / "nomp_split_first.npz")
    cell_m = SPEED_OF_LIGHT_M_S / wf.occupied_bandwidth_hz
    for cfr, truth, label in zip(d["cfr"], d["first_path_delay_s"], d["labels"], strict=True):
        skipped_m = (without.fit(cfr).delay_s - truth) * SPEED_OF_LIGHT_M_S
        assert skipped_m > 0.8 * cell_m, (str(label), skipped_m)  # the case still shows the jump
        est = with_clusters.fit(cfr)
        err_m = (est.delay_s - truth) * SPEED_OF_LIGHT_M_S
        assert abs(err_m) < 0.5 * cell_m, (str(label), err_m)
        assert abs(err_m) < 3 * est.delay_std_s * SPEED_OF_LIGHT_M_S, (str(label), err_m)


def test_the_gates(wf, with_clusters, without, monkeypatch):
    """No cluster is offered where the fit does not place its first path within a cell (the gate
    at a hundredth of a cell: the recorded cases give the plain rule's answer), nor where the fit
    does not reach the noise (its residual scaled 4 deviations above the chi-square's mean)."""
    d = np.load(DATA / "nomp_split_first.npz")
    monkeypatch.setattr(nomp_first, "RESCUE_STD_CELLS", 0.01)
    for cfr in d["cfr"]:
        assert with_clusters.fit(cfr).delay_s == without.fit(cfr).delay_s
    monkeypatch.undo()
    y = with_clusters._check(d["cfr"][0])
    w, a, r, var = with_clusters.detect(y, np.zeros(0), with_clusters.threshold[1])
    assert with_clusters._may_rescue(w, a, r, var)
    n = r.size
    r_big = r * math.sqrt((n + 4 * math.sqrt(n)) / _cost(r, 1 / var))
    assert not with_clusters._may_rescue(w, a, r_big, var)


@settings(max_examples=20, deadline=None)
@given(
    n_paths=st.integers(1, 6),
    snr_db=st.floats(0.0, 40.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_separated_paths_are_decided_as_before(wf, with_clusters, without, n_paths, snr_db, seed):
    """Paths 1.5-2.5 cells apart, one atom each: every cluster is one component, so the estimate is
    the plain rule's to the bit."""
    rng = np.random.default_rng(seed)
    cell = 1.0 / wf.occupied_bandwidth_hz
    tau = 1e-6 + cell * np.r_[0.0, np.cumsum(rng.uniform(1.5, 2.5, n_paths - 1))]
    gains = rng.uniform(0.2, 1.0, n_paths) * np.exp(2j * np.pi * rng.uniform(size=n_paths))
    h0 = model_cfr(wf.active_freqs_hz, tau, gains)
    y = _noisy(h0, noise_var_for_snr(h0, snr_db), rng)
    got, ref = with_clusters.fit(y), without.fit(y)
    assert got.delay_s == ref.delay_s and got.order == ref.order


def test_cluster_cells_is_a_checked_parameter(wf):
    with pytest.raises(ConfigError, match="cluster_cells"):
        get_method("nomp", wf, cluster_cells=3.0)
    assert get_method("nomp_product", wf, cluster_cells=0.0).params.cluster_cells == 0.0
