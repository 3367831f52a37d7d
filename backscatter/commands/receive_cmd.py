"""``replay`` and ``demo``: the receiver on a capture file or on the built-in emulator."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

from app.replay import replay_capture, replay_summary
from app.run import Run, receive, summarise
from app.session import ReceiverSettings, emulated_radio, open_receiver
from backscatter.commands.captures_cmd import add_scenario_args, scenario_from_args
from backscatter.output import CliError, print_json, progress_bar
from captures.results_io import write_results
from dsp.ranging import REGISTRY
from dsp.waveform import get_profile
from sdr.emulator.emulator import Emulator


def add_receiver_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", action="append", choices=sorted(REGISTRY), help="ranging method (repeatable)")
    p.add_argument(
        "--tx-rx-distance-m", type=float, help="known TX-RX distance d_0 (default: from the truth)"
    )
    p.add_argument(
        "--tag-mode", choices=["burst", "cw"], help="tag mode (default: from the truth, else burst)"
    )
    p.add_argument("--receiver-config", type=Path, help="JSON of ReceiverConfig keys")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def add_calibration_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--calibration", type=Path, help="calibration file from `backscatter calibrate`")
    g.add_argument(
        "--truth-calibration",
        action="store_true",
        help="divide out the emulator's true circuitry responses (emulated captures only)",
    )


def print_human(s: dict, title: str) -> None:
    print(
        f"{title}: {s['duration_s']:.3g} s of {len(s['bands'])} bands in {s['processing_s']:.2f} s "
        f"({s['realtime_factor']:.1f}x real time)"
    )
    sent = s["packets_sent"] if s["packets_sent"] is not None else "?"
    ber = f"{s['ber']:.2e}" if s["ber"] is not None else "n/a"
    print(
        f"  packets: {s['packets_detected']} detected of {sent} sent, {s['crc_ok']} CRC ok, "
        f"BER {ber} ({s['bit_errors']}/{s['bits']} bits)"
    )
    for m, r in s["range_m"].items():
        err = f", error {s['range_error_m'][m]:+.3f} m" if s.get("range_error_m") else ""
        flag = f"  IMPLAUSIBLE: {s['implausible'][m]}" if m in s.get("implausible", {}) else ""
        print(f"  range {m:16s} {r:8.3f} m{err}{flag}" if r is not None else f"  range {m}: none")
    if s["range_true_m"] is not None:
        print(f"  range true             {s['range_true_m']:8.3f} m")
    drift = s.get("timing_drift_ppm") or {}
    if drift.get("prior") is not None:
        meas = drift.get("measured")
        print(
            f"  sample-clock drift      {drift['prior']:+.3f} ppm (CFO / fc)"
            + (f", measured {meas:+.3f} ppm" if meas is not None else "")
            + (", timing locked" if drift.get("locked") else "")
        )
    snr = ", ".join(f"{b} {v:.1f} dB" for b, v in s["snr_db"].items() if v is not None)
    cfo = ", ".join(f"{b} {v:+.1f} Hz" for b, v in s["cfo_hz"].items())
    print(f"  SNR per subcarrier: {snr}")
    print(f"  CFO: {cfo}")
    if s["ebn0_db"] is not None:
        print(f"  tag Eb/N0 (eq. 103): {s['ebn0_db']:.1f} dB")
    for g in s["gaps"]:
        print(f"  gap: {g['samples_lost']} samples lost before sample {g['index']} (resynchronised)")
    d = s.get("direct_path")
    if d is not None and d["stale"]:
        print(
            f"  warning: the direct path moved {d['delay_change_s'] * 1e9:+.2f} ns "
            f"(shape {d['residual_deg']:.1f} deg) from {d['first_stale_s']:.2f} s on: "
            "a retune? a calibration made before is stale"
        )


def report(summary: dict, as_json: bool, title: str) -> dict:
    if as_json:
        print_json(summary)
    else:
        print_human(summary, title)
    return summary


def replay_file(path: Path, args: argparse.Namespace, progress: bool = True) -> tuple[dict, Run]:
    """The receiver over one capture, as ``replay`` runs it: its summary and the run."""
    return replay_capture(
        path, ReceiverSettings.from_args(args), lambda total: progress_bar(total, "replay", enabled=progress)
    )


def cmd_replay(args: argparse.Namespace) -> dict:
    from experiments.replay import expand_captures

    target = str(args.capture)
    files = [target] if Path(target).is_file() else expand_captures(target)
    if len(files) > 1 or args.scheduler:
        return cmd_replay_many(files, args)
    summary, run = replay_file(Path(files[0]), args, progress=not args.json)
    if args.results:
        write_results(args.results, run, summary, force=args.force)
        summary["results"] = str(args.results)
    return report(summary, args.json, f"replay {files[0]}")


def cmd_replay_many(files: list[str], args: argparse.Namespace) -> dict:
    """``replay DIR_OR_GLOB``: one task per file on the sweep engine, summaries merged."""
    from experiments.replay import replay_many

    if args.results:
        raise CliError("--results is for one capture; with many files use one replay per file")
    settings = ReceiverSettings.from_args(args)
    merged = replay_many(files, partial(replay_summary, settings=settings), args.scheduler, not args.json)
    if args.json:
        print_json(merged)
        return merged
    ber = f"{merged['ber']:.2e}" if merged.get("ber") is not None else "n/a"
    print(
        f"replay of {merged['files']} captures, {merged['duration_s']:.3g} s of signal in "
        f"{merged['elapsed_s']:.1f} s: {merged['packets_detected']} of {merged['packets_sent']} packets "
        f"detected, {merged['crc_ok']} CRC ok, BER {ber} ({merged['bit_errors']}/{merged['bits']} bits)"
    )
    for m, r in (merged.get("range_rmse_m") or {}).items():
        print(f"  range RMSE {m:16s} {r:8.3f} m over {merged['ranging_epochs']} epochs")
    for f in merged.get("failed", []):
        print(f"  failed: {f}")
    return merged


def cmd_demo(args: argparse.Namespace) -> dict:
    wf = get_profile(args.profile)
    sc = scenario_from_args(args, duration_s=0.5, n_nlos=0, snr_lower_db=-20.0, snr_upper_db=-20.0, seed=1)
    emu = Emulator(wf, sc)
    truth = emu.truth
    settings = ReceiverSettings.from_args(args)
    if settings.calibration is None:  # the demo's default: the emulator's true circuitry
        settings = settings.replace(truth_calibration=True)
    radio = emulated_radio(emu.wf, sc.bands, emu.rate_hz)  # the emulator delivers the capture rate
    rx = open_receiver(settings, radio, truth=truth, mode=sc.mode, where="the demo's emulated radio")
    blocks = [(b.iq, b.lost_before) for b in emu.blocks()]
    with progress_bar(emu.n_total, "demo", enabled=not args.json) as bar:
        run: Run = receive(rx, blocks, emu.wf, sc.duration_s, truth, bar.update)
    summary = summarise(run)
    summary["scenario"] = sc.to_dict()
    summary["calibration"] = settings.calibration_note
    return report(summary, args.json, f"demo (seed {sc.seed}, {sc.mode} mode, {sc.n_nlos} NLoS paths)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="decode and range a capture file (or many: a directory or a glob)")
    p.add_argument("capture", type=Path, help="capture file, directory of captures, or a quoted glob")
    p.add_argument(
        "--scheduler", help="dask scheduler for many files (default: a local cluster), e.g. tcp://host:8786"
    )
    add_receiver_args(p)
    p.add_argument("--results", type=Path, help="write every packet and ranging epoch to this HDF5 file")
    p.add_argument("--force", action="store_true", help="overwrite --results")
    add_calibration_args(p)
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("demo", help="emulate the default scenario and receive it (no files needed)")
    add_scenario_args(p)
    add_receiver_args(p)
    p.add_argument(
        "--calibration", type=Path, help="calibration file (default: the emulator's true circuitry responses)"
    )
    p.set_defaults(func=cmd_demo)
