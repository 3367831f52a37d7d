"""Compiled Levenberg-Marquardt fit of ``nomp_product``'s product model (issue 14).

The side-band fit of :class:`dsp.ranging.nomp_product.NompProduct` is about ten fits of up to 200
model evaluations each per estimate, on a dozen parameters and ~800 subcarriers: numpy's per-call
cost outweighed the arithmetic (about 130 us per evaluation, 85 % of the estimate).  Here one
compiled loop does the whole fit, with the same steps as the numpy formulation it replaced:

* parameters ``x`` (real): ``w_1i`` (``i >= 1``; ``w_10 = 0``), ``w_2j``, then ``Re, Im g_1i``
  (``i >= 1``; ``g_10 = 1``), then per band ``Re, Im g_2bj``;
* residual ``r_b = sigma_b^-1 (y_b - H_1 * H_2b)``, ``H_1 = E(w_1) g_1``, ``H_2b = E(w_2) g_2b``;
* Gauss-Newton normal equations ``Re(J^H J) s = -Re(J^H r)`` damped by Marquardt's
  ``lambda diag(J^H J)``: ``lambda`` starts at 0.1, is divided by 3 after a step that lowers the
  cost and multiplied by 4 after one that does not (10 where the system is singular); the fit
  stops after ``evaluations`` model evaluations, when no step lowers the cost, or when a step
  lowers it by less than ``1e-9`` of itself.

``J``'s columns are few distinct vectors: ``dr_b/dw_1i = -sigma_b^-1 (-j k) g_1i H_2b e(w_1i)``
and the gain columns ``H_2b e(w_1i)`` (real part) and ``j`` times it (imaginary part); the same
for ``H_1 e(w_2j)``.  ``J^H J`` is therefore assembled from the Gram matrix of those
``2 (L_1 - 1) + 2 L_2`` complex vectors per band, not from the ``[B N, P]`` Jacobian: 2.3 times
fewer products, summed as real loops that the compiler vectorises (``fastmath``: the sums in
another order).

Results equal the numpy formulation's to rounding (``tests/test_nomp_product_speed_equivalence.py``).
"""

from __future__ import annotations

import numpy as np

from dsp.jit import compiled
from dsp.ranging.nomp_kernels import steer


@compiled(error_model="numpy")
def unpack(x, l1, l2, n_bands):  # pragma: no cover - compiled
    """``(w1 [L1], w2 [L2], g1 [L1], g2 [band, L2])`` from the parameters ``x`` (module docstring)."""
    w1 = np.zeros(l1)
    w1[1:] = x[: l1 - 1]
    w2 = x[l1 - 1 : l1 - 1 + l2].copy()
    at = l1 - 1 + l2
    g1 = np.empty(l1, np.complex128)
    g1[0] = 1.0
    for i in range(1, l1):
        g1[i] = complex(x[at + 2 * (i - 1)], x[at + 2 * (i - 1) + 1])
    at += 2 * (l1 - 1)
    g2 = np.empty((n_bands, l2), np.complex128)
    for b in range(n_bands):
        for j in range(l2):
            g2[b, j] = complex(x[at + 2 * (b * l2 + j)], x[at + 2 * (b * l2 + j) + 1])
    return w1, w2, g1, g2


@compiled(error_model="numpy")
def _evaluate(y, sd, x, l1, l2, k_coarse, k_fine, q, r):  # pragma: no cover - compiled
    """Whitened residual ``[band, N]``, its energy, and the model's parts at ``x``."""
    n_bands, n = y.shape
    w1, w2, g1, g2 = unpack(x, l1, l2, n_bands)
    e1 = steer(w1, k_coarse, k_fine, q, r)
    e2 = steer(w2, k_coarse, k_fine, q, r)
    h1 = np.empty(n, np.complex128)
    for m in range(n):
        s = 0j
        for i in range(l1):
            s += e1[m, i] * g1[i]
        h1[m] = s
    h2 = np.empty((n_bands, n), np.complex128)
    res = np.empty((n_bands, n), np.complex128)
    cost = 0.0
    for b in range(n_bands):
        for m in range(n):
            s = 0j
            for j in range(l2):
                s += e2[m, j] * g2[b, j]
            h2[b, m] = s
            v = sd[b] * (y[b, m] - h1[m] * s)
            res[b, m] = v
            cost += v.real * v.real + v.imag * v.imag
    return res, cost, g1, g2, e1, e2, h1, h2


