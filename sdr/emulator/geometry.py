"""Random scenario geometry (SYSTEM.md section 9) turned into the three path lists."""

from __future__ import annotations

import numpy as np

from dsp.channel import Paths
from dsp.waveform import SPEED_OF_LIGHT_M_S, WaveformConfig
from sdr.emulator.scenario import ScenarioConfig


def _gains(lengths_m: np.ndarray, wavelength_m: float, rng: np.random.Generator) -> np.ndarray:
    """Free-space amplitude ``lambda / (4 pi d)`` with a uniform random phase, ``[path]``."""
    phase = rng.uniform(0, 2 * np.pi, lengths_m.shape)
    return wavelength_m / (4 * np.pi * lengths_m) * np.exp(1j * phase)


def draw_paths(
    sc: ScenarioConfig, wf: WaveformConfig, rng: np.random.Generator
) -> tuple[Paths, Paths, Paths, tuple[float, float] | None]:
    """Return (TX-RX, TX-tag, tag-RX) paths and the tag position (None for explicit paths)."""
    if sc.explicit_paths:
        return (
            Paths.from_list(sc.paths_tx_rx),
            Paths.from_list(sc.paths_tx_tag),
            Paths.from_list(sc.paths_tag_rx),
            None,
        )
    tx = np.asarray(sc.tx_pos_m)
    rx = np.asarray(sc.rx_pos_m)
    if sc.tag_pos_m is not None:
        tag = np.asarray(sc.tag_pos_m)
    else:
        x0, x1, y0, y1 = sc.tag_region_m
        tag = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
    centroid = (tx + rx + tag) / 3
    half = sc.scatter_region_m / 2
    scat = centroid + rng.uniform(-half, half, (sc.n_nlos, 2))

    def dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.linalg.norm(np.atleast_2d(a) - np.atleast_2d(b), axis=-1)

    d_tx_s, d_rx_s, d_tag_s = dist(tx, scat), dist(rx, scat), dist(tag, scat)
    lengths = {
        "tx_rx": np.concatenate([dist(tx, rx), d_tx_s + d_rx_s]),
        "tx_tag": np.concatenate([dist(tx, tag), d_tx_s + d_tag_s]),
        "tag_rx": np.concatenate([dist(tag, rx), d_tag_s + d_rx_s]),
    }
    if min(lengths["tx_rx"][0], lengths["tx_tag"][0], lengths["tag_rx"][0]) <= 0:
        raise ValueError("scenario geometry: TX, RX and tag must be at distinct positions")
    wavelength = SPEED_OF_LIGHT_M_S / wf.carrier_freq_hz
    out = [Paths(v, _gains(v, wavelength, rng)) for v in lengths.values()]
    return out[0], out[1], out[2], (float(tag[0]), float(tag[1]))
