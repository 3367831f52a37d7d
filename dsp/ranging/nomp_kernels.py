"""Compiled inner loops of :mod:`dsp.ranging.nomp` (issues 14 and 18).

NOMP's fit is thousands of small steps (a handful of delays by ~800 subcarriers), where numpy's
per-call cost outweighs the arithmetic: the steering matrix with its conjugate and Gram matrix
(two phasor tables gathered and multiplied, eight numpy calls) and the Newton steps on one new
delay (a steering vector, three matrix products and a dozen element-wise operations per step)
are one loop each here.

Results equal numpy's to rounding, not to the bit: the sums run in another order and numba's
complex product and ``cos``/``sin`` are not numpy's loops (``tests/test_nomp_speed_equivalence.py``).
"""

from __future__ import annotations

import numpy as np

from dsp.jit import compiled


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


@compiled(error_model="numpy")
def tables(w, k_coarse, k_fine):  # pragma: no cover - compiled
    """The phasor tables ``exp(-j k_coarse w)`` ``[Q, path]`` and ``exp(-j k_fine w)`` ``[32, path]``
    whose gathered products are ``E`` (:func:`basis`, :func:`steer`)."""
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
    return coarse, fine


@compiled(error_model="numpy")
def steer(w, k_coarse, k_fine, q, r):  # pragma: no cover - compiled
    """``E = exp(-j k w)`` ``[N, path]`` alone (:func:`basis` without the conjugate and the Gram
    matrix), ``k_n = k_coarse[q_n] + k_fine[r_n]``."""
    coarse, fine = tables(w, k_coarse, k_fine)
    e = np.empty((q.size, w.size), np.complex128)
    for n in range(q.size):
        for j in range(w.size):
            e[n, j] = coarse[q[n], j] * fine[r[n], j]
    return e


@compiled(error_model="numpy")
def basis(w, k_coarse, k_fine, q, r, q_full):  # pragma: no cover - compiled
    """``E = exp(-j k w)`` ``[N, path]`` with ``k_n = k_coarse[q_n] + k_fine[r_n]`` (the product of
    the tables ``C = exp(-j k_coarse w)`` ``[Q, path]`` and ``F = exp(-j k_fine w)`` ``[32, path]``),
    ``conj(E)`` and ``E^H E`` ``[path, path]``.  ``E_nl = C_ql F_rl`` (the
    tables), so over a coarse index ``q`` whose fine indices are all there (``q_full[q]``) the
    Gram sum is ``conj(C_ql) C_qm T_lm`` with ``T = F^H F`` (32 terms): about ``60 L^2`` products
    instead of ``N L^2``; the few other subcarriers (the DC hole's row, the band edge) are added
    one by one."""
    n_paths = w.size
    coarse, fine = tables(w, k_coarse, k_fine)
    e = np.empty((q.size, n_paths), np.complex128)
    ec = np.empty((q.size, n_paths), np.complex128)
    for n in range(q.size):
        a = q[n]
        b = r[n]
        for j in range(n_paths):
            v = coarse[a, j] * fine[b, j]
            e[n, j] = v
            ec[n, j] = v.conjugate()
    t = np.zeros((n_paths, n_paths), np.complex128)
    for i in range(k_fine.size):
        for j in range(n_paths):
            fj = fine[i, j].conjugate()
            for m in range(j, n_paths):
                t[j, m] += fj * fine[i, m]
    gram = np.zeros((n_paths, n_paths), np.complex128)
    for i in range(k_coarse.size):
        if q_full[i]:
            for j in range(n_paths):
                cj = coarse[i, j].conjugate()
                for m in range(j, n_paths):
                    gram[j, m] += (cj * coarse[i, m]) * t[j, m]
    for n in range(q.size):
        if not q_full[q[n]]:
            for j in range(n_paths):
                for m in range(j, n_paths):
                    gram[j, m] += ec[n, j] * e[n, m]
    for j in range(n_paths):
        for m in range(j):
            gram[j, m] = gram[m, j].conjugate()
    return e, ec, gram
