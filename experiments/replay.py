"""``replay`` over many capture files on the sweep engine: one task per file, merged summaries.

The caller supplies ``make_summary(path) -> dict`` (the single-file ``replay``
summary of :func:`app.run.summarise`, plus what it likes); it must be a
picklable module-level function (or a :func:`functools.partial` of one) so that
remote workers can run it.  :func:`merge_summaries` sums the counts, recomputes the
BER, pools the range errors into one RMSE per method (weighted by each file's
ranging epochs) and keeps every per-file summary.
"""

from __future__ import annotations

import glob
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments.engine import EngineConfig, SweepError, Task, run_tasks

SUM_KEYS = (
    "duration_s",
    "processing_s",
    "packets_sent",
    "packets_detected",
    "crc_ok",
    "bits",
    "bit_errors",
    "ranging_epochs",
)


def expand_captures(pattern: str, suffixes: Sequence[str] = (".h5", ".hdf5")) -> list[str]:
    """Capture files of a directory (by suffix, sorted), a glob, or a single file; empty is an error."""
    p = Path(pattern)
    if p.is_dir():
        files = sorted(str(f) for f in p.iterdir() if f.is_file() and f.suffix in suffixes)
    elif any(ch in pattern for ch in "*?["):
        files = sorted(f for f in glob.glob(pattern, recursive=True) if os.path.isfile(f))
    else:
        files = [pattern] if p.is_file() else []
    if not files:
        raise SweepError(f"no capture files match {pattern!r}")
    return files


def _summarise_one(params: dict[str, Any], seeds: dict[str, np.random.SeedSequence]) -> dict[str, Any]:
    return {"summary": params["make_summary"](params["path"])}


def replay_many(
    paths: Sequence[str],
    make_summary: Callable[[str], dict],
    scheduler: str | None = None,
    progress: bool = True,
    n_workers: int | None = None,
    processes: bool = True,
) -> dict:
    """Run ``make_summary`` on every file as one dask task each; return :func:`merge_summaries` of them.

    ``scheduler`` is an existing cluster's address, or ``None`` for a ``LocalCluster``
    (``n_workers`` workers, processes unless ``processes`` is false).  A file whose
    task raises is listed under ``failed`` with its error; the others still merge.
    """
    if not paths:
        raise SweepError("replay_many: no files")
    tasks = [
        Task(f"{i:06d}", _summarise_one, {"path": str(p), "make_summary": make_summary})
        for i, p in enumerate(paths)
    ]
    engine = EngineConfig(scheduler=scheduler, n_workers=n_workers, processes=processes, progress=progress)
    records, stats = run_tasks(tasks, 0, engine, None, "replay")
    summaries, failed = [], []
    for t in tasks:
        rec = records.get(t.key)
        if rec is None:
            err = next((e for e in stats.errors if e.startswith(f"{t.key}: ")), "unknown error")
            failed.append({"file": t.params["path"], "error": err.split(": ", 1)[1].strip().splitlines()[-1]})
        else:
            summaries.append({"file": t.params["path"], **rec["output"]["summary"]})
    merged = merge_summaries(summaries)
    merged["failed"] = failed
    merged["elapsed_s"] = stats.elapsed_s
    return merged


def merge_summaries(summaries: Sequence[dict]) -> dict:
    """One summary for many files: summed counts, BER from the sums, pooled range RMSE, per-file list.

    Range errors pool as ``sqrt(sum_i n_i rmse_i^2 / sum_i n_i)`` over files with ground
    truth, ``n_i`` being each file's ranging epochs; ``range_error_m`` pools each
    file's median error weighted the same way (a mean of medians).
    """
    out: dict[str, Any] = {"files": len(summaries)}
    for k in SUM_KEYS:
        vals = [s.get(k) for s in summaries if s.get(k) is not None]
        out[k] = sum(vals) if vals else None
    bits = out.get("bits") or 0
    out["ber"] = out["bit_errors"] / bits if bits else None
    out["realtime_factor"] = (
        out["duration_s"] / out["processing_s"] if out.get("duration_s") and out.get("processing_s") else None
    )
    methods = sorted({m for s in summaries for m in (s.get("range_rmse_m") or {})})
    rmse: dict[str, float | None] = {}
    mean_err: dict[str, float | None] = {}
    for m in methods:
        num = den = num_e = 0.0
        for s in summaries:
            r = (s.get("range_rmse_m") or {}).get(m)
            n = s.get("ranging_epochs") or 0
            if r is None or not math.isfinite(r) or n <= 0:
                continue
            num += n * r**2
            den += n
            e = (s.get("range_error_m") or {}).get(m)
            num_e += n * (e if e is not None else 0.0)
        rmse[m] = math.sqrt(num / den) if den else None
        mean_err[m] = num_e / den if den else None
    out["range_rmse_m"] = rmse
    out["range_error_m"] = mean_err
    ebn0 = [s["ebn0_db"] for s in summaries if s.get("ebn0_db") is not None]
    out["ebn0_db"] = float(10 * np.log10(np.mean(10 ** (np.array(ebn0) / 10)))) if ebn0 else None
    out["per_file"] = list(summaries)
    return out
