"""The compiled loops (dsp/frames_kernel.py, dsp/pairs_kernel.py, dsp/level_kernel.py) called
directly, on what their docstrings promise and the callers' tests do not reach: the mutation
check of session 14 (docs/MUTATION.md).  About 3 s (numba compiles the loops; the checked copies once more).

* ``project_windows`` / ``project_pairs``: the slope step 0 means "none" (numba's ``m % 0`` is 0
  under the numpy error model, so a test ``s_step >= 0`` writes ``dz[0]``;
  ``DirectWindows.project_levels`` passes 0 with an empty output when it wants no timing slope:
  a write there lands past its end) and step 1 every window (the receiver's steps are 4 and 8).
* The loops read and write only inside the slices they take (a window, a row's band).  numba
  checks no bounds: a slice cut short (``x[o : o - n]``, ``2 * (base - taps)`` for its end) is
  still read and written through past its length, the same values by accident, so the loops are
  compiled here again with ``boundscheck=True`` (``py_func``: the same source; the loops they
  call replaced by their checked copies) and must give the reference products.

Float32 sums: the real (or imaginary) part of a window of ``L`` complex samples against a column
is a sum of ``2 L`` real products (int16 samples exact in float32; the split columns rounded to
float32, ``u`` each, ``u`` = 2**-24): rounding the column, each product and a sum of ``2 L``
terms in any order (``fastmath`` may reorder, not drop terms) stays within ``(2 L + 2) u sum_j
|x_j| |a_j|``, and ``sum_j |x_j| |a_j| <= 2 sum_k |w_k| |c_k|`` over the complex samples ``w``
and column ``c``: the limit ``2 (2 L + 2) u sum |w| |c|``.
"""

from __future__ import annotations

import types

import numba
import numpy as np
import pytest

from dsp.frames_kernel import band_apply, band_pull, band_pull_cols, project_windows, sum_windows
from dsp.level_kernel import _caxpy, _cdot, dot_levels, sum_levels
from dsp.pairs_kernel import _axpy_split, project_pairs, split_columns

U = 2.0**-24
SENTINEL = np.float32(-12345.0)


def _checked(f, **callees):
    """``f``'s source compiled with bounds checks, the compiled loops it calls by name replaced."""
    py = f.py_func
    fn = types.FunctionType(py.__code__, {**py.__globals__, **callees}, py.__name__, py.__defaults__)
    return numba.njit(boundscheck=True)(fn)


