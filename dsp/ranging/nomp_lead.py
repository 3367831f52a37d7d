"""NOMP's lead test: a component ahead of the strongest must be needed (issue 14).

A dense cluster of paths that the band cannot resolve (several paths within a fraction of a
resolution cell at nearly equal power, their gains partly cancelling) is fitted by greedy detection
with atoms spread well beyond the cluster, some of them metres **ahead** of its first path; the
first-path rule then takes such a ghost (5-9 m early in the ranging sweep's 2- and 4-NLoS
scenarios, ``docs/RESULTS.md``).  The fitted model cannot tell: those ghosts pass every drop-one
test, because the atoms left in place cannot take over their share.

The test asks the question the range depends on: *does the capture need a path this early?*  The
first component (:meth:`~dsp.ranging.nomp.Nomp._first_path`) and every atom ahead of it are
dropped, and the fit is redone with no delay allowed ahead of the next component (the remaining
delays re-fitted, new paths detected greedily after that boundary, the usual pruning), from two
starts: the paths left, and the paths left with the dropped component's atoms put just behind the
boundary (0.1 cell apart), where the cluster they stood in for must lie.  Each fit is scored as
NOMP's detection scores a path, its whitened residual energy plus the detection threshold ``T`` per
path.  If the better constrained fit scores less than ``T`` above the free fit, the early component
was not needed: the constrained fit replaces the free one and the test repeats on its first
component.  Otherwise the first component stands.  Both scores use the free fit's noise estimate,
and every round is scored against the free fit, so a sequence of small moves cannot add up.  The
penalty matters: without it a start with more atoms behind the boundary (three a quarter-cell apart
were tried) absorbs a real line of sight and moves the first path metres late.  The test runs only
where the free fit reaches the noise (its cost within 3 deviations of the chi-square's mean): a fit
stopped short of it (the dynamic-range cap in a dense cluster at 60 dB) is a partial description,
which a constrained fit that detects further can beat without saying anything about the first path.

Cost.  The test runs only where the first path's standard deviation in the free fit (its K-path
bound, every other path a nuisance) exceeds ``lead_std_cells`` (0.1) of a cell: a ghost shares its
place with the atoms that can take over its share, so its delay is ill-determined (tens to
thousands of metres in the sweep's cases), while a well-placed first path is no ghost.  The
constrained fits hold at most two paths more than the free fit: each path scores ``T``, and the
fits that replaced a ghost on the sweep's scenarios held at most one more (most held fewer).
Without both limits the failed tests cost 25-45 ms on 8-NLoS channels; with them NOMP's median
stays a few milliseconds (``backscatter bench``).

A first path that is the strongest component is never tested (line of sight: nothing changes), and
a real path ahead of a cluster, isolated or strong, costs its own energy when dropped: far more than
``T`` at the SNRs where it was detected.  What the test can remove is a component that the later
paths, re-arranged, explain as well: a ghost, or a real path the band cannot separate from the
cluster behind it (there the first delay is unidentifiable; the K-path bound is metres or more).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from dsp.ranging.nomp_linalg import _cost

if TYPE_CHECKING:
    from dsp.ranging.nomp import Nomp

_TWO_PI = 2 * math.pi
FIT_SIGMAS = 3.0  # the free fit must reach the noise within this many deviations of its cost
EXTRA_PATHS = 2  # a constrained fit may hold at most this many paths more than the free fit


class KeepOut:
    """Delays no path may take: those ahead of ``w_ref`` by more than ``lo`` and less than pi
    (``w`` in radians, ``w = 2 pi df tau``, circular), i.e. ahead of the boundary ``w_ref - lo``."""

    def __init__(self, w_ref: float, lo: float, grid_size: int):
        self.w_ref, self.lo = float(w_ref), float(lo)
        self.grid = self.inside(_TWO_PI * np.arange(grid_size) / grid_size)  # [K] on the CIR grid

    def inside(self, w: np.ndarray) -> np.ndarray:
        lead = np.mod(self.w_ref - w, _TWO_PI)
        return (lead > self.lo) & (lead < math.pi)

    def clip(self, w: np.ndarray) -> np.ndarray:
        """Every delay inside moved to the nearer edge (the boundary, or half a window ahead)."""
        lead = np.mod(self.w_ref - w, _TWO_PI)
        bad = (lead > self.lo) & (lead < math.pi)
        edge = np.where(lead - self.lo <= math.pi - lead, self.lo, math.pi * (1 + 1e-9))
        return np.where(bad, np.mod(self.w_ref - edge, _TWO_PI), w)


def reaches_noise(r: np.ndarray, var: np.ndarray) -> bool:
    """Whether a fit's whitened residual ``r`` ``[band, subcarrier]`` is noise: its energy at most
    ``FIT_SIGMAS`` deviations above the chi-square's mean (``Gamma(dof, 1)``, ``dof = r.size``)."""
    dof = r.size
    return _cost(r, 1.0 / var) <= dof + FIT_SIGMAS * math.sqrt(dof)


def lead_test(
    nomp: Nomp,
    y: np.ndarray,
    w: np.ndarray,
    a: np.ndarray,
    r: np.ndarray,
    var: np.ndarray,
    thr: float,
    rescue: bool = False,
) -> tuple[np.ndarray, ...]:
    """The module's test on NOMP's free fit ``(w [path], a [band, path], r [band, subcarrier], var
    [band])`` of ``y`` ``[band, subcarrier]``: ``(w, a, r, var)`` of the fit kept."""
    inv_var = 1.0 / var
    cost_free = _cost(r, inv_var)
    n_free = w.size
    penalised_free = cost_free + thr * n_free
    if not reaches_noise(r, var):
        return w, a, r, var  # the free fit does not reach the noise: costs compare nothing
    for _ in range(w.size):
        first, groups, c_first, strongest = nomp.first_component(w, a, var, rescue)
        g_first = groups[c_first]
        if strongest in g_first:
            break
        delays_s = w / (2 * math.pi * nomp.wf.subcarrier_spacing_hz)
        if nomp._std(delays_s, a, var, first) * nomp.wf.occupied_bandwidth_hz < nomp.params.lead_std_cells:
            break  # a first path this well placed is no ghost: its neighbours do not explain it
        w_ref = w[strongest]
        lead = np.mod(w_ref - w, _TWO_PI)
        drop = (lead >= lead[g_first].min()) & (lead < math.pi)  # the first component and all ahead
        lo = float(lead[~drop & (lead < math.pi)].max())  # the next component: the boundary
        keep_out = KeepOut(w_ref, lo, nomp.wf.cir_fft_size)
        # two starts: the paths left; and those with the first component's atoms moved behind the
        # boundary (0.1 cell apart), where the cluster that the ghosts stood in for must be
        moved = w_ref - lo + 0.1 * nomp.cell_w * np.arange(1, g_first.size + 1)
        best = None
        for start in (w[~drop], np.mod(np.append(w[~drop], moved), _TWO_PI)):
            try:
                fit = nomp.detect(y, start, thr, keep_out, n_free + EXTRA_PATHS)
            except np.linalg.LinAlgError:  # atoms driven onto each other: this start fails
                continue
            cost = _cost(fit[2], inv_var) + thr * fit[0].size if fit[0].size else math.inf
            if best is None or cost < best[0]:
                best = (cost, fit)
        if best is None or best[0] - penalised_free >= thr:
            break
        w, a, r, var = best[1]
    return w, a, r, var
