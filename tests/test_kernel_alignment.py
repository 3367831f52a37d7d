"""Kernel alignment (dsp/kernel_alignment.py) against the exact reading of capture-rate windows.

The input is written from the definition: a periodic band-limited symbol ``x(tau) = sum_k H_k
exp(j 2 pi k (tau - d0) / N) exp(j 2 pi nu tau / fs)`` (``tau`` in working samples) evaluated at
every 62.5 MS/s sample, so a window read at any working position is known exactly.  The bound:
a window is read at most ``eps = U / (2 Q D)`` working samples off its delay (half a level of
``1/Q`` capture sample, ``Q`` kernel levels), which moves a signal band-limited to ``w_max``
rad/sample by at most ``w_max eps`` of its norm (Bernstein); the kernels are flat to 1e-3 over
the band (dsp/windows.py), counted twice.  So ``|z - z_exact| <= (w_max eps + 2e-3) |y| |q|``
for a projection on ``q``.
"""

from __future__ import annotations

import numpy as np
import pytest

from dsp.alignment import PolynomialAlignment, SumPart
from dsp.kernel_alignment import KernelAlignment
from dsp.references import guard_probe
from dsp.tracking import DelayBasis
from dsp.waveform import get_profile
from dsp.windows import DirectWindows, ResamplingBuffer, join_blocks

WF = get_profile("x410-62m5")
N, FS = WF.fft_size, WF.working_rate_hz
UP, DOWN = WF.resample_ratio.numerator, WF.resample_ratio.denominator
K = WF.active_subcarriers
CFO_HZ = 3100.0
W_MAX = 2 * np.pi * (np.max(np.abs(K)) / N + CFO_HZ / FS)


def _signal(rng: np.random.Generator, d0: float, capture_samples: int):
    """``(x_at, x)`` of a three-path channel delayed by ``d0`` (:func:`signal_from_spec`)."""
    d = rng.uniform(0, 40, 3)
    a = rng.normal(size=3) + 1j * rng.normal(size=3)
    h = (a[None, :] * np.exp(-2j * np.pi * np.outer(K, d) / N)).sum(axis=1)
    spec = h * np.exp(-2j * np.pi * K * d0 / N) / np.sqrt(N)  # [subcarrier] at tau = 0
    x_at, x = signal_from_spec(spec, capture_samples)
    return x_at, x.astype(np.complex64)


def signal_from_spec(spec: np.ndarray, capture_samples: int):
    """``(x_at, x)`` of the symbol with spectrum ``spec`` ``[subcarrier]`` at ``CFO_HZ``: the exact
    windows read at working positions ``pos`` (``x_at(pos)``, ``[window, N]``) and the
    capture-rate samples ``[capture_samples]`` (complex128).  Both by FFT: 6250 capture samples
    hold exactly 3 symbols, subcarrier ``k`` on bin ``3 k``."""

    def x_at(pos: np.ndarray) -> np.ndarray:
        pos = np.atleast_1d(np.asarray(pos, float))
        grid = np.zeros((pos.size, N), complex)
        grid[:, np.mod(K, N)] = spec[None, :] * np.exp(2j * np.pi * np.outer(pos, K) / N)
        tau = pos[:, None] + np.arange(N)
        return np.fft.ifft(grid, axis=1) * N * np.exp(2j * np.pi * CFO_HZ * tau / FS)

    period = 3 * N * DOWN // UP  # 6250
    grid = np.zeros(period, complex)
    grid[np.mod(3 * K, period)] = spec
    one = np.fft.ifft(grid) * period
    c = np.arange(capture_samples)
    return x_at, np.resize(one, capture_samples) * np.exp(2j * np.pi * CFO_HZ * c * UP / DOWN / FS)


def _setup(seed: int, count: int, levels: int):
    rng = np.random.default_rng(seed)
    buf = ResamplingBuffer(N, UP, DOWN)
    start = buf.first_index() + 3
    d0 = start + 4 * N + 0.37  # every window from start holds the symbol 0.37 samples late
    x_at, x = _signal(rng, d0, int((count + 12) * N * DOWN / UP))
    buf.push(x[None, :])
    ka = KernelAlignment(WF, buf, levels)
    reference = x_at(d0)[0].astype(np.complex64)  # the symbol at zero delay
    cols = ka.install(reference, CFO_HZ, guard_probe(WF, CFO_HZ), slope=True)
    return rng, x_at, buf, start, ka, cols, reference, d0


