"""Does the GNU Radio path keep real time at 3 x 30.72 MS/s?  Throughput and samples lost over a run.

A GNU Radio flowgraph (``gnuradio/play_bands.py``, run by GNU Radio's ``python3``) loops an
emulated 0.2 s capture's three bands as int16 I/Q pairs through ``blocks.throttle`` (real time,
30.72 MS/s per band) into three ``zeromq.pub_sink`` (or ``push_sink``) with tag headers.  On our
side a :class:`~sdr.transport.gnuradio.GnuRadioSubscriber` aligns the three sockets; with
``--worker`` the full :class:`~sdr.worker.StreamWorker` (receiver included) runs on it.

With PUB sinks nothing waits for us: samples we do not take in time are dropped by ZeroMQ and
show up as offset jumps, i.e. as ``samples_lost``.  With PUSH the flowgraph is slowed down
instead, which shows as a throughput below the rate.

``--synthetic`` measures our ingest alone: a sender process writes GNU Radio's format as fast as
it can, and the CPU seconds our side spends per second of stream say what real time costs.

    .venv/bin/python -m experiments.bench_gnuradio --duration-s 60 [--worker] [--socket push]
        [--buffer-items N] [--lockstep] [--synthetic] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from app.session import ReceiverSettings, open_receiver
from calibration.workflow import settings_from_header
from captures.format import complex_to_ci16
from captures.reader import open_capture
from dsp.bands import BANDS
from dsp.receiver import Receiver
from dsp.waveform import get_profile
from sdr.emulator.capture import write_emulated_capture
from sdr.emulator.scenario import ScenarioConfig
from sdr.transport import IQHeader, ResultPublisher
from sdr.transport.gnuradio import GnuRadioConfig, GnuRadioSubscriber
from sdr.worker import StreamWorker

ROOT = Path(__file__).resolve().parents[1]
GR_PYTHON = "/usr/bin/python3"


def _ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _band_files(tmp: Path) -> tuple[dict[str, Path], dict[str, float], float, float]:
    wf = get_profile("default")
    kw: dict[str, Any] = {"ideal": True} if "ideal" in ScenarioConfig.__dataclass_fields__ else {}
    sc = ScenarioConfig(duration_s=0.2, seed=3, first_packet_s=0.01, **kw)
    write_emulated_capture(tmp / "loop.h5", wf, sc)
    with open_capture(tmp / "loop.h5") as cap:
        iq, rate = cap.read(), cap.capture_rate_hz
        centres = {c.band: c.center_freq_hz for c in cap.channels}
        d0 = cap.truth().tx_rx_distance_m
    files = {}
    for i, b in enumerate(centres):
        files[b] = tmp / f"{b}.sc16"
        complex_to_ci16(iq[i]).tofile(files[b])
    return files, centres, rate, d0


def run(
    duration_s: float,
    sink: str = "pub",
    worker: bool = False,
    buffer_items: int | None = None,
    lockstep: bool = False,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        files, centres, rate, d0 = _band_files(tmp)
        bands = list(files)
        endpoints = {b: f"tcp://127.0.0.1:{p}" for b, p in zip(bands, _ports(len(bands)), strict=True)}
        cfg = GnuRadioConfig(
            endpoints=tuple(endpoints.items()),
            rf_centers_hz=tuple(centres[b] for b in bands),
            capture_rate_hz=rate,
            socket="sub" if sink == "pub" else "pull",
            item_format="sc16",
            tags=True,
        )
        wf = get_profile("default")
        sub = GnuRadioSubscriber(cfg, wf)
        play = subprocess.Popen(
            [
                GR_PYTHON, str(ROOT / "gnuradio" / "play_bands.py"), "--sink", sink, "--tags",
                "--format", "sc16", "--repeat", "--throttle", "--rate-hz", str(rate),
                "--duration-s", str(duration_s), "--start-delay-s", "1", "--linger-s", "0.5",
                *(["--min-output-buffer", str(buffer_items)] if buffer_items else []),
                *(["--lockstep"] if lockstep else []),
                *[a for b in bands for a in ("--band", b, str(files[b]), endpoints[b], str(centres[b]))],
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd="/",
        )  # fmt: skip
        cpu0 = time.process_time()
        try:
            if worker:
                out = _run_worker(sub, d0, duration_s)
            else:
                out = _run_ingest(sub)
        finally:
            sub.close()
            _, err = play.communicate(timeout=60)
        if play.returncode != 0:
            raise RuntimeError(f"the GNU Radio flowgraph failed: {err[-2000:]}")
        child = resource.getrusage(resource.RUSAGE_CHILDREN)
        n_ch = len(bands)
        total = out["samples_per_channel"] + out["samples_lost"]
        out.update(
            # what the flowgraph offered (paced by its throttle), and what reached the receiver
            offered_sps=total * n_ch / duration_s,
            received_sps=out["samples_per_channel"] * n_ch / duration_s,
            duration_s=duration_s,
            sink=sink,
            bands=bands,
            capture_rate_hz=rate,
            target_sps=rate * len(bands),
            our_cpu_s=time.process_time() - cpu0,
            gnuradio_cpu_s=child.ru_utime + child.ru_stime,
            buffer_items=buffer_items,
            lockstep=lockstep,
            gnuradio_messages=sub.counters.received,
            items_per_message=out["samples_per_channel"] * n_ch / max(sub.counters.received, 1),
            drops=dict(sub.drops),
            overflow_samples=sub.aligner.overflow_samples,
            overflow_by_band={bands[i]: n for i, n in sub.aligner.lane_overflow.items()},
            lost_by_band={bands[i]: n for i, n in sub.aligner.lane_lost.items()},
        )
        return out


SENDER = """
import sys, time, numpy as np, zmq
from sdr.transport.gr_tags import encode_tag_header
ports, n_items, n_msgs = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])
ctx = zmq.Context()
socks = [ctx.socket(zmq.PUSH) for _ in ports]
for s, p in zip(socks, ports):
    s.bind("tcp://127.0.0.1:" + p)
