"""Compiled loops of :class:`dsp.kernel_alignment.KernelAlignment`: resampled windows read off
their capture-rate frames, from complex64 (float32 pairs) or from int16 I/Q pairs in place.

Window ``i`` is ``length`` capture samples from ``pos[i] + shift[i]`` (``pos``: its nominal
frame) read through the pulled-back column of its kernel level.  One pass over the windows of a
run (or of one phase of it) gives everything
:meth:`~dsp.kernel_alignment.KernelAlignment.project` takes from them: the tag sample, on every
``p_step``-th window of the block the noise probe (at the nominal frame, kernel 0) and on every
``s_step``-th the timing slope; separate passes over every 4th and 8th window cost a page of
memory per window read without prefetch.  Columns come *split*
(:func:`dsp.pairs_kernel.split_columns`: two real dot products over contiguous values, which
the compiler vectorises, the int16 scale folded in); numba compiles one version per input
dtype.  Sums are float32, as the BLAS products they replace (order differs: about 1e-6
relative).  Imported on first use (numba).
"""

from __future__ import annotations

import numpy as np

from dsp.jit import compiled
from dsp.pairs_kernel import _axpy_split, _dot_split


@compiled(fastmath=True, error_model="numpy")
def project_windows(
    x: np.ndarray,
    pos: np.ndarray,
    shift: np.ndarray,
    lev: np.ndarray,
    tab: np.ndarray,
    z: np.ndarray,
    m_first: int,
    m_step: int,
    p_step: int,
    ptab: np.ndarray,
    probe: np.ndarray,
    s_step: int,
    stab: np.ndarray,
    dz: np.ndarray,
) -> None:
    """``z[i]`` = window ``i`` (at ``pos[i] + shift[i]``) against ``tab[lev[i]]``.  Window ``i`` is
    block window ``m = m_first + i m_step`` (``m_step``: 1 for a run, ``g`` for one phase of
    it); when ``m`` is a multiple of ``p_step`` its nominal frame (``pos[i]``) against
    ``ptab[0]`` goes to ``probe[m // p_step]``, of ``s_step`` (0: none) its frame against
    ``stab[lev[i]]`` to ``dz[m // s_step]``.  ``x`` ``[2 sample]`` (float32 or int16 pairs,
    C-contiguous), tables split ``[level, 2, 2 length]``, outputs float32 ``[., 2]``."""
    n2 = tab.shape[2]
    for i in range(lev.shape[0]):
        nominal = 2 * pos[i]
        o = nominal + 2 * shift[i]
        xm = x[o : o + n2]
        t = tab[lev[i]]
        z[i, 0], z[i, 1] = _dot_split(xm, t[0], t[1])
        m = m_first + i * m_step
        if m % p_step == 0:
            k = m // p_step
            probe[k, 0], probe[k, 1] = _dot_split(x[nominal : nominal + n2], ptab[0, 0], ptab[0, 1])
        if s_step > 0 and m % s_step == 0:
            k = m // s_step
            st = stab[lev[i]]
            dz[k, 0], dz[k, 1] = _dot_split(xm, st[0], st[1])


@compiled(fastmath=True, error_model="numpy")
def sum_windows(
    x: np.ndarray, pos: np.ndarray, shift: np.ndarray, lev: np.ndarray, w: np.ndarray, acc: np.ndarray
) -> None:
    """``acc[lev[i]] += w[i] window_i`` (complex), window ``i`` at ``pos[i] + shift[i]``: ``x``
    ``[2 sample]`` (float32 or int16 pairs), ``w`` float32 ``[i, 2]`` (the int16 scale folded
    in), ``acc`` float32 ``[level, 2 length]`` (a view of complex64)."""
    n2 = acc.shape[1]
    for i in range(lev.shape[0]):
        o = 2 * (pos[i] + shift[i])
        _axpy_split(x[o : o + n2], w[i, 0], w[i, 1], acc[lev[i]])


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
def band_pull_cols(vals: np.ndarray, base: np.ndarray, mat: np.ndarray, out: np.ndarray) -> None:
    """``out = K.T @ mat`` for the banded ``K`` of :func:`band_pull` and several columns:
    ``mat`` float32 ``[N, 2 c]`` and ``out`` float32 ``[length, 2 c]`` (views of complex64
    ``[N, c]`` and ``[length, c]``; ``out`` zeroed here).  Each tap is one contiguous
    multiply-add over the ``2 c`` values of its row; scipy's sparse product of the same took
    about 10 ms for 32 columns (acquisition's features at 62.5 MS/s)."""
    out[:] = 0.0
    taps = vals.shape[1]
    for n in range(vals.shape[0]):
        v = vals[n]
        m = mat[n]
        blk = out[base[n] : base[n] + taps]
        for j in range(taps):
            o = blk[j]
            vj = v[j]
            for i in range(m.shape[0]):
                o[i] += vj * m[i]


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
