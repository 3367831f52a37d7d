"""``record``: write an IQ stream (ours, or a GNU Radio flowgraph's sinks) to a capture file that
can be read while it grows.  The socket pattern is ``--socket sub|pull``."""

from __future__ import annotations

import argparse
from pathlib import Path

import zmq

from app.stream import StopOnSignal
from backscatter.commands.gnuradio_args import add_gnuradio_input_args, gnuradio_subscriber_from_args
from backscatter.commands.keys_cmd import add_keys_arg, client_keys_from_args
from backscatter.output import CliError, exit_leaving_broken_file, print_json
from sdr.recorder import record
from sdr.security import SecurityError
from sdr.transport import IQSubscriber


def cmd_record(args: argparse.Namespace) -> dict:
    if args.out.exists() and not args.force:
        raise CliError(f"{args.out} exists; refusing to overwrite without --force")
    with StopOnSignal() as signals:
        stop = signals.event
        sub = gnuradio_subscriber_from_args(args)
        if sub is None and not args.connect:
            raise CliError("give --connect ENDPOINT (our stream) or --gnuradio BAND=ENDPOINT per band")
        try:
            sub = sub or IQSubscriber(args.connect, mode=args.socket, client_keys=client_keys_from_args(args))
        except SecurityError as exc:
            raise CliError(str(exc)) from None
        except zmq.ZMQError as exc:  # malformed endpoint
            raise CliError(f"cannot connect {args.connect}: {exc}") from None
        try:
            summary = record(
                sub,
                args.out,
                overwrite=args.force,
                stop=stop,
                idle_timeout_s=args.idle_timeout_s,
                max_messages=args.count,
            )
        finally:
            sub.close()
    if summary["broken"]:  # HDF5 may crash closing a file whose write failed: say why, then leave
        exit_leaving_broken_file("record", summary["message"])
    if args.json:
        print_json(summary)
    else:
        where = summary["file"] or f"nothing ({args.out} not written)"
        print(
            f"record ({summary['stop_reason']}): {summary['messages']} messages, "
            f"{summary['samples']} samples to {where}; {summary['gaps']} gaps "
            f"({summary['samples_lost']} samples lost, "
            f"{summary['messages_missed']} messages missed), drops {summary['drops'] or 'none'}"
        )
    if summary["stop_reason"] in ("stream_changed", "disk_full", "write_error"):
        raise CliError(summary["message"])
    return summary


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("record", help="record an IQ stream to a capture file (readable while it grows)")
    p.add_argument("--connect", help="streamer endpoint, e.g. tcp://127.0.0.1:5555 (or --gnuradio)")
    p.add_argument("--out", type=Path, required=True, help="capture file to write (.h5)")
    p.add_argument(
        "--socket", choices=["sub", "pull"], default="sub", help="sub for a pub stream, pull for push"
    )
    add_gnuradio_input_args(p)
    p.add_argument("--idle-timeout-s", type=float, help="stop after this long without IQ")
    p.add_argument("--count", type=int, help="stop after this many messages")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    add_keys_arg(p, server=False)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_record)
