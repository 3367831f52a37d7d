"""``worker``: run the receiver on a live IQ stream and publish its results."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import zmq

from app.session import ReceiverSettings, open_receiver
from app.stream import StopOnSignal
from backscatter.commands.gnuradio_args import add_gnuradio_input_args, gnuradio_subscriber_from_args
from backscatter.commands.keys_cmd import add_keys_arg, client_keys_from_args, server_keys_from_args
from backscatter.commands.receive_cmd import add_receiver_args
from backscatter.output import CliError, print_json
from calibration.store import CalibrationError
from calibration.workflow import settings_from_header
from dsp.receiver import Receiver, ReceiverError
from sdr.control import ControlServer, LiveConfig
from sdr.security import SecurityError
from sdr.transport import IQHeader, IQSubscriber, ResultPublisher
from sdr.transport.gnuradio import GnuRadioSubscriber
from sdr.worker import StreamWorker

DEFAULT_RESULTS_ENDPOINT = "tcp://127.0.0.1:5556"


def status_line(h: dict) -> str:
    """The one-line status printed each second."""
    rate = h.get("capture_rate_hz")
    lat = h.get("latency_p95_s")
    dropped = sum(h["messages_dropped"].values())
    state = "behind" if h.get("behind") else h["stream_state"]  # behind: receiving, not keeping up
    backlog = h.get("backlog_s") or 0.0
    return (
        f"[{state:7s}] {h['throughput_sps'] / 1e6:6.1f} MS/s"
        + (f" at {rate / 1e6:g} MS/s/ch" if rate else "")
        + f", {h['realtime_factor']:.1f}x rt, queue {h['queue_depth']}"
        + (f" ({backlog:.1f} s)" if backlog >= 0.05 else "")
        + ", "
        f"packets {h['packets']}, epochs {h['epochs']}, lost {h['samples_lost']} samples, "
        f"dropped {dropped} msgs" + (f", p95 latency {lat * 1e3:.0f} ms" if lat is not None else "")
    )


def control_server_from_args(args: argparse.Namespace) -> ControlServer | None:
    if not args.control:
        return None
    try:
        return ControlServer(args.control, insecure=args.insecure)
    except (SecurityError, zmq.ZMQError) as exc:
        raise CliError(f"cannot bind --control {args.control}: {exc}") from None


def receiver_factory(settings: ReceiverSettings, live: LiveConfig) -> Callable[[IQHeader], Receiver]:
    """``make_receiver(header)`` for the worker: one receiver per stream, its failure said once."""

    def make_receiver(h: IQHeader) -> Receiver:
        try:  # an emulated or replayed stream carries its truth: compare against its answer
            return open_receiver(
                settings,
                settings_from_header(h),
                truth=h.truth,
                capture_index=h.capture_index,
                config=live.for_stream(h.truth),
                where=f"stream {h.stream_id}",
            )
        except (CalibrationError, ReceiverError) as exc:  # counted as unreceivable; say why once
            print(f"worker: cannot receive stream {h.stream_id}: {exc}", file=sys.stderr, flush=True)
            raise

    return make_receiver


def subscriber_from_args(args: argparse.Namespace) -> IQSubscriber | GnuRadioSubscriber:
    """The IQ input: GNU Radio's sockets (``--gnuradio``), else our stream at ``--connect``."""
    sub = gnuradio_subscriber_from_args(args)
    if sub is not None:
        return sub
    if not args.connect:
        raise CliError("give --connect ENDPOINT (our stream) or --gnuradio BAND=ENDPOINT per band")
    try:
        return IQSubscriber(args.connect, mode=args.socket, client_keys=client_keys_from_args(args))
    except zmq.ZMQError as exc:
        raise CliError(f"cannot connect {args.connect}: {exc}") from None


