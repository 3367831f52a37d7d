"""Replay source: the receiver over a capture file in a worker thread, as wire results.

Produces the same ``(kind, fields, arrays)`` tuples a live worker publishes
(:func:`sdr.results_wire.result_to_wire`), plus ``health`` messages with the
replay's own throughput and ``spectrum`` messages (Welch PSD of the chunks) at
about 2 Hz, paced to real time (``speed`` 1), faster/slower, or unpaced (``speed`` 0).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import scipy.signal

from app.replay import CHUNK, capture_receiver
from app.session import ReceiverSettings
from captures.reader import Capture, open_capture
from dsp.chunks import as_complex64
from dsp.receiver import Receiver
from gui.inbox import Inbox
from gui.source import SourceThread
from sdr.results_wire import result_to_wire, spectrum_to_wire

PSD_BINS = 1024
PSD_MAX_SAMPLES = 1 << 16  # Welch on the first samples of a chunk only: cheap, still ~60 averages


def chunk_spectrum(cap: Capture, iq: np.ndarray, time_s: float) -> tuple[str, dict, dict[str, np.ndarray]]:
    """Welch PSD (dB/Hz, full scale 1) of each channel of a chunk (complex ``[channel, sample]`` or
    int16 pairs ``[channel, sample, 2]``) on the RF frequency axis."""
    x = as_complex64(iq[:, :PSD_MAX_SAMPLES])
    nper = min(PSD_BINS, x.shape[1])
    f_hz, psd = scipy.signal.welch(x, cap.capture_rate_hz, nperseg=nper, return_onesided=False, axis=-1)
    f_hz, psd = np.fft.fftshift(f_hz), np.fft.fftshift(psd, axes=-1)
    psd_db = {c.band: 10 * np.log10(np.maximum(p, 1e-30)) for c, p in zip(cap.channels, psd, strict=True)}
    first = {c.band: c.center_freq_hz + float(f_hz[0]) for c in cap.channels}
    return spectrum_to_wire(time_s, psd_db, first, cap.capture_rate_hz / nper)


class ReplaySource(SourceThread):
    """Run the receiver over ``path`` and queue its results like a live worker would.

    ``settings`` as ``backscatter replay`` takes them; ``use_truth_calibration`` is short for
    ``settings.replace(truth_calibration=True)``.
    """

    def __init__(
        self,
        path: Path,
        speed: float = 1.0,
        settings: ReceiverSettings | None = None,
        use_truth_calibration: bool = False,
        chunk_samples: int = CHUNK,
        spectrum_period_s: float = 0.5,
        health_period_s: float = 0.25,
    ):
        super().__init__(Inbox(f"replay {path}", "replay"))
        self.path = Path(path)
        self.speed = speed
        settings = settings or ReceiverSettings()
        self.settings = settings.replace(truth_calibration=True) if use_truth_calibration else settings
        self.chunk_samples = chunk_samples
        self.spectrum_period_s = spectrum_period_s
        self.health_period_s = health_period_s

    def _run(self) -> None:
        with open_capture(self.path) as cap:
            truth = cap.truth()
            rx = capture_receiver(cap, self.path, self.settings, truth)
            self.inbox.update(capture_rate_hz=cap.capture_rate_hz, connected=True)
            self._replay(cap, rx, truth.range_true_m if truth else None)

    def _replay(self, cap: Capture, rx: Receiver, range_true_m: float | None) -> None:
        wf, fs = cap.waveform, cap.capture_rate_hz
        wall0 = time.perf_counter()
        busy_s, done, lost_total, gaps, chunks = 0.0, 0, 0, 0, 0
        next_psd = next_health = 0.0

        def health(state: str) -> None:
            self.inbox.put(
                "health",
                {
                    "time_s": done / fs,
                    "throughput_sps": done / busy_s if busy_s else 0.0,
                    "realtime_factor": done / fs / busy_s if busy_s else 0.0,
                    "queue_depth": 0,
                    "messages_received": chunks,
                    "messages_dropped": {},
                    "samples_lost": lost_total,
                    "gaps": gaps,
                    "stream_state": state,
                    "capture_rate_hz": fs,
                },
                {},
            )

        def emit(results: list) -> None:
            for r in results:
                self.inbox.put(*result_to_wire(r, wf, range_true_m))

        for start, iq, lost in cap.iter_chunks(self.chunk_samples, pairs=True):  # read in place
            if self.stopping:
                return
            t0 = time.perf_counter()
            results = rx.push(iq, lost)
            busy_s += time.perf_counter() - t0
            done += iq.shape[1]
            chunks += 1
            lost_total += lost
            gaps += bool(lost)
            emit(results)
            now = time.perf_counter() - wall0
            if now >= next_psd:
                self.inbox.put(*chunk_spectrum(cap, iq, start / fs))
                next_psd = now + self.spectrum_period_s
            if now >= next_health:
                health("live")
                next_health = now + self.health_period_s
            self.inbox.update(note=f"{done / fs:.2f} of {cap.duration_s:.2f} s")
            if self.speed > 0:
                self._stop.wait(max(0.0, done / fs / self.speed - (time.perf_counter() - wall0)))
        t0 = time.perf_counter()
        emit(rx.flush())
        busy_s += time.perf_counter() - t0
        health("live")
        wall_s = time.perf_counter() - wall0
        self.inbox.update(
            finished=True,
            note=f"replayed {cap.duration_s:.2f} s in {wall_s:.2f} s "
            f"(receiver {cap.duration_s / max(busy_s, 1e-9):.1f}x real time)",
        )