def _setup(seed: int, levels: int = 3, length: int = 24, windows: int = 11):
    """int16 pairs of a stream, window positions and level choices, complex columns per level."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-3000, 3000, size=2 * (windows * length + 2 * length), dtype=np.int16)
    cols = (rng.standard_normal((levels, length)) + 1j * rng.standard_normal((levels, length))) * 1e-3
    lev = rng.integers(0, levels, windows)
    return rng, x, cols, lev


def _dot(x_pairs: np.ndarray, col: np.ndarray) -> tuple[complex, float]:
    """Exact ``window @ col`` (complex128) and the float32 limit ``2 (2 L + 2) u sum |w| |c|``
    (module doc)."""
    w = x_pairs[0::2].astype(float) + 1j * x_pairs[1::2].astype(float)
    return complex(w @ col), 2 * (2 * len(col) + 2) * U * float(np.abs(w) @ np.abs(col))


@pytest.mark.parametrize("s_step", [0, 1])
def test_project_windows_slope_step_0_writes_none_and_1_every_window(s_step):
    """``s_step`` 0: ``dz`` untouched (its sentinel stays); 1: ``dz[m]`` is window ``m`` (at
    ``pos + shift``) against its level's slope column, for every window (``m_first`` 0, ``m_step``
    1); ``z`` the same against the level's column, the probe on every 4th at the nominal frame."""
    rng, x, cols, lev = _setup(5)
    length, n = cols.shape[1], lev.size
    slope_cols = cols[::-1] * (1 + 0.5j)
    probe_col = cols[:1] * 2
    pos = (np.arange(n) * length + 3).astype(np.int64)
    shift = rng.integers(-2, 3, n).astype(np.int64)
    z = np.full((n, 2), SENTINEL, np.float32)
    probe = np.full((-(-n // 4), 2), SENTINEL, np.float32)
    dz = np.full((n, 2), SENTINEL, np.float32)
    tab, ptab, stab = (split_columns(c, 1.0) for c in (cols, probe_col, slope_cols))
    project_windows(x, pos, shift, lev, tab, z, 0, 1, 4, ptab, probe, s_step, stab, dz)
    for i in range(n):
        o = 2 * (pos[i] + shift[i])
        want, lim = _dot(x[o : o + 2 * length], cols[lev[i]])
        assert abs(complex(*z[i]) - want) <= lim
        if i % 4 == 0:
            want, lim = _dot(x[2 * pos[i] : 2 * pos[i] + 2 * length], probe_col[0])
            assert abs(complex(*probe[i // 4]) - want) <= lim
        if s_step == 1:
            want, lim = _dot(x[o : o + 2 * length], slope_cols[lev[i]])
            assert abs(complex(*dz[i]) - want) <= lim
    if s_step == 0:
        assert np.all(dz == SENTINEL)


@pytest.mark.parametrize("slope_step", [0, 1])
def test_project_pairs_slope_step_0_writes_none_and_1_every_window(slope_step):
    """As above for ``project_pairs`` (windows ``[window, 2 N]`` of int16 pairs, block index from
    ``first`` = 2): step 0 leaves ``slope`` as it was, step 1 fills every window's."""
    _rng, x, cols, lev = _setup(6)
    length, n = cols.shape[1], lev.size
    xw = x[: n * 2 * length].reshape(n, 2 * length)
    slope_cols = cols * (0.3 - 1j)
    probe_col = cols[1:2]
    z = np.full((n, 2), SENTINEL, np.float32)
    probe = np.full((n, 2), SENTINEL, np.float32)
    slope = np.full((n + 2, 2), SENTINEL, np.float32)
    ab, pab, sab = (split_columns(c, 1.0) for c in (cols, probe_col, slope_cols))
    project_pairs(xw, 2, ab, lev, z, pab, 3, probe, sab, slope_step, slope)
    for m in range(n):
        want, lim = _dot(xw[m], cols[lev[m]])
        assert abs(complex(*z[m]) - want) <= lim
        if (m + 2) % 3 == 0:
            want, lim = _dot(xw[m], probe_col[0])
            assert abs(complex(*probe[(m + 2) // 3]) - want) <= lim
        if slope_step == 1:
            want, lim = _dot(xw[m], slope_cols[lev[m]])
            assert abs(complex(*slope[m + 2]) - want) <= lim
    if slope_step == 0:
        assert np.all(slope == SENTINEL)
    else:
        assert np.all(slope[:2] == SENTINEL)


def test_banded_products_stay_inside_each_row_s_band():
    """``K`` ``[rows, length]`` banded (row ``n``: ``taps`` values from column ``base[n]``, the last
    row's band ending at the last column), the loops compiled with bounds checks: ``K.T @ c``,
    ``K.T @ C`` and ``K @ x`` within ``2 (taps + 2) u sum |K| |x|`` (the bound of
    tests/test_kernel_alignment.py's banded test) of the exact products, and no index outside a
    row's slice (an ``IndexError`` under the checks)."""
    rng = np.random.default_rng(8)
    rows, length, taps = 30, 40, 8
    vals = rng.standard_normal((rows, taps)).astype(np.float32)
    base = np.round(np.arange(rows) * (length - taps) / (rows - 1)).astype(np.int64)
    k = np.zeros((rows, length))
    for n in range(rows):
        k[n, base[n] : base[n] + taps] = vals[n]
    c = (rng.standard_normal(rows) + 1j * rng.standard_normal(rows)).astype(np.complex64)
    cs = (rng.standard_normal((rows, 3)) + 1j * rng.standard_normal((rows, 3))).astype(np.complex64)
    x = (rng.standard_normal(length) + 1j * rng.standard_normal(length)).astype(np.complex64)
    eps, ka = 2 * (taps + 2) * U, np.abs(k)
    checked = [numba.njit(boundscheck=True)(f.py_func) for f in (band_pull, band_pull_cols, band_apply)]
    for pull, pull_cols, apply in (checked, (band_pull, band_pull_cols, band_apply)):
        got = np.full(length, 7 + 7j, np.complex64)  # zeroed by the loop
        pull(vals, base, c.view(np.float32), got.view(np.float32))
        lim = eps * (ka.T @ (np.abs(c.real) + np.abs(c.imag)))
        assert np.all(np.abs(got - k.T @ c.astype(complex)) <= lim)
        many = np.full((length, 3), 7 + 7j, np.complex64)
        pull_cols(vals, base, cs.view(np.float32), many.view(np.float32))
        lim = eps * (ka.T @ (np.abs(cs.real) + np.abs(cs.imag)))
        assert np.all(np.abs(many - k.T @ cs.astype(complex)) <= lim)
        applied = np.empty(rows, np.complex64)
        apply(vals, base, x.view(np.float32), applied.view(np.float32))
        lim = eps * (ka @ (np.abs(x.real) + np.abs(x.imag)))
        assert np.all(np.abs(applied - k @ x.astype(complex)) <= lim)


def test_level_loops_and_window_sums_stay_inside_their_windows():
    """``dot_levels`` (``out[i] = x[start + i step] @ table[lev[i]]``), ``sum_levels`` and
    ``sum_windows`` (``acc[lev[m]] += w[m] window_m``), compiled as they are and with bounds
    checks: within the float32 limit of the exact complex128 sums (module doc; a sum over ``M``
    windows of one level: ``2 (M + 2) u sum |w| |x|`` per value)."""
    rng = np.random.default_rng(9)
    n, windows, levels = 16, 9, 3
    x = (rng.standard_normal((windows, n)) + 1j * rng.standard_normal((windows, n))).astype(np.complex64)
    table = (rng.standard_normal((levels, n)) + 1j * rng.standard_normal((levels, n))).astype(np.complex64)
    w = (rng.standard_normal(windows) + 1j * rng.standard_normal(windows)).astype(np.complex64)
    lev = rng.integers(0, levels, windows)
    xd, td, wd = x.astype(complex), table.astype(complex), w.astype(complex)
    acc_want = np.zeros((levels, n), complex)
    acc_lim = np.zeros((levels, n))
    np.add.at(acc_want, lev, wd[:, None] * xd)
    np.add.at(acc_lim, lev, 2 * (windows + 2) * U * np.abs(wd)[:, None] * np.abs(xd))
    sel = lev[1::2][:4]  # every 2nd window from window 1
    dot_want = np.array([xd[1 + 2 * i] @ td[sel[i]] for i in range(sel.size)])
    dot_lim = np.array(
        [2 * (2 * n + 2) * U * (np.abs(xd[1 + 2 * i]) @ np.abs(td[sel[i]])) for i in range(sel.size)]
    )
    pairs = np.round(x.view(np.float32) * 1000).astype(np.int16)  # the same windows as int16 pairs
    stream = pairs.reshape(-1)
    pd = pairs[:, 0::2].astype(float) + 1j * pairs[:, 1::2].astype(float)
    sw_want = np.zeros((levels, n), complex)
    np.add.at(sw_want, lev, wd[:, None] * pd)
    sw_lim = np.zeros((levels, n))
    np.add.at(sw_lim, lev, 2 * (windows + 2) * U * np.abs(wd)[:, None] * np.abs(pd))
    cdot, caxpy, axpy = _checked(_cdot), _checked(_caxpy), _checked(_axpy_split)
    checked = (
        _checked(dot_levels, _cdot=cdot),
        _checked(sum_levels, _caxpy=caxpy),
        _checked(sum_windows, _axpy_split=axpy),
    )
    for dot, add, add_pairs in (checked, (dot_levels, sum_levels, sum_windows)):
        out = np.full((sel.size, 2), SENTINEL, np.float32)
        dot(x.view(np.float32), 1, 2, table.view(np.float32), sel, out)
        assert np.all(np.abs(out[:, 0] + 1j * out[:, 1] - dot_want) <= dot_lim)
        acc = np.zeros((levels, n), np.complex64)
        add(x.view(np.float32), w.view(np.float32).reshape(-1, 2), lev, acc.view(np.float32))
        assert np.all(np.abs(acc - acc_want) <= acc_lim)
        acc = np.zeros((levels, n), np.complex64)
        pos = np.arange(windows, dtype=np.int64) * n
        add_pairs(
            stream,
            pos,
            np.zeros(windows, np.int64),
            lev,
            w.view(np.float32).reshape(-1, 2),
            acc.view(np.float32),
        )
        assert np.all(np.abs(acc - sw_want) <= sw_lim)
