"""Record NOMP reference outputs (tests/data/nomp_reference.npz) for the speed-equivalence test.

Run from the repository root, at a commit whose ``dsp/ranging/nomp.py`` gives the results to
keep (recorded at b5b1cf3, before the speed-ups of issues 14 and 18)::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python tests/data/make_nomp_reference.py

Beside each output the script records its sensitivity to rounding: the largest change over
eight refits of the input multiplied by ``1 + 4e-16 g`` (``g`` standard normal, a rounding-level
perturbation), as a relative error (delays, noise variances, standard deviation) or relative to
the band's largest gain (gains).  Most outputs move by 1e-15; a fit with nearly cancelling close
atoms moves by up to 1e-8.  The test's tolerance is a multiple of it.

The inputs are not stored: :func:`cases` regenerates them from fixed seeds (the test checks a
digest of each input against the one recorded here, so a change in the generators shows as
such, not as a changed estimate).  Cases: 1-8 paths at 0, 10, 20, 30 and 40 dB per subcarrier,
noise only, pairs half a resolution cell apart (the close-path pruning), one, two and three
bands, and compound 8-NLoS channels as ``backscatter bench`` times them.
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

OUT = Path(__file__).with_name("nomp_reference.npz")


def _noisy(h: np.ndarray, var: float, rng: np.random.Generator) -> np.ndarray:
    return h + math.sqrt(var / 2) * (rng.standard_normal(h.shape) + 1j * rng.standard_normal(h.shape))


def _paths(wf, n_paths: int, rng: np.random.Generator, spacing_cells: float) -> tuple[np.ndarray, np.ndarray]:
    cell = 1.0 / wf.occupied_bandwidth_hz
    gaps = spacing_cells + rng.uniform(0, 1.0, n_paths - 1)
    tau = 1e-6 + cell * np.r_[0.0, np.cumsum(gaps)] + rng.uniform(0, wf.cir_grid_step_s)
    return tau, 1.0 / (1.0 + 0.3 * np.arange(n_paths))


def cases(wf) -> Iterator[tuple[str, np.ndarray]]:
    """``(name, cfr)`` with ``cfr`` ``[subcarrier]`` or ``[band, subcarrier]``, all seeds fixed."""
    f = wf.active_freqs_hz
    n = f.size
    for n_paths in range(1, 9):
        for snr_db in (0.0, 10.0, 20.0, 30.0, 40.0):
            for n_bands in (1, 2):
                rng = np.random.default_rng([n_paths, int(snr_db), n_bands])
                spacing = 0.6 if (n_paths + int(snr_db) // 10) % 3 == 0 else 1.5
                tau, mag = _paths(wf, n_paths, rng, spacing)
                hs = []
                for _ in range(n_bands):
                    h0 = model_cfr(f, tau, mag * np.exp(2j * np.pi * rng.uniform(size=n_paths)))
                    hs.append(_noisy(h0, noise_var_for_snr(h0, snr_db), rng))
                yield f"p{n_paths}_snr{int(snr_db)}_b{n_bands}", np.stack(hs) if n_bands > 1 else hs[0]
    for n_bands in (1, 2, 3):
        for i in range(4):
            rng = np.random.default_rng([99, n_bands, i])
            y = _noisy(np.zeros((n_bands, n), complex), 1.0, rng)
            yield f"noise_b{n_bands}_{i}", y[0] if n_bands == 1 else y
    cell = 1.0 / wf.occupied_bandwidth_hz
    for i in range(6):  # pairs half a cell apart: the near-neighbour pruning refits
        rng = np.random.default_rng([7, i])
        tau = 2e-6 + np.array([0.0, (0.3 + 0.1 * i) * cell]) + rng.uniform(0, wf.cir_grid_step_s)
        h0 = model_cfr(f, tau, np.exp(2j * np.pi * rng.uniform(size=2)))
        yield f"pair_{i}", _noisy(h0, noise_var_for_snr(h0, 30.0), rng)
    from sdr.emulator.geometry import draw_paths
    from sdr.emulator.scenario import ScenarioConfig

    for s in range(6):  # as backscatter/commands/bench_nomp.py, at 28 dB and 15 dB; 3 bands of one
        _, tx_tag, tag_rx = draw_paths(ScenarioConfig(n_nlos=8), wf, np.random.default_rng([0, s]))[:3]
        rng = np.random.default_rng([123, s])
        tau, a = compound_model(tx_tag, tag_rx, wf, "upper")
        h = model_cfr(f, tau - tau[0] + 1e-6, a)
        for snr_db in (28.0, 15.0):
            yield f"bench{s}_snr{int(snr_db)}", _noisy(h, noise_var_for_snr(h, snr_db), rng)
        if s < 2:
            hs = []
            for band in ("lower", "upper", "carrier"):
                try:
                    tau_b, a_b = compound_model(tx_tag, tag_rx, wf, band)
                except (ValueError, KeyError):
                    continue
                hb = model_cfr(f, tau_b - tau[0] + 1e-6, a_b)
                hs.append(_noisy(hb, noise_var_for_snr(hb, 28.0), rng))
            yield f"bench{s}_bands{len(hs)}", np.stack(hs)


def digest(y: np.ndarray) -> np.ndarray:
    """Fingerprint of an input ``[4]``: sums of the parts and index-weighted sums."""
    y = np.atleast_2d(y)
    idx = np.arange(y.size).reshape(y.shape) + 1.0
    return np.array([y.real.sum(), y.imag.sum(), (idx * y.real).sum(), (idx * y.imag).sum()])


def outputs(est) -> dict[str, np.ndarray]:
    return {
        "delays_s": np.asarray(est.delays_s),
        "gains": np.asarray(est.gains),
        "noise_var": np.asarray(est.noise_var),
        "first": np.asarray(est.first),
        "delay_s": np.asarray(est.delay_s),
        "delay_std_s": np.asarray(est.delay_std_s),
        "order": np.asarray(est.order),
    }


def change(est, ref) -> np.ndarray:
    """Relative change ``[delays, gains, noise_var, delay_std_s]`` of ``est`` from ``ref`` (same order)."""
    if est.order != ref.order or est.first != ref.first:
        raise RuntimeError("a rounding-level perturbation changed the model order or the first path")
    out = np.zeros(4)
    if ref.order:
        out[0] = np.max(np.abs(est.delays_s / ref.delays_s - 1))
        scale = np.max(np.abs(ref.gains), axis=1, keepdims=True)
        out[1] = np.max(np.abs(est.gains - ref.gains) / scale)
        out[3] = abs(est.delay_std_s / ref.delay_std_s - 1)
    out[2] = np.max(np.abs(est.noise_var / ref.noise_var - 1))
    return out


def main() -> None:
    wf = get_profile("default")
    nomp = get_method("nomp", wf)
    store: dict[str, np.ndarray] = {}
    names = []
    rng = np.random.default_rng(2026)
    for name, y in cases(wf):
        names.append(name)
        store[f"{name}/digest"] = digest(y)
        est = nomp.fit(y)
        for k, v in outputs(est).items():
            store[f"{name}/{k}"] = v
        sens = np.zeros(4)
        for _ in range(8):
            sens = np.maximum(sens, change(nomp.fit(y * (1 + 4e-16 * rng.standard_normal(y.shape))), est))
        store[f"{name}/sensitivity"] = sens
    store["names"] = np.array(names)
    np.savez_compressed(OUT, **store)
    orders = [int(store[f"{n}/order"]) for n in names]
    sens = np.array([store[f"{n}/sensitivity"] for n in names])
    print(f"{len(names)} cases, orders {np.bincount(orders).tolist()} -> {OUT}")
    print("sensitivity [delays, gains, noise_var, std]: median", np.median(sens, 0), "max", sens.max(0))


if __name__ == "__main__":
    main()
