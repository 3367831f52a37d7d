"""The emulator's compiled kernels against what they replace.

noise_kernel.py: the bits are SplitMix64's, the noise is unit-power circular Gaussian to
float32 rounding of the exact transform, and the fused tail equals the numpy steps.
drift_kernel.py and tag_kernel.py: the same values as the numpy forms they replaced."""

import numpy as np
import pytest
import scipy.stats

from sdr.emulator.drift_kernel import fill_spectra
from sdr.emulator.impairments import ChannelFrontEnd, apply_phase, held_phasors
from sdr.emulator.noise_kernel import fill_complex_gaussian, noise_tail, splitmix64, stream_key
from sdr.emulator.tag_kernel import apply_tag

MASK64 = (1 << 64) - 1


def _splitmix64_reference(seed: int, count: int) -> list[int]:
    """SplitMix64 as published (Steele, Lea, Flood 2014), in Python integers."""
    out, state = [], seed
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        out.append(z ^ (z >> 31))
    return out


@pytest.mark.parametrize("seed", [0, 1234567, MASK64])
def test_bits_are_splitmix64(seed):
    ref = _splitmix64_reference(seed, 5)
    assert [int(splitmix64(np.uint64(seed), i)) for i in range(5)] == ref
    assert [int(stream_key(seed, i)) for i in range(5)] == ref  # the per-stream keys: the same
    if seed == 0:  # the published first output for seed 0
        assert ref[0] == 0xE220A8397B1DCDAF


def _exact(key: int, n: int) -> np.ndarray:
    """The transform in float64 of the same bits: sqrt(-ln((b_hi + 1) / 2**24)) exp(2 pi j b_lo / 2**24)."""
    bits = np.array(_splitmix64_reference(key, n), np.uint64)
    u1 = ((bits >> np.uint64(40)).astype(np.float64) + 1) / 2**24
    phase = (bits & np.uint64(0xFFFFFF)).astype(np.float64) / 2**24
    return np.sqrt(-np.log(u1)) * np.exp(2j * np.pi * phase)


def test_noise_is_the_box_muller_transform_of_its_bits_to_float32_rounding():
    """``|z - z_exact| <= 2e-6``: ``|z| <= sqrt(24 ln 2) = 4.08``; the radius carries a few
    float32 roundings (relative 2.5e-7: the log's terms never cancel, ``(24 - e) ln 2 >= ln 2``
    against ``|ln m| <= ln sqrt 2``) and cos/sin a few (absolute 2.4e-7), so
    ``4.08 * (2.5e-7 + 2.4e-7) = 2e-6``; the polynomials' truncation (< 1e-9) is far below."""
    n = 20_000
    z = np.empty(n, np.complex64)
    fill_complex_gaussian(np.uint64(99), np.float32(1.0), z.view(np.float32))
    np.testing.assert_allclose(z, _exact(99, n), rtol=0, atol=2e-6)


def test_noise_is_unit_power_white_circular_gaussian():
    """E|z|^2 = 1, I and Q independent N(0, 1/2) (KS), |z| within the 24-bit bound, no
    correlation between neighbouring samples or between two keys; the same key, the same
    noise.  Limits: 5 standard deviations of each estimate over ``n`` samples."""
    n = 1 << 18
    z = np.empty(n, np.complex64)
    fill_complex_gaussian(np.uint64(7), np.float32(1.0), z.view(np.float32))
    zz = z.astype(complex)
    assert abs(np.mean(np.abs(zz) ** 2) - 1) < 5 / np.sqrt(n)  # |z|^2 ~ Exp(1): std 1
    tol_var = 5 * 0.5 * np.sqrt(2 / n)
    assert abs(np.var(zz.real) - 0.5) < tol_var and abs(np.var(zz.imag) - 0.5) < tol_var
    assert abs(np.mean(zz.real * zz.imag)) < 5 * 0.5 / np.sqrt(n)
    assert abs(np.mean(zz[1:] * np.conj(zz[:-1]))) < 5 / np.sqrt(n)
    for part in (zz.real, zz.imag):
        assert scipy.stats.kstest(part[:100_000] * np.sqrt(2), "norm").pvalue > 1e-3
    assert np.abs(zz).max() <= np.sqrt(24 * np.log(2)) * (1 + 1e-6)
    other = np.empty(n, np.complex64)
    fill_complex_gaussian(np.uint64(8), np.float32(1.0), other.view(np.float32))
    assert abs(np.mean(zz * np.conj(other.astype(complex)))) < 5 / np.sqrt(n)
    again = np.empty(n, np.complex64)
    fill_complex_gaussian(np.uint64(7), np.float32(1.0), again.view(np.float32))
    np.testing.assert_array_equal(z, again)


