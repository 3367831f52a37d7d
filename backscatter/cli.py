"""The ``backscatter`` console script: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import sys

from backscatter.commands import (
    bench_cmd,
    calibrate_cmd,
    captures_cmd,
    crlb_cmd,
    gui_cmd,
    keys_cmd,
    listen_cmd,
    methods_cmd,
    receive_cmd,
    record_cmd,
    stream_cmd,
    sweep_cmd,
    worker_cmd,
)
from dsp.errors import BackscatterError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backscatter",
        description="Bistatic OFDM backscatter testbed: emulate, capture, decode and range.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (
        captures_cmd,
        receive_cmd,
        stream_cmd,
        record_cmd,
        listen_cmd,
        keys_cmd,
        worker_cmd,
        calibrate_cmd,
        gui_cmd,
        crlb_cmd,
        methods_cmd,
        sweep_cmd,
        bench_cmd,
    ):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except BackscatterError as exc:  # every error of this package (dsp/errors.py), refusals to overwrite too
        print(f"backscatter {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"backscatter {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