@pytest.mark.parametrize("levels", [4, 8])
def test_projections_match_the_exact_reading_within_the_quantisation_bound(levels):
    count = 240
    rng, x_at, buf, start, ka, cols, _, _ = _setup(1, count, levels)
    block = buf.block(start, count)
    # delays as drift and re-centring make them: a slope through [-1/2, 1/2] plus jitter
    f = np.clip(np.linspace(-0.5, 0.5, count) + 0.03 * rng.standard_normal(count), -0.5, 0.5)
    z, probe, err = ka.project(block, 0, cols, f)
    assert err is None and probe.size == -(-count // 8)
    y = x_at(start + N * np.arange(count) + f)  # [window, N]: each window read exactly at its delay
    z_exact = (y @ cols.column) * np.exp(-2j * np.pi * CFO_HZ * f / FS)
    eps = UP / (2 * levels * DOWN)
    bound = (W_MAX * eps + 2e-3) * np.linalg.norm(y, axis=1) * np.linalg.norm(cols.column)
    assert np.all(np.abs(z - z_exact) <= bound)


@pytest.mark.parametrize("levels", [4, 8])
def test_window_sums_are_re_aligned_by_each_levels_mean_residual(levels):
    """Windows aligned to within +-0.02 samples (as tracking leaves them), summed coherently.
    Reading window ``m`` at ``e_m`` leaves ``r_m = f_m - e_m`` (``|r| <= eps``); re-aligning
    each level by its mean ``r`` cancels the first order, so the relative error is at most
    ``E[(w (r - mean r))**2] / 2 <= (w_max eps)**2 / 6`` plus the kernels' 1e-3 ripple.
    Without the re-alignment the first order stays: 7.8e-3 at 4 levels, above this bound."""
    count = 240
    rng, x_at, buf, start, ka, _, _, _ = _setup(1, count, levels)
    block = buf.block(start, count)
    f = 0.37 + 0.02 * rng.standard_normal(count)
    y = x_at(start + N * np.arange(count) + f)
    rot = np.exp(-2j * np.pi * CFO_HZ * f / FS)
    start_phase = np.exp(-2j * np.pi * CFO_HZ * (start + N * np.arange(count)) / FS)
    w = start_phase * np.conj(rot) * (1 + 0.1 * rng.standard_normal(count))  # coherent weights
    a, b = 17, 203
    s = ka.window_sum([SumPart(block, 0, a, b, w[a:b], f[a:b])], CFO_HZ)
    s_exact = (w[a:b] * rot[a:b]) @ y[a:b]
    assert np.linalg.norm(s_exact) > 0.99 * np.sum(np.abs(w[a:b]) * np.linalg.norm(y[a:b], axis=1))
    eps = UP / (2 * levels * DOWN)
    assert np.linalg.norm(s - s_exact) <= ((W_MAX * eps) ** 2 / 6 + 1e-3) * np.linalg.norm(s_exact)


def test_a_timing_error_is_measured_with_its_sign_and_the_quantisation_removed():
    """Every window holds the symbol 0.23 samples late; the model says 0.28 (0.05 too late) or
    0.18: the error is ``true - model`` to first order in it (the detector is linear for
    errors far below a sample), like the polynomial alignment's on the same windows."""
    count = 160
    _, _, buf, start, ka, cols, reference, d0 = _setup(2, count, 8)
    block = buf.block(start, count)
    f_true = (d0 - start) % N  # the symbol's delay in every window, working samples
    f_true -= N * round(f_true / N)
    assert abs(f_true - 0.37) < 1e-9
    basis = DelayBasis(WF, 4)
    curv = basis.curvature(reference, CFO_HZ)
    pa = PolynomialAlignment(basis)
    pcols = pa.install(reference, CFO_HZ, guard_probe(WF, CFO_HZ), slope=True)
    for model in (f_true + 0.05, f_true - 0.05):
        f = np.full(count, model)
        _, _, err = ka.project(block, 0, cols, f, curv)
        _, _, err_poly = pa.project(block, 0, pcols, f, curv)
        assert err == pytest.approx(f_true - model, abs=2.5e-3)
        assert err == pytest.approx(err_poly, abs=2.5e-3)


def test_compiled_loops_read_every_window_as_the_blas_groups_do(monkeypatch):
    """The two paths of :class:`KernelAlignment` (a BLAS call per group of windows read alike, or
    the compiled loop over every window, dsp/level_kernel.py; ``SHORT_RUNS`` picks one) give
    the same projections, noise probe, timing error and window sum, to float32 rounding."""
    import dsp.kernel_alignment as kernel_alignment

    count = 200
    rng, _, buf, start, ka, cols, reference, _ = _setup(3, count, 8)
    block = buf.block(start, count)
    f = np.clip(np.linspace(-0.5, 0.5, count) + 0.03 * rng.standard_normal(count), -0.5, 0.5)
    curv = DelayBasis(WF, 4).curvature(reference, CFO_HZ)
    w = np.exp(2j * np.pi * rng.random(count))
    parts = [SumPart(block, 0, 5, 150, w[5:150], f[5:150]), SumPart(block, 0, 150, count, w[150:], f[150:])]
    got = {}
    for short_runs in (1, 10**9):  # every group by BLAS; every window by the compiled loop
        monkeypatch.setattr(kernel_alignment, "SHORT_RUNS", short_runs)
        got[short_runs] = (*ka.project(block, 0, cols, f, curv), ka.window_sum(parts, CFO_HZ))
    (z, probe, err, total), (z_c, probe_c, err_c, total_c) = got[1], got[10**9]
    scale = np.abs(z).max()
    np.testing.assert_allclose(z_c, z, rtol=1e-5, atol=1e-5 * scale)
    # the probe (every 8th window's guard band, at its nominal frame through kernel 0) is tiny
    # against the terms summed (the signal is outside the guard band): float32 sums of n terms
    # in two orders differ by at most 2 (n + 2) eps sum |x_j c_j| (the compiled loop reads it
    # in the same pass as the tag sample, BLAS on its own): that bound, not equality
    part = block.parts[0] if hasattr(block, "parts") else block
    pulled = ka._pull(cols, "probe", 0)
    bound = []
    for k in range(probe.size):  # window 8 k of the block: its run, phase and nominal frame
        m = 8 * k
        run = next(r for r in part.runs if r.m0 <= m < r.m0 + r.count)
        i = m - run.m0
        frame = part.frames_at(run, i % part.g, 0, i // part.g, i // part.g + 1, 0)[0]
        terms = np.abs(frame.real) + np.abs(frame.imag)
        bound.append(
            2 * (4 * frame.size + 2) * 2**-24 * 2 * float(terms @ (np.abs(pulled.real) + np.abs(pulled.imag)))
        )
    assert np.all(np.abs(probe_c - probe) <= np.array(bound))
    assert np.abs(probe_c - probe).max() < 0.5 * np.abs(probe).max()  # the bound is not vacuous
    assert err_c == pytest.approx(err, rel=1e-4, abs=1e-6)
    np.testing.assert_allclose(total_c, total, rtol=1e-5, atol=1e-5 * np.abs(total).max())


def test_composite_blocks_and_bad_input():
    """A block re-centred one sample later (two parts) reads each part as that part alone."""
    count = 60
    _, _, buf, start, ka, cols, _, _ = _setup(3, count, 8)
    later = start + 25 * N + 1
    joined = join_blocks([buf.block(start, 25), buf.block(later, count - 25)])
    f = np.linspace(-0.4, 0.4, count)
    z = ka.project(joined, 0, cols, f)[0]
    np.testing.assert_allclose(z[:25], ka.project(buf.block(start, 25), 0, cols, f[:25])[0], rtol=1e-6)
    np.testing.assert_allclose(
        z[25:], ka.project(buf.block(later, count - 25), 0, cols, f[25:])[0], rtol=1e-6
    )
    with pytest.raises(ValueError, match="levels"):
        KernelAlignment(WF, buf, 0)
    with pytest.raises(TypeError, match="resampled"):
        ka.project(DirectWindows([np.zeros((1, 2, N), np.complex64)]), 0, cols, np.zeros(2))


def test_int16_pairs_are_read_in_place_as_their_conversion_is_by_blas(monkeypatch):
    """Input as int16 pairs (what an X410 delivers): the compiled loops read the frames in place
    (dsp/frames_kernel.py, the scale folded into the split columns and the weights); they must
    give what BLAS gives on the same samples converted to complex64, to float32 rounding (the
    bounds of the test above: 1e-5 relative on the tag samples and sums, the timing error to
    1e-4), in chunks that make straddling frames (converted copies) too."""
    import dsp.kernel_alignment as kernel_alignment
    from captures.format import complex_to_ci16
    from dsp.sc16 import sc16_to_complex64

    count = 200
    rng, _, buf, start, ka, cols, reference, _ = _setup(5, count, 8)
    x = buf._q.chunks[0][0]
    x = x / np.abs(x).max() * 0.5
    noise = 0.005 * (rng.standard_normal(x.size) + 1j * rng.standard_normal(x.size))  # the probe's
    pairs = complex_to_ci16((x + noise)[None, :])  # [1, sample, 2] int16
    bufs = {}
    for name, data in (("pairs", pairs), ("complex", sc16_to_complex64(pairs))):
        b = ResamplingBuffer(N, UP, DOWN)
        for a in range(0, data.shape[1], 100_003):  # a frame straddles each cut: a copy
            b.push(data[:, a : a + 100_003])
        bufs[name] = b.block(start, count)
    assert bufs["pairs"].runs[0].buf.dtype == np.int16 and len(bufs["pairs"].runs) > 1
    f = np.clip(np.linspace(-0.5, 0.5, count) + 0.03 * rng.standard_normal(count), -0.5, 0.5)
    curv = DelayBasis(WF, 4).curvature(reference, CFO_HZ)
    w = np.exp(2j * np.pi * rng.random(count))
    got = {}
    for name, short_runs in (("pairs", 1), ("complex", 1)):  # complex: BLAS groups; pairs: compiled
        monkeypatch.setattr(kernel_alignment, "SHORT_RUNS", short_runs)
        block = bufs[name]
        parts = [
            SumPart(block, 0, 5, 150, w[5:150], f[5:150]),
            SumPart(block, 0, 150, count, w[150:], f[150:]),
        ]
        got[name] = (*ka.project(block, 0, cols, f, curv), ka.window_sum(parts, CFO_HZ))
    (z, probe, err, total), (z_c, probe_c, err_c, total_c) = got["complex"], got["pairs"]
    np.testing.assert_allclose(z_c, z, rtol=1e-5, atol=1e-5 * np.abs(z).max())
    # the probe sees the noise (-40 dB of the signal, power 5e-5 against the guard-band leakage
    # of float32 rounding, ~1e-6 of the terms): to 1e-3 of its size
    np.testing.assert_allclose(probe_c, probe, rtol=1e-3, atol=1e-3 * np.abs(probe).max())
    assert err_c == pytest.approx(err, rel=1e-4, abs=1e-6)
    np.testing.assert_allclose(total_c, total, rtol=1e-5, atol=1e-5 * np.abs(total).max())


@pytest.mark.parametrize("frac", [0.0, 0.37, 0.999])
def test_banded_products_equal_the_sparse_matrix_products(frac):
    """The kernels' banded products (dsp/frames_kernel.py) against scipy's: ``K.T @ c`` and
    ``K @ x`` to float32 rounding (each output sums at most ``taps`` = 96 products: within
    ``2 (96 + 2) eps sum |K| |x|``)."""
    from dsp.frames_kernel import band_apply, band_pull, band_pull_cols
    from dsp.windows import _Kernel, band_form, fractional_kernel

    buf = ResamplingBuffer(N, UP, DOWN)
    k = fractional_kernel(buf.half_span + frac, N, buf.ratio, buf.half_span, buf.length)
    vals, base = band_form(k)
    rng = np.random.default_rng(1)
    c = (rng.standard_normal(N) + 1j * rng.standard_normal(N)).astype(np.complex64)
    x = (rng.standard_normal(buf.length) + 1j * rng.standard_normal(buf.length)).astype(np.complex64)
    eps = 2 * (96 + 2) * 2**-24
    pulled = np.empty(buf.length, np.complex64)
    band_pull(vals, base, c.view(np.float32), pulled.view(np.float32))
    ka = abs(k)
    bound = eps * (ka.T @ (np.abs(c.real) + np.abs(c.imag)))
    assert np.all(np.abs(pulled - k.T @ c.astype(complex)) <= bound + 1e-12)
    applied = np.empty(N, np.complex64)
    band_apply(vals, base, x.view(np.float32), applied.view(np.float32))
    bound = eps * (ka @ (np.abs(x.real) + np.abs(x.imag)))
    assert np.all(np.abs(applied - k @ x.astype(complex)) <= bound + 1e-12)
    # several columns at once (acquisition's features, dsp.windows._Kernel.pull): the same bound
    # per column
    cols = (rng.standard_normal((N, 5)) + 1j * rng.standard_normal((N, 5))).astype(np.complex64)
    many = np.full((buf.length, 5), 7 + 7j, np.complex64)  # zeroed by the kernel
    band_pull_cols(vals, base, cols.view(np.float32), many.view(np.float32))
    bound = eps * (ka.T @ (np.abs(cols.real) + np.abs(cols.imag)))
    assert np.all(np.abs(many - k.T @ cols.astype(complex)) <= bound + 1e-12)
    window = _Kernel(k)
    np.testing.assert_array_equal(window.pull(cols), many)
    assert window.pull(cols) is window.pull(cols)  # cached while the columns are the same array
    bad = k.copy()
    bad.indices = bad.indices.copy()
    bad.indices[5] += 1  # a gap in row 0's columns
    with pytest.raises(ValueError, match="consecutive"):
        band_form(bad)
