"""NOMP with and without its first-path clusters on the ranging sweep's scenarios, side band only,
without the receiver (issue 14, session 17).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python docs/results/nomp/session17/clusters_harness.py SEED NLOS

The analytic upper-band CFRs of ``docs/results/nomp/session15/harness.py`` (``H_1 H_2u``), white
noise at the sweep's SNR after 1500 symbols (8 dB minus 12 / 16 / 20 dB per subcarrier), 10
scenarios x 4 noise seeds x 3 attenuations.  Prints the side band's first-path RMSE with
``cluster_cells`` 0 and at its default, the errors above 10 m, and every first path that moved
(scenario, noise seed, attenuation, error before -> after, in metres).  The errors are not folded
into the window: a first path taken at the far end of the window shows as about 10 km.
"""

from __future__ import annotations

import sys

import numpy as np

sys.path.insert(0, ".")
sys.path.insert(0, "docs/results/nomp/session15")
from harness import WF, C, channels, noisy

from dsp.ranging import get_method


def main() -> None:
    seed, p = int(sys.argv[1]), int(sys.argv[2])
    off, on = get_method("nomp", WF, cluster_cells=0.0), get_method("nomp", WF)
    moved, rows = [], []
    for s in range(10):
        _, hu, _, tu = channels(seed, p, s)
        for ns in range(4):
            rng = np.random.default_rng([ns, s])
            for att in (12, 16, 20):
                yu = noisy(hu, 8 - att, rng)
                before, after = (off.fit(yu).delay_s - tu) * C, (on.fit(yu).delay_s - tu) * C
                rows.append((before, after))
                if abs(after - before) > 1e-6:
                    moved.append(f"s{s} noise {ns} {att} dB: {before:.2f} -> {after:.2f}")
    r = np.array(rows)
    rms = np.sqrt(np.mean(r**2, axis=0))
    big = np.sum(np.abs(r) > 10, axis=0)
    print(
        f"seed {seed} p {p}: side RMSE off {rms[0]:.2f} on {rms[1]:.2f}; >10 m {big[0]} -> {big[1]}; "
        f"moved {len(moved)} of {len(rows)}"
    )
    for m in moved:
        print("   ", m)


if __name__ == "__main__":
    main()
