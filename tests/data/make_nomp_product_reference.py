"""Record ``nomp_product`` reference outputs (tests/data/nomp_product_reference.npz) for the
speed-equivalence test (``tests/test_nomp_product_speed_equivalence.py``).

Run from the repository root, at a commit whose ``dsp/ranging/nomp_product.py`` gives the results
to keep (recorded at 539d2ac, before its Levenberg-Marquardt fit was compiled)::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python tests/data/make_nomp_product_reference.py

Cases: compound side-band channels of the ranging sweep's geometry (``draw_paths``, 0, 2, 4 and 8
NLoS paths, 4 scenarios each) at 28 and 15 dB per subcarrier, the upper band alone and, for one
scenario per path count, both side bands.  Recorded per case: the side-band estimate
(``side_delay_and_std_s``) and the product fit (``product_fit``: whether one is kept, its path
count, its whitened residual energy and delays).

Beside each case the script records its sensitivity to rounding, as
``make_nomp_reference.py`` does: the largest relative change of the outputs over four fits of the
input multiplied by ``1 + 4e-16 g`` (``g`` standard normal).  A case where such a perturbation
changes a discrete outcome (a fit kept or not, its path count) sits on a decision boundary, where
any reordering of a sum may flip it: it is left out (the script says how many).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dsp.crlb import compound_model, model_cfr, noise_var_for_snr  # noqa: E402
from dsp.ranging import get_method  # noqa: E402
from dsp.waveform import get_profile  # noqa: E402

OUT = Path(__file__).with_name("nomp_product_reference.npz")
# the defaults at 539d2ac, where the reference was recorded, of the parameters whose defaults moved
# since (NOMP's first-path clusters and the product fit's shift guard, session 17): the test and
# any re-recording use them, so the reference stays a test of the compiled fit alone
RECORDED = {"cluster_cells": 0.0, "max_shift_cells": 0.5, "max_later_cells": 0.5}


def cases(wf) -> Iterator[tuple[str, np.ndarray]]:
    """``(name, cfrs)`` with ``cfrs`` ``[band, subcarrier]``, all seeds fixed."""
    from sdr.emulator.geometry import draw_paths
    from sdr.emulator.scenario import ScenarioConfig

    f = wf.active_freqs_hz
    for n_nlos in (0, 2, 4, 8):
        for s in range(4):
            _, tx_tag, tag_rx = draw_paths(
                ScenarioConfig(n_nlos=n_nlos), wf, np.random.default_rng([31, n_nlos, s])
            )[:3]
            rng = np.random.default_rng([32, n_nlos, s])
            tau0 = compound_model(tx_tag, tag_rx, wf, "upper")[0][0]
            bands = ("upper", "lower") if s == 0 else ("upper",)
            clean = []
            for band in bands:
                tau, a = compound_model(tx_tag, tag_rx, wf, band)
                clean.append(model_cfr(f, tau - tau0 + 1e-6, a))
            for snr_db in (28.0, 15.0):
                y = []
                for h in clean:
                    var = noise_var_for_snr(h, snr_db)
                    y.append(
                        h
                        + math.sqrt(var / 2)
                        * (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size))
                    )
                yield f"nlos{n_nlos}_s{s}_snr{int(snr_db)}_b{len(bands)}", np.stack(y)


def digest(y: np.ndarray) -> np.ndarray:
    """Fingerprint of an input ``[4]``: sums of the parts and index-weighted sums."""
    idx = np.arange(y.size).reshape(y.shape) + 1.0
    return np.array([y.real.sum(), y.imag.sum(), (idx * y.real).sum(), (idx * y.imag).sum()])


def outputs(method, y: np.ndarray) -> dict[str, np.ndarray]:
    """The side-band estimate and the product fit behind it (``kept`` 0 where none is kept)."""
    delay_s, std_s = method.side_delay_and_std_s(y)
    fit = method.product_fit(y, method.fit(y))
    out = {"delay_s": np.asarray(delay_s), "std_s": np.asarray(std_s), "kept": np.asarray(fit is not None)}
    if fit is not None:
        out |= {"n_paths": np.asarray(fit.n_paths), "cost": np.asarray(fit.cost)}
        out |= {"w1": np.asarray(fit.w1), "w2": np.asarray(fit.w2)}
    return out


def change(got: dict, ref: dict) -> np.ndarray | None:
    """Relative change ``[delay_s, std_s, cost, delays]``; ``None`` where a discrete outcome changed."""
    if bool(got["kept"]) != bool(ref["kept"]):
        return None
    if bool(ref["kept"]) and (int(got["n_paths"]) != int(ref["n_paths"]) or got["w1"].size != ref["w1"].size):
        return None
    out = np.zeros(4)
    out[0] = abs(float(got["delay_s"]) / float(ref["delay_s"]) - 1)
    out[1] = abs(float(got["std_s"]) / float(ref["std_s"]) - 1) if np.isfinite(ref["std_s"]) else 0.0
    if bool(ref["kept"]):
        out[2] = abs(float(got["cost"]) / float(ref["cost"]) - 1)
        w_got, w_ref = np.r_[got["w1"], got["w2"]], np.r_[ref["w1"], ref["w2"]]
        out[3] = float(np.max(np.abs(w_got - w_ref)) / (2 * np.pi))  # of the window
    return out


def main() -> None:
    wf = get_profile("default")
    method = get_method("nomp_product", wf, **RECORDED)
    store: dict[str, np.ndarray] = {}
    names, unstable = [], []
    rng = np.random.default_rng(2027)
    for name, y in cases(wf):
        ref = outputs(method, y)
        sens = np.zeros(4)
        for _ in range(4):
            c = change(outputs(method, y * (1 + 4e-16 * rng.standard_normal(y.shape))), ref)
            if c is None:
                break
            sens = np.maximum(sens, c)
        else:
            names.append(name)
            store[f"{name}/digest"] = digest(y)
            store[f"{name}/sensitivity"] = sens
            for k, v in ref.items():
                store[f"{name}/{k}"] = v
            continue
        unstable.append(name)
    store["names"] = np.array(names)
    np.savez_compressed(OUT, **store)
    kept = sum(bool(store[f"{n}/kept"]) for n in names)
    sens = np.array([store[f"{n}/sensitivity"] for n in names])
    print(f"{len(names)} cases ({kept} with a product fit kept) -> {OUT}; left out (unstable): {unstable}")
    print("sensitivity [delay, std, cost, delays]: median", np.median(sens, 0), "max", sens.max(0))


if __name__ == "__main__":
    main()
