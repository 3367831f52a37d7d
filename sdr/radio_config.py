"""Radio (USRP X410) receive configuration: one frozen, validated dataclass per concern.

``RadioConfig`` describes one multi-channel RX session: the device, its master
clock, the clock / time references, the subdevice mapping and one
``ChannelConfig`` per band (SYSTEM.md section 1: the central band at the carrier,
the lower / upper side bands at ``-/+`` the tag shift frequency). All channels
share one sample rate, which must be the master clock rate divided by an
integer decimation. Nothing here talks to hardware; ``sdr.uhd_source`` does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Self

from dsp.bands import BANDS
from dsp.config_base import ConfigBase, ConfigError
from dsp.waveform import WaveformConfig

#: master clock rates of the X410 (ZBX) images this project supports, Hz
MASTER_CLOCK_RATES_HZ = (245.76e6, 250e6)
REF_SOURCES = ("internal", "external", "gpsdo")
CPU_FORMATS = ("sc16", "fc32")
#: X410 + ZBX RF ports in the order channels are assigned to them
DEFAULT_SUBDEVS = ("A:0", "A:1", "B:0", "B:1")
DEFAULT_ANTENNA = "RX1"
#: upper bound of channels * samples in one chunk (sdr/MESSAGES.md MAX_SAMPLES)
MAX_CHUNK_ELEMENTS = 2**24


def _is_integer_ratio(num: float, den: float) -> bool:
    ratio = num / den
    return round(ratio) >= 1 and abs(ratio - round(ratio)) <= 1e-9 * ratio


@dataclass(frozen=True)
class ChannelConfig(ConfigBase):
    """One RX channel: the band it observes and its RF settings.

    ``rf_center_hz`` is the tuned RF centre, ``rate_hz`` the channel's sample rate
    after the DDC, ``gain_db`` the overall RX gain and ``antenna`` the port name
    (ZBX: ``"RX1"`` or ``"TX/RX0"``).
    """

    band: str = "central"
    rf_center_hz: float = 915e6
    rate_hz: float = 30.72e6
    gain_db: float = 30.0
    antenna: str = DEFAULT_ANTENNA

    def _validate(self) -> None:
        if self.band not in BANDS:
            self._fail("band", f"must be one of {list(BANDS)}")
        if not (math.isfinite(self.rf_center_hz) and self.rf_center_hz > 0):
            self._fail("rf_center_hz", "must be a positive finite frequency in Hz")
        if not (math.isfinite(self.rate_hz) and self.rate_hz > 0):
            self._fail("rate_hz", "must be a positive finite sample rate in Hz")
        if not math.isfinite(self.gain_db):
            self._fail("gain_db", "must be a finite gain in dB")
        if not self.antenna.strip():
            self._fail("antenna", "must name an antenna port (e.g. 'RX1')")


def _default_channels() -> tuple[ChannelConfig, ...]:
    wf = WaveformConfig()
    centers = wf.band_centers_hz
    return tuple(ChannelConfig(band=b, rf_center_hz=centers[b], rate_hz=wf.capture_rate_hz) for b in BANDS)


@dataclass(frozen=True)
class RadioConfig(ConfigBase):
    """A multi-channel, phase-aligned RX session on one USRP.

    * ``device_args``: UHD device address without ``master_clock_rate`` (e.g.
      ``"addr=192.168.10.2"``); the master clock rate is a device argument on the
      X410 and is appended from ``master_clock_rate_hz`` (see ``device_args_full``).
    * ``subdev_spec``: one entry per channel, in channel order (``"A:0 A:1 B:0"``).
    * ``clock_source`` / ``time_source``: reference (10 MHz) and PPS sources.
    * ``cpu_format``: host sample format. ``sc16`` (default) keeps the 16-bit wire
      format end to end (half the memory traffic of ``fc32``, and what the wire
      protocol and capture files carry); ``fc32`` gives complex64 scaled to 1.0.
    * ``start_delay_s``: the timed start is issued this long after "now" on the
      device clock, so every channel starts on the same sample.
    * ``recv_timeout_s``: timeout of one ``recv`` call; ``max_timeouts`` consecutive
      timeouts end the stream with an error. Keep their product near a second: the
      streamer looks for SIGINT / SIGTERM between chunks.
    * ``lock_timeout_s``: bound on the wait for ``ref_locked`` / ``lo_locked``.
    * ``samples_per_chunk``: samples per channel asked for in one ``recv``.
    * ``max_late_restarts``: timed starts re-issued after "late command" errors.
    """

    device_args: str = ""
    master_clock_rate_hz: float = 245.76e6
    subdev_spec: str = "A:0 A:1 B:0"
    channels: tuple[ChannelConfig, ...] = field(default_factory=_default_channels)
    clock_source: str = "internal"
    time_source: str = "internal"
    cpu_format: str = "sc16"
    start_delay_s: float = 0.5
    recv_timeout_s: float = 0.2
    max_timeouts: int = 5
    lock_timeout_s: float = 5.0
    samples_per_chunk: int = 65536
    max_late_restarts: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", _coerce_channels(self.channels))
        super().__post_init__()

    def _validate(self) -> None:
        if "master_clock_rate" in self.device_args.replace(" ", ""):
            self._fail("device_args", "must not set master_clock_rate; use master_clock_rate_hz")
        if not any(math.isclose(self.master_clock_rate_hz, r, rel_tol=1e-12) for r in MASTER_CLOCK_RATES_HZ):
            self._fail(
                "master_clock_rate_hz", "must be 245.76e6 or 250e6 Hz (the X410 master clock rates supported)"
            )
        for name in ("clock_source", "time_source"):
            if getattr(self, name) not in REF_SOURCES:
                self._fail(name, f"must be one of {list(REF_SOURCES)}")
        if self.cpu_format not in CPU_FORMATS:
            self._fail("cpu_format", f"must be one of {list(CPU_FORMATS)}")
        self._validate_channels()
        entries = self.subdev_spec.split()
        if len(entries) != len(self.channels):
            self._fail(
                "subdev_spec",
                f"has {len(entries)} entries but there are {len(self.channels)} channels; "
                "give one entry (e.g. 'A:0') per channel, in channel order",
            )
        if len(set(entries)) != len(entries):
            self._fail("subdev_spec", "lists a subdevice more than once")
        for e in entries:
            slot, _, fe = e.partition(":")
            if not (len(slot) == 1 and slot.isalpha() and slot.isupper() and fe):
                self._fail("subdev_spec", f"entry {e!r} is not of the form 'A:0'")
        for name, lo, hi in (
            ("start_delay_s", 0.0, 60.0),
            ("recv_timeout_s", 0.0, 60.0),
            ("lock_timeout_s", 0.0, 600.0),
        ):
            v = getattr(self, name)
            if not (math.isfinite(v) and lo < v <= hi):
                self._fail(name, f"must be in ({lo:g}, {hi:g}] s")
        if not (1 <= self.max_timeouts <= 10_000):
            self._fail("max_timeouts", "must be in [1, 10000]")
        if not (0 <= self.max_late_restarts <= 100):
            self._fail("max_late_restarts", "must be in [0, 100]")
        n_ch = len(self.channels)
        if not (1 <= self.samples_per_chunk <= MAX_CHUNK_ELEMENTS // n_ch):
            self._fail(
                "samples_per_chunk", f"must be in [1, {MAX_CHUNK_ELEMENTS // n_ch}] for {n_ch} channels"
            )

    def _validate_channels(self) -> None:
        if not self.channels:
            self._fail("channels", "must list at least the central band")
        seen: dict[str, int] = {}
        for i, ch in enumerate(self.channels):
            if ch.band in seen:
                raise ConfigError(
                    f"RadioConfig.channels[{i}].band = {ch.band!r}: duplicate band "
                    f"(already channel {seen[ch.band]}); each band may appear once"
                )
            seen[ch.band] = i
        if "central" not in seen:
            bands = [ch.band for ch in self.channels]
            raise ConfigError(
                f"RadioConfig.channels: bands {bands} lack 'central'; the central band is the "
                "time and phase reference and must be received"
            )
        rate0 = self.channels[0].rate_hz
        for i, ch in enumerate(self.channels[1:], start=1):
            if ch.rate_hz != rate0:
                raise ConfigError(
                    f"RadioConfig.channels[{i}].rate_hz = {ch.rate_hz!r}: all channels must share one "
                    f"rate; channel 0 has {rate0!r} Hz"
                )
        mcr = self.master_clock_rate_hz
        if not _is_integer_ratio(mcr, rate0):
            dec = mcr / rate0
            near = sorted({max(1, math.floor(dec)), math.ceil(dec)})
            hint = ", ".join(f"{mcr / d:.6g} Hz (/{d})" for d in near)
            raise ConfigError(
                f"RadioConfig.channels[0].rate_hz = {rate0!r}: master_clock_rate_hz {mcr:.6g} Hz / "
                f"{rate0:.6g} Hz = {dec:.6g} is not an integer decimation; nearest valid rates: {hint}"
            )

    # ----- derived -----------------------------------------------------------
    @property
    def rate_hz(self) -> float:
        """The common sample rate of every channel, Hz."""
        return self.channels[0].rate_hz

    @property
    def decimation(self) -> int:
        """Master clock rate / sample rate (an integer by validation)."""
        return round(self.master_clock_rate_hz / self.rate_hz)

    @property
    def bands(self) -> tuple[str, ...]:
        return tuple(ch.band for ch in self.channels)

    @property
    def subdevs(self) -> tuple[str, ...]:
        return tuple(self.subdev_spec.split())

    @property
    def device_args_full(self) -> str:
        """``device_args`` with ``master_clock_rate=...`` appended (what MultiUSRP is given)."""
        mcr = f"master_clock_rate={self.master_clock_rate_hz:.12g}"
        args = self.device_args.strip().strip(",")
        return f"{args},{mcr}" if args else mcr

    # ----- serialisation ---------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["channels"] = [ch.to_dict() for ch in self.channels]
        return out

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=indent)

    @classmethod
    def from_json_file(cls, path: str | PathLike[str]) -> Self:
        """Load from a JSON file; errors name the file and the field."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: cannot read the radio configuration: {exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{p}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from None
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{p}: {exc}") from None

    def save_json(self, path: str | PathLike[str]) -> None:
        Path(path).write_text(self.to_json(indent=2) + "\n", encoding="utf-8")


