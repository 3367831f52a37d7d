"""Newtonized OMP (NOMP) with a false-alarm stopping rule: an off-grid, full-aperture first path.

Model (SYSTEM.md section 7), one or more bands ``b`` sharing the delays:
``Y_b[n] = sum_l a_bl exp(-j w_l k_n) + w_b[n]``, ``w_l = 2 pi df tau_l``, ``k_n`` the
active subcarriers (the DC hole is simply absent from ``k``: nothing is
interpolated, every subcarrier is used), ``w_b ~ CN(0, sigma_b^2)``.

Greedy detection (Mamandipoor, Ramasamy and Madhow, IEEE TSP 2016):

1. Whitened matched filter of the residual ``r_b`` on the ``K``-point CIR grid,
   ``G(w) = sum_b abs(e(w)^H r_b)**2 / (N sigma_b^2)`` (one FFT per band; ``N`` active
   subcarriers, ``abs(e)**2 = N``).
2. **Stopping (CFAR).**  On noise alone ``G`` at one delay is a sum of ``B`` unit
   exponentials (Gamma(B, 1)).  ``N`` independent delay cells span the window
   ``[0, 1 / df)``, so the largest exceeds ``T`` with probability about
   ``N P(Gamma(B, 1) > T)``; ``T`` solves ``N P(Gamma(B, 1) > T) = pfa`` (``B = 1``:
   ``T = ln(N / pfa)``, 13.6 for ``N = 800``, ``pfa = 1e-3``).  The noise variance is
   re-estimated from the residual at every step as ``median(abs(IFFT r)**2) / ln 2``
   over the window (the channel occupies a few per cent of it; the median of a
   unit exponential is ``ln 2``), so no noise figure is needed from the receiver.
3. The new delay is refined by Newton steps on ``G``; then every delay is refined
   again (one Newton step each, all paths at once, each against the residual with
   its own contribution added back), and every band's gains are re-fitted by least
   squares.  Two paths that converge within ``merge_cells`` resolution cells become
   one.
4. **Pruning.**  A path whose drop-one GLRT (:meth:`Nomp._power`, the other delays kept)
   falls below the threshold goes, weakest first.  A path with a neighbour within
   ``near_cells`` cells, up to one cell after the first path, must also beat the threshold
   with every other delay re-fitted (:meth:`Nomp._prune_close`): left in place, the
   neighbour cannot take over its share, so the fixed-delay test keeps both atoms of a pair
   with large, nearly cancelling gains that one path would explain.

The first path is decided on **components** (fitted paths a fraction of a cell apart taken
together), with **clusters** and the **lead test** vetting candidates ahead of the strongest one:
:mod:`dsp.ranging.nomp_first` and :mod:`dsp.ranging.nomp_lead`.  Its standard deviation is
``sqrt([J^-1]_00)`` of the fitted model with every other path a nuisance.

Cost: one ``K``-point FFT and ``O(N L B)`` work per detected path (``L`` paths), and a
Gauss-Newton refit per close path tested in the pruning.  The fit is thousands of small steps,
so the implementation cuts calls rather than arithmetic (issues 14, 18): the Gauss-Newton step
from its normal equations, ``E`` with its Gram matrix and the Newton steps on a new delay as
compiled loops (:mod:`dsp.ranging.nomp_kernels`), ``E`` kept for the next call at the same
delays, small systems by LAPACK directly.  The results are those of the plain formulation to
rounding (``tests/test_nomp_speed_equivalence.py``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.special

from dsp.ranging import nomp_kernels, nomp_lead
from dsp.ranging.base import RangingMethod
from dsp.ranging.nomp_first import FirstPathRule
from dsp.ranging.nomp_lead import KeepOut
from dsp.ranging.nomp_linalg import _Basis, _cost, _lu_solve, _solve_gram
from dsp.ranging.nomp_params import NompParams
from dsp.waveform import WaveformConfig

_LN2 = math.log(2.0)


@dataclass(frozen=True)
class NompEstimate:
    """Fitted model: delays ``[path]`` in ``[0, 1 / df)`` (s), gains ``[band, path]``, noise ``[band]``."""

    delays_s: np.ndarray
    gains: np.ndarray
    noise_var: np.ndarray
    first: int  # index of the first path in delays_s, -1 when none was detected
    delay_s: float  # first-path delay (the largest matched-filter peak when nothing was detected)
    delay_std_s: float  # sqrt of its CRLB in the fitted model (inf when nothing was detected)

    @property
    def order(self) -> int:
        return int(self.delays_s.size)


def gamma_threshold(n_cells: int, n_bands: int, pfa: float) -> float:
    """``T`` with ``n_cells * P(Gamma(n_bands, 1) > T) = pfa`` (unit-noise CFAR threshold)."""
    return float(scipy.special.gammainccinv(n_bands, min(pfa / n_cells, 1.0)))


class Nomp(FirstPathRule, RangingMethod):
    """Newtonized OMP, CFAR stopping, off-grid delays on the whole band; bands jointly via :meth:`fit`."""

    name = "nomp"
    Params = NompParams
    params: NompParams
    joint_bands = True

    def __init__(self, wf: WaveformConfig, params: NompParams | None = None):
        super().__init__(wf, params)
        self.k = wf.active_subcarriers.astype(np.float64)  # [N]
        self._minus_jk = -1j * self.k[:, None]  # [N, 1]: d/dw of exp(-j k w) over exp(-j k w)
        self.bins = np.mod(wf.active_subcarriers, wf.cir_fft_size)
        self.cell_w = 2 * np.pi / self.k.size  # one resolution cell 1 / B_occ, in w = 2 pi df tau
        # integer subcarrier index k = k_min + 32 q + r (see _steer)
        kk = np.asarray(wf.active_subcarriers, np.int64) - int(wf.active_subcarriers.min())
        self._q, self._r = kk // 32, kk % 32
        self._k_coarse = float(wf.active_subcarriers.min()) + 32.0 * np.arange(self._q.max() + 1)
        self._k_fine = np.arange(32, dtype=np.float64)
        self._q_full = np.bincount(self._q) == 32  # every r present: the Gram sum factors (see _basis)
        self.threshold = {b: gamma_threshold(self.k.size, b, self.params.pfa) for b in (1, 2, 3)}
        self._last_basis: tuple = (None, None)  # (w as bytes, _Basis): see _basis

    # ----- public --------------------------------------------------------------------------------
    def first_path_delay_s(self, cfr: np.ndarray, cir: np.ndarray | None = None) -> float:
        return self.fit(cfr).delay_s

    def delay_and_std_s(self, cfr: np.ndarray, cir: np.ndarray | None = None) -> tuple[float, float]:
        est = self.fit(cfr)
        return est.delay_s, est.delay_std_s

    def joint_delay_and_std_s(self, cfrs: np.ndarray) -> tuple[float, float]:
        est = self.fit(cfrs)
        return est.delay_s, est.delay_std_s

    def fit(self, cfr: np.ndarray) -> NompEstimate:
        """Fit ``cfr`` ``[subcarrier]`` (one band) or ``[band, subcarrier]`` (delays common to the bands)."""
        y = self._check(cfr)
        thr = self.threshold.get(y.shape[0]) or gamma_threshold(self.k.size, y.shape[0], self.params.pfa)
        w, a, r, var = self.detect(y, np.zeros(0), thr)
        rescue = self.params.cluster_cells > 0 and self._may_rescue(w, a, r, var)
        if self.params.lead_test and w.size > 1:
            w, a, r, var = nomp_lead.lead_test(self, y, w, a, r, var, thr, rescue)
        return self._result(y, w, a, var, rescue)

    def detect(
        self,
        y: np.ndarray,
        w: np.ndarray,
        thr: float,
        keep_out: KeepOut | None = None,
        max_paths: int | None = None,
    ) -> tuple[np.ndarray, ...]:
        """Greedy detection from the delays ``w`` on, the final refit and the pruning: ``(w, a, r,
        var)``.  ``y`` ``[band, subcarrier]``; with ``keep_out`` no path is placed in its delays;
        at most ``max_paths`` paths (default the parameter's)."""
        p = self.params
        max_paths = p.max_paths if max_paths is None else min(max_paths, p.max_paths)
        n_bands = y.shape[0]
        if w.size:
            w, a, r = self._refit(y, w, self._noise(y), p.refine_steps, keep_out)
        else:
            a, r = np.zeros((n_bands, 0), np.complex128), y
        var, power = self._noise_and_power(r)
        floor = 10 ** (-p.dynamic_range_db / 10)
        merges = 0
        while w.size < max_paths:
            g = self._matched_power(power, var)  # the spectrum of r, from the noise estimate
            if keep_out is not None:
                g = np.where(keep_out.grid, 0.0, g)
            q = int(np.argmax(g))
            if g[q] < thr or (w.size and g[q] < floor * np.max(self._power(a, var, w))):
                break
            w_new = self._newton_one(r, var, 2 * np.pi * q / power.shape[-1], p.newton_steps)
            before = w.size
            w, a, r = self._refit(y, np.append(w, w_new), var, p.refine_steps, keep_out)
            var, power = self._noise_and_power(r)
            if w.size <= before:  # it merged into a fitted path (the refit moves them on: retry, 3 times)
                merges += 1
                if merges > 3:
                    break
        if w.size:
            w, a, r = self._refit(y, w, var, p.final_steps, keep_out)
            # prune what the refit left below the detection rule, weakest first
            while w.size > 1:
                pw = self._power(a, var, w)
                weakest = int(np.argmin(pw))
                if pw[weakest] >= max(thr, floor * pw.max()):
                    break
                w, a, r = self._refit(y, np.delete(w, weakest), var, 2, keep_out)
            var = self._noise(r)
            if p.near_cells > 0 and w.size > 1:
                w, a, r = self._prune_close(y, w, a, r, var, thr, keep_out)
                var = self._noise(r)
        return w, a, r, var

    def _prune_close(
        self,
        y: np.ndarray,
        w: np.ndarray,
        a: np.ndarray,
        r: np.ndarray,
        var: np.ndarray,
        thr: float,
        keep_out: KeepOut | None = None,
    ) -> tuple[np.ndarray, ...]:
        """Drop a path that has a neighbour within ``near_cells`` resolution cells, and lies at
        most one cell after the first path, when the fit without it, **every other delay
        re-fitted**, is worse by less than the detection threshold ``thr`` (weakest first,
        repeated until none goes).  The drop-one GLRT of
        :meth:`_power` keeps the other delays where they are, which overstates the significance of
        one of two close atoms: its neighbour, left in place, cannot take over its share (an
        unresolved cluster fitted by a pair with large, nearly cancelling gains)."""
        inv_var = 1.0 / var
        cost = _cost(r, inv_var)
        while w.size > 1:
            # only paths up to one resolution cell after the current first path: the range is
            # decided there, and each test is a refit
            first = self._first_path(w, a, var)
            after = np.mod(w - w[first] + np.pi, 2 * np.pi) - np.pi
            near = np.flatnonzero(self._has_near_neighbour(w) & (after <= self.cell_w))
            if near.size == 0:
                break
            pw = self._power(a, var, w)
            for i in near[np.argsort(pw[near])]:
                w2, a2, r2 = self._refit(y, np.delete(w, i), var, self.params.final_steps, keep_out)
                c2 = _cost(r2, inv_var)
                if c2 - cost < thr:
                    w, a, r, cost = w2, a2, r2, c2
                    break
            else:
                break
        return w, a, r

    def _has_near_neighbour(self, w: np.ndarray) -> np.ndarray:
        """``[path]``: a neighbour (circularly) closer than ``near_cells`` resolution cells."""
        order = np.argsort(w)
        gaps = np.diff(np.append(w[order], w[order[0]] + 2 * np.pi))  # gap after each, wrapping
        close = np.minimum(gaps, np.roll(gaps, 1)) < self.params.near_cells * self.cell_w
        out = np.zeros(w.size, bool)
        out[order] = close
        return out

    def _power(self, a: np.ndarray, var: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Significance of each path ``[path]``: how much the whitened residual energy grows when it
        alone is dropped, ``sum_b abs(a_bl)**2 / ([(E^H E)^-1]_ll sigma_b^2)`` (the GLRT statistic;
        ``N abs(a)**2 / sigma^2`` for an isolated path).  A ghost pair with large, cancelling gains
        scores low.  ``[(E^H E)^-1]_ll >= 1 / N``; below that (to rounding) the inverse is rounding
        noise of a numerically singular Gram matrix, atoms that the others span: significance 0."""
        if w.size == 0:
            return np.zeros(0)
        inv_diag = np.real(np.diag(self._basis(w).gram_inv()))
        singular = ~(inv_diag >= (1 - 1e-6) / self.k.size)
        return np.sum(np.abs(a) ** 2 / var[:, None], axis=0) / np.where(singular, np.inf, inv_diag)

    # ----- steps ---------------------------------------------------------------------------------
    def _check(self, cfr: np.ndarray) -> np.ndarray:
        y = np.asarray(cfr)
        n = self.k.size
        if y.ndim == 1:
            y = y[None, :]
        if y.ndim != 2 or y.shape[-1] != n or not np.issubdtype(y.dtype, np.number):
            raise ValueError(
                f"nomp: cfr must be numeric [subcarrier] or [band, subcarrier] with {n} subcarriers, "
                f"got shape {y.shape}"
            )
        if not np.all(np.isfinite(y)):
            raise ValueError("nomp: cfr contains NaN or infinite values")
        if not np.any(y):
            raise ValueError("nomp: cfr is identically zero")
        return y.astype(np.complex128, copy=False)

    def _spectrum(self, r: np.ndarray) -> np.ndarray:
        """``e(w_q)^H r_b`` ``[band, K]`` on the CIR grid ``w_q = 2 pi q / K``."""
        full = np.zeros((r.shape[0], self.wf.cir_fft_size), np.complex128)
        full[:, self.bins] = r
        return scipy.fft.ifft(full, axis=-1, norm="forward")

    def _matched(self, r: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        spec = self._spectrum(r)
        return self._matched_spectrum(spec, var), spec

    def _matched_spectrum(self, spec: np.ndarray, var: np.ndarray) -> np.ndarray:
        """Whitened matched filter ``G`` ``[K]`` from the residual's spectrum ``spec`` ``[band, K]``."""
        g = (spec.real**2 + spec.imag**2) / (self.k.size * var[:, None])
        return g.sum(axis=0)

    def _matched_power(self, p: np.ndarray, var: np.ndarray) -> np.ndarray:
        """:meth:`_matched_spectrum` from the spectrum's power ``p`` ``[band, K]``."""
        return (p / (self.k.size * var[:, None])).sum(axis=0)

    def _noise(self, r: np.ndarray) -> np.ndarray:
        """Per-band noise variance per subcarrier ``[band]`` from the residual (median over the window)."""
        return self._noise_and_power(r)[0]

    def _noise_and_power(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_noise` and the residual's spectral power ``abs(e(w_q)^H r_b)**2`` ``[band, K]``."""
        spec = self._spectrum(r)
        p = spec.real**2 + spec.imag**2
        return self._noise_from_power(r, p), p

    def _noise_from_power(self, r: np.ndarray, p: np.ndarray) -> np.ndarray:
        """``median(p) / (N ln 2)`` per band, at least ``1e-12`` of the residual's mean power.  The
        median as ``np.median`` takes it (the middle element, or the mean of the middle two, of a
        partition), without its checks: twice as fast."""
        half = p.shape[-1] // 2
        if p.shape[-1] % 2:
            med = np.partition(p, half, axis=-1)[:, half]
        else:
            part = np.partition(p, (half - 1, half), axis=-1)
            med = (part[:, half - 1] + part[:, half]) / 2
        var = med / (_LN2 * self.k.size)
        parts = np.ascontiguousarray(r).view(np.float64)
        mean_power = np.einsum("bn,bn->b", parts, parts) / r.shape[-1]
        floor = mean_power * 1e-12 + np.finfo(np.float64).tiny
        return np.maximum(var, floor)

    def _newton_one(self, r: np.ndarray, var: np.ndarray, w0: float, steps: int) -> float:
        """``steps`` Newton steps on ``S(w) = sum_b abs(z_b)**2 / sigma_b^2``, ``z_b(w) = e(w)^H r_b``,
        from ``w0`` (``-S' / S''`` where ``S`` is concave, clipped to half a cell; none elsewhere)."""
        w = nomp_kernels.newton_one(
            np.ascontiguousarray(r),
            1.0 / var,
            float(w0),
            int(steps),
            0.5 * self.cell_w,
            self.k,
            self._k_coarse,
            self._k_fine,
            self._q,
            self._r,
        )
        return float(np.mod(w, 2 * np.pi))

    def _basis(self, w: np.ndarray) -> _Basis:
        """``E``, its conjugate and ``E^H E`` at ``w`` ``[path]``, kept for the next call at the same
        delays (a refit's last trial is the next test's model: the same ``E`` is asked for several
        times in a row).  Not to be written to; one entry, replaced at once (thread-safe)."""
        w = np.asarray(w, np.float64)
        key = w.tobytes()
        last_key, basis = self._last_basis
        if last_key != key:
            basis = _Basis(
                *nomp_kernels.basis(w, self._k_coarse, self._k_fine, self._q, self._r, self._q_full)
            )
            self._last_basis = (key, basis)
        return basis

    def _steer(self, w: np.ndarray) -> np.ndarray:
        """``E = exp(-j k w)`` ``[N, path]``, not to be written to (see :meth:`_basis`).  The subcarrier
        indices are integers, ``k = k_min + 32 q + r``, so ``E`` is the product of two small tables,
        ``exp(-j (k_min + 32 q) w)`` and ``exp(-j r w)``, gathered: 60 complex exponentials per path
        instead of ``N`` (:func:`dsp.ranging.nomp_kernels.basis`)."""
        return self._basis(w).e

    def _project(self, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``E`` ``[N, path]``, least-squares gains ``[band, path]`` and residual ``[band, N]``."""
        basis, a, r = self._fit_gains(y, w)
        return basis.e, a, r

    def _fit_gains(self, y: np.ndarray, w: np.ndarray) -> tuple[_Basis, np.ndarray, np.ndarray]:
        """:meth:`_project` with the basis (``E`` and ``E^H E``) in place of ``E``."""
        basis = self._basis(w)
        a = basis.solve((y @ basis.ec).T).T
        return basis, a, y - a @ basis.e.T

    @staticmethod
    def _solve(e: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """``(E^H E)^-1 rhs`` for ``rhs`` ``[path, ...]`` (LU; pseudo-inverse if singular)."""
        return _solve_gram(e.conj().T @ e, rhs)

    def _refit(
        self, y: np.ndarray, w: np.ndarray, var: np.ndarray, steps: int, keep_out: KeepOut | None = None
    ) -> tuple[np.ndarray, ...]:
        """Gauss-Newton on the delays with the gains projected out (variable projection, Kaufman's
        Jacobian ``P_perp dE/dw a_b``), every band weighted by ``1 / sigma_b^2``; a step that does
        not lower the weighted residual is halved (three times at most); coincident paths merge.
        A delay that ends inside ``keep_out`` is put on its nearer edge (the gains re-fitted)."""
        w, a, r = self._gauss_newton(y, w, var, steps)
        if keep_out is not None and keep_out.inside(w).any():
            w = self._merge(keep_out.clip(w))  # two put on the same edge become one
            _, a, r = self._fit_gains(y, w)
        return w, a, r

    def _gauss_newton(
        self, y: np.ndarray, w: np.ndarray, var: np.ndarray, steps: int
    ) -> tuple[np.ndarray, ...]:
        """:meth:`_refit` without ``keep_out``."""
        basis, a, r = self._fit_gains(y, w)
        inv_sd = 1.0 / np.sqrt(var)
        inv_var = 1.0 / var
        cost = _cost(r, inv_var)
        for _ in range(steps):
            step = self._gn_step(basis, a, r, inv_sd)
            step = np.clip(step, -0.5 * self.cell_w, 0.5 * self.cell_w)
            for _ in range(4):
                w_try = np.mod(w + step, 2 * np.pi)
                b_try, a_try, r_try = self._fit_gains(y, w_try)
                c_try = _cost(r_try, inv_var)
                if c_try < cost:
                    break
                step = step / 2
            else:
                break  # no descent: converged (or stuck)
            if self._collide(w_try):
                # two paths ran into each other: the step left the basin of the detections
                # (a cluster of unresolved paths); keep the paths where they were
                break
            improvement = cost - c_try
            w, basis, a, r, cost = w_try, b_try, a_try, r_try, c_try
            if improvement < 0.5:  # the cost is chi-square with 2N dof (spread ~40): converged
                break
        return w, a, r

    def _gn_step(self, basis: _Basis, a: np.ndarray, r: np.ndarray, inv_sd: np.ndarray) -> np.ndarray:
        """Gauss-Newton step ``[path]``: least squares ``J s = r_w`` over the real and imaginary parts
        of every band (``J`` :meth:`_jacobian`, ``r_w`` the whitened residual), by its normal
        equations ``Re(J^H J) s = Re(J^H r_w)``.  ``J_b = P_perp D diag(c_b)``, ``c_b = a_b / sigma_b``,
        so ``J^H J = M * (C^H C)`` (element-wise) with ``M = (P_perp D)^H (P_perp D)`` ``[path, path]``
        and ``J^H r_w = sum_b conj(c_b) (P_perp D)^H r_wb``: two ``[path, N]`` products instead of
        the ``[2 B N, path]`` Jacobian and its SVD."""
        pd = self._projected_derivative(basis)  # [N, path]
        c = a * inv_sd[:, None]  # [band, path]
        pdc = pd.conj()
        jj = ((pdc.T @ pd) * (c.conj().T @ c)).real
        jr = np.sum(c.conj() * ((r * inv_sd[:, None]) @ pdc), axis=0).real
        step = _lu_solve(jj, jr)
        if step is None:  # singular normal equations: the minimum-norm least-squares step
            jac = (pd[None, :, :] * c[:, None, :]).reshape(-1, c.shape[1])
            res = (r * inv_sd[:, None]).reshape(-1)
            stacked = np.concatenate([jac.real, jac.imag])
            step = np.linalg.lstsq(stacked, np.concatenate([res.real, res.imag]), rcond=None)[0]
        return step

    def _projected_derivative(self, basis: _Basis) -> np.ndarray:
        """``P_perp D`` ``[N, path]``, ``D = dE/dw = -j k E`` (see :meth:`_jacobian`)."""
        e = basis.e
        d = self._minus_jk * e  # [N, path]
        return d - e @ basis.solve(basis.ec.T @ d)

    def _jacobian(self, e: np.ndarray, a: np.ndarray, inv_sd: np.ndarray) -> np.ndarray:
        """Whitened variable-projection Jacobian ``[band, N, path]`` of the residual in the delays.

        ``d(E a_b)/dw_l = -j k E_l a_bl``; its component outside ``span(E)`` is ``(P_perp D)_l
        a_bl`` with ``D = -j k E`` the same for every band, so ``D`` is projected once and then
        scaled per band (by ``a_bl / sigma_b``), rather than projecting each band's ``D diag(a_b)``
        (the same product in another order: equal to rounding, half the work).  The fit does not
        form it: :meth:`_gn_step` solves its normal equations."""
        pd = self._projected_derivative(_Basis(e))
        return pd[None, :, :] * (a * inv_sd[:, None])[:, None, :]

    def _collide(self, w: np.ndarray) -> bool:
        """Whether :meth:`_merge` would merge paths of ``w``: two neighbours (circularly) at most
        ``merge_cells`` cells apart (the same gaps, in plain floats: a few delays)."""
        if w.size < 2:
            return False
        tol = self.params.merge_cells * self.cell_w
        ws = sorted(w.tolist())
        if ws[0] + 2 * math.pi - ws[-1] <= tol:
            return True
        return any(b - a <= tol for a, b in itertools.pairwise(ws))

    def _merge(self, w: np.ndarray) -> np.ndarray:
        if w.size < 2:
            return w
        tol = self.params.merge_cells * self.cell_w
        order = np.argsort(w)
        ws = w[order]
        gaps = np.diff(np.append(ws, ws[0] + 2 * np.pi))  # circular neighbour gaps
        keep = np.ones(ws.size, bool)
        keep[1:] = gaps[:-1] > tol
        if gaps[-1] <= tol and keep.sum() > 1:
            keep[0] = False  # the last and the first wrap around
        return ws[keep]

    def _result(
        self, y: np.ndarray, w: np.ndarray, a: np.ndarray, var: np.ndarray, rescue: bool = False
    ) -> NompEstimate:
        wf = self.wf
        if w.size == 0:
            g, _ = self._matched(y, var)
            q = int(np.argmax(g))
            return NompEstimate(w, a, var, -1, q * wf.cir_grid_step_s, math.inf)
        delays = w / (2 * np.pi * wf.subcarrier_spacing_hz)
        first = self.first_component(w, a, var, rescue)[0]
        return NompEstimate(delays, a, var, first, float(delays[first]), self._std(delays, a, var, first))
