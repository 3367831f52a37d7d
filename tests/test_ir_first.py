"""IR First and its interpolated variant (dsp/ranging/ir_first.py, eq. (80)-(83)) on CFRs built
here from the definition ``H[k] = sum_l g_l exp(-j 2 pi f_k tau_l)`` (SYSTEM.md section 7), the
CIR computed here as ``h(tau_q) = sum_k H[k] exp(j 2 pi f_k tau_q)`` on the grid ``tau_q = q
step``.  About 1 s in all."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.ranging.ir_first import IRFirst, IRFirstInterp, IRFirstInterpParams, IRFirstParams, first_peak_index
from dsp.waveform import WaveformConfig
from tests.oracle.bound import single_path_crlb_s2

WF = WaveformConfig()
F = WF.active_freqs_hz
STEP = WF.cir_grid_step_s  # 8.1 ns, 2.44 m
RES = 1 / (F.max() - F.min())  # 41.7 ns: the resolution cell (12.5 m)


def cfr(paths: list[tuple[float, complex]]) -> np.ndarray:
    return sum(g * np.exp(-2j * np.pi * F * tau) for tau, g in paths)


def cir(h: np.ndarray) -> np.ndarray:
    """``h(q step)``; with ``f_k = k df`` and ``step = 1 / (M df)`` the sum is an inverse DFT of
    size ``M`` with ``H[k]`` on bin ``k mod M`` (times ``M``)."""
    m = WF.cir_fft_size
    full = np.zeros(m, complex)
    full[np.mod(np.round(F / WF.subcarrier_spacing_hz).astype(int), m)] = h
    return np.fft.ifft(full) * m


def test_first_peak_index_by_hand():
    """The first local maximum (a plateau counts at its last sample) at or above ``threshold *
    max``, the ends wrapping round; none (a flat array): the maximum's index."""
    m = np.array([0.0, 1.0, 0.2, 5.0, 0.0, 1.5, 0.1])
    assert first_peak_index(m, 0.1) == 1  # 1.0 >= 0.5
    assert first_peak_index(m, 0.2) == 1  # exactly at the level: kept
    assert first_peak_index(m, 0.21) == 3  # 1.0 < 1.05; the next peak is the maximum
    assert first_peak_index(np.array([0.0, 2.0, 2.0, 0.0]), 0.5) == 2
    assert first_peak_index(np.array([3.0, 1.0, 0.0, 2.0]), 0.5) == 0  # wraps: 3 > 2 and 3 > 1
    assert first_peak_index(np.array([1.0, 0.0, 0.0, 1.0]), 0.5) == 0  # the plateau 3, 0 wraps; ends at 0
    assert first_peak_index(np.ones(5), 0.5) == 0
    # a peak at index 0 whose left neighbour (the last sample) is lower, on a falling tail
    # (kills ``np.roll(mag, 2)``, which compares with two samples back: docs/MUTATION.md)
    assert first_peak_index(np.array([5.0, 4.0, 0.0, 0.0, 0.0, 9.0, 1.0]), 0.3) == 0


@pytest.mark.parametrize("q", [0, 3, 250])
def test_a_path_on_the_grid_is_found_at_its_delay(q):
    h = cfr([(q * STEP, 0.7 - 0.2j)])
    assert IRFirst(WF).first_path_delay_s(h, cir(h)) == pytest.approx(q * STEP, abs=1e-15)
    assert IRFirstInterp(WF).first_path_delay_s(h, cir(h)) == pytest.approx(q * STEP, abs=1e-3 * STEP)


def test_the_first_path_above_the_threshold_wins():
    """Two paths three resolution cells apart, the earlier at 0.4 of the later's amplitude: a
    threshold 0.3 takes the earlier, 0.5 the later (their sidelobes on each other stay below
    0.05 of the main lobe at three cells).  The interpolated variant: within STEP / 20 of each
    (the other path's sidelobe pulls the earlier peak by 0.01 step, 2.5 cm, noiseless)."""
    t0, t1 = 40 * STEP, 40 * STEP + 3 * RES
    h = cfr([(t0, 0.4j), (t1, 1.0)])
    c = cir(h)
    assert IRFirst(WF).first_path_delay_s(h, c) == pytest.approx(t0, abs=STEP / 2)
    late = IRFirst(WF, IRFirstParams(threshold=0.5)).first_path_delay_s(h, c)
    assert late == pytest.approx(t1, abs=STEP / 2)
    assert IRFirstInterp(WF).first_path_delay_s(h, c) == pytest.approx(t0, abs=STEP / 20)
    late = IRFirstInterp(WF, IRFirstInterpParams(threshold=0.5)).first_path_delay_s(h, c)
    assert late == pytest.approx(t1, abs=STEP / 20)


