"""HDF5 capture writer following ``captures/FORMAT.md`` (version 1), h5py only."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

FULL_SCALE = 32767


class CaptureWriter:
    """Create a capture of ``n_channels x n_samples``; fill it with :meth:`write`, then :meth:`close`.

    ``datatype`` is ``ci16_le`` (int16 I/Q pairs, 32767 = 1.0) or ``cf32_le`` (complex64).
    """

    def __init__(
        self,
        path: str | Path,
        bands: list[str],
        center_freqs_hz: list[float],
        capture_rate_hz: float,
        n_samples: int,
        waveform_attrs: dict,
        datatype: str = "ci16_le",
    ):
        if datatype not in ("ci16_le", "cf32_le"):
            raise ValueError(f"datatype {datatype!r}: use ci16_le or cf32_le")
        self.datatype = datatype
        self.f = h5py.File(path, "w")
        self.f.attrs["format"] = "backscatter-capture"
        self.f.attrs["format_version"] = 1
        self.f.attrs["core:datatype"] = datatype
        self.f.attrs["core:sample_rate"] = float(capture_rate_hz)
        self.f.attrs["core:recorder"] = "tests/oracle (independent reference synthesiser)"
        n_ch = len(bands)
        chunk = min(65536, n_samples)
        if datatype == "ci16_le":
            shape, dtype, chunks = (n_ch, n_samples, 2), np.int16, (n_ch, chunk, 2)
        else:
            shape, dtype, chunks = (n_ch, n_samples), np.complex64, (n_ch, chunk)
        self.iq = self.f.create_dataset(
            "iq", shape, dtype, maxshape=(n_ch, None, *shape[2:]), chunks=chunks, fletcher32=True
        )
        self.iq.attrs["band"] = bands
        self.iq.attrs["core:frequency"] = np.asarray(center_freqs_hz, np.float64)
        wf = self.f.create_group("config/waveform")
        for k, v in waveform_attrs.items():
            wf.attrs[k] = v

    def write(self, start: int, iq: np.ndarray) -> None:
        """Store complex ``iq`` ``[channel, sample]`` (1.0 = full scale) from sample ``start``."""
        if self.datatype == "ci16_le":
            pairs = np.ascontiguousarray(iq, np.complex64).view(np.float32) * np.float32(FULL_SCALE)
            np.rint(pairs, out=pairs)
            np.clip(pairs, -32768, 32767, out=pairs)
            data = pairs.astype(np.int16).reshape(*iq.shape, 2)
        else:
            data = iq.astype(np.complex64)
        self.iq[:, start : start + iq.shape[1]] = data

    def truth(self, attrs: dict, band_attrs: dict, datasets: dict) -> None:
        """``/truth``: scalar ``attrs``, per-band dicts as JSON strings, and ``datasets``."""
        g = self.f.create_group("truth")
        for k, v in attrs.items():
            g.attrs[k] = v
        for k, v in band_attrs.items():
            g.attrs[k] = json.dumps(v)
        for k, v in datasets.items():
            g[k] = v

    def close(self) -> None:
        self.f.close()
