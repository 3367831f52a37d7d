"""The sweep registry and the driver shared by every sweep: manifest, resume, raw results, summary.

An output directory holds one sweep: ``manifest.json`` (sweep, configuration, root
seed), ``checkpoint.jsonl`` (finished runs, appended as they complete),
``runs.h5`` / ``runs.csv`` (raw results, one row per measurement), the sweep's
figures (PNG) and table (``<sweep>.md``) and ``summary.json``.  Running the same
sweep into the same directory again resumes it: the root seed and configuration
come from the manifest, finished runs are read back, not recomputed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from dsp.config_base import ConfigBase, ConfigError
from experiments import ber, impairments, nmae, ranging, resolvability
from experiments.common import write_json, write_runs
from experiments.engine import Checkpoint, EngineConfig, SweepError, Task, new_root_seed, run_tasks


@dataclass(frozen=True)
class Sweep:
    """One sweep: its configuration class and quick configuration, task list and finaliser.

    ``finalize(cfg, rows, arrays, out_dir)`` writes figures and the markdown table and
    returns the summary (the numbers RESULTS.md quotes, and the files it wrote).
    """

    name: str
    title: str
    config_cls: type[ConfigBase]
    quick: ConfigBase
    tasks: Callable[[Any], list[Task]]
    finalize: Callable[[Any, list[dict], dict, Path], dict]

    @classmethod
    def from_module(cls, m: ModuleType) -> Sweep:
        return cls(m.NAME, m.TITLE, m.Config, m.QUICK, m.tasks, m.finalize)


SWEEPS: dict[str, Sweep] = {
    m.NAME: Sweep.from_module(m) for m in (nmae, resolvability, ber, ranging, impairments)
}


def get_sweep(name: str) -> Sweep:
    try:
        return SWEEPS[name]
    except KeyError:
        raise SweepError(f"unknown sweep {name!r}; known: {sorted(SWEEPS)}") from None


def parse_overrides(cls: type[ConfigBase], items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as configuration values: JSON when it parses, lists also as ``a,b,c``."""
    import typing

    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in hints:
            known = ", ".join(cls.field_names())
            raise SweepError(f"--set {item!r}: expected KEY=VALUE with KEY one of {known}")
        try:
            value: Any = json.loads(text)
        except json.JSONDecodeError:
            value = text
        if typing.get_origin(hints[key]) is tuple and not isinstance(value, list):
            value = [v.strip() for v in text.split(",") if v.strip()]
        out[key] = value
    return out


def make_config(sweep: Sweep, quick: bool, overrides: Mapping[str, Any] | None = None) -> ConfigBase:
    base = sweep.quick if quick else sweep.config_cls()
    try:
        return sweep.config_cls.from_dict(dict(overrides or {}), base=base)
    except ConfigError as exc:
        raise SweepError(str(exc)) from None


def run_sweep(
    name: str,
    out_dir: Path,
    *,
    quick: bool = False,
    seed: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    engine: EngineConfig | None = None,
    force: bool = False,
    on_result: Callable[[str, dict], None] | None = None,
) -> dict:
    """Run (or resume) sweep ``name`` into ``out_dir``; return its summary (also in ``summary.json``).

    ``seed`` is the root seed; when omitted, a resumed directory keeps its recorded one
    and a new directory draws a fresh one (recorded in the manifest).  A directory
    holding another sweep, configuration or seed is refused unless ``force`` (which
    starts it over).
    """
    t_start = time.perf_counter()
    sweep = get_sweep(name)
    engine = engine or EngineConfig()
    cfg = make_config(sweep, quick, overrides)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / "manifest.json"
    checkpoint = Checkpoint(out_dir / "checkpoint.jsonl")
    old = None if force else _read_manifest(manifest_path)
    if old is None and checkpoint.path.exists() and not force:
        raise SweepError(f"{out_dir}: a checkpoint without a manifest; use --force to start over")
    if seed is None:
        seed = old["root_seed"] if old is not None and "root_seed" in old else new_root_seed()
    manifest = {
        "sweep": name,
        "title": sweep.title,
        "quick": quick,
        "root_seed": int(seed),
        "config": cfg.to_dict(),
    }
    if old is not None and any(old.get(k) != manifest[k] for k in ("sweep", "root_seed", "config")):
        raise SweepError(
            f"{out_dir} holds sweep {old.get('sweep')!r} with another configuration or root seed "
            f"({old.get('root_seed')}); use another --out, the same settings, or --force to start over"
        )
    if old is None:
        checkpoint.clear()
    tasks = sweep.tasks(cfg)
    manifest["n_tasks"] = len(tasks)
    write_json(manifest_path, manifest)
    records, stats = run_tasks(tasks, int(seed), engine, checkpoint, f"sweep {name}", on_result)
    if stats.failed:
        raise SweepError(
            f"{stats.failed} of {len(tasks)} runs failed (finished runs are kept; run the same command "
            f"again to retry the rest). First failure:\n{stats.errors[0]}"
        )
    rows: list[dict] = []
    arrays: dict[str, Any] = {}
    timing: list[dict] = []
    for t in tasks:
        rec = records[t.key]
        out = rec["output"]
        rows.extend({"task": t.key, **r} for r in out.get("rows", []))
        for k, v in out.get("arrays", {}).items():
            arrays[f"{t.key}/{k}"] = v
        timing.append({"task": t.key, **{k: rec.get(k) for k in ("elapsed_s", "finished_at", "worker")}})
    attrs = {
        "sweep": name,
        "title": sweep.title,
        "quick": quick,
        "root_seed": int(seed),
        "config": json.dumps(cfg.to_dict()),
    }
    files = write_runs(out_dir, rows, attrs, arrays, timing)
    summary = sweep.finalize(cfg, rows, arrays, out_dir)
    summary_files = [str(p) for p in (*files, *summary.pop("files", []))]
    summary = {
        "sweep": name,
        "title": sweep.title,
        "quick": quick,
        "root_seed": int(seed),
        "config": cfg.to_dict(),
        "runs": len(tasks),
        "rows": len(rows),
        "computed": stats.computed,
        "reused": stats.reused,
        "task_seconds": float(sum(t["elapsed_s"] or 0.0 for t in timing)),
        "elapsed_s": time.perf_counter() - t_start,
        "scheduler": engine.scheduler or "LocalCluster",
        **summary,
        "files": [*summary_files, str(out_dir / "summary.json")],
    }
    write_json(out_dir / "summary.json", summary)
    return summary


def _read_manifest(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SweepError(f"{path}: unreadable manifest ({exc}); use --force to start over") from None
    return data if isinstance(data, dict) else None
