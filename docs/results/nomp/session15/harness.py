"""Per-band harness behind docs/RESULTS.md's session-15 tables (issue 14): NOMP, MUSIC and
``nomp_product`` on the ranging sweep's scenarios, without the receiver.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python docs/results/nomp/session15/harness.py 2 12,16,20 [SEED]

The scenarios of ``backscatter sweep ranging --seed SEED`` (default 2025): the analytic CFRs of the
central band (TX-RX plus the structural mode ``0.3 H_1 H_2``) and the upper band (``H_1 H_2u``),
white noise at the sweep's SNR per subcarrier after 1500 symbols (central 30 dB, side 8 dB minus
the attenuation), 3 draws per scenario.  No impairments, acquisition or calibration: the
estimators alone.  Per attenuation: side-band first-path RMSE, range RMSE (side minus central;
NOMP in the central band for both NOMP methods), the median absolute range error, and the median
CPU time of one ``nomp_product`` side estimate.
"""

from __future__ import annotations

import sys
import time

import numpy as np

sys.path.insert(0, ".")
import experiments.ranging as R
from dsp.ranging import get_method
from dsp.waveform import SPEED_OF_LIGHT_M_S as C
from dsp.waveform import get_profile
from experiments.engine import seed_sequence

WF = get_profile("default")


def channels(seed: int, p: int, s: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    tx_rx, tx_tag, tag_rx = R.scenario_paths(WF, p, seed_sequence(seed, (R.GEOMETRY_STREAM, p, s)))
    f, cen = WF.active_freqs_hz, WF.band_centers_hz
    h1c = tx_tag.cfr(f, cen["central"])
    hc = tx_rx.cfr(f, cen["central"]) + 0.3 * h1c * tag_rx.cfr(f, cen["central"])
    hu = h1c * tag_rx.cfr(f, cen["upper"])
    return hc, hu, tx_rx.los_length_m / C, (tx_tag.los_length_m + tag_rx.los_length_m) / C


def noisy(h: np.ndarray, snr_db: float, rng: np.random.Generator, n_symbols: int = 1500) -> np.ndarray:
    var = np.mean(abs(h) ** 2) / 10 ** (snr_db / 10) / n_symbols
    return h + np.sqrt(var / 2) * (rng.standard_normal(h.size) + 1j * rng.standard_normal(h.size))


def rms(v: list[float]) -> float:
    return float(np.sqrt(np.mean(np.square(v))))


def main() -> None:
    p, atts = int(sys.argv[1]), [float(a) for a in sys.argv[2].split(",")]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 2025
    product, nomp, music = (get_method(m, WF) for m in ("nomp_product", "nomp", "music"))
    print(
        "| NLoS | atten. (dB) | side RMSE: music / nomp / product (m) "
        "| range RMSE: music / nomp / product (m) "
        "| median abs. range error: nomp / product (m) | product CPU (ms) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for att in atts:
        rng = np.random.default_rng(7)
        side: dict[str, list[float]] = {k: [] for k in ("music", "nomp", "product")}
        rng_err: dict[str, list[float]] = {k: [] for k in side}
        cpu = []
        for s in range(10):
            hc, hu, tc, tu = channels(seed, p, s)
            for _ in range(3):
                yc, yu = noisy(hc, 30.0, rng), noisy(hu, 8 - att, rng)
                central = {
                    "music": music.first_path_delay_s(yc) - tc,
                    "nomp": nomp.first_path_delay_s(yc) - tc,
                }
                central["product"] = central["nomp"]
                t0 = time.process_time()
                err = {"product": product.side_delay_and_std_s(yu[None])[0] - tu}
                cpu.append(time.process_time() - t0)
                err["nomp"] = nomp.first_path_delay_s(yu) - tu
                err["music"] = music.first_path_delay_s(yu) - tu
                for k in side:
                    side[k].append(err[k] * C)
                    rng_err[k].append((err[k] - central[k]) * C)
        print(
            f"| {p} | {att:g} "
            f"| {rms(side['music']):.2f} / {rms(side['nomp']):.2f} / {rms(side['product']):.2f} "
            f"| {rms(rng_err['music']):.2f} / {rms(rng_err['nomp']):.2f} / {rms(rng_err['product']):.2f} "
            f"| {np.median(np.abs(rng_err['nomp'])):.2f} / {np.median(np.abs(rng_err['product'])):.2f} "
            f"| {np.median(cpu) * 1e3:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
