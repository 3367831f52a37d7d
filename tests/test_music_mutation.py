"""MUSIC (``dsp/ranging/music.py``) against its own formulas, written for the mutation check of
docs/MUTATION.md (session 11): each test checks one step against a computation made here from
SYSTEM.md section 5 and the module docstring, on small synthetic CFRs
``H[k] = sum_l a_l exp(-j 2 pi k df tau_l) + w[k]`` built in the test (no emulator).
Every limit is derived beside its assertion."""

from __future__ import annotations

import re

import numpy as np
import pytest

from dsp.config_base import ConfigError
from dsp.ranging import get_method
from dsp.ranging.music import Music, MusicParams
from dsp.ranging.music_subspace import (
    _forward_covariance,
    _unitary_left,
    _unitary_right,
    contiguous_runs,
    estimate_order,
    real_form,
)


def cfr_of(wf, delays_s, gains, snr_db=None, rng=None, snapshots=None):
    """``sum_l a_l exp(-j 2 pi f_k tau_l)`` on the active subcarriers ``f_k = k df`` plus complex AWGN of
    variance ``1 / 10**(snr_db / 10)`` per subcarrier (unit-power paths: ``snr_db`` per path)."""
    f = wf.active_freqs_hz
    h = np.exp(-2j * np.pi * np.outer(f, np.atleast_1d(delays_s))) @ np.atleast_1d(gains).astype(complex)
    if snr_db is None:
        return h
    var = 10 ** (-snr_db / 10)
    shape = h.shape if snapshots is None else (snapshots, h.size)
    return h + np.sqrt(var / 2) * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))


def fb_direct(cfr, runs, length):
    """Forward covariance ``(1 / n) sum_s x_s x_s^H`` over every sub-vector ``x_s`` of ``length``
    adjacent values of every run at least ``length`` long, of every snapshot, by explicit loops;
    and ``n``."""
    x = np.atleast_2d(cfr)
    r = np.zeros((length, length), complex)
    n = 0
    for snap in x:
        for run in runs:
            for s in range(run.size - length + 1):
                v = snap[run[s : s + length]]
                r += np.outer(v, v.conj())
                n += 1
    return r / n, n


# ----- covariance ---------------------------------------------------------------------------------


def test_contiguous_runs_split_at_every_gap():
    k = np.array([-7, -6, -5, -3, -2, 0, 1, 2, 3, 4, 9])
    runs = contiguous_runs(k)
    assert [r.tolist() for r in runs] == [[0, 1, 2], [3, 4], [5, 6, 7, 8, 9], [10]]


@pytest.mark.parametrize("snapshots", [None, 3])
def test_forward_covariance_is_the_direct_sum_over_sub_vectors(snapshots):
    """Runs of 3 (shorter than L = 5: skipped), 5 (exactly L: one sub-vector) and 9 (five) of a random
    CFR: the lag-sum computation equals the explicit sum of outer products to 1e-13 of the largest
    entry (each entry is a sum of at most 2 * 6 products of values of order 1: rounding ~1e-15)."""
    rng = np.random.default_rng(1)
    k = np.concatenate([np.arange(-20, -17), np.arange(-10, -5), np.arange(1, 10)])
    runs = contiguous_runs(k)
    assert [r.size for r in runs] == [3, 5, 9]
    shape = k.size if snapshots is None else (snapshots, k.size)
    h = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    r, n = _forward_covariance(h, runs, 5)
    ref, n_ref = fb_direct(h, runs, 5)
    assert n == n_ref == (1 if snapshots is None else snapshots) * (1 + 5)
    np.testing.assert_allclose(r, ref, rtol=0, atol=1e-13 * np.abs(ref).max())
    message = "no run of adjacent subcarriers is at least subvector_len = 10 long"
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        _forward_covariance(h, runs, 10)


# ----- real (unitary) form ------------------------------------------------------------------------


def q_matrix(length):
    """The sparse unitary ``Q`` of ``_unitary_left``'s docstring, built column by column."""
    half = length // 2
    q = np.zeros((length, length), complex)
    for i in range(half):
        q[i, i] = q[length - 1 - i, i] = 1 / np.sqrt(2)
        q[i, length - half + i] = 1j / np.sqrt(2)
        q[length - 1 - i, length - half + i] = -1j / np.sqrt(2)
    if length % 2:
        q[half, half] = 1.0
    return q


