"""Soak figures: ``backscatter bench --soak MINUTES`` (re-exported by bench_pipeline.py).

:func:`bench_soak`
    Streamer (PUB), worker and recorder (SUB) for ``minutes``.  Every ``sample_period_s`` it
    reads each process's resident memory (``VmRSS`` of ``/proc/PID/status``; psutil is not a
    dependency) and reports its growth after a warm-up (target < 5 % over 10 minutes), the
    samples lost, the worker's latency per minute (from its ``health`` messages, which carry
    ``latency_p95_s`` over each second) and the recordings' sizes and durations.

    The recorder cannot run for the whole soak here: the default rate is 92 MS/s x 4 bytes =
    368 MB/s (221 GB per 10 minutes) and this machine has about 77 GB free.  So it records in
    windows: ``record_s`` seconds (one ``backscatter record --count N`` process) after the
    warm-up and then every ``record_every_s`` seconds (default: 30 s every 150 s, four windows in
    10 minutes), each file measured and deleted (unless ``keep_recording``).  The write speed of
    ``record_dir`` is measured first and reported; a window that would not fit in half the free
    space is skipped and reported; ``record_s=None`` records the rest of the soak with one
    recorder (a machine with a fast, large disk), refused when it cannot fit.  Memory growth
    leaves out the recorder windows and ``settle_s`` after each: the backlog a window may leave
    in the worker's queues is occupancy, not a leak (each window's own figures show its effect).

Every process is an ordinary command (see bench_procs.py).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.stream import DRAIN_S
from backscatter.commands.bench_procs import (
    WORKER_KEYS,
    Listener,
    Process,
    backscatter_argv,
    free_tcp_endpoint,
    health_summary,
    loop_stream_argv,
    pick,
    plan,
    startup_budget_s,
    stop_all,
    wait_live,
    worker_argv,
)
from captures.format import CaptureError
from captures.reader import open_capture
from dsp.waveform import get_profile
from sdr.loop_source import complete_packets, loop_samples_for, seamless_drift_ppm
from sdr.sources import DEFAULT_CHUNK_SAMPLES

TARGET_MEMORY_GROWTH_PCT = 5.0
SC16_BYTES = 4


# ----- soak ---------------------------------------------------------------------------------------
DRIFT_LOOP_S = 3.4  # the shortest loop of whole burst periods whose seamless drift is within 10 ppm
SETTLE_S = 30.0  # after a recorder window, the worker drains the backlog it left: not a quiet period


def disk_write_bytes_per_s(directory: str | os.PathLike, megabytes: int = 256) -> float:
    """Sequential write speed of ``directory`` (fsync'ed), from a temporary file deleted after."""
    block = np.random.default_rng(0).integers(0, 255, 1 << 22, dtype=np.uint8).tobytes()
    blocks = max(1, megabytes // 4)
    fd, name = tempfile.mkstemp(prefix="disk-speed-", dir=directory)
    try:
        t0 = time.perf_counter()
        with os.fdopen(fd, "wb") as f:
            for _ in range(blocks):
                f.write(block)
            f.flush()
            os.fsync(f.fileno())
        return blocks * len(block) / (time.perf_counter() - t0)
    finally:
        os.unlink(name)


def memory_growth(
    samples: list[tuple[float, int]],
    t0: float,
    warmup_s: float,
    window_s: float,
    exclude: list[tuple[float, float]] = (),  # type: ignore[assignment]
) -> dict:
    """Growth of resident memory: the median over the last ``window_s`` against the median over
    the first ``window_s`` after ``warmup_s``, with the peak and the least-squares slope.

    Times are relative to ``t0``; samples inside ``exclude`` intervals (recorder windows and the
    backlog they leave in the worker's queues) are left out, so queue occupancy is not taken for
    a leak.
    """
    pts = [
        (t - t0, m)
        for t, m in samples
        if t - t0 >= warmup_s and not any(a <= t - t0 <= b for a, b in exclude)
    ]
    if len(pts) < 2:
        return {"growth_pct": None, "samples": len(pts)}
    base = [m for t, m in pts if t <= pts[0][0] + window_s]
    last = [m for t, m in pts if t >= pts[-1][0] - window_s]
    b, e = statistics.median(base), statistics.median(last)
    ts, ms = np.array([p[0] for p in pts]), np.array([p[1] for p in pts], float)
    slope = float(np.polyfit(ts, ms, 1)[0]) if np.ptp(ts) > 0 else 0.0
    return {
        "baseline_mb": b / 1e6,
        "final_mb": e / 1e6,
        "peak_mb": float(max(m for _, m in samples)) / 1e6,
        "growth_pct": 100.0 * (e - b) / b,
        "slope_mb_per_min": slope * 60 / 1e6,
        "samples": len(pts),
    }


def _per_minute(health: list[tuple[float, dict]], t0: float) -> list[dict]:
    rows: dict[int, list[dict]] = {}
    for t, h in health:
        if t >= t0:  # before the stream: "waiting"
            rows.setdefault(int((t - t0) // 60), []).append(h)
    return [{"minute": minute, **health_summary(hs)} for minute, hs in sorted(rows.items())]


class _RecorderWindows:
    """``backscatter record --count N`` windows of ``record_s`` seconds, the first at ``first_s``,
    then every ``every_s`` (``record_s=None``: one recorder for the rest of the soak).  Each file
    is measured (size, duration, losses, the recorder's memory) and deleted unless ``keep``."""

    def __init__(self, endpoint: str, out_dir: Path, logs: Path, *, record_s: float | None,
                 every_s: float, first_s: float, duration_s: float, messages_per_s: float,
                 bytes_per_s: float, keep: bool):  # fmt: skip
        self.endpoint, self.out_dir, self.logs, self.keep = endpoint, out_dir, logs, keep
        self.record_s, self.every_s, self.duration_s = record_s, every_s, duration_s
        self.messages_per_s, self.bytes_per_s = messages_per_s, bytes_per_s
        self.next_s = first_s
        self.running: tuple[Process, Path] | None = None
        self.rows: list[dict] = []
        self.skipped: list[dict] = []

    def poll(self, now_s: float, t0: float) -> None:
        """Start a window when one is due; measure a window that has ended (times from ``t0``)."""
        if self.running is not None and self.running[0].popen.poll() is not None:
            self._collect(t0, 30.0)
        span = self.duration_s - now_s - 2.0 if self.record_s is None else self.record_s
        if self.running is not None or now_s < self.next_s or span <= 0 or now_s + span > self.duration_s - 2:
            return
        self.next_s = now_s + (self.every_s if self.record_s is not None else math.inf)
        free = shutil.disk_usage(self.out_dir).free
        if self.bytes_per_s * span > 0.5 * free:
            self.skipped.append({"at_s": now_s, "needed_bytes": self.bytes_per_s * span, "free_bytes": free})
            return
        k = len(self.rows) + len(self.skipped)
        path = self.out_dir / f"soak-{k}.h5"
        argv = backscatter_argv("record", "--connect", self.endpoint, "--socket", "sub", "--out", str(path),
                                "--count", str(math.ceil(span * self.messages_per_s)),
                                "--idle-timeout-s", "10", "--force", "--json")  # fmt: skip
        self.running = (Process(f"recorder-{k}", argv, self.logs), path)
        self.running[0].sample_memory(time.monotonic())

    def _collect(self, t0: float, timeout_s: float) -> None:
        proc, path = self.running  # type: ignore[misc]
        self.running = None
        row: dict[str, Any] = {"file": str(path) if self.keep else None, "started_s": proc.started - t0}
        try:
            summary = proc.wait(timeout_s)
            keys = ("messages", "samples", "gaps", "samples_lost", "messages_missed", "stop_reason")
            row.update({k: summary[k] for k in keys})
            row["bytes"] = path.stat().st_size if path.exists() else 0
            with open_capture(path) as cap:
                row["duration_s"] = cap.duration_s
        except (RuntimeError, CaptureError, OSError) as exc:
            row["error"] = str(exc)
        finally:
            if not self.keep:
                path.unlink(missing_ok=True)
        row["ended_s"] = time.monotonic() - t0
        row["wall_s"] = row["ended_s"] - row["started_s"]
        row["memory"] = memory_growth(proc.memory, proc.started, 3.0, 2.0)  # after start-up
        self.rows.append(row)

    def finish(self, t0: float) -> None:
        if self.running is not None:
            self._collect(t0, 60.0)

    def busy_intervals(self, settle_s: float) -> list[tuple[float, float]]:
        """Recorder windows (from their start to ``settle_s`` after their end), from ``t0``."""
        return [(r["started_s"], r["ended_s"] + settle_s) for r in self.rows]


@dataclass
class _SoakRun:
    """What the soak's processes left: the stream's start ``t0`` (monotonic s), the streamer's
    and worker's JSON summaries, the processes with their memory samples, the recorder windows
    and the results listener."""

    t0: float
    streamer: dict
    worker: dict
    procs: list[Process]
    windows: _RecorderWindows
    listener: Listener


def bench_soak(
    minutes: float,
    *,
    loop_s: float = 1.0,
    profile: str = "default",
    seed: int = 1,
    chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
    sample_period_s: float = 5.0,
    warmup_s: float | None = None,
    record_s: float | None = 30.0,
    record_every_s: float = 150.0,
    record_dir: str | os.PathLike | None = None,
    keep_recording: bool = False,
    measure_disk_mb: int = 256,
    settle_s: float = SETTLE_S,
    log_dir: str | os.PathLike | None = None,
    drift: bool = False,
) -> dict:
    """Streamer, worker and windowed recorder for ``minutes``; see the module docstring.

    The first recorder window starts after the warm-up (default: a fifth of the soak, at most
    60 s); memory growth leaves out recorder windows and the ``settle_s`` after each.  With
    ``drift`` the loop (at least ``DRIFT_LOOP_S``) has its sample clock tied to an LO offset that
    slides it by exactly one OFDM symbol per loop (``sdr.loop_source.seamless_drift_ppm``: 9.80
    ppm for 3.4 s), so the worker tracks a drift for the whole soak with no seam to see.
    """
    duration_s = 60.0 * minutes
    lo_ppm = None
    if drift:
        loop_s = max(loop_s, DRIFT_LOOP_S)
        wf0 = get_profile(profile)
        lo_ppm = seamless_drift_ppm(wf0, loop_samples_for(wf0, "burst", loop_s))
    wf, _, n_loop, truth = plan(profile, seed, loop_s, lo_ppm)
    fs = wf.capture_rate_hz  # the emulated stream's rate
    warmup = min(60.0, duration_s / 5) if warmup_s is None else warmup_s
    window = max(2 * sample_period_s, min(60.0, (duration_s - warmup) / 4))
    rate_bytes = 3 * fs * SC16_BYTES
    iq_ep = free_tcp_endpoint()
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        logs = Path(log_dir) if log_dir is not None else Path(tmp)
        rec_dir = Path(record_dir) if record_dir is not None else Path(tmp)
        logs.mkdir(parents=True, exist_ok=True)
        rec_dir.mkdir(parents=True, exist_ok=True)
        disk = disk_write_bytes_per_s(rec_dir, measure_disk_mb) if measure_disk_mb > 0 else None
        _check_whole_recording_fits(record_s, rate_bytes * duration_s, duration_s, rec_dir)
        windows = _RecorderWindows(iq_ep, rec_dir, logs, record_s=record_s, every_s=record_every_s,
                                   first_s=warmup, duration_s=duration_s,
                                   messages_per_s=fs / chunk_samples, bytes_per_s=rate_bytes,
                                   keep=keep_recording)  # fmt: skip
        scenario = None
        if lo_ppm is not None:
            scenario = logs / "soak-scenario.json"
            scenario.write_text(json.dumps({"lo_ppm": lo_ppm}))
        stream_argv = loop_stream_argv(
            iq_ep, "pub", n_loop / fs, duration_s, seed, profile, chunk_samples, scenario
        )
        run = _run_soak(iq_ep, stream_argv, truth.tx_rx_distance_m, windows, logs, loop_s, sample_period_s)
    busy = windows.busy_intervals(settle_s)
    return {
        "kind": "soak",
        "minutes": minutes,
        "profile": profile,
        "bands": run.streamer["bands"],
        "capture_rate_hz": fs,
        "loop_s": n_loop / fs,
        "lo_ppm": lo_ppm,
        "sample_clock_ppm": truth.sample_clock_ppm,
        "packets_streamed": complete_packets(truth, wf, n_loop, round(duration_s * fs)),
        "timing": run.listener.timing.summary(),
        "warmup_s": warmup,
        "sample_period_s": sample_period_s,
        "settle_s": settle_s,
        "memory": {p.name: memory_growth(p.memory, run.t0, warmup, window, busy) for p in run.procs},
        "memory_excluded_s": busy,
        "memory_samples": {p.name: len(p.memory) for p in run.procs},
        "memory_target_pct": TARGET_MEMORY_GROWTH_PCT,
        "samples_lost": {"worker": run.worker["samples_lost"], "streamer": run.streamer["samples_lost"]},
        "worker": pick(run.worker, *WORKER_KEYS),
        "streamer": {
            "max_lag_s": run.streamer["max_lag_s"],
            "realtime_factor": run.streamer["realtime_factor"],
        },
        "latency_per_minute": _per_minute(run.listener.health, run.t0),
        "recording": {
            "stream_bytes_per_s": rate_bytes,
            "disk_write_bytes_per_s": disk,
            "record_s": record_s,
            "record_every_s": record_every_s,
            "windows": windows.rows,
            "skipped": windows.skipped,
        },
        "results": {
            "epochs_received": run.listener.counts["epoch"],
            "messages_missed": run.listener.messages_missed,
        },
    }


def _check_whole_recording_fits(
    record_s: float | None, stream_bytes: float, duration_s: float, rec_dir: Path
) -> None:
    """``record_s=None`` records the whole soak: refused when ``stream_bytes`` exceed half the
    free space of ``rec_dir``."""
    free = shutil.disk_usage(rec_dir).free
    if record_s is None and stream_bytes > 0.5 * free:
        raise RuntimeError(
            f"recording the whole {duration_s:.0f} s soak needs {stream_bytes / 1e9:.0f} GB; "
            f"{rec_dir} has {free / 1e9:.0f} GB free: give record_s"
        )


def _run_soak(
    iq_ep: str,
    stream_argv: list[str],
    tx_rx_distance_m: float,
    windows: _RecorderWindows,
    logs: Path,
    loop_s: float,
    sample_period_s: float,
) -> _SoakRun:
    """Worker, then streamer (``stream_argv``), sampling memory every ``sample_period_s`` and
    running the recorder windows until the stream ends; every process is stopped on the way out."""
    res_ep = free_tcp_endpoint()
    listener = Listener(res_ep)
    procs: list[Process] = []
    try:
        argv = worker_argv(iq_ep, "sub", res_ep, idle_exit_s=5, tx_rx_distance_m=tx_rx_distance_m)
        worker = Process("worker", argv, logs)
        stream = Process("streamer", stream_argv, logs)
        procs += [worker, stream]
        t0 = wait_live(listener, stream, startup_budget_s(loop_s))
        next_sample = t0
        while stream.popen.poll() is None:
            now = time.monotonic()
            if now >= next_sample:
                running = [windows.running[0]] if windows.running else []
                for p in (*procs, *running):
                    p.sample_memory(now)
                next_sample += sample_period_s
            windows.poll(now - t0, t0)
            time.sleep(min(0.2, max(0.0, next_sample - time.monotonic())))
        windows.finish(t0)
        s_sum = stream.wait(DRAIN_S + 30)
        w_sum = worker.wait(60)
        time.sleep(0.3)
    finally:
        stop_all([*procs, *([windows.running[0]] if windows.running else [])])
        listener.close()
    return _SoakRun(t0, s_sum, w_sum, procs, windows, listener)
