"""Fractional-delay alignment on delay levels (dsp/alignment.py) and the window products it
relies on (DirectWindows.dot, dsp/windows.py).

Windows are built here from the definition (a delay ``f`` multiplies subcarrier ``k`` by
``exp(-j 2 pi k f / N)``); each bound is the quantisation's: a level is within
``eps = 1 / (2 L)`` of the true delay, so every subcarrier's factor is off by at most
``|1 - exp(j w_max eps)| <= w_max eps`` (``w_max = 2 pi k_max / N``).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.alignment import LevelAlignment, PolynomialAlignment, SumPart
from dsp.references import guard_probe, symbol_from_cfr
from dsp.tracking import DelayBasis
from dsp.waveform import WaveformConfig
from dsp.windows import DirectWindows, join_blocks

WF = WaveformConfig()
K = WF.active_subcarriers
W_MAX = 2 * np.pi * WF.subcarrier_max / WF.fft_size


def _channel(rng: np.random.Generator, paths: int = 3) -> np.ndarray:
    d = rng.uniform(0, 40, paths)
    a = rng.normal(size=paths) + 1j * rng.normal(size=paths)
    return (a[None, :] * np.exp(-2j * np.pi * np.outer(K, d) / WF.fft_size)).sum(axis=1)


def _delayed(h: np.ndarray, f: float, cfo_hz: float) -> np.ndarray:
    return symbol_from_cfr(WF, h * np.exp(-2j * np.pi * K * f / WF.fft_size), cfo_hz)


def _block(wins: np.ndarray, cuts: list[int]) -> DirectWindows:
    """Windows ``[window, N]`` as one channel split into pieces at ``cuts`` (views, like chunks)."""
    edges = [0, *cuts, len(wins)]
    return DirectWindows([wins[None, a:b] for a, b in itertools.pairwise(edges) if b > a])


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(1, 40),
    data=st.data(),
)
def test_dot_over_pieces_equals_the_product_of_the_materialised_windows(count, data):
    rng = np.random.default_rng(count)
    wins = (rng.normal(size=(count, 16)) + 1j * rng.normal(size=(count, 16))).astype(np.complex64)
    cuts = sorted(data.draw(st.lists(st.integers(1, max(count - 1, 1)), max_size=5)))
    block = _block(wins, [c for c in cuts if c < count])
    a = data.draw(st.integers(0, count - 1))
    b = data.draw(st.integers(a + 1, count))
    step = data.draw(st.integers(1, 9))
    vec = (rng.normal(size=16) + 1j * rng.normal(size=16)).astype(np.complex64)
    np.testing.assert_allclose(block.dot(0, a, b, vec, step), wins[a:b:step] @ vec, rtol=1e-5, atol=1e-5)
    w = (rng.normal(size=b - a) + 1j * rng.normal(size=b - a)).astype(np.complex64)
    np.testing.assert_allclose(block.weighted_sum(0, a, b, w), w @ wins[a:b], rtol=1e-4, atol=1e-4)


@settings(max_examples=60, deadline=None)
@given(count=st.integers(1, 80), run=st.integers(1, 50), step=st.integers(1, 9), data=st.data())
def test_compiled_level_loops_equal_the_products_of_the_materialised_windows(count, run, step, data):
    """``dot_levels`` / ``sum_levels`` (dsp/level_kernel.py) against numpy on the materialised
    windows, over piece boundaries, strides and runs of one level from 1 to 50 windows: equal
    to float32 rounding (1024-term sums in float32: relative error about 1e-6; limit 1e-4)."""
    rng = np.random.default_rng(count * 100 + run)
    n = 1024
    wins = (rng.normal(size=(count, n)) + 1j * rng.normal(size=(count, n))).astype(np.complex64)
    cuts = sorted(data.draw(st.lists(st.integers(1, max(count - 1, 1)), max_size=5)))
    block = _block(wins, [c for c in cuts if c < count])
    table = (rng.normal(size=(17, n)) + 1j * rng.normal(size=(17, n))).astype(np.complex64)
    lev = (np.arange(count) // run + rng.integers(0, 17)) % 17
    got = block.dot_levels(0, table, lev[::step], step)
    want = np.einsum("mn,mn->m", wins[::step], table[lev[::step]])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.sqrt(n))
    a = data.draw(st.integers(0, count - 1))
    b = data.draw(st.integers(a + 1, count))
    w = (rng.normal(size=b - a) + 1j * rng.normal(size=b - a)).astype(np.complex64)
    acc = np.zeros((17, n), np.complex64)
    block.sum_levels(0, a, b, w, lev[a:b], acc)
    want_acc = np.zeros((17, n), complex)
    np.add.at(want_acc, lev[a:b], w[:, None] * wins[a:b])
    np.testing.assert_allclose(acc, want_acc, rtol=1e-4, atol=1e-4 * np.sqrt(b - a))


def test_projection_and_sums_are_the_same_by_blas_runs_or_compiled_loops(monkeypatch):
    """The two paths of :class:`LevelAlignment` (a BLAS call per run, or the compiled loop;
    ``SHORT_RUNS`` picks one) give the same tag samples, timing error and epoch sum."""
    import dsp.alignment as alignment

    rng = np.random.default_rng(10)
    h, cfo = _channel(rng), 700.0
    align = LevelAlignment(WF, 16)
    ref = symbol_from_cfr(WF, h, cfo)
    cols = align.install(ref, cfo, guard_probe(WF, cfo), slope=True)
    curv = DelayBasis(WF).curvature(ref, cfo)
    f = np.repeat(np.linspace(-0.4, 0.4, 5), 40)  # runs of 40 windows
    wins = np.array([_delayed(h, x + 0.01, cfo) for x in f]).astype(np.complex64)
    block = _block(wins, [57, 130])
    ones = np.ones(200)
    parts = [SumPart(block, 0, 0, 120, ones[:120], f[:120]), SumPart(block, 0, 120, 200, ones[120:], f[120:])]
    got = {}
    for short_runs in (1, 10**9):  # every run by BLAS; every window by the compiled loop
        monkeypatch.setattr(alignment, "SHORT_RUNS", short_runs)
        got[short_runs] = (*align.project(block, 0, cols, f, curv), align.window_sum(parts, cfo))
    (z, probe, err, total), (z_c, probe_c, err_c, total_c) = got[1], got[10**9]
    np.testing.assert_allclose(z_c, z, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(probe_c, probe)
    assert err_c == pytest.approx(err, rel=1e-4, abs=1e-6)
    np.testing.assert_allclose(total_c, total, rtol=1e-5, atol=1e-5 * np.abs(total).max())


def test_joined_working_rate_blocks_are_one_block_of_all_their_pieces():
    wins = np.arange(5 * 4, dtype=np.complex64).reshape(5, 4)
    joined = join_blocks([_block(wins[:2], []), _block(wins[2:], [1])])
    assert isinstance(joined, DirectWindows) and joined.count == 5
    np.testing.assert_array_equal(joined.windows(0), wins)


@pytest.mark.parametrize("levels", [8, 16])
@pytest.mark.parametrize("f", [-0.5, -0.47, -0.2, 0.0, 0.031, 0.33, 0.5])
def test_projection_on_its_level_recovers_the_gain(levels, f):
    rng = np.random.default_rng(7)
    h, cfo = _channel(rng), 1234.0
    align = LevelAlignment(WF, levels)
    ref = symbol_from_cfr(WF, h, cfo)
    cols = align.install(ref, cfo, guard_probe(WF, cfo), slope=False)
    c = -0.4 + 1.1j
    block = _block((c * _delayed(h, f, cfo))[None, :].astype(np.complex64), [])
    z, probe, err = align.project(block, 0, cols, np.array([f]))
    eps = abs(f - align.f_levels[align.level(np.array([f]))[0]])
    assert eps <= 0.5 / levels + 1e-12
    assert abs(z[0] - c) <= abs(c) * (W_MAX * eps + 1e-5)  # + complex64 rounding
    assert err is None and abs(probe[0]) < 1e-4 * abs(c) * np.linalg.norm(ref)  # probe: unused bins only


@pytest.mark.parametrize("error", [-0.08, -0.02, 0.0, 0.03, 0.08])
def test_timing_error_is_measured_off_the_levels(error):
    """Delays between levels: the level's own offset is known and removed, so what is left is
    the model's error, linear to first order (relative error ``(w_max * e_total)**2``)."""
    rng = np.random.default_rng(8)
    h, cfo = _channel(rng), -600.0
    align = LevelAlignment(WF, 16)
    ref = symbol_from_cfr(WF, h, cfo)
    cols = align.install(ref, cfo, guard_probe(WF, cfo), slope=True)
    curv = DelayBasis(WF).curvature(ref, cfo)
    f = np.linspace(-0.45, 0.45, 64)  # model delays, on and off the levels
    wins = np.array([_delayed(h, x + error, cfo) for x in f]).astype(np.complex64)
    _, _, est = align.project(_block(wins, [17, 40]), 0, cols, f, curv)
    e_total = abs(error) + 0.5 / 16
    assert est == pytest.approx(error, abs=(W_MAX * e_total) ** 2 * e_total + 2e-3)


