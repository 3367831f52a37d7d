"""The streaming DSP worker: IQ messages in, receiver results out (a thin shell around ``dsp``).

A reader thread takes IQ messages off the subscriber (so ZeroMQ keeps draining while the
receiver works) into a bounded queue; the calling thread runs the :class:`~dsp.receiver.Receiver`
and publishes every result (``sdr/MESSAGES.md``), plus ``health`` each second and a ``spectrum``
twice a second.  A new stream id or a changed stream set-up (rate, channels, waveform) starts a
new receiver; a sequence or sample gap is passed to the receiver, which resynchronises and
reports it.  Latency is measured per result: from the arrival of the message holding the newest
sample the result depends on, to its publication.

With ``ranging_processes`` the ranging methods of each epoch run in that many other processes
(:mod:`sdr.ranging_pool`) while the receiver goes on; epochs are published in order once ranged,
and the real-time factor is that of the slower stage (receiver or ranging).

What it reports (counters, ``health``, ``spectrum``, the stream state, the summary) is
:mod:`sdr.worker_report`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import queue
import threading
import time
from bisect import bisect_right
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dsp.receiver import Receiver
from dsp.results import BlockStats, GapEvent, PacketResult, RangingEpoch
from sdr.control import ControlServer, WorkerSettings
from sdr.ranging_pool import RangingPool
from sdr.results_wire import result_to_wire
from sdr.transport import IQHeader, IQMessage, IQSubscriber, ResultPublisher
from sdr.worker_report import WorkerReports, WorkerStats


def _malloc_trim() -> Callable[[], None]:
    """glibc's ``malloc_trim(0)``, or a no-op where there is none (musl, macOS).

    IQ messages are allocated in ZeroMQ's I/O thread and freed in the worker's thread; after a
    backlog (dozens of 3 MB messages queued at once) glibc keeps the freed memory in its arenas,
    so the resident size stays at the backlog's high-water mark for the rest of the run.
    Trimming once a second when the queue is empty (about 1 ms) hands it back.
    """
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int

    def release() -> None:
        trim(0)

    return release


release_free_memory = _malloc_trim()


@dataclass
class _Arrivals:
    """Capture-rate end index and arrival time of recent messages, to time results."""

    ends: deque = field(default_factory=lambda: deque(maxlen=4096))

    def add(self, end_index: int, t: float) -> None:
        self.ends.append((end_index, t))

    def arrival_of(self, index: float) -> float | None:
        """Arrival time of the first message whose samples reach ``index`` (ends only grow
        within one run, so a binary search: a scan of 4096 entries per result cost 5 % of the
        worker's time)."""
        i = bisect_right(self.ends, index, key=lambda e: e[0])
        return self.ends[i][1] if i < len(self.ends) else None


class StreamWorker(WorkerReports):
    """Runs receivers over an IQ subscription and publishes their results.

    ``make_receiver(header)`` builds a receiver for a stream's set-up (it may raise
    ``ValueError`` for a stream it cannot receive: that stream's messages are then counted
    as dropped with reason ``unreceivable``).
    """

    def __init__(
        self,
        sub: IQSubscriber,
        pub: ResultPublisher,
        make_receiver: Callable[[IQHeader], Receiver],
        *,
        queue_max: int = 64,
        queue_max_bytes: int = 1 << 30,
        health_period_s: float = 1.0,
        spectrum_period_s: float = 0.5,
        status: Callable[[dict], None] | None = None,
        control: ControlServer | None = None,
        on_settings: Callable[[WorkerSettings], bool] | None = None,
        ranging_processes: int = 0,
    ):
        self.sub, self.pub, self.make_receiver = sub, pub, make_receiver
        # ranging methods in other processes (sdr.ranging_pool; 0: on the receiver's thread)
        self.ranging_processes = ranging_processes
        self._ranging: RangingPool | None = None
        self.health_period_s, self.spectrum_period_s = health_period_s, spectrum_period_s
        self.status = status
        # settings from the GUI (sdr/control.py): applied by rebuilding the receiver
        self.control, self.on_settings = control, on_settings
        self._rebuild = False
        self.stats = WorkerStats()
        self._q: queue.Queue = queue.Queue(maxsize=queue_max)
        # a byte budget too: 64 valid messages may each be 384 MiB; the reader waits (and
        # ZeroMQ's own bounded queue then fills, the sender dropping or blocking) past either
        self.queue_max_bytes = queue_max_bytes
        self._queued_bytes = 0
        self._queued_samples = 0  # per channel, capture rate: the backlog behind the receiver
        self._in_hand_samples = 0  # the reader's message not yet queued
        self._queued_lock = threading.Lock()
        self._rx: Receiver | None = None
        self._header: IQHeader | None = None
        self._first_index = 0  # capture index of the receiver's first sample
        self._arrivals = _Arrivals()
        self._last_rx_t: float | None = None  # arrival of the newest message read (reader thread)
        self._in_hand = False  # the reader holds a message not yet queued (converting, or waiting)
        self._unreceivable: Counter = Counter()
        self._reader_error: BaseException | None = None
        self._stream_time_s = 0.0  # stream time just after the newest sample processed

    # ----- reader thread --------------------------------------------------------------------------
    def _read(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                msg = self.sub.recv(timeout_s=0.1)
                if msg is None:
                    continue
                t_rx = time.monotonic()
                self._in_hand_samples = msg.header.n_samples
                self._in_hand = True
                self._last_rx_t = t_rx
                t_conv = time.perf_counter()
                iq = self._samples(msg)
                self.stats.convert_s += time.perf_counter() - t_conv
                item = (msg, iq, t_rx)
                nbytes = iq.nbytes
                while not stop.is_set():
                    with self._queued_lock:
                        fits = self._queued_bytes == 0 or self._queued_bytes + nbytes <= self.queue_max_bytes
                    if not fits:
                        time.sleep(0.005)
                        continue
                    try:
                        self._q.put(item, timeout=0.1)
                    except queue.Full:
                        continue
                    with self._queued_lock:
                        self._queued_bytes += nbytes
                        self._queued_samples += msg.header.n_samples
                        self._in_hand_samples = 0
                    break
                self._in_hand = False
        except BaseException as exc:  # surfaced by run(); the worker must not die silently
            self._reader_error = exc
            stop.set()

    # ----- main loop ------------------------------------------------------------------------------
    def run(
        self, stop: threading.Event, *, idle_exit_s: float | None = None, duration_s: float | None = None
    ) -> dict:
        """Work until ``stop`` is set, ``idle_exit_s`` passes without IQ after some, or ``duration_s``."""
        reader = threading.Thread(target=self._read, args=(stop,), name="iq-reader", daemon=True)
        if self.ranging_processes > 0 and self._ranging is None:
            self._ranging = RangingPool(self.ranging_processes)
        reader.start()
        t_start = time.monotonic()
        next_health = t_start + self.health_period_s
        next_spectrum = t_start
        period = {"samples": 0, "busy_s": 0.0, "ranging_from_s": 0.0, "caught_up": False}
        try:
            while not stop.is_set():
                now = time.monotonic()
                if duration_s is not None and now - t_start >= duration_s:
                    break
                # idle: nothing read for idle_exit_s and nothing queued (a backlog behind a slow
                # receiver is not idleness)
                last_rx = self._last_rx_t
                # (nor is a message the reader still converts: the first sc16 conversion loads
                # numba's compiled kernel, seconds on a loaded machine)
                idle = idle_exit_s is not None and last_rx is not None and now - last_rx > idle_exit_s
                if idle and self._q.empty() and not self._in_hand:
                    break
                if self._ranging is not None and len(self._ranging):
                    self._emit_ranged(self._ranging.collect(), None)
                try:
                    msg, iq, t_arrival = self._q.get(timeout=0.01 if self._ranging_waits() else 0.05)
                    with self._queued_lock:
                        self._queued_bytes -= iq.nbytes
                        self._queued_samples -= msg.header.n_samples
                        # the newest IQ read is in hand: the receiver has caught up once this period
                        period["caught_up"] |= self._queued_samples == 0 and not self._in_hand
                except queue.Empty:
                    msg = None
                    period["caught_up"] = True
                if msg is not None:
                    busy = self._process(msg, iq, t_arrival)
                    del iq  # the receiver's own views keep what it still needs
                    period["samples"] += msg.header.n_samples
                    period["busy_s"] += busy
                    if time.monotonic() >= next_spectrum:
                        self._publish_spectrum(msg)
                        next_spectrum = time.monotonic() + self.spectrum_period_s
                if self.control is not None:
                    self._poll_control()
                now = time.monotonic()
                if now >= next_health:
                    if self._q.empty():
                        release_free_memory()
                    self._publish_health(now, period)
                    period = {
                        "samples": 0,
                        "busy_s": 0.0,
                        "ranging_from_s": self.stats.ranging_busy_s,
                        "caught_up": False,
                    }
                    next_health = now + self.health_period_s
        finally:
            stop.set()
            reader.join(timeout=2.0)
            try:
                if self._rx is not None:
                    self._emit(self._rx.flush(), time.monotonic())
                self._drain_ranging(time.monotonic())
            finally:
                if self._ranging is not None:
                    self._ranging.close()
                    self._ranging = None
        if self._reader_error is not None:
            raise self._reader_error
        return self.summary(time.monotonic() - t_start)

    def _poll_control(self) -> None:
        """Apply the newest valid settings: the receiver is rebuilt at the next IQ message."""
        settings = self.control.poll()
        if settings is None:
            return
        if self.on_settings is not None and not self.on_settings(settings):
            self.control.applied -= 1  # refused by the receiver's configuration
            self.control.dropped["config"] += 1
            return
        self._rebuild = self._rx is not None

    @staticmethod
    def _samples(msg: IQMessage) -> np.ndarray:
        """The message's samples as the receiver takes them: sc16 as received (int16 pairs, read
        in place by the receiver's compiled loops at the working or the capture rate,
        dsp/direct_windows.py, dsp/frames_kernel.py: no conversion pass), fc32 as complex64."""
        return msg.iq if msg.header.format == "sc16" else msg.complex64()

    def _process(self, msg: IQMessage, iq: np.ndarray, t_arrival: float) -> float:
        """Feed one message's samples (``iq``: complex64 ``[channel, sample]`` or int16 pairs
        ``[channel, sample, 2]``, :meth:`_samples`) to the receiver."""
        h = msg.header
        t0 = time.perf_counter()
        fresh = self._header is None or msg.new_stream or not h.same_stream_setup(self._header)
        fresh, self._rebuild = fresh or self._rebuild, False
        if fresh:
            if self._rx is not None:
                self._emit(self._rx.flush(), time.monotonic())
                self._drain_ranging(time.monotonic())  # under the old stream's header
                self.stats.restarts += 1
            try:
                self._rx = self.make_receiver(h)
            except ValueError:
                self._unreceivable["unreceivable"] += 1
                self._rx, self._header = None, None
                return 0.0
            self._rx.defer_ranging = self._ranging is not None
            self._header = h
            self._first_index = h.capture_index
            self._arrivals = _Arrivals()
        assert self._rx is not None
        self.stats.messages += 1
        self.stats.samples += h.n_samples
        lost = 0 if fresh else msg.lost_before
        self.stats.gaps += lost > 0
        self._arrivals.add(h.capture_index + h.n_samples - self._first_index, t_arrival)
        self._stream_time_s = (h.capture_index + h.n_samples) / h.capture_rate_hz
        results = self._rx.push(iq, lost)
        self._emit(results, None)
        busy = time.perf_counter() - t0
        self.stats.busy_s += busy
        return busy

    def _last_sample(self, r: object) -> float | None:
        """Capture index (from the receiver's first sample) of the newest sample ``r`` depends on."""
        h = self._header
        wf = h.waveform
        scale = h.capture_rate_hz / wf.working_rate_hz
        if isinstance(r, PacketResult):
            end = r.start_sample + wf.packet_duration_s * wf.working_rate_hz
        elif isinstance(r, RangingEpoch):
            end = r.time_s * wf.working_rate_hz + r.n_symbols * wf.fft_size
        elif isinstance(r, BlockStats):
            end = r.time_s * wf.working_rate_hz + r.symbols * wf.fft_size
        else:
            return None
        return end * scale

    def _ranging_waits(self) -> bool:
        return self._ranging is not None and len(self._ranging) > 0

    def _drain_ranging(self, t_flush: float | None) -> None:
        """Publish every epoch still in the ranging pool (waiting for them)."""
        if self._ranging is not None:
            self._emit_ranged(self._ranging.collect(wait=True), t_flush)

    def _emit_ranged(self, epochs: list, t_flush: float | None) -> None:
        """Publish epochs back from the ranging pool (their methods' time counted)."""
        if not epochs:
            return
        self.stats.ranging_busy_s = self._ranging.busy_s if self._ranging is not None else 0.0
        self._emit(epochs, t_flush)

    def _emit(self, results: list, t_flush: float | None) -> None:
        h = self._header
        if h is None:
            return
        offset_s = self._first_index / h.capture_rate_hz
        range_true_m = h.truth.range_true_m if h.truth is not None else None  # emulated / replayed
        for r in results:
            if isinstance(r, RangingEpoch) and r.job is not None:
                # its methods still to run: to the pool, published when back (in order)
                if self._ranging is None:
                    raise RuntimeError("worker: an epoch with deferred ranging but no ranging pool")
                self._emit_ranged(self._ranging.submit(r), t_flush)
                continue
            kind, fields, arrays = result_to_wire(r, h.waveform, range_true_m)
            fields["time_s"] = fields["time_s"] + offset_s
            if kind == "epoch" and range_true_m is not None:
                fields["range_error_m"] = {m: v - range_true_m for m, v in fields["range_m"].items()}
            self.pub.send(kind, fields, arrays)
            self.stats.published[kind] += 1
            now = time.monotonic()
            last = self._last_sample(r)
            t_arr = None if last is None else self._arrivals.arrival_of(last)
            if t_arr is not None and t_flush is None:
                if isinstance(r, BlockStats):
                    self.stats.stats_latency.add(now - t_arr)
                else:
                    self.stats.latency.add(now - t_arr)
                    self.stats.period_latencies_s.append(now - t_arr)
            if isinstance(r, PacketResult):
                self.stats.packets += 1
                self.stats.crc_ok += bool(r.crc_ok)
            elif isinstance(r, RangingEpoch):
                self.stats.epochs += 1
            elif isinstance(r, GapEvent):
                pass
