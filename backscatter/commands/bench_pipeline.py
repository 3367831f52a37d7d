"""Live-pipeline figures: ``backscatter bench --pipeline`` and ``backscatter bench --soak MINUTES``.

:func:`bench_pipeline`
    A streamer and a worker as separate processes, PUSH -> PULL over tcp loopback, three bands of
    the default profile at 30.72 MS/s in sc16, paced in real time.  The emulator is too slow to
    do that live beside the worker on two cores (about 1.1 s per second of signal), so the
    streamer sends a pre-generated loop (:class:`sdr.loop_source.LoopSource`).  An in-process
    listener counts the worker's results.
    Reported: samples lost at the worker (target 0), ranging epochs received against the packets
    the stream holds (target: all), the worker's 95th-percentile latency from the arrival of a
    sample to the publication of the result that contains it (target <= 0.1 s), its real-time
    factor, the streamer's lag behind the sample clock, and the transport overhead ratio
    (pipeline / bare ZeroMQ throughput, target >= 0.8, median of interleaved repeats measured in
    the same run, after the pipeline has stopped).

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

Every process is an ordinary command: ``backscatter stream --source emulator --loop-s ...``,
``backscatter worker`` and ``backscatter record``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from backscatter.commands.pipeline_cmd import (
    DRAIN_S,
)
from captures.format import CaptureError
from captures.reader import open_capture
from dsp.waveform import get_profile
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig
from sdr.loop_source import complete_packets, loop_samples_for
from sdr.sources import DEFAULT_CHUNK_SAMPLES
from sdr.transport import ResultSubscriber, compare_pushpull_throughput

TARGET_LATENCY_P95_S = 0.1
TARGET_TRANSPORT_RATIO = 0.8
TARGET_MEMORY_GROWTH_PCT = 5.0
SC16_BYTES = 4
WORKER_KEYS = (
    "stream_s",
    "realtime_factor",
    "packets",
    "crc_ok",
    "epochs",
    "gaps",
    "latency",
    "messages_dropped",
)


# ----- processes ----------------------------------------------------------------------------------
def free_tcp_endpoint() -> str:
    """A loopback tcp endpoint on a port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def rss_bytes(pid: int) -> int | None:
    """Resident memory of process ``pid`` (``VmRSS``), or ``None`` once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def backscatter_argv(*args: str) -> list[str]:
    """``backscatter ARGS`` run by this interpreter (the console script's ``main``)."""
    return [sys.executable, "-m", "backscatter.cli", *args]


class _Process:
    """A child process whose stdout (a JSON summary) and stderr go to files in ``log_dir``."""

    def __init__(self, name: str, argv: list[str], log_dir: Path):
        self.name, self.argv = name, argv
        self.out_path, self.err_path = log_dir / f"{name}.json", log_dir / f"{name}.log"
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.popen = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        self.started = time.monotonic()
        self.memory: list[tuple[float, int]] = []  # (monotonic s, bytes)

    def sample_memory(self, t: float) -> None:
        if self.popen.poll() is None and (rss := rss_bytes(self.popen.pid)) is not None:
            self.memory.append((t, rss))

    def wait(self, timeout_s: float) -> dict:
        """Wait for a normal exit and return its JSON summary; ``RuntimeError`` otherwise."""
        try:
            rc = self.popen.wait(timeout=max(timeout_s, 0.1))
        except subprocess.TimeoutExpired:
            self.stop()
            raise RuntimeError(f"{self.name} did not finish within {timeout_s:.0f} s{self._tail()}") from None
        if rc != 0:
            raise RuntimeError(f"{self.name} exited with status {rc}{self._tail()}")
        try:
            return json.loads(self.out_path.read_text())
        except json.JSONDecodeError as exc:
            raise RuntimeError(f"{self.name} printed no JSON summary ({exc}){self._tail()}") from None

    def _tail(self) -> str:
        lines = self.err_path.read_text(errors="replace").strip().splitlines()[-8:]
        return (":\n  " + "\n  ".join(lines)) if lines else ""

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM (a clean stop for every pipeline command), SIGKILL after ``grace_s``."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(30)


class _Listener:
    """Counts a worker's results in a thread: kinds, CRC-ok packets, ``health`` with arrival times."""

    def __init__(self, endpoint: str):
        self.counts: Counter = Counter()
        self.crc_ok = 0
        self.health: list[tuple[float, dict]] = []
        self.messages_missed = 0
        self.drops: dict[str, int] = {}
        self._endpoint = endpoint
        self._ready, self._stop = threading.Event(), threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="results-listener", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        try:
            # every kind: ``seq`` counts every message, so a kind filter would look like losses
            with ResultSubscriber(self._endpoint) as sub:
                self._ready.set()
                while not self._stop.is_set():
                    msg = sub.recv(timeout_s=0.1)
                    if msg is None:
                        continue
                    self.counts[msg.kind] += 1
                    if msg.kind == "packet":
                        self.crc_ok += bool(msg.fields["crc_ok"])
                    elif msg.kind == "health":
                        self.health.append((time.monotonic(), msg.fields))
                self.messages_missed, self.drops = sub.counters.messages_missed, dict(sub.drops)
        except BaseException as exc:  # re-raised by close()
            self._error = exc
            self._ready.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        if self._error is not None:
            raise self._error


def _pick(d: dict, *keys: str) -> dict:
    return {k: d.get(k) for k in keys}


def _stop_all(procs: list[_Process]) -> None:
    for p in procs:
        p.stop()


def _loop_stream_argv(
    bind: str, socket_type: str, loop_s: float, duration_s: float, seed: int, profile: str, chunk: int
) -> list[str]:
    """``backscatter stream`` of an emulated loop (``--loop-s``), paced in real time."""
    argv = backscatter_argv("stream", "--source", "emulator", "--bind", bind, "--socket", socket_type)
    argv += ["--loop-s", f"{loop_s!r}", "--duration-s", f"{duration_s!r}", "--seed", str(seed)]
    argv += ["--profile", profile, "--chunk-samples", str(chunk), "--json"]
    return argv + (["--wait-subscriber-s", "60"] if socket_type == "pub" else [])


def _plan(profile: str, seed: int, loop_s: float) -> tuple[Any, ScenarioConfig, int, Any]:
    """Waveform, scenario, loop samples and ground truth of the streamed loop (nothing generated)."""
    wf = get_profile(profile)
    sc = ScenarioConfig(seed=seed)
    n_loop = loop_samples_for(wf, sc.mode, loop_s)
    truth = Emulator(wf, sc.replace(duration_s=n_loop / wf.sample_rate_hz)).truth
    return wf, sc, n_loop, truth


def _startup_budget_s(loop_s: float) -> float:
    return 60.0 + 8.0 * loop_s  # interpreter start-up and about 2.2 s of emulation per loop second


# ----- transport overhead -------------------------------------------------------------------------
def transport_overhead(
    repeats: int = 7, n_buffers: int = 64, chunk_samples: int = DEFAULT_CHUNK_SAMPLES, bands: int = 3
) -> dict:
    """Pipeline / bare ZeroMQ throughput on sc16 chunks of the streamer's size over tcp loopback.

    ``repeats`` calls of :func:`~sdr.transport.compare_pushpull_throughput` (each interleaves a
    bare and a pipeline pass after a warm-up); the median ratio is reported with its range.
    """
    rng = np.random.default_rng(0)
    distinct = [rng.integers(-2000, 2000, (bands, chunk_samples, 2), dtype=np.int16) for _ in range(4)]
    buffers = [distinct[k % len(distinct)] for k in range(n_buffers)]
    runs = [compare_pushpull_throughput(buffers, repeats=1) for _ in range(max(1, repeats))]
    ratios = [r["ratio"] for r in runs]
    return {
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "bare_bytes_per_s": statistics.median(r["bare_bytes_per_s"] for r in runs),
        "pipeline_bytes_per_s": statistics.median(r["pipeline_bytes_per_s"] for r in runs),
        "repeats": len(runs),
        "message_bytes": int(distinct[0].nbytes),
        "messages_per_pass": n_buffers,
        "target": TARGET_TRANSPORT_RATIO,
    }


# ----- pipeline -----------------------------------------------------------------------------------
def bench_pipeline(
    duration_s: float = 60.0,
    loop_s: float = 1.0,
    *,
    profile: str = "default",
    seed: int = 1,
    chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
    idle_exit_s: float = 3.0,
    overhead_repeats: int = 7,
    overhead_buffers: int = 64,
    log_dir: str | os.PathLike | None = None,
) -> dict:
    """Streamer -> worker over tcp loopback in real time; see the module docstring for the figures.

    ``log_dir`` keeps the processes' JSON summaries and stderr (else a temporary directory).
    Raises ``RuntimeError`` (with the failing process's last stderr lines) if a process fails.
    """
    wf, _, n_loop, truth = _plan(profile, seed, loop_s)
    fs = wf.sample_rate_hz
    n_stream = round(duration_s * fs)
    iq_ep, res_ep = free_tcp_endpoint(), free_tcp_endpoint()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        logs = Path(log_dir) if log_dir is not None else Path(tmp)
        logs.mkdir(parents=True, exist_ok=True)
        listener = _Listener(res_ep)
        procs: list[_Process] = []
        try:
            worker = _Process(
                "worker",
                backscatter_argv("worker", "--connect", iq_ep, "--socket", "pull", "--bind", res_ep,
                                 "--idle-exit-s", str(idle_exit_s), "--tx-rx-distance-m",
                                 str(truth.tx_rx_distance_m), "--quiet", "--json"),
                logs,
            )  # fmt: skip
            procs.append(worker)
            stream = _Process(
                "streamer",
                _loop_stream_argv(iq_ep, "push", n_loop / fs, duration_s, seed, profile, chunk_samples),
                logs,
            )
            procs.append(stream)
            budget = _startup_budget_s(loop_s) + 1.5 * duration_s
            s_sum = stream.wait(budget)
            s_sum["generate_s"] = s_sum["loop"]["generate_s"]
            w_sum = worker.wait(idle_exit_s + 60.0)
            time.sleep(0.3)  # the last results are in flight to the listener
        finally:
            _stop_all(procs)
            listener.close()
    overhead = transport_overhead(overhead_repeats, overhead_buffers, chunk_samples, len(s_sum["bands"]))
    expected = complete_packets(truth, wf, n_loop, n_stream)
    lat = w_sum["latency"]
    out = {
        "kind": "pipeline",
        "profile": profile,
        "bands": s_sum["bands"],
        "sample_rate_hz": fs,
        "format": s_sum["format"],
        "chunk_samples": chunk_samples,
        "duration_s": duration_s,
        "loop_s": n_loop / fs,
        "packets_per_loop": complete_packets(truth, wf, n_loop, n_loop),
        "streamer": _pick(
            s_sum, *"messages samples_sent stream_s wall_s realtime_factor max_lag_s generate_s".split()
        ),
        "worker": _pick(w_sum, *WORKER_KEYS, "messages", "samples_lost"),
        "results": {
            "epochs_received": listener.counts["epoch"],
            "packets_received": listener.counts["packet"],
            "crc_ok_received": listener.crc_ok,
            "epochs_expected": expected,
            "health": health_summary([h for _, h in listener.health]),
            "messages_missed": listener.messages_missed,
            "drops": listener.drops,
        },
        "transport": overhead,
    }
    out["met"] = {
        "no_samples_lost": w_sum["samples_lost"] == 0 and not w_sum["messages_dropped"],
        "every_epoch": listener.counts["epoch"] >= expected,
        "latency_p95": lat["p95_s"] is not None and lat["p95_s"] <= TARGET_LATENCY_P95_S,
        "transport_ratio": overhead["ratio_median"] >= TARGET_TRANSPORT_RATIO,
        "streamer_real_time": s_sum["max_lag_s"] <= 0.1,
    }
    return out


# ----- soak ---------------------------------------------------------------------------------------
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


def health_summary(health: list[dict]) -> dict:
    """The worker's ``health`` messages summarised: medians and maxima of its per-second figures."""
    lat = [h["latency_p95_s"] for h in health if h.get("latency_p95_s") is not None]
    rtf = [h["realtime_factor"] for h in health if h["realtime_factor"] > 0]
    return {
        "latency_p95_s_median": statistics.median(lat) if lat else None,
        "latency_p95_s_max": max(lat) if lat else None,
        "realtime_factor_median": statistics.median(rtf) if rtf else None,
        "queue_depth_max": max((h["queue_depth"] for h in health), default=0),
        "samples_lost_total": health[-1]["samples_lost"] if health else 0,
        "health_messages": len(health),
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
        self.running: tuple[_Process, Path] | None = None
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
        self.running = (_Process(f"recorder-{k}", argv, self.logs), path)
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
) -> dict:
    """Streamer, worker and windowed recorder for ``minutes``; see the module docstring.

    The first recorder window starts after the warm-up (default: a fifth of the soak, at most
    60 s); memory growth leaves out recorder windows and the ``settle_s`` after each.
    """
    duration_s = 60.0 * minutes
    wf, _, n_loop, truth = _plan(profile, seed, loop_s)
    fs = wf.sample_rate_hz
    warmup = min(60.0, duration_s / 5) if warmup_s is None else warmup_s
    window = max(2 * sample_period_s, min(60.0, (duration_s - warmup) / 4))
    iq_ep, res_ep = free_tcp_endpoint(), free_tcp_endpoint()
    rate_bytes = 3 * fs * SC16_BYTES
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        logs = Path(log_dir) if log_dir is not None else Path(tmp)
        rec_dir = Path(record_dir) if record_dir is not None else Path(tmp)
        logs.mkdir(parents=True, exist_ok=True)
        rec_dir.mkdir(parents=True, exist_ok=True)
        disk = disk_write_bytes_per_s(rec_dir, measure_disk_mb) if measure_disk_mb > 0 else None
        if record_s is None and rate_bytes * duration_s > 0.5 * shutil.disk_usage(rec_dir).free:
            raise RuntimeError(
                f"recording the whole {duration_s:.0f} s soak needs {rate_bytes * duration_s / 1e9:.0f} GB; "
                f"{rec_dir} has {shutil.disk_usage(rec_dir).free / 1e9:.0f} GB free: give record_s"
            )
        windows = _RecorderWindows(iq_ep, rec_dir, logs, record_s=record_s, every_s=record_every_s,
                                   first_s=warmup, duration_s=duration_s,
                                   messages_per_s=fs / chunk_samples, bytes_per_s=rate_bytes,
                                   keep=keep_recording)  # fmt: skip
        listener = _Listener(res_ep)
        procs: list[_Process] = []
        try:
            worker = _Process(
                "worker",
                backscatter_argv("worker", "--connect", iq_ep, "--socket", "sub", "--bind", res_ep,
                                 "--idle-exit-s", "5", "--tx-rx-distance-m", str(truth.tx_rx_distance_m),
                                 "--quiet", "--json"),
                logs,
            )  # fmt: skip
            stream = _Process(
                "streamer",
                _loop_stream_argv(iq_ep, "pub", n_loop / fs, duration_s, seed, profile, chunk_samples),
                logs,
            )
            procs += [worker, stream]
            t0 = _wait_live(listener, stream, _startup_budget_s(loop_s))
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
            _stop_all([*procs, *([windows.running[0]] if windows.running else [])])
            listener.close()
    busy = windows.busy_intervals(settle_s)
    return {
        "kind": "soak",
        "minutes": minutes,
        "profile": profile,
        "bands": s_sum["bands"],
        "sample_rate_hz": fs,
        "loop_s": n_loop / fs,
        "warmup_s": warmup,
        "sample_period_s": sample_period_s,
        "settle_s": settle_s,
        "memory": {p.name: memory_growth(p.memory, t0, warmup, window, busy) for p in procs},
        "memory_excluded_s": busy,
        "memory_samples": {p.name: len(p.memory) for p in procs},
        "memory_target_pct": TARGET_MEMORY_GROWTH_PCT,
        "samples_lost": {"worker": w_sum["samples_lost"], "streamer": s_sum["samples_lost"]},
        "worker": _pick(w_sum, *WORKER_KEYS),
        "streamer": {"max_lag_s": s_sum["max_lag_s"], "realtime_factor": s_sum["realtime_factor"]},
        "latency_per_minute": _per_minute(listener.health, t0),
        "recording": {
            "stream_bytes_per_s": rate_bytes,
            "disk_write_bytes_per_s": disk,
            "record_s": record_s,
            "record_every_s": record_every_s,
            "windows": windows.rows,
            "skipped": windows.skipped,
        },
        "results": {"epochs_received": listener.counts["epoch"], "messages_missed": listener.messages_missed},
    }


def _wait_live(listener: _Listener, stream: _Process, budget_s: float) -> float:
    """When the worker first reported a live stream (its ``health``); raises if it never does."""
    deadline = time.monotonic() + budget_s
    while not (live := [t for t, h in listener.health if h["stream_state"] == "live"]):
        if stream.popen.poll() is not None:
            stream.wait(0)  # raises with the streamer's last stderr lines
            raise RuntimeError("the streamer ended before the worker saw its stream")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the stream did not reach the worker within {budget_s:.0f} s")
        time.sleep(0.05)
    return live[0]


# ----- report -------------------------------------------------------------------------------------
def _ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 1e3:.0f} ms"