@pytest.mark.parametrize("oversample", [4, 16])
def test_the_interpolation_goes_far_below_the_fine_grid(oversample):
    """Noiseless single path at 41 fractional positions of a grid step.  Rounding to the fine
    grid of ``oversample`` points per step would leave up to ``STEP / (2 oversample)`` (7.6 cm at
    16); the parabola through the log-magnitudes (exact for a Gaussian lobe, nearly so for this
    main lobe) must do at least 20 times better, and never err by a whole step."""
    errs = []
    for frac in np.linspace(-0.5, 0.5, 41):
        tau = (100 + frac) * STEP
        h = cfr([(tau, np.exp(1j * frac))])
        got = IRFirstInterp(WF, IRFirstInterpParams(oversample=oversample)).first_path_delay_s(h, cir(h))
        errs.append(got - tau)
    assert np.max(np.abs(errs)) < STEP / (2 * oversample) / 20, np.max(np.abs(errs)) / STEP


def test_interpolated_delay_is_unbiased_with_the_cramer_rao_spread():
    """200 noise draws at 0 dB per subcarrier (one symbol) on a single path between grid points:
    the bound (tests/oracle/bound.py, SYSTEM.md section 7) is ``sigma`` = 3.0 ps.  The sample
    mean must sit within 4.4 standard errors (two-sided 1e-5) of the truth and the sample
    standard deviation within [0.7, 1.6] ``sigma`` (a peak search on a fine grid is the
    maximum-likelihood estimate, efficient here; the chi-square quantiles of 199 degrees of
    freedom at 1e-6 are 0.70 and 1.37, the upper bound widened for the grid's small excess)."""
    rng = np.random.default_rng(3)
    tau = 77.37 * STEP
    h0 = cfr([(tau, 1.0)])
    sigma = np.sqrt(single_path_crlb_s2(F, 1.0, 1))
    m = IRFirstInterp(WF)
    est = []
    for _ in range(200):
        h = h0 + (rng.normal(size=F.size) + 1j * rng.normal(size=F.size)) / np.sqrt(2)
        est.append(m.first_path_delay_s(h, cir(h)))
    est = np.asarray(est) - tau
    assert abs(est.mean()) < 4.4 * sigma / np.sqrt(len(est)), est.mean() / sigma
    assert 0.7 * sigma < est.std(ddof=1) < 1.6 * sigma, est.std(ddof=1) / sigma


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.1, 1.5])
def test_a_threshold_outside_the_open_interval_is_refused(threshold):
    """eta in (0, 1): 0 would take the first noise ripple, 1 only the maximum (docs/MUTATION.md)."""
    with pytest.raises(ValueError, match=r"Params\.threshold = .*: must be in \(0, 1\)$"):
        IRFirstParams(threshold=threshold)
    assert IRFirstParams(threshold=0.001).threshold == 0.001  # the open interval's inside
    assert IRFirstParams(threshold=0.999).threshold == 0.999


def test_oversample_bounds_are_inclusive():
    """oversample in [2, 1024], both ends accepted, the next integers refused naming the field."""
    assert IRFirstInterpParams(oversample=2).oversample == 2
    assert IRFirstInterpParams(oversample=1024).oversample == 1024
    for bad in (1, 1025):
        with pytest.raises(ValueError, match=rf"Params\.oversample = {bad}: must be in \[2, 1024\]$"):
            IRFirstInterpParams(oversample=bad)


def _interp_reference(m: IRFirstInterp, h: np.ndarray) -> float:
    """The interpolated delay computed as before the precomputed offsets: every fine-grid point's
    exponentials evaluated at its own delay."""
    q = first_peak_index(np.abs(cir(h)), m.params.threshold)
    over = m.params.oversample
    taus = (q + np.arange(-over, over + 1) / over) * STEP
    mag = np.abs(np.exp(2j * np.pi * np.outer(taus, F)) @ h)
    i = int(np.clip(np.argmax(mag), 1, 2 * over - 1))
    y0, y1, y2 = np.log(mag[i - 1 : i + 2] + 1e-300)
    den = y0 - 2 * y1 + y2
    frac = 0.5 * (y0 - y2) / den if den < 0 else 0.0
    return float(taus[i] + np.clip(frac, -1, 1) * STEP / over)


@pytest.mark.parametrize("oversample", [2, 16])
def test_precomputed_offsets_give_the_reference_delay(oversample):
    """``exp(j 2 pi f (tau_q + o)) = exp(j 2 pi f tau_q) exp(j 2 pi f o)``: the offsets' factor is
    tabled once.  Phases of up to ``2 pi f_max / df`` (2.5e3 rad) are rounded to ~1e-13 rad either
    way, so the delays agree to ~1e-13 of a step; the test allows 1e-9 of a step (2.4 nm, far
    below the bound of ~cm at 30 dB).  Noisy two-path channels anywhere in the window."""
    rng = np.random.default_rng(12)
    m = IRFirstInterp(WF, IRFirstInterpParams(oversample=oversample))
    for _ in range(20):
        tau = rng.uniform(0.02, 0.97) / WF.subcarrier_spacing_hz
        h = cfr([(tau, 1.0), (tau + rng.uniform(1, 3) * RES, 0.7j)])
        h = h + 0.05 * (rng.standard_normal(F.size) + 1j * rng.standard_normal(F.size))
        assert abs(m.first_path_delay_s(h, cir(h)) - _interp_reference(m, h)) < 1e-9 * STEP
