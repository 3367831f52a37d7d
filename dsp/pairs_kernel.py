"""Compiled loops over windows of int16 I/Q pairs, as the radio delivers them (sc16).

The receiver's two passes over its samples (each window against its delay level's column, and
the epochs' weighted window sums, :mod:`dsp.level_kernel`) read 4 bytes a sample here instead
of the 8 of complex64, and no conversion pass comes before them.  Each int16 is converted to
float32 in registers; the sc16 scale (``1 / 32767``) is folded into the column or the weight,
so the sums are the float32 sums of the complex64 kernels up to their order (about 1e-6
relative).

A window is ``[2 N]`` int16, I and Q interleaved.  A complex column ``c`` is given *split*:
``ab[0] = (Re c_0, -Im c_0, Re c_1, -Im c_1, ...)`` and ``ab[1] = (Im c_0, Re c_0, ...)``,
so that ``Re(x @ c) = x . ab[0]`` and ``Im(x @ c) = x . ab[1]`` are two dot products over
contiguous reals, which the compiler vectorises (1.2x faster than the interleaved complex
loop here; at about 9 GB/s of int16 read, this machine's memory speed).  Imported on first
use (numba's import takes about half a second).
"""

from __future__ import annotations

import numpy as np

from dsp.jit import compiled


def split_columns(table: np.ndarray, scale: float) -> np.ndarray:
    """Complex columns ``table`` ``[level, N]`` times ``scale`` in the split form ``[level, 2, 2 N]``
    float32 (see the module docstring)."""
    t = np.asarray(table) * scale
    ab = np.empty((t.shape[0], 2, 2 * t.shape[1]), np.float32)
    ab[:, 0, 0::2] = t.real
    ab[:, 0, 1::2] = -t.imag
    ab[:, 1, 0::2] = t.imag
    ab[:, 1, 1::2] = t.real
    return ab


@compiled(fastmath=True, error_model="numpy")
def _dot_split(xm: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.float32, np.float32]:
    """``(xm . a, xm . b)`` (int16 or float32 ``xm``, float32 ``a``, ``b``; pass slices, not
    offsets: numba leaves an offset-indexed loop scalar)."""
    re = np.float32(0.0)
    im = np.float32(0.0)
    for j in range(xm.shape[0]):
        v = np.float32(xm[j])
        re += v * a[j]
        im += v * b[j]
    return re, im


@compiled(fastmath=True, error_model="numpy")
def _axpy_split(xm: np.ndarray, wr: np.float32, wi: np.float32, a: np.ndarray) -> None:
    """``a += (wr + j wi) xm`` over interleaved complex ``xm`` (int16 or float32) and ``a``
    (float32), both ``[2 L]``."""
    for k in range(a.shape[0] // 2):
        xr = np.float32(xm[2 * k])
        xi = np.float32(xm[2 * k + 1])
        a[2 * k] += wr * xr - wi * xi
        a[2 * k + 1] += wr * xi + wi * xr


@compiled(fastmath=True, error_model="numpy")
def dot_levels_pairs(
    x: np.ndarray, start: int, step: int, ab: np.ndarray, lev: np.ndarray, out: np.ndarray
) -> None:
    """``out[i] = x[start + i step] @ c[lev[i]]`` (complex) for ``i < len(lev)``: ``x`` int16
    ``[window, 2 N]`` (C-contiguous: a strided view would cost the loop its vectorisation, 2.2x
    here), ``ab`` float32 ``[level, 2, 2 N]`` (split columns), ``out`` float32 ``[i, 2]``."""
    for i in range(lev.shape[0]):
        out[i, 0], out[i, 1] = _dot_split(x[start + i * step], ab[lev[i], 0], ab[lev[i], 1])


@compiled(fastmath=True, error_model="numpy")
def sum_levels_pairs(x: np.ndarray, w: np.ndarray, lev: np.ndarray, acc: np.ndarray) -> None:
    """``acc[lev[m]] += w[m] x[m]`` (complex): ``x`` int16 ``[window, 2 N]``, ``w`` float32
    ``[window, 2]`` (the scale folded in), ``lev`` ``[window]``, ``acc`` float32 ``[level, 2 N]``
    (a view of complex64)."""
    for m in range(x.shape[0]):
        _axpy_split(x[m], w[m, 0], w[m, 1], acc[lev[m]])


@compiled(fastmath=True, error_model="numpy")
def project_pairs(
    x: np.ndarray,
    first: int,
    ab: np.ndarray,
    lev: np.ndarray,
    z: np.ndarray,
    probe_ab: np.ndarray,
    probe_step: int,
    probe: np.ndarray,
    slope_ab: np.ndarray,
    slope_step: int,
    slope: np.ndarray,
) -> None:
    """One pass over a piece's windows for everything :meth:`dsp.alignment.LevelAlignment.project`
    takes from them: ``z[m] = x[m] @ c[lev[m]]``; on every ``probe_step``-th window of the block
    (``first``: the block index of ``x[0]``) its product with the probe column ``probe_ab[0]``,
    in ``probe[(first + m) // probe_step]``; on every ``slope_step``-th (``slope_step`` 0: none)
    its product with its level's slope column, in ``slope[(first + m) // slope_step]``.  Each
    window is read from memory once; the extra products read it from cache (a separate strided
    pass over every 8th window cost 40 % of the main pass: a page per window, no prefetch).
    ``x`` int16 ``[window, 2 N]`` C-contiguous; columns split ``[level, 2, 2 N]``; outputs float32
    ``[..., 2]``."""
    for m in range(x.shape[0]):
        xm = x[m]
        i = first + m
        z[m, 0], z[m, 1] = _dot_split(xm, ab[lev[m], 0], ab[lev[m], 1])
        if i % probe_step == 0:
            k = i // probe_step
            probe[k, 0], probe[k, 1] = _dot_split(xm, probe_ab[0, 0], probe_ab[0, 1])
        if slope_step > 0 and i % slope_step == 0:
            k = i // slope_step
            slope[k, 0], slope[k, 1] = _dot_split(xm, slope_ab[lev[m], 0], slope_ab[lev[m], 1])
