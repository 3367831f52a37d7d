"""The geometries of ``oracle_nlos.py`` without the receiver: the oracle's own side-band CFRs
(``tests.oracle.scenario.plan``, propagation only), white noise at -20 dB per subcarrier after an
epoch of 1500 symbols, 4 draws per geometry; NOMP and ``nomp_product`` on the upper band alone and
on both side bands.  Per geometry the median first-path error (m); at the end the RMS and the
median absolute error over every draw.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python docs/results/nomp/session15/oracle_truth.py K SEED CAPTURES
"""

from __future__ import annotations

import sys

import numpy as np

sys.path.insert(0, ".")
sys.path.insert(0, "docs/results/nomp/session15")
from oracle_nlos import scenario

from dsp.ranging import get_method
from dsp.waveform import SPEED_OF_LIGHT_M_S as C
from dsp.waveform import get_profile
from tests.oracle.scenario import plan

N_SYMBOLS = 1500


def main() -> None:
    k, seed, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    wf = get_profile("default")
    nomp, product = get_method("nomp", wf), get_method("nomp_product", wf)
    rng = np.random.default_rng(seed)  # the same geometries as oracle_nlos.py K SEED
    err: dict[str, list[float]] = {"nomp upper": [], "product upper": [], "nomp both": [], "product both": []}
    for case in range(n):
        sc = scenario(k, rng)
        truth = plan(sc)
        t_true = (sc.tx_tag[0][0] + sc.tag_rx[0][0]) / C
        noise = np.random.default_rng(case)
        for _ in range(4):
            y = {}
            for band in ("lower", "upper"):
                h = truth.cfr[band]
                var = np.mean(abs(h) ** 2) / 10 ** (-20 / 10) / N_SYMBOLS
                y[band] = h + np.sqrt(var / 2) * (
                    noise.standard_normal(h.size) + 1j * noise.standard_normal(h.size)
                )
            both = np.stack([y["lower"], y["upper"]])
            err["nomp upper"].append((nomp.fit(y["upper"]).delay_s - t_true) * C)
            err["product upper"].append((product.side_delay_and_std_s(y["upper"][None])[0] - t_true) * C)
            err["nomp both"].append((nomp.fit(both).delay_s - t_true) * C)
            err["product both"].append((product.side_delay_and_std_s(both)[0] - t_true) * C)
        print(k, case, {m: round(float(np.median(v[-4:])), 2) for m, v in err.items()}, flush=True)
    print(
        "RMS / median absolute (m):",
        {
            m: (round(float(np.sqrt(np.mean(np.square(v)))), 2), round(float(np.median(np.abs(v))), 2))
            for m, v in err.items()
        },
    )


if __name__ == "__main__":
    main()
