"""NOMP's first-path rule: which fitted path is the first (issue 14).

The first path is decided on **components**: fitted paths closer than ``component_cells``
resolution cells to a neighbour form one component (a path the fit split into two atoms a
metre apart, each absorbing part of the other, so that neither is significant alone).  A
component's significance is the GLRT of dropping all its atoms at once,
``sum_b a_bg^H ([(E^H E)^-1]_gg)^-1 a_bg / sigma_b^2``.  The first component is the
earliest that lies at most ``max_lead_m`` ahead of the most significant one (delays are
circular over the window) and is no weaker than it by more than ``first_path_db`` (a dense
cluster of unresolvable paths is fitted with a few strong paths and weak ghosts around its
edges, up to tens of metres ahead); the first path is that component's most significant
atom.  **Clusters** (``cluster_cells``): components chained by gaps below 0.3 cell form a cluster,
and a cluster none of whose components passes the ``first_path_db`` rule alone, but which passes
it with all its atoms dropped at once, offers its most significant component as a candidate (a
weak line of sight that the fit holds as two atoms about 2 m apart, each taking the other's
share: without clusters the rule skipped both and took a path 11-27 m later).  Clusters are
offered only where the lead test can vet them (the fit reaches the noise) and where the fit places
its first path within a cell (:meth:`FirstPathRule._may_rescue`): in a fit whose leading atoms are all
comparable and ill-placed, more candidates only move an arbitrary choice earlier.  A first
component ahead of the most significant one must then be *needed* (:mod:`dsp.ranging.nomp_lead`,
``lead_test``): refitted with no path allowed ahead of the next component, the capture must be
explained worse by more than the detection threshold, else that component was a ghost of a dense
cluster behind it and goes.  The first path's standard deviation
is ``sqrt([J^-1]_00)`` of the fitted model with every other path a nuisance
(:func:`dsp.crlb.delay_crlb_s2`), at the estimated noise.

Shapes: ``w`` ``[path]`` in radians (``w = 2 pi df tau``, circular over the window), ``a``
``[band, path]``, ``var`` ``[band]``, ``r`` ``[band, subcarrier]``.
"""

from __future__ import annotations

import math

import numpy as np

from dsp.crlb import delay_crlb_s2
from dsp.ranging import nomp_lead
from dsp.ranging.nomp_linalg import _lu_solve
from dsp.ranging.nomp_params import NompParams
from dsp.waveform import SPEED_OF_LIGHT_M_S, WaveformConfig

RESCUE_STD_CELLS = 1.0  # clusters are rescued only in fits whose first path is placed within a cell


