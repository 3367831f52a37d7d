"""Ground truth of emulated captures in HDF5: ``/truth`` (optional in any capture)."""

from __future__ import annotations

import json
from typing import Any

import h5py
import numpy as np

from dsp.truth import GroundTruth

_SCALAR_KEYS = ("range_true_m", "tx_rx_distance_m", "sample_offset", "lo_ppm", "tag_clock_ppm", "tag_id")
_BAND_KEYS = ("cfo_hz", "snr_db", "phase_rad", "noise_var", "scale", "circuitry_delay_s")


def write_truth(group: h5py.Group, truth: GroundTruth, scenario_json: str | None = None) -> None:
    """Write ``truth`` into an empty group."""
    for k in _SCALAR_KEYS:
        group.attrs[k] = getattr(truth, k)
    group.attrs["tag_symbol_samples"] = truth.tag_symbol_samples
    group.attrs["sample_clock_ppm"] = truth.sample_clock_ppm
    group.attrs["impairments"] = json.dumps(truth.impairments)
    group.attrs["tag_pos_m"] = json.dumps(list(truth.tag_pos_m) if truth.tag_pos_m else None)
    for k in _BAND_KEYS:
        group.attrs[k] = json.dumps(getattr(truth, k))
    if scenario_json is not None:
        group.attrs["scenario"] = scenario_json
    bands = list(truth.cfr_propagation)
    group.attrs["bands"] = bands
    group["cfr_propagation"] = np.stack([truth.cfr_propagation[b] for b in bands])
    group["cfr_circuitry"] = np.stack([truth.cfr_circuitry[b] for b in bands])
    group["packet_start_sample"] = np.asarray(truth.packet_start_sample, np.float64)
    group["packet_bits"] = np.asarray(truth.packet_bits, np.uint8)


def read_truth(group: h5py.Group) -> GroundTruth:
    """Inverse of :func:`write_truth`; raises KeyError/ValueError on a malformed group."""
    a: dict[str, Any] = dict(group.attrs)
    bands = [b.decode() if isinstance(b, bytes) else str(b) for b in a["bands"]]
    prop = np.asarray(group["cfr_propagation"])
    circ = np.asarray(group["cfr_circuitry"])
    if prop.shape[0] != len(bands) or circ.shape != prop.shape:
        raise ValueError(f"cfr arrays {prop.shape}/{circ.shape} do not match bands {bands}")
    tag_pos = json.loads(a["tag_pos_m"])
    return GroundTruth(
        range_true_m=float(a["range_true_m"]),
        tx_rx_distance_m=float(a["tx_rx_distance_m"]),
        tag_pos_m=tuple(tag_pos) if tag_pos else None,
        sample_offset=int(a["sample_offset"]),
        lo_ppm=float(a["lo_ppm"]),
        tag_clock_ppm=float(a["tag_clock_ppm"]),
        tag_id=int(a["tag_id"]),
        tag_symbol_samples=float(a["tag_symbol_samples"]),
        sample_clock_ppm=float(a.get("sample_clock_ppm", 0.0)),  # absent in captures before drift
        impairments=json.loads(a.get("impairments", "{}")),
        cfr_propagation={b: prop[i] for i, b in enumerate(bands)},
        cfr_circuitry={b: circ[i] for i, b in enumerate(bands)},
        packet_start_sample=np.asarray(group["packet_start_sample"], np.float64),
        packet_bits=np.asarray(group["packet_bits"], np.uint8),
        **{k: json.loads(a[k]) for k in _BAND_KEYS},
    )
