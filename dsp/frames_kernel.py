"""Compiled loops of :class:`dsp.kernel_alignment.KernelAlignment`: resampled windows read off
their capture-rate frames, from complex64 (float32 pairs) or from int16 I/Q pairs in place.

Each window ``j`` of a phase is ``length`` capture samples from ``start + j period + shift[j]``
read through the pulled-back column of its kernel level.  One pass over a phase's windows gives
everything :meth:`~dsp.kernel_alignment.KernelAlignment.project` takes from them: the tag
sample, on every ``p_step``-th window the noise probe (at the nominal frame, ``shift`` 0, kernel
0) and on every ``s_step``-th the timing slope; separate passes over every 4th and 8th window
cost a page of memory per window read without prefetch.  Columns come *split*
(:func:`dsp.pairs_kernel.split_columns`: two real dot products over contiguous values, which
the compiler vectorises, the int16 scale folded in); numba compiles one version per input
dtype.  Sums are float32, as the BLAS products they replace (order differs: about 1e-6
relative).  Imported on first use (numba).
"""

from __future__ import annotations

import numpy as np

from dsp.jit import compiled


@compiled(fastmath=True, error_model="numpy", inline="always")
def _dot_at(x: np.ndarray, o: int, a: np.ndarray, b: np.ndarray) -> tuple[np.float32, np.float32]:
    """``(x[o:][:n] . a, x[o:][:n] . b)`` for ``a``, ``b`` ``[n]`` float32.  Through a slice: an
    offset index ``x[o + k]`` (a signed index, wrapped if negative) kept the loop scalar, 7x
    slower here."""
    xm = x[o : o + a.shape[0]]
    re = np.float32(0.0)
    im = np.float32(0.0)
    for k in range(xm.shape[0]):
        v = np.float32(xm[k])
        re += v * a[k]
        im += v * b[k]
    return re, im


@compiled(fastmath=True, error_model="numpy")
def project_frames(
    x: np.ndarray,
    start: int,
    period: int,
    shift: np.ndarray,
    lev: np.ndarray,
    tab: np.ndarray,
    z: np.ndarray,
    p_first: int,
    p_step: int,
    ptab: np.ndarray,
    p_out: np.ndarray,
    s_first: int,
    s_step: int,
    stab: np.ndarray,
    s_out: np.ndarray,
) -> None:
    """``z[j]`` = frame ``j`` (at ``start + j period + shift[j]``) against ``tab[lev[j]]``; for
    ``j = p_first + k p_step`` (``p_first`` < 0: none) ``p_out[k]`` = its nominal frame (``start +
    j period``) against ``ptab[0]``; for ``j = s_first + k s_step`` (``s_first`` < 0: none)
    ``s_out[k]`` = its frame against ``stab[lev[j]]``.  ``x`` ``[2 sample]`` (float32 or int16
    pairs, C-contiguous), tables split ``[level, 2, 2 length]``, outputs float32 ``[., 2]``."""
    for j in range(lev.shape[0]):
        nominal = 2 * (start + j * period)
        o = nominal + 2 * shift[j]
        t = tab[lev[j]]
        z[j, 0], z[j, 1] = _dot_at(x, o, t[0], t[1])
        if p_first >= 0 and j >= p_first and (j - p_first) % p_step == 0:
            k = (j - p_first) // p_step
            p_out[k, 0], p_out[k, 1] = _dot_at(x, nominal, ptab[0, 0], ptab[0, 1])
        if s_first >= 0 and j >= s_first and (j - s_first) % s_step == 0:
            k = (j - s_first) // s_step
            st = stab[lev[j]]
            s_out[k, 0], s_out[k, 1] = _dot_at(x, o, st[0], st[1])


