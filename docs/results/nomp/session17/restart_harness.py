"""NOMP with and without a restart on the ranging sweep's scenarios, without the receiver
(issue 14, session 17: tried and not kept, docs/RESULTS.md).  The restart (``restart`` parameter,
``dsp/ranging/nomp_restart.py``) exists at commit e848203 only; run this there::

    git checkout e848203
    OPENBLAS_NUM_THREADS=1 .venv/bin/python docs/results/nomp/session17/restart_harness.py SEED NLOS

The analytic CFRs of ``docs/results/nomp/session15/harness.py`` (central band: TX-RX plus the
structural mode at 30 dB per subcarrier; upper band ``H_1 H_2u`` at 8 dB minus the attenuation),
white noise after 1500 symbols, 10 scenarios x 12 / 16 / 20 dB x 2 draws.  Prints the range RMSE
(side minus central first path) with ``restart`` off and on, the errors above 10 m, the median CPU
time of one estimate each way, and every first path the restart moved (scenario, attenuation,
band, error before -> after, in metres).
"""

from __future__ import annotations

import sys
import time

import numpy as np

sys.path.insert(0, ".")
sys.path.insert(0, "docs/results/nomp/session15")
from harness import WF, C, channels, noisy

from dsp.ranging import get_method


def main() -> None:
    seed, p = int(sys.argv[1]), int(sys.argv[2])
    off, on = get_method("nomp", WF, restart=False), get_method("nomp", WF)
    rows, cpu_off, cpu_on, moved = [], [], [], []
    for s in range(10):
        hc, hu, tc, tu = channels(seed, p, s)
        rng = np.random.default_rng(7)
        for att in (12, 16, 20):
            for _ in range(2):
                y = {"central": (noisy(hc, 30.0, rng), tc), "upper": (noisy(hu, 8 - att, rng), tu)}
                err = {}
                for band, (cfr, truth) in y.items():
                    t0 = time.process_time()
                    before = (off.fit(cfr).delay_s - truth) * C
                    t1 = time.process_time()
                    after = (on.fit(cfr).delay_s - truth) * C
                    cpu_off.append(t1 - t0)
                    cpu_on.append(time.process_time() - t1)
                    err[band] = (before, after)
                    if abs(after - before) > 1e-6:
                        moved.append(f"s{s} {att} dB {band}: {before:.2f} -> {after:.2f}")
                rows.append([err["upper"][k] - err["central"][k] for k in (0, 1)])
    r = np.array(rows)
    rms = np.sqrt(np.mean(r**2, axis=0))
    big = np.sum(np.abs(r) > 10, axis=0)
    print(
        f"seed {seed}, {p} NLoS: range RMSE off {rms[0]:.2f} m, on {rms[1]:.2f} m; above 10 m "
        f"{big[0]} -> {big[1]}; CPU per estimate off {np.median(cpu_off) * 1e3:.1f} ms, "
        f"on {np.median(cpu_on) * 1e3:.1f} ms; moved {len(moved)} of {2 * len(rows)}"
    )
    for m in moved:
        print("   ", m)


if __name__ == "__main__":
    main()
