"""Compiled inner loops of :mod:`dsp.ranging.nomp` (issues 14 and 18).

NOMP's fit is thousands of small steps (a handful of delays by ~800 subcarriers), where numpy's
per-call cost outweighs the arithmetic: the steering matrix (two phasor tables gathered and
multiplied, six numpy calls) and the Newton steps on one new delay (a steering vector, three
matrix products and a dozen element-wise operations per step) are one loop each here.

Results equal numpy's to rounding, not to the bit: the sums run in another order and numba's
complex product and ``cos``/``sin`` are not numpy's loops (``tests/test_nomp_speed_equivalence.py``).
"""

from __future__ import annotations

import numpy as np

from dsp.jit import compiled


@compiled(error_model="numpy")
def steer(w, k_coarse, k_fine, q, r):  # pragma: no cover - compiled
    """``E = exp(-j k w)`` ``[N, path]`` with ``k_n = k_coarse[q_n] + k_fine[r_n]``: the product of
    the tables ``exp(-j k_coarse w)`` ``[Q, path]`` and ``exp(-j k_fine w)`` ``[32, path]``."""
    n_paths = w.size
    coarse = np.empty((k_coarse.size, n_paths), np.complex128)
    fine = np.empty((k_fine.size, n_paths), np.complex128)
    for i in range(k_coarse.size):
        for j in range(n_paths):
            x = -(k_coarse[i] * w[j])
            coarse[i, j] = complex(np.cos(x), np.sin(x))
    for i in range(k_fine.size):
        for j in range(n_paths):
            x = -(k_fine[i] * w[j])
            fine[i, j] = complex(np.cos(x), np.sin(x))
    out = np.empty((q.size, n_paths), np.complex128)
    for n in range(q.size):
        a = q[n]
        b = r[n]
        for j in range(n_paths):
            out[n, j] = coarse[a, j] * fine[b, j]
    return out


@compiled(error_model="numpy")
def newton_one(res, inv_var, w0, steps, max_step, k, k_coarse, k_fine, q, r):  # pragma: no cover
    """``steps`` Newton steps on ``S(w) = sum_b abs(z_b(w))**2 / sigma_b^2``, ``z_b(w) = e(w)^H
    res_b`` (``res`` ``[band, N]``, ``inv_var`` ``[band]``), from ``w0``: each step ``-S'/S''``
    where ``S'' < 0`` (0 elsewhere), clipped to ``max_step``.  Returns ``w`` (not wrapped)."""
    n_bands = res.shape[0]
    coarse = np.empty(k_coarse.size, np.complex128)
    fine = np.empty(k_fine.size, np.complex128)
    z = np.empty(n_bands, np.complex128)
    z1 = np.empty(n_bands, np.complex128)
    z2 = np.empty(n_bands, np.complex128)
    w = w0
    for _ in range(steps):
        for i in range(k_coarse.size):
            x = k_coarse[i] * w  # conj(exp(-j k w))
            coarse[i] = complex(np.cos(x), np.sin(x))
        for i in range(k_fine.size):
            x = k_fine[i] * w
            fine[i] = complex(np.cos(x), np.sin(x))
        for b in range(n_bands):
            s0 = 0j
            s1 = 0j
            s2 = 0j
            for n in range(q.size):
                v = res[b, n] * (coarse[q[n]] * fine[r[n]])
                kn = k[n]
                s0 += v
                s1 += kn * v
                s2 += kn * (kn * v)
            z[b] = s0
            z1[b] = 1j * s1
            z2[b] = -s2
        g1 = 0.0
        g2 = 0.0
        for b in range(n_bands):
            zc = z[b].conjugate()
            g1 += inv_var[b] * (zc * z1[b]).real
            g2 += inv_var[b] * (abs(z1[b]) ** 2 + (zc * z2[b]).real)
        g1 *= 2
        g2 *= 2
        step = -g1 / g2 if g2 < 0 else 0.0
        w += min(max(step, -max_step), max_step)
    return w
