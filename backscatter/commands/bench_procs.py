"""Process plumbing shared by ``bench --pipeline`` and ``bench --soak`` (bench_pipeline.py, bench_soak.py).

Child processes with their JSON summaries and memory samples, a listener that counts a worker's
results, the plan of the streamed loop and the wait for a live stream.  Every process is an
ordinary command: ``backscatter stream --source emulator --loop-s ...``, ``backscatter worker``
and ``backscatter record``.
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from dsp.waveform import get_profile
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig
from sdr.loop_source import loop_samples_for
from sdr.transport import ResultSubscriber

WORKER_KEYS = (
    "stream_s",
    "realtime_factor",
    "realtime_factor_one_core",
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


class Process:
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


class TimingWatch:
    """The timing tracker's state over a stream, from the worker's ``stats`` messages: how often
    it was locked, whether it lost lock after first locking, the largest timing error since, and
    the latest drift (the shared-reference model's and the measured one, ppm)."""

    def __init__(self) -> None:
        self.stats = self.locked = self.lost_after_lock = 0
        self.first_lock_s: float | None = None
        self.max_abs_error_samples = 0.0
        self.drift_ppm: float | None = None
        self.drift_measured_ppm: float | None = None

    def add(self, fields: dict) -> None:
        locked = fields.get("timing_locked")
        if locked is None:
            return
        self.stats += 1
        if locked:
            self.locked += 1
            if self.first_lock_s is None:
                self.first_lock_s = fields.get("time_s")
        elif self.first_lock_s is not None:
            self.lost_after_lock += 1
        err = fields.get("timing_error_samples")
        if self.first_lock_s is not None and err is not None:
            self.max_abs_error_samples = max(self.max_abs_error_samples, abs(float(err)))
        self.drift_ppm = fields.get("timing_drift_ppm", self.drift_ppm)
        self.drift_measured_ppm = fields.get("timing_drift_measured_ppm", self.drift_measured_ppm)

    def summary(self) -> dict:
        return {
            "stats": self.stats,
            "locked": self.locked,
            "first_lock_s": self.first_lock_s,
            "lost_after_lock": self.lost_after_lock,
            "max_abs_error_samples": self.max_abs_error_samples,
            "drift_ppm": self.drift_ppm,
            "drift_measured_ppm": self.drift_measured_ppm,
        }


class Listener:
    """Counts a worker's results in a thread: kinds, CRC-ok packets, ``health`` with arrival times,
    the timing tracker's state (:class:`TimingWatch`)."""

    def __init__(self, endpoint: str):
        self.counts: Counter = Counter()
        self.crc_ok = 0
        self.timing = TimingWatch()
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
                    elif msg.kind == "stats":
                        self.timing.add(msg.fields)
                self.messages_missed, self.drops = sub.counters.messages_missed, dict(sub.drops)
        except BaseException as exc:  # re-raised by close()
            self._error = exc
            self._ready.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        if self._error is not None:
            raise self._error


def pick(d: dict, *keys: str) -> dict:
    return {k: d.get(k) for k in keys}


def stop_all(procs: list[Process]) -> None:
    for p in procs:
        p.stop()


def loop_stream_argv(
    bind: str,
    socket_type: str,
    loop_s: float,
    duration_s: float,
    seed: int,
    profile: str,
    chunk: int,
    scenario: Path | None = None,
) -> list[str]:
    """``backscatter stream`` of an emulated loop (``--loop-s``), paced in real time; ``scenario``
    a scenario JSON file (``--scenario``)."""
    argv = backscatter_argv("stream", "--source", "emulator", "--bind", bind, "--socket", socket_type)
    argv += ["--loop-s", f"{loop_s!r}", "--duration-s", f"{duration_s!r}", "--seed", str(seed)]
    argv += ["--profile", profile, "--chunk-samples", str(chunk), "--json"]
    argv += ["--scenario", str(scenario)] if scenario is not None else []
    return argv + (["--wait-subscriber-s", "60"] if socket_type == "pub" else [])


def worker_argv(
    connect: str,
    socket_type: str,
    bind: str,
    *,
    idle_exit_s: float | None = None,
    tx_rx_distance_m: float | None = None,
    methods: tuple[str, ...] | list[str] = (),
) -> list[str]:
    """``backscatter worker`` on the bench's stream (``--quiet --json``: its summary on stdout)."""
    argv = backscatter_argv("worker", "--connect", connect, "--socket", socket_type, "--bind", bind)
    if idle_exit_s is not None:
        argv += ["--idle-exit-s", str(idle_exit_s)]
    if tx_rx_distance_m is not None:
        argv += ["--tx-rx-distance-m", str(tx_rx_distance_m)]
    for m in methods:
        argv += ["--method", m]
    return [*argv, "--quiet", "--json"]


def plan(
    profile: str, seed: int, loop_s: float, lo_ppm: float | None = None
) -> tuple[Any, ScenarioConfig, int, Any]:
    """Waveform, scenario, loop samples and ground truth of the streamed loop (nothing generated);
    ``lo_ppm`` fixes the LO offset (with a tied sample clock when it is seamless over the loop)."""
    wf = get_profile(profile)
    sc = ScenarioConfig(seed=seed, lo_ppm=lo_ppm)
    n_loop = loop_samples_for(wf, sc.mode, loop_s)
    truth = Emulator(wf, sc.replace(duration_s=n_loop / wf.capture_rate_hz)).truth
    return wf, sc, n_loop, truth


def startup_budget_s(loop_s: float) -> float:
    return 60.0 + 8.0 * loop_s  # interpreter start-up and about 2.2 s of emulation per loop second


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


def wait_live(listener: Listener, stream: Process, budget_s: float) -> float:
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
