"""Command-line flags of the GNU Radio adapter (``sdr.transport.gnuradio``) for ``worker``, ``record``
and ``stream``.

Input (``worker``, ``record``): ``--gnuradio BAND=ENDPOINT`` once per band instead of
``--connect``; the rate and RF centres come from ``--radio-config`` (a RadioConfig JSON), else
from ``--capture-rate-hz`` / ``--rf-center-hz BAND=HZ``, else from the waveform ``--profile``.
Output (``stream``): ``--gnuradio-bind BAND=ENDPOINT`` once per band of the source.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import zmq

from backscatter.output import CliError
from dsp.config_base import ConfigError
from dsp.waveform import PROFILES, get_profile
from sdr.radio_config import load_radio_config
from sdr.security import SecurityError
from sdr.transport import IQ_FORMATS
from sdr.transport.gnuradio import GnuRadioConfig, GnuRadioPublisher, GnuRadioSubscriber
from sdr.transport.gr_align import ALIGN_MODES


def _pairs(values: list[str] | None, flag: str) -> list[tuple[str, str]]:
    out = []
    for v in values or []:
        band, sep, rest = v.partition("=")
        if not sep or not band or not rest:
            raise CliError(f"{flag} takes BAND=VALUE (e.g. central=tcp://127.0.0.1:5601), got {v!r}")
        out.append((band, rest))
    return out


def add_gnuradio_input_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("GNU Radio input (ZMQ sinks of a flowgraph, instead of --connect)")
    g.add_argument(
        "--gnuradio",
        action="append",
        metavar="BAND=ENDPOINT",
        help="a GNU Radio ZMQ PUB/PUSH sink of one band (central, lower, upper); one per band",
    )
    g.add_argument(
        "--gnuradio-socket",
        choices=["sub", "pull"],
        default="pull",
        help="sub for pub_sink, pull for push_sink",
    )
    g.add_argument(
        "--gnuradio-format",
        choices=IQ_FORMATS,
        default="fc32",
        help="fc32: complex float32 items; sc16: int16 I/Q pairs (short, vlen 2)",
    )
    g.add_argument("--gnuradio-tags", action="store_true", help="the sinks pass tags (pass_tags=True)")
    g.add_argument(
        "--gnuradio-align",
        choices=ALIGN_MODES,
        default="auto",
        help="time: by rx_time tags; offset: by tag-header item offsets; count: by items received "
        "(no tags: PULL, worker started before the flowgraph); auto: time, else offset, else count",
    )
    g.add_argument("--radio-config", type=Path, help="RadioConfig JSON: the rate and the bands' RF centres")
    g.add_argument(
        "--capture-rate-hz",
        "--sample-rate-hz",
        dest="capture_rate_hz",
        type=float,
        help="capture rate (default: the profile's); --sample-rate-hz is its old name",
    )
    g.add_argument(
        "--rf-center-hz",
        action="append",
        metavar="BAND=HZ",
        help="RF centre of a band (default: the profile's)",
    )
    g.add_argument(
        "--profile", default="default", choices=sorted(PROFILES), help="transmitted waveform profile"
    )


def gnuradio_subscriber_from_args(args: argparse.Namespace) -> GnuRadioSubscriber | None:
    """The subscriber ``--gnuradio`` asks for, or ``None`` without it."""
    endpoints = _pairs(args.gnuradio, "--gnuradio")
    if not endpoints:
        return None
    if getattr(args, "connect", None):
        raise CliError("give either --connect (our stream) or --gnuradio (GNU Radio sinks), not both")
    wf = get_profile(args.profile)
    rate, centres = wf.capture_rate_hz, dict(wf.band_centers_hz)
    if args.radio_config is not None:
        try:
            rc = load_radio_config(args.radio_config)
        except (OSError, ValueError) as exc:
            raise CliError(f"{args.radio_config}: {exc}") from None
        rate, centres = rc.rate_hz, {c.band: c.rf_center_hz for c in rc.channels}
    if args.capture_rate_hz is not None:
        rate = args.capture_rate_hz
    for band, hz in _pairs(args.rf_center_hz, "--rf-center-hz"):
        try:
            centres[band] = float(hz)
        except ValueError:
            raise CliError(f"--rf-center-hz {band}={hz}: not a frequency in Hz") from None
    if args.gnuradio_socket == "sub" and not args.gnuradio_tags:
        print(
            "warning: SUB sockets without tag headers: the bands are aligned on each socket's first "
            "message and ZeroMQ's drops go unseen; pass tags (pass_tags=True, --gnuradio-tags) "
            "or use PUSH/PULL",
            file=sys.stderr,
            flush=True,
        )
    missing = [b for b, _ in endpoints if b not in centres]
    if missing:
        raise CliError(f"no RF centre for band(s) {missing}: give --rf-center-hz BAND=HZ")
    try:
        cfg = GnuRadioConfig(
            endpoints=tuple(endpoints),
            rf_centers_hz=tuple(centres[b] for b, _ in endpoints),
            capture_rate_hz=rate,
            socket=args.gnuradio_socket,
            item_format=args.gnuradio_format,
            tags=args.gnuradio_tags,
            align=args.gnuradio_align,
        )
        return GnuRadioSubscriber(cfg, wf, insecure=getattr(args, "insecure", False))
    except (ConfigError, SecurityError) as exc:
        raise CliError(str(exc)) from None
    except zmq.ZMQError as exc:
        raise CliError(f"cannot connect the GNU Radio endpoints {endpoints}: {exc}") from None


def add_gnuradio_output_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("GNU Radio output (ZMQ sources of a flowgraph, beside --bind)")
    g.add_argument(
        "--gnuradio-bind",
        action="append",
        metavar="BAND=ENDPOINT",
        help="also publish this band for a GNU Radio ZMQ SUB/PULL source; one per band",
    )
    g.add_argument(
        "--gnuradio-socket",
        choices=["pub", "push"],
        default="push",
        help="pub for sub_source, push for pull_source",
    )
    g.add_argument(
        "--gnuradio-format", choices=IQ_FORMATS, default="fc32", help="item format (fc32: complex)"
    )
    g.add_argument(
        "--gnuradio-tags",
        action="store_true",
        help="prefix tag headers (rx_time, rx_rate, rx_freq): set pass_tags=True on the sources",
    )


def gnuradio_publisher_from_args(
    args: argparse.Namespace, capture_rate_hz: float, channels: list[tuple[str, float]]
) -> GnuRadioPublisher | None:
    """The publisher ``--gnuradio-bind`` asks for (one endpoint per source channel), or ``None``."""
    endpoints = dict(_pairs(args.gnuradio_bind, "--gnuradio-bind"))
    if not endpoints:
        return None
    bands = [b for b, _ in channels]
    if sorted(endpoints) != sorted(bands):
        raise CliError(
            f"--gnuradio-bind needs one endpoint for each band of the source {bands}, got {sorted(endpoints)}"
        )
    try:
        cfg = GnuRadioConfig(
            endpoints=tuple((b, endpoints[b]) for b in bands),
            rf_centers_hz=tuple(f for _, f in channels),
            capture_rate_hz=capture_rate_hz,
            socket=args.gnuradio_socket,
            item_format=args.gnuradio_format,
            tags=args.gnuradio_tags,
            align="offset" if args.gnuradio_tags else "count",
        )
        return GnuRadioPublisher(cfg, insecure=args.insecure)
    except (ConfigError, SecurityError) as exc:
        raise CliError(str(exc)) from None
    except zmq.ZMQError as exc:
        raise CliError(f"cannot bind the GNU Radio endpoints {endpoints}: {exc}") from None