@pytest.mark.parametrize("length", [2, 5, 8])
def test_real_form_is_q_h_r_fb_q_with_the_same_eigenvalues(length):
    """For a forward covariance ``r`` (Hermitian), ``R_fb = (r + J conj(r) J) / 2`` is
    centro-Hermitian and ``Q^H R_fb Q`` is real symmetric with the same eigenvalues (``Q``
    unitary); its eigenvectors ``v`` map to those of ``R_fb`` as ``Q v``.  Limits: 1e-12 of the
    largest entry or eigenvalue (an L <= 8 matrix product and ``eigh``: rounding ~1e-15)."""
    rng = np.random.default_rng(length)
    a = rng.standard_normal((length, 3 * length)) + 1j * rng.standard_normal((length, 3 * length))
    r = a @ a.conj().T / (3 * length)
    r_fb = 0.5 * (r + r[::-1, ::-1].conj())
    q = q_matrix(length)
    np.testing.assert_allclose(q.conj().T @ q, np.eye(length), atol=1e-15)
    tol = 1e-12 * np.abs(r).max()
    np.testing.assert_allclose(_unitary_left(a), q.conj().T @ a, atol=1e-12 * np.abs(a).max())
    v = rng.standard_normal((length, 2))
    np.testing.assert_allclose(_unitary_right(v), q @ v, atol=1e-15 * length)
    real = real_form(r)
    assert real.dtype == np.float64
    np.testing.assert_allclose(real, real.T, atol=0)
    np.testing.assert_allclose(real, (q.conj().T @ r_fb @ q).real, atol=tol)
    np.testing.assert_allclose((q.conj().T @ r_fb @ q).imag, 0, atol=tol)
    w, vecs = np.linalg.eigh(real)
    np.testing.assert_allclose(w, np.linalg.eigvalsh(r_fb), atol=tol)
    u = _unitary_right(vecs)
    np.testing.assert_allclose(r_fb @ u, u * w, atol=tol)


# ----- model order --------------------------------------------------------------------------------


def wax_kailath(lam, n, criterion, max_order):
    """MDL / AIC (Wax & Kailath 1985) by the textbook formula, k = 0..max_order:
    ``MDL(k) = -n (L - k) log(g_k / a_k) + k (2L - k) log(n) / 2``,
    ``AIC(k) = -2 n (L - k) log(g_k / a_k) + 2 k (2L - k)``, with ``g_k``, ``a_k`` the geometric and
    arithmetic means of the ``L - k`` smallest eigenvalues."""
    lam = np.sort(lam)[::-1]
    length = lam.size
    costs = []
    for k in range(max_order + 1):
        tail = lam[k:]
        log_ratio = np.mean(np.log(tail)) - np.log(np.mean(tail))
        if criterion == "mdl":
            costs.append(-n * (length - k) * log_ratio + 0.5 * k * (2 * length - k) * np.log(n))
        else:
            costs.append(-2 * n * (length - k) * log_ratio + 2 * k * (2 * length - k))
    return int(np.argmin(costs)), np.sort(costs)


@pytest.mark.parametrize("criterion", ["mdl", "aic"])
def test_model_order_is_the_wax_kailath_minimum(criterion):
    """Eigenvalue sets with 0-5 signals over a noise floor near 1 (``1 + 0.05 z**2``), signal levels
    drawn so that the criterion's decision is often close (``x`` added, log-uniform from 0.01 to 10
    times ``1 + L / n``, the spread of sample noise eigenvalues): the order equals the textbook
    minimum wherever that minimum is unambiguous (the best cost below the next by more than 1e-6 of
    its size, far above rounding), for clamps from 1 to L + 1 and none."""
    rng = np.random.default_rng(19 if criterion == "mdl" else 20)
    checked = 0
    for _ in range(400):
        length = int(rng.integers(4, 24))
        n = int(rng.integers(length, 400))
        lam = 1 + 0.05 * rng.standard_normal(length) ** 2
        k = int(rng.integers(0, min(6, length)))
        lam[:k] += 10 ** rng.uniform(-3, 0, k) * (1 + length / n) * 10
        max_order = int(rng.integers(1, length + 2)) if rng.uniform() < 0.8 else None  # None: L - 1
        top = length - 1 if max_order is None else min(max_order, length - 1)
        want, costs = wax_kailath(lam, n, criterion, top)
        if costs.size > 1 and costs[1] - costs[0] < 1e-6 * abs(costs[0]):
            continue
        got = estimate_order(rng.permutation(lam), n, criterion, max_order)  # any order of the eigenvalues
        assert got == want, (length, n, k, max_order)
        if criterion == "mdl":
            assert estimate_order(lam, n, max_order=max_order) == want  # MDL by default
        checked += 1
    assert checked > 300
    # no clamp given: up to L - 1 (three strong eigenvalues of four)
    assert estimate_order(np.array([1.0, 1e2, 1e3, 1e4]), 400, criterion) == 3
    with pytest.raises(ValueError, match=r"^criterion must be one of \('mdl', 'aic'\), got 'bic'$"):
        estimate_order(lam, 10, "bic")