@compiled(error_model="numpy", fastmath=True)
def _gram(vr, vi, rr, ri):  # pragma: no cover - compiled
    """``V^H V`` (upper triangle; real and imaginary parts ``[A, A]``) and ``V^H r`` ``[A]`` of the
    columns ``V = vr + j vi`` ``[A, N]`` and ``r = rr + j ri`` ``[N]``, as plain real sums (which
    the compiler vectorises: a third of the time of a complex BLAS product on these shapes)."""
    n_a, n = vr.shape
    gr = np.zeros((n_a, n_a))
    gi = np.zeros((n_a, n_a))
    zr = np.zeros(n_a)
    zi = np.zeros(n_a)
    for i in range(n_a):
        for j in range(i, n_a):
            sr = 0.0
            si = 0.0
            for m in range(n):
                sr += vr[i, m] * vr[j, m] + vi[i, m] * vi[j, m]
                si += vr[i, m] * vi[j, m] - vi[i, m] * vr[j, m]
            gr[i, j] = sr
            gi[i, j] = si
        sr = 0.0
        si = 0.0
        for m in range(n):
            sr += vr[i, m] * rr[m] + vi[i, m] * ri[m]
            si += vr[i, m] * ri[m] - vi[i, m] * rr[m]
        zr[i] = sr
        zi[i] = si
    return gr, gi, zr, zi


@compiled(error_model="numpy")
def _normal_equations(k, sd, l1, l2, g1, g2, e1, e2, h1, h2, res):  # pragma: no cover - compiled
    """``Re(J^H J)`` ``[P, P]`` and ``Re(J^H r)`` ``[P]`` from the Gram matrix of ``J``'s distinct
    complex columns, per band (module docstring)."""
    n_bands, n = h2.shape
    n_a = 2 * (l1 - 1) + 2 * l2  # distinct columns: d/dw1, d/dw2, H_2 e(w1), H_1 e(w2)
    n_par = (l1 - 1) + l2 + 2 * (l1 - 1) + 2 * n_bands * l2
    normal = np.zeros((n_par, n_par))
    grad = np.zeros(n_par)
    alpha = np.empty(n_par, np.int64)  # the distinct column of each parameter in this band (-1: none)
    imag = np.zeros(n_par, np.bool_)  # the parameter's column is j times it (an imaginary part)
    vr = np.empty((n_a, n))
    vi = np.empty((n_a, n))
    for b in range(n_bands):
        s = -sd[b]
        for m in range(n):
            minus_jk = -1j * k[m]
            for i in range(1, l1):
                g = s * (h2[b, m] * e1[m, i])
                d = g * minus_jk * g1[i]
                vr[i - 1, m], vi[i - 1, m] = d.real, d.imag
                vr[(l1 - 1) + l2 + (i - 1), m], vi[(l1 - 1) + l2 + (i - 1), m] = g.real, g.imag
            for j in range(l2):
                g = s * (h1[m] * e2[m, j])
                d = g * minus_jk * g2[b, j]
                vr[(l1 - 1) + j, m], vi[(l1 - 1) + j, m] = d.real, d.imag
                vr[2 * (l1 - 1) + l2 + j, m], vi[2 * (l1 - 1) + l2 + j, m] = g.real, g.imag
        gr, gi, zr, zi = _gram(vr, vi, res[b].real.copy(), res[b].imag.copy())
        for p in range(n_par):
            alpha[p] = -1
            imag[p] = False
        for p in range((l1 - 1) + l2):  # delays
            alpha[p] = p
        at = (l1 - 1) + l2
        for i in range(l1 - 1):  # Re, Im g_1
            alpha[at + 2 * i] = (l1 - 1) + l2 + i
            alpha[at + 2 * i + 1] = (l1 - 1) + l2 + i
            imag[at + 2 * i + 1] = True
        at += 2 * (l1 - 1) + 2 * b * l2
        for j in range(l2):  # this band's Re, Im g_2
            alpha[at + 2 * j] = 2 * (l1 - 1) + l2 + j
            alpha[at + 2 * j + 1] = 2 * (l1 - 1) + l2 + j
            imag[at + 2 * j + 1] = True
        for p in range(n_par):
            ap = alpha[p]
            if ap < 0:
                continue
            grad[p] += zi[ap] if imag[p] else zr[ap]  # Re(conj(c_p) z), c = 1 or j
            for t in range(n_par):
                aq = alpha[t]
                if aq < 0:
                    continue
                # (V^H V)[ap, aq] from the upper triangle
                g_re = gr[ap, aq] if ap <= aq else gr[aq, ap]
                g_im = gi[ap, aq] if ap <= aq else -gi[aq, ap]
                if imag[p] == imag[t]:
                    normal[p, t] += g_re
                elif imag[t]:  # Re(j G)
                    normal[p, t] -= g_im
                else:  # Re(-j G)
                    normal[p, t] += g_im
    return normal, grad


