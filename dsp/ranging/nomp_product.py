"""NOMP with the side bands fitted in their product form ``H_1 H_2u`` (issue 14).

The side band ``u`` observes the compound channel as a **product** (SYSTEM.md section 1, eq. (91)):

    Y_u[n] = H_1(w) H_2u(w) + noise,  H_1 = sum_i g_1i exp(-j k_n w_1i),  H_2u = sum_j g_2uj exp(-j k_n w_2j),

``L_1 + L_2`` delays where :class:`dsp.ranging.nomp.Nomp` fits ``L_1 L_2`` free ones.  With
scatterers around the nodes, compound paths ``(i, j)`` and ``(i', j')`` often lie a fraction of a
resolution cell apart, where the compound model cannot place the first path (its K-path bound is
kilometres) but the product model can (decimetres, :mod:`dsp.crlb_product`).  ``H_1`` (TX-tag) is
seen at the carrier in every side band, so with two side bands it is common to both; ``H_2u``
(tag-RX) has common delays and each band its own gains, which also absorb each band's phase.

The central band (TX-RX, no product form) is fitted by NOMP as before.  The side bands:

1. **Compound NOMP** (:meth:`Nomp.fit`, both side bands jointly): the first path ``w_0`` and the
   atoms around it.
2. **Hypotheses.**  The ``candidates`` most significant other atoms give offsets ``w_k - w_0``.
   Every choice "offsets ``A`` belong to ``H_1``, offsets ``B`` to ``H_2``" (1 to ``factor_offsets``
   in ``A``, 0 to ``factor_offsets`` in ``B``; an atom may be in both: a merged pair whose two legs
   have the same excess length) is ranked by its **linear relaxation** (the compound model on the
   sumset of delays, every gain free: one least-squares solve); the ``finalists`` best start a
   Levenberg-Marquardt fit of the product model (analytic Jacobian, normal equations in complex
   form, at most ``fit_evaluations`` model evaluations) with the gauge ``w_10 = 0``,
   ``g_10 = 1`` (the product is unchanged by moving a delay or a gain factor from one factor to
   the other).
3. **Selection.**  Each model's whitened residual energy plus ``T`` per path (``T`` NOMP's
   detection threshold, ``ln(N / pfa)`` for one band): NOMP's compound fit is a candidate too,
   so where no product explains the data better, NOMP's answer stands.
4. **Pruning.**  A product path whose drop, the rest re-fitted, costs less than ``T`` goes.
5. **Guards** (each falls back to NOMP's estimate): the product must fit better than NOMP's fit
   grown to as many free compound paths (else it found model mismatch, not structure); its
   residual must reach the noise (``fit_sigmas`` deviations of the chi-square; else the channel
   has more paths than the hypotheses hold); its first path must lie at most ``max_shift_cells``
   (one resolution cell) ahead of NOMP's and at most ``max_later_cells`` (0.75 cell) behind it (a
   refinement, not another cluster: in a cluster the band does not resolve, NOMP's first path may
   be most of a cell off, which the product form corrects; half a cell either way, the limits until
   session 17, threw away 15 such corrections of 5-12 m on the ranging sweeps; later by more than
   0.75 cell, 0.89-0.92 cell in the three cases seen, the product fit had explained NOMP's first
   path away in unidentifiable 4- and 8-NLoS channels and was 8-13 m late) and its own bound below
   ``max_std_cells``.
6. **First path** ``w_1,first + w_2,first``: in each factor the earliest path no weaker than its
   strongest by more than ``first_path_db``.  Its standard deviation is the product-form bound at
   the fitted values and the estimated noise (:func:`dsp.crlb_product.product_crlb_s2`).

Cost: one NOMP fit, ``O(candidates^(2 factor_offsets))`` small Cholesky solves (the relaxations,
from one Gram matrix of the sumset atoms they share) and ``finalists`` compiled Levenberg-Marquardt
fits (:mod:`dsp.ranging.nomp_product_kernels`) per side estimate: 39 ms median on one core with 8
NLoS paths (``backscatter bench``), within the 50 ms per estimate that lets the live worker keep
real time at 10 epochs a second with NOMP in the central band beside it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from dsp.crlb_product import product_crlb_s2
from dsp.ranging import nomp_kernels, nomp_product_kernels
from dsp.ranging.nomp import Nomp, NompEstimate, NompParams, gamma_threshold
from dsp.ranging.params import param


@dataclass(frozen=True)
class NompProductParams(NompParams):
    method = "nomp_product"
    candidates: int = param(
        4, "compound atoms after the first path tried as offsets of either factor", "[1, 8]"
    )
    factor_offsets: int = param(2, "most offsets per factor in a starting hypothesis", "[1, 3]")
    finalists: int = param(
        10, "hypotheses fitted in product form, the best of the linear relaxation", "[1, 100]"
    )
    fit_evaluations: int = param(200, "model evaluations of each product fit", "[5, 500]")
    split_cells: float = param(
        0.0, "also try offsets this many cells either side of the first path (0: off)", "[0, 1]"
    )
    fit_sigmas: float = param(
        3.0, "the product's residual may exceed the noise by this many of its standard deviations", "(0, 100]"
    )
    max_std_cells: float = param(
        0.2, "the product fit's first path is kept only if its bound is below this many cells", "(0, 100]"
    )
    max_shift_cells: float = param(
        1.0,
        "the product fit's first path is kept at most this many resolution cells ahead of NOMP's "
        "(else NOMP's)",
        "(0, 100]",
    )

    max_later_cells: float = param(
        0.75,
        "the product fit's first path is kept at most this many resolution cells after NOMP's (else NOMP's)",
        "(0, 100]",
    )

    def _validate(self) -> None:
        super()._validate()
        self._check_range("candidates", 1, 8)
        self._check_range("factor_offsets", 1, 3)
        self._check_range("fit_evaluations", 5, 500)
        self._check_range("finalists", 1, 100)
        self._check_range("max_shift_cells", 0.0, 100.0, open_lo=True)
        self._check_range("fit_sigmas", 0.0, 100.0, open_lo=True)
        self._check_range("split_cells", 0.0, 1.0)
        self._check_range("max_std_cells", 0.0, 100.0, open_lo=True)
        self._check_range("max_later_cells", 0.0, 100.0, open_lo=True)


@dataclass(frozen=True)
class ProductFit:
    """``w1`` ``[L_1]`` (``w1[0] = 0``), ``g1`` ``[L_1]`` (``g1[0] = 1``), ``w2`` ``[L_2]``,
    ``g2`` ``[band, L_2]``, whitened residual energy ``cost``; ``w = 2 pi df tau``."""

    w1: np.ndarray
    g1: np.ndarray
    w2: np.ndarray
    g2: np.ndarray
    cost: float

    @property
    def n_paths(self) -> int:
        return self.w1.size - 1 + self.w2.size


class NompProduct(Nomp):
    """NOMP; the side bands refined in their product form H_1 H_2u (TX-tag x tag-RX), ~40 ms each."""

    name = "nomp_product"
    Params = NompProductParams
    params: NompProductParams
    product_sides = True

    def side_delay_and_std_s(self, cfrs: np.ndarray) -> tuple[float, float]:
        """First-path delay (s) and its deviation from side bands ``cfrs`` ``[band, subcarrier]``."""
        y = self._check(cfrs)
        est = self.fit(y)
        if est.first < 0:
            return est.delay_s, est.delay_std_s
        fit = self.product_fit(y, est)
        if fit is None:
            return est.delay_s, est.delay_std_s
        delay, std = self._first(fit, est.noise_var)
        # a refinement within a resolution cell: a first path farther away is another cluster's,
        # whose choice NOMP's first-path rule (components, significance) makes better
        window = 1.0 / self.wf.subcarrier_spacing_hz
        shift = (delay - est.delay_s + window / 2) % window - window / 2
        cell_s = 1.0 / self.wf.occupied_bandwidth_hz
        if not -self.params.max_shift_cells * cell_s <= shift <= self.params.max_later_cells * cell_s:
            return est.delay_s, est.delay_std_s
        # a product fit that does not pin its own first path down (its bound above a fifth of a cell
        # by default) has resolved nothing: NOMP's answer
        if not std <= self.params.max_std_cells * cell_s:
            return est.delay_s, est.delay_std_s
        return delay, std

    # ----- the product model ---------------------------------------------------------------------
    def product_fit(self, y: np.ndarray, est: NompEstimate) -> ProductFit | None:
        """The best product model started from NOMP's atoms, or ``None`` where NOMP's compound fit
        has the lower penalised cost.  ``y`` ``[band, subcarrier]``."""
        p = self.params
        thr = self.threshold.get(y.shape[0]) or gamma_threshold(self.k.size, y.shape[0], p.pfa)
        w = est.delays_s * (2 * np.pi * self.wf.subcarrier_spacing_hz)
        a = est.gains
        inv_var = 1.0 / est.noise_var
        w0, a0 = w[est.first], a[:, est.first]
        w_nomp = w
        ref = int(np.argmax(np.abs(a0)))  # the band whose first gain fixes the H_1 gains' scale
        order = np.argsort(-np.sum(np.abs(a) ** 2 * inv_var[:, None], axis=0))
        others = [int(i) for i in order if i != est.first][: p.candidates]
        compound_r = y - a @ self._e(w).T
        best_score = _cost(compound_r, inv_var) + thr * w.size
        if p.split_cells > 0:  # offsets inside the first path's cell, which NOMP may have merged
            virtual = w0 + p.split_cells * self.cell_w * np.array([-1.0, 1.0])
            others += [w.size, w.size + 1]
            w = np.append(w, virtual)
            a = np.concatenate([a, 0.5 * a0[:, None] * np.ones(2)], axis=1)
        screened = self._screen(y, w, a, w0, a0, ref, others, inv_var, thr)
        best: ProductFit | None = None
        for _, (w1, g1, w2, g2) in screened[: p.finalists]:
            fit = self._lm(y, w1, g1, w2, g2, inv_var, p.fit_evaluations)
            score = fit.cost + thr * fit.n_paths
            if score < best_score:
                best, best_score = fit, score
        if best is None:
            return None
        best = self._prune(y, best, inv_var, thr)
        # as many compound paths, free: a product that fits no better than they do has found model
        # mismatch (or noise), not structure; its extra factor paths would only move the first path
        if best.n_paths > w_nomp.size and best.cost >= self._compound_cost(
            y, w_nomp, est.noise_var, best.n_paths
        ):
            return None
        # the product must explain the data down to the noise: its whitened residual energy is
        # chi-square with 2 B N degrees of freedom over 2, mean B N and deviation sqrt(B N); more than
        # `fit_sigmas` deviations above is a model too small for the channel (rich multipath)
        n_obs = y.size
        return best if best.cost <= n_obs + p.fit_sigmas * math.sqrt(n_obs) else None

    def _screen(
        self,
        y: np.ndarray,
        w: np.ndarray,
        a: np.ndarray,
        w0: float,
        a0: np.ndarray,
        ref: int,
        others: list[int],
        inv_var: np.ndarray,
        thr: float,
    ) -> list[tuple[float, tuple[np.ndarray, ...]]]:
        """Every hypothesis "offsets ``A`` in ``H_1``, ``B`` in ``H_2``" with its start ``(w1, g1, w2,
        g2)``, ranked by its linear relaxation's penalised cost (:meth:`_relaxed_cost`), best first.

        The hypotheses' sumset atoms ``w_1a + w_2b`` all come from one pool (``a``, ``b`` the first
        path or an offset in ``others``; ``(a, b)`` and ``(b, a)`` are one atom), so ``E^H E`` and
        ``E^H y`` are formed once for the pool and each relaxation is a small Cholesky solve
        (:func:`~dsp.ranging.nomp_product_kernels.relaxed_costs`): the same projection as
        :meth:`_relaxed_cost`'s least squares, to rounding."""
        p = self.params
        if not others:  # NOMP fitted one path: nothing to factor
            return []
        pool_w1 = np.concatenate([[0.0], _wrap(w[others] - w0)])  # [1 + offsets]: 0 is the first path
        pool_w2 = np.concatenate([[w0], w[others]])
        keys = [(i, j) for i in range(len(others) + 1) for j in range(i, len(others) + 1)]
        atom = {key: u for u, key in enumerate(keys)}
        e = self._e(np.array([pool_w1[i] + pool_w2[j] for i, j in keys]))  # [N, U]
        ec = e.conj()
        gram, proj = ec.T @ e, y @ ec  # [U, U], [band, U]
        energy = np.sum(y.real**2 + y.imag**2, axis=1)
        starts, subsets = [], []
        pos = {o: i + 1 for i, o in enumerate(others)}
        for n1, n2 in itertools.product(range(1, p.factor_offsets + 1), range(p.factor_offsets + 1)):
            for sa in itertools.combinations(others, n1):
                for sb in itertools.combinations(others, n2):
                    ia, ib = list(sa), list(sb)
                    w1 = np.concatenate([[0.0], _wrap(w[ia] - w0)])
                    w2 = np.concatenate([[w0], w[ib]])
                    g1 = np.concatenate([[1.0], a[ref, ia] / a0[ref]])
                    g2 = np.concatenate([a0[:, None], a[:, ib]], axis=1)
                    starts.append((n1 + n2 + 1, (w1, g1, w2, g2)))
                    pa, pb = [0] + [pos[o] for o in ia], [0] + [pos[o] for o in ib]
                    subsets.append(sorted({atom[(min(i, j), max(i, j))] for i in pa for j in pb}))
        sizes = np.array([len(s) for s in subsets])
        padded = np.zeros((len(subsets), sizes.max()), np.int64)
        for h, s in enumerate(subsets):
            padded[h, : len(s)] = s
        costs = nomp_product_kernels.relaxed_costs(gram, proj, energy, inv_var, padded, sizes)
        for h in np.flatnonzero(~np.isfinite(costs)):  # atoms too close for the Cholesky: least squares
            _, (w1, _, w2, _) = starts[h]
            costs[h] = self._relaxed_cost(y, w1, w2, inv_var)
        screened = [(c + thr * n, start) for c, (n, start) in zip(costs.tolist(), starts, strict=True)]
        screened.sort(key=lambda t: t[0])
        return screened

    def _relaxed_cost(self, y: np.ndarray, w1: np.ndarray, w2: np.ndarray, inv_var: np.ndarray) -> float:
        """Whitened residual energy of the product model relaxed: every compound gain on the sumset
        ``w1 + w2`` free (one least-squares solve), which ranks the hypotheses before any fit."""
        e = self._e((w1[:, None] + w2[None, :]).ravel())
        g = np.linalg.lstsq(e, y.T, rcond=1e-10)[0]
        return _cost(y - (e @ g).T, inv_var)

    def _compound_cost(self, y: np.ndarray, w: np.ndarray, var: np.ndarray, n_paths: int) -> float:
        """Whitened residual energy of NOMP's compound fit grown greedily (matched filter, Newton,
        refit: NOMP's own steps, no stopping rule) from the delays ``w`` to ``n_paths`` atoms."""
        w, _, r = self._refit(y, w, var, self.params.refine_steps)
        while w.size < n_paths:
            g, _ = self._matched(r, var)
            q = int(np.argmax(g))
            w_new = self._newton_one(r, var, 2 * np.pi * q / g.size, self.params.newton_steps)
            before = w.size
            w, _, r = self._refit(y, np.append(w, w_new), var, self.params.refine_steps)
            if w.size <= before:  # merged into a fitted path: no better compound fit of this size
                break
        return _cost(r, 1.0 / var)

    def _prune(self, y: np.ndarray, fit: ProductFit, inv_var: np.ndarray, thr: float) -> ProductFit:
        """Drop the path whose removal (the rest re-fitted) costs least, while that is below ``thr``."""
        steps = max(self.params.fit_evaluations // 2, 5)
        while fit.n_paths > 1:
            trials = [
                self._lm(y, np.delete(fit.w1, i), np.delete(fit.g1, i), fit.w2, fit.g2, inv_var, steps)
                for i in range(1, fit.w1.size)
            ]
            if fit.w2.size > 1:
                trials += [
                    self._lm(y, fit.w1, fit.g1, np.delete(fit.w2, j), np.delete(fit.g2, j, 1), inv_var, steps)
                    for j in range(fit.w2.size)
                ]
            cheapest = min(trials, key=lambda t: t.cost)
            if cheapest.cost - fit.cost >= thr:
                break
            fit = cheapest
        return fit

    def _lm(
        self,
        y: np.ndarray,
        w1: np.ndarray,
        g1: np.ndarray,
        w2: np.ndarray,
        g2: np.ndarray,
        inv_var: np.ndarray,
        evaluations: int,
    ) -> ProductFit:
        """Levenberg-Marquardt on the whitened product model from ``(w1, g1, w2, g2)``: at most
        ``evaluations`` model evaluations (:func:`dsp.ranging.nomp_product_kernels.product_lm`)."""
        y = np.ascontiguousarray(y, np.complex128)
        x0 = np.concatenate(
            [w1[1:], w2, np.concatenate([g1[1:], g2.ravel()]).astype(np.complex128).view(np.float64)]
        )
        l1, l2 = w1.size, w2.size
        x, cost = nomp_product_kernels.product_lm(
            y,
            np.sqrt(inv_var),
            x0,
            l1,
            l2,
            int(evaluations),
            self.k,
            self._k_coarse,
            self._k_fine,
            self._q,
            self._r,
        )
        a1, a2, b1, b2 = nomp_product_kernels.unpack(x, l1, l2, y.shape[0])
        return ProductFit(a1, b1, np.mod(a2, 2 * np.pi), b2, float(cost))

    def _e(self, w: np.ndarray) -> np.ndarray:
        """``exp(-j k w)`` ``[N, path]`` from two small tables, ``k = k_min + 32 q + r`` (as
        :meth:`Nomp._steer`, without its cache and Gram matrix, which serve NOMP's fit)."""
        w = np.ascontiguousarray(w, np.float64).reshape(-1)
        return nomp_kernels.steer(w, self._k_coarse, self._k_fine, self._q, self._r)

    # ----- the first path ------------------------------------------------------------------------
    def _first(self, fit: ProductFit, noise_var: np.ndarray) -> tuple[float, float]:
        """First path of each factor (the earliest within ``first_path_db`` of its strongest), summed;
        its deviation from the product-form bound at the fitted values."""
        floor = 10 ** (-self.params.first_path_db / 20)
        w1 = _wrap(fit.w1)
        strong1 = np.abs(fit.g1) >= floor * np.abs(fit.g1).max()
        i1 = int(np.flatnonzero(strong1)[np.argmin(w1[strong1])])
        mag2 = np.sqrt(np.sum(np.abs(fit.g2) ** 2, axis=0))
        strong2 = np.flatnonzero(mag2 >= floor * mag2.max())
        ahead = np.mod(fit.w2[strong2] - fit.w2[np.argmax(mag2)] + math.pi, 2 * math.pi) - math.pi
        i2 = int(strong2[np.argmin(ahead)])
        to_s = 1.0 / (2 * np.pi * self.wf.subcarrier_spacing_hz)
        delay = float(np.mod(w1[i1] + fit.w2[i2], 2 * np.pi) * to_s)
        o1 = np.r_[i1, np.delete(np.arange(w1.size), i1)]
        o2 = np.r_[i2, np.delete(np.arange(fit.w2.size), i2)]
        try:
            s2 = product_crlb_s2(
                self.k * self.wf.subcarrier_spacing_hz,
                w1[o1] * to_s,
                fit.g1[o1],
                fit.w2[o2] * to_s,
                fit.g2[:, o2],
                noise_var,
            )
        except ValueError:
            s2 = math.inf
        return delay, math.sqrt(s2)


def _wrap(w: np.ndarray) -> np.ndarray:
    """Phases to ``[-pi, pi)``."""
    return np.mod(np.asarray(w) + math.pi, 2 * math.pi) - math.pi


def _cost(r: np.ndarray, inv_var: np.ndarray) -> float:
    return float(np.sum((r.real**2 + r.imag**2) * inv_var[:, None]))