def test_level_sums_undo_every_window_delay_as_the_polynomial_does():
    rng = np.random.default_rng(9)
    h, cfo = _channel(rng), 900.0
    n_win = 96
    f = np.sort(rng.uniform(-0.5, 0.5, n_win))  # a drift: delays in order
    ph = np.exp(2j * np.pi * rng.random(n_win))
    wins = np.array([_delayed(h, x, cfo) * p for x, p in zip(f, ph, strict=True)]).astype(np.complex64)
    w = np.conj(ph)
    block = _block(wins, [30, 31, 70])
    parts = [SumPart(block, 0, 0, 50, w[:50], f[:50]), SumPart(block, 0, 50, n_win, w[50:], f[50:])]
    ref = symbol_from_cfr(WF, h, cfo)
    align = LevelAlignment(WF, 16)
    got = align.window_sum(parts, cfo) / n_win
    # every window is re-aligned by its level's mean delay, at most one level width (1/16) away;
    # the residuals d_m average to zero within a level, so the first-order term of
    # exp(j w d) = 1 + j w d - (w d)**2 / 2 ... cancels and each subcarrier is off by at most
    # (w_max * spread)**2 / 2
    lev = align.level(f)
    spread = max(np.ptp(f[lev == v]) for v in np.unique(lev))
    assert spread <= 1 / 16 + 1e-12
    bound = (W_MAX * spread) ** 2 / 2
    assert np.linalg.norm(got - ref) <= bound * np.linalg.norm(ref)
    basis = DelayBasis(WF)
    poly = PolynomialAlignment(basis).window_sum(parts, cfo) / n_win
    assert np.linalg.norm(poly - ref) <= basis.fit_error * np.linalg.norm(ref)
    plain = w @ wins / n_win  # nothing undone: the sum smears far beyond either bound
    assert np.linalg.norm(plain - ref) > 5 * bound * np.linalg.norm(ref)


def test_levels_must_be_even():
    with pytest.raises(ValueError, match="even"):
        LevelAlignment(WF, 7)
