"""``stream``: send IQ from the emulator, a capture or a radio to the pipeline (``sdr/MESSAGES.md``).

The sources are the registered kinds ``backscatter stream`` can send (``sdr/source_registry.py``);
the streamer is ``app.stream``.  The socket pattern is ``--socket pub|push``: ``--mode`` is the
tag mode (cw/burst) of the shared scenario flags.  Stops cleanly on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from app.stream import SEND_TIMEOUT_S, StreamOptions, stream
from backscatter.commands.captures_cmd import add_scenario_args
from backscatter.commands.gnuradio_args import add_gnuradio_output_args, gnuradio_publisher_from_args
from backscatter.commands.keys_cmd import add_keys_arg, server_keys_from_args
from backscatter.output import CliError, exit_leaving_broken_file, print_json
from sdr.source_registry import add_source_args, settings_from_args, source_names
from sdr.sources import DEFAULT_CHUNK_SAMPLES, IQSource
from sdr.transport import IQ_FORMATS, MAX_SAMPLES
from sdr.transport.gnuradio import GnuRadioPublisher

DEFAULT_IQ_ENDPOINT = "tcp://127.0.0.1:5555"


def cmd_stream(args: argparse.Namespace) -> dict:
    if not (1 <= args.chunk_samples <= MAX_SAMPLES):
        raise CliError(f"--chunk-samples must be in [1, {MAX_SAMPLES}], got {args.chunk_samples}")
    if not args.send_timeout_s >= 0:
        raise CliError(f"--send-timeout-s must be >= 0 (0: no timeout), got {args.send_timeout_s}")
    if args.record is not None and args.record.exists() and not args.force:
        raise CliError(f"{args.record} exists; refusing to overwrite without --force")
    settings = settings_from_args(args)
    options = StreamOptions(
        bind=args.bind,
        socket=args.socket,
        fmt=args.format,
        server_keys=server_keys_from_args(args),
        insecure=args.insecure,
        wait_subscriber_s=args.wait_subscriber_s,
        as_fast_as_possible=args.as_fast_as_possible,
        record=args.record,
        overwrite=args.force,
        show_progress=not args.json,
        send_timeout_s=args.send_timeout_s or None,
    )

    def gnuradio(source: IQSource) -> GnuRadioPublisher | None:
        return gnuradio_publisher_from_args(args, source.capture_rate_hz, source.channels)

    outcome = stream(settings, options, also=gnuradio)
    summary = outcome.summary
    if args.json:
        print_json(summary)
    else:
        _print_summary(summary)
    if summary["record_error"] is not None:
        if outcome.record_broken:
            exit_leaving_broken_file("stream", summary["record_error"]["message"])
        raise CliError(f"the stream completed, the recording did not: {summary['record_error']['message']}")
    return summary


def _print_summary(summary: dict) -> None:
    end = "interrupted" if summary["interrupted"] else "done"
    print(
        f"stream {end}: {summary['stream_s']:.3f} s of {len(summary['bands'])} bands from "
        f"{summary['source']} ({summary['samples_sent']} samples, {summary['messages']} messages, "
        f"{summary['bytes_sent'] / 1e6:.1f} MB) in {summary['wall_s']:.2f} s "
        f"({summary['realtime_factor']:.2f}x real time) to {summary['endpoint']} ({summary['mode']})"
    )
    if summary["samples_lost"]:
        print(f"  {summary['samples_lost']} samples lost at the source")
    if summary["unsent_messages"]:
        print(
            f"  {summary['unsent_samples']} samples in {summary['unsent_messages']} messages not sent: "
            f"no consumer took them ({summary['consumer_gaps']} times given up)"
        )
    if summary["record"]:
        print(f"  recorded to {summary['record']}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stream", help="stream IQ (emulator, capture or radio) to the pipeline")
    p.add_argument("--source", choices=source_names(restream=True), default="emulator")
    p.add_argument("--file", type=Path, help="capture to stream (--source replay)")
    add_scenario_args(p)
    add_source_args(p, restream=True)
    p.add_argument("--bind", default=DEFAULT_IQ_ENDPOINT, help="endpoint to bind (default %(default)s)")
    p.add_argument(
        "--socket",
        choices=["pub", "push"],
        default="pub",
        help="pub: any number of subscribers, a slow one loses messages; push: lossless to one consumer",
    )
    p.add_argument(
        "--send-timeout-s",
        type=float,
        default=SEND_TIMEOUT_S,
        help="push: once a consumer has connected, give it up when it disconnects or takes no message "
        "for this long: messages are then dropped, counted and reported until a consumer (a restarted "
        "worker) takes them again; 0: wait for it however long it takes (default %(default)s)",
    )
    p.add_argument("--format", choices=IQ_FORMATS, default="sc16", help="wire sample format")
    p.add_argument("--chunk-samples", type=int, default=DEFAULT_CHUNK_SAMPLES, help="samples per message")
    p.add_argument("--as-fast-as-possible", action="store_true", help="do not pace to the sample rate")
    p.add_argument(
        "--loop-s",
        type=float,
        help="emulator: generate this many seconds once (whole burst periods) and repeat them, so the "
        "stream keeps real time; --duration-s is then the stream length",
    )
    p.add_argument(
        "--wait-subscriber-s",
        type=float,
        default=0.0,
        help="pub mode: wait up to this long for a subscriber before sending (with --gnuradio-bind: for "
        "one on every GNU Radio socket)",
    )
    p.add_argument(
        "--record", type=Path, help="also record the stream (every chunk, sent or not) to this capture file"
    )
    p.add_argument("--force", action="store_true", help="overwrite --record")
    add_gnuradio_output_args(p)
    add_keys_arg(p, server=True)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_stream)
