"""Tag demodulation helpers (dsp/tagdemod.py) against their definitions."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.tagdemod import (
    demodulate,
    detection_statistic,
    overlap_csr,
    overlap_matrix,
    preamble_template,
    preamble_waves,
)


def test_preamble_waves_are_the_preamble_on_each_candidate_s_overlaps():
    rng = np.random.default_rng(3)
    pre = rng.choice([-1.0, 1.0], 13)
    starts = np.arange(40) * 1024 + 7
    cand = 3000.5 + 1024 * np.linspace(-1, 1, 9)
    got = preamble_waves(cand, 2500.25, pre, starts, 1024)
    want = np.array([pre @ overlap_matrix(c, 2500.25, 13, starts, 1024) for c in cand])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


BARKER13 = np.array([1, 1, 1, 1, 1, -1, -1, 1, 1, -1, 1, -1, 1], float)
N = 1024  # window length (default profile's FFT)
PERIOD = 15 * 1024.0  # default profile: 15,360-sample tag symbols (2 kBd at 30.72 MS/s)
FS = 30.72e6


def test_overlap_matrix_is_each_window_s_covered_fraction():
    """Symbols of 1.5 windows starting half a window in, by hand: symbol 0 is [512, 2048), half
    of window 0 and all of window 1; symbol 1 [2048, 3584), all of window 2 and half of 3;
    symbol 2 [3584, 5120), the other half of 3 and all of 4; window 5 holds none.  Several
    starts at once give one matrix per start."""
    starts = np.arange(6) * 1024
    want = np.array([[0.5, 1, 0, 0, 0, 0], [0, 0, 1, 0.5, 0, 0], [0, 0, 0, 0.5, 1, 0]])
    np.testing.assert_array_equal(overlap_matrix(512.0, 1536.0, 3, starts, 1024), want)
    both = overlap_matrix(np.array([512.0, 512.0 + 1024.0]), 1536.0, 3, starts, 1024)
    assert both.shape == (2, 3, 6)
    np.testing.assert_array_equal(both[0], want)
    np.testing.assert_array_equal(both[1], np.roll(want, 1, axis=1))  # one window later


def test_the_template_holds_every_preamble_symbol_s_whole_duration():
    """A packet starting at window 0: each symbol of ``period`` samples covers ``period / n``
    windows in all (a fractional period: 2,500.25 samples), so the all-ones preamble's template
    sums to ``13 period / n`` and the code's to ``sum(code) period / n``; both lie within the
    first ``ceil(13 period / n)`` windows, the rest (if any) is zero."""
    sps = 2500.25
    ones = preamble_template(np.ones(13), sps, N)
    code = preamble_template(BARKER13, sps, N)
    cover = int(np.ceil(13 * sps / N))
    assert ones.sum() == pytest.approx(13 * sps / N, rel=1e-12)
    assert code.sum() == pytest.approx(BARKER13.sum() * sps / N, rel=1e-12)
    assert np.all(ones[:cover] > 0) and not np.any(ones[cover:])
    # window m of the template is the code over [m n, (m + 1) n): the packet starts at sample 0,
    # so window 0 lies wholly in symbol 0; window 12, [12288, 13312), holds 213.25 samples of
    # symbol 4 (+1, ending at 5 x 2500.25 = 12501.25) and 810.75 of symbol 5 (-1)
    assert ones[0] == 1.0 and code[0] == 1.0
    assert code[12] == pytest.approx((213.25 - 810.75) / N, rel=1e-12)


def _statistic_by_definition(z, nv, t):
    """``sum_b abs(sum_i t[i] z[b, m + i])**2 / (nv_b sum t**2)`` for every ``m`` that fits."""
    m_count = z.shape[1] - t.size + 1
    out = np.zeros(max(m_count, 0))
    for m in range(m_count):
        out[m] = sum(
            abs(np.sum(t * z[b, m : m + t.size])) ** 2 / (nv[b] * np.sum(t**2)) for b in range(len(nv))
        )
    return out


def test_the_detection_statistic_is_its_definition_at_every_start_and_at_the_edges():
    """Two bands of different noise variance, an asymmetric template (a correlation, not a
    convolution) and complex samples: the statistic equals the docstring's sum at every start;
    with one sample fewer than the template there is no start, with exactly as many there is one."""
    rng = np.random.default_rng(5)
    t = np.array([0.25, 1.0, -1.0, 0.5, 1.0, 0.0, -0.75])
    nv = np.array([0.5, 2.0])
    z = rng.normal(size=(2, 40)) + 1j * rng.normal(size=(2, 40))
    np.testing.assert_allclose(detection_statistic(z, nv, t), _statistic_by_definition(z, nv, t), rtol=1e-12)
    assert detection_statistic(z[:, : t.size - 1], nv, t).shape == (0,)
    one = detection_statistic(z[:, : t.size], nv, t)
    np.testing.assert_allclose(one, _statistic_by_definition(z[:, : t.size], nv, t), rtol=1e-12)
    assert one.shape == (1,)


def _packet(bits, offset, gains, freqs_hz, nv=None, rng=None):
    """Tag samples ``z[b, m] = g_b exp(j 2 pi f_b t_m) sum_j s_j O[j, m] (+ noise)`` of a packet of
    ``bits`` (+-1) starting ``offset`` samples into window 0, with its overlaps and times."""
    n_win = int(np.ceil((len(bits) * PERIOD + offset) / N))
    starts = np.arange(n_win) * N
    o = overlap_matrix(float(offset), PERIOD, len(bits), starts, N)
    times = (starts + N / 2) / FS
    wave = bits @ o
    z = np.asarray(gains)[:, None] * np.exp(2j * np.pi * np.outer(freqs_hz, times)) * wave
    if nv is not None:
        z = z + np.sqrt(nv[:, None] / 2) * (rng.normal(size=z.shape) + 1j * rng.normal(size=z.shape))
    return z, o, times


def _bits(seed):
    rng = np.random.default_rng(seed)
    return np.concatenate([BARKER13, rng.choice([-1.0, 1.0], 112)])  # 125 tag symbols


def test_residual_frequencies_are_found_below_the_grid_step_and_removed():
    """Noise-free, symbols on window boundaries, residual frequencies +1.3 and -2.71 Hz (off the
    0.25 Hz grid of 33 points over +-4 Hz).  The per-symbol spectrum is then exactly the Dirichlet
    kernel of 125 symbols over T = 62.5 ms, main lobe 1 / T = 16 Hz (64 grid steps): its top is
    ``1 - A d**2 + B d**4`` with ``B / A = (pi T)**2 / 20 = 1.9e-3 Hz**-2``, and a parabola
    through the grid points at +-h around the maximum places the vertex at ``d (1 - (B / A)
    h**2)``, an error of 1.2e-4 of a residual ``d`` that is at most h / 2 = 0.125 Hz: 1.5e-5 Hz,
    less after the second iteration.  Limit 1e-3 Hz.  The gains are then the true ones within the
    phase that error leaves over the packet, ``2 pi 1e-3 Hz 62.5 ms = 4e-4`` (limit 1e-3), and the
    decisions are the bits."""
    bits = _bits(1)
    g = np.array([0.3 * np.exp(0.4j), 1.7 * np.exp(-2.2j)])
    f = np.array([1.3, -2.71])
    z, o, times = _packet(bits, 0, g, f)
    dem = demodulate(z, np.array([1.0, 1.0]), o, BARKER13, times)
    np.testing.assert_allclose(dem.freq_offset_hz, f, rtol=0, atol=1e-3)
    np.testing.assert_allclose(dem.gains, g, rtol=1e-3)
    np.testing.assert_array_equal(dem.decisions, bits)
    # the soft outputs come after the last correction: symbol j's MRC output is sum_b abs(g_b)**2
    # / nv_b times sum_m O[j, m] wave[m] = 15 (whole windows), within the gains' 1e-3 (twice:
    # |g|**2); before any correction the 2.71 Hz band would turn 61 degrees over the packet
    np.testing.assert_allclose(dem.soft, np.sum(np.abs(g) ** 2) * 15 * bits, rtol=2e-3)


def test_sparse_overlaps_demodulate_as_the_dense_ones():
    """The burst search hands ``demodulate`` :func:`overlap_csr`'s sparse matrix: the same
    packet (symbols off the window grid, noise at Eb/N0 about 10 dB, residual frequencies)
    gives the same decisions, and gains, frequencies, soft outputs and SNR equal to rounding
    (the products sum the same nonzero terms in another order: relative 1e-12 is a thousand
    times float64's epsilon over the ~16 terms a symbol)."""
    rng = np.random.default_rng(7)
    bits = _bits(2)
    n, period = 1024, 15.37 * 1024
    starts = np.arange(1900) * n
    t0 = 3.4 * n
    dense = overlap_matrix(t0, period, len(bits), starts, n)
    sparse = overlap_csr(t0, period, len(bits), starts, n)
    g = np.array([0.3 * np.exp(0.4j), 0.2 * np.exp(-2.2j)])
    times = (starts + n / 2) / 30.72e6
    z = g[:, None] * np.exp(2j * np.pi * np.array([[1.1], [-0.6]]) * times) * (bits @ dense)
    z = z + 0.05 * (rng.standard_normal(z.shape) + 1j * rng.standard_normal(z.shape))
    a = demodulate(z, np.array([5e-3, 5e-3]), dense, BARKER13, times)
    b = demodulate(z, np.array([5e-3, 5e-3]), sparse, BARKER13, times)
    np.testing.assert_array_equal(a.decisions, b.decisions)
    for x, y in ((a.gains, b.gains), (a.freq_offset_hz, b.freq_offset_hz), (a.soft, b.soft)):
        np.testing.assert_allclose(y, x, rtol=1e-12, atol=1e-12 * np.max(np.abs(x)))
    np.testing.assert_allclose(b.snr_per_bit, a.snr_per_bit, rtol=1e-12)
    np.testing.assert_array_equal(a.decisions, bits)


def test_without_iterations_the_gains_are_the_preamble_s_least_squares_fit():
    """``iterations = 0``: no frequency search; the gain is the least-squares fit of the samples
    to the preamble's waveform, the true gain for noise-free samples with no residual frequency
    whose preamble windows hold no data (symbols on window boundaries; whatever the level, here
    1e-3), and the data decisions are the signs of the MRC outputs,
    which do not depend on the level either."""
    bits = _bits(5)
    g = np.array([1e-3 * np.exp(2.5j)])
    z, o, times = _packet(bits, 0, g, np.zeros(1))
    dem = demodulate(z, np.array([1.0]), o, BARKER13, times, iterations=0)
    np.testing.assert_allclose(dem.gains, g, rtol=1e-9)
    np.testing.assert_array_equal(dem.freq_offset_hz, 0.0)
    np.testing.assert_array_equal(dem.decisions, bits)


def test_a_residual_next_to_either_end_of_the_grid_is_refined():
    """One iteration (so no second search hides a missing refinement), residuals of -3.8 and
    +3.8 Hz: the largest grid values are at -3.75 and +3.75 Hz, the grid's second and last but one
    points, where the parabola must still refine (its error bound as above: 1.5e-5 Hz; limit
    1e-3 Hz)."""
    known = np.ones(125)
    z, o, times = _packet(known, 0, np.array([1.0, 0.5j]), np.array([-3.8, 3.8]))
    dem = demodulate(z, np.ones(2), o, known, times, iterations=1)
    np.testing.assert_allclose(dem.freq_offset_hz, [-3.8, 3.8], rtol=0, atol=1e-3)


def test_the_search_range_is_max_offset_hz_a_step_when_every_symbol_is_known():
    """CW (the receiver's epochs: every symbol known, the preamble is the whole packet, so no
    decision can flip as the phase turns): a 6.2 Hz residual is found with ``max_offset_hz = 8``
    (grid step 0.5 Hz: the parabola's error ``(B / A) h**2`` of a residual of at most h / 2 is
    1.2e-4 Hz, see above; limit 1e-3 Hz).  With ``max_offset_hz = 2`` each of the two iterations
    removes at most 2 Hz (the grid's end, not refined), so the estimates stop at +-4 Hz."""
    known = np.ones(125)
    z, o, times = _packet(known, 0, np.array([1.0 + 0.5j, -0.3]), np.array([6.2, -6.2]))
    wide = demodulate(z, np.ones(2), o, known, times, max_offset_hz=8.0)
    np.testing.assert_allclose(wide.freq_offset_hz, [6.2, -6.2], rtol=0, atol=1e-3)
    narrow = demodulate(z, np.ones(2), o, known, times, max_offset_hz=2.0)
    np.testing.assert_allclose(narrow.freq_offset_hz, [4.0, -4.0], rtol=0, atol=1e-9)


def test_the_snr_and_soft_outputs_are_the_matched_filter_s_on_fractional_windows():
    """Noise-free, no residual frequency, symbols starting a quarter window in: each symbol covers
    0.75 of one window, 14 whole ones and 0.25 of the next, so ``s1 = sum O = 15`` and ``s2 = sum
    O**2 = 14.625``; the matched filter over a symbol has signal ``abs(g) s1`` and noise variance
    ``nv s2``, so Eb/N0 per band is ``abs(g)**2 s1**2 / (nv s2)``.  The spectrum of real per-symbol
    values is symmetric about 0, so no frequency is removed and the gains are the true ones
    (rounding); the MRC soft output of symbol j is ``sum_b abs(g_b)**2 / nv_b sum_m O[j, m]
    wave[m]``."""
    bits = _bits(3)
    g = np.array([0.8 * np.exp(1.1j), 0.25 * np.exp(-0.3j)])
    nv = np.array([0.5, 2.0])
    z, o, times = _packet(bits, 256, g, np.zeros(2))
    dem = demodulate(z, nv, o, BARKER13, times)
    np.testing.assert_allclose(dem.freq_offset_hz, 0.0, atol=1e-9)
    np.testing.assert_allclose(dem.gains, g, rtol=1e-9)
    np.testing.assert_allclose(dem.snr_per_bit, np.abs(g) ** 2 * 15**2 / (nv * 14.625), rtol=1e-9)
    soft = np.sum(np.abs(g) ** 2 / nv) * (o @ (bits @ o))
    np.testing.assert_allclose(dem.soft, soft, rtol=1e-9)
    np.testing.assert_array_equal(dem.decisions, bits)


def test_the_preamble_s_decisions_are_the_known_symbols_whatever_the_samples_say():
    """The first 13 decisions are the preamble even where its samples carry the opposite symbol
    (here symbols 5 and 6 inverted): their soft outputs say so, their decisions do not."""
    bits = _bits(4)
    sent = bits.copy()
    sent[5:7] *= -1
    z, o, times = _packet(sent, 0, np.array([1.0]), np.zeros(1))
    dem = demodulate(z, np.array([1.0]), o, BARKER13, times)
    assert np.all(np.sign(dem.soft[5:7]) == sent[5:7])
    np.testing.assert_array_equal(dem.decisions, bits)
