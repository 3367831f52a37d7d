"""Results files: every packet and ranging epoch of a receiver run, for later plots."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from dsp.errors import OutputExistsError

RESULTS_FORMAT = "backscatter-results"
RESULTS_VERSION = 1


def write_results(path: str | os.PathLike, run: Any, summary: dict, force: bool = False) -> None:
    """Write ``/packets`` (one row per packet), ``/epochs`` (ranges, SNRs, CFRs, CIRs) and the summary."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; refusing to overwrite (use --force)")
    with h5py.File(path, "w") as f:
        f.attrs["format"] = RESULTS_FORMAT
        f.attrs["format_version"] = RESULTS_VERSION
        f.attrs["summary"] = json.dumps(summary, default=float)
        f.attrs["waveform"] = run.wf.to_json()
        pk = f.create_group("packets")
        ps = run.packets
        pk["time_s"] = np.array([p.time_s for p in ps], np.float64)
        pk["start_sample"] = np.array([p.start_sample for p in ps], np.float64)
        pk["tag_id"] = np.array([p.tag_id for p in ps], np.int64)
        pk["crc_ok"] = np.array([p.crc_ok for p in ps], bool)
        pk["detection"] = np.array([p.detection for p in ps], np.float64)
        pk["ebn0_db"] = np.array([p.ebn0_db for p in ps], np.float64)
        pk["bit_errors"] = np.array([-1 if p.bit_errors is None else p.bit_errors for p in ps], np.int64)
        pk["bits"] = np.array([p.bits for p in ps], np.uint8).reshape(len(ps), run.wf.packet_bits)
        ep = f.create_group("epochs")
        es = run.epochs
        ep["time_s"] = np.array([e.time_s for e in es], np.float64)
        ep["n_symbols"] = np.array([e.n_symbols for e in es], np.int64)
        bands = run.bands
        ep.attrs["bands"] = bands
        ep["snr_db"] = np.array([[e.snr_db.get(b, np.nan) for b in bands] for e in es]).reshape(
            len(es), len(bands)
        )
        ep["cfo_hz"] = np.array([[e.cfo_hz.get(b, np.nan) for b in bands] for e in es]).reshape(
            len(es), len(bands)
        )
        n_k, k_cir = len(run.wf.active_subcarriers), run.wf.cir_fft_size
        ep["cfr"] = np.array([[e.cfr[b] for b in bands] for e in es], np.complex64).reshape(
            len(es), len(bands), n_k
        )
        ep["cir"] = np.array([[e.cir[b] for b in bands] for e in es], np.complex64).reshape(
            len(es), len(bands), k_cir
        )
        methods = list(es[0].range_m) if es else []
        ep.attrs["methods"] = methods
        ep["range_m"] = np.array([[e.range_m[m] for m in methods] for e in es]).reshape(len(es), len(methods))
        ep["range_std_m"] = np.array(  # nan where a method gives no uncertainty
            [[e.range_std_m.get(m, np.nan) for m in methods] for e in es]
        ).reshape(len(es), len(methods))
        ep["implausible"] = np.array(  # a range physics forbids (RangingEpoch.implausible)
            [[m in e.implausible for m in methods] for e in es], bool
        ).reshape(len(es), len(methods))
