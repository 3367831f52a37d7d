"""Compiled loops of :class:`dsp.alignment.LevelAlignment`: every window against its own level.

A projection or an epoch sum pairs each window with the column (or accumulator) of its delay
level.  With the windows grouped into runs of one level, each run is one BLAS call; at a
sample-clock drift of 10 ppm the level changes every 6 windows or so and the Python and BLAS
overhead of 15,000 small calls a second cost more than the arithmetic.  These loops take a
piece of windows in one call whatever the drift: each window is read once, its level's column
(or accumulator row) stays in cache.  Sums are in float32, as the complex64 BLAS products they
replace (their order differs: results agree to float32 rounding, about 1e-6 relative).
Arrays are float32 views of complex64 data, ``[..., 2 N]`` with the real and imaginary parts
interleaved.  Imported on first use (numba's import takes about half a second).
"""

from __future__ import annotations

import numpy as np

from dsp.jit import compiled


@compiled(fastmath=True, error_model="numpy")
def _cdot(x: np.ndarray, o: int, col: np.ndarray) -> tuple[np.float32, np.float32]:
    """``x[o:][:2 L] @ col`` for interleaved complex ``col`` ``[2 L]`` (float32): (real, imag)."""
    xm = x[o : o + col.shape[0]]  # a slice: an offset index x[o + k] kept the loop scalar (7x)
    re = np.float32(0.0)
    im = np.float32(0.0)
    for k in range(col.shape[0] // 2):
        xr, xi = xm[2 * k], xm[2 * k + 1]
        cr, ci = col[2 * k], col[2 * k + 1]
        re += xr * cr - xi * ci
        im += xr * ci + xi * cr
    return re, im


@compiled(fastmath=True, error_model="numpy")
def _caxpy(x: np.ndarray, o: int, wr: np.float32, wi: np.float32, acc: np.ndarray) -> None:
    """``acc += (wr + j wi) x[o:][:2 L]`` for interleaved complex ``acc`` ``[2 L]`` (float32)."""
    xm = x[o : o + acc.shape[0]]  # a slice (see _cdot)
    for k in range(acc.shape[0] // 2):
        xr, xi = xm[2 * k], xm[2 * k + 1]
        acc[2 * k] += wr * xr - wi * xi
        acc[2 * k + 1] += wr * xi + wi * xr


@compiled(fastmath=True, error_model="numpy")
def dot_levels(
    x: np.ndarray, start: int, step: int, table: np.ndarray, lev: np.ndarray, out: np.ndarray
) -> None:
    """``out[i] = x[start + i step] @ table[lev[i]]`` (complex) for ``i < len(lev)``: ``x``
    ``[window, 2 N]`` (C-contiguous: a strided view of every ``step``-th window would lose the
    loop's vectorisation), ``table`` ``[level, 2 N]``, ``out`` ``[i, 2]`` (float32 views of
    complex64)."""
    for i in range(lev.shape[0]):
        out[i, 0], out[i, 1] = _cdot(x[start + i * step], 0, table[lev[i]])


@compiled(fastmath=True, error_model="numpy")
def sum_levels(x: np.ndarray, w: np.ndarray, lev: np.ndarray, acc: np.ndarray) -> None:
    """``acc[lev[m]] += w[m] x[m]`` (complex): ``x`` ``[window, 2 N]``, ``w`` ``[window, 2]``,
    ``lev`` ``[window]``, ``acc`` ``[level, 2 N]`` (float32 views of complex64)."""
    for m in range(x.shape[0]):
        _caxpy(x[m], 0, w[m, 0], w[m, 1], acc[lev[m]])