def describe(out: dict) -> str:
    """Human-readable lines for a :func:`bench_pipeline` or :func:`bench_soak` report."""
    if out["kind"] == "pipeline":
        w, r, t, s = out["worker"], out["results"], out["transport"], out["streamer"]
        ok = ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in out["met"].items())
        return "\n".join(
            [
                f"pipeline: {out['duration_s']:g} s of {len(out['bands'])} bands at "
                f"{out['sample_rate_hz'] / 1e6:g} MS/s {out['format']} (loop {out['loop_s']:g} s), "
                f"streamer {s['realtime_factor']:.3f}x real time, max lag {_ms(s['max_lag_s'])}",
                f"  worker: {w['samples_lost']} samples lost, {w['realtime_factor'] or 0:.2f}x real time, "
                f"p95 latency {_ms(w['latency']['p95_s'])} (target <= {_ms(TARGET_LATENCY_P95_S)}), "
                f"{w['packets']} packets ({w['crc_ok']} CRC ok)",
                f"  results: {r['epochs_received']} epochs of {r['epochs_expected']} packets streamed, "
                f"{r['messages_missed']} result messages missed",
                f"  transport: pipeline/bare {t['ratio_median']:.3f} (median of {t['repeats']}, "
                f"{t['ratio_min']:.3f}..{t['ratio_max']:.3f}; target >= {t['target']})",
                f"  targets: {ok}",
            ]
        )
    lines = [
        f"soak: {out['minutes']:g} min, warm-up {out['warmup_s']:.0f} s, memory every "
        f"{out['sample_period_s']:g} s outside recorder windows (+{out['settle_s']:.0f} s)"
    ]
    for name, m in out["memory"].items():
        if m.get("growth_pct") is not None:
            lines.append(
                f"  {name}: RSS {m['baseline_mb']:.0f} -> {m['final_mb']:.0f} MB ({m['growth_pct']:+.1f} %, "
                f"target < {out['memory_target_pct']:g} %), peak {m['peak_mb']:.0f} MB"
            )
    lines.append(f"  samples lost: {out['samples_lost']}")
    for r in out["latency_per_minute"]:
        lines.append(
            f"  minute {r['minute']}: p95 latency median {_ms(r['latency_p95_s_median'])}, max "
            f"{_ms(r['latency_p95_s_max'])}, queue <= {r['queue_depth_max']}, "
            f"{r['samples_lost_total']} samples lost so far"
        )
    rec, disk = out["recording"], out["recording"]["disk_write_bytes_per_s"]
    lines.append(
        f"  recording: stream {rec['stream_bytes_per_s'] / 1e6:.0f} MB/s, disk "
        + ("not measured" if disk is None else f"{disk / 1e6:.0f} MB/s")
    )
    for w in rec["windows"]:
        what = w.get("error") or (
            f"{w['bytes'] / 1e9:.2f} GB, {w['duration_s']:.2f} s of signal in "
            f"{w['wall_s']:.1f} s, {w['messages_missed']} messages missed"
        )
        lines.append(f"    at {w['started_s']:.0f} s: {what}")
    lines += [f"    skipped at {s['at_s']:.0f} s: not enough free disk" for s in rec["skipped"]]
    return "\n".join(lines)  # fmt: skip
