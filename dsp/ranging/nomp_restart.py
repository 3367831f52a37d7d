"""NOMP's restart: a fit that stops short of the noise, with an ill-placed first path, is fitted
again from atoms spread over its leading cluster (issue 14).

At high SNR (the central band at 62 dB per subcarrier after a 1500-symbol epoch) a dense cluster
of paths at nearly equal power (four TX-RX paths within 5 m, a third of a resolution cell) defeats
greedy detection: its first atoms settle on a pair with large, cancelling gains **ahead** of the
cluster (4-6 m early in the ranging sweep's 4- and 8-NLoS scenarios), the next ones on a second
such pair behind it, and what is left is the misfit's own structure, so that detection stops at
the dynamic-range cap (``dynamic_range_db``) with a residual 10 times the noise.  A fit started from
the true delays explains the same capture to the noise: the greedy fit is a search failure, not
the best description (the penalised cost is thousands lower).  The lead test
(:mod:`dsp.ranging.nomp_lead`) cannot help, because it compares costs only where the free fit
reaches the noise, and a ghost pair that is itself the strongest component is never tested.

The restart asks for a better description where one is due:

* **When.**  The free fit does not reach the noise (its whitened residual energy more than three
  deviations of the chi-square above its mean) **and** its first path is ill-placed (its K-path
  standard deviation above ``lead_std_cells`` of a cell, as in the lead test): a first path that
  the fit pins down is no ghost, and a fit that reaches the noise has nothing left to explain.
* **How.**  The atoms in the leading cluster's span, from half a cell ahead of the first path to
  one cell behind the strongest, are replaced by atoms a quarter cell apart over that span, and
  greedy detection goes on from there (every delay re-fitted, further paths detected, the usual
  pruning and close-path tests), so the cluster is described by atoms that start inside it.
* **Kept** if it scores better by the detection threshold (residual energy plus ``T`` per path,
  the free fit's noise estimate), and its first path lies within the span the free fit's first
  path allows, half a cell ahead to one cell behind: a better description of the same leading
  cluster.  A restart that explains the capture better by making the leading cluster's atoms
  insignificant (a chain of atoms behind it, whose joint significance dwarfs the cluster's single
  atoms) moves the first path by a cell or more and is not taken.

The lead test then runs on whichever fit is kept.  On the ranging sweep's scenarios without the
receiver (``docs/results/nomp/session17/restart_harness.py``, seeds 2025, 7, 11 and 101, 0-8 NLoS)
the restart changed 20 first paths, all in the central band, 19 of them closer to the truth
(-4.0..-6.3 m to within 0.7 m); it never ran in line of sight or with 2 NLoS paths.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from dsp.ranging.nomp_lead import FIT_SIGMAS
from dsp.ranging.nomp_linalg import _cost

if TYPE_CHECKING:
    from dsp.ranging.nomp import Nomp

_TWO_PI = 2 * math.pi
SPACING_CELLS = 0.25  # the restart's atoms over the cluster, this many cells apart
AHEAD_CELLS = 0.5  # the span starts this far ahead of the first path
BEHIND_CELLS = 1.0  # and ends this far behind the strongest path; the kept first path lies within
#                     AHEAD_CELLS ahead to BEHIND_CELLS behind the free fit's


def restart(
    nomp: Nomp, y: np.ndarray, w: np.ndarray, a: np.ndarray, r: np.ndarray, var: np.ndarray, thr: float
) -> tuple[np.ndarray, ...]:
    """The module's restart of NOMP's free fit ``(w [path], a [band, path], r [band, subcarrier],
    var [band])`` of ``y`` ``[band, subcarrier]``: ``(w, a, r, var)`` of the fit kept."""
    if w.size == 0:
        return w, a, r, var
    inv_var = 1.0 / var
    cost_free = _cost(r, inv_var)
    dof = r.size  # the whitened residual energy of a fit that reaches the noise: Gamma(dof, 1)
    if cost_free <= dof + FIT_SIGMAS * math.sqrt(dof):
        return w, a, r, var  # the fit explains the capture: nothing to look for
    first, _, _, strongest = nomp.first_component(w, a, var)
    delays_s = w / (_TWO_PI * nomp.wf.subcarrier_spacing_hz)
    if nomp._std(delays_s, a, var, first) * nomp.wf.occupied_bandwidth_hz < nomp.params.lead_std_cells:
        return w, a, r, var  # a first path this well placed is no ghost
    cell = nomp.cell_w
    lead = np.mod(w[strongest] - w[first], _TWO_PI)  # how far the first path is ahead of the strongest
    start = w[first] - AHEAD_CELLS * cell
    span = lead + (AHEAD_CELLS + BEHIND_CELLS) * cell
    inside = np.mod(w - start, _TWO_PI) <= span
    grid = start + SPACING_CELLS * cell * np.arange(int(span / (SPACING_CELLS * cell)) + 1)
    try:
        fit = nomp.detect(y, np.mod(np.append(w[~inside], grid), _TWO_PI), thr)
    except np.linalg.LinAlgError:  # atoms driven onto each other: no restart
        return w, a, r, var
    if fit[0].size == 0 or _cost(fit[2], inv_var) + thr * fit[0].size > cost_free + thr * (w.size - 1):
        return w, a, r, var
    moved = np.mod(fit[0][nomp.first_component(fit[0], fit[1], fit[3])[0]] - start, _TWO_PI)
    if moved > (AHEAD_CELLS + BEHIND_CELLS) * cell:
        return w, a, r, var  # another cluster's first path: not a refinement of this one
    return fit
