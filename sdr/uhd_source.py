"""Live IQ from a USRP (X410 + ZBX) through UHD: one timed, phase-aligned multi-channel stream.

``UHDSource`` is a thin driver: its only side effects are UHD calls on the
``MultiUSRP`` and its ``RXStreamer``. The ``uhd`` module is imported only when a
source is opened (``open``, ``with``, or iteration), so the rest of the project
never needs it (Debian's ``python3-uhd`` is built against numpy 1.x). The errors,
``StreamEvent`` and ``import_uhd`` live in ``sdr.uhd_support`` (re-exported here); the
``--source uhd`` flags, ``make_uhd_source`` and the source kind in ``sdr.uhd_cli``, which
imports this module when a source is opened (this module never imports it).

Set-up order (``open``), and why:

1. ``MultiUSRP(device_args + ",master_clock_rate=...")``: on the X410 the master
   clock rate is a device argument (the RFSoC converters are configured when the
   device is made; changing it later re-initialises the radio).
2. ``set_clock_source``, ``set_time_source``, then wait for ``ref_locked`` (not
   for ``internal``): the reference clocks every LO, so it is settled before
   anything is tuned.
3. ``set_rx_subdev_spec``: it defines the channel -> RF-port mapping, so it comes
   before every per-channel setting.
4. ``set_rx_rate`` (all channels, then read back), per channel ``set_rx_freq``
   (``TuneRequest``), ``set_rx_gain``, ``set_rx_antenna``; then wait for each
   channel's ``lo_locked``.
5. Time: ``set_time_now(0)`` for an internal time source, ``set_time_unknown_pps(0)``
   (UHD waits for a PPS edge, sets the time at the next one and checks it) for
   ``external`` / ``gpsdo``.
6. One ``RXStreamer`` for all channels, ``sc16`` over the wire; the cpu format
   is ``RadioConfig.cpu_format``: ``sc16`` by default (no conversion, half the
   memory of fc32, and what the wire protocol and capture files carry) or ``fc32``.
7. ``start_cont`` with ``stream_now = False`` at ``now + start_delay_s`` on the
   device clock, so every channel starts on the same sample.

The source follows ``sdr.sources.IQSource`` and yields ``sdr.sources.Chunk``:
``iq`` is int16 ``[channel, sample, 2]`` (I, Q; full scale 32767) for ``sc16``, or
complex64 ``[channel, sample]`` (full scale 1.0) for ``fc32``, in a fresh array per
chunk; ``capture_index`` counts samples since the first received one, lost ones
included; ``time_s`` is the metadata time spec of the first sample;
``lost_before`` is the number lost just before it, from the time specs:
``lost = round((t_this - t_expected) * rate)`` where ``t_expected`` is the end of
the previous chunk.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Self

import numpy as np

from dsp.waveform import WaveformConfig, get_profile
from sdr.radio_config import RadioConfig
from sdr.sources import Chunk
from sdr.uhd_support import (
    INSTALL_HINT,
    NUMPY_ABI_MARKERS,
    StreamEvent,
    UHDError,
    UHDSetupError,
    UHDStreamError,
    UHDUnavailableError,
    check_radio_matches_waveform,
    import_uhd,
    waveform_for_radio,
)

__all__ = [
    "DRAIN_TIMEOUT_S",
    "INSTALL_HINT",
    "LOCK_POLL_S",
    "MAX_DRAIN_RECVS",
    "MAX_EVENTS",
    "NUMPY_ABI_MARKERS",
    "SC16_DTYPE",
    "WIRE_FORMAT",
    "StreamEvent",
    "UHDError",
    "UHDSetupError",
    "UHDSource",
    "UHDStreamError",
    "UHDUnavailableError",
    "check_radio_matches_waveform",
    "import_uhd",
    "waveform_for_radio",
]

log = logging.getLogger(__name__)

#: over-the-wire format (16-bit I/Q from the radio)
WIRE_FORMAT = "sc16"
#: numpy layout of one sc16 sample, as UHD's own Python examples use for recv buffers
SC16_DTYPE = np.dtype([("re", "<i2"), ("im", "<i2")])
#: events kept in ``UHDSource.events`` (oldest dropped first; ``event_counts`` keeps counting)
MAX_EVENTS = 10_000
LOCK_POLL_S = 0.01
DRAIN_TIMEOUT_S = 0.1
MAX_DRAIN_RECVS = 100  # in-flight data after stop_cont is a few packets


class UHDSource:
    """Phase-aligned multi-channel RX from one USRP; iterate to get ``sdr.sources.Chunk`` objects.

    ``usrp_factory(device_args) -> MultiUSRP`` defaults to ``uhd.usrp.MultiUSRP``;
    ``uhd_module`` is the namespace of UHD types (``types.StreamCMD``,
    ``usrp.StreamArgs``, ...), by default the real ``uhd``. ``sleep`` and ``clock``
    time the lock polls. Nothing touches the device before ``open()``.

    Attributes for the streamer (``sdr.sources.IQSource``): ``name``, ``is_live``,
    ``capture_rate_hz``, ``channels`` (``[(band, rf_center_hz)]``), ``waveform``; also
    ``format`` (``sc16`` / ``fc32``), ``events`` (``[StreamEvent]``), ``event_counts``
    (``Counter`` by kind), ``samples_lost`` and, once open, ``device_info``.
    ``stop()`` may be called from anywhere (a signal handler); ``close()`` from the
    thread that iterates, or after it.
    """

    name = "uhd"
    is_live = True

    def __init__(
        self,
        radio: RadioConfig,
        waveform: WaveformConfig | None = None,
        *,
        usrp_factory: Callable[[str], Any] | None = None,
        uhd_module: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        if waveform is None:
            waveform = waveform_for_radio(get_profile("default"), radio)
        check_radio_matches_waveform(radio, waveform)
        self.radio = radio
        self.waveform = waveform
        self.capture_rate_hz = radio.rate_hz
        self.channels: list[tuple[str, float]] = [(ch.band, ch.rf_center_hz) for ch in radio.channels]
        self.format = radio.cpu_format
        self.events: list[StreamEvent] = []
        self.event_counts: Counter[str] = Counter()
        self.samples_lost = 0
        self.device_info: dict[str, Any] = {}
        self._usrp_factory = usrp_factory
        self._uhd: Any = uhd_module
        self._sleep = sleep
        self._clock = clock
        self._usrp: Any = None
        self._streamer: Any = None
        self._md: Any = None
        self._dtype = SC16_DTYPE if self.format == "sc16" else np.dtype(np.complex64)
        self._streaming = False
        self._iterating = False
        self._stop_requested = False
        self._reset_stream_state()

    # ----- lifecycle ---------------------------------------------------------
    def open(self) -> None:
        """Make the device and configure it (idempotent); see the module docstring for the order."""
        if self._usrp is not None:
            return
        if self._uhd is None:
            self._uhd = import_uhd()
        uhd = self._uhd
        factory = self._usrp_factory if self._usrp_factory is not None else uhd.usrp.MultiUSRP
        usrp = factory(self.radio.device_args_full)
        try:
            self._configure(usrp)
        except BaseException:
            self._streamer = None
            raise
        self._usrp = usrp

    def stop(self) -> None:
        """Ask the receive loop to end; safe to call from a SIGINT / SIGTERM handler (sets a flag).

        The loop returns after the current ``recv`` (at most ``recv_timeout_s``),
        issuing ``stop_cont`` and draining the streamer. A stopped source stays stopped.
        """
        self._stop_requested = True

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    def close(self) -> None:
        """Stop streaming (``stop_cont`` + drain) and release the device."""
        self._stop_requested = True
        try:
            self._end_stream(suppress_errors=False)
        finally:
            self._streamer = None
            self._usrp = None

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
            return
        try:
            self.close()
        except Exception as cleanup_exc:
            self._record("stop_error", detail=repr(cleanup_exc))

    def __iter__(self) -> Iterator[Chunk]:
        """Open if needed, start the timed stream and yield chunks until ``stop()``."""
        if self._iterating:
            raise RuntimeError("UHDSource is already being iterated")
        self._iterating = True
        try:
            if self._stop_requested:
                return
            self.open()
            self._reset_stream_state()
            self._issue_start()
            while not self._stop_requested:
                chunk = self._recv_once()
                if chunk is not None:
                    yield chunk
        except BaseException:
            self._end_stream(suppress_errors=True)
            raise
        else:
            self._end_stream(suppress_errors=False)
        finally:
            self._iterating = False

    # ----- set-up ------------------------------------------------------------
    def _configure(self, usrp: Any) -> None:
        uhd, radio = self._uhd, self.radio
        n = len(radio.channels)
        usrp.set_clock_source(radio.clock_source)
        usrp.set_time_source(radio.time_source)
        if radio.clock_source != "internal" and "ref_locked" in usrp.get_mboard_sensor_names(0):
            self._wait_locked(
                lambda: usrp.get_mboard_sensor("ref_locked", 0).to_bool(),
                f"reference ({radio.clock_source}) ref_locked",
            )
        usrp.set_rx_subdev_spec(uhd.usrp.SubdevSpec(radio.subdev_spec))
        usrp.set_rx_rate(radio.rate_hz)
        for i in range(n):
            actual = float(usrp.get_rx_rate(i))
            if not math.isclose(actual, radio.rate_hz, rel_tol=1e-9):
                raise UHDSetupError(
                    f"channel {i} runs at {actual!r} Hz instead of rate_hz {radio.rate_hz!r} Hz "
                    f"(master clock {radio.master_clock_rate_hz!r} Hz): check the FPGA image / master clock"
                )
        for i, ch in enumerate(radio.channels):
            usrp.set_rx_freq(uhd.types.TuneRequest(ch.rf_center_hz), i)
            usrp.set_rx_gain(ch.gain_db, i)
            usrp.set_rx_antenna(ch.antenna, i)
        for i, ch in enumerate(radio.channels):
            if "lo_locked" in usrp.get_rx_sensor_names(i):
                self._wait_locked(
                    lambda i=i: usrp.get_rx_sensor("lo_locked", i).to_bool(),
                    f"channel {i} ({ch.band}, {ch.rf_center_hz:.9g} Hz) lo_locked",
                )
        if radio.time_source == "internal":
            usrp.set_time_now(uhd.types.TimeSpec(0.0))
        else:
            usrp.set_time_unknown_pps(uhd.types.TimeSpec(0.0))
        st_args = uhd.usrp.StreamArgs(radio.cpu_format, WIRE_FORMAT)
        st_args.channels = list(range(n))
        self._streamer = usrp.get_rx_stream(st_args)
        self._md = uhd.types.RXMetadata()
        info = dict(usrp.get_usrp_rx_info(0))
        self.device_info = {
            "max_num_samps": int(self._streamer.get_max_num_samps()),
            "mboard_serial": str(info.get("mboard_serial", "")),
            "mboard_id": str(info.get("mboard_id", "")),
            "rx_info": {str(k): str(v) for k, v in info.items()},
        }

    def _wait_locked(self, read: Callable[[], Any], what: str) -> None:
        timeout = self.radio.lock_timeout_s
        deadline = self._clock() + timeout
        while True:
            if bool(read()):
                return
            if self._clock() >= deadline:
                break
            self._sleep(LOCK_POLL_S)
        raise UHDSetupError(
            f"{what}: not locked after {timeout:g} s (lock_timeout_s); check the reference / PPS "
            "cabling and the clock_source / time_source settings"
        )

    # ----- streaming ---------------------------------------------------------
    def _reset_stream_state(self) -> None:
        self._next_capture_index = 0
        self._expected_ticks: int | None = None
        self._expected_time_s = 0.0
        self._consecutive_timeouts = 0
        self._late_restarts = 0
        self._awaiting_first = True

    def _issue_start(self) -> None:
        uhd = self._uhd
        now = self._usrp.get_time_now()
        cmd = uhd.types.StreamCMD(uhd.types.StreamMode.start_cont)
        cmd.stream_now = False
        cmd.time_spec = uhd.types.TimeSpec(now.get_real_secs() + self.radio.start_delay_s)
        self._streamer.issue_stream_cmd(cmd)
        self._streaming = True
        self._awaiting_first = True

    def _recv_once(self) -> Chunk | None:
        n = len(self.channels)
        buf = np.empty((n, self.radio.samples_per_chunk), self._dtype)
        timeout = self.radio.recv_timeout_s
        if self._awaiting_first:
            timeout += self.radio.start_delay_s
        md = self._md
        num = int(self._streamer.recv(buf, md, timeout))
        chunk = self._make_chunk(buf, num, md) if num > 0 else None
        self._handle_metadata(md, num)
        return chunk

    def _make_chunk(self, buf: np.ndarray, num: int, md: Any) -> Chunk:
        rate = self.capture_rate_hz
        lost = 0
        if md.has_time_spec:
            ticks = int(md.time_spec.to_ticks(rate))
            time_s = float(md.time_spec.get_real_secs())
            if self._expected_ticks is not None:
                gap = ticks - self._expected_ticks
                if gap > 0:
                    lost = gap
                elif gap < 0:
                    self._record("time_error", time_s=time_s, detail=f"time spec {-gap} samples early")
        else:
            ticks = self._expected_ticks if self._expected_ticks is not None else 0
            time_s = self._expected_time_s
        first = self._next_capture_index + lost
        if lost:
            self.samples_lost += lost
            self._record("lost", capture_index=first, time_s=time_s, samples_lost=lost)
        self._next_capture_index = first + num
        self._expected_ticks = ticks + num
        self._expected_time_s = time_s + num / rate
        iq = buf if num == buf.shape[1] else np.ascontiguousarray(buf[:, :num])
        if self.format == "sc16":
            iq = iq.view(np.int16).reshape(iq.shape[0], num, 2)
        return Chunk(iq=iq, capture_index=first, time_s=time_s, lost_before=lost)

    def _handle_metadata(self, md: Any, num: int) -> None:
        codes = self._uhd.types.RXMetadataErrorCode
        code = md.error_code
        if num > 0:
            self._consecutive_timeouts = 0
            self._awaiting_first = False
        if code == codes.none:
            return
        t = float(md.time_spec.get_real_secs()) if md.has_time_spec else None
        if code == codes.timeout:
            if num == 0:
                self._consecutive_timeouts += 1
            self._record(
                "timeout", time_s=t, detail=f"{self._consecutive_timeouts}/{self.radio.max_timeouts}"
            )
            if self._consecutive_timeouts >= self.radio.max_timeouts:
                raise UHDStreamError(
                    f"no samples for {self._consecutive_timeouts} consecutive recv timeouts of "
                    f"{self.radio.recv_timeout_s:g} s (max_timeouts); is the device streaming and the "
                    "network link up?"
                )
        elif code == codes.overflow:
            # out_of_sequence: packets lost on the transport, not a radio overrun
            self._record("sequence_error" if md.out_of_sequence else "overflow", time_s=t)
        elif code == codes.late:
            self._record("late_command", time_s=t)
            self._late_restarts += 1
            if self._late_restarts > self.radio.max_late_restarts:
                raise UHDStreamError(
                    f"the timed start was late {self._late_restarts} times (max_late_restarts "
                    f"{self.radio.max_late_restarts}); increase start_delay_s "
                    f"({self.radio.start_delay_s:g} s)"
                )
            self._issue_start()
        else:
            kind = getattr(code, "name", str(code))
            if kind not in ("broken_chain", "alignment", "bad_packet"):
                kind = "error"
            self._record(kind, time_s=t, detail=_strerror(md))

    def _end_stream(self, *, suppress_errors: bool) -> None:
        """``stop_cont`` and drain what is in flight (idempotent)."""
        if not self._streaming or self._streamer is None:
            return
        self._streaming = False
        try:
            uhd = self._uhd
            self._streamer.issue_stream_cmd(uhd.types.StreamCMD(uhd.types.StreamMode.stop_cont))
            codes = uhd.types.RXMetadataErrorCode
            buf = np.empty((len(self.channels), self.radio.samples_per_chunk), self._dtype)
            md = self._md
            for _ in range(MAX_DRAIN_RECVS):
                num = int(self._streamer.recv(buf, md, min(DRAIN_TIMEOUT_S, self.radio.recv_timeout_s)))
                if num == 0 and md.error_code in (codes.timeout, codes.none):
                    break
        except Exception as exc:
            if not suppress_errors:
                raise
            self._record("stop_error", detail=repr(exc))

    def _record(
        self,
        kind: str,
        *,
        capture_index: int | None = None,
        time_s: float | None = None,
        samples_lost: int = 0,
        detail: str = "",
    ) -> None:
        first = self._next_capture_index if capture_index is None else capture_index
        self.events.append(StreamEvent(kind, first, time_s, samples_lost, detail))
        if len(self.events) > MAX_EVENTS:
            del self.events[: len(self.events) - MAX_EVENTS]
        self.event_counts[kind] += 1
        if self.event_counts[kind] == 1:
            log.warning("UHD stream event %s at sample %d %s", kind, first, detail)
        else:
            log.debug("UHD stream event %s at sample %d %s", kind, first, detail)


def _strerror(md: Any) -> str:
    try:
        return str(md.strerror())
    except Exception:
        return ""