def result_publisher_from_args(args: argparse.Namespace) -> ResultPublisher:
    """The results socket bound at ``--bind`` (CURVE keys from ``--keys``)."""
    try:
        return ResultPublisher(args.bind, server_keys=server_keys_from_args(args), insecure=args.insecure)
    except (SecurityError, zmq.ZMQError) as exc:
        raise CliError(f"cannot bind {args.bind}: {exc}") from None


def print_summary(summary: dict) -> None:
    """The worker's closing line (``--json`` prints the summary instead)."""
    lat = summary["latency"]
    p95 = f"{lat['p95_s'] * 1e3:.0f} ms" if lat["p95_s"] is not None else "n/a"
    print(
        f"worker: {summary['stream_s']:.2f} s of stream in {summary['messages']} messages, "
        f"{summary['packets']} packets ({summary['crc_ok']} CRC ok), {summary['epochs']} epochs, "
        f"{summary['samples_lost']} samples lost, p95 latency {p95}, "
        f"{summary['realtime_factor'] or 0:.1f}x real time (the slower of receiver and ranging)"
    )


def ranging_processes(value: str) -> int:
    """``--ranging-processes``: a count, or ``auto`` (1 where there are two cores or more, else 0)."""
    if value == "auto":
        return 1 if (os.cpu_count() or 1) >= 2 else 0
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise CliError(f"--ranging-processes must be 'auto' or a count >= 0, got {value!r}")
    return n


def cmd_worker(args: argparse.Namespace) -> dict:
    """Receive the stream until it goes idle, ``--duration-s`` passes or a signal; the summary."""
    settings = ReceiverSettings.from_args(args)
    live = LiveConfig(settings.config(), settings.tx_rx_distance_m is not None)
    echo = None if args.quiet else (lambda h: print(status_line(h), file=sys.stderr, flush=True))
    with StopOnSignal() as signals, ExitStack() as opened:  # closed in reverse: control, pub, sub
        sub = subscriber_from_args(args)
        opened.callback(sub.close)
        pub = opened.enter_context(result_publisher_from_args(args))
        control = control_server_from_args(args)
        if control is not None:
            opened.callback(control.close)
        worker = StreamWorker(
            sub,
            pub,
            receiver_factory(settings, live),
            status=echo,
            control=control,
            on_settings=live.apply,
            ranging_processes=ranging_processes(args.ranging_processes),
        )
        summary = worker.run(signals.event, idle_exit_s=args.idle_exit_s, duration_s=args.duration_s)
    summary.update(connect=args.connect or sub.endpoint, results=args.bind)
    if args.json:
        print_json(summary)
    else:
        print_summary(summary)
    return summary


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="run the receiver on a live IQ stream and publish results")
    p.add_argument("--connect", help="streamer endpoint, e.g. tcp://127.0.0.1:5555 (or --gnuradio)")
    p.add_argument(
        "--socket", choices=["sub", "pull"], default="sub", help="sub for a pub stream, pull for push"
    )
    add_gnuradio_input_args(p)
    p.add_argument(
        "--bind", default=DEFAULT_RESULTS_ENDPOINT, help="results endpoint to bind (default %(default)s)"
    )
    add_keys_arg(p, server=True)
    add_receiver_args(p)
    p.add_argument("--calibration", type=Path, help="calibration file from `backscatter calibrate`")
    p.add_argument("--idle-exit-s", type=float, help="exit after this long without IQ (once some came)")
    p.add_argument("--duration-s", type=float, help="exit after this long")
    p.add_argument("--quiet", action="store_true", help="no status line each second")
    p.add_argument(
        "--ranging-processes",
        default="auto",
        help="processes that run the ranging methods beside the receiver (0: on its thread; "
        "default auto: 1 on two cores or more)",
    )
    p.add_argument(
        "--control",
        metavar="ENDPOINT",
        help="bind a control endpoint (e.g. tcp://127.0.0.1:5557): the GUI sets d_0 and methods there",
    )
    p.set_defaults(func=cmd_worker)
