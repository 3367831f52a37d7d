"""Mutation check, session 13 (docs/MUTATION.md): ``dsp.references`` (and NOMP's Newton kernel).

The fast tests run the references through the alignment, look-back, tag-offset and tracking
tests, which check what a reference projects to but not the guard probe itself: which
subcarriers it occupies, its phases (the seeded draw), its clamps for a smaller FFT, nor that
the cached CFO ramp is read-only.  A probe on other subcarriers or with other phases is another
noise realisation: every noise variance, Eb/N0 and ranging weight moves.  Here the probe's
spectrum is compared with its definition, written out again from the docstring and the
published run (+-410..440; not read from ``GUARD_SUBCARRIERS``, which a mutant changes too).
NOMP's compiled Newton step (``dsp.ranging.nomp_kernels``) is checked for what its fast tests
leave open: the step ``-S' / S''`` does not depend on the scale of ``S``, and none is taken
where ``S`` is not concave.
"""

from __future__ import annotations

import numpy as np
import pytest

from dsp.ranging import get_method
from dsp.references import guard_probe, ramp
from dsp.waveform import WaveformConfig

WF = WaveformConfig()

# The probe is complex64: each part of each sample is rounded by at most 2**-24 of its size, so
# the error vector e has ||e||_2 <= 2**-24 sqrt(2) ||g||_2, and each bin of fft(e) / sqrt(N) is at
# most ||e||_2 (Cauchy-Schwarz).  ||g||_2 = sqrt(number of guard bins) (unit phasors, Parseval):
# at most sqrt(62), so 2**-24 sqrt(2) sqrt(62) = 6.6e-7; the float64 FFT adds ~1e-15.
ATOL = 1e-6


def _expected_spectrum(n: int, ks: np.ndarray) -> np.ndarray:
    """Unit phasors ``exp(j 2 pi u)``, ``u`` the seeded uniform draw, on the subcarriers ``ks``
    (the positive run then its mirror), zero elsewhere."""
    spec = np.zeros(n, complex)
    u = np.random.default_rng(12345).random(ks.size)
    spec[np.mod(ks, n)] = np.cos(2 * np.pi * u) + 1j * np.sin(2 * np.pi * u)
    return spec


def _spectrum(wf: WaveformConfig, cfo_hz: float = 0.0) -> np.ndarray:
    g = guard_probe(wf, cfo_hz).astype(complex)
    if cfo_hz:
        n = np.arange(wf.fft_size)
        g = g * np.exp(-2j * np.pi * cfo_hz * n / wf.working_rate_hz)
    return np.fft.fft(g) / np.sqrt(wf.fft_size)


@pytest.mark.parametrize(
    ("wf", "lo", "hi"),
    [
        (WF, 410, 440),  # the published numerology: subcarriers +-410..440
        # a 512-point FFT: the run is clamped below Nyquist (half - 2, half - 1) = (254, 255)
        (WaveformConfig(fft_size=512, subcarrier_min=-200, subcarrier_max=200), 254, 255),
        # the band reaches the run's start: the run begins one past the band's edge
        (WaveformConfig(subcarrier_max=410), 411, 440),
        # the band past the run's end, on either side: every unused subcarrier up to Nyquist (the
        # probe was empty, a nan noise variance, for +450; half on active subcarriers for -450)
        (WaveformConfig(subcarrier_max=450, tag_shift_hz=50e6), 451, 511),
        (WaveformConfig(subcarrier_min=-450, tag_shift_hz=50e6), 451, 511),
    ],
    ids=["default", "fft512", "band_to_410", "band_to_450", "band_from_-450"],
)
def test_guard_probe_is_the_seeded_unit_phasors_on_the_guard_subcarriers(wf, lo, hi):
    """Kills: the run's ends (411, 441, ``hi - 1``, ``hi + 2`` on either side, the mirror's sign),
    the phases (``3j``, ``/ pi``, ``pi / u``, seed 12346), the clamps (``half + 2``, ``half - 3``,
    ``half + 1``, ``half - 2`` for the end, ``n / 2``: a float index), the band-edge rule
    (``lo < subcarrier_max``, ``subcarrier_max - 1``, ``+ 2``, ``None``)."""
    run = np.arange(lo, hi + 1)
    expected = _expected_spectrum(wf.fft_size, np.concatenate([run, -run]))
    np.testing.assert_allclose(_spectrum(wf), expected, rtol=0, atol=ATOL)
    # the probe is noise only: none of its subcarriers is active
    occupied = np.flatnonzero(np.abs(expected) > 0)
    assert not set(occupied) & set(np.mod(wf.active_subcarriers, wf.fft_size))