@compiled(fastmath=True, error_model="numpy")
def sum_frames_any(
    x: np.ndarray,
    start: int,
    period: int,
    shift: np.ndarray,
    lev: np.ndarray,
    w: np.ndarray,
    acc: np.ndarray,
) -> None:
    """``acc[lev[j]] += w[j] frame_j`` (complex), frame ``j`` at ``start + j period + shift[j]``:
    ``x`` ``[2 sample]`` (float32 or int16 pairs), ``w`` float32 ``[j, 2]`` (the int16 scale
    folded in), ``acc`` float32 ``[level, 2 length]`` (a view of complex64)."""
    for j in range(lev.shape[0]):
        a = acc[lev[j]]
        o = 2 * (start + j * period + shift[j])
        xm = x[o : o + a.shape[0]]  # a slice, not x[o + k]: see _dot_at
        wr = w[j, 0]
        wi = w[j, 1]
        for k in range(a.shape[0] // 2):
            xr = np.float32(xm[2 * k])
            xi = np.float32(xm[2 * k + 1])
            a[2 * k] += wr * xr - wi * xi
            a[2 * k + 1] += wr * xi + wi * xr


@compiled(fastmath=True, error_model="numpy")
def band_pull(vals: np.ndarray, base: np.ndarray, col: np.ndarray, out: np.ndarray) -> None:
    """``out = K.T @ col`` for a banded interpolation matrix ``K`` ``[N, length]`` whose row
    ``n`` holds ``vals[n]`` ``[taps]`` from column ``base[n]`` on: ``col`` float32 ``[2 N]`` and
    ``out`` float32 ``[2 length]`` (views of complex64; ``out`` zeroed here).  scipy's sparse
    product spent 3-4 ns a stored value (0.3-0.4 ms a pull of 98,304): this loop is a
    contiguous multiply-add per row."""
    out[:] = 0.0
    taps = vals.shape[1]
    for n in range(vals.shape[0]):
        cr = col[2 * n]
        ci = col[2 * n + 1]
        v = vals[n]
        o = out[2 * base[n] : 2 * (base[n] + taps)]
        for j in range(taps):
            o[2 * j] += v[j] * cr
            o[2 * j + 1] += v[j] * ci


@compiled(fastmath=True, error_model="numpy")
def band_apply(vals: np.ndarray, base: np.ndarray, x: np.ndarray, out: np.ndarray) -> None:
    """``out = K @ x`` for the banded ``K`` of :func:`band_pull`: ``x`` float32 ``[2 length]``,
    ``out`` float32 ``[2 N]`` (views of complex64)."""
    taps = vals.shape[1]
    for n in range(vals.shape[0]):
        v = vals[n]
        xm = x[2 * base[n] : 2 * (base[n] + taps)]
        re = np.float32(0.0)
        im = np.float32(0.0)
        for j in range(taps):
            re += v[j] * xm[2 * j]
            im += v[j] * xm[2 * j + 1]
        out[2 * n] = re
        out[2 * n + 1] = im


@compiled(fastmath=True, error_model="numpy")
def project_windows(
    x: np.ndarray,
    pos: np.ndarray,
    shift: np.ndarray,
    lev: np.ndarray,
    tab: np.ndarray,
    z: np.ndarray,
    m_first: int,
    p_step: int,
    ptab: np.ndarray,
    probe: np.ndarray,
    s_step: int,
    stab: np.ndarray,
    dz: np.ndarray,
) -> None:
    """:func:`project_frames` over every window of a run at once (all its phases): window ``i``
    has its nominal frame at ``pos[i]`` and is block window ``m = m_first + i``; ``z[i]`` its tag
    sample; the probe (nominal frame, ``ptab[0]``) goes to ``probe[m // p_step]`` when ``m`` is a
    multiple of ``p_step``, the slope (``stab[lev[i]]``, ``s_step`` 0: none) to
    ``dz[m // s_step]``.  One call per run instead of one per phase (the Python around each
    call was half the capture-rate path's time)."""
    for i in range(lev.shape[0]):
        nominal = 2 * pos[i]
        o = nominal + 2 * shift[i]
        t = tab[lev[i]]
        z[i, 0], z[i, 1] = _dot_at(x, o, t[0], t[1])
        m = m_first + i
        if m % p_step == 0:
            k = m // p_step
            probe[k, 0], probe[k, 1] = _dot_at(x, nominal, ptab[0, 0], ptab[0, 1])
        if s_step > 0 and m % s_step == 0:
            k = m // s_step
            st = stab[lev[i]]
            dz[k, 0], dz[k, 1] = _dot_at(x, o, st[0], st[1])


@compiled(fastmath=True, error_model="numpy")
def sum_windows(
    x: np.ndarray, pos: np.ndarray, shift: np.ndarray, lev: np.ndarray, w: np.ndarray, acc: np.ndarray
) -> None:
    """:func:`sum_frames_any` over windows at nominal positions ``pos`` (any phases)."""
    for i in range(lev.shape[0]):
        a = acc[lev[i]]
        o = 2 * (pos[i] + shift[i])
        xm = x[o : o + a.shape[0]]
        wr = w[i, 0]
        wi = w[i, 1]
        for k in range(a.shape[0] // 2):
            xr = np.float32(xm[2 * k])
            xi = np.float32(xm[2 * k + 1])
            a[2 * k] += wr * xr - wi * xi
            a[2 * k + 1] += wr * xi + wi * xr
