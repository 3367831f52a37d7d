"""Recorded double of the UHD Python API surface that ``sdr.uhd_source`` drives.

``UHDDouble.factory`` stands in for ``uhd.usrp.MultiUSRP``: it returns a
``FakeMultiUSRP`` whose ``get_rx_stream`` returns a ``FakeRXStreamer``. Both append
every call, as ``(name, args_as_passed)``, to one ordered list ``UHDDouble.calls``
so tests can assert the exact call sequence (the scikit-rf instrument-test habit).

``fake_uhd`` mirrors the names of the real module: ``types.StreamCMD``,
``types.StreamMode``, ``types.RXMetadata``, ``types.RXMetadataErrorCode``,
``types.TimeSpec``, ``types.TuneRequest``, ``types.SensorValue``,
``usrp.StreamArgs``, ``usrp.SubdevSpec``. They are minimal stand-ins even where
the real ``uhd`` imports: the real ``RXMetadata`` is filled by C++ only (its
fields are read-only from Python, so no Python double could fill it), and the
real ``StreamCMD`` / ``TuneRequest`` / ``StreamArgs`` / ``SubdevSpec`` compare by
identity, which would make call logs unassertable. Attribute and method names
are the real ones.

The streamer's ``recv`` plays ``UHDDouble.script``: a ``Packet`` fills the buffer
(split over several calls when longer than the buffer) with metadata time spec
``tick / rate``; an ``Event`` returns 0 samples with its error code. Before
``start_cont`` and once the script is exhausted, ``recv`` times out. After
``stop_cont`` it still delivers ``inflight_after_stop`` script items (samples in
flight), then times out.
"""

from __future__ import annotations

import copy
import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

Call = tuple[str, tuple[Any, ...]]


# ----- uhd.types stand-ins ---------------------------------------------------------
class TimeSpec:
    """``uhd.types.TimeSpec``: whole seconds plus a fractional part in [0, 1)."""

    __slots__ = ("_frac", "_full")

    def __init__(self, secs: float = 0.0, frac: float | None = None):
        if frac is None:
            full = math.floor(secs)
            frac = float(secs) - full
        else:
            full = int(secs)
        carry = math.floor(frac)
        self._full = int(full + carry)
        self._frac = float(frac - carry)

    @staticmethod
    def from_ticks(ticks: int, rate: float) -> TimeSpec:
        full = math.floor(ticks / rate)
        return TimeSpec(full, (ticks - full * rate) / rate)

    def get_full_secs(self) -> int:
        return self._full

    def get_frac_secs(self) -> float:
        return self._frac

    def get_real_secs(self) -> float:
        return self._full + self._frac

    def to_ticks(self, rate: float) -> int:
        return math.floor(self._full * rate + 0.5) + math.floor(self._frac * rate + 0.5)

    def __add__(self, other: float | TimeSpec) -> TimeSpec:
        if isinstance(other, TimeSpec):
            return TimeSpec(self._full + other._full, self._frac + other._frac)
        return TimeSpec(self._full, self._frac + float(other))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TimeSpec):
            return NotImplemented
        return self._full == other._full and math.isclose(self._frac, other._frac, abs_tol=1e-12)

    def __hash__(self) -> int:
        return hash((self._full, round(self._frac, 9)))

    def __repr__(self) -> str:
        return f"TimeSpec({self.get_real_secs()!r})"


class StreamMode(enum.Enum):
    start_cont = "a"
    stop_cont = "o"
    num_done = "d"
    num_more = "m"


class RXMetadataErrorCode(enum.Enum):
    none = 0x0
    timeout = 0x1
    late = 0x2
    broken_chain = 0x4
    overflow = 0x8
    alignment = 0xC
    bad_packet = 0xF


@dataclass
class StreamCMD:
    """``uhd.types.StreamCMD(mode)``; defaults as in ``uhd::stream_cmd_t``."""

    stream_mode: StreamMode
    num_samps: int = 0
    time_spec: TimeSpec = field(default_factory=TimeSpec)
    stream_now: bool = True


@dataclass(frozen=True)
class TuneRequest:
    target_freq: float
    lo_off: float = 0.0


