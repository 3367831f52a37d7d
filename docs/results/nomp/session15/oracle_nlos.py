"""Blind replay of captures written by the independent oracle (``tests/oracle``), issue 14's check.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python docs/results/nomp/session15/oracle_nlos.py K SEED CAPTURES

``CAPTURES`` random geometries with ``K`` scatterers around the nodes (each within a 3 m Gaussian
of TX, RX or the tag): TX (0, 0), RX (20, 0), the tag in [3, 17] x [4, 12] m; every link the line of
sight plus one path per scatterer, gain ``0.6 d_0 / d`` with a random phase.  1 s CW captures,
central 30 dB and both side bands -20 dB per subcarrier, a random clock offset (+-5 ppm), tag clock
(+-80 ppm) and timing offset.  Each is replayed blind (``backscatter replay --method music
--method nomp --method nomp_product``); per capture the median range error of its epochs, and in
how many epochs ``nomp_product`` kept its product fit (its range differs from NOMP's).
"""

from __future__ import annotations

import cmath
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, ".")
from tests.oracle.campaign import epoch_errors, replay
from tests.oracle.scenario import Scenario, write_capture

METHODS = ("music", "nomp", "nomp_product")


def scenario(k: int, rng: np.random.Generator) -> Scenario:
    """One random geometry with ``k`` scatterers around the nodes (the module docstring)."""
    tx, rx = np.array([0.0, 0.0]), np.array([20.0, 0.0])
    tag = np.array([rng.uniform(3, 17), rng.uniform(4, 12)])
    nodes = (tx, rx, tag)
    scat = np.array([nodes[rng.integers(3)] + rng.normal(0, 3.0, 2) for _ in range(k)])

    def link(a: np.ndarray, b: np.ndarray) -> tuple:
        d0 = float(np.linalg.norm(a - b))
        rows = [(d0, 1.0 + 0j)]
        for s in scat:
            d = float(np.linalg.norm(a - s) + np.linalg.norm(s - b))
            rows.append((d, cmath.rect(0.6 * d0 / d, rng.uniform(0, 2 * math.pi))))
        return tuple(rows)

    return Scenario(
        tx_rx=link(tx, rx),
        tx_tag=link(tx, tag),
        tag_rx=link(tag, rx),
        duration_s=1.0,
        mode="cw",
        snr_db=(30.0, -20.0, -20.0),
        clock_offset_ppm=float(rng.uniform(-5, 5)),
        tag_clock_ppm=float(rng.uniform(-80, 80)),
        timing_offset_samples=float(rng.uniform(0, 1000)),
        seed=int(rng.integers(1 << 30)),
    )


def main() -> None:
    k, seed, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    work = Path("/tmp/oracle_nlos")
    work.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    medians = []
    for case in range(n):
        sc = scenario(k, rng)
        cap, res = work / f"k{k}_{seed}_{case}.h5", work / f"k{k}_{seed}_{case}.results.h5"
        truth = write_capture(sc, cap)
        _, out = replay(cap, sc, METHODS, res)
        cap.unlink()
        errs = epoch_errors(truth, out)
        med = {m: float(np.median(e)) for m, (_, e) in errs.items()}
        medians.append(med)
        # epochs where the product fit was kept (its range differs from NOMP's) and by how much
        moved = errs["nomp_product"][1] - errs["nomp"][1]
        kept = np.abs(moved) > 1e-9
        shift = f"{np.median(moved[kept]):+.2f} m" if kept.any() else "-"
        print(
            k,
            case,
            {m: round(v, 2) for m, v in med.items()},
            f"product kept in {int(kept.sum())} of {kept.size} epochs, median move {shift}",
            flush=True,
        )
    arr = {m: np.array([r[m] for r in medians]) for m in METHODS}
    print(
        "RMS of the per-capture medians (m):",
        {m: round(float(np.sqrt(np.mean(v**2))), 2) for m, v in arr.items()},
    )
    print(
        "median of their absolute values (m):",
        {m: round(float(np.median(np.abs(v))), 2) for m, v in arr.items()},
    )


if __name__ == "__main__":
    main()