def test_model_order_of_noise_only_is_one_and_of_k_paths_is_k(wf):
    """Noise only (a seeded draw): MDL picks 0, clamped to 1 by ``estimate``.
    K = 1..4 unit paths 8 resolution cells apart at 30 dB per path: K (each path's eigenvalue is
    about L = 200 times the noise's, far above MDL's penalty)."""
    rng = np.random.default_rng(4)
    m = get_method("music", wf)
    noise = (rng.standard_normal(800) + 1j * rng.standard_normal(800)) / np.sqrt(2)
    est = m.estimate(noise)
    assert est.order == 1
    lam = est.eigenvalues
    assert estimate_order(lam, 2 * 201, "mdl", m.max_order) == 0  # n: 2 runs of 201 sub-vectors
    cell = 1 / wf.occupied_bandwidth_hz
    for k in range(1, 5):
        delays = 3e-6 + 8 * cell * np.arange(k)
        gains = np.exp(2j * np.pi * rng.uniform(size=k))
        assert m.estimate(cfr_of(wf, delays, gains, 30.0, rng)).order == k


def test_order_is_clamped_at_the_default_32_and_at_l_minus_one(wf):
    """40 unit paths 8 cells apart (noise-free but for 60 dB of noise): MDL sees 40, the default
    clamp (``max_order`` 32) gives 32; with L = 6 the clamp is L - 1 = 5 whatever ``max_order``."""
    rng = np.random.default_rng(40)
    cell = 1 / wf.occupied_bandwidth_hz
    delays = 1e-6 + 8 * cell * np.arange(40)
    h = cfr_of(wf, delays, np.exp(2j * np.pi * rng.uniform(size=40)), 60.0, rng)
    m = get_method("music", wf)
    assert m.params.max_order == 32 and m.estimate(h).order == 32
    assert get_method("music", wf, max_order=64).estimate(h).order == 40
    short = get_method("music", wf, subvector_len=6, max_order=32)
    assert short.max_order == 5 and short.estimate(h).order == 5


# ----- sub-vector length and input checks ---------------------------------------------------------


def test_default_sub_vector_length_is_half_the_longest_run_at_most_256(wf):
    wide = wf.replace(fft_size=2048, subcarrier_min=-600, subcarrier_max=600)  # runs of 600
    assert get_method("music", wide).subvector_len == 256
    assert get_method("music", wf.replace(subcarrier_min=-510, subcarrier_max=510)).subvector_len == 255
    # the ends of the documented range [2, longest run] are accepted, one past them refused
    assert get_method("music", wf, subvector_len=2).subvector_len == 2
    whole = get_method("music", wf, subvector_len=400)  # one sub-vector per run, two in all
    assert whole.subvector_len == 400
    est = whole.estimate(cfr_of(wf, 2e-6, 1.0))
    assert est.eigenvalues.shape == (400,)
    with pytest.raises(ValueError, match="subvector_len"):
        get_method("music", wf, subvector_len=401)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"subvector_len": 1}, "subvector_len = 1: must be at least 2"),
        ({"max_order": 0}, "max_order = 0: must be at least 1"),
        ({"criterion": "bic"}, "criterion = 'bic': must be one of ('mdl', 'aic')"),
        ({"threshold": 1.0}, "threshold = 1.0: must be in (0, 1)"),
        ({"threshold": 0.0}, "threshold = 0.0: must be in (0, 1)"),
        ({"gate_cells_before": 65}, "gate_cells_before = 65: must be in [0, 64]"),
        ({"peak_threshold_db": 0.0}, "peak_threshold_db = 0.0: must be in (0, inf) dB"),
    ],
)
def test_parameter_refusals_name_the_method_the_field_and_the_value(wf, kwargs, message):
    whole = f"ranging method 'music': MusicParams.{message}"
    with pytest.raises(ConfigError, match="^" + re.escape(whole) + "$"):
        get_method("music", wf, **kwargs)


