"""Export a capture as a SigMF Collection: one recording per channel."""

from __future__ import annotations

import os
from pathlib import Path

from sigmf import SigMFCollection, SigMFFile
from sigmf import __version__ as sigmf_version

from captures.reader import open_capture

_COPY_SAMPLES = 1 << 20


def export_sigmf(capture_path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write ``<stem>_<band>.sigmf-{data,meta}`` per channel and ``<stem>.sigmf-collection``.

    Gaps become new capture segments whose ``core:global_index`` jumps by the samples
    lost, the SigMF way of marking a discontinuity.  Returns the collection path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open_capture(capture_path) as cap:
        stem = Path(capture_path).stem
        datatype = cap.datatype
        metas = []
        for c, ch in enumerate(cap.channels):
            name = f"{stem}_{ch.band}"
            data_path = out / f"{name}.sigmf-data"
            with open(data_path, "wb") as fh:
                for start in range(0, cap.n_samples, _COPY_SAMPLES):
                    raw = cap.read_raw(c, start, start + _COPY_SAMPLES)
                    fh.write(raw.astype("<i2" if datatype == "ci16_le" else "<c8").tobytes())
            meta = SigMFFile(
                data_file=str(data_path),
                global_info={
                    "core:datatype": datatype,
                    "core:sample_rate": cap.capture_rate_hz,
                    "core:description": f"{ch.band} band of {Path(capture_path).name}",
                    "core:recorder": "backscatter export-sigmf",
                    "core:version": sigmf_version,
                    "core:num_channels": 1,
                },
            )
            lost_total = 0
            segments = [(0, 0)] + [(int(s), int(k)) for s, k in cap.gaps]
            for s, k in segments:
                lost_total += k
                info = {
                    "core:frequency": ch.center_freq_hz,
                    "core:global_index": s + lost_total,
                }
                if s == 0 and cap.datetime:
                    info["core:datetime"] = cap.datetime
                if s < cap.n_samples or s == 0:
                    meta.add_capture(s, metadata=info)
            meta.tofile(str(out / f"{name}.sigmf-meta"))
            metas.append(f"{name}.sigmf-meta")
        coll = SigMFCollection(
            metafiles=metas,
            base_path=str(out),
            metadata={
                "collection": {
                    "core:version": sigmf_version,
                    "core:description": f"backscatter capture {Path(capture_path).name}",
                }
            },
        )
        path = out / f"{stem}.sigmf-collection"
        coll.tofile(str(path))
    return path
