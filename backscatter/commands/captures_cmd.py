"""``emulate``, ``info`` and ``export-sigmf``."""

from __future__ import annotations

import argparse
from pathlib import Path

from backscatter.output import CliError, print_json, progress_bar
from captures.reader import open_capture
from captures.sigmf_export import export_sigmf
from dsp.config_base import ConfigError
from dsp.waveform import PROFILES, get_profile
from sdr.emulator.capture import write_emulated_capture
from sdr.emulator.scenario import ScenarioConfig
from sdr.scenario_args import scenario_from_args as read_scenario


def add_scenario_args(p: argparse.ArgumentParser) -> None:
    """Flags shared by every command that emulates a scenario."""
    p.add_argument("--profile", default="default", choices=sorted(PROFILES), help="waveform profile")
    p.add_argument("--scenario", type=Path, help="scenario JSON (ScenarioConfig keys); flags override it")
    p.add_argument("--seed", type=int, help="random seed (geometry, offsets, data, noise)")
    p.add_argument("--duration-s", type=float, help="capture length in seconds")
    p.add_argument(
        "--snr-db", type=float, help="side-band (tag link) SNR per subcarrier on the active subcarriers, dB"
    )
    p.add_argument("--central-snr-db", type=float, help="central-band (direct path) SNR per subcarrier, dB")
    p.add_argument("--paths", type=int, help="number of NLoS paths (scatterers) per channel")
    p.add_argument("--mode", choices=["cw", "burst"], help="tag mode")
    p.add_argument(
        "--circuitry-seed",
        type=int,
        help="seed of the radio's circuitry (the same hardware across scenarios)",
    )
    p.add_argument(
        "--ideal",
        action="store_true",
        help="switch every emulator impairment off (sample-clock drift, ...): the bare model",
    )


def scenario_from_args(args: argparse.Namespace, **defaults: object) -> ScenarioConfig:
    """The scenario of the scenario flags over ``defaults`` (``sdr.scenario_args``), its
    errors as ``CliError``."""
    try:
        return read_scenario(args, **defaults)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def cmd_emulate(args: argparse.Namespace) -> dict:
    wf = get_profile(args.profile)
    sc = scenario_from_args(args)
    if args.out.exists() and not args.force:
        raise CliError(f"{args.out} exists; refusing to overwrite without --force")
    n_total = round(sc.duration_s * wf.capture_rate_hz)  # the emulator writes the capture rate
    with progress_bar(n_total, "emulate", enabled=not args.json) as bar:
        emu = write_emulated_capture(args.out, wf, sc, args.datatype, overwrite=True, progress=bar.update)
    summary = {"file": str(args.out), "samples": n_total, "bands": list(sc.bands), **emu.truth.scalars()}
    if args.json:
        print_json(summary)
    else:
        t = emu.truth
        print(
            f"wrote {args.out}: {sc.duration_s:g} s, {len(sc.bands)} bands, "
            f"{len(t.packet_start_sample)} packets, "
            f"range {t.range_true_m:.2f} m (TX-RX {t.tx_rx_distance_m:.2f} m)"
        )
    return summary


def capture_summary(path: Path) -> dict:
    with open_capture(path) as cap:
        wf = cap.waveform
        out = {
            "file": str(path),
            "format_version": cap.format_version,
            "datatype": cap.datatype,
            "capture_rate_hz": cap.capture_rate_hz,
            "samples": cap.n_samples,
            "duration_s": cap.duration_s,
            "datetime": cap.datetime,
            "description": cap.description,
            "channels": [dict(vars(c)) for c in cap.channels],
            "waveform": wf.to_dict(),
            "gaps": {"count": len(cap.gaps), "samples_lost": int(cap.gaps[:, 1].sum())},
            "truth": None,
        }
        truth = cap.truth()
        if truth is not None:
            out["truth"] = truth.scalars()
    return out


def cmd_info(args: argparse.Namespace) -> dict:
    s = capture_summary(args.capture)
    if args.json:
        print_json(s)
        return s
    print(
        f"{s['file']}: format v{s['format_version']}, {s['datatype']}, {s['capture_rate_hz'] / 1e6:g} MS/s, "
        f"{s['samples']} samples ({s['duration_s']:.4g} s)"
    )
    w = s["waveform"]
    print(
        f"  waveform profile {w['profile']}: N = {w['fft_size']}, subcarriers "
        f"{w['subcarrier_min']}..{w['subcarrier_max']}, fc {w['carrier_freq_hz'] / 1e6:g} MHz"
    )
    for c in s["channels"]:
        mhz = c["center_freq_hz"] / 1e6
        print(f"  {c['band']:8s} {mhz:9.3f} MHz  gain {c['gain_db']:5.1f} dB  antenna {c['antenna']}")
    print(f"  gaps: {s['gaps']['count']} ({s['gaps']['samples_lost']} samples lost)")
    if s["truth"]:
        t = s["truth"]
        print(
            f"  truth: range {t['range_true_m']:.3f} m, TX-RX {t['tx_rx_distance_m']:.3f} m, "
            f"{t['packets']} packets, LO {t['lo_ppm']:.2f} ppm, tag clock {t['tag_clock_ppm']:.1f} ppm"
        )
    return s


def cmd_export_sigmf(args: argparse.Namespace) -> dict:
    path = export_sigmf(args.capture, args.dir)
    out = {"collection": str(path)}
    if args.json:
        print_json(out)
    else:
        print(f"wrote SigMF collection {path}")
    return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("emulate", help="emulate a scenario into an HDF5 capture")
    add_scenario_args(p)
    p.add_argument("--out", type=Path, required=True, help="capture file to write (.h5)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.add_argument("--datatype", default="ci16_le", choices=["ci16_le", "cf32_le"])
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=cmd_emulate)

    p = sub.add_parser("info", help="validate a capture and summarise it")
    p.add_argument("capture", type=Path)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("export-sigmf", help="export a capture as a SigMF collection")
    p.add_argument("capture", type=Path)
    p.add_argument("dir", type=Path)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export_sigmf)
