"""The UHD source's command-line side and its source kind: the ``--source uhd`` flags
(:func:`add_uhd_args`, the one set every command that takes ``--source uhd`` uses), the typed
:class:`UHDSettings` read from them, the registered kind :class:`UHDKind` and
:func:`make_uhd_source`.

``sdr/uhd_source.py`` (the driver) is imported only when a source is opened, and never imports
this module.
"""

from __future__ import annotations

import argparse
import importlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from dsp.waveform import WaveformConfig, get_profile
from sdr.radio_config import BANDS, RadioConfig, load_radio_config, radio_config_for
from sdr.source_registry import SourceError, SourceKind, SourceSettings
from sdr.transport import IQ_FORMATS
from sdr.uhd_support import waveform_for_radio

if TYPE_CHECKING:
    from sdr.uhd_source import UHDSource

DEFAULT_GAIN_DB = 30.0


def add_uhd_args(p: argparse.ArgumentParser) -> None:
    """The ``--source uhd`` flags, in their own group (``--profile`` comes from the scenario
    flags, ``--chunk-samples`` from the command)."""
    g = p.add_argument_group("radio (--source uhd)")
    g.add_argument("--radio-config", type=Path, help="RadioConfig JSON (else --profile and the flags below)")
    g.add_argument("--center-freq-hz", type=float, help="carrier (default: the profile's)")
    g.add_argument("--gain-db", type=float, help="RX gain, dB")
    g.add_argument("--device-args", help="UHD device arguments, e.g. addr=192.168.10.2")
    g.add_argument("--clock-source", help="reference clock: internal, external, gpsdo")
    g.add_argument("--time-source", help="time source: internal, external, gpsdo")
    g.add_argument("--antenna", help="RX antenna port")
    g.add_argument("--cpu-format", choices=IQ_FORMATS, help="host sample format (default sc16)")
    g.add_argument(
        "--rx-bands", nargs="+", choices=BANDS, help="bands to receive (default: central lower upper)"
    )


@dataclass(frozen=True, kw_only=True)
class UHDSettings(SourceSettings):
    """A USRP as a source.

    Either ``radio_config`` (a ``RadioConfig`` JSON; the waveform ``profile`` then takes its
    carrier, tag shift and capture rate from the radio's channels), or ``profile`` +
    ``center_freq_hz`` (Hz, default the profile's carrier) + ``gain_db`` (dB, default
    :data:`DEFAULT_GAIN_DB`) + ``device_args`` and, when not ``None``, ``clock_source``,
    ``time_source``, ``antenna``, ``rx_bands`` and ``cpu_format``.  ``chunk_samples`` (when not
    ``None``) sets the radio's ``samples_per_chunk`` in both cases.
    """

    kind: ClassVar[str] = "uhd"
    profile: str = "default"
    radio_config: Path | None = None
    center_freq_hz: float | None = None
    gain_db: float | None = None
    device_args: str = ""
    clock_source: str | None = None
    time_source: str | None = None
    antenna: str | None = None
    rx_bands: tuple[str, ...] | None = None
    cpu_format: str | None = None
    chunk_samples: int | None = None

    @classmethod
    def from_args(cls, args: Any) -> UHDSettings:
        """From a parsed command line (:func:`add_uhd_args`); absent or ``None`` flags keep
        their defaults."""

        def get(name: str) -> Any:
            return getattr(args, name, None)

        path, center, gain, chunk, bands = (
            get("radio_config"),
            get("center_freq_hz"),
            get("gain_db"),
            get("chunk_samples"),
            get("rx_bands"),
        )
        return cls(
            profile=get("profile") or "default",
            radio_config=Path(path) if path else None,
            center_freq_hz=None if center is None else float(center),
            gain_db=None if gain is None else float(gain),
            device_args=get("device_args") or "",
            clock_source=get("clock_source"),
            time_source=get("time_source"),
            antenna=get("antenna"),
            rx_bands=None if bands is None else tuple(bands),
            cpu_format=get("cpu_format"),
            chunk_samples=None if chunk is None else int(chunk),
        )

    def radio(self) -> tuple[RadioConfig, WaveformConfig]:
        """The radio configuration and the waveform it receives (nothing is opened)."""
        wf = get_profile(self.profile)
        per_chunk = {} if self.chunk_samples is None else {"samples_per_chunk": self.chunk_samples}
        if self.radio_config is not None:
            radio = load_radio_config(self.radio_config)
            if per_chunk:
                radio = radio.replace(**per_chunk)
            return radio, waveform_for_radio(wf, radio)
        if self.center_freq_hz is not None and self.center_freq_hz != wf.carrier_freq_hz:
            wf = wf.replace(carrier_freq_hz=self.center_freq_hz)
        extra: dict[str, Any] = dict(per_chunk)
        for key, value in (
            ("clock_source", self.clock_source),
            ("time_source", self.time_source),
            ("antenna", self.antenna),
            ("bands", self.rx_bands),
            ("cpu_format", self.cpu_format),
        ):
            if value is not None:
                extra[key] = value
        gain = DEFAULT_GAIN_DB if self.gain_db is None else self.gain_db
        return radio_config_for(wf, wf.carrier_freq_hz, gain, device_args=self.device_args, **extra), wf


class UHDKind(SourceKind):
    """``--source uhd``: a live radio (never paced); its set-up and stream errors reach a user as
    ``--source uhd: ...``."""

    name = "uhd"
    Settings = UHDSettings
    live = True
    wrap_errors = (RuntimeError,)

    @classmethod
    def add_args(cls, p: argparse.ArgumentParser) -> None:
        add_uhd_args(p)

    @classmethod
    def settings_from_args(
        cls, args: Any, *, scenario_defaults: Mapping[str, object] | None = None
    ) -> UHDSettings:
        return UHDSettings.from_args(args)

    @classmethod
    def open(cls, settings: UHDSettings, stop: threading.Event | None = None) -> UHDSource:
        try:
            driver = importlib.import_module("sdr.uhd_source")
        except ImportError as exc:
            raise SourceError(
                "--source uhd needs sdr/uhd_source.py and the UHD Python bindings, which did not "
                f"import: {exc}"
            ) from None
        return driver.UHDSource(*settings.radio())


def make_uhd_source(args: Any) -> UHDSource:
    """A ``UHDSource`` from ``--source uhd`` arguments (see :class:`UHDSettings`; nothing is
    opened)."""
    return UHDKind.open(UHDSettings.from_args(args))
