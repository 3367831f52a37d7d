"""``calibrate``: measure the radio's circuitry responses with the tag in CW mode at a known range."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterator
from pathlib import Path

import zmq

from backscatter.commands.captures_cmd import add_scenario_args, scenario_from_args
from backscatter.commands.pipeline_cmd import (
    _add_uhd_args,
    add_keys_arg,
    client_keys_from_args,
    make_source,
    server_keys_from_args,
)
from backscatter.output import CliError, print_json, progress_bar
from calibration.store import CalibrationError, save_calibration
from calibration.workflow import calibrate, settings_from_source
from dsp.waveform import get_profile
from sdr.security import SecurityError
from sdr.sources import DEFAULT_CHUNK_SAMPLES, EmulatorSource, IQSource, chunk_iq
from sdr.transport import IQSubscriber, ResultPublisher, sc16_to_complex

DEFAULT_TX_RX_M = 20.0  # the emulator's default geometry


def _emulator_source(args: argparse.Namespace, d0: float, known: float) -> EmulatorSource:
    """A line-of-sight CW scenario with the tag where the TX-tag-RX path is ``known`` metres."""
    half = math.sqrt(max((known / 2) ** 2 - (d0 / 2) ** 2, 0.0))
    sc = scenario_from_args(
        args,
        duration_s=1.0,
        n_nlos=0,
        tx_pos_m=(0.0, 0.0),
        rx_pos_m=(d0, 0.0),
        tag_pos_m=(d0 / 2, half),
    ).replace(mode="cw")
    return EmulatorSource(sc, get_profile(args.profile), chunk_samples=args.chunk_samples)


class _StreamSource:
    """A live IQ stream (``--connect``) seen as a source: settings from its first message."""

    name = "stream"

    def __init__(self, args: argparse.Namespace, timeout_s: float = 10.0):
        self.path = args.connect
        self._sub = IQSubscriber(args.connect, mode=args.socket, client_keys=client_keys_from_args(args))
        first = self._sub.recv(timeout_s=timeout_s)
        if first is None:
            self._sub.close()
            raise CliError(f"no IQ from {args.connect} within {timeout_s:g} s")
        self._first = first
        h = first.header
        self.waveform, self.sample_rate_hz = h.waveform, h.sample_rate_hz
        self.channels = [(c.band, c.rf_center_hz) for c in h.channels]

    def complex_chunks(self) -> Iterator[tuple]:
        msg, first = self._first, True
        while msg is not None:
            yield msg.complex64(), 0 if first else msg.lost_before
            first = False
            msg = self._sub.recv(timeout_s=5.0)

    def close(self) -> None:
        self._sub.close()


def _complex_chunks(source: IQSource) -> Iterator[tuple]:
    if isinstance(source, _StreamSource):
        yield from source.complex_chunks()
        return
    for chunk in source:
        iq = chunk_iq(chunk)
        yield (sc16_to_complex(iq) if iq.dtype.kind == "i" else iq), chunk.lost_before


def cmd_calibrate(args: argparse.Namespace) -> dict:
    if args.out.exists() and not args.force:
        raise CliError(f"{args.out} exists; refusing to overwrite without --force")
    d0 = args.tx_rx_distance_m
    if d0 is None:
        if args.source != "emulator":
            raise CliError("--tx-rx-distance-m is required: the direct path is the time reference")
        d0 = DEFAULT_TX_RX_M
    if not args.known_range_m > d0:
        raise CliError(f"--known-range-m {args.known_range_m} must exceed the TX-RX distance {d0} m")
    source = (
        _emulator_source(args, d0, args.known_range_m) if args.source == "emulator" else make_source(args)
    )
    duration_s = args.duration_s or 1.0
    pub = None
    try:
        if args.publish:
            try:
                pub = ResultPublisher(
                    args.publish, server_keys=server_keys_from_args(args), insecure=args.insecure
                )
            except (SecurityError, zmq.ZMQError) as exc:
                raise CliError(f"cannot publish on {args.publish}: {exc}") from None
        settings = settings_from_source(source)
        total = int(duration_s * settings.sample_rate_hz)

        def progress(fields: dict) -> None:
            if pub is not None:
                pub.send("calibration", fields, {})
            if args.progress_json:
                print(json.dumps(fields), flush=True)

        with progress_bar(total, "calibrate", enabled=not (args.json or args.progress_json)) as bar:

            def chunks() -> Iterator[tuple]:
                for iq, lost in _complex_chunks(source):
                    bar.update(iq.shape[1])
                    yield iq, lost

            try:
                cal = calibrate(
                    chunks(),
                    settings,
                    args.known_range_m,
                    d0,
                    duration_s,
                    progress=progress,
                    source=f"{source.name} ({getattr(source, 'path', '')})".replace(" ()", ""),
                )
            except CalibrationError as exc:
                if pub is not None:
                    pub.send("calibration", _final_fields("failed", str(exc)), {})
                raise CliError(str(exc)) from None
        save_calibration(args.out, cal, force=args.force)
        summary = {
            "file": str(args.out),
            "source": cal.source,
            "known_range_m": cal.known_range_m,
            "tx_rx_distance_m": cal.tx_rx_distance_m,
            "d_cal_m": cal.d_cal_m,
            "group_delay_s": cal.group_delay_s,
            "quality": cal.quality,
            "bands": [vars(b) for b in cal.settings.bands],
            "sample_rate_hz": cal.settings.sample_rate_hz,
        }
        done = _final_fields("done", f"saved {args.out}", cal)
        done["file"] = str(args.out)
        if pub is not None:
            pub.send("calibration", done, {})
        if args.progress_json:
            print(json.dumps(done), flush=True)
    finally:
        source.close()
        if pub is not None:
            pub.close()
    if args.json:
        print_json(summary)
    elif not args.progress_json:
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
    return summary


def _final_fields(state: str, message: str, cal=None) -> dict:
    q = cal.quality if cal is not None else {}
    return {
        "time_s": 0.0,
        "state": state,
        "progress": 1.0,
        "symbols": int(q.get("symbols", 0)),
        "group_delay_s": dict(cal.group_delay_s) if cal is not None else {},
        "ripple_deg": dict(q.get("ripple_deg", {})),
        "snr_db": dict(q.get("snr_db", {})),
        "d_cal_m": dict(cal.d_cal_m) if cal is not None else {},
        "file": None,
        "message": message,
    }


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="CW calibration: circuitry responses and d_cal per band, saved for replay/worker/demo",
    )
    p.add_argument("--source", choices=["emulator", "replay", "uhd", "stream"], default="emulator")
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
    _add_uhd_args(p)
    p.add_argument("--chunk-samples", type=int, default=DEFAULT_CHUNK_SAMPLES, help=argparse.SUPPRESS)
    p.add_argument("--publish", help="publish calibration progress on this results endpoint (for the GUI)")
    add_keys_arg(p, server=True)
    p.add_argument("--progress-json", action="store_true", help="print each progress update as a JSON line")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_calibrate)
