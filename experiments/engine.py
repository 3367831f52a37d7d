"""The sweep engine: one ``dask.distributed`` task per run, seeded, checkpointed, resumable.

A sweep is a list of :class:`Task` objects.  Each task names a picklable top-level
function, its JSON-friendly parameters and the spawn keys of the seed streams it
uses.  Seeds come from one recorded root: ``SeedSequence(root, spawn_key=key)`` is
exactly the child that nested ``SeedSequence(root).spawn(...)[i].spawn(...)[j]``
calls give for ``key = (i, j)``, so every task draws the same numbers whatever
order, worker or restart it runs in, and two tasks can share a stream (a scenario's
geometry, say) by naming the same key.

Finished tasks are appended, one JSON line each, to a checkpoint file as they
complete.  A run that is interrupted (Ctrl-C, a lost cluster, a crash) keeps every
line written; the next run reads them back and submits only the tasks still
missing.  A partial last line (a write cut short) is ignored.

Tasks run on a ``LocalCluster`` on this machine (one single-threaded worker per
core by default) or on an existing cluster given by its scheduler address.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dsp.errors import BackscatterError

TaskFn = Callable[[dict[str, Any], dict[str, np.random.SeedSequence]], dict[str, Any]]


class SweepError(BackscatterError, RuntimeError):
    """A sweep cannot start or did not finish; the message says why."""


@dataclass(frozen=True)
class EngineConfig:
    """Where and how tasks run.

    ``scheduler`` is the address of an existing cluster (``tcp://host:8786``); ``None``
    starts a ``LocalCluster`` with ``n_workers`` workers (default: one per core) of
    one thread each, as processes unless ``processes`` is false (tests use threads).
    """

    scheduler: str | None = None
    n_workers: int | None = None
    threads_per_worker: int = 1
    processes: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        if self.n_workers is not None and self.n_workers < 1:
            raise SweepError(f"EngineConfig.n_workers = {self.n_workers}: must be at least 1")
        if self.threads_per_worker < 1:
            raise SweepError(f"EngineConfig.threads_per_worker = {self.threads_per_worker}: must be >= 1")


@dataclass(frozen=True)
class Task:
    """One run: ``fn(params, seeds)`` where ``seeds`` maps each name of ``seed_keys`` to its stream.

    ``key`` identifies the task in the checkpoint (stable across restarts); ``fn`` and
    ``params`` must pickle for remote workers (``fn`` a module-level function).  What
    ``fn`` returns must be JSON-friendly after :func:`plain` (it is checkpointed):
    ``{"rows": [dict, ...], "arrays": {name: list}}`` for sweeps.
    """

    key: str
    fn: TaskFn
    params: dict[str, Any]
    seed_keys: dict[str, tuple[int, ...]] = field(default_factory=dict)


@dataclass
class RunStats:
    """What an engine call did: tasks computed now, reused from the checkpoint, failed; wall time."""

    computed: int = 0
    reused: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    errors: list[str] = field(default_factory=list)


# ----- seeding -----------------------------------------------------------------------------------
def new_root_seed() -> int:
    """Fresh 128-bit root entropy from the operating system (to be recorded)."""
    return int(np.random.SeedSequence().entropy)


def seed_sequence(root: int, spawn_key: Sequence[int]) -> np.random.SeedSequence:
    """The child stream ``spawn_key`` of the root seed: ``SeedSequence(root).spawn(..)[k0].spawn(..)[k1]``."""
    return np.random.SeedSequence(root, spawn_key=tuple(int(k) for k in spawn_key))


def int_seed(ss: np.random.SeedSequence) -> int:
    """A 32-bit integer seed from a stream (for configurations that take an ``int`` seed)."""
    return int(ss.generate_state(1, np.uint32)[0])


# ----- task execution ----------------------------------------------------------------------------
def plain(obj: Any) -> Any:
    """``obj`` with numpy scalars and arrays turned into JSON-friendly Python values."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj)
    if isinstance(obj, (complex, np.complexfloating)):
        raise TypeError("complex values are not stored: split them into real and imaginary parts")
    return obj


def execute_task(fn: TaskFn, params: dict, root: int, seed_keys: dict[str, tuple[int, ...]]) -> dict:
    """Run one task on a worker; return its output with timing, or the traceback of its failure."""
    t0 = time.perf_counter()
    seeds = {name: seed_sequence(root, key) for name, key in seed_keys.items()}
    try:
        out = plain(fn(params, seeds))
    except Exception:
        return {"error": traceback.format_exc()}
    return {
        "output": out,
        "elapsed_s": time.perf_counter() - t0,
        "finished_at": time.time(),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }


# ----- checkpoint ----------------------------------------------------------------------------------
class Checkpoint:
    """Append-only JSON-lines record of finished tasks: ``{"key": ..., **execute_task output}``."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def load(self) -> dict[str, dict]:
        """Finished tasks by key (later lines win; a malformed line, e.g. cut short, is skipped)."""
        done: dict[str, dict] = {}
        if not self.path.exists():
            return done
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(rec, dict) and "key" in rec and "output" in rec:
                    done[rec["key"]] = rec
        return done

    def append(self, records: list[dict]) -> None:
        """Append records, first ending a line that an interrupted write left open."""
        torn = False
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb") as fh:
                fh.seek(-1, os.SEEK_END)
                torn = fh.read(1) != b"\n"
        with self.path.open("a", encoding="utf-8") as fh:
            if torn:
                fh.write("\n")
            for rec in records:
                fh.write(json.dumps(rec, allow_nan=True) + "\n")
            fh.flush()

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


# ----- dask ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def open_client(engine: EngineConfig, n_tasks: int) -> Iterator[Any]:
    """A ``distributed.Client`` on the configured cluster, closed (with any cluster it started) on exit."""
    from distributed import Client, LocalCluster

    if engine.scheduler:
        try:
            client = Client(engine.scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise SweepError(f"cannot reach the dask scheduler at {engine.scheduler}: {exc}") from None
        with client:
            yield client
        return
    workers = engine.n_workers or max(1, min(os.cpu_count() or 1, n_tasks))
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=engine.threads_per_worker,
        processes=engine.processes,
        dashboard_address=None,
        # the scheduler's HTTP endpoints on a free loopback port: never collide with another cluster's 8787
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.ERROR,
        **({"protocol": "tcp", "host": "127.0.0.1"} if engine.processes else {}),
    )
    with cluster, Client(cluster) as client:
        yield client


def run_tasks(
    tasks: Sequence[Task],
    root: int,
    engine: EngineConfig,
    checkpoint: Checkpoint | None = None,
    desc: str = "runs",
    on_result: Callable[[str, dict], None] | None = None,
) -> tuple[dict[str, dict], RunStats]:
    """Run every task not already in ``checkpoint``; return all finished records by key, and stats.

    Records are appended to the checkpoint as they complete, so an exception raised
    here (including one from ``on_result``, or Ctrl-C) loses no finished work.
    Failed tasks are counted and their tracebacks kept in the stats; they are not
    checkpointed, so the next call tries them again.
    """
    from distributed import as_completed

    from app.progress import progress_bar

    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise SweepError("task keys must be unique")
    t0 = time.perf_counter()
    done = checkpoint.load() if checkpoint else {}
    done = {k: v for k, v in done.items() if k in set(keys)}
    pending = [t for t in tasks if t.key not in done]
    stats = RunStats(reused=len(done))
    if pending:
        with (
            open_client(engine, len(pending)) as client,
            progress_bar(len(tasks), desc, unit="run", enabled=engine.progress) as bar,
        ):
            bar.update(len(done))
            futures = [
                client.submit(execute_task, t.fn, t.params, root, t.seed_keys, pure=False) for t in pending
            ]
            task_of = {fut.key: t.key for fut, t in zip(futures, pending, strict=True)}
            try:
                for fut in as_completed(futures):
                    rec = fut.result()
                    key = task_of[fut.key]
                    bar.update(1)
                    if "error" in rec:
                        stats.failed += 1
                        stats.errors.append(f"{key}: {rec['error']}")
                        continue
                    rec = {"key": key, **rec}
                    if checkpoint:
                        checkpoint.append([rec])
                    done[key] = rec
                    stats.computed += 1
                    if on_result:
                        on_result(key, rec)
            finally:  # leave nothing running on a shared cluster; an interrupt here must not mask the first
                with contextlib.suppress(Exception, KeyboardInterrupt):
                    client.cancel(futures)
    stats.elapsed_s = time.perf_counter() - t0
    return done, stats