def _coerce_channels(value: Any) -> tuple[ChannelConfig, ...]:
    """Channels from ``ChannelConfig`` objects or mappings (JSON); errors name the index."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise ConfigError(f"RadioConfig.channels: expected a list of channel objects, got {value!r}")
    out = []
    for i, ch in enumerate(value):
        if isinstance(ch, ChannelConfig):
            out.append(ch)
            continue
        if not isinstance(ch, Mapping):
            raise ConfigError(f"RadioConfig.channels[{i}]: expected an object, got {ch!r}")
        try:
            out.append(ChannelConfig.from_dict(ch))
        except ConfigError as exc:
            raise ConfigError(f"RadioConfig.channels[{i}]: {exc}") from None
    return tuple(out)


def load_radio_config(path: str | PathLike[str]) -> RadioConfig:
    """``RadioConfig.from_json_file``."""
    return RadioConfig.from_json_file(path)


def master_clock_rate_for(rate_hz: float) -> float:
    """The X410 master clock rate that reaches ``rate_hz`` by an integer decimation.

    245.76 MHz is preferred (30.72 MS/s = /8), 250 MHz otherwise (62.5 MS/s = /4).
    """
    for mcr in MASTER_CLOCK_RATES_HZ:
        if _is_integer_ratio(mcr, rate_hz):
            return mcr
    raise ConfigError(
        f"capture_rate_hz = {rate_hz!r}: no X410 master clock rate "
        f"({', '.join(f'{r:.6g}' for r in MASTER_CLOCK_RATES_HZ)} Hz) divides to an integer decimation "
        "(e.g. 30.72e6 = 245.76e6 / 8, 62.5e6 = 250e6 / 4)"
    )


def radio_config_for(
    wf: WaveformConfig,
    center_freq_hz: float | None = None,
    gain_db: float | Mapping[str, float] = 30.0,
    *,
    bands: Iterable[str] = BANDS,
    device_args: str = "",
    antenna: str = DEFAULT_ANTENNA,
    subdev_spec: str | None = None,
    **overrides: Any,
) -> RadioConfig:
    """Radio configuration that receives waveform ``wf``.

    The central channel is tuned to ``center_freq_hz`` (default: the waveform's
    carrier), the lower / upper channels to ``-/+ wf.tag_shift_hz`` from it; every
    channel runs at ``wf.capture_rate_hz`` with the master clock that divides it
    (250 MHz for 62.5 MS/s, 245.76 MHz for 30.72 MS/s). ``gain_db`` is one gain for
    every channel or a ``{band: gain_db}`` mapping. Channels take the subdevices
    ``A:0 A:1 B:0 B:1`` in order unless ``subdev_spec`` is given. ``overrides`` are
    further ``RadioConfig`` fields (``clock_source``, ``start_delay_s``, ...).
    """
    center = wf.carrier_freq_hz if center_freq_hz is None else float(center_freq_hz)
    offsets = {"central": 0.0, "lower": -wf.tag_shift_hz, "upper": wf.tag_shift_hz}
    bands = tuple(bands)
    for b in bands:
        if b not in offsets:
            raise ConfigError(f"radio_config_for: unknown band {b!r}; bands are {list(BANDS)}")
    if isinstance(gain_db, Mapping):
        missing = [b for b in bands if b not in gain_db]
        if missing:
            raise ConfigError(f"radio_config_for: gain_db has no value for band(s) {missing}")
        gains = {b: float(gain_db[b]) for b in bands}
    else:
        gains = dict.fromkeys(bands, float(gain_db))
    rate = wf.capture_rate_hz
    channels = tuple(
        ChannelConfig(
            band=b, rf_center_hz=center + offsets[b], rate_hz=rate, gain_db=gains[b], antenna=antenna
        )
        for b in bands
    )
    if subdev_spec is None:
        if len(channels) > len(DEFAULT_SUBDEVS):
            raise ConfigError(
                f"radio_config_for: {len(channels)} channels but only {len(DEFAULT_SUBDEVS)} ports"
            )
        subdev_spec = " ".join(DEFAULT_SUBDEVS[: len(channels)])
    return RadioConfig(
        device_args=device_args,
        master_clock_rate_hz=master_clock_rate_for(rate),
        subdev_spec=subdev_spec,
        channels=channels,
        **overrides,
    )