@compiled(error_model="numpy")
def product_lm(y, sd, x0, l1, l2, evaluations, k, k_coarse, k_fine, q, r):  # pragma: no cover
    """Levenberg-Marquardt on the whitened product model from ``x0`` (module docstring); ``y``
    ``[band, N]``, ``sd = 1 / sigma`` ``[band]``.  Returns ``(x, cost)``."""
    x = x0.copy()
    n_par = x.size
    res, cost, g1, g2, e1, e2, h1, h2 = _evaluate(y, sd, x, l1, l2, k_coarse, k_fine, q, r)
    used = 1
    damping = 1e-1
    while used < evaluations:
        normal, grad = _normal_equations(k, sd, l1, l2, g1, g2, e1, e2, h1, h2, res)
        descent = False
        c_try = cost
        x_try = x
        while used < evaluations:
            a = normal.copy()
            for i in range(n_par):
                a[i, i] += damping * max(normal[i, i], 1e-300)
            try:
                step = np.linalg.solve(a, -grad)
            except Exception:  # singular: damp harder (counted as an evaluation)
                damping *= 10
                used += 1
                continue
            x_try = x + step
            parts = _evaluate(y, sd, x_try, l1, l2, k_coarse, k_fine, q, r)
            c_try = parts[1]
            used += 1
            if c_try < cost:
                descent = True
                break
            damping *= 4
        if not descent:
            break
        improvement = cost - c_try
        x = x_try
        res, cost, g1, g2, e1, e2, h1, h2 = parts
        damping = max(damping / 3, 1e-12)
        if improvement < 1e-9 * cost:
            break
    return x, cost


@compiled(error_model="numpy")
def relaxed_costs(gram, p, y_energy, inv_var, subsets, sizes):  # pragma: no cover - compiled
    """Whitened residual energy of each hypothesis' linear relaxation ``[hypothesis]``: ``y``
    projected on the span of its atoms, ``sum_b (|y_b|^2 - p_bS^H G_SS^-1 p_bS) / sigma_b^2``.

    ``gram`` ``[U, U]`` is ``E^H E`` and ``p`` ``[band, U]`` is ``E^H y_b`` of the ``U`` distinct
    sumset atoms that the hypotheses draw from, ``y_energy`` ``[band]`` is ``|y_b|^2``, ``subsets``
    ``[hypothesis, S]`` the atoms of each (the first ``sizes[h]``).  ``G_SS`` is factored by
    Cholesky; a pivot below ``1e-10`` of its diagonal (atoms the band cannot tell apart) gives NaN,
    for the caller to solve by least squares on the atoms themselves."""
    n_h = subsets.shape[0]
    n_bands = p.shape[0]
    out = np.empty(n_h)
    chol = np.zeros((subsets.shape[1], subsets.shape[1]), np.complex128)
    z = np.empty(subsets.shape[1], np.complex128)
    for h in range(n_h):
        s = sizes[h]
        idx = subsets[h]
        ok = True
        for i in range(s):  # G_SS = L L^H
            for j in range(i + 1):
                acc = gram[idx[i], idx[j]]
                for t in range(j):
                    acc -= chol[i, t] * chol[j, t].conjugate()
                if i == j:
                    d = acc.real
                    if not d > 1e-10 * gram[idx[i], idx[i]].real:
                        ok = False
                        break
                    chol[i, i] = np.sqrt(d)
                else:
                    chol[i, j] = acc / chol[j, j].real
            if not ok:
                break
        if not ok:
            out[h] = np.nan
            continue
        total = 0.0
        for b in range(n_bands):
            explained = 0.0
            for i in range(s):  # L z = p_S: the energy in the span is |z|^2
                acc = p[b, idx[i]]
                for t in range(i):
                    acc -= chol[i, t] * z[t]
                z[i] = acc / chol[i, i].real
                explained += z[i].real * z[i].real + z[i].imag * z[i].imag
            total += inv_var[b] * (y_energy[b] - explained)
        out[h] = total
    return out
