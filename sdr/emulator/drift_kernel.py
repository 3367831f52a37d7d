"""The Taylor runs of ``drift.DriftingPeriodic.render`` combined in one compiled pass.

numpy spent about 8 ns per sample here (the ``A``, ``B``, ``C`` waveforms of each run as
whole-array passes, a coefficient array, a batched matrix product and a copy); this kernel
writes each output sample once from the run's three waveforms, under 1 ns.
"""

from __future__ import annotations

import numpy as np

from dsp.jit import compiled

_HALF = np.float32(0.5)


@compiled(error_model="numpy", fastmath={"contract"})
def combine_runs(
    w: np.ndarray,
    col: np.ndarray,
    eps: np.ndarray,
    big: np.ndarray,
    rows: np.ndarray,
    m0: int,
    out: np.ndarray,
) -> None:
    """``out[m - m0, i] = rows[m] (P0 + e P1 + e^2 / 2 P2)[i]``, ``e = big[m mod r] + eps[i]``,
    for periods ``m`` from ``m0`` (``out.shape[0]`` of them).

    ``w`` complex64 ``[run, 3, sample]``: run ``k``'s ``w_p`` (normalised derivatives); ``P_p =
    col * w_p``, ``col`` complex64 ``[sample]``; ``eps`` float32 ``[sample]`` and ``big`` float32
    ``[r]`` the offsets of sample and period from the run's centre (the Taylor variable ``x``);
    ``rows`` complex64 ``[period]`` (all periods of the block); ``out`` float32 ``[period, 2 *
    sample]`` (the view of complex64 ``[period, sample]``), period ``m`` in run ``m // r``.
    Horner's order, in float32; the run's waveforms held as separate real and imaginary rows,
    so that the loop over samples vectorises.
    """
    m1 = m0 + out.shape[0]
    n = w.shape[2]
    r = big.shape[0]
    a_re, a_im = np.empty(n, np.float32), np.empty(n, np.float32)
    b_re, b_im = np.empty(n, np.float32), np.empty(n, np.float32)
    c_re, c_im = np.empty(n, np.float32), np.empty(n, np.float32)
    for k in range(m0 // r, (m1 - 1) // r + 1):
        for i in range(n):
            p0 = col[i] * w[k, 0, i]
            p1 = col[i] * w[k, 1, i]
            p2 = col[i] * w[k, 2, i] * _HALF
            a_re[i], a_im[i] = p0.real, p0.imag
            b_re[i], b_im[i] = p1.real, p1.imag
            c_re[i], c_im[i] = p2.real, p2.imag
        for m in range(max(k * r, m0), min((k + 1) * r, m1)):
            gr, gi = rows[m].real, rows[m].imag
            e0 = big[m - k * r]
            o = out[m - m0]
            for i in range(n):
                e = e0 + eps[i]
                vr = a_re[i] + e * (b_re[i] + e * c_re[i])
                vi = a_im[i] + e * (b_im[i] + e * c_im[i])
                o[2 * i] = gr * vr - gi * vi
                o[2 * i + 1] = gr * vi + gi * vr


@compiled(error_model="numpy")
def fill_spectra(
    dspec: np.ndarray, ramp0: np.ndarray, ramp_step: np.ndarray, bins: np.ndarray, grid: np.ndarray
) -> None:
    """``grid[k, p, bins[j]] = dspec[p, j] * ramp0[j] * ramp_step[j]**k`` (complex128 products,
    the ramp a running product as ``np.cumprod`` forms it, each value rounded to complex64).

    ``dspec`` complex128 ``[term, subcarrier]``; ``ramp0``, ``ramp_step`` complex128
    ``[subcarrier]``; ``bins`` int64 ``[subcarrier]``; ``grid`` complex64 ``[run, term, bin]``,
    zero elsewhere (not written).
    """
    ramp = ramp0.copy()
    for k in range(grid.shape[0]):
        if k:
            for j in range(ramp.shape[0]):
                ramp[j] = ramp[j] * ramp_step[j]
        for p in range(grid.shape[1]):
            for j in range(ramp.shape[0]):
                grid[k, p, bins[j]] = np.complex64(dspec[p, j] * ramp[j])