payload = np.zeros(n_items, np.uint32).tobytes()
time.sleep(0.5)
for k in range(n_msgs):
    msg = encode_tag_header(k * n_items, []) + payload
    for s in socks:
        s.send(msg)
for s in socks:
    s.close(linger=10000)
"""


def run_synthetic(duration_s: float, items_per_message: int = 8192) -> dict[str, Any]:
    """Our ingest alone: a sender process writes GNU Radio's format (tag headers, sc16) on three
    PUSH sockets as fast as it can; the CPU our side spends per second of stream is the cost of
    keeping real time, whatever GNU Radio itself costs."""
    rate, bands = 30.72e6, BANDS
    ports = _ports(3)
    cfg = GnuRadioConfig(
        endpoints=tuple((b, f"tcp://127.0.0.1:{p}") for b, p in zip(bands, ports, strict=True)),
        rf_centers_hz=(915e6, 870e6, 960e6),
        capture_rate_hz=rate,
        socket="pull",
        item_format="sc16",
        tags=True,
    )
    n_msgs = int(duration_s * rate / items_per_message)
    with GnuRadioSubscriber(cfg, get_profile("default")) as sub:
        sender = subprocess.Popen(
            [sys.executable, "-c", SENDER, ",".join(map(str, ports)), str(items_per_message), str(n_msgs)],
            cwd=ROOT,
        )
        try:
            out = _run_ingest(sub, cpu=True)
        finally:
            sender.wait(timeout=60)
    out.update(mode="synthetic", items_per_message=items_per_message, target_sps=rate * 3)
    out["cpu_per_stream_s"] = out.pop("cpu_s") / (out["samples_per_channel"] / rate)
    return out


def _run_ingest(sub: GnuRadioSubscriber, cpu: bool = False) -> dict[str, Any]:
    samples = lost = messages = 0
    t_first = t_last = None
    while True:
        m = sub.recv(timeout_s=3.0 if t_first is not None else 30.0)
        if m is None:
            break
        t_last = time.monotonic()
        if t_first is None:
            t_first, cpu0 = t_last, time.process_time()
        samples += m.header.n_samples
        lost += m.lost_before
        messages += 1
    wall = (t_last - t_first) if t_first is not None else 0.0
    n_ch = len(sub.cfg.endpoints)
    extra = {"cpu_s": time.process_time() - cpu0} if cpu and t_first is not None else {}
    return {
        **extra,
        "mode": "ingest",
        "messages": messages,
        "samples_per_channel": samples,
        "samples_lost": lost,
        "gaps": sub.gaps,
        "wall_s": wall,
        "throughput_sps": (samples + lost) * n_ch / wall if wall > 0 else None,
        "realtime_factor": (samples + lost) / sub.cfg.capture_rate_hz / wall if wall > 0 else None,
    }


def _run_worker(sub: GnuRadioSubscriber, d0: float, duration_s: float) -> dict[str, Any]:
    settings = ReceiverSettings(tx_rx_distance_m=d0, tag_mode="burst", truth_packets=False)

    def make_receiver(h: IQHeader) -> Receiver:
        return open_receiver(settings, settings_from_header(h))

    with ResultPublisher("tcp://127.0.0.1:*") as pub:
        w = StreamWorker(sub, pub, make_receiver)
        # not idle_exit_s: the worker measures idleness from the arrival of the message it is
        # processing, so a receiver slower than real time would end the run early
        s = w.run(threading.Event(), duration_s=duration_s + 4.0)
    total = s["samples_per_channel"] + s["samples_lost"]
    return {
        "mode": "worker",
        **{k: s[k] for k in ("messages", "samples_per_channel", "samples_lost", "gaps", "packets", "crc_ok")},
        "wall_s": s["wall_s"],  # the flowgraph's duration and 4 s
        "stream_s": total / sub.cfg.capture_rate_hz,
        "receiver_realtime_factor": s["realtime_factor"],
        "latency_p95_s": s["latency"].get("p95_s"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration-s", type=float, default=60.0)
    p.add_argument("--socket", choices=["pub", "push"], default="pub", help="the flowgraph's ZMQ sinks")
    p.add_argument("--worker", action="store_true", help="run the whole worker (receiver included)")
    p.add_argument("--buffer-items", type=int, help="GNU Radio output buffer before each sink (message size)")
    p.add_argument(
        "--lockstep", action="store_true", help="one throttle for the three bands (as one radio source)"
    )
    p.add_argument(
        "--synthetic",
        action="store_true",
        help="our ingest alone, fed as fast as possible by a sender of GNU Radio's format (no GNU Radio)",
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.synthetic:
        out = run_synthetic(args.duration_s, args.buffer_items or 8192)
        if args.json:
            print(json.dumps(out, indent=2))
        else:
            print(
                f"ingest alone ({out['items_per_message']} items per message): "
                f"{out['throughput_sps'] / 1e6:.1f} MS/s of {out['target_sps'] / 1e6:.1f} target, "
                f"{out['cpu_per_stream_s']:.2f} CPU s per second of stream"
            )
        return 0
    out = run(args.duration_s, args.socket, args.worker, args.buffer_items, args.lockstep)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"GNU Radio -> {out['mode']} ({out['sink']}, {len(out['bands'])} bands at "
            f"{out['capture_rate_hz'] / 1e6:g} MS/s, {out['duration_s']:g} s): "
            f"{out['received_sps'] / 1e6:.1f} MS/s received of {out['offered_sps'] / 1e6:.1f} offered "
            f"({out['target_sps'] / 1e6:.1f} target), "
            f"{out['samples_lost']} samples lost in {out['gaps']} gaps; CPU: ours {out['our_cpu_s']:.1f} s, "
            f"GNU Radio {out['gnuradio_cpu_s']:.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
