"""Record the dense-cluster central-band CFRs of NOMP's restart (tests/data/nomp_restart_cluster.npz,
issue 14).

Run from the repository root::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python tests/data/make_nomp_restart_cluster.py

Central-band CFRs of two scenarios of ``backscatter sweep ranging`` (the geometry of
``experiments.ranging.scenario_paths``), eight noise draws each: root seed 2025 with 4 NLoS paths
per link, scenario 8 (TX-RX paths at 0, 0.47, 3.94 and 5.07 m excess length, within 2 dB of each
other), and root seed 101 with 8 NLoS paths, scenario 1.  Computed analytically, as the ranging harness does
(``docs/results/nomp/session15/harness.py``): the TX-RX channel plus the structural mode
``0.3 H_1 H_2`` at the carrier, white noise at 30 dB per subcarrier after a 1500-symbol epoch
(62 dB).  Greedy detection fits each with a ghost pair 3-6 m ahead of the line of sight and stops
at the dynamic-range cap, 10 times the noise.  Stored: ``cfr`` ``[case, subcarrier]``,
``first_path_delay_s`` ``[case]`` (the TX-RX line of sight), ``scenario`` ``[case]`` (0 or 1) and
the labels.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dsp.waveform import get_profile  # noqa: E402
from experiments.engine import seed_sequence  # noqa: E402
from experiments.ranging import GEOMETRY_STREAM, scenario_paths  # noqa: E402

OUT = Path(__file__).with_name("nomp_restart_cluster.npz")
N_SYMBOLS = 1500
SNR_DB = 30.0
# (root seed, NLoS paths per link, scenario, noise seed)
SCENARIOS = ((2025, 4, 8), (101, 8, 1))
CASES = tuple((*sc, noise_seed) for sc in SCENARIOS for noise_seed in range(100, 108))


def case(seed: int, n_nlos: int, scenario: int, noise_seed: int) -> tuple[np.ndarray, float]:
    wf = get_profile("default")
    tx_rx, tx_tag, tag_rx = scenario_paths(
        wf, n_nlos, seed_sequence(seed, (GEOMETRY_STREAM, n_nlos, scenario))
    )
    f, cen = wf.active_freqs_hz, wf.band_centers_hz["central"]
    h = tx_rx.cfr(f, cen) + 0.3 * tx_tag.cfr(f, cen) * tag_rx.cfr(f, cen)
    var = np.mean(abs(h) ** 2) / 10 ** (SNR_DB / 10) / N_SYMBOLS
    rng = np.random.default_rng(noise_seed)
    y = h + np.sqrt(var / 2) * (rng.standard_normal(h.size) + 1j * rng.standard_normal(h.size))
    return y, float(tx_rx.delays_s[0])


def main() -> None:
    cfrs, firsts = zip(*(case(*c) for c in CASES), strict=True)
    labels = [f"seed {s}, p{p}/s{sc:03d}, central 30 dB, noise seed {n}" for s, p, sc, n in CASES]
    scenario = [SCENARIOS.index(c[:3]) for c in CASES]
    np.savez_compressed(
        OUT,
        cfr=np.stack(cfrs),
        first_path_delay_s=np.array(firsts),
        scenario=np.array(scenario),
        labels=np.array(labels),
    )


if __name__ == "__main__":
    main()