@pytest.mark.parametrize(("field", "value"), [("subcarrier_max", 511), ("subcarrier_min", -511)])
def test_a_band_leaving_no_subcarrier_for_the_probe_is_refused_naming_its_edge(field, value):
    """Subcarrier 511 of 1024 is the last below Nyquist: a band to it leaves the probe nothing."""
    with pytest.raises(ValueError, match=rf"^WaveformConfig\.{field} = {value}: leaves no unused subcarrier"):
        WaveformConfig(**{field: value, "tag_shift_hz": 50e6})


def test_guard_probe_carries_the_cfo_ramp():
    """The probe at a CFO is the zero-CFO probe times ``exp(j 2 pi nu n / fs)``: derotated, the
    same spectrum (complex64 rounding of the product: the bound above)."""
    run = np.arange(410, 441)
    expected = _expected_spectrum(WF.fft_size, np.concatenate([run, -run]))
    np.testing.assert_allclose(_spectrum(WF, 2345.6), expected, rtol=0, atol=ATOL)


def test_the_cached_ramp_is_read_only():
    """``ramp`` hands out the cached array itself: were it writable, a caller's in-place product
    would change every later packet's ramp at that CFO.  Kills ``setflags(write=True)``."""
    r = ramp(WF, 1234.5)
    assert not r.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        r *= 2
    assert ramp(WF, 1234.5) is r


def test_the_newton_step_is_independent_of_the_scale_of_the_statistic():
    """``S(w) = sum_b |z_b(w)|**2 / sigma_b**2``: multiplying every ``sigma_b**2`` by ``c`` scales
    ``S'`` and ``S''`` by ``1 / c`` and leaves ``-S' / S''`` alone.  With ``c = 2**40`` every
    intermediate product is scaled by a power of two (no overflow or underflow at these sizes), so
    the refined delay is bit-identical.  Kills ``g2 = 1.0`` for ``g2 = 0.0`` in ``newton_one``: an
    offset of 2 in ``S''``, negligible against ``S''`` at ``sigma**2 = 1`` (about ``2 k_rms**2
    |z|**2``, ~1e11 here) but dominant at ``2**40`` (``S''`` ~0.1: no longer negative, no step).
    Not a published number: a detected path's ``S''`` is never near 2."""
    nomp = get_method("nomp", WF)
    k = WF.active_subcarriers.astype(np.float64)
    w_true = 0.7
    rng = np.random.default_rng(5)
    res = np.stack([g * np.exp(-1j * k * w_true) for g in (1.0 + 0.5j, -0.3 + 0.8j)])
    res = res + 0.01 * (rng.standard_normal(res.shape) + 1j * rng.standard_normal(res.shape))
    var = np.array([1.0, 0.5])
    w0 = w_true + 0.3 * nomp.cell_w
    w = nomp._newton_one(res, var, w0, 3)
    assert abs(w - w_true) < 0.01 * nomp.cell_w  # it moved: a third of a cell to within 1 %
    assert nomp._newton_one(res, var * 2.0**40, w0, 3) == w


def test_no_newton_step_where_the_statistic_is_not_concave():
    """Where ``S'' >= 0`` the kernel takes no step.  A zero residual has ``S = S' = S'' = 0``
    exactly: the delay must come back as it went in (not ``-0 / 0``, nan, nor a clipped unit
    step).  One cell from a single path (the Dirichlet kernel's first null: ``sum_n exp(j k_n
    delta)`` is 0 over the consecutive ``k``, -1 without the DC subcarrier, against 800 at the
    peak): a minimum of ``S``, ``S'' > 0``, likewise.  Kills ``g2 <= 0``, ``g2 < 1`` and
    ``else 1.0`` in the step."""
    nomp = get_method("nomp", WF)
    k = WF.active_subcarriers.astype(np.float64)
    var = np.array([1.0, 1.0])
    zero = np.zeros((2, k.size), complex)
    assert nomp._newton_one(zero, var, 0.4, 3) == 0.4
    w_true = 0.7
    res = np.stack([np.exp(-1j * k * w_true)] * 2)
    w_null = w_true + 2 * np.pi / (k.size + 1)  # + 1: the DC hole
    w = nomp._newton_one(res, var, w_null, 3)
    assert w == np.mod(w_null, 2 * np.pi)