@dataclass(frozen=True)
class SubdevSpec:
    markup: str


@dataclass
class StreamArgs:
    cpu_format: str
    otw_format: str
    args: str = ""
    channels: list[int] = field(default_factory=list)


@dataclass
class SensorValue:
    name: str
    value: bool
    unit: str = ""

    def to_bool(self) -> bool:
        return bool(self.value)


class RXMetadata:
    """``uhd.types.RXMetadata``: filled by ``recv``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.has_time_spec = False
        self.time_spec = TimeSpec(0.0)
        self.more_fragments = False
        self.start_of_burst = False
        self.end_of_burst = False
        self.error_code = RXMetadataErrorCode.none
        self.out_of_sequence = False

    def strerror(self) -> str:
        """The text of ``uhd::rx_metadata_t::strerror()`` (UHD ``host/lib/types/metadata.cpp``)."""
        if self.error_code is RXMetadataErrorCode.overflow:
            why = "(Out of sequence error)" if self.out_of_sequence else "(Overflow)"
            return "ERROR_CODE_OVERFLOW " + why
        return UHD_STRERROR[self.error_code]


# uhd::rx_metadata_t::strerror() as UHD returns it (host/lib/types/metadata.cpp); overflow is
# "ERROR_CODE_OVERFLOW (Overflow)" or "ERROR_CODE_OVERFLOW (Out of sequence error)"
UHD_STRERROR = {
    RXMetadataErrorCode.none: "ERROR_CODE_NONE",
    RXMetadataErrorCode.timeout: "ERROR_CODE_TIMEOUT",
    RXMetadataErrorCode.late: "ERROR_CODE_LATE_COMMAND",
    RXMetadataErrorCode.broken_chain: "ERROR_CODE_BROKEN_CHAIN (Expected another stream command)",
    RXMetadataErrorCode.alignment: "ERROR_CODE_ALIGNMENT (Multi-channel alignment failed)",
    RXMetadataErrorCode.bad_packet: "ERROR_CODE_BAD_PACKET",
}


def _no_sim_device(args: str) -> None:
    raise RuntimeError("fake_uhd has no device: pass UHDDouble.factory as usrp_factory")


fake_uhd = SimpleNamespace(
    types=SimpleNamespace(
        TimeSpec=TimeSpec,
        StreamMode=StreamMode,
        StreamCMD=StreamCMD,
        RXMetadata=RXMetadata,
        RXMetadataErrorCode=RXMetadataErrorCode,
        TuneRequest=TuneRequest,
        SensorValue=SensorValue,
    ),
    usrp=SimpleNamespace(MultiUSRP=_no_sim_device, StreamArgs=StreamArgs, SubdevSpec=SubdevSpec),
)


# ----- script ----------------------------------------------------------------------
@dataclass
class Packet:
    """Samples ``[channel, sample]`` (complex; integer-valued for sc16) starting at ``tick``
    (sample index at the RX rate; ``None``: no time spec)."""

    samples: np.ndarray
    tick: int | None


@dataclass
class Event:
    """A metadata-only recv result: ``code`` is an ``RXMetadataErrorCode`` name."""

    code: str
    out_of_sequence: bool = False
    tick: int | None = None


def packets(iq: np.ndarray, per_packet: int, start_tick: int) -> list[Packet]:
    """Split ``iq`` ``[channel, sample]`` into contiguous packets of ``per_packet`` samples."""
    return [Packet(iq[:, k : k + per_packet], start_tick + k) for k in range(0, iq.shape[1], per_packet)]


# ----- devices -----------------------------------------------------------------------
class UHDDouble:
    """Scripted USRP: hand ``factory`` to ``UHDSource`` as ``usrp_factory``, and ``fake_uhd``."""

    def __init__(
        self,
        script: Iterable[Packet | Event] = (),
        *,
        ref_locked: Sequence[bool] = (True,),
        lo_locked: dict[int, Sequence[bool]] | None = None,
        rx_rate_actual_hz: float | None = None,
        time_now_s: float = 1.25,
        max_num_samps: int = 2000,
        inflight_after_stop: int = 1,
        mboard_sensor_names: Sequence[str] = ("ref_locked", "temp_fpga"),
        rx_sensor_names: Sequence[str] = ("lo_locked", "temperature"),
    ):
        self.calls: list[Call] = []
        self.script: list[Packet | Event] = list(script)
        self.ref_locked = list(ref_locked)
        self.lo_locked = {k: list(v) for k, v in (lo_locked or {}).items()}
        self.rx_rate_actual_hz = rx_rate_actual_hz
        self.time_now_s = time_now_s
        self.max_num_samps = max_num_samps
        self.inflight_after_stop = inflight_after_stop
        self.mboard_sensor_names = list(mboard_sensor_names)
        self.rx_sensor_names = list(rx_sensor_names)
        self.rate_hz = 0.0
        self.usrp: FakeMultiUSRP | None = None
        self.streamer: FakeRXStreamer | None = None

    def factory(self, device_args: str) -> FakeMultiUSRP:
        self.calls.append(("MultiUSRP", (device_args,)))
        self.usrp = FakeMultiUSRP(self)
        return self.usrp

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def calls_named(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.calls if n == name]

    def log(self, name: str, args: tuple[Any, ...], lo: int, hi: int) -> None:
        if not lo <= len(args) <= hi:
            raise TypeError(f"{name}() takes {lo} to {hi} arguments, got {len(args)}")
        self.calls.append((name, copy.deepcopy(args)))


def _next(values: list[bool]) -> bool:
    """Scripted sensor readings: consume one per read, the last one repeats."""
    return values.pop(0) if len(values) > 1 else values[0]


class FakeMultiUSRP:
    """The ``uhd.usrp.MultiUSRP`` methods ``UHDSource`` uses; positional args as passed are logged."""

    def __init__(self, double: UHDDouble):
        self._d = double

    def set_clock_source(self, *a: Any) -> None:
        self._d.log("set_clock_source", a, 1, 2)

    def set_time_source(self, *a: Any) -> None:
        self._d.log("set_time_source", a, 1, 2)

    def get_mboard_sensor_names(self, *a: Any) -> list[str]:
        self._d.log("get_mboard_sensor_names", a, 0, 1)
        return list(self._d.mboard_sensor_names)

    def get_mboard_sensor(self, *a: Any) -> SensorValue:
        self._d.log("get_mboard_sensor", a, 1, 2)
        if a[0] != "ref_locked":
            raise KeyError(a[0])
        return SensorValue("ref_locked", _next(self._d.ref_locked))

    def set_rx_subdev_spec(self, *a: Any) -> None:
        self._d.log("set_rx_subdev_spec", a, 1, 2)

    def set_rx_rate(self, *a: Any) -> None:
        self._d.log("set_rx_rate", a, 1, 2)
        self._d.rate_hz = float(a[0])

    def get_rx_rate(self, *a: Any) -> float:
        self._d.log("get_rx_rate", a, 0, 1)
        return self._d.rx_rate_actual_hz if self._d.rx_rate_actual_hz is not None else self._d.rate_hz

    def set_rx_freq(self, *a: Any) -> None:
        self._d.log("set_rx_freq", a, 1, 2)
        if not isinstance(a[0], TuneRequest):
            raise TypeError("set_rx_freq expects a TuneRequest")

    def set_rx_gain(self, *a: Any) -> None:
        self._d.log("set_rx_gain", a, 1, 3)

    def set_rx_antenna(self, *a: Any) -> None:
        self._d.log("set_rx_antenna", a, 1, 2)

    def get_rx_sensor_names(self, *a: Any) -> list[str]:
        self._d.log("get_rx_sensor_names", a, 0, 1)
        return list(self._d.rx_sensor_names)

    def get_rx_sensor(self, *a: Any) -> SensorValue:
        self._d.log("get_rx_sensor", a, 1, 2)
        chan = a[1] if len(a) > 1 else 0
        return SensorValue(a[0], _next(self._d.lo_locked.setdefault(chan, [True])))

    def set_time_now(self, *a: Any) -> None:
        self._d.log("set_time_now", a, 1, 2)

    def set_time_next_pps(self, *a: Any) -> None:
        self._d.log("set_time_next_pps", a, 1, 2)

    def set_time_unknown_pps(self, *a: Any) -> None:
        self._d.log("set_time_unknown_pps", a, 1, 1)

    def get_time_now(self, *a: Any) -> TimeSpec:
        self._d.log("get_time_now", a, 0, 1)
        return TimeSpec(self._d.time_now_s)

    def get_rx_stream(self, *a: Any) -> FakeRXStreamer:
        self._d.log("get_rx_stream", a, 1, 1)
        self._d.streamer = FakeRXStreamer(self._d, len(a[0].channels) or 1)
        return self._d.streamer

    def get_usrp_rx_info(self, *a: Any) -> dict[str, str]:
        self._d.log("get_usrp_rx_info", a, 0, 1)
        return {"mboard_id": "x410", "mboard_serial": "3271A5E", "rx_id": "ZBX (0x4002)", "rx_serial": "8000"}


class FakeRXStreamer:
    """``uhd.usrp.RXStreamer``: ``recv`` plays the double's script."""

    def __init__(self, double: UHDDouble, num_channels: int):
        self._d = double
        self.num_channels = num_channels
        self.state = "idle"  # idle -> streaming -> draining
        self._inflight = 0

    def get_num_channels(self) -> int:
        self._d.log("get_num_channels", (), 0, 0)
        return self.num_channels

    def get_max_num_samps(self) -> int:
        self._d.log("get_max_num_samps", (), 0, 0)
        return self._d.max_num_samps

    def issue_stream_cmd(self, *a: Any) -> None:
        self._d.log("issue_stream_cmd", a, 1, 1)
        mode = a[0].stream_mode
        if mode is StreamMode.start_cont:
            self.state = "streaming"
        elif mode is StreamMode.stop_cont and self.state == "streaming":
            self.state = "draining"
            self._inflight = self._d.inflight_after_stop

    def recv(self, buffer: np.ndarray, metadata: RXMetadata, timeout: float = 0.1) -> int:
        self._d.calls.append(("recv", (buffer.shape, timeout)))
        if buffer.ndim != 2 or buffer.shape[0] < self.num_channels:
            raise RuntimeError(f"Number of RX channels ({self.num_channels}) does not match the buffer")
        metadata.reset()
        script = self._d.script
        live = self.state == "streaming" or (self.state == "draining" and self._inflight > 0)
        if not live or not script:
            metadata.error_code = RXMetadataErrorCode.timeout
            return 0
        item = script[0]
        if isinstance(item, Event):
            script.pop(0)
            self._consumed()
            metadata.error_code = RXMetadataErrorCode[item.code]
            metadata.out_of_sequence = item.out_of_sequence
            if item.tick is not None:
                metadata.has_time_spec = True
                metadata.time_spec = TimeSpec.from_ticks(item.tick, self._d.rate_hz)
            return 0
        n = min(item.samples.shape[1], buffer.shape[1])
        self._write(buffer, item.samples[:, :n])
        if item.tick is not None:
            metadata.has_time_spec = True
            metadata.time_spec = TimeSpec.from_ticks(item.tick, self._d.rate_hz)
        if n < item.samples.shape[1]:
            rest_tick = None if item.tick is None else item.tick + n
            script[0] = Packet(item.samples[:, n:], rest_tick)
        else:
            script.pop(0)
            self._consumed()
        return n

    def _consumed(self) -> None:
        """One script item delivered; after ``stop_cont`` it counts against the in-flight ones."""
        if self.state == "draining":
            self._inflight -= 1

    def _write(self, buffer: np.ndarray, samples: np.ndarray) -> None:
        n = samples.shape[1]
        rows = samples.shape[0]
        if buffer.dtype == np.complex64:
            buffer[:rows, :n] = samples
        elif buffer.dtype.names == ("re", "im"):
            buffer["re"][:rows, :n] = np.real(samples)
            buffer["im"][:rows, :n] = np.imag(samples)
        else:
            raise TypeError(f"unsupported buffer dtype {buffer.dtype}")
