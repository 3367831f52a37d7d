"""``gui``: the PyQtGraph monitor on a live results endpoint or on a capture replay.

Qt, pyqtgraph and the GUI modules are imported inside the command only, so
``backscatter --help`` and the other subcommands never load them.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from backscatter.commands.keys_cmd import add_keys_arg
from backscatter.output import CliError
from dsp.ranging import REGISTRY

ENDPOINT = re.compile(r"^(tcp|ipc|inproc)://\S+$")


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if not m or not (320 <= int(m[1]) <= 8000 and 240 <= int(m[2]) <= 8000):
        raise argparse.ArgumentTypeError(f"window size must be WIDTHxHEIGHT in pixels, got {text!r}")
    return int(m[1]), int(m[2])


def _need_offscreen() -> bool:
    """True on Linux without a display, where Qt would abort: render offscreen instead."""
    return (
        sys.platform.startswith("linux")
        and not os.environ.get("QT_QPA_PLATFORM")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    )


def _check_args(args: argparse.Namespace) -> None:
    if args.exit_after_s is not None and args.exit_after_s <= 0:
        raise CliError(f"--exit-after-s must be positive, got {args.exit_after_s}")
    if args.no_data_after_s <= 0:
        raise CliError(f"--no-data-after-s must be positive, got {args.no_data_after_s}")
    if args.speed < 0:
        raise CliError(f"--speed must be >= 0 (0: as fast as possible), got {args.speed}")
    for flag, value, example in (
        ("--connect", args.connect, "tcp://host:5556"),
        ("--control", args.control, "tcp://127.0.0.1:5557"),
        ("--iq", args.iq, "tcp://127.0.0.1:5555"),
    ):
        if value is not None and not ENDPOINT.match(value):
            raise CliError(f"{flag} wants a ZeroMQ endpoint like {example}, got {value!r}")
    if not args.export_dir.is_dir():
        raise CliError(f"--export-dir {args.export_dir} is not a directory")


def _replay_source(args: argparse.Namespace):  # -> gui.replay.ReplaySource (imported lazily)
    from app.replay import capture_receiver
    from app.session import ReceiverSettings
    from captures.reader import open_capture
    from gui.replay import ReplaySource

    settings = ReceiverSettings.from_args(args)
    with open_capture(args.replay) as cap:  # fail here, with a CLI error, rather than inside the GUI
        capture_receiver(cap, args.replay, settings, cap.truth())
    return ReplaySource(args.replay, args.speed, settings)


def cmd_gui(args: argparse.Namespace) -> dict:
    _check_args(args)
    if args.replay is not None:
        source = _replay_source(args)
        calibration_source = str(args.replay)
    else:
        from backscatter.commands.keys_cmd import client_keys_from_args
        from gui.source import ZmqSource
        from sdr.security import SecurityError

        try:
            keys = client_keys_from_args(args)
        except SecurityError as exc:
            raise CliError(str(exc)) from None
        source = ZmqSource(args.connect, keys)
        calibration_source = ""
    if _need_offscreen():
        if args.screenshot is None:
            raise CliError("no display (DISPLAY is unset); use --screenshot or set QT_QPA_PLATFORM=offscreen")
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from gui.app import ScreenshotError, run_app

    try:
        run_app(
            source,
            theme=args.theme,
            screenshot=args.screenshot,
            exit_after_s=args.exit_after_s,
            no_data_after_s=args.no_data_after_s,
            size=args.size,
            calibration_source=calibration_source,
            lab={"control_endpoint": args.control, "iq_endpoint": args.iq, "export_dir": args.export_dir},
        )
    except ScreenshotError as exc:
        raise CliError(str(exc)) from None
    if args.screenshot:
        print(f"wrote {args.screenshot}")
    status = source.inbox.status()
    if status.error:  # shown in the window too; the exit status says it as well
        raise CliError(f"{status.description}: {status.error}")
    return {"screenshot": str(args.screenshot) if args.screenshot else None}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help="live monitor: CIRs, ranges, BER, spectrum (results endpoint or replay)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--connect", metavar="RESULTS_ENDPOINT", help="subscribe to a worker's results")
    src.add_argument("--replay", type=Path, metavar="FILE.h5", help="run the receiver over a capture")
    add_keys_arg(p, server=False)
    p.add_argument(
        "--speed", type=float, default=1.0, help="replay speed: 1 real time, 0 as fast as possible"
    )
    cal = p.add_mutually_exclusive_group()
    cal.add_argument("--calibration", type=Path, help="replay: calibration file from `backscatter calibrate`")
    cal.add_argument(
        "--truth-calibration",
        action="store_true",
        help="replay: divide out the emulator's true circuitry responses (emulated captures only)",
    )
    p.add_argument("--method", action="append", choices=sorted(REGISTRY), help="replay: ranging method")
    p.add_argument("--tag-mode", choices=["burst", "cw"], help="replay: tag mode (default: from the truth)")
    p.add_argument("--tx-rx-distance-m", type=float, help="replay: known TX-RX distance d_0")
    p.add_argument("--receiver-config", type=Path, help="replay: JSON of ReceiverConfig keys")
    p.add_argument("--theme", choices=["dark", "light"], default="dark")
    p.add_argument("--size", type=_size, default=(1600, 1000), metavar="WxH", help="window size in pixels")
    p.add_argument(
        "--no-data-after-s", type=float, default=5.0, help="flag a silent endpoint after this many seconds"
    )
    p.add_argument("--screenshot", type=Path, metavar="FILE.png", help="save the window before exiting")
    p.add_argument("--exit-after-s", type=float, metavar="S", help="close the window after S seconds")
    lab = p.add_argument_group("lab bar")
    lab.add_argument("--control", metavar="ENDPOINT", help="the worker's --control endpoint (d_0, methods)")
    lab.add_argument("--iq", metavar="ENDPOINT", help="the streamer's IQ endpoint: record from the GUI")
    lab.add_argument("--export-dir", type=Path, default=Path("."), help="where PNG, CSV and recordings go")
    p.set_defaults(func=cmd_gui)
