"""Live-pipeline figures: ``backscatter bench --pipeline`` (the soak, ``--soak MINUTES``, is in
bench_soak.py; :func:`bench_soak` is re-exported here and :func:`describe` reports both).

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

Every process is an ordinary command (see bench_procs.py).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from backscatter.commands.bench_procs import (
    WORKER_KEYS,
    Listener,
    Process,
    free_tcp_endpoint,
    health_summary,
    loop_stream_argv,
    pick,
    plan,
    startup_budget_s,
    stop_all,
    worker_argv,
)
from backscatter.commands.bench_soak import bench_soak
from sdr.loop_source import complete_packets
from sdr.sources import DEFAULT_CHUNK_SAMPLES
from sdr.transport import compare_pushpull_throughput

__all__ = [
    "TARGET_LATENCY_P95_S",
    "TARGET_TRANSPORT_RATIO",
    "bench_pipeline",
    "bench_soak",
    "describe",
    "free_tcp_endpoint",
    "transport_overhead",
]

TARGET_LATENCY_P95_S = 0.1
TARGET_TRANSPORT_RATIO = 0.8


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
    wf, _, n_loop, truth = plan(profile, seed, loop_s)
    fs = wf.capture_rate_hz  # the emulated stream's rate
    n_stream = round(duration_s * fs)
    iq_ep, res_ep = free_tcp_endpoint(), free_tcp_endpoint()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        logs = Path(log_dir) if log_dir is not None else Path(tmp)
        logs.mkdir(parents=True, exist_ok=True)
        listener = Listener(res_ep)
        procs: list[Process] = []
        try:
            argv = worker_argv(
                iq_ep, "pull", res_ep, idle_exit_s=idle_exit_s, tx_rx_distance_m=truth.tx_rx_distance_m
            )
            worker = Process("worker", argv, logs)
            procs.append(worker)
            stream = Process(
                "streamer",
                loop_stream_argv(iq_ep, "push", n_loop / fs, duration_s, seed, profile, chunk_samples),
                logs,
            )
            procs.append(stream)
            budget = startup_budget_s(loop_s) + 1.5 * duration_s
            s_sum = stream.wait(budget)
            s_sum["generate_s"] = s_sum["loop"]["generate_s"]
            w_sum = worker.wait(idle_exit_s + 60.0)
            time.sleep(0.3)  # the last results are in flight to the listener
        finally:
            stop_all(procs)
            listener.close()
    overhead = transport_overhead(overhead_repeats, overhead_buffers, chunk_samples, len(s_sum["bands"]))
    expected = complete_packets(truth, wf, n_loop, n_stream)
    lat = w_sum["latency"]
    out = {
        "kind": "pipeline",
        "profile": profile,
        "bands": s_sum["bands"],
        "capture_rate_hz": fs,
        "format": s_sum["format"],
        "chunk_samples": chunk_samples,
        "duration_s": duration_s,
        "loop_s": n_loop / fs,
        "packets_per_loop": complete_packets(truth, wf, n_loop, n_loop),
        "streamer": pick(
            s_sum, *"messages samples_sent stream_s wall_s realtime_factor max_lag_s generate_s".split()
        ),
        "worker": pick(w_sum, *WORKER_KEYS, "messages", "samples_lost"),
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


# ----- report -------------------------------------------------------------------------------------
def _ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 1e3:.0f} ms"


def _s(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f} s"


def _ppm(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f} ppm"


def describe(out: dict) -> str:
    """Human-readable lines for a :func:`bench_pipeline` or :func:`bench_soak` report."""
    if out["kind"] == "pipeline":
        w, r, t, s = out["worker"], out["results"], out["transport"], out["streamer"]
        ok = ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in out["met"].items())
        return "\n".join(
            [
                f"pipeline: {out['duration_s']:g} s of {len(out['bands'])} bands at "
                f"{out['capture_rate_hz'] / 1e6:g} MS/s {out['format']} (loop {out['loop_s']:g} s), "
                f"streamer {s['realtime_factor']:.3f}x real time, max lag {_ms(s['max_lag_s'])}",
                f"  worker: {w['samples_lost']} samples lost, {w['realtime_factor'] or 0:.2f}x real time "
                f"(receiver thread; {w.get('realtime_factor_one_core') or 0:.2f}x with the reader "
                "thread on the same core), "
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
    w = out["worker"]
    lines.append(
        f"  worker: {w.get('packets')} packets ({w.get('crc_ok')} CRC ok) of {out.get('packets_streamed')} "
        f"streamed, {w.get('epochs')} epochs, {w.get('gaps')} gaps, {w.get('realtime_factor') or 0:.2f}x "
        "real time (receiver thread)"
    )
    t = out.get("timing") or {}
    if t.get("stats"):
        drift = (
            "untied (no drift)" if not out.get("sample_clock_ppm") else f"{out['sample_clock_ppm']:.3f} ppm"
        )
        lines.append(
            f"  timing: sample clock {drift}; locked in {t['locked']} of {t['stats']} stats messages, "
            f"first at {_s(t['first_lock_s'])} of stream, lost after lock {t['lost_after_lock']} times, "
            f"largest error since {t['max_abs_error_samples']:.3f} samples; drift model "
            f"{_ppm(t['drift_ppm'])}, measured {_ppm(t['drift_measured_ppm'])}"
        )
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