def test_cfr_refusals_say_what_is_wrong(wf):
    """The messages of ``_check`` and of a sub-vector longer than the longest run, whole."""
    m = get_method("music", wf)
    good = np.ones(800, complex)
    cases = [
        (
            np.array(["a"] * 800),
            "music: cfr must be numeric [subcarrier] or [snapshot, subcarrier], "
            "got shape (800,) and dtype <U1",
        ),
        (good[:-1], "music: cfr has 799 subcarriers, the waveform has 800 active subcarriers"),
        (np.zeros((0, 800), complex), "music: cfr has no snapshots"),
        (np.where(np.arange(800) == 3, np.nan, good), "music: cfr contains NaN or infinite values"),
        (0 * good, "music: cfr is identically zero"),
    ]
    for cfr, message in cases:
        with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
            m.estimate(cfr)
    long = (
        "ranging method 'music': subvector_len = 401 must be in [2, 400] "
        "(the longest run of adjacent active subcarriers)"
    )
    with pytest.raises(ConfigError, match="^" + re.escape(long) + "$"):
        get_method("music", wf, subvector_len=401)


# ----- delay --------------------------------------------------------------------------------------


def run_crlb_s(wf, snr):
    """Cramer-Rao bound (standard deviation) of one path's delay when each contiguous run of
    subcarriers has its own unknown complex gain (the model spatial smoothing assumes: the
    sub-vectors of different runs are pooled with arbitrary relative phase):
    ``1 / sqrt(8 pi^2 snr sum_runs sum_k (f_k - mean_run f)^2)``, ``snr = |a|^2 / sigma^2`` per
    subcarrier.  With the DC hole this is twice the bound with one common gain (two runs of 400: the
    squares about each run's mean sum to a quarter of those about the band's centre)."""
    f = wf.active_freqs_hz
    info = sum(np.sum((f[r] - f[r].mean()) ** 2) for r in contiguous_runs(wf.active_subcarriers))
    return 1 / np.sqrt(8 * np.pi**2 * snr * info)


def test_one_path_within_the_bound_at_20_db_anywhere_in_the_window(wf):
    """One unit path at 20 dB per subcarrier, anywhere in ``[0, 1 / df)`` including 0.3 grid steps
    before the window's end (its estimate must wrap to just below ``1 / df``, not to -0.3 steps).
    MUSIC with forward-backward smoothing at L = M / 2 has a variance about 1.6 times the bound for
    one exponential at high SNR (Stoica & Soderstrom 1991; 1.27**2 over 200 draws here), so each
    error is within 5 * sqrt(2) bounds (a 5-sigma event for a variance of twice the bound: about 6e-7
    per draw); the bound is 1.6 % of a grid step, so a sub-grid refinement that fails shows."""
    rng = np.random.default_rng(11)
    window = 1 / wf.subcarrier_spacing_hz
    step = wf.cir_grid_step_s
    sigma = run_crlb_s(wf, 100.0)
    assert sigma < 0.02 * step
    m = get_method("music", wf)
    delays = np.concatenate([[window - 0.3 * step, 0.4 * step, 0.5 * window], rng.uniform(0, window, 9)])
    for tau in delays:
        gain = np.exp(2j * np.pi * rng.uniform())
        est = m.estimate(cfr_of(wf, tau, gain, 20.0, rng))
        assert est.order == 1
        assert 0 <= est.delay_s < window
        err = (est.delay_s - tau + window / 2) % window - window / 2
        assert abs(err) < 5 * np.sqrt(2) * sigma, (tau, err / sigma)


def test_noise_free_paths_are_found_to_the_refinement_s_error(wf):
    """Noise-free, the true delays null the denominator ``D(tau)``; three parabolic steps (on the grid,
    then 4x and 16x finer, the last with half-width ``h = step / 16``) leave the vertex error of a
    cubic term, ``b h**2 / (2 a)`` for ``D ~ a x**2 + b x**3``.  One path: ``D`` is even about the
    delay (``L - |sum_m exp(j 2 pi m df x)|**2 / L``-like), no cubic term, so only rounding remains
    (measured 1e-12 step; limit 1e-6 step).  Two paths 1.5 cells apart: ``D`` varies on the scale of
    a resolution cell ``c = K / N_act = 5.1`` steps, ``b / a ~ 1 / c``, so ``h**2 / (2 c) = 3.8e-4``
    step (measured 4.7e-4 at 1.5 cells, 1.7e-4 at 3); limit 2e-3 step (2 ps).  Two refinement steps
    instead of three would leave 16 times as much."""
    step = wf.cir_grid_step_s
    m = get_method("music", wf)
    cell = 1 / wf.occupied_bandwidth_hz
    for tau in (17.5 * step, 1234.37 * step, 3001.1 * step):
        est = m.estimate(cfr_of(wf, tau, 1.0))
        assert est.order == 1
        assert abs(est.delay_s - tau) < 1e-6 * step
    for t0 in (2.1e-6, 20e-6):
        delays = [t0, t0 + 1.5 * cell]
        est = m.estimate(cfr_of(wf, delays, np.exp(1j * np.arange(2))))
        assert est.order == 2
        assert abs(est.delay_s - t0) < 2e-3 * step


