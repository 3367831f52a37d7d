"""Record the dense-cluster CFRs of NOMP's lead test (tests/data/nomp_lead_ghost.npz, issue 14).

Run from the repository root::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python tests/data/make_nomp_lead_ghost.py

Upper-band CFRs of three scenarios of ``backscatter sweep ranging`` with 2 NLoS paths per link
(root seed 11, scenarios 1 and 9; the geometry of ``experiments.ranging.scenario_paths``), computed
analytically (``H_1 H_2u``, no receiver) with white noise at the sweep's side-band SNR after a
1500-symbol epoch (8 dB minus the tag-RX attenuation, per subcarrier).  In each the side band is a
dense cluster of compound paths a fraction of a resolution cell apart, and NOMP without the lead
test takes a ghost 5-9 m ahead of it as the first path.  Stored: ``cfr`` ``[case, subcarrier]``,
``first_path_delay_s`` ``[case]`` and ``compound_delays_s`` ``[case, path]``; the labels say
where each comes from.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dsp.waveform import SPEED_OF_LIGHT_M_S, get_profile  # noqa: E402
from experiments.engine import seed_sequence  # noqa: E402
from experiments.ranging import GEOMETRY_STREAM, scenario_paths  # noqa: E402

OUT = Path(__file__).with_name("nomp_lead_ghost.npz")
N_NLOS = 2
N_SYMBOLS = 1500
# (root seed, scenario, tag-RX attenuation dB, noise seed)
CASES = ((11, 1, 20.0, 1), (11, 9, 16.0, 2), (11, 9, 12.0, 1))


def case(
    seed: int, scenario: int, attenuation_db: float, noise_seed: int
) -> tuple[np.ndarray, float, np.ndarray]:
    wf = get_profile("default")
    _, tx_tag, tag_rx = scenario_paths(wf, N_NLOS, seed_sequence(seed, (GEOMETRY_STREAM, N_NLOS, scenario)))
    cen = wf.band_centers_hz
    h = tx_tag.cfr(wf.active_freqs_hz, cen["central"]) * tag_rx.cfr(wf.active_freqs_hz, cen["upper"])
    snr_db = 8.0 - attenuation_db
    var = np.mean(abs(h) ** 2) / 10 ** (snr_db / 10) / N_SYMBOLS
    rng = np.random.default_rng(noise_seed)
    y = h + np.sqrt(var / 2) * (rng.standard_normal(h.size) + 1j * rng.standard_normal(h.size))
    compound = np.add.outer(tx_tag.lengths_m, tag_rx.lengths_m).ravel() / SPEED_OF_LIGHT_M_S
    return y, float(compound.min()), np.sort(compound)


def main() -> None:
    cfrs, firsts, compounds = zip(*(case(*c) for c in CASES), strict=True)
    labels = [f"seed {s}, p{N_NLOS}/s{sc:03d}, {a:g} dB, noise seed {n}" for s, sc, a, n in CASES]
    np.savez_compressed(
        OUT,
        cfr=np.stack(cfrs),
        first_path_delay_s=np.array(firsts),
        compound_delays_s=np.stack(compounds),
        labels=np.array(labels),
    )


if __name__ == "__main__":
    main()
