"""``calibrate``: measure the radio's circuitry responses with the tag in CW mode at a known range.

Any registered source (``sdr/source_registry.py``); the work is ``app.calibrate``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from app.calibrate import (
    CalibrationJob,
    calibration_summary,
    cw_scenario_defaults,
    for_calibration,
    run_calibration,
)
from backscatter.commands.captures_cmd import add_scenario_args
from backscatter.commands.keys_cmd import add_keys_arg, server_keys_from_args
from backscatter.output import CliError, print_json
from calibration.store import Calibration
from sdr.security import SecurityError
from sdr.source_registry import add_source_args, get_kind, settings_from_args, source_names
from sdr.sources import DEFAULT_CHUNK_SAMPLES

DEFAULT_TX_RX_M = 20.0  # the emulator's default geometry


def cmd_calibrate(args: argparse.Namespace) -> dict:
    if args.out.exists() and not args.force:
        raise CliError(f"{args.out} exists; refusing to overwrite without --force")
    d0 = args.tx_rx_distance_m
    if d0 is None:
        if not get_kind(args.source).emulated:
            raise CliError("--tx-rx-distance-m is required: the direct path is the time reference")
        d0 = DEFAULT_TX_RX_M
    if not args.known_range_m > d0:
        raise CliError(f"--known-range-m {args.known_range_m} must exceed the TX-RX distance {d0} m")
    settings = settings_from_args(args, scenario_defaults=cw_scenario_defaults(d0, args.known_range_m))
    try:
        keys = server_keys_from_args(args) if args.publish else None
    except SecurityError as exc:
        raise CliError(f"cannot publish on {args.publish}: {exc}") from None
    job = CalibrationJob(
        out=args.out,
        known_range_m=args.known_range_m,
        tx_rx_distance_m=d0,
        duration_s=args.duration_s or 1.0,
        overwrite=args.force,
        publish=args.publish,
        server_keys=keys,
        insecure=args.insecure,
        show_progress=not (args.json or args.progress_json),
    )

    def print_progress(fields: dict) -> None:
        if args.progress_json:
            print(json.dumps(fields), flush=True)

    cal = run_calibration(for_calibration(settings), job, on_progress=print_progress)
    summary = calibration_summary(cal, args.out)
    if args.json:
        print_json(summary)
    elif not args.progress_json:
        _print_calibration(args, cal, d0)
    return summary


def _print_calibration(args: argparse.Namespace, cal: Calibration, d0: float) -> None:
    q = cal.quality
    print(
        f"calibration {args.out}: {q['epochs']} epochs, {q['symbols']} symbols, "
        f"TX-RX {d0:g} m, TX-tag-RX {args.known_range_m:g} m"
    )
    for b in cal.group_delay_s:
        d = f", d_cal {cal.d_cal_m[b]:+.3f} m" if b in cal.d_cal_m else ""
        std = q["d_cal_std_m"].get(b)
        st = f" (std over epochs {std * 100:.2f} cm)" if std is not None else ""
        print(
            f"  {b:8s} group delay {cal.group_delay_s[b] * 1e9:8.2f} ns{d}{st}, ripple "
            f"{q['ripple_deg'][b]:.2f} deg / {q['ripple_db'][b]:.2f} dB, SNR {q['snr_db'][b]:.1f} dB"
        )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="CW calibration: circuitry responses and d_cal per band, saved for replay/worker/demo",
    )
    p.add_argument("--source", choices=source_names(), default="emulator")
    p.add_argument("--file", type=Path, help="capture of a CW calibration run (--source replay)")
    p.add_argument("--connect", help="IQ endpoint of a running `backscatter stream` (--source stream)")
    p.add_argument("--socket", choices=["sub", "pull"], default="sub", help="--source stream: sub or pull")
    p.add_argument("--known-range-m", type=float, required=True, help="true TX-tag-RX path length, m")
    p.add_argument(
        "--tx-rx-distance-m",
        type=float,
        help=f"true TX-RX distance, m (emulator default {DEFAULT_TX_RX_M:g})",
    )
    p.add_argument("--out", type=Path, required=True, help="calibration file to write (.h5)")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    add_scenario_args(p)
    add_source_args(p)
    p.add_argument("--chunk-samples", type=int, default=DEFAULT_CHUNK_SAMPLES, help=argparse.SUPPRESS)
    p.add_argument("--publish", help="publish calibration progress on this results endpoint (for the GUI)")
    add_keys_arg(p, server=True)
    p.add_argument("--progress-json", action="store_true", help="print each progress update as a JSON line")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_calibrate)
