"""The geometries of ``session15/oracle_nlos.py`` without the receiver, many of them: per geometry the
oracle's own propagation CFRs (``tests.oracle.scenario.plan``; no circuitry, no impairments), white
noise as the replays see it after an epoch of 1500 symbols (central 30 dB, both side bands -20 dB
per subcarrier), one draw.  First-path errors (m) of the central band (TX-RX) and of the two side
bands (TX-tag-RX), and the range error a receiver would publish, side minus central:

* ``nomp``: NOMP on the central band; NOMP on both side bands jointly;
* ``nomp_product``: NOMP on the central band; ``nomp_product`` on both side bands;
* ``music``: MUSIC on the central band; the mean of MUSIC on each side band.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python docs/results/nomp/session18/oracle_propagation.py K SEED N
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
SNR_DB = {"central": 30.0, "lower": -20.0, "upper": -20.0}


def noisy(h: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    var = np.mean(np.abs(h) ** 2) / 10 ** (snr_db / 10) / N_SYMBOLS
    return h + np.sqrt(var / 2) * (rng.standard_normal(h.size) + 1j * rng.standard_normal(h.size))


def main() -> None:
    k, seed, n = (int(a) for a in sys.argv[1:4])
    wf = get_profile("default")
    nomp, product, music = (get_method(m, wf) for m in ("nomp", "nomp_product", "music"))
    rng = np.random.default_rng(seed)  # the same geometries as oracle_nlos.py K SEED
    rows = []
    for case in range(n):
        sc = scenario(k, rng)
        truth = plan(sc)
        noise = np.random.default_rng([seed, case])
        y = {b: noisy(truth.cfr[b], SNR_DB[b], noise) for b in ("central", "lower", "upper")}
        sides = np.stack([y["lower"], y["upper"]])
        t_central = sc.tx_rx[0][0] / C
        t_side = (sc.tx_tag[0][0] + sc.tag_rx[0][0]) / C
        central = {
            "nomp": nomp.fit(y["central"]).delay_s - t_central,
            "music": music.first_path_delay_s(y["central"]) - t_central,
        }
        side = {
            "nomp": nomp.fit(sides).delay_s - t_side,
            "nomp_product": product.side_delay_and_std_s(sides)[0] - t_side,
            "music": float(np.mean([music.first_path_delay_s(s) for s in sides])) - t_side,
        }
        central["nomp_product"] = central["nomp"]
        row = {m: (central[m] * C, side[m] * C, (side[m] - central[m]) * C) for m in side}
        rows.append(row)
        print(
            k,
            case,
            "  ".join(f"{m}: central {c:+.2f} side {s:+.2f} range {r:+.2f}" for m, (c, s, r) in row.items()),
            flush=True,
        )
    print("RMS (m) of the central / side / range errors:")
    for m in rows[0]:
        e = np.array([r[m] for r in rows])
        rms = np.sqrt(np.mean(e**2, axis=0))
        print(
            f"  {m}: {rms[0]:.2f} / {rms[1]:.2f} / {rms[2]:.2f};",
            f"median absolute range error {np.median(abs(e[:, 2])):.2f}",
        )


if __name__ == "__main__":
    main()
