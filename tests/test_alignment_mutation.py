"""Delay levels, the polynomial and the kernel alignment (dsp/alignment.py,
dsp/kernel_alignment.py): what the mutation check of docs/MUTATION.md (session 13) found
untested.

Windows are built from the definition, as in tests/test_alignment.py (working rate: a delay
``f`` multiplies subcarrier ``k`` by ``exp(-j 2 pi k f / N)``) and tests/test_kernel_alignment.py
(capture rate: a periodic band-limited symbol evaluated at every 62.5 MS/s sample).  Each test
names the mutants it is for; the bounds are those files' (derived there) unless a comment says.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from captures.format import complex_to_ci16
from dsp.alignment import SLOPE_STEP, LevelAlignment, PolynomialAlignment, SumPart
from dsp.kernel_alignment import KernelAlignment
from dsp.references import guard_probe, symbol_from_cfr
from dsp.sc16 import sc16_to_complex64
from dsp.tracking import DelayBasis
from dsp.waveform import WaveformConfig, get_profile
from dsp.windows import DirectWindows, ResamplingBuffer, join_blocks
from tests.test_kernel_alignment import CFO_HZ, FS, signal_from_spec

WF = WaveformConfig()
K = WF.active_subcarriers
N = WF.fft_size
W_MAX = 2 * np.pi * WF.subcarrier_max / N

X4 = get_profile("x410-62m5")
FS4 = FS  # the shared signal (tests/test_kernel_alignment.py) is written at these
UP, DOWN = X4.resample_ratio.numerator, X4.resample_ratio.denominator
K4 = X4.active_subcarriers
CFO4 = CFO_HZ
W_MAX4 = 2 * np.pi * (np.max(np.abs(K4)) / N + CFO4 / FS4)


def _channel(rng: np.random.Generator, k: np.ndarray = K, k_max: int | None = None) -> np.ndarray:
    """A three-path CFR on subcarriers ``k``, zero beyond ``|k| > k_max`` when given."""
    d = rng.uniform(0, 40, 3)
    a = rng.normal(size=3) + 1j * rng.normal(size=3)
    h = (a[None, :] * np.exp(-2j * np.pi * np.outer(k, d) / N)).sum(axis=1)
    return h if k_max is None else np.where(np.abs(k) <= k_max, h, 0)


def _delayed(h: np.ndarray, f: float, cfo_hz: float) -> np.ndarray:
    return symbol_from_cfr(WF, h * np.exp(-2j * np.pi * K * f / N), cfo_hz)


def _block(wins: np.ndarray, cuts: list[int]) -> DirectWindows:
    """Windows ``[window, N]`` (or int16 ``[window, N, 2]``) as one channel in pieces at ``cuts``."""
    edges = [0, *cuts, len(wins)]
    return DirectWindows([wins[None, a:b] for a, b in itertools.pairwise(edges) if b > a])


def _level_setup(seed: int, k_max: int | None = None, levels: int = 16):
    rng = np.random.default_rng(seed)
    h, cfo = _channel(rng, k_max=k_max), 700.0
    align = LevelAlignment(WF, levels)
    ref = symbol_from_cfr(WF, h, cfo)
    cols = align.install(ref, cfo, guard_probe(WF, cfo), slope=True)
    curv = DelayBasis(WF).curvature(ref, cfo)
    return rng, h, cfo, align, ref, cols, curv


# ---------------------------------------------------------------- delay levels (working rate)


def test_level_projection_of_int16_pairs_is_that_of_their_conversion():
    """Int16 windows take their own one-pass path (``_project_pairs``): the tag samples, the
    probe and the timing error equal those of the same samples converted to complex64, with and
    without a timing error asked for; a block of int16 and complex64 pieces takes the general
    path; columns with a slope but no curvature give no timing error.  Tolerances as
    tests/test_kernel_alignment.py's int16 test (float32 sums in another order: 1e-5 relative;
    the probe sees noise 40 dB down: 1e-3 of its size).  Mutants 81-94 (``_project_pairs``, the
    dispatch on ``block.pairs``, ``curvature is None or``)."""
    rng, h, cfo, align, _, cols, curv = _level_setup(21)
    count = 64
    f = np.linspace(-0.45, 0.45, count)
    wins = np.array([_delayed(h, x + 0.03, cfo) for x in f])
    wins = 0.5 * wins / np.abs(wins).max()
    wins = wins + 0.005 * (rng.standard_normal(wins.shape) + 1j * rng.standard_normal(wins.shape))
    pairs = complex_to_ci16(wins)  # [window, N, 2]
    conv = sc16_to_complex64(pairs)  # [window, N]: the same values as complex64
    blocks = {
        "pairs": _block(pairs, [17, 40]),
        "complex": _block(conv, [17, 40]),
        "mixed": DirectWindows([pairs[None, :17], conv[None, 17:40], pairs[None, 40:]]),
    }
    for c in (None, curv):
        got = {name: align.project(b, 0, cols, f, c) for name, b in blocks.items()}
        z, probe, err = got["complex"]
        for name in ("pairs", "mixed"):
            z_p, probe_p, err_p = got[name]
            np.testing.assert_allclose(z_p, z, rtol=1e-5, atol=1e-5 * np.abs(z).max())
            np.testing.assert_allclose(probe_p, probe, rtol=1e-3, atol=1e-3 * np.abs(probe).max())
            if c is None:
                assert err is None and err_p is None
            else:
                assert err_p == pytest.approx(err, rel=1e-4, abs=1e-6)
        assert (err is None) == (c is None)


def test_column0_is_the_projection_column_at_zero_delay():
    """``column0`` (called on the instance, as the receiver does) projects the reference itself
    to 1: the middle level exactly (complex64 rounding, 1e-5), the polynomial's constant column
    within its fit error, the kernel alignment's single column.  Mutants: ``@staticmethod``
    removed, ``shape[1] // 2``, ``/ 2``, ``// 3`` (levels), ``cols[:, 1]`` (polynomial)."""
    _, _, cfo, align, ref, cols, _ = _level_setup(22)
    r = ref.astype(np.complex64)
    assert align.f_levels[align.levels // 2] == 0.0
    np.testing.assert_array_equal(align.column0(cols), cols.table[align.levels // 2])
    assert abs(r @ align.column0(cols) - 1) < 1e-5
    basis = DelayBasis(WF)
    pa = PolynomialAlignment(basis)
    assert (
        abs(r @ pa.column0(pa.install(ref, cfo, guard_probe(WF, cfo), slope=False)) - 1)
        <= basis.fit_error + 1e-5
    )
    buf = ResamplingBuffer(N, UP, DOWN)
    ka = KernelAlignment(X4, buf)
    ref4 = symbol_from_cfr(X4, _channel(np.random.default_rng(23), K4), CFO4)
    kcols = ka.install(ref4, CFO4, guard_probe(X4, CFO4), slope=True)
    np.testing.assert_array_equal(ka.column0(kcols), kcols.column)
    assert abs(ref4.astype(np.complex64) @ ka.column0(kcols) - 1) < 1e-5


def _weighted_windows(h, cfo, count):
    """Gains and timing errors that tell the weighting apart: slope windows (every
    ``SLOPE_STEP``-th) ``j`` with ``j % 5 == 0`` have gain 2 and error -0.04, the other slope
    windows gain 1 and error +0.04: the power-weighted mean is 0 (4 x 4 x -0.04 + 16 x 0.04, over
    slope windows j = 0..19); windows between them have gain 1 and error +0.3 (unread).  With
    ``|z|**3`` weights the mean is (16 x 0.04 - 32 x 0.04) / 48 = -0.0133; with every 5th window
    read, other windows' errors enter."""
    f = np.linspace(-0.45, 0.45, count)
    err = np.full(count, 0.3)
    gain = np.ones(count)
    j = np.arange(0, count, SLOPE_STEP) // SLOPE_STEP
    err[::SLOPE_STEP] = np.where(j % 5 == 0, -0.04, 0.04)
    gain[::SLOPE_STEP] = np.where(j % 5 == 0, 2.0, 1.0)
    wins = np.array([g * _delayed(h, x + e, cfo) for x, e, g in zip(f, err, gain, strict=True)])
    p = gain[::SLOPE_STEP] ** 2
    want = float(p @ err[::SLOPE_STEP]) / float(p.sum())
    return f, wins.astype(np.complex64), want


def test_the_level_timing_error_is_the_power_weighted_mean_over_every_slope_step_th_window():
    """The timing error is ``sum |z|**2 e / sum |z|**2`` over windows 0, 4, 8, ... (the module
    docstring: the slope on every 4th window), within the bound of
    tests/test_alignment.py::test_timing_error_is_measured_off_the_levels (relative error
    ``(w_max e_total)**2`` of the linear detector, ``e_total = |e| + 1/(2L)``; its 2e-3 as
    well).  Mutants: ``power = |z|**3``, ``SLOPE_STEP = 5``."""
    _, h, cfo, align, _, cols, curv = _level_setup(24)
    count = 80
    f, wins, want = _weighted_windows(h, cfo, count)
    assert want == pytest.approx(0.0, abs=1e-12)
    _, _, est = align.project(_block(wins, [33]), 0, cols, f, curv)
    e_total = 0.04 + 0.5 / 16
    bound = (W_MAX * e_total) ** 2 * e_total + 2e-3
    assert est == pytest.approx(want, abs=bound)
    assert bound < 0.0133 / 2  # the |z|**3 weighting is seen


def test_timing_error_guards_and_scale():
    """No signal (all-zero windows) or no curvature: the error is 0.0 (the guard, no division);
    windows a thousand times weaker (``sum |z|**2`` below 1) give the same error (a ratio of
    powers: float32 rounding, 1e-4); a reference on the inner subcarriers only (curvature 0.26,
    below 1) still measures its error (bound as above, with ``w`` the inner band's).  Mutants
    of ``if weight <= 0 or curvature <= 0: return 0.0`` (levels and kernel alignment)."""
    _, h, cfo, align, _, cols, curv = _level_setup(25)
    count = 64
    f = np.linspace(-0.45, 0.45, count)
    wins = np.array([_delayed(h, x + 0.05, cfo) for x in f]).astype(np.complex64)
    block = _block(wins, [20])
    _, _, est = align.project(block, 0, cols, f, curv)
    _, _, weak = align.project(_block(wins * np.float32(1e-3), [20]), 0, cols, f, curv)
    assert weak == pytest.approx(est, rel=1e-4, abs=1e-7)
    e_total = 0.05 + 0.5 / 16
    assert est == pytest.approx(0.05, abs=(W_MAX * e_total) ** 2 * e_total + 2e-3)
    assert align.project(_block(np.zeros_like(wins), [20]), 0, cols, f, curv)[2] == 0.0
    assert align.project(block, 0, cols, f, 0.0)[2] == 0.0
    # inner band: |k| <= 150 subcarriers, w_inner = 2 pi 150 / N
    _, h_in, cfo, align, _, cols_in, curv_in = _level_setup(26, k_max=150)
    assert curv_in < 1
    wins_in = np.array([_delayed(h_in, x + 0.05, cfo) for x in f]).astype(np.complex64)
    _, _, est_in = align.project(_block(wins_in, []), 0, cols_in, f, curv_in)
    w_in = 2 * np.pi * 150 / N
    assert est_in == pytest.approx(0.05, abs=(w_in * e_total) ** 2 * e_total + 2e-3)
    # the kernel alignment's guard: the same rule
    ka, buf, start, kcols, kcurv = _kernel_setup(27, 40, 8)[3:8]
    kblock = buf.block(start, 40)
    assert ka.project(kblock, 0, kcols, np.full(40, 0.37), 0.0)[2] == 0.0
    zero = ResamplingBuffer(N, UP, DOWN)
    zero.push(np.zeros((1, int(52 * N * DOWN / UP)), np.complex64))
    assert ka.project(zero.block(start, 40), 0, kcols, np.full(40, 0.37), kcurv)[2] == 0.0
    weak4 = ResamplingBuffer(N, UP, DOWN)
    weak4.push(buf._q.chunks[0] * np.float32(1e-3))
    f4 = np.full(40, 0.32)
    _, _, e_unit = ka.project(kblock, 0, kcols, f4, kcurv)
    _, _, e_weak = ka.project(weak4.block(start, 40), 0, kcols, f4, kcurv)
    assert e_weak == pytest.approx(e_unit, rel=1e-4, abs=1e-7)
    assert e_unit == pytest.approx(0.05, abs=2.5e-3)
    # inner band at the capture rate too (bound of tests/test_kernel_alignment.py's timing test)
    _, _, _, ka_in, buf_in, start, kcols_in, kcurv_in = _kernel_setup(35, 40, 8, k_max=150)[:8]
    assert kcurv_in < 1
    e_in = ka_in.project(buf_in.block(start, 40), 0, kcols_in, f4, kcurv_in)[2]
    assert e_in == pytest.approx(0.05, abs=2.5e-3)


def test_level_sums_over_a_revisited_level_one_level_and_small_weights():
    """A level visited by two runs (delays 0.1, 0.3, 0.1 in runs of 40) sums both (BLAS runs
    equal the compiled loop, float32 rounding 1e-5 as in tests/test_alignment.py); windows all
    at one delay ``f0`` (one level, its mean delay ``f0``: re-aligned exactly) with weights 1e-3
    sum to ``sum w`` times the reference (1e-5 relative: float32 rounding).  Mutants:
    ``acc[lev] = ...`` for ``+=``, ``mass > 1``, ``used.size == 1``."""
    import dsp.alignment as alignment

    rng, h, cfo, align, ref, _, _ = _level_setup(28)
    f = np.repeat([0.1, 0.3, 0.1], 40)
    wins = np.array([_delayed(h, x, cfo) for x in f]).astype(np.complex64)
    block = _block(wins, [50])
    w = np.exp(2j * np.pi * rng.random(f.size))
    parts = [SumPart(block, 0, 0, f.size, w, f)]
    got = {}
    for short_runs in (1, 10**9):
        alignment.SHORT_RUNS = short_runs
        try:
            got[short_runs] = align.window_sum(parts, cfo)
        finally:
            alignment.SHORT_RUNS = 32
    np.testing.assert_allclose(got[1], got[10**9], rtol=1e-5, atol=1e-5 * np.abs(got[1]).max())
    f0 = np.full(60, 0.2)
    wins0 = np.array([_delayed(h, 0.2, cfo)] * 60).astype(np.complex64)
    w0 = 1e-3 * np.exp(2j * np.pi * rng.random(60))
    total = align.window_sum([SumPart(_block(wins0, [25]), 0, 0, 60, w0, f0)], cfo)
    want = w0.sum() * ref
    assert np.linalg.norm(total - want) <= 1e-5 * np.abs(w0).sum() * np.linalg.norm(ref)


def test_polynomial_projection_recovers_the_gain():
    """``PolynomialAlignment.project``'s tag samples: ``c`` for ``c`` times the reference delayed
    by ``f``, within the polynomial's fit error (``|z - c| <= |c| fit_error``: the fit's
    per-subcarrier error weighted by the normalised reference power, which sums to one) plus
    complex64 rounding.  Mutants: ``zp / powers``, ``z = None``."""
    rng, h, cfo, _, ref, _, _ = _level_setup(29)
    basis = DelayBasis(WF)
    pa = PolynomialAlignment(basis)
    pcols = pa.install(ref, cfo, guard_probe(WF, cfo), slope=False)
    f = np.array([-0.5, -0.31, 0.0, 0.12, 0.5])
    c = rng.normal(size=f.size) + 1j * rng.normal(size=f.size)
    wins = np.array([g * _delayed(h, x, cfo) for g, x in zip(c, f, strict=True)]).astype(np.complex64)
    z, _, err = pa.project(_block(wins, [2]), 0, pcols, f)
    assert err is None
    assert np.all(np.abs(z - c) <= np.abs(c) * (basis.fit_error + 1e-5))


def test_refusals_say_what_is_wrong():
    """The whole messages (mutants ``"XX...XX"``); one kernel level is accepted (the config
    allows ``kernel_levels`` 1 to 256: mutants ``levels <= 1``, ``< 2``)."""
    with pytest.raises(ValueError, match=r"^delay levels must be an even number >= 2, got 7$"):
        LevelAlignment(WF, 7)
    buf = ResamplingBuffer(N, UP, DOWN)
    with pytest.raises(ValueError, match=r"^kernel levels must be at least 1, got 0$"):
        KernelAlignment(X4, buf, 0)
    KernelAlignment(X4, buf, 1)
    buf.push(np.zeros((1, 40 * N), np.complex64))
    resampled = buf.block(buf.first_index(), 4)
    align = LevelAlignment(WF, 4)
    cols = align.install(np.ones(N, np.complex64), 0.0, guard_probe(WF, 0.0), slope=False)
    msg = r"^level alignment needs windows at the working rate \(DirectWindows\)$"
    with pytest.raises(TypeError, match=msg):
        align.project(resampled, 0, cols, np.zeros(4))
    ka = KernelAlignment(X4, buf)
    kcols = ka.install(np.ones(N, np.complex64), 0.0, guard_probe(X4, 0.0), slope=False)
    msg = r"^kernel alignment needs resampled windows \(input at a capture rate\)$"
    with pytest.raises(TypeError, match=msg):
        ka.project(DirectWindows([np.zeros((1, 2, N), np.complex64)]), 0, kcols, np.zeros(2))


# ---------------------------------------------------------------- kernel alignment (capture rate)


def _capture(rng, d0: float, capture_samples: int, step_at: float | None = None, k_max: int | None = None):
    """``(x_at, x)`` as tests/test_kernel_alignment.py ``_signal``; with ``step_at`` (working
    samples) the capture samples from there on are doubled (``x_at`` gives the unit signal)."""
    h = _channel(rng, K4, k_max)
    spec = h * np.exp(-2j * np.pi * K4 * d0 / N) / np.sqrt(N)
    x_at, x = signal_from_spec(spec, capture_samples)
    if step_at is not None:
        x[np.arange(capture_samples) * UP / DOWN >= step_at] *= 2
    return x_at, x.astype(np.complex64)


def _kernel_setup(
    seed: int, count: int, levels: int, step_window: int | None = None, k_max: int | None = None
):
    """Windows from ``start`` hold the symbol 0.37 samples late (tests/test_kernel_alignment.py);
    with ``step_window`` the input doubles in the middle of that window; with ``k_max`` the
    channel is zero beyond that subcarrier."""
    rng = np.random.default_rng(seed)
    buf = ResamplingBuffer(N, UP, DOWN)
    start = buf.first_index() + 3
    d0 = start + 4 * N + 0.37
    step_at = None if step_window is None else start + N * step_window + N / 2
    x_at, x = _capture(rng, d0, int((count + 12) * N * DOWN / UP), step_at, k_max)
    buf.push(x[None, :])
    ka = KernelAlignment(X4, buf, levels)
    reference = x_at(d0)[0].astype(np.complex64)
    cols = ka.install(reference, CFO4, guard_probe(X4, CFO4), slope=True)
    curv = DelayBasis(X4, 4).curvature(reference, CFO4)
    return rng, x_at, x, ka, buf, start, cols, curv, reference


def test_kernel_tag_samples_are_the_same_with_or_without_the_timing_error():
    """The CFO counter-rotation of the tag samples (``cis(-2 pi nu e / fs)``, written twice:
    with and without the slope products) gives the same tag samples either way, by the BLAS
    groups and by the compiled loops (float32: 1e-6 relative; the rotation is 3e-4 rad at
    ``e = 0.5``, so any change to it is seen), for complex64 and int16 input.  Mutants of both
    rotation lines (15), and the paths without a slope (``j_slope`` of one window,
    ``SLOPE_STEP if want_slope else 1``)."""
    import dsp.kernel_alignment as kernel_alignment

    count = 120
    rng, _, x, ka, buf, start, cols, curv, _ = _kernel_setup(31, count, 8)
    pairs_buf = ResamplingBuffer(N, UP, DOWN)
    pairs_buf.push(complex_to_ci16((0.5 * x / np.abs(x).max())[None, :]))
    ref_buf = ResamplingBuffer(N, UP, DOWN)
    ref_buf.push(sc16_to_complex64(pairs_buf._q.chunks[0]))
    f = np.clip(0.37 + np.linspace(-0.3, 0.3, count) + 0.02 * rng.standard_normal(count), -0.5, 0.5)
    for b in (buf, pairs_buf, ref_buf):
        block = b.block(start, count)
        for short_runs in (1, 10**9):
            kernel_alignment.SHORT_RUNS = short_runs
            try:
                z0, p0, e0 = ka.project(block, 0, cols, f)
                z1, p1, e1 = ka.project(block, 0, cols, f, curv)
            finally:
                kernel_alignment.SHORT_RUNS = 32
            assert e0 is None and e1 is not None
            np.testing.assert_allclose(z0, z1, rtol=1e-6, atol=1e-6 * np.abs(z1).max())
            np.testing.assert_array_equal(p0, p1)
    # int16 pairs without a timing error: as their conversion (1e-5, tests/test_kernel_alignment.py)
    zp = ka.project(pairs_buf.block(start, count), 0, cols, f)[0]
    zc = ka.project(ref_buf.block(start, count), 0, cols, f)[0]
    np.testing.assert_allclose(zp, zc, rtol=1e-5, atol=1e-5 * np.abs(zc).max())


def test_kernel_timing_error_is_power_weighted():
    """Input doubled from the middle of window 126 (not a slope window: 126 % 4 = 2): slope
    windows 0..124 (32) have power 1 and model delay 0.42 (error -0.05), 128..156 (8) power 4
    and model 0.32 (error +0.05): the power-weighted mean is (32 x -0.05 + 32 x 0.05) / 64 = 0,
    the ``|z|**3``-weighted (32 x -0.05 + 64 x 0.05) / 96 = +0.0167.  Bound 2.5e-3 as
    tests/test_kernel_alignment.py's timing test.  Mutant: ``power = |z|**3``."""
    count = 160
    _, _, _, ka, buf, start, cols, curv, _ = _kernel_setup(32, count, 8, step_window=126)
    f = np.where(np.arange(count) < 127, 0.42, 0.32)
    _, _, err = ka.project(buf.block(start, count), 0, cols, f, curv)
    assert err == pytest.approx(0.0, abs=2.5e-3)


def _coherent(rng, x_at, start, positions, f):
    """Weights that sum windows at ``positions`` (read at ``f``) coherently, and the exact sum."""
    y = x_at(positions + f)
    rot = np.exp(-2j * np.pi * CFO4 * f / FS4)
    w = np.exp(-2j * np.pi * CFO4 * positions / FS4) * np.conj(rot) * (1 + 0.1 * rng.standard_normal(f.size))
    return w, y, rot


def test_kernel_sums_over_composite_blocks_short_parts_and_int16_pairs():
    """Window sums over a block re-centred one sample later (two parts), with parts starting
    inside the first part, inside the second and lying in the second only, and parts of one to
    four windows (fewer than the three phases): each against the exact sum within
    tests/test_kernel_alignment.py's bound ``((w_max eps)**2 / 6 + 1e-3)`` (the first order
    cancels for coherent windows); the same on int16 pairs against their conversion (1e-5).
    Mutants: the index arithmetic of ``window_sum`` and ``_sum_pairs`` for a second part
    (``lo + first``, ``hi + p.a``, ...), ``continue`` to ``break`` (an empty phase, a part not
    overlapped, an int16 part), ``mass >= 0``, ``used.size == 1``."""
    count, levels = 60, 8
    rng, x_at, x, ka, buf, start, _, _, _ = _kernel_setup(33, count, levels)
    later = start + 25 * N + 1
    pos = np.concatenate([start + N * np.arange(25), later + N * np.arange(count - 25)]).astype(float)
    # model delays: the symbol is 0.37 late in the first part's windows, 0.37 - 1 in the second's
    f = np.where(np.arange(count) < 25, 0.37, -0.63) + 0.02 * rng.standard_normal(count)
    w, y, rot = _coherent(rng, x_at, start, pos, f)
    pairs_buf = ResamplingBuffer(N, UP, DOWN)
    for a in range(0, x.size, 40_009):  # chunks: runs and straddling frames
        pairs_buf.push(complex_to_ci16((0.5 * x[a : a + 40_009] / np.abs(x).max())[None, :]))
    conv_buf = ResamplingBuffer(N, UP, DOWN)
    for ch in pairs_buf._q.chunks:
        conv_buf.push(sc16_to_complex64(ch))
    blocks = {
        name: join_blocks([b.block(start, 25), b.block(later, count - 25)])
        for name, b in (("complex", buf), ("pairs", pairs_buf), ("conv", conv_buf))
    }
    eps = UP / (2 * levels * DOWN)
    bound = (W_MAX4 * eps) ** 2 / 6 + 1e-3
    spans = [
        [(3, 40)],
        [(10, 20), (20, 50)],
        [(30, 58)],
        [(26, 27)],
        [(27, 29)],
        [(1, 2), (4, 8)],
        [(24, 26)],
    ]
    for span in spans:
        parts = {name: [SumPart(b, 0, a, e, w[a:e], f[a:e]) for a, e in span] for name, b in blocks.items()}
        s = ka.window_sum(parts["complex"], CFO4)
        idx = np.concatenate([np.arange(a, e) for a, e in span])
        s_exact = (w[idx] * rot[idx]) @ y[idx]
        assert np.linalg.norm(s - s_exact) <= bound * np.linalg.norm(s_exact), span
        s_p = ka.window_sum(parts["pairs"], CFO4)
        s_c = ka.window_sum(parts["conv"], CFO4)
        np.testing.assert_allclose(s_p, s_c, rtol=1e-5, atol=1e-5 * np.abs(s_c).max())
    # the tag samples of the composite int16 block, as their conversion
    zp = ka.project(
        blocks["pairs"], 0, ka.install(y[0].astype(np.complex64), CFO4, guard_probe(X4, CFO4), False), f
    )
    zc = ka.project(
        blocks["conv"], 0, ka.install(y[0].astype(np.complex64), CFO4, guard_probe(X4, CFO4), False), f
    )
    np.testing.assert_allclose(zp[0], zc[0], rtol=1e-5, atol=1e-5 * np.abs(zc[0]).max())


def test_one_kernel_level_reads_within_its_bound():
    """One kernel level (``Q = 1``: windows read to the nearest capture sample, ``eps = U / 2D``)
    projects within tests/test_kernel_alignment.py's bound ``(w_max eps + 2e-3) |y| |q|``."""
    count = 40
    rng, x_at, _, ka, buf, start, cols, _, _ = _kernel_setup(34, count, 1)
    f = np.clip(np.linspace(-0.5, 0.5, count) + 0.03 * rng.standard_normal(count), -0.5, 0.5)
    block = buf.block(start, count)
    z, _, _ = ka.project(block, 0, cols, f)
    y = x_at(start + N * np.arange(count) + f)
    rot = np.exp(-2j * np.pi * CFO4 * f / FS4)
    z_exact = (y @ cols.column) * rot
    eps = UP / (2 * DOWN)
    bound = (W_MAX4 * eps + 2e-3) * np.linalg.norm(y, axis=1) * np.linalg.norm(cols.column)
    assert np.all(np.abs(z - z_exact) <= bound)
    # and sums coherent windows within tests/test_kernel_alignment.py's bound for sums
    w, y, rot = _coherent(rng, x_at, start, start + N * np.arange(count, dtype=float), np.full(count, 0.37))
    s = ka.window_sum([SumPart(block, 0, 0, count, w, np.full(count, 0.37))], CFO4)
    s_exact = (w * rot) @ y
    assert np.linalg.norm(s - s_exact) <= ((W_MAX4 * eps) ** 2 / 6 + 1e-3) * np.linalg.norm(s_exact)


def test_a_stream_of_int16_and_complex64_chunks_is_read_as_its_conversion():
    """Chunks of int16 pairs and of complex64 in one stream (the chunk list keeps both; a frame
    straddling the two kinds is converted): the int16 runs are read in place through the
    per-phase path (``_frames``' int16 form, the weights scaled by ``SC16_SCALE``), and the tag
    samples, timing error and window sums equal those of the stream converted to complex64
    (float32 rounding: 1e-5 relative, 1e-4 for the error, as tests/test_kernel_alignment.py).
    Mutants: ``reshape(+1)`` of the int16 frames, ``w / scale``."""
    count = 120
    rng, _, x, ka, _, start, cols, curv, _ = _kernel_setup(36, count, 8)
    pairs = complex_to_ci16((0.5 * x / np.abs(x).max())[None, :])
    conv = sc16_to_complex64(pairs)
    mixed, plain = ResamplingBuffer(N, UP, DOWN), ResamplingBuffer(N, UP, DOWN)
    cuts = [0, 60_011, 150_017, x.size]
    for i, (a, b) in enumerate(itertools.pairwise(cuts)):
        mixed.push(conv[:, a:b] if i == 1 else pairs[:, a:b])
        plain.push(conv[:, a:b])
    f = np.clip(0.37 + 0.02 * rng.standard_normal(count), -0.5, 0.5)
    w = np.exp(2j * np.pi * rng.random(count))
    got = {}
    for name, b in (("mixed", mixed), ("plain", plain)):
        block = b.block(start, count)
        got[name] = (
            *ka.project(block, 0, cols, f, curv),
            ka.window_sum([SumPart(block, 0, 3, 110, w[3:110], f[3:110])], CFO4),
        )
    assert {r.buf.dtype for r in mixed.block(start, count).runs} == {
        np.dtype(np.int16),
        np.dtype(np.complex64),
    }
    (z_m, _, e_m, s_m), (z, _, e, s) = got["mixed"], got["plain"]
    np.testing.assert_allclose(z_m, z, rtol=1e-5, atol=1e-5 * np.abs(z).max())
    assert e_m == pytest.approx(e, rel=1e-4, abs=1e-6)
    np.testing.assert_allclose(s_m, s, rtol=1e-5, atol=1e-5 * np.abs(s).max())
