"""NOMP's results are those recorded before its speed-ups (issues 14 and 18), up to rounding.

``tests/data/nomp_reference.npz`` holds, for 112 fixed-seed CFRs (1-8 paths at 0-40 dB, noise
only, pairs closer than a resolution cell, compound 8-NLoS channels as ``backscatter bench``
times them; one, two and three bands), the outputs of ``dsp/ranging/nomp.py`` as it was at
b5b1cf3, made by ``tests/data/make_nomp_reference.py``.

Tolerances.  The model order and the first path's index are compared exactly.  The rest are
float64 results of an iterative fit, so a reordering of a sum (a different BLAS kernel, a
Cholesky in place of an LU) moves them by rounding times the fit's condition.  The script
measured that condition per case: the largest change when the input is perturbed at the rounding
level (relative ``4e-16``): ``1e-15`` for most outputs, up to ``7e-9`` (gains of a pair of close
atoms with nearly cancelling gains).  An output may differ from the reference by 100 times that,
and by at least ``1e-11`` (relative; gains relative to the band's largest): 10^4 to 10^5 ulps,
far below anything physical (``1e-11`` of a 1 us delay is 3 um), far above the rounding of a
reordered fit.  A different local optimum, a merge or a prune decided otherwise, moves the
outputs by 1e-3 or more and fails.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from dsp.ranging import get_method
from dsp.waveform import get_profile

DATA = Path(__file__).parent / "data"
FLOOR = 1e-11  # relative tolerance at least (see above)
MARGIN = 100.0  # times the case's measured sensitivity to rounding


def _load_maker():
    spec = importlib.util.spec_from_file_location("make_nomp_reference", DATA / "make_nomp_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKER = _load_maker()
REF = dict(np.load(DATA / "nomp_reference.npz"))
WF = get_profile("default")
CASES = dict(MAKER.cases(WF))


def test_the_reference_covers_the_cases():
    assert sorted(CASES) == sorted(str(n) for n in REF["names"])


@pytest.fixture(scope="module")
def nomp():
    return get_method("nomp", WF)


@pytest.mark.parametrize("name", [str(n) for n in REF["names"]])
def test_fit_matches_the_reference(nomp, name):
    y = CASES[name]
    # the input is the recorded one (to its summation rounding)
    np.testing.assert_allclose(MAKER.digest(y), REF[f"{name}/digest"], rtol=1e-13, atol=1e-9)
    got = MAKER.outputs(nomp.fit(y))
    ref = {k: REF[f"{name}/{k}"] for k in got}
    tol = np.maximum(FLOOR, MARGIN * REF[f"{name}/sensitivity"])  # [delays, gains, noise_var, std]
    assert int(got["order"]) == int(ref["order"])
    assert int(got["first"]) == int(ref["first"])
    np.testing.assert_allclose(got["delays_s"], ref["delays_s"], rtol=tol[0], atol=0)
    np.testing.assert_allclose(got["delay_s"], ref["delay_s"], rtol=tol[0], atol=0)
    assert got["gains"].shape == ref["gains"].shape
    if ref["gains"].size:
        scale = np.max(np.abs(ref["gains"]), axis=1, keepdims=True)
        assert np.max(np.abs(got["gains"] - ref["gains"]) / scale) <= tol[1]
    np.testing.assert_allclose(got["noise_var"], ref["noise_var"], rtol=tol[2], atol=0)
    if np.isinf(ref["delay_std_s"]):
        assert np.isinf(got["delay_std_s"])
    else:
        np.testing.assert_allclose(got["delay_std_s"], ref["delay_std_s"], rtol=tol[3], atol=0)


def test_the_gauss_newton_step_is_the_least_squares_step_of_the_jacobian(nomp):
    """:meth:`Nomp._gn_step` solves the normal equations of ``[Re J; Im J] s = [Re r; Im r]``
    (``J`` :meth:`Nomp._jacobian`), which the fit solved by ``lstsq`` before: the same step to
    rounding times the condition of ``J`` (random, well separated delays: ``1e-9``)."""
    rng = np.random.default_rng(3)
    for n_paths, n_bands in ((1, 1), (3, 2), (8, 1), (8, 3)):
        w = np.sort(rng.uniform(0, 2 * np.pi, n_paths))
        a = rng.standard_normal((n_bands, n_paths)) + 1j * rng.standard_normal((n_bands, n_paths))
        y = a @ nomp._steer(w + 0.01 * nomp.cell_w).T
        y = y + 0.01 * (rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape))
        _, a_fit, r = nomp._project(y, w)
        inv_sd = 1.0 / np.sqrt(rng.uniform(0.5, 2.0, n_bands))
        jac = nomp._jacobian(nomp._steer(w), a_fit, inv_sd).reshape(-1, n_paths)
        res = (r * inv_sd[:, None]).reshape(-1)
        ref = np.linalg.lstsq(
            np.concatenate([jac.real, jac.imag]), np.concatenate([res.real, res.imag]), rcond=None
        )[0]
        got = nomp._gn_step(nomp._basis(w), a_fit, r, inv_sd)
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9 * np.max(np.abs(ref)))


def test_collide_is_whether_merge_merges(nomp):
    """The refit's fast test (:meth:`Nomp._collide`) decides as ``_merge(w).size < w.size``, also
    for gaps at the tolerance and across the wrap."""
    rng = np.random.default_rng(4)
    tol = nomp.params.merge_cells * nomp.cell_w
    for _ in range(2000):
        n = int(rng.integers(1, 9))
        w = rng.uniform(0, 2 * np.pi, n)
        if n > 1 and rng.uniform() < 0.5:  # a pair near the tolerance, possibly across 0
            i, j = rng.choice(n, 2, replace=False)
            w[j] = np.mod(w[i] + rng.choice([-1, 1]) * tol * rng.uniform(0.9, 1.1), 2 * np.pi)
        assert nomp._collide(w) == (nomp._merge(w).size < w.size)