def _numpy_tail(x, leak, key, std, phase, decim, fe, q):
    """The numpy steps the kernel replaces, in their order, with the kernel's own noise."""
    y = x + leak
    apply_phase(y, phase, decim)
    noise = np.empty_like(y)
    fill_complex_gaussian(key, std, noise.view(np.float32))
    y += noise
    fe.apply(y)
    if q:
        v = y.view(np.float32)
        v *= q
        np.rint(v, out=v)
        np.clip(v, -q, q, out=v)
        v /= q
    return y


NONE = np.zeros(0, np.float32)  # no extra samples to add
OFF = np.zeros(5, np.float32)  # no IQ imbalance, no DC


@pytest.mark.parametrize("adc", [False, True])
def test_fused_tail_equals_the_numpy_steps(adc):
    """The leak added, then the phase, the noise, the IQ mixer, DC and ADC: the same float32
    operations in the same order; a complex product may round differently (numpy's loop may
    fuse a multiply-add): at most 1 ulp per product, so ``|diff| <= 2 ulp`` of the largest
    value (``2 * 2**-23 * max|y|``).  With the ADC that moves a value across a step only when
    it lies within those 2 ulp of a rounding boundary: one step at most, in fewer than 1e-3 of
    the values (the measured fraction is ~3e-5)."""
    n, decim = 1 << 16, 16
    rng = np.random.default_rng(0)
    x, leak = (0.1 * (rng.standard_normal((2, n)) + 1j * rng.standard_normal((2, n)))).astype(np.complex64)
    phase = rng.standard_normal(n // decim + 1) * 0.05
    fe = ChannelFrontEnd(-0.13, -0.88, complex(-0.0009, 0.0004))
    key, std = np.uint64(12345), np.float32(0.05)
    q = np.float32(32767 if adc else 0)
    got = x.copy()
    noise_tail(
        got.view(np.float32),
        leak.view(np.float32),
        key,
        0,
        std,
        held_phasors(phase),
        decim,
        fe.kernel_params(),
        q,
    )
    want = _numpy_tail(x, leak, key, std, phase, decim, fe, q)
    diff = np.abs(got.view(np.float32) - want.view(np.float32))
    if adc:
        steps = np.rint(got.view(np.float32) * q) - np.rint(want.view(np.float32) * q)  # in ADC steps
        assert np.abs(steps).max() <= 1
        assert np.count_nonzero(diff) < 1e-3 * diff.size
    else:
        assert diff.max() <= 2 * 2.0**-23 * np.abs(want.view(np.float32)).max()
    # every stage off: the samples plus the noise, exactly
    plain = x.copy()
    noise_tail(
        plain.view(np.float32), NONE, key, 0, std, np.zeros(0, np.complex64), decim, OFF, np.float32(0)
    )
    noise = np.empty_like(x)
    fill_complex_gaussian(key, std, noise.view(np.float32))
    np.testing.assert_array_equal(plain, x + noise)
    # in two parts (as the emulator finishes a block a run of periods at a time): the same bits
    cut = 3 * decim * 64
    held = held_phasors(phase)
    parts = x.copy()
    for a, b in ((0, cut), (cut, n)):
        noise_tail(
            parts[a:b].view(np.float32),
            leak[a:b].view(np.float32),
            key,
            a,
            std,
            held[a // decim :],
            decim,
            fe.kernel_params(),
            q,
        )
    np.testing.assert_array_equal(parts, got)


def test_fused_tail_refuses_mismatched_inputs():
    x = np.zeros(64, np.complex64).view(np.float32)
    one, no_adc = np.float32(1), np.float32(0)
    with pytest.raises(ValueError, match="phase"):
        noise_tail(x, NONE, np.uint64(1), 0, one, np.ones(3, np.complex64), 16, OFF, no_adc)
    with pytest.raises(ValueError, match="extra"):
        noise_tail(
            x, np.zeros(6, np.float32), np.uint64(1), 0, one, np.zeros(0, np.complex64), 16, OFF, no_adc
        )


def test_tag_kernel_equals_the_binary_search_lookup():
    """``apply_tag`` against ``values[searchsorted(edges, t, "right") - 1]`` times the rows, on
    edges at arbitrary float positions (jittered), some on a sample time exactly, at a capture
    rate that is not the working rate: the same values, bit for bit."""
    rng = np.random.default_rng(4)
    n, periods, to_work = 1024, 64, 30.72e6 / 62.5e6
    edges = np.concatenate([[-np.inf], np.sort(rng.uniform(0, periods * n * to_work, 300))])
    edges[5] = 17 * to_work  # an edge exactly on a sample's time
    edges.sort()
    values = rng.choice([-1.0, 0.0, 1.0], len(edges))
    start = (3 * periods + np.arange(periods)) * n - 3 * periods * n
    rows = (rng.standard_normal((periods, n)) + 1j * rng.standard_normal((periods, n))).astype(np.complex64)
    ks = np.array([0, 5, 6, 40, periods - 1])
    want = rows.copy()
    t = (start[ks, None] + np.arange(n)) * to_work
    want[ks] *= values[np.searchsorted(edges, t, side="right") - 1]
    apply_tag(rows, ks, start, to_work, edges, values)
    np.testing.assert_array_equal(rows, want)


def test_spectra_kernel_equals_the_numpy_cumulative_product():
    """``fill_spectra`` against ``np.cumprod`` of the ramps and a scatter of the products: the
    same complex128 products in the same order, so the same complex64 values."""
    rng = np.random.default_rng(5)
    k, runs, terms, period = 800, 12, 3, 1024
    dspec = rng.standard_normal((terms, k)) + 1j * rng.standard_normal((terms, k))
    ramp0 = np.exp(2j * np.pi * rng.random(k))
    step = np.exp(2j * np.pi * rng.random(k) * 1e-3)
    bins = rng.choice(period, k, replace=False).astype(np.int64)
    ramps = np.empty((runs, k), complex)
    ramps[0] = ramp0
    ramps[1:] = step
    np.cumprod(ramps, axis=0, out=ramps)
    want = np.zeros((runs, terms, period), np.complex64)
    want[:, :, bins] = dspec[None] * ramps[:, None, :]
    got = np.zeros_like(want)
    fill_spectra(dspec, ramp0, step, bins, got)
    np.testing.assert_array_equal(got, want)


def test_compiled_falls_back_to_no_cache_where_none_can_be_written(monkeypatch):
    """Where numba finds no writable cache place it raises at decoration; ``compiled`` then
    compiles without the cache, and the function still runs."""
    import numba
    from numba.core.caching import NullCache

    from dsp import jit

    real = numba.njit

    def no_cache_place(*args, **kw):
        if kw.get("cache"):
            raise RuntimeError("cannot cache function 'f': no locator available for file 'f.py'")
        return real(*args, **kw)

    monkeypatch.setattr(jit.nb, "njit", no_cache_place)

    @jit.compiled(error_model="numpy")
    def twice(x: float) -> float:
        return 2 * x

    assert twice(21.0) == 42.0
    assert isinstance(twice._cache, NullCache)  # numba's "no cache"