class FirstPathRule:
    """The first-path rule of :class:`dsp.ranging.nomp.Nomp` (a mixin: it uses the fit's
    ``params``, ``wf``, ``cell_w``, ``_basis`` and ``_power``)."""

    params: NompParams
    wf: WaveformConfig
    cell_w: float

    def _may_rescue(self, w: np.ndarray, a: np.ndarray, r: np.ndarray, var: np.ndarray) -> bool:
        """Whether clusters may be offered as first-path candidates (``cluster_cells``) in the fit
        ``(w, a, r, var)``: only where the lead test can vet them (the fit reaches the noise) and
        where the fit resolves its leading paths (its first path's K-path deviation below a cell;
        above it the choice among comparable atoms is arbitrary, and more candidates only move it
        earlier)."""
        if w.size < 2 or not nomp_lead.reaches_noise(r, var):
            return False
        first = self.first_component(w, a, var)[0]
        delays_s = w / (2 * np.pi * self.wf.subcarrier_spacing_hz)
        return self._std(delays_s, a, var, first) * self.wf.occupied_bandwidth_hz < RESCUE_STD_CELLS

    def components(self, w: np.ndarray) -> list[np.ndarray]:
        """Indices of ``w`` grouped into components: neighbours (circularly, in delay order) closer
        than ``component_cells`` resolution cells share one."""
        order = np.argsort(w)
        if w.size < 2:
            return [order]
        gaps = np.diff(np.append(w[order], w[order[0]] + 2 * np.pi))  # gap after each, wrapping
        cut = gaps > self.params.component_cells * self.cell_w
        if not cut.any():
            return [order]
        start = (int(np.flatnonzero(cut)[-1]) + 1) % w.size  # begin after a cut
        order, cut = np.roll(order, -start), np.roll(cut, -start)
        return np.split(order, np.flatnonzero(cut[:-1]) + 1)

    def _group_power(
        self, a: np.ndarray, var: np.ndarray, w: np.ndarray, groups: list[np.ndarray]
    ) -> np.ndarray:
        """GLRT significance of dropping each group of paths at once ``[group]`` (see :meth:`_power`)."""
        inv = self._basis(w).gram_inv()
        out = np.zeros(len(groups))
        single = np.array([g.size == 1 for g in groups])
        if single.any():  # one atom: [(E^H E)^-1]_gg is a number (all of them at once)
            idx = np.array([g[0] for g, s in zip(groups, single, strict=True) if s])
            x = a[:, idx] / np.diag(inv)[idx]
            out[single] = np.sum(np.real(a[:, idx].conj() * x) / var[:, None], axis=0)
        for i in np.flatnonzero(~single):
            g = groups[i]
            ag = a[:, g]  # [band, group]
            x = _lu_solve(inv[np.ix_(g, g)], ag.T)  # [group, band]
            if x is None:
                raise np.linalg.LinAlgError("Singular matrix")
            out[i] = float(np.sum(np.real(np.sum(ag.conj().T * x, axis=0)) / var))
        return out

    def _first_path(self, w: np.ndarray, a: np.ndarray, var: np.ndarray) -> int:
        """Index of the first path: the most significant atom of the earliest component that is at
        most ``max_lead_m`` ahead of the most significant component and within ``first_path_db``
        of it."""
        return self.first_component(w, a, var)[0]

    def first_component(
        self, w: np.ndarray, a: np.ndarray, var: np.ndarray, rescue: bool = False
    ) -> tuple[int, list[np.ndarray], int, int]:
        """:meth:`_first_path`'s decision with what it rests on: ``(first, groups, g_first,
        strongest)``: the first path's index, the components (:meth:`components`), the index of the
        first path's component, and the most significant atom of the most significant component."""
        p = self.params
        groups = self.components(w)
        gpow = self._group_power(a, var, w, groups)
        power = self._power(a, var, w)
        rep = np.array([g[int(np.argmax(power[g]))] for g in groups])  # each group's strongest atom
        s = int(np.argmax(gpow))
        lead = np.mod(w[rep[s]] - w[rep], 2 * np.pi) / (2 * np.pi * self.wf.subcarrier_spacing_hz)
        floor = gpow[s] * 10 ** (-p.first_path_db / 10)
        near = lead <= p.max_lead_m / SPEED_OF_LIGHT_M_S
        strong = gpow >= floor
        if rescue and p.cluster_cells > 0:
            strong = strong | self._rescued(w, a, var, groups, gpow, rep[s], strong, floor)
        cand = np.flatnonzero(near & strong)
        c = int(cand[np.argmax(lead[cand])])
        return int(rep[c]), groups, c, int(rep[s])

    def _rescued(
        self,
        w: np.ndarray,
        a: np.ndarray,
        var: np.ndarray,
        groups: list[np.ndarray],
        gpow: np.ndarray,
        w_ref_atom: int,
        strong: np.ndarray,
        floor: float,
    ) -> np.ndarray:
        """``[group]``: the most significant component of each cluster (components chained by gaps
        below ``cluster_cells``) that holds no component as strong as ``floor`` alone but is, all
        its atoms dropped at once."""
        rel = np.mod(w - w[w_ref_atom] + np.pi, 2 * np.pi) - np.pi  # [path], around the strongest
        lo = np.array([rel[g].min() for g in groups])
        hi = np.array([rel[g].max() for g in groups])
        order = np.argsort(lo)
        out = np.zeros(len(groups), bool)
        tol = self.params.cluster_cells * self.cell_w
        clusters, current = [], [int(order[0])]
        for g in order[1:]:
            if lo[g] - max(hi[current]) < tol:
                current.append(int(g))
            else:
                clusters.append(current)
                current = [int(g)]
        clusters.append(current)
        for cl in clusters:
            if len(cl) < 2 or strong[cl].any():
                continue
            atoms = np.concatenate([groups[g] for g in cl])
            if self._group_power(a, var, w, [atoms])[0] >= floor:
                out[cl[int(np.argmax(gpow[cl]))]] = True
        return out

    def _std(self, delays: np.ndarray, a: np.ndarray, var: np.ndarray, first: int) -> float:
        """``sqrt(CRLB)`` of the first delay with every other path a nuisance (bands: information adds)."""
        order = np.r_[first, np.delete(np.arange(delays.size), first)]
        f = self.wf.active_freqs_hz
        info = 0.0
        for b in range(a.shape[0]):
            if a[b, first] == 0:
                continue
            # per band the delay bound is 1 / J_eff; effective information adds across bands
            # (exact when the bands' gains are separate unknowns and the delays are shared only
            # through tau_0; the other delays are shared too, so this is a slight optimism)
            crlb = delay_crlb_s2(f, delays[order], a[b, order], float(var[b]))
            info += 1.0 / crlb if crlb > 0 else math.inf
        return float(1.0 / math.sqrt(info)) if info > 0 else math.inf
