"""Command-line side of the UHD source: the ``stream --source uhd`` flags and ``make_uhd_source``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dsp.waveform import get_profile
from sdr.radio_config import BANDS, REF_SOURCES, load_radio_config, radio_config_for
from sdr.uhd_source import UHDSource
from sdr.uhd_support import waveform_for_radio

DEFAULT_GAIN_DB = 30.0


def add_uhd_args(p: argparse.ArgumentParser) -> None:
    """Flags of ``stream --source uhd`` (``--profile`` comes from the scenario flags)."""
    g = p.add_argument_group("radio (--source uhd)")
    g.add_argument("--radio-config", type=Path, help="RadioConfig JSON; replaces the other radio flags")
    g.add_argument("--center-freq-hz", type=float, help="carrier / central band (default: the profile's)")
    g.add_argument("--gain-db", type=float, help=f"RX gain of every channel (default {DEFAULT_GAIN_DB:g})")
    g.add_argument("--device-args", default="", help="UHD device args, e.g. addr=192.168.10.2")
    g.add_argument("--clock-source", choices=REF_SOURCES, help="10 MHz reference (default internal)")
    g.add_argument("--time-source", choices=REF_SOURCES, help="PPS source (default internal)")
    g.add_argument("--antenna", help="RX antenna port of every channel (default RX1)")
    g.add_argument(
        "--rx-bands", nargs="+", choices=BANDS, help="bands to receive (default: central lower upper)"
    )


def make_uhd_source(args: Any) -> UHDSource:
    """Build a ``UHDSource`` from ``stream --source uhd`` arguments (nothing is opened).

    Either ``args.radio_config`` (path to a ``RadioConfig`` JSON; the waveform
    profile ``args.profile`` then takes its carrier, tag shift and capture rate
    from the radio's channels), or ``args.profile`` + ``args.center_freq_hz``
    (default: the profile's carrier) + ``args.gain_db`` (default 30 dB) +
    ``args.device_args``. Optional attributes used when present and not ``None``:
    ``clock_source``, ``time_source``, ``antenna``, ``rx_bands``, ``cpu_format``;
    ``chunk_samples`` sets ``samples_per_chunk`` in both cases.
    """
    wf = get_profile(getattr(args, "profile", None) or "default")
    chunk = getattr(args, "chunk_samples", None)
    per_chunk = {} if chunk is None else {"samples_per_chunk": int(chunk)}
    path = getattr(args, "radio_config", None)
    if path:
        radio = load_radio_config(path)
        if per_chunk:
            radio = radio.replace(**per_chunk)
        return UHDSource(radio, waveform_for_radio(wf, radio))
    center = getattr(args, "center_freq_hz", None)
    if center is not None and float(center) != wf.carrier_freq_hz:
        wf = wf.replace(carrier_freq_hz=float(center))
    gain = getattr(args, "gain_db", None)
    extra: dict[str, Any] = dict(per_chunk)
    for name, key in (
        ("clock_source", "clock_source"),
        ("time_source", "time_source"),
        ("antenna", "antenna"),
        ("rx_bands", "bands"),
        ("cpu_format", "cpu_format"),
    ):
        value = getattr(args, name, None)
        if value is not None:
            extra[key] = value
    radio = radio_config_for(
        wf,
        wf.carrier_freq_hz,
        DEFAULT_GAIN_DB if gain is None else float(gain),
        device_args=getattr(args, "device_args", None) or "",
        **extra,
    )
    return UHDSource(radio, wf)
