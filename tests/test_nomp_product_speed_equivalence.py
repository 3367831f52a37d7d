"""``nomp_product``'s results are those recorded before its fit was compiled (issue 14), up to
rounding.

``tests/data/nomp_product_reference.npz`` holds, for 32 fixed-seed compound side-band CFRs (the
ranging sweep's geometry with 0-8 NLoS paths at 28 and 15 dB; one and two side bands), the
side-band estimate and the product fit of ``dsp/ranging/nomp_product.py`` as it was at 539d2ac,
made by ``tests/data/make_nomp_product_reference.py``, with each output's sensitivity to a
rounding-level perturbation of the input.

Tolerances as in ``tests/test_nomp_speed_equivalence.py``: the discrete outcomes (a product fit
kept or not, its path count) exactly; the rest within 100 times the case's measured sensitivity
and at least ``1e-11`` relative (``1e-11`` of the window for the fitted delays: 0.3 ps).  A fit
that ends in another local optimum moves the outputs by 1e-4 or more and fails.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from dsp.ranging import get_method
from dsp.waveform import get_profile

DATA = Path(__file__).parent / "data"
FLOOR = 1e-11
MARGIN = 100.0


def _load_maker():
    spec = importlib.util.spec_from_file_location(
        "make_nomp_product_reference", DATA / "make_nomp_product_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKER = _load_maker()
REF = dict(np.load(DATA / "nomp_product_reference.npz"))
WF = get_profile("default")
CASES = dict(MAKER.cases(WF))


@pytest.fixture(scope="module")
def method():
    return get_method("nomp_product", WF, **MAKER.RECORDED)  # the parameters of the recording


def test_the_reference_covers_most_cases():
    """Every recorded case is generated; the maker leaves out only cases on a decision boundary."""
    names = [str(n) for n in REF["names"]]
    assert set(names) <= set(CASES)
    assert len(names) >= 0.9 * len(CASES)
    assert sum(bool(REF[f"{n}/kept"]) for n in names) >= 8  # the product fit is exercised


@pytest.mark.parametrize("name", [str(n) for n in REF["names"]])
def test_estimate_matches_the_reference(method, name):
    y = CASES[name]
    np.testing.assert_allclose(MAKER.digest(y), REF[f"{name}/digest"], rtol=1e-13, atol=1e-9)
    got = MAKER.outputs(method, y)
    ref = {
        k: REF[f"{name}/{k}"]
        for k in ("delay_s", "std_s", "kept", "n_paths", "cost", "w1", "w2")
        if f"{name}/{k}" in REF
    }
    tol = np.maximum(FLOOR, MARGIN * REF[f"{name}/sensitivity"])  # [delay, std, cost, delays]
    assert bool(got["kept"]) == bool(ref["kept"])
    np.testing.assert_allclose(got["delay_s"], ref["delay_s"], rtol=tol[0], atol=0)
    if np.isinf(ref["std_s"]):
        assert np.isinf(got["std_s"])
    else:
        np.testing.assert_allclose(got["std_s"], ref["std_s"], rtol=tol[1], atol=0)
    if bool(ref["kept"]):
        assert int(got["n_paths"]) == int(ref["n_paths"])
        assert got["w1"].shape == ref["w1"].shape and got["w2"].shape == ref["w2"].shape
        np.testing.assert_allclose(got["cost"], ref["cost"], rtol=tol[2], atol=0)
        w_got, w_ref = np.r_[got["w1"], got["w2"]], np.r_[ref["w1"], ref["w2"]]
        assert np.max(np.abs(w_got - w_ref)) / (2 * np.pi) <= tol[3]


def test_screening_ranks_by_the_least_squares_relaxation(method):
    """:meth:`NompProduct._screen` (one pool of sumset atoms, a Cholesky solve per hypothesis) gives
    each hypothesis :meth:`NompProduct._relaxed_cost` (least squares on its own atoms) to rounding:
    well separated offsets, an offset in both factors (duplicate sumset atoms), and two offsets
    1e-9 cells apart (a singular pool Gram: the least-squares fall-back)."""
    rng = np.random.default_rng(5)
    cell = method.cell_w
    for offsets in ([1.3, 2.9, 4.4, 7.1], [1.3, 1.3 + 1e-9, 4.4, 7.1], [0.4, 2.0, 2.6]):
        w0 = 1.0
        w = np.r_[w0, w0 + cell * np.array(offsets)]
        a = rng.standard_normal((1, w.size)) + 1j * rng.standard_normal((1, w.size))
        y = a @ method._e(w).T + 0.05 * (rng.standard_normal((1, 800)) + 1j * rng.standard_normal((1, 800)))
        inv_var = np.array([1.0 / 0.005])
        others = list(range(1, w.size))
        screened = method._screen(y, w, a, w0, a[:, 0], 0, others, inv_var, 10.0)
        assert len(screened) == 110 if len(others) == 4 else len(screened) > 0
        for score, (w1, _, w2, _) in screened:
            ref = method._relaxed_cost(y, w1, w2, inv_var) + 10.0 * (w1.size + w2.size - 1)
            assert score == pytest.approx(ref, rel=1e-9, abs=1e-6 * y.shape[1])
        assert [s for s, _ in screened] == sorted(s for s, _ in screened)
