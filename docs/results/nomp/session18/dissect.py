"""NOMP's first-path decision on one band of epochs kept by ``capture_task.py``: the free fit (does it
reach the noise?), its components with their gains and significance, the joint significance of the
clusters (gaps below 0.3 cell), the first path's deviation, what the lead test does, and whether
more paths allowed to the lead test's constrained fits would change the first path.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python docs/results/nomp/session18/dissect.py OUT.pkl BAND
"""

from __future__ import annotations

import math
import pickle
import sys

import numpy as np

sys.path.insert(0, ".")
from dsp.ranging import get_method, nomp_lead
from dsp.ranging.nomp_linalg import _cost
from dsp.waveform import SPEED_OF_LIGHT_M_S as C
from dsp.waveform import get_profile


def db(x: float) -> float:
    return 10 * math.log10(max(x, 1e-9))


def main() -> None:
    with open(sys.argv[1], "rb") as f:
        kept = pickle.load(f)
    band = sys.argv[2]
    wf = get_profile("default")
    nomp = get_method("nomp", wf)
    dw = 2 * np.pi * wf.subcarrier_spacing_hz
    thr = nomp.threshold[1]
    for e, ep in enumerate(kept["epochs"]):
        y = nomp._check(ep["cfr"][band])
        w, a, r, var = nomp.detect(y, np.zeros(0), thr)
        limit = r.size + 3 * math.sqrt(r.size)
        reaches = nomp_lead.reaches_noise(r, var)
        print(
            f"epoch {e}: {w.size} paths, cost {_cost(r, 1 / var):.0f} (noise: {limit:.0f} at most) {reaches}"
        )
        first, groups, c_first, strongest = nomp.first_component(w, a, var)
        gpow, power = nomp._group_power(a, var, w, groups), nomp._power(a, var, w)
        rel = np.mod(w - w[strongest] + np.pi, 2 * np.pi) - np.pi  # around the strongest
        for gi, g in enumerate(groups):
            mark = "first" if gi == c_first else ""
            gain_db = np.round(20 * np.log10(np.abs(a[:, g]).max(0)), 1)
            sig = np.round([db(p) for p in power[g]], 1)
            print(f"  {mark:5} at {np.round(rel[g] / dw * C, 2)} m: |a| {gain_db} dB, significance {sig} dB,")
            print(f"        component {db(gpow[gi]):.1f} dB")
        order = np.argsort(rel)
        clusters, current = [], [order[0]]
        for i in order[1:]:
            if rel[i] - rel[current[-1]] < 0.3 * nomp.cell_w:
                current.append(i)
            else:
                clusters.append(current)
                current = [i]
        clusters.append(current)
        for cl in clusters:
            joint = nomp._group_power(a, var, w, [np.array(cl)])[0]
            print(f"  cluster at {np.round(rel[cl] / dw * C, 2)} m: joint significance {db(joint):.1f} dB")
        print(f"  first path's deviation {nomp._std(w / dw, a, var, first) * C:.1f} m")
        for extra in (2, 4, 8, 16):
            nomp_lead.EXTRA_PATHS = extra
            window = 1 / wf.subcarrier_spacing_hz
            moved = ((nomp.fit(y).delay_s - w[first] / dw + window / 2) % window - window / 2) * C
            print(f"  lead test with {extra} extra paths: the first path moves {moved:+.2f} m")
        nomp_lead.EXTRA_PATHS = 2


if __name__ == "__main__":
    main()