def test_the_noise_subspace_branch_finds_noise_free_paths(wf):
    """L = 4 and two noise-free paths: the order (2) is not below L - order, so the denominator comes
    from the real form's noise eigenvectors (``_Subspace(noise_v=...)``), on the grid and off it.
    Both delays 0.3 grid steps after a grid point, so the two peaks' heights are alike (noise-free,
    a path on a grid point would give an unbounded peak and hide the other below the 50 dB level).
    The denominator of L = 4 varies on the scale of ``K / L = 1024`` grid steps, so the last
    parabola's cubic error is about ``(1 / 16)**2 / (2 * 1024) = 2e-6`` step (measured 3e-6);
    limit 1e-4 step."""
    step = wf.cir_grid_step_s
    m = get_method("music", wf, subvector_len=4)
    delays = np.array([368.3, 1228.3]) * step
    est = m.estimate(cfr_of(wf, delays, [1.0, 0.7j]))
    assert est.order == 2 and est.pseudo_spectrum.shape == (wf.cir_fft_size,)
    assert abs(est.delay_s - delays[0]) < 1e-4 * step


# ----- first peak ---------------------------------------------------------------------------------


def spectrum(k_fft, peaks):
    p = np.ones(k_fft)
    for q, h in peaks.items():
        p[[(q - 1) % k_fft, (q + 1) % k_fft]] = np.maximum(p[[(q - 1) % k_fft, (q + 1) % k_fft]], h / 2)
        p[q] = h
    return p


def test_the_default_threshold_is_50_db(wf):
    """Top peak 1e6: the level is 10 at 50 dB (12.6 at 49 dB, 7.9 at 51 dB); an earlier peak at 11 is
    reported, one at 9 is not."""
    m = get_method("music", wf)
    assert m.params.peak_threshold_db == 50.0
    k = wf.cir_fft_size
    assert m._first_peak(spectrum(k, {100: 11.0, 900: 1e6}), 4) == 100
    assert m._first_peak(spectrum(k, {100: 9.0, 900: 1e6}), 4) == 900


def test_gated_first_peak_takes_the_order_highest_above_the_level(wf):
    """Inside the gate (from ``_gate`` of a CIR whose first peak is at 2000: bins 1988-2006):
    peaks at 1989 (height 8), 1992 (20), 1996 (1e3), 2003 (1e6); the earliest of the ``order``
    highest within 50 dB of the highest, in the gate's order.  The level is 10: the peak of 8 is out
    (it would be in at 52 dB, level 6.3) and the one of 20 in (it would be out at 45 dB, level 32).
    A peak at 1500, outside the gate, is ignored whatever its height."""
    m = get_method("music", wf, threshold=0.3)
    k = wf.cir_fft_size
    cir = np.zeros(k, complex)
    cir[2000] = 1.0
    gate = m._gate(cir, k)
    assert gate[0] == 2000 and gate[1][0] == 1988 and gate[1][-1] == 2006
    p = spectrum(k, {1500: 1e9, 1989: 8.0, 1992: 20.0, 1996: 1e3, 2003: 1e6})
    assert [m._first_peak(p, order, gate) for order in (1, 2, 3, 4)] == [2003, 1996, 1992, 1992]
    assert get_method("music", wf, peak_threshold_db=60.0)._first_peak(p, 4, gate) == 1989  # level 1
    assert get_method("music", wf, peak_threshold_db=20.0)._first_peak(p, 4, gate) == 2003  # 1e4
    assert m._first_peak(p, 4) == 1500  # ungated: 1500 is the highest, 1996 and 1992 below its level


def test_music_params_defaults_are_the_published_ones():
    """The defaults the published tables were made with (docs/RESULTS.md: two cells before IR
    First's peak, IR First threshold 0.3, MDL, order clamp 32, 50 dB)."""
    p = MusicParams()
    assert (p.subvector_len, p.max_order, p.criterion, p.peak_threshold_db) == (None, 32, "mdl", 50.0)
    assert (p.gate_cells_before, p.threshold) == (2, 0.3)
    assert Music.name == "music"
