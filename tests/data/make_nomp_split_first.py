"""Record side-band CFRs whose weak line of sight NOMP fits as a pair of atoms
(tests/data/nomp_split_first.npz, issue 14: the first-path rule's clusters, ``cluster_cells``).

Run from the repository root::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python tests/data/make_nomp_split_first.py

Upper-band CFRs of ranging-sweep scenarios (the geometry of
``experiments.ranging.scenario_paths``), computed analytically (``H_1 H_2u``, no receiver) with
white noise at the sweep's side-band SNR after a 1500-symbol epoch (8 dB minus the tag-RX
attenuation, per subcarrier), as ``docs/results/nomp/session15/harness.py`` does.  In each, the
fit holds the line of sight as two atoms about 2 m apart (just over ``component_cells``), each more
than 15 dB below the strongest component though jointly within it, so that without clusters the
first-path rule skips both and takes a path 11-17 m later.  Stored: ``cfr`` ``[case, subcarrier]``,
``first_path_delay_s`` ``[case]`` (the compound line of sight) and the labels.
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

OUT = Path(__file__).with_name("nomp_split_first.npz")
N_SYMBOLS = 1500
ATTENUATIONS_DB = (12.0, 16.0, 20.0)
# (root seed, NLoS paths per link, scenario, tag-RX attenuation dB, noise seed)
CASES = ((7, 8, 8, 20.0, 0), (101, 4, 4, 16.0, 1), (5, 8, 6, 20.0, 1))


def case(
    seed: int, n_nlos: int, scenario: int, attenuation_db: float, noise_seed: int
) -> tuple[np.ndarray, float]:
    wf = get_profile("default")
    _, tx_tag, tag_rx = scenario_paths(wf, n_nlos, seed_sequence(seed, (GEOMETRY_STREAM, n_nlos, scenario)))
    f, cen = wf.active_freqs_hz, wf.band_centers_hz
    h = tx_tag.cfr(f, cen["central"]) * tag_rx.cfr(f, cen["upper"])
    rng = np.random.default_rng([noise_seed, scenario])
    for att in ATTENUATIONS_DB:  # one draw per attenuation, in order, as the harness draws them
        var = np.mean(abs(h) ** 2) / 10 ** ((8.0 - att) / 10) / N_SYMBOLS
        y = h + np.sqrt(var / 2) * (rng.standard_normal(h.size) + 1j * rng.standard_normal(h.size))
        if att == attenuation_db:
            return y, float(tx_tag.delays_s[0] + tag_rx.delays_s[0])
    raise ValueError(f"attenuation {attenuation_db} dB is not one of {ATTENUATIONS_DB}")


def main() -> None:
    cfrs, firsts = zip(*(case(*c) for c in CASES), strict=True)
    labels = [f"seed {s}, p{p}/s{sc:03d}, {a:g} dB, noise seed {n}" for s, p, sc, a, n in CASES]
    np.savez_compressed(OUT, cfr=np.stack(cfrs), first_path_delay_s=np.array(firsts), labels=np.array(labels))


if __name__ == "__main__":
    main()
